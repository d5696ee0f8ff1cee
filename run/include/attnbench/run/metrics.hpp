// What a cell's samples add up to, and the cell metrics computed from it (accuracy and
// its interval, blocks skipped per layer and role, bytes read, time per stage).
#pragma once

#include <attnbench/host/plugin-loader.hpp>
#include <attnbench/model/model.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <vector>

namespace attnbench {

// Attention fidelity (config metrics.fidelity), summed over query heads, steps and
// samples: the dense mass each query head's traversal visited (recall) and the relative
// L2 error of its output against dense attention, per layer and head role.
struct fidelity_totals {
  std::vector<double> layer_recall, layer_error;  // [layer]
  std::vector<std::uint64_t> layer_count;
  double role_recall[kHeadRoles] = {}, role_error[kHeadRoles] = {};
  std::uint64_t role_count[kHeadRoles] = {};
  void add(std::uint32_t layer, head_role role, double recall, double error);
};

struct cell_totals {
  std::vector<double> scores;
  std::uint64_t blocks_planned = 0, blocks_visited = 0;
  std::vector<std::uint64_t> layer_blocks_planned, layer_blocks_visited;  // [layer]
  std::uint64_t role_blocks_planned[kHeadRoles] = {}, role_blocks_visited[kHeadRoles] = {};  // [head_role]
  double attended_token_heads = 0, context_token_heads = 0;
  std::uint64_t k_bytes = 0, v_bytes = 0;
  double resident_bytes = 0, resident_before_eviction_bytes = 0;
  double selection_s = 0, attention_s = 0, decode_s = 0, prefill_s = 0;
  std::uint64_t steps = 0;
  fidelity_totals fidelity;  // empty unless metrics.fidelity
};

// The cell's metrics block (with attention_recall and output_error, overall, _by_layer and
// _by_role, when fidelity was measured); read_bandwidth is the probe measured in this process (bytes/s).
nlohmann::ordered_json cell_metrics(const cell_totals& totals, double read_bandwidth);

// A policy's stats over a batch's instances: per key, the mean of the instances' numbers
// (with batch 1, the instance's stats as they are). Non-numbers come from the first
// instance that reports the key.
nlohmann::json mean_stats(const std::vector<std::unique_ptr<policy_instance>>& policies);

}  // namespace attnbench
