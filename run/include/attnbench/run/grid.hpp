// A run's grid: every cell (task x context length x policy x terminator x seed) of a
// config, in the order they run, and their ids.
#pragma once

#include <attnbench/host/config.hpp>

#include <string>
#include <vector>

namespace attnbench {

struct cell_key {
  std::size_t task, length, policy, terminator, seed;  // indices into the config lists
};

std::vector<cell_key> expand_grid(const run_config& config);
// TASK-LABEL/LENGTH/POLICY/TERMINATOR/SEED.
std::string cell_id(const run_config& config, const cell_key& key);

}  // namespace attnbench
