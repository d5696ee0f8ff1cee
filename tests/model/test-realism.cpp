// attnbench realism's measurements: each statistic sees what the model's heads do, and
// the verdicts follow the ranges.
#include "../test-helpers.hpp"

#include <attnbench/model/mechanistic.hpp>
#include <attnbench/model/profile.hpp>
#include <attnbench/model/realism.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace attnbench;
using namespace attnbench::testing;

namespace {

const nlohmann::ordered_json& measured_sharp() {
  static const nlohmann::ordered_json r = [] {
    const mechanistic_model m(load_profile(profile_file("sharp")), 1);
    const auto task = tasks::make_task("niah_single_2", nlohmann::json::object());
    realism_request req;
    req.context_lengths = {2048};
    req.samples = 1;
    req.max_steps = kSanitized ? 4 : 8;
    return measure_realism(m, *task, "niah_single_2", req);
  }();
  return r;
}

}  // namespace

TEST(Realism, VerdictFollowsTheRange) {
  EXPECT_EQ(realism_verdict(0.95, 0.9, 0.975), "inside");
  EXPECT_EQ(realism_verdict(0.9, 0.9, 0.975), "inside");
  EXPECT_EQ(realism_verdict(0.85, 0.9, 0.975), "near");     // within a tenth of 0.9
  EXPECT_EQ(realism_verdict(0.5, 0.9, 0.975), "outside");
  EXPECT_EQ(realism_verdict(1.05, 0.9, 0.975), "near");
  EXPECT_EQ(realism_verdict(1.2, 0.9, 0.975), "outside");
  EXPECT_EQ(realism_verdict(2.0, 0.95, std::numeric_limits<double>::infinity()), "inside");
  EXPECT_EQ(realism_verdict(0.3, std::numeric_limits<double>::quiet_NaN(), 0), "reported");
}

// The sharp profile's heads are what docs/model.md says they are, and realism sees it:
// its retrieval heads copy the needle, its sink heads rest on <bos>, and an oracle that
// keeps each head's top 2% loses nothing on a needle.
TEST(Realism, SeesTheSharpProfilesHeads) {
  const auto& r = measured_sharp();
  ASSERT_EQ(r["lengths"].size(), 1u);
  const auto& s = r["lengths"][0]["statistics"];
  EXPECT_GT(s["retrieval_heads"]["copy_steps"].get<int>(), 0);
  // Half of the KV heads are retrieval heads: far above Wu et al.'s 5%.
  EXPECT_GT(s["retrieval_heads"]["by_role"]["retrieval"].get<double>(), 0.5);
  EXPECT_EQ(s["retrieval_heads"]["by_role"]["sink"].get<double>(), 0.0);
  EXPECT_GT(s["retrieval_heads"]["value"].get<double>(), 0.25);
  EXPECT_GT(s["sink_heads"]["by_role"]["sink"].get<double>(), 0.99);  // every sink head beyond layer 1
  EXPECT_EQ(s["sink_heads"]["by_role"]["retrieval"].get<double>(), 0.0);
  // One token holds each retrieval head's mass: the top 20% hold nearly all of it.
  EXPECT_EQ(s["top20_mass"]["value"].get<double>(), 0.0);  // no head as spread as 0.8
  EXPECT_GT(s["top20_mass"]["median"].get<double>(), 0.9);
  EXPECT_NEAR(s["top2pct_quality"]["value"].get<double>(), 1.0, 1e-9);
  EXPECT_GT(s["top2pct_quality"]["dense_score"].get<double>(), 99.0);
  // Retrieval queries change with every copied token; sink queries barely move.
  EXPECT_LT(s["query_cosine"]["by_role"]["retrieval"].get<double>(), 0.6);
  EXPECT_GT(s["query_cosine"]["by_role"]["sink"].get<double>(), 0.9);
  EXPECT_GT(s["logit_l1_spread"]["value"].get<double>(), 1.0);
  // Local keys are rotary phases of one vector: neighbours nearly equal. Sink-head keys
  // are random embeddings: unrelated.
  EXPECT_GT(s["neighbour_keys"]["by_role"]["local"].get<double>(), 0.9);
  EXPECT_LT(std::fabs(s["neighbour_keys"]["by_role"]["sink"].get<double>()), 0.2);
  const double open = s["neighbour_keys"]["pages_open"]["value"].get<double>();
  EXPECT_GE(open, 0.0);
  EXPECT_LE(open, 1.0);
  for (const auto& h : r["lengths"][0]["heads"]) {
    EXPECT_GE(h["first4_mass"].get<double>(), 0.0);
    EXPECT_LE(h["first4_mass"].get<double>(), 1.0 + 1e-9);
    EXPECT_GE(h["top20_mass"].get<double>(), 0.2 - 1e-9);  // at least the top 20%'s fair share
    EXPECT_LE(h["retrieval_score"].get<double>(), 1.0);
  }
}

TEST(Realism, RowsCarryRangesSourcesAndVerdicts) {
  const auto& r = measured_sharp();
  ASSERT_EQ(r["rows"].size(), 8u);
  for (const auto& row : r["rows"]) {
    EXPECT_FALSE(row["source"].get<std::string>().empty());
    ASSERT_TRUE(row["verdicts"].contains("2048")) << row["statistic"];
  }
  EXPECT_EQ(r["rows"][1]["statistic"], "retrieval_heads");
  EXPECT_EQ(r["rows"][1]["verdicts"]["2048"], "outside");
  EXPECT_EQ(r["rows"][7]["verdicts"]["2048"], "reported");
  const std::string md = realism_markdown(r);
  EXPECT_NE(md.find("| retrieval_heads |"), std::string::npos);
  EXPECT_NE(md.find("Wu et al."), std::string::npos);
}
