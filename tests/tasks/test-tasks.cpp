#include <attnbench/tasks/scoring.hpp>
#include <attnbench/tasks/task.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

using namespace attnbench::tasks;

TEST(Vocabulary, TokenizeAndDetokenizeRoundTrip) {
  const auto& v = vocabulary::standard();
  const std::string text = "the special magic number for " + v.text(v.pseudo_words()[5]) + " is: 1234567.";
  const auto tokens = v.tokenize(text);
  EXPECT_EQ(v.detokenize(tokens), text);
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), v.id("7")), 1);
  EXPECT_THROW(v.tokenize("qqqqqq"), std::out_of_range);
  EXPECT_GE(v.pseudo_words().size(), 3000u);
}

TEST(Vocabulary, IsTheSameEveryTime) {
  // The pseudo-word list is generated from a fixed seed; pin a few entries so a change
  // to the generator (which would change every sample) is noticed.
  const auto& v = vocabulary::standard();
  std::set<std::string> unique;
  for (auto t : v.pseudo_words()) unique.insert(v.text(t));
  EXPECT_EQ(unique.size(), v.pseudo_words().size());
  EXPECT_EQ(v.text(v.bos()), "<bos>");
}

TEST(Scoring, RulerStringMatch) {
  EXPECT_EQ(string_match_all("The value is 1234567.", {"1234567"}), 100.0);
  EXPECT_EQ(string_match_all("1234567 and 42", {"1234567", "43"}), 50.0);
  EXPECT_EQ(string_match_all("ABC", {"abc"}), 100.0);
  EXPECT_EQ(string_match_all("", {"x"}), 0.0);
  EXPECT_EQ(string_match_part("nothing here", {"a1", "here"}), 100.0);
  EXPECT_EQ(string_match_part("nothing", {"a1", "b2"}), 0.0);
}

TEST(NiahSingle1, SampleHasExactLengthNeedleAndIsDeterministic) {
  const auto task = make_task("niah_single_1", nlohmann::json::object());
  const auto& v = vocabulary::standard();
  for (std::uint32_t n : {task->min_context_length(), 1000u, 4096u, 5003u}) {
    const sample a = task->make_sample(42, n);
    const sample b = task->make_sample(42, n);
    EXPECT_EQ(a.prompt.size(), n);
    EXPECT_EQ(a.prompt, b.prompt);
    EXPECT_EQ(a.prompt.front(), v.bos());
    ASSERT_EQ(a.references.size(), 1u);
    EXPECT_EQ(a.references[0].size(), 7u);
    const std::string text = v.detokenize(a.prompt);
    EXPECT_NE(text.find("is: " + a.references[0] + "."), std::string::npos);
    EXPECT_EQ(text.find(a.references[0]), text.rfind(a.references[0]));  // the value occurs once
    const auto pos = a.info["needle_position"].get<std::size_t>();
    EXPECT_EQ(v.text(a.prompt[pos]), "one");
  }
  EXPECT_NE(task->make_sample(1, 4096).prompt, task->make_sample(2, 4096).prompt);
  EXPECT_THROW(task->make_sample(1, 10), task_error);
}

TEST(NiahSingle1, DepthsParameterPlacesTheNeedle) {
  const auto shallow = make_task("niah_single_1", {{"depths", {0}}});
  const auto deep = make_task("niah_single_1", {{"depths", {100}}});
  const auto s = shallow->make_sample(3, 4096), d = deep->make_sample(3, 4096);
  EXPECT_LT(s.info["needle_position"].get<int>(), 100);
  EXPECT_GT(d.info["needle_position"].get<int>(), 3900);
  EXPECT_THROW(make_task("niah_single_1", {{"depths", {101}}}), task_params_error);
  EXPECT_THROW(make_task("niah_single_1", {{"colour", 1}}), task_params_error);
  EXPECT_THROW(make_task("no_such_task", nlohmann::json::object()), std::out_of_range);
}

// RULER's needle counts as params: a multi-query sample with 12 needles asks 6 keys in
// turn, each answer the value of the key its prefix names.
TEST(RulerNiah, NeedleCountParams) {
  const auto& v = vocabulary::standard();
  const auto task = make_task("niah_multiquery", {{"num_needle_k", 12}, {"num_needle_q", 6}});
  const sample s = task->make_sample(5, 1024, sample_domain::training);
  ASSERT_EQ(s.info["needles"].size(), 12u);
  ASSERT_EQ(s.references.size(), 6u);
  ASSERT_EQ(s.follow_ups.size(), 5u);
  EXPECT_EQ(s.prompt.size(), 1024u);
  for (std::size_t q = 0; q < 6; ++q) {
    EXPECT_EQ(s.info["needles"][q]["value"], s.references[q]);
    if (q == 0) continue;
    const std::string key = s.info["needles"][q]["key"];
    const std::string frame = v.detokenize(v.tokenize("for " + key + " is :"));
    EXPECT_NE(v.detokenize(s.follow_ups[q - 1]).find(frame), std::string::npos) << frame;
  }
  EXPECT_THROW(make_task("niah_multiquery", {{"num_needle_q", 5}}), task_params_error);  // 4 keys
  EXPECT_THROW(make_task("niah_multivalue", {{"num_needle_k", 2}, {"num_needle_q", 2}}), task_params_error);
  EXPECT_THROW(make_task("niah_single_1", {{"num_needle_k", 0}}), task_params_error);
  EXPECT_THROW(make_task("niah_single_1", {{"num_needle_k", 65}}), task_params_error);
  EXPECT_THROW(make_task("niah_multikey_1", {{"num_needle_k", 16}, {"value_digits", 1}}), task_params_error);
  EXPECT_EQ(make_task("niah_multikey_1", {{"num_needle_k", 8}})->make_sample(1, 2048).info["needles"].size(), 8u);
}

