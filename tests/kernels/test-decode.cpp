// The decode kernel against its float64 reference on random inputs, for every dtype,
// GQA ratios 1/4/8, ALL/BLOCKS/TOKENS plans, and lengths around block boundaries; and
// the terminator hook: stopping after block j gives the attention over the first j.
#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/random.hpp>
#include <attnbench/kernels/simd.hpp>

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
  const std::uint32_t d = 64, bs = 64;  // the scalar path also runs d = 24 below
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
  for (const auto& target : available_targets()) {
  SCOPED_TRACE("SIMD target " + target);
  ASSERT_TRUE(set_target(target));
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
  set_target("auto");
}

// GQA 5 runs as sub-groups of 3 and 2 heads, so every sub-group size is covered.
INSTANTIATE_TEST_SUITE_P(
    Kernel, DecodeVsReference,
    ::testing::Combine(::testing::Values(ATTNBENCH_DTYPE_FP32, ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16),
                       ::testing::Values(1u, 4u, 5u, 8u), ::testing::Values(1u, 63u, 64u, 65u, 4097u),
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

namespace {

// A layer of several KV heads with the same random content shape.
struct layer_fixture {
  std::unique_ptr<kv_cache> cache;
  std::vector<float> queries;
};

layer_fixture make_layer(std::uint32_t n_tokens, std::uint32_t hkv, std::uint32_t group, std::uint32_t d,
                         std::uint32_t bs, std::uint64_t seed) {
  layer_fixture f;
  f.cache = std::make_unique<kv_cache>(1, hkv, d, bs, ATTNBENCH_DTYPE_FP16);
  attnbench::rng r(seed);
  for (std::uint32_t h = 0; h < hkv; ++h) {
    std::vector<float> k(static_cast<std::size_t>(n_tokens) * d), v(k.size());
    for (auto& x : k) x = static_cast<float>(r.normal());
    for (auto& x : v) x = static_cast<float>(r.normal());
    std::vector<std::int64_t> p(n_tokens);
    std::iota(p.begin(), p.end(), 0);
    f.cache->append(0, h, n_tokens, p.data(), k.data(), v.data());
  }
  f.queries.resize(static_cast<std::size_t>(hkv) * group * d);
  for (auto& x : f.queries) x = static_cast<float>(2.0 * r.normal());
  return f;
}

}  // namespace

// Split-K: one traversal cut into parts and merged by log-sum-exp equals the whole.
TEST(DecodeSplitK, PartsMergeToTheWhole) {
  const std::uint32_t d = 64, bs = 16, group = 4;
  auto f = make(1000, group, d, bs, ATTNBENCH_DTYPE_BF16, 21);
  const attnbench_plan_entry entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr};
  decode_args a;
  a.queries = f.queries.data();
  a.n_query_heads = group;
  a.head_dim = d;
  a.scale = 0.125f;
  a.kv = &f.cache->layer_view(0).heads[0];
  a.block_size = bs;
  a.dtype = ATTNBENCH_DTYPE_BF16;
  a.entry = &entry;
  std::vector<double> want(group * d);
  ASSERT_EQ(decode_reference(a, UINT64_MAX, want.data()), ATTNBENCH_STATUS_OK);
  const std::uint64_t chunks = plan_entry_chunks(entry, *a.kv, bs);
  for (std::uint32_t parts : {1u, 2u, 3u, 7u}) {
    std::vector<float> m(parts * group), s(parts * group), acc(parts * group * d), out(group * d);
    for (std::uint32_t p = 0; p < parts; ++p)
      ASSERT_EQ(decode_partial(a, chunks * p / parts, chunks * (p + 1) / parts,
                               {&m[p * group], &s[p * group], &acc[p * group * d]}, nullptr),
                ATTNBENCH_STATUS_OK);
    merge_partials(parts, group, d, m.data(), s.data(), acc.data(), out.data(), nullptr);
    EXPECT_LT(relative_l2(out, want), 1e-5) << parts << " parts";
  }
}

// decode_layer with and without splitting, per-KV-head and per-query-head plans.
TEST(DecodeLayer, MatchesPerGroupReference) {
  const std::uint32_t hkv = 2, group = 4, d = 32, bs = 16, n = 777;
  auto f = make_layer(n, hkv, group, d, bs, 5);
  const auto& view = f.cache->layer_view(0);
  std::vector<std::uint32_t> blocks = {0, 3, 9, 48, 20};
  std::vector<attnbench_plan_entry> per_kv = {{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr},
                                              {ATTNBENCH_PLAN_BLOCKS, 5, blocks.data(), nullptr}};
  std::vector<attnbench_plan_entry> per_q;
  for (std::uint32_t q = 0; q < hkv * group; ++q) per_q.push_back(per_kv[q / group]);
  for (bool split : {false, true}) {
    for (bool query_granularity : {false, true}) {
      SCOPED_TRACE(std::string("split ") + (split ? "on" : "off") + ", per-query " + (query_granularity ? "yes" : "no"));
      const attnbench_plan plan{query_granularity ? ATTNBENCH_PLAN_PER_QUERY_HEAD : ATTNBENCH_PLAN_PER_KV_HEAD,
                                query_granularity ? hkv * group : hkv,
                                query_granularity ? per_q.data() : per_kv.data()};
      std::vector<float> out(hkv * group * d);
      layer_decode_args la;
      la.queries = f.queries.data();
      la.n_query_heads = hkv * group;
      la.scale = 0.2f;
      la.kv = &view;
      la.plan = &plan;
      la.min_parts = split ? 16 : 1;  // 16 parts over 2 traversals: 8 splits each
      la.out = out.data();
      std::vector<decode_counters> counters(plan.n_entries);
      ASSERT_EQ(decode_layer(la, counters.data()), ATTNBENCH_STATUS_OK);
      for (std::uint32_t h = 0; h < hkv; ++h) {
        decode_args a;
        a.queries = f.queries.data() + h * group * d;
        a.n_query_heads = group;
        a.head_dim = d;
        a.scale = 0.2f;
        a.kv = &view.heads[h];
        a.block_size = bs;
        a.dtype = ATTNBENCH_DTYPE_FP16;
        a.entry = &per_kv[h];
        std::vector<double> want(group * d);
        ASSERT_EQ(decode_reference(a, UINT64_MAX, want.data()), ATTNBENCH_STATUS_OK);
        std::vector<float> got(out.begin() + h * group * d, out.begin() + (h + 1) * group * d);
        EXPECT_LT(relative_l2(got, want), 1e-5) << "split " << split << " per-query " << query_granularity;
      }
      std::uint64_t visited = 0;
      for (const auto& c : counters) visited += c.blocks_visited;
      const std::uint64_t expect = (query_granularity ? group : 1) * (49 + 5);
      EXPECT_EQ(visited, expect);
    }
  }
}

// decode_layer's lse is each head's log softmax denominator over what it visited, split
// or not, per KV head or per query head; exp(lse of a plan - lse of all) is the dense mass
// the plan holds (what fidelity's recall reads).
TEST(DecodeLayer, LseIsTheLogDenominatorOfWhatWasVisited) {
  const std::uint32_t hkv = 2, group = 4, d = 32, bs = 16, n = 777;
  auto f = make_layer(n, hkv, group, d, bs, 7);
  const auto& view = f.cache->layer_view(0);
  std::vector<std::uint32_t> blocks = {0, 3, 9, 48, 20};
  const float scale = 0.2f;
  auto direct = [&](std::uint32_t qh, bool only_blocks) {
    const std::uint32_t h = qh / group;
    std::vector<float> key(d);
    double total = 0;
    for (std::uint32_t t = 0; t < n; ++t) {
      if (only_blocks && std::find(blocks.begin(), blocks.end(), t / bs) == blocks.end()) continue;
      to_fp32(ATTNBENCH_DTYPE_FP16, static_cast<const std::uint16_t*>(view.heads[h].key_blocks[t / bs]) + (t % bs) * d,
              key.data(), d);
      double x = 0;
      for (std::uint32_t i = 0; i < d; ++i) x += static_cast<double>(f.queries[qh * d + i]) * key[i];
      total += std::exp(scale * x);
    }
    return std::log(total);
  };
  auto lse_of = [&](const attnbench_plan& plan, std::uint32_t min_parts) {
    std::vector<float> out(hkv * group * d), lse(hkv * group);
    layer_decode_args la;
    la.queries = f.queries.data();
    la.n_query_heads = hkv * group;
    la.scale = scale;
    la.kv = &view;
    la.plan = &plan;
    la.min_parts = min_parts;
    la.out = out.data();
    la.lse = lse.data();
    EXPECT_EQ(decode_layer(la, nullptr), ATTNBENCH_STATUS_OK);
    return lse;
  };
  const std::vector<attnbench_plan_entry> all(hkv, {ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
  const std::vector<attnbench_plan_entry> some(hkv, {ATTNBENCH_PLAN_BLOCKS, 5, blocks.data(), nullptr});
  for (bool split : {false, true})
    for (const auto* entries : {&all, &some}) {
      const auto lse = lse_of({ATTNBENCH_PLAN_PER_KV_HEAD, hkv, entries->data()}, split ? 16 : 1);
      for (std::uint32_t qh = 0; qh < hkv * group; ++qh)
        EXPECT_NEAR(lse[qh], direct(qh, entries == &some), 1e-4) << "head " << qh << ", split " << split;
    }
  // The same through per-query-head entries; and the recall identity.
  std::vector<attnbench_plan_entry> per_q(hkv * group, {ATTNBENCH_PLAN_BLOCKS, 5, blocks.data(), nullptr});
  const auto lse = lse_of({ATTNBENCH_PLAN_PER_QUERY_HEAD, hkv * group, per_q.data()}, 16);
  for (std::uint32_t qh = 0; qh < hkv * group; ++qh) {
    const double recall = std::exp(lse[qh] - direct(qh, false));
    EXPECT_GT(recall, 0.0);
    EXPECT_LT(recall, 1.0);
    EXPECT_NEAR(recall, std::exp(direct(qh, true) - direct(qh, false)), 1e-4);
  }
}

TEST(DecodeScalarPath, HandlesHeadDimsTheSimdPathCannot) {
  // head_dim 24 is not a multiple of 16 or 8 lanes: the kernel must fall back, not fail.
  auto f = make(130, 2, 24, 16, ATTNBENCH_DTYPE_FP16, 99);
  const attnbench_plan_entry entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr};
  std::vector<float> out(48);
  decode_args a;
  a.queries = f.queries.data();
  a.n_query_heads = 2;
  a.head_dim = 24;
  a.scale = 0.2f;
  a.kv = &f.cache->layer_view(0).heads[0];
  a.block_size = 16;
  a.dtype = ATTNBENCH_DTYPE_FP16;
  a.entry = &entry;
  a.out = out.data();
  ASSERT_EQ(decode_group(a, nullptr), ATTNBENCH_STATUS_OK);
  std::vector<double> want(48);
  ASSERT_EQ(decode_reference(a, UINT64_MAX, want.data()), ATTNBENCH_STATUS_OK);
  EXPECT_LT(relative_l2(out, want), 1e-5);
}

// check_plan is the one check of a plan: every way a plan can be wrong is named, and
// decode_layer refuses the plan with that message, as a plan problem.
TEST(DecodeLayer, RefusesABadPlanWithCheckPlansMessage) {
  const std::uint32_t hkv = 2, group = 2, d = 16, bs = 16, n = 100;
  auto f = make_layer(n, hkv, group, d, bs, 9);
  const auto& view = f.cache->layer_view(0);
  const std::uint32_t twice[] = {1, 3, 1}, far_block[] = {7}, far_token[] = {100};
  struct bad_case {
    std::vector<attnbench_plan_entry> entries;
    std::uint32_t granularity;
    std::string message;
  };
  const attnbench_plan_entry all{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr};
  const std::vector<bad_case> cases = {
      {{all}, ATTNBENCH_PLAN_PER_KV_HEAD, "expected 2 entries, got 1"},
      {{all, all}, 7, "unknown granularity 7"},
      {{all, {9, 0, nullptr, nullptr}}, ATTNBENCH_PLAN_PER_KV_HEAD, "entry 1: unknown kind 9"},
      {{all, {ATTNBENCH_PLAN_TOKENS, 2, nullptr, nullptr}}, ATTNBENCH_PLAN_PER_KV_HEAD, "entry 1: indices is NULL"},
      {{{ATTNBENCH_PLAN_BLOCKS, 1, far_block, nullptr}, all}, ATTNBENCH_PLAN_PER_KV_HEAD,
       "entry 0: index 7 out of range (7 blocks)"},
      {{all, {ATTNBENCH_PLAN_TOKENS, 1, far_token, nullptr}, all, all}, ATTNBENCH_PLAN_PER_QUERY_HEAD,
       "entry 1: index 100 out of range (100 tokens)"},
      {{all, {ATTNBENCH_PLAN_TOKENS, 3, twice, nullptr}}, ATTNBENCH_PLAN_PER_KV_HEAD, "entry 1: index 1 listed twice"},
  };
  std::vector<float> out(hkv * group * d);
  std::vector<decode_counters> counters(hkv * group);
  for (const auto& c : cases) {
    const attnbench_plan plan{c.granularity, static_cast<std::uint32_t>(c.entries.size()), c.entries.data()};
    EXPECT_EQ(check_plan(plan, view, hkv * group), c.message);
    layer_decode_args la;
    la.queries = f.queries.data();
    la.n_query_heads = hkv * group;
    la.kv = &view;
    la.plan = &plan;
    la.out = out.data();
    decode_error error;
    EXPECT_EQ(decode_layer(la, counters.data(), &error), ATTNBENCH_STATUS_INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(error.where, decode_error::source::plan) << c.message;
    EXPECT_EQ(error.message, c.message);
  }
  // The same tokens listed by two entries are fine: duplicates count within an entry.
  const std::vector<attnbench_plan_entry> ok = {{ATTNBENCH_PLAN_TOKENS, 2, twice, nullptr},
                                                {ATTNBENCH_PLAN_TOKENS, 2, twice, nullptr}};
  const attnbench_plan plan{ATTNBENCH_PLAN_PER_KV_HEAD, 2, ok.data()};
  EXPECT_EQ(check_plan(plan, view, hkv * group), "");
}
