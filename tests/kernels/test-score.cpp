// Scoring and top-k against references: every dtype and SIMD target, ranges and token
// lists at awkward lengths; top-k exact on random, tied, sorted and NaN-laced scores.
#include "../test-helpers.hpp"

#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/random.hpp>
#include <attnbench/kernels/score.hpp>
#include <attnbench/kernels/simd.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

using namespace attnbench;
using namespace attnbench::kernels;

namespace {

std::unique_ptr<kv_cache> random_cache(std::uint32_t n, std::uint32_t d, attnbench_dtype dtype, std::uint64_t seed) {
  auto cache = std::make_unique<kv_cache>(1, 1, d, 64, dtype);
  rng r(seed);
  std::vector<float> k(static_cast<std::size_t>(n) * d);
  for (auto& x : k) x = static_cast<float>(r.normal());
  std::vector<std::int64_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  cache->append(0, 0, n, p.data(), k.data(), k.data());
  return cache;
}

// The k best indices by a full sort: score descending, index ascending, NaN last.
std::set<std::uint32_t> sorted_top(const std::vector<float>& s, std::uint32_t k) {
  std::vector<std::uint32_t> idx(s.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (std::isnan(s[a]) != std::isnan(s[b])) return std::isnan(s[b]);
    return !std::isnan(s[a]) && s[a] > s[b];
  });
  return {idx.begin(), idx.begin() + std::min<std::size_t>(k, s.size())};
}

}  // namespace

TEST(Score, MatchesReferenceForEveryTargetDtypeAndShape) {
  for (const auto& target : available_targets()) {
    ASSERT_TRUE(set_target(target));
    for (auto dtype : {ATTNBENCH_DTYPE_FP32, ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16})
      for (std::uint32_t group : {1u, 4u, 5u, 8u})
        for (std::uint32_t n : {1u, 63u, 65u, 4097u}) {
          SCOPED_TRACE(target + " dtype " + std::to_string(dtype) + " group " + std::to_string(group) + " n " +
                       std::to_string(n));
          auto cache = random_cache(n, 64, dtype, n + group);
          rng r(group);
          std::vector<float> q(group * 64);
          for (auto& x : q) x = static_cast<float>(r.normal());
          std::vector<std::uint32_t> list;
          for (std::uint32_t t = 0; t < n; t += 3) list.push_back(n - 1 - t);  // descending, gathered
          for (bool use_list : {false, true}) {
            score_args a;
            a.queries = q.data();
            a.n_query_heads = group;
            a.head_dim = 64;
            a.scale = 0.125f;
            a.kv = &cache->layer_view(0).heads[0];
            a.dtype = dtype;
            a.first = use_list ? 0 : n / 3;
            a.count = use_list ? list.size() : n - n / 3;
            a.tokens = use_list ? list.data() : nullptr;
            std::vector<float> got(group * a.count);
            std::vector<double> want(got.size());
            a.out = got.data();
            ASSERT_EQ(score_keys(a), ATTNBENCH_STATUS_OK);
            ASSERT_EQ(score_reference(a, want.data()), ATTNBENCH_STATUS_OK);
            double num = 0, den = 0;
            for (std::size_t i = 0; i < got.size(); ++i) {
              num += (got[i] - want[i]) * (got[i] - want[i]);
              den += want[i] * want[i];
            }
            if (den > 0) {
              EXPECT_LT(std::sqrt(num / den), 1e-5);
            }
          }
        }
  }
  set_target("auto");
}

TEST(Score, RejectsOutOfRangeCandidates) {
  auto cache = random_cache(100, 64, ATTNBENCH_DTYPE_FP16, 1);
  std::vector<float> q(64, 1.0f), out(200);
  const std::uint32_t bad[] = {5, 100};
  score_args a;
  a.queries = q.data();
  a.head_dim = 64;
  a.kv = &cache->layer_view(0).heads[0];
  a.dtype = ATTNBENCH_DTYPE_FP16;
  a.out = out.data();
  a.count = 2;
  a.tokens = bad;
  EXPECT_EQ(score_keys(a), ATTNBENCH_STATUS_INVALID_ARGUMENT);
  a.tokens = nullptr;
  a.first = 90;
  a.count = 11;
  EXPECT_EQ(score_keys(a), ATTNBENCH_STATUS_INVALID_ARGUMENT);
}

