// The decode kernel against its float64 reference on random inputs, for every dtype,
// GQA ratios 1/4/8, ALL/BLOCKS/TOKENS plans, and lengths around block boundaries; and
// the terminator hook: stopping after block j gives the attention over the first j.
#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/random.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

using namespace attnbench::kernels;

namespace {

struct fixture {
  std::unique_ptr<kv_cache> cache;
  std::vector<float> queries;
};

fixture make(std::uint32_t n_tokens, std::uint32_t group, std::uint32_t d, std::uint32_t bs, attnbench_dtype dtype,
             std::uint64_t seed) {
  fixture f;
  f.cache = std::make_unique<kv_cache>(1, 1, d, bs, dtype);
  attnbench::rng r(seed);
  std::vector<float> k(static_cast<std::size_t>(n_tokens) * d), v(k.size());
  for (auto& x : k) x = static_cast<float>(r.normal());
  for (auto& x : v) x = static_cast<float>(r.normal());
  std::vector<std::int64_t> p(n_tokens);
  std::iota(p.begin(), p.end(), 0);
  f.cache->append(0, 0, n_tokens, p.data(), k.data(), v.data());
  f.queries.resize(static_cast<std::size_t>(group) * d);
  for (auto& x : f.queries) x = static_cast<float>(2.0 * r.normal());  // peaky but not one-hot
  return f;
}

double relative_l2(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

using param = std::tuple<attnbench_dtype, std::uint32_t /*group*/, std::uint32_t /*tokens*/, attnbench_plan_kind>;

class DecodeVsReference : public ::testing::TestWithParam<param> {};

TEST_P(DecodeVsReference, RelativeErrorIsSmall) {
  const auto [dtype, group, n_tokens, kind] = GetParam();
  const std::uint32_t d = 64, bs = 64;
  auto f = make(n_tokens, group, d, bs, dtype, 1000 + n_tokens * 31 + group);
  const auto& view = f.cache->layer_view(0).heads[0];

  std::vector<std::uint32_t> indices;
  attnbench::rng r(5);
  if (kind == ATTNBENCH_PLAN_BLOCKS) {
    for (std::uint32_t b = 0; b < view.n_blocks; ++b)
      if (b == 0 || r.below(2)) indices.push_back(b);
    std::reverse(indices.begin(), indices.end());  // order must not matter to the result
  } else if (kind == ATTNBENCH_PLAN_TOKENS) {
    for (std::uint32_t t = 0; t < n_tokens; ++t)
      if (t == 0 || r.below(3) == 0) indices.push_back(t);
    std::swap(indices.front(), indices.back());
  }
  const attnbench_plan_entry entry{static_cast<std::uint32_t>(kind), static_cast<std::uint32_t>(indices.size()),
                                   indices.data(), nullptr};
  std::vector<float> out(static_cast<std::size_t>(group) * d, NAN);
  decode_args a;
  a.queries = f.queries.data();
  a.n_query_heads = group;
  a.head_dim = d;
  a.scale = 1.0f / 8.0f;
  a.kv = &view;
  a.block_size = bs;
  a.dtype = dtype;
  a.entry = &entry;
  a.out = out.data();
  decode_counters counters;
  ASSERT_EQ(decode_group(a, &counters), ATTNBENCH_STATUS_OK);
  std::vector<double> want(out.size());
  ASSERT_EQ(decode_reference(a, UINT64_MAX, want.data()), ATTNBENCH_STATUS_OK);
  EXPECT_LT(relative_l2(out, want), 1e-5);
  EXPECT_EQ(counters.blocks_visited, counters.blocks_planned);
  const std::uint64_t expect_tokens = kind == ATTNBENCH_PLAN_ALL      ? n_tokens
                                      : kind == ATTNBENCH_PLAN_TOKENS ? indices.size()
                                                                      : counters.tokens_planned;
  EXPECT_EQ(counters.tokens_visited, expect_tokens);
}

INSTANTIATE_TEST_SUITE_P(
    Kernel, DecodeVsReference,
    ::testing::Combine(::testing::Values(ATTNBENCH_DTYPE_FP32, ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16),
                       ::testing::Values(1u, 4u, 8u), ::testing::Values(1u, 63u, 64u, 65u, 4097u),
                       ::testing::Values(ATTNBENCH_PLAN_ALL, ATTNBENCH_PLAN_BLOCKS, ATTNBENCH_PLAN_TOKENS)));

// A terminator (not a plugin: the raw hook) that stops after `limit` blocks.
struct stop_state {
  std::uint32_t limit;
};
attnbench_decision stop_check(const void*, void* state, const attnbench_kernel_state* ks) {
  return ks->blocks_done >= static_cast<stop_state*>(state)->limit ? ATTNBENCH_STOP : ATTNBENCH_CONTINUE;
}

TEST(DecodeTerminator, StoppingAfterJBlocksEqualsAttentionOverTheFirstJ) {
  const std::uint32_t d = 32, bs = 16, group = 4;
  auto f = make(300, group, d, bs, ATTNBENCH_DTYPE_FP16, 77);
  const auto& view = f.cache->layer_view(0).heads[0];
  std::vector<std::uint32_t> order = {5, 0, 18, 3, 7, 12, 1};
  const attnbench_plan_entry entry{ATTNBENCH_PLAN_BLOCKS, static_cast<std::uint32_t>(order.size()), order.data(),
                                   nullptr};
  attnbench_terminator_ops ops{};
  ops.check = stop_check;
  for (std::uint32_t j = 1; j <= order.size(); ++j) {
    stop_state st{j};
    std::vector<float> out(group * d);
    decode_args a;
    a.queries = f.queries.data();
    a.n_query_heads = group;
    a.head_dim = d;
    a.scale = 0.2f;
    a.kv = &view;
    a.block_size = bs;
    a.dtype = ATTNBENCH_DTYPE_FP16;
    a.entry = &entry;
    a.out = out.data();
    a.hook = {&ops, nullptr, &st};
    decode_counters c;
    ASSERT_EQ(decode_group(a, &c), ATTNBENCH_STATUS_OK);
    EXPECT_EQ(c.blocks_visited, j);
    EXPECT_EQ(c.blocks_planned, order.size());
    std::vector<double> want(out.size());
    ASSERT_EQ(decode_reference(a, j, want.data()), ATTNBENCH_STATUS_OK);
    EXPECT_LT(relative_l2(out, want), 1e-5) << "stop after " << j;
  }
}

TEST(DecodeKernel, RejectsOutOfRangeIndices) {
  auto f = make(100, 1, 16, 16, ATTNBENCH_DTYPE_FP32, 3);
  const auto& view = f.cache->layer_view(0).heads[0];
  const std::uint32_t bad_block = view.n_blocks;
  const std::uint32_t bad_token = 100;
  std::vector<float> out(16);
  for (auto [kind, idx] : {std::pair{ATTNBENCH_PLAN_BLOCKS, &bad_block}, std::pair{ATTNBENCH_PLAN_TOKENS, &bad_token}}) {
    const attnbench_plan_entry entry{static_cast<std::uint32_t>(kind), 1, idx, nullptr};
    decode_args a;
    a.queries = f.queries.data();
    a.head_dim = 16;
    a.kv = &view;
    a.block_size = 16;
    a.entry = &entry;
    a.out = out.data();
    EXPECT_EQ(decode_group(a, nullptr), ATTNBENCH_STATUS_INVALID_ARGUMENT);
  }
}

TEST(DecodeKernel, EmptyPlanGivesZeros) {
  auto f = make(10, 2, 16, 16, ATTNBENCH_DTYPE_FP32, 4);
  const attnbench_plan_entry entry{ATTNBENCH_PLAN_TOKENS, 0, nullptr, nullptr};
  std::vector<float> out(32, 1.0f);
  decode_args a;
  a.queries = f.queries.data();
  a.n_query_heads = 2;
  a.head_dim = 16;
  a.kv = &f.cache->layer_view(0).heads[0];
  a.block_size = 16;
  a.entry = &entry;
  a.out = out.data();
  ASSERT_EQ(decode_group(a, nullptr), ATTNBENCH_STATUS_OK);
  for (float x : out) EXPECT_EQ(x, 0.0f);
}

}  // namespace