// Every RULER NIAH task: exact length, deterministic, every needle where the sample says
// with its key and value, the references are the asked keys' values.
TEST(RulerNiah, EveryTaskBuildsItsNeedlesAndReferences) {
  const auto& v = vocabulary::standard();
  const std::vector<std::string> names = {"niah_single_1",   "niah_single_2",   "niah_single_3",
                                          "niah_multikey_1", "niah_multikey_2", "niah_multikey_3",
                                          "niah_multivalue", "niah_multiquery"};
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const auto task = make_task(name, nlohmann::json::object());
    for (std::uint32_t n : {task->min_context_length(), 4096u, 5003u}) {
      const sample a = task->make_sample(11, n);
      EXPECT_EQ(a.prompt.size(), n);
      EXPECT_EQ(a.prompt, task->make_sample(11, n).prompt);
      const std::string text = v.detokenize(a.prompt);
      const auto& needles = a.info["needles"];
      ASSERT_FALSE(needles.empty());
      for (const auto& nd : needles) {
        const auto pos = nd["position"].get<std::size_t>();
        const auto len = nd["tokens"].get<std::size_t>();
        const std::string needle_text =
            v.detokenize(std::span<const token>(a.prompt).subspan(pos, len));
        EXPECT_NE(needle_text.find(nd["key"].get<std::string>() + " is: " + nd["value"].get<std::string>()),
                  std::string::npos)
            << needle_text;
      }
      // References: the values of the keys asked about, each present in the context.
      std::size_t asked = 1 + a.follow_ups.size();
      EXPECT_EQ(a.references.size(), asked * a.branches);
      for (const auto& r : a.references) EXPECT_NE(text.find(r), std::string::npos) << r;
    }
  }
  const sample mv = make_task("niah_multivalue", nlohmann::json::object())->make_sample(3, 4096);
  EXPECT_EQ(mv.branches, 4u);
  EXPECT_EQ(mv.info["needles"].size(), 4u);
  const sample mq = make_task("niah_multiquery", nlohmann::json::object())->make_sample(3, 4096);
  EXPECT_EQ(mq.follow_ups.size(), 3u);
  const sample mk = make_task("niah_multikey_3", nlohmann::json::object())->make_sample(3, 4096);
  EXPECT_EQ(mk.references[0].size(), 36u);  // a uuid
  EXPECT_EQ(std::count(mk.references[0].begin(), mk.references[0].end(), '-'), 4);
}

TEST(Vocabulary, UuidsAndNumbersReadAsOneRun) {
  const auto& v = vocabulary::standard();
  std::vector<token> t;
  for (char c : std::string("3f2a-09bc")) t.push_back(v.id(std::string(1, c)));
  EXPECT_EQ(v.detokenize(t), "3f2a-09bc");
  EXPECT_EQ(v.detokenize(v.tokenize("is: 1234567.")), "is: 1234567.");
}

// vt, cwe, fwe, qa_1, qa_2: exact length at several sizes, deterministic, and each
// sample's answers are what its context says they are.
TEST(RulerOther, EveryTaskBuildsItsContextAndReferences) {
  const auto& v = vocabulary::standard();
  for (const std::string name : {"vt", "cwe", "fwe", "qa_1", "qa_2"}) {
    SCOPED_TRACE(name);
    const auto task = make_task(name, nlohmann::json::object());
    EXPECT_EQ(task->metric(), name.starts_with("qa") ? "string_match_part" : "string_match_all");
    for (std::uint32_t n : {task->min_context_length(), 4096u, 5003u}) {
      SCOPED_TRACE(n);
      const sample a = task->make_sample(11, n);
      EXPECT_EQ(a.prompt.size(), n);
      EXPECT_EQ(a.prompt, task->make_sample(11, n).prompt);
      EXPECT_NE(a.prompt, task->make_sample(12, n).prompt);
      ASSERT_FALSE(a.references.empty());
      const std::string text = v.detokenize(a.prompt);
      for (const auto& r : a.references) EXPECT_NE(text.find(r), std::string::npos) << r;
      if (a.info.contains("needles"))
        for (const auto& nd : a.info["needles"]) {
          const auto piece = std::span<const token>(a.prompt).subspan(nd["position"].get<std::size_t>(),
                                                                       nd["tokens"].get<std::size_t>());
          EXPECT_EQ(v.detokenize(piece), nd["text"].get<std::string>());
        }
    }
  }
  EXPECT_THROW(make_task("vt", {{"num_hops", 0}}), task_params_error);
  EXPECT_THROW(make_task("cwe", {{"freq_ucw", 30}}), task_params_error);
  EXPECT_THROW(make_task("fwe", {{"alpha", 1.0}}), task_params_error);
  EXPECT_THROW(make_task("qa_1", {{"hops", 2}}), task_params_error);
  EXPECT_THROW(make_task("cwe", nlohmann::json::object())->make_sample(1, 100), task_error);
}

