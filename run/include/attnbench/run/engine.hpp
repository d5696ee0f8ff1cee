// The decode engine: a batch of samples through prefill, the policy's plans, the decode
// kernel and the model's readout, sample i with its own policy instance and cache. Every
// decode step runs the step of all sequences still decoding, layer by layer, in one
// parallel region.
#pragma once

#include <attnbench/host/config.hpp>
#include <attnbench/host/plugin-loader.hpp>
#include <attnbench/model/model.hpp>
#include <attnbench/run/metrics.hpp>
#include <attnbench/run/plugins.hpp>

#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/tasks/task.hpp>

#include <atomic>
#include <span>
#include <vector>

namespace attnbench {

// Set from the SIGINT handler; the engine stops between samples when it sees it.
extern std::atomic<bool> g_interrupt_requested;

struct run_inputs {
  const run_config& config;
  const attnbench::model& model;
  const resolved_plugins& plugins;
  double read_bandwidth_bytes_per_s;  // the read ceiling measured in this process (kernels/probe.hpp)
  std::size_t shard_index = 0, shard_count = 1;  // run shard index of count (run/shards.hpp)
  unsigned threads = 0;  // threads for the cells (0: every core)
  std::size_t probe_bytes = std::size_t{512} << 20;  // each buffer of the read ceiling's probe
  std::string read_ceiling_method{};  // the ceiling's best method, e.g. "simd/huge"
};

// Runs a batch: caches are of the model's shape and the config's dtype and block size,
// emptied first (so a cell's pages are zeroed by the system once, not once per sample).
// Adds to totals (decode_s: the batch's wall time) and returns one row per sample for
// samples.jsonl (prediction, references, score, generated_tokens, prepare_ms, prefill_ms,
// decode_ms: time until the sequence ended, prompt_hash, info). Throws plugin_error
// naming the plugin, layer and step when a policy's plan or a terminator fails.
std::vector<nlohmann::ordered_json> run_batch(const run_inputs& inputs, const tasks::task& task,
                                              std::span<const tasks::sample> samples,
                                              std::span<policy_instance* const> policies,
                                              const terminator_instance* terminator, cell_totals& totals,
                                              std::span<kernels::kv_cache* const> caches);

// One sample: a batch of one, with a cache of its own unless `cache` is given.
nlohmann::ordered_json run_sample(const run_inputs& inputs, const tasks::task& task, const tasks::sample& sample,
                                  policy_instance& policy, const terminator_instance* terminator, cell_totals& totals,
                                  kernels::kv_cache* cache = nullptr);

}  // namespace attnbench
