// The mechanistic model on its own: deterministic K/V, heads that do what their roles
// say, and head statistics that tell the roles apart. (Its answers through the run
// engine are tests/run/test-engine.cpp's.)
#include "../test-helpers.hpp"

#include <attnbench/model/head-stats.hpp>
#include <attnbench/model/mechanistic.hpp>
#include <attnbench/model/profile.hpp>

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

using namespace attnbench;
using namespace attnbench::testing;
using tasks::vocabulary;

namespace {

std::vector<float> dump_cache(kernels::kv_cache& cache) {
  std::vector<float> out;
  const std::uint32_t d = cache.head_dim();
  for (std::uint32_t l = 0; l < cache.n_layers(); ++l)
    for (std::uint32_t h = 0; h < cache.n_kv_heads(); ++h) {
      const auto& v = cache.layer_view(l).heads[h];
      std::vector<float> row(d);
      for (std::uint64_t t = 0; t < v.n_tokens; ++t) {
        kernels::to_fp32(cache.dtype(),
                         static_cast<const std::uint8_t*>(v.key_blocks[t / cache.block_size()]) +
                             (t % cache.block_size()) * d * 2,
                         row.data(), d);
        out.insert(out.end(), row.begin(), row.end());
      }
    }
  return out;
}

}  // namespace

TEST(SyntheticModel, SameSeedSameKeysAndValues) {
  const auto task = tasks::make_task("niah_single_1", nlohmann::json::object());
  const auto s = task->make_sample(5, 1024);
  auto run = [&](std::uint64_t seed) {
    mechanistic_model m(load_profile(profile_file("tiny")), seed);
    kernels::kv_cache cache(2, 2, 64, 64, ATTNBENCH_DTYPE_FP16);
    m.prefill(s.prompt, cache);
    return dump_cache(cache);
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}





// The sharp population's sink heads put most of their mass on the first token, whose
// value is small: without it their outputs change by far more than their own size.
// Retrieval heads that found the needle barely notice.
TEST(SyntheticModel, DroppingTheFirstTokenChangesSinkHeadsMarkedly) {
  const model_profile p = load_profile(profile_file("sharp"));
  const mechanistic_model m(p, 1);
  const auto task = tasks::make_task("niah_single_1", nlohmann::json::object());
  const auto s = task->make_sample(3, 4096);
  kernels::kv_cache cache(p.n_layers, p.n_kv_heads, p.head_dim, 64, ATTNBENCH_DTYPE_FP16);
  m.prefill(s.prompt, cache);
  const std::uint32_t d = p.head_dim, hq = p.n_query_heads, group = hq / p.n_kv_heads;
  std::vector<std::uint32_t> rest(s.prompt.size() - 1);
  std::iota(rest.begin(), rest.end(), 1u);
  std::vector<float> q(static_cast<std::size_t>(hq) * d);
  const std::uint32_t layer = 0;
  m.queries(layer, s.prompt, q.data());
  auto attend = [&](bool drop_first) {
    std::vector<attnbench_plan_entry> entries(p.n_kv_heads);
    for (auto& e : entries)
      e = drop_first ? attnbench_plan_entry{ATTNBENCH_PLAN_TOKENS, static_cast<std::uint32_t>(rest.size()), rest.data(),
                                            nullptr}
                     : attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr};
    const attnbench_plan plan{ATTNBENCH_PLAN_PER_KV_HEAD, p.n_kv_heads, entries.data()};
    std::vector<float> out(q.size());
    std::vector<kernels::decode_counters> counters(hq);
    kernels::layer_decode_args a;
    a.queries = q.data();
    a.n_query_heads = hq;
    a.scale = m.scale();
    a.kv = &cache.layer_view(layer);
    a.plan = &plan;
    a.out = out.data();
    EXPECT_EQ(kernels::decode_layer(a, counters.data(), nullptr), ATTNBENCH_STATUS_OK);
    return out;
  };
  const auto full = attend(false), dropped = attend(true);
  auto relative_change = [&](std::uint32_t qh) {
    double diff = 0, norm = 0;
    for (std::uint32_t i = 0; i < d; ++i) {
      diff += std::pow(full[qh * d + i] - dropped[qh * d + i], 2);
      norm += std::pow(full[qh * d + i], 2);
    }
    return std::sqrt(diff / norm);
  };
  int sinks = 0, retrievals = 0;
  for (std::uint32_t qh = 0; qh < hq; ++qh) {
    const head_role role = p.roles[layer][qh / group];
    if (role == head_role::sink) {
      EXPECT_GT(relative_change(qh), 1.0) << "query head " << qh;
      ++sinks;
    } else if (role == head_role::retrieval) {
      EXPECT_LT(relative_change(qh), 0.05) << "query head " << qh;
      ++retrievals;
    }
  }
  EXPECT_GT(sinks, 0);
  EXPECT_GT(retrievals, 0);
}

// On the sharp population the statistics tell the roles apart the way DESIGN.md section 6
// describes them.
TEST(SyntheticModel, HeadStatisticsSeparateTheRoles) {
  const mechanistic_model m(load_profile(profile_file("sharp")), 1);
  const auto task = tasks::make_task("niah_single_1", nlohmann::json::object());
  stats_request req;
  req.context_length = 2048;
  req.samples = 1;
  req.steps = 3;
  const auto s = head_statistics(m, *task, req);
  const auto& roles = s["roles"];
  ASSERT_TRUE(roles.contains("sink") && roles.contains("retrieval") && roles.contains("local"));
  EXPECT_GT(roles["sink"]["first_token_mass"].get<double>(), 0.5);
  EXPECT_LT(roles["retrieval"]["first_token_mass"].get<double>(), 0.1);  // the needle is found
  EXPECT_LE(roles["retrieval"]["tokens_for_90pct"].get<double>(), 2.0);
  EXPECT_GT(roles["local"]["tokens_for_90pct"].get<double>(), 4.0);  // several recent tokens
  EXPECT_LT(roles["local"]["tokens_for_90pct"].get<double>(), 1000.0);
  EXPECT_EQ(s["heads"].size(), 8u * 32u);
  for (const auto& h : s["heads"]) {
    EXPECT_GE(h["first_token_mass"].get<double>(), 0.0);
    EXPECT_LE(h["first_token_mass"].get<double>(), 1.0 + 1e-9);
    EXPECT_GE(h["tokens_for_90pct"].get<double>(), 1.0);
  }
}