// vt: the chain runs from the value through every reference, in text order.
TEST(RulerOther, VariableTrackingChainsFromTheValue) {
  const sample s = make_task("vt", {{"num_hops", 3}})->make_sample(5, 2048);
  ASSERT_EQ(s.references.size(), 4u);
  ASSERT_EQ(s.follow_ups.size(), 3u);
  const auto& needles = s.info["needles"];
  ASSERT_EQ(needles.size(), 4u);
  EXPECT_EQ(needles[0]["text"], "the value " + s.info["value"].get<std::string>() + " is assigned to var " +
                                    s.references[0] + ".");
  for (std::size_t k = 1; k < 4; ++k) {
    EXPECT_EQ(needles[k]["text"], "var " + s.references[k - 1] + " is assigned to var " + s.references[k] + ".");
    EXPECT_GT(needles[k]["position"].get<std::size_t>(), needles[k - 1]["position"].get<std::size_t>());
  }
  // Each follow-up restates the model's own last answer.
  EXPECT_EQ(std::count(s.follow_ups[0].begin(), s.follow_ups[0].end(), kLastAnswer), 1);
}

// cwe and fwe: the references are exactly the most frequent words of the context.
TEST(RulerOther, WordExtractionReferencesAreTheMostFrequentWords) {
  const auto& v = vocabulary::standard();
  for (const std::string name : {"cwe", "fwe"}) {
    SCOPED_TRACE(name);
    const sample s = make_task(name, nlohmann::json::object())->make_sample(9, 8192);
    std::map<token, int> counts;
    for (token t : s.prompt)
      if (v.kind(t) == token_class::pseudo_word) ++counts[t];
    std::vector<std::pair<int, token>> ranked;
    for (auto [t, c] : counts) ranked.emplace_back(c, t);
    std::sort(ranked.rbegin(), ranked.rend());
    const std::size_t k = s.references.size();
    ASSERT_EQ(k, name == "cwe" ? 10u : 3u);
    EXPECT_EQ(s.branches, k);
    EXPECT_GT(ranked[k - 1].first, ranked[k].first);  // a clear cut after the k-th
    std::set<std::string> top;
    for (std::size_t i = 0; i < k; ++i) top.insert(v.text(ranked[i].second));
    EXPECT_EQ(top, std::set<std::string>(s.references.begin(), s.references.end()));
    if (name == "cwe") {
      EXPECT_EQ(ranked[0].first, 30);
    }
  }
}

// depth_spread "even": a cell's samples cover the depth points evenly (distinct points
// for the first 25, every tenth of the range from 11 samples), independent of how many
// samples the cell has; "random" (the default) is RULER's draw, unchanged.
TEST(RulerNiah, EvenDepthSpreadCoversTheDepths) {
  const auto even = make_task("niah_single_1", {{"depth_spread", "even"}});
  const auto random = make_task("niah_single_1", nlohmann::json::object());
  std::set<double> points;
  std::set<int> tenths;
  for (std::uint32_t i = 0; i < 25; ++i) {
    const sample s = make_indexed_sample(*even, 3, 2048, i);
    const double depth = s.info["depth_percent"].get<double>();
    EXPECT_TRUE(points.insert(depth).second) << "sample " << i << " repeats depth " << depth;
    if (i < 11) tenths.insert(std::min(9, static_cast<int>(depth / 10)));
    EXPECT_EQ(s.prompt, make_indexed_sample(*even, 3, 2048, i).prompt);
  }
  EXPECT_EQ(tenths.size(), 10u);
  const sample r = make_indexed_sample(*random, 3, 2048, 4);
  EXPECT_EQ(r.prompt, random->make_sample(sample_seed(3, "niah_single_1", 2048, 4), 2048).prompt);
  const auto multi = make_task("niah_multikey_1", {{"depth_spread", "even"}});
  const sample m = make_indexed_sample(*multi, 3, 4096, 1);
  std::set<double> depths;
  for (const auto& n : m.info["needles"]) depths.insert(n["depth_percent"].get<double>());
  EXPECT_EQ(depths.size(), 4u) << "the other needles take other points";
  EXPECT_THROW(make_task("niah_single_1", {{"depth_spread", "uniform"}}), task_params_error);
}
