// Attention fidelity (metrics.fidelity): recall and output error against dense attention
// over the prompt's whole cache, per layer and head role.
#include "harness-fixture.hpp"

#include <attnbench/run/metrics.hpp>

#include <gtest/gtest.h>

using namespace attnbench;
using attnbench::testing::harness_fixture;

namespace {

nlohmann::ordered_json run_metrics(harness_fixture& h, std::uint32_t length, bool fidelity) {
  h.set_fidelity(fidelity);
  const auto task = tasks::make_task("niah_single_1", nlohmann::json::object());
  for (int i = 0; i < 2; ++i) h.run(*task, task->make_sample(60 + i, length));
  return cell_metrics(h.totals(), 0.0);
}

}  // namespace

// Dense attention against itself: every query head visits all of its mass and its output
// is dense's, in every layer and role; the block is there only when asked.
TEST(Fidelity, DenseIsExact) {
  harness_fixture h("default");
  EXPECT_FALSE(run_metrics(h, 2048, false).contains("attention_recall"));
  const auto m = run_metrics(h, 2048, true);
  ASSERT_TRUE(m.contains("attention_recall")) << m.dump();
  EXPECT_NEAR(m["attention_recall"].get<double>(), 1.0, 1e-5);
  EXPECT_NEAR(m["output_error"].get<double>(), 0.0, 1e-6);
  ASSERT_EQ(m["attention_recall_by_layer"].size(), 8u);
  for (const auto& x : m["attention_recall_by_layer"]) EXPECT_NEAR(x.get<double>(), 1.0, 1e-5);
  for (const auto& x : m["output_error_by_layer"]) EXPECT_NEAR(x.get<double>(), 0.0, 1e-6);
  for (const char* role : {"sink", "local", "retrieval", "aggregation"})
    EXPECT_TRUE(m["attention_recall_by_role"].contains(role)) << role;
}

// StreamingLLM keeps the first tokens and a recent window, by planning (evict false) or
// by evicting the rest at prefill (evict true). Either way it visits the same tokens and
// misses the middle's mass, and the two measure alike: with eviction, dense attention
// runs over a second cache that still holds the whole prompt.
TEST(Fidelity, StreamingMissesTheMiddleWhetherItPlansOrEvicts) {
  nlohmann::ordered_json by[2];
  for (bool evict : {false, true}) {
    harness_fixture h("default", "streaming", {{"n_sink", 4}, {"window", 508}, {"evict", evict}});
    by[evict] = run_metrics(h, 4096, true);
    const auto& m = by[evict];
    EXPECT_GT(m["attention_recall"].get<double>(), 0.05) << m.dump();
    EXPECT_LT(m["attention_recall"].get<double>(), 0.95) << m.dump();
    EXPECT_GT(m["output_error"].get<double>(), 0.01) << m.dump();
    // The first two layers have no sink (plain_layers 2): their mass is spread, and the
    // window holds less of it than in the layers whose heads rest on the first tokens.
    EXPECT_LT(m["attention_recall_by_layer"][0].get<double>(), m["attention_recall_by_layer"][4].get<double>());
  }
  EXPECT_NEAR(by[0]["attention_recall"].get<double>(), by[1]["attention_recall"].get<double>(), 1e-6);
  EXPECT_NEAR(by[0]["output_error"].get<double>(), by[1]["output_error"].get<double>(), 1e-6);
}
