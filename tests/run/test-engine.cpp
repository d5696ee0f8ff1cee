// The mechanistic model's answers through the run engine: they come from attention.
// Change the needle and the answer changes, remove it and the task fails, stop the
// traversal early (a terminator) and the answer is lost.
#include "harness-fixture.hpp"

#include <attnbench/tasks/task.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <gtest/gtest.h>

using namespace attnbench;
using namespace attnbench::testing;
using tasks::vocabulary;

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
  // Under the sanitizers: 4K only, two samples.
  for (std::uint32_t n : {4096u, 8192u}) {
    if (attnbench::testing::kSanitized && n > 4096) break;
    double total = 0;
    std::string misses;
    const int samples = attnbench::testing::kSanitized ? 2 : n == 4096 ? 4 : 2;
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

