#include <attnbench/run/grid.hpp>

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

std::string cell_id(const run_config& c, const cell_key& k) {
  return c.tasks[k.task].label + "/" + std::to_string(c.context_lengths[k.length]) + "/" + c.policies[k.policy].label +
         "/" + c.terminators[k.terminator].label + "/" + std::to_string(c.seeds[k.seed]);
}

}  // namespace attnbench