TEST(Softmax, RowsSumToOneAndKeepOrder) {
  std::vector<float> x = {1, 2, 3, -1e30f, 1000, 1001};
  softmax_rows(x.data(), 2, 3);
  EXPECT_NEAR(x[0] + x[1] + x[2], 1.0, 1e-6);
  EXPECT_NEAR(x[3] + x[4] + x[5], 1.0, 1e-6);
  EXPECT_LT(x[0], x[1]);
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_NEAR(x[5] / x[4], std::exp(1.0), 1e-4);
}

// Every SIMD path (and the scalar one) against a float64 softmax, at lengths with and
// without a tail past the vector width.
TEST(Softmax, EveryTargetMatchesFloat64) {
  rng r(4);
  for (const auto& target : available_targets()) {
    ASSERT_TRUE(set_target(target));
    for (std::uint64_t n : {1u, 7u, 16u, 33u, 4099u}) {
      std::vector<float> x(3 * n);
      for (auto& v : x) v = static_cast<float>(r.normal() * 4);
      std::vector<float> got = x;
      softmax_rows(got.data(), 3, n);
      for (std::uint32_t row = 0; row < 3; ++row) {
        double mx = -INFINITY, sum = 0;
        for (std::uint64_t i = 0; i < n; ++i) mx = std::max<double>(mx, x[row * n + i]);
        for (std::uint64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[row * n + i]) - mx);
        for (std::uint64_t i = 0; i < n; ++i) {
          const double want = std::exp(static_cast<double>(x[row * n + i]) - mx) / sum;
          ASSERT_NEAR(got[row * n + i], want, 1e-6 * (1 + want)) << target << " n " << n << " i " << i;
        }
      }
    }
  }
  set_target("auto");
}

TEST(TopK, ExactOnRandomTiedSortedAndNanScores) {
  rng r(3);
  for (const auto& target : available_targets()) {
    ASSERT_TRUE(set_target(target));
    // Under the sanitizers the largest case is 40000 scores (k = 200000 still exceeds n).
    for (std::uint64_t n : {1ull, 10ull, 5000ull, attnbench::testing::kSanitized ? 40000ull : 131072ull}) {
      for (std::uint32_t k : {1u, 7u, 2048u, 200000u}) {
        std::vector<std::vector<float>> inputs(6, std::vector<float>(n));
        for (std::uint64_t i = 0; i < n; ++i) {
          inputs[0][i] = static_cast<float>(r.normal());
          inputs[1][i] = static_cast<float>(r.below(4));  // heavy ties
          inputs[2][i] = static_cast<float>(i);           // ascending: the best are at the end
          inputs[3][i] = -static_cast<float>(i);          // descending
          inputs[4][i] = r.below(10) == 0 ? NAN : static_cast<float>(r.normal());
          inputs[5][i] = r.below(3) == 0 ? -0.0f : r.below(2) == 0 ? 0.0f : -1.0f;  // -0 ties with +0
        }
        for (std::size_t c = 0; c < inputs.size(); ++c) {
          const auto& s = inputs[c];
          const std::uint32_t kk = static_cast<std::uint32_t>(std::min<std::uint64_t>(k, n));
          std::vector<std::uint32_t> out(kk);
          top_k(s.data(), n, k, out.data());
          EXPECT_EQ(std::set<std::uint32_t>(out.begin(), out.end()), sorted_top(s, k))
              << target << " case " << c << " n " << n << " k " << k;
        }
      }
    }
  }
  set_target("auto");
}
