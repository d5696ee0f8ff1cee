#include <attnbench/run/grid.hpp>

#include <attnbench/host/errors.hpp>

#include <unordered_map>

namespace attnbench {

std::vector<cell_key> expand_grid(const run_config& c) {
  std::vector<cell_key> cells;
  for (std::size_t t = 0; t < c.tasks.size(); ++t)
    for (std::size_t l = 0; l < c.context_lengths.size(); ++l)
      for (std::size_t p = 0; p < c.policies.size(); ++p)
        for (std::size_t m = 0; m < c.terminators.size(); ++m)
          for (std::size_t s = 0; s < c.seeds.size(); ++s) cells.push_back({t, l, p, m, s});
  return cells;
}

std::string cell_id_part(std::string_view label) {
  std::string out;
  out.reserve(label.size());
  for (const char ch : label) {
    if (ch == '%') out += "%25";
    else if (ch == '/') out += "%2F";
    else out += ch;
  }
  return out;
}

std::string cell_id(std::string_view task, std::uint64_t length, std::string_view policy, std::string_view terminator,
                    std::uint64_t seed) {
  return cell_id_part(task) + "/" + std::to_string(length) + "/" + cell_id_part(policy) + "/" + cell_id_part(terminator) +
         "/" + std::to_string(seed);
}

std::string cell_id(const run_config& c, const cell_key& k) {
  return cell_id(c.tasks[k.task].label, c.context_lengths[k.length], c.policies[k.policy].label,
                 c.terminators[k.terminator].label, c.seeds[k.seed]);
}

std::vector<std::string> grid_cell_ids(const run_config& c, const std::vector<cell_key>& grid) {
  std::vector<std::string> ids;
  ids.reserve(grid.size());
  std::unordered_map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    ids.push_back(cell_id(c, grid[i]));
    if (const auto [it, fresh] = seen.emplace(ids.back(), i); !fresh)
      throw config_error(c.file.string(), "", "cells " + std::to_string(it->second) + " and " + std::to_string(i) +
                                                  " of the grid would both have the id '" + ids.back() +
                                                  "'; give their entries distinct labels");
  }
  return ids;
}

}  // namespace attnbench
