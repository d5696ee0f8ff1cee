// Cost-balanced shards (issue 25): a deterministic estimate of each cell's time from its
// config alone, and the assignment of a grid's cells to N shards that `run --shard I/N`
// and `sweep` share, so that every shard of a sweep takes about the same time.
#pragma once

#include <attnbench/host/config.hpp>
#include <attnbench/model/model.hpp>
#include <attnbench/run/grid.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace attnbench {

// The assignment's name, kept in a shard's results.json (meta.shard.assignment): a shard
// folder written under another assignment holds other cells and is not resumed.
inline constexpr const char* kShardAssignment = "cost-balanced-1";

// A cell's estimated seconds on the reference machine (docs/scale.md: the development VM,
// AMD EPYC Zen 3, 2 threads), split into its parts. The estimate depends on the config
// and the model's shape only, never on a measurement, so every process and machine
// assigns the same cells to the same shard.
struct cell_estimate {
  double prefill_s = 0;  // samples x prefill of the context
  double decode_s = 0;   // samples x decode steps x the policy's read of the context (plus dense's with fidelity)
  std::size_t decode_steps = 0;  // per sample: generations x max_new_tokens x branches
  double total() const { return prefill_s + decode_s; }
};

// The estimate of every cell of the grid, in grid order. Decode steps come from each
// task's first sample at each length (made once per task and length).
std::vector<cell_estimate> estimate_cells(const run_config& config, const model& m, const std::vector<cell_key>& grid);

// The shard of each cell, for costs in grid order: longest first onto the shard with the
// least so far (ties to the lower grid index and the lower shard), so no shard exceeds
// the mean by more than the longest cell. Deterministic.
std::vector<std::size_t> assign_shards(const std::vector<double>& costs, std::size_t shards);

// The grid indices of shard `index` of `count`, in grid order (every cell when count <= 1).
std::vector<std::size_t> shard_cells(const run_config& config, const model& m, std::size_t index, std::size_t count);

// The largest shard's estimated seconds over the mean's (1 is perfect balance).
double shard_spread(const std::vector<double>& shard_seconds);

}  // namespace attnbench
