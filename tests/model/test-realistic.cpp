// The realistic head population (configs/profiles/default.json): the same K/V however
// the tokens arrive, a continuum of heads that realism measures inside the published
// ranges it was calibrated to, and its knobs checked when the profile is read.
#include "../test-helpers.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/model/mechanistic.hpp>
#include <attnbench/model/profile.hpp>
#include <attnbench/model/realism.hpp>

#include <attnbench/kernels/dtype.hpp>

#include <gtest/gtest.h>

#include <fstream>

using namespace attnbench;
using namespace attnbench::testing;

namespace {

// Every key and value of the cache, as fp16 bits.
std::vector<std::uint16_t> cache_bits(kernels::kv_cache& cache) {
  std::vector<std::uint16_t> out;
  const std::uint32_t d = cache.head_dim(), bs = cache.block_size();
  for (std::uint32_t l = 0; l < cache.n_layers(); ++l)
    for (std::uint32_t h = 0; h < cache.n_kv_heads(); ++h) {
      const auto& v = cache.layer_view(l).heads[h];
      for (std::uint64_t t = 0; t < v.n_tokens; ++t)
        for (const void* const* blocks : {v.key_blocks, v.value_blocks}) {
          const auto* row = static_cast<const std::uint16_t*>(blocks[t / bs]) + (t % bs) * d;
          out.insert(out.end(), row, row + d);
        }
    }
  return out;
}

}  // namespace

// A decode step appends K/V one token at a time; they must be the bits a prefill of the
// whole sequence writes (rotary position, context anchors and all).
TEST(RealisticModel, AppendedKeysAreThePrefillsKeys) {
  const model_profile p = load_profile(profile_file("default"));
  ASSERT_TRUE(p.realistic.has_value());
  const mechanistic_model m(p, 3);
  const auto task = tasks::make_task("niah_single_2", nlohmann::json::object());
  const auto s = task->make_sample(9, 1024);
  kernels::kv_cache whole(p.n_layers, p.n_kv_heads, p.head_dim, 64, ATTNBENCH_DTYPE_FP16);
  m.prefill(s.prompt, whole);
  kernels::kv_cache parts(p.n_layers, p.n_kv_heads, p.head_dim, 64, ATTNBENCH_DTYPE_FP16);
  const std::span<const tasks::token> all(s.prompt);
  m.prefill(all.first(700), parts);
  std::size_t n = 700;
  for (const std::size_t step : {1, 1, 37, 5, 64, 1}) {  // as decode steps and follow-up prompts arrive
    m.append_from(all.first(n + step), n, parts);
    n += step;
  }
  m.append_from(all, n, parts);
  EXPECT_EQ(cache_bits(whole), cache_bits(parts));
}

// realism at 4K: what the calibration at 16K and 64K was made to show (docs/model.md),
// in the direction each statistic must move, with margins for a shorter context.
TEST(RealisticModel, HeadsFormAContinuumInsideThePublishedRanges) {
  const mechanistic_model m(load_profile(profile_file("default")), 1);
  const auto task = tasks::make_task("niah_single_2", nlohmann::json::object());
  realism_request req;
  req.context_lengths = {4096};
  req.samples = 1;
  req.max_steps = kSanitized ? 3 : 6;
  const auto r = measure_realism(m, *task, "niah_single_2", req);
  const auto& s = r["lengths"][0]["statistics"];
  // A few query heads copy the needle: under 5%, and more than none.
  EXPECT_GT(s["retrieval_heads"]["value"].get<double>(), 0.0);
  EXPECT_LE(s["retrieval_heads"]["value"].get<double>(), 0.05);
  // Sink mass is a continuum, not two values.
  const auto& q = s["sink_heads"]["first4_mass_quartiles"];
  EXPECT_LT(q[0].get<double>(), 0.3);
  EXPECT_GT(q[4].get<double>(), 0.9);
  EXPECT_GT(q[3].get<double>() - q[1].get<double>(), 0.05);
  // Consecutive queries are similar but not equal; copying heads are the least predictable.
  EXPECT_GT(s["query_cosine"]["value"].get<double>(), 0.85);
  EXPECT_LT(s["query_cosine"]["value"].get<double>(), 0.99);
  EXPECT_LT(s["query_cosine"]["by_role"]["retrieval"].get<double>(), s["query_cosine"]["by_role"]["sink"].get<double>());
  // Long tails: some heads spread a fifth or more of their mass past their top 20%.
  EXPECT_GT(s["top20_mass"]["value"].get<double>(), 0.1);
  // ... yet each head's top 2% answers the needle as dense attention does.
  EXPECT_NEAR(s["top2pct_quality"]["value"].get<double>(), 1.0, 1e-9);
  EXPECT_GT(s["top2pct_quality"]["dense_score"].get<double>(), 99.0);
  // Logit scales differ by two orders of magnitude and more across heads.
  EXPECT_GT(s["logit_l1_spread"]["value"].get<double>(), 50.0);
  // Neighbouring keys are alike, so Quest's page bounds rule most pages out.
  EXPECT_GT(s["neighbour_keys"]["value"].get<double>(), 0.5);
  EXPECT_LT(s["neighbour_keys"]["pages_open"]["value"].get<double>(), 0.6);
}

TEST(RealisticModel, BadKnobsNameTheFileAndPath) {
  const auto dir = scratch("realistic-profile");
  auto expect = [&](const std::string& realistic, const std::string& pointer, const std::string& words) {
    std::ofstream(dir / "p.json") << R"({"n_layers": 2, "n_query_heads": 8, "n_kv_heads": 2, "head_dim": 64, )"
                                  << R"("roles": ["retrieval", "sink"], "realistic": )" << realistic << "}";
    try {
      load_profile(dir / "p.json");
      ADD_FAILURE() << realistic;
    } catch (const config_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("p.json: " + pointer), std::string::npos) << what;
      EXPECT_NE(what.find(words), std::string::npos) << what;
    }
  };
  expect(R"({"sink_logit": [9, 3]})", "/realistic/sink_logit", "low is above high");
  expect(R"({"noise_logit": [1]})", "/realistic/noise_logit", "[low, high]");
  expect(R"({"sink_pairs": 40})", "/realistic/sink_pairs", "");
  expect(R"({"retrieval_queries": 5})", "/realistic/retrieval_queries", "");
  expect(R"({"rope_low_freq_factor": 4, "rope_high_freq_factor": 2})", "/realistic/rope_high_freq_factor", "above");
  expect(R"({"sink_logit_typo": 1})", "/realistic", "sink_logit_typo");
  expect(R"([1, 2])", "/realistic", "");
}
