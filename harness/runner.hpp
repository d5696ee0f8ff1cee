// The runner: expands a config into cells (task x context length x policy x terminator
// x seed), runs each cell's samples through the synthetic model, the policy, the decode
// kernel and the task's scorer, and hands finished cells to the results writer.
#pragma once

#include "config.hpp"
#include "model.hpp"
#include "plugin-loader.hpp"
#include "results.hpp"

#include <attnbench/tasks/task.hpp>

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace attnbench {

// Set from the SIGINT handler; the runner stops between samples when it sees it.
extern std::atomic<bool> g_interrupt_requested;

// Plugins of a config, loaded and checked (each created once with its params).
struct resolved_plugins {
  std::vector<std::shared_ptr<plugin_library>> policies;     // parallel to config.policies
  std::vector<std::shared_ptr<plugin_library>> terminators;  // null for "none"
  nlohmann::json info() const;  // for results meta
};

attnbench_model_info model_info(const run_config& config, const model_profile& profile);

// Loads every plugin the config names and creates one instance of each with its params.
// Throws plugin_error naming the config entry.
resolved_plugins resolve_plugins(const run_config& config, const model_profile& profile, plugin_registry& registry);

struct cell_key {
  std::size_t task, length, policy, terminator, seed;  // indices into the config lists
};
std::vector<cell_key> expand_grid(const run_config& config);
std::string cell_id(const run_config& config, const cell_key& key);

// Bytes a cell needs at most (K/V and metadata of the full context for each sequence of a
// batch, with headroom), and
// the check against the configured or available memory. Throws resource_error.
std::uint64_t estimate_cell_bytes(const run_config& config, const model_profile& profile, std::uint32_t context_length);
void check_memory(const run_config& config, const model_profile& profile);

struct run_inputs {
  const run_config& config;
  const synthetic_model& model;
  const resolved_plugins& plugins;
  double read_bandwidth_bytes_per_s;  // probe measured in this process
  std::size_t shard_index = 0, shard_count = 1;  // run the grid's cells i with i % count == index
};

// What a cell's samples add up to; cell metrics are computed from it.
struct cell_totals {
  std::vector<double> scores;
  std::uint64_t blocks_planned = 0, blocks_visited = 0;
  std::vector<std::uint64_t> layer_blocks_planned, layer_blocks_visited;  // [layer]
  std::uint64_t role_blocks_planned[4] = {}, role_blocks_visited[4] = {};  // [head_role]
  double attended_token_heads = 0, context_token_heads = 0;
  std::uint64_t k_bytes = 0, v_bytes = 0;
  double resident_bytes = 0, resident_before_eviction_bytes = 0;
  double selection_s = 0, attention_s = 0, decode_s = 0, prefill_s = 0;
  std::uint64_t steps = 0;
};

// Runs a batch of samples through prefill, the policy's plans, the decode kernel and the
// readout, sample i with policies[i] and caches[i] (of the model's shape and the config's
// dtype and block size; emptied first, so a cell's pages are zeroed by the system once,
// not once per sample). Every decode step runs the step of all sequences still decoding,
// layer by layer, in one parallel region. Adds to totals (decode_s: the batch's wall
// time) and returns one row per sample for samples.jsonl (prediction, references,
// score, generated_tokens, prefill_ms, decode_ms: time until the sequence ended, info).
std::vector<nlohmann::ordered_json> run_batch(const run_inputs& inputs, const tasks::task& task,
                                              std::span<const tasks::sample> samples,
                                              std::span<policy_instance* const> policies,
                                              const terminator_instance* terminator, cell_totals& totals,
                                              std::span<kernels::kv_cache* const> caches);

// One sample: a batch of one, with a cache of its own unless `cache` is given.
nlohmann::ordered_json run_sample(const run_inputs& inputs, const tasks::task& task, const tasks::sample& sample,
                                  policy_instance& policy, const terminator_instance* terminator, cell_totals& totals,
                                  kernels::kv_cache* cache = nullptr);

// Runs every cell not already in the writer; returns when all are done. Throws
// harness_error(exit_interrupted) when interrupted, after the last finished cell is written.
// Runs the grid's cells (those of the shard), skipping cells already in the writer. Logs
// each cell with the elapsed and estimated remaining time; when stderr is a terminal, also
// keeps a progress line (cells done, current cell, elapsed, remaining) at its bottom.
void run_cells(const run_inputs& inputs, results_writer& writer);

}  // namespace attnbench
