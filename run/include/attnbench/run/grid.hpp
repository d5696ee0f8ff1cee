// A run's grid: every cell (task x context length x policy x terminator x seed) of a
// config, in the order they run, and their ids.
#pragma once

#include <attnbench/host/config.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attnbench {

struct cell_key {
  std::size_t task, length, policy, terminator, seed;  // indices into the config lists
};

std::vector<cell_key> expand_grid(const run_config& config);

// A label as one part of a cell id: '%' and '/' are written %25 and %2F, so that the
// parts of an id never run into each other.
std::string cell_id_part(std::string_view label);

// TASK-LABEL/LENGTH/POLICY/TERMINATOR/SEED, each label through cell_id_part. Ids are
// unique in a grid by construction: labels are unique within their list, lengths and
// seeds too, and the escaped parts cannot contain '/'.
std::string cell_id(const run_config& config, const cell_key& key);
// The same from the parts (merge builds a results file's ids from its config's labels).
std::string cell_id(std::string_view task, std::uint64_t length, std::string_view policy, std::string_view terminator,
                    std::uint64_t seed);

// The ids of the grid's cells, in grid order. Throws config_error naming both cells if
// two ids were ever equal (a guard on the construction above).
std::vector<std::string> grid_cell_ids(const run_config& config, const std::vector<cell_key>& grid);

}  // namespace attnbench
