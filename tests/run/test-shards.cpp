// Cost-balanced shards (run/shards.hpp): every cell in exactly one shard, the same
// assignment every time, no shard past the mean by more than its longest cell, and
// estimates that grow with what costs time.
#include "../test-helpers.hpp"

#include <attnbench/host/config.hpp>
#include <attnbench/model/mechanistic.hpp>
#include <attnbench/run/plugins.hpp>
#include <attnbench/run/shards.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

using namespace attnbench;
using namespace attnbench::testing;

namespace {

std::vector<double> loads(const std::vector<double>& costs, const std::vector<std::size_t>& shard, std::size_t n) {
  std::vector<double> out(n, 0.0);
  for (std::size_t i = 0; i < costs.size(); ++i) out[shard[i]] += costs[i];
  return out;
}

run_config grid_config(const std::vector<std::string>& sets = {}) {
  return load_config_text(R"({"model": {"profile": "default"}, "tasks": ["niah_single_1", "niah_multivalue", "qa_1"],
    "context_lengths": [4096, 16384, 65536, 131072], "samples": 5,
    "policies": ["dense", "tokenselect", {"name": "quest", "params": {"budget": 1024}}]})",
                          "grid.json", config_task_rules(), sets);
}

}  // namespace

TEST(Shards, EveryCellOnceDeterministicAndBalanced) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> cost(0.0, 1.5);  // a long tail, as lengths 4K-1M give
  for (std::size_t cells : {1, 5, 40, 333})
    for (std::size_t n : {1, 2, 3, 7, 16}) {
      std::vector<double> costs(cells);
      for (auto& c : costs) c = cost(rng);
      const auto shard = assign_shards(costs, n);
      ASSERT_EQ(shard.size(), cells);
      for (std::size_t s : shard) EXPECT_LT(s, n);
      EXPECT_EQ(shard, assign_shards(costs, n)) << "not deterministic";
      const auto l = loads(costs, shard, n);
      double total = 0;
      for (double x : l) total += x;
      const double mean = total / double(n), longest = *std::max_element(costs.begin(), costs.end());
      EXPECT_LE(*std::max_element(l.begin(), l.end()), mean + longest + 1e-9) << cells << " cells, " << n << " shards";
    }
  // Equal costs: shard sizes differ by one at most.
  const auto shard = assign_shards(std::vector<double>(10, 1.0), 4);
  std::vector<int> sizes(4, 0);
  for (std::size_t s : shard) ++sizes[s];
  EXPECT_LE(*std::max_element(sizes.begin(), sizes.end()) - *std::min_element(sizes.begin(), sizes.end()), 1);
}

TEST(Shards, EstimatesGrowWithLengthSamplesStepsAndPolicy) {
  const mechanistic_model m(load_profile(profile_file("default")), 1);
  const run_config c = grid_config();
  const auto grid = expand_grid(c);
  const auto e = estimate_cells(c, m, grid);
  auto at = [&](std::size_t task, std::size_t length, std::size_t policy) {
    for (std::size_t i = 0; i < grid.size(); ++i)
      if (grid[i].task == task && grid[i].length == length && grid[i].policy == policy) return e[i];
    throw std::runtime_error("no such cell");
  };
  for (std::size_t l = 1; l < c.context_lengths.size(); ++l) EXPECT_GT(at(0, l, 0).total(), 1.9 * at(0, l - 1, 0).total());
  // niah_multivalue decodes four values: more steps than niah_single_1.
  EXPECT_GT(at(1, 2, 0).decode_steps, at(0, 2, 0).decode_steps);
  EXPECT_GT(at(1, 2, 0).decode_s, at(0, 2, 0).decode_s);
  // tokenselect's step measured cheaper than dense's, quest's dearer.
  EXPECT_LT(at(0, 2, 1).decode_s, at(0, 2, 0).decode_s);
  EXPECT_GT(at(0, 2, 2).decode_s, at(0, 2, 0).decode_s);
  // Twice the samples, twice the time; fidelity adds a dense read to a sparse policy.
  const run_config twice = grid_config({"samples=10"});
  EXPECT_NEAR(estimate_cells(twice, m, grid)[5].total(), 2 * e[5].total(), 1e-9 * e[5].total());
  const run_config fidelity = grid_config({"metrics.fidelity=true"});
  EXPECT_GT(estimate_cells(fidelity, m, grid)[7].decode_s, e[7].decode_s);
  EXPECT_EQ(estimate_cells(fidelity, m, grid)[0].decode_s, e[0].decode_s);  // dense: no second read
}

TEST(Shards, CostBalancedShardsBeatStrideOnAGridOfLengths) {
  const mechanistic_model m(load_profile(profile_file("default")), 1);
  const run_config c = grid_config();
  const auto grid = expand_grid(c);
  std::vector<double> costs;
  for (const auto& e : estimate_cells(c, m, grid)) costs.push_back(e.total());
  for (std::size_t n : {3, 4, 6}) {
    std::vector<std::size_t> stride(grid.size());
    for (std::size_t i = 0; i < grid.size(); ++i) stride[i] = i % n;
    const double balanced = shard_spread(loads(costs, assign_shards(costs, n), n));
    const double strided = shard_spread(loads(costs, stride, n));
    EXPECT_LT(balanced, 1.1) << n << " shards";
    EXPECT_LT(balanced, strided) << n << " shards";
  }
  // The shards of shard_cells partition the grid, each in grid order.
  std::vector<int> seen(grid.size(), 0);
  for (std::size_t s = 0; s < 4; ++s) {
    const auto cells = shard_cells(c, m, s, 4);
    EXPECT_TRUE(std::is_sorted(cells.begin(), cells.end()));
    for (std::size_t i : cells) ++seen[i];
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<long>(grid.size()));
}
