// The synthetic model: deterministic, and its answers come from attention: change the
// needle and the answer changes, remove it and the task fails, stop the traversal
// early (a terminator) and the answer is lost.
#include "test-helpers.hpp"

#include "stats.hpp"

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
    synthetic_model m(profile("tiny"), seed);
    kernels::kv_cache cache(2, 2, 64, 64, ATTNBENCH_DTYPE_FP16);
    m.prefill(s.prompt, cache);
    return dump_cache(cache);
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

TEST(SyntheticModel, DenseAnswersTheNeedleOnTheTinyProfile) {
  harness_fixture h("tiny");
  const auto task = tasks::make_task("niah_single_1", nlohmann::json::object());
  double total = 0;
  for (int i = 0; i < 10; ++i) total += h.run(*task, task->make_sample(100 + i, 2048))["score"].get<double>();
  EXPECT_GE(total / 10, 90.0);
  EXPECT_EQ(h.totals().blocks_planned, h.totals().blocks_visited);
}

TEST(SyntheticModel, ChangingTheNeedleChangesTheAnswer) {
  harness_fixture h("tiny");
  const auto task = tasks::make_task("niah_single_1", nlohmann::json::object());
  const auto& v = vocabulary::standard();
  auto s = task->make_sample(7, 2048);
  const auto original = h.run(*task, s);
  ASSERT_EQ(original["score"].get<double>(), 100.0) << original.dump();

  // Rewrite the value's digits inside the needle only; the question is unchanged.
  const std::string new_value = "3141592";
  ASSERT_NE(new_value, s.references[0]);
  const auto needle = s.info["needle_position"].get<std::size_t>();
  std::size_t colon = needle;
  while (v.text(s.prompt[colon]) != ":") ++colon;
  for (std::size_t i = 0; i < new_value.size(); ++i) s.prompt[colon + 1 + i] = v.id(std::string(1, new_value[i]));
  const auto changed = h.run(*task, s);
  EXPECT_NE(changed["prediction"].get<std::string>().find(new_value), std::string::npos) << changed.dump();
  EXPECT_EQ(task->score(changed["prediction"].get<std::string>(), s.references), 0.0);
}

TEST(SyntheticModel, RemovingTheNeedleFailsTheTask) {
  harness_fixture h("tiny");
  const auto task = tasks::make_task("niah_single_1", nlohmann::json::object());
  const auto& v = vocabulary::standard();
  auto s = task->make_sample(8, 2048);
  const auto needle = s.info["needle_position"].get<std::size_t>();
  const auto n = s.info["needles"][0]["tokens"].get<std::size_t>();
  const auto filler = v.tokenize("the grass is green . the sky is blue . the sun is yellow . here we go .");
  for (std::size_t i = 0; i < n; ++i) s.prompt[needle + i] = filler[i % filler.size()];
  const auto row = h.run(*task, s);
  EXPECT_EQ(row["score"].get<double>(), 0.0) << row.dump();
}

TEST(SyntheticModel, TerminatorThatStopsAtOnceLosesTheNeedle) {
  harness_fixture h("tiny");
  const auto lib = h.registry().find("stop_after", ATTNBENCH_PLUGIN_TERMINATOR);
  terminator_instance stop(lib, {{"blocks", 1}}, model_info(h.config(), h.model().profile()));
  const auto task = tasks::make_task("niah_single_1", {{"depths", {50}}});
  const auto s = task->make_sample(9, 2048);
  const auto row = h.run(*task, s, &stop);
  EXPECT_EQ(row["score"].get<double>(), 0.0) << row.dump();
  // One block per traversal (layer x KV head x step), out of at least 32 planned.
  const auto& p = h.model().profile();
  EXPECT_EQ(h.totals().blocks_visited, h.totals().steps * p.n_layers * p.n_kv_heads);
  EXPECT_GE(h.totals().blocks_planned, 32 * h.totals().blocks_visited);
}

// Dense attention scores at least 95 on each of RULER's 13 tasks at 4K and 8K on the
// default profile (a few seeded samples per task keep the test short). One test per task,
// so that they run in parallel and a slow build (ASan) stays within the timeout.
class DenseRulerTask : public ::testing::TestWithParam<const char*> {};

TEST_P(DenseRulerTask, ScoresAtLeast95At4KAnd8K) {
  const std::string name = GetParam();
  harness_fixture h("default");
  const auto task = tasks::make_task(name, nlohmann::json::object());
  for (std::uint32_t n : {4096u, 8192u}) {
    double total = 0;
    std::string misses;
    const int samples = n == 4096 ? 4 : 2;
    for (int i = 0; i < samples; ++i) {
      const auto row = h.run(*task, task->make_sample(500 + i, n));
      total += row["score"].get<double>();
      if (row["score"].get<double>() < 100.0) misses.append("\n").append(row.dump());
    }
    EXPECT_GE(total / samples, 95.0) << name << " at " << n << misses;
  }
}

INSTANTIATE_TEST_SUITE_P(SyntheticModel, DenseRulerTask,
                         ::testing::Values("niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1",
                                           "niah_multikey_2", "niah_multikey_3", "niah_multivalue", "niah_multiquery",
                                           "vt", "cwe", "fwe", "qa_1", "qa_2"),
                         [](const auto& info) { return std::string(info.param); });

// RULER-style window: a policy that keeps the first block and the last 8 blocks answers a
// needle inside them and loses one in between.
TEST(SyntheticModel, SinkAndWindowPolicyFindsOnlyNeedlesItKeeps) {
  harness_fixture h("tiny", "sink_window", {{"sink_blocks", 1}, {"window_blocks", 8}});
  for (const auto& [depth, inside] : std::vector<std::pair<double, bool>>{{0, true}, {50, false}, {100, true}}) {
    const auto task = tasks::make_task("niah_single_1", {{"depths", {depth}}});
    for (int i = 0; i < 3; ++i) {
      const auto s = task->make_sample(40 + i, 4096);
      const auto row = h.run(*task, s);
      const auto position = s.info["needle_position"].get<std::size_t>();
      EXPECT_EQ(position < 64 || position >= 4096 - 8 * 64, inside) << position;
      EXPECT_EQ(row["score"].get<double>(), inside ? 100.0 : 0.0) << "depth " << depth << ": " << row.dump();
    }
  }
}

// Sink heads put most of their mass on the first token, whose value is small: without it
// their outputs change by far more than their own size. Retrieval heads that found the
// needle barely notice.
TEST(SyntheticModel, DroppingTheFirstTokenChangesSinkHeadsMarkedly) {
  const model_profile p = profile("default");
  const synthetic_model m(p, 1);
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

// The statistics tell the roles apart the way DESIGN.md section 6 describes them.
TEST(SyntheticModel, HeadStatisticsSeparateTheRoles) {
  const synthetic_model m(profile("default"), 1);
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
