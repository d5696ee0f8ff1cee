// Attention fidelity (metrics.fidelity): recall and output error against dense attention
// over the sequence's whole cache, per layer and head role.
#include "harness-fixture.hpp"

#include <attnbench/run/metrics.hpp>

#include <gtest/gtest.h>

#include <vector>

using namespace attnbench;
using attnbench::testing::harness_fixture;

namespace {

// Two samples of `task_name` at `length`, measured together.
nlohmann::ordered_json run_metrics(harness_fixture& h, std::uint32_t length, bool fidelity,
                                   const std::string& task_name = "niah_single_1",
                                   const terminator_instance* terminator = nullptr) {
  h.set_fidelity(fidelity);
  const auto task = tasks::make_task(task_name, nlohmann::json::object());
  for (int i = 0; i < 2; ++i) h.run(*task, task->make_sample(60 + i, length), terminator, i > 0);
  return cell_metrics(h.totals(), 0.0);
}

double recall(const nlohmann::ordered_json& m) { return m["attention_recall"].get<double>(); }
double error(const nlohmann::ordered_json& m) { return m["output_error"].get<double>(); }

}  // namespace

// Dense attention against itself: every query head visits all of its mass and its output
// is dense's, in every layer and role; the figures are there only when asked.
TEST(Fidelity, DenseIsExact) {
  harness_fixture h("default");
  EXPECT_FALSE(run_metrics(h, 2048, false).contains("attention_recall"));
  const auto m = run_metrics(h, 2048, true);
  ASSERT_TRUE(m.contains("attention_recall")) << m.dump();
  EXPECT_NEAR(recall(m), 1.0, 1e-5);
  EXPECT_NEAR(error(m), 0.0, 1e-6);
  ASSERT_EQ(m["attention_recall_by_layer"].size(), 8u);
  for (const auto& x : m["attention_recall_by_layer"]) EXPECT_NEAR(x.get<double>(), 1.0, 1e-5);
  for (const auto& x : m["output_error_by_layer"]) EXPECT_NEAR(x.get<double>(), 0.0, 1e-6);
  for (const char* role : {"sink", "local", "retrieval", "aggregation"})
    EXPECT_TRUE(m["attention_recall_by_role"].contains(role)) << role;
}

// Quest plans per query head: with a budget above the context it visits everything
// (recall 1, output dense's); with 256 tokens it misses mass and its output moves.
TEST(Fidelity, PerQueryHeadPlansCountEachQueryHeadsOwnTokens) {
  harness_fixture all("default", "quest", {{"budget", 8192}});
  const auto full = run_metrics(all, 2048, true);
  EXPECT_NEAR(recall(full), 1.0, 1e-5) << full.dump();
  EXPECT_NEAR(error(full), 0.0, 1e-5) << full.dump();
  harness_fixture few("default", "quest", {{"budget", 256}});
  const auto part = run_metrics(few, 2048, true);
  EXPECT_LT(recall(part), 0.99) << part.dump();
  EXPECT_GT(recall(part), 0.2) << part.dump();
  EXPECT_GT(error(part), 0.01) << part.dump();
}

// A terminator that stops every traversal after one block leaves the rest of the mass
// unvisited, and the recall says so.
TEST(Fidelity, ATerminatorsStopCountsAsMissedMass) {
  harness_fixture h("tiny");
  const auto lib = h.registry().find("stop_after", ATTNBENCH_PLUGIN_TERMINATOR);
  terminator_instance stop(lib, {{"blocks", 1}}, model_info(h.config(), h.model().profile()));
  const auto m = run_metrics(h, 2048, true, "niah_single_1", &stop);
  EXPECT_LT(recall(m), 0.9) << m.dump();
  EXPECT_GT(error(m), 0.01) << m.dump();
}

// StreamingLLM keeps the first tokens and a recent window, by planning (evict false) or
// by evicting the rest at prefill (evict true). Either way it visits the same tokens and
// misses the middle's mass, and the two measure alike: with eviction, dense attention
// runs over a second cache that the model keeps whole, through continuations (the
// multi-value needle's truncations) and follow-ups (vt's hops).
TEST(Fidelity, StreamingMissesTheMiddleWhetherItPlansOrEvicts) {
  // Under the sanitizers, the two tasks that truncate and follow up.
  const std::vector<const char*> tasks = attnbench::testing::kSanitized
                                             ? std::vector<const char*>{"niah_multivalue", "vt"}
                                             : std::vector<const char*>{"niah_single_1", "niah_multivalue", "vt"};
  for (const char* task : tasks) {
    nlohmann::ordered_json by[2];
    for (bool evict : {false, true}) {
      harness_fixture h("default", "streaming", {{"n_sink", 4}, {"window", 508}, {"evict", evict}});
      by[evict] = run_metrics(h, 4096, true, task);
      const auto& m = by[evict];
      EXPECT_GT(recall(m), 0.05) << task << m.dump();
      EXPECT_LT(recall(m), 0.95) << task << m.dump();
      EXPECT_GT(error(m), 0.01) << task << m.dump();
      // The first two layers have no sink (plain_layers 2): their mass is spread, and the
      // window holds less of it than in the layers whose heads rest on the first tokens.
      EXPECT_LT(m["attention_recall_by_layer"][0].get<double>(), m["attention_recall_by_layer"][4].get<double>());
    }
    EXPECT_NEAR(recall(by[0]), recall(by[1]), 1e-6) << task;
    EXPECT_NEAR(error(by[0]), error(by[1]), 1e-6) << task;
  }
}
