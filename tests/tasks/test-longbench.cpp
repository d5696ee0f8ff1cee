// The LongBench-style suite: its metrics on hand-made strings (values worked out by hand
// from LongBench's metrics.py and the rouge package) and its generators. Dense scores on
// the model are in tests/run/test-longbench-model.cpp.
#include <attnbench/tasks/scoring.hpp>
#include <attnbench/tasks/task.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include "longbench-helpers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

using namespace attnbench;
namespace lb = attnbench::tasks::longbench;

TEST(LongBenchMetrics, NormalizeAnswer) {
  EXPECT_EQ(lb::normalize_answer("  The Cat's hat, an   apple!  "), "cats hat apple");
  EXPECT_EQ(lb::normalize_answer("theory of a thing"), "theory of thing");
  EXPECT_EQ(lb::normalize_answer(""), "");
}

TEST(LongBenchMetrics, QaF1) {
  EXPECT_DOUBLE_EQ(lb::qa_f1("kadu mero", "kadu mero"), 1.0);
  // One of two predicted words is right, one of three reference words is found.
  EXPECT_NEAR(lb::qa_f1("kadu bisa", "the kadu mero tola"), 2 * 0.5 * (1.0 / 3) / (0.5 + 1.0 / 3), 1e-12);
  // Counts are multisets: "a a" against "a" is precision 1/2.
  EXPECT_NEAR(lb::qa_f1("x x", "x"), 2 * 0.5 * 1.0 / 1.5, 1e-12);
  EXPECT_EQ(lb::qa_f1("nothing here", "kadu"), 0.0);
  EXPECT_EQ(lb::qa_f1("", "kadu"), 0.0);
  // Case, punctuation and articles do not matter.
  EXPECT_DOUBLE_EQ(lb::qa_f1("The Kadu.", "kadu"), 1.0);
}

TEST(LongBenchMetrics, RougeL) {
  EXPECT_NEAR(lb::rouge_l("a b c d", "a b c d"), 1.0, 1e-7);
  // LCS "a c" of 4 reference and 3 predicted distinct words: R 1/2, P 2/3.
  EXPECT_NEAR(lb::rouge_l("a x c", "a b c d"), 2 * 0.5 * (2.0 / 3) / (0.5 + 2.0 / 3 + 1e-8), 1e-9);
  // Order matters: reversed, the LCS is one word.
  EXPECT_NEAR(lb::rouge_l("d c b a", "a b c d"), 2 * 0.25 * 0.25 / (0.5 + 1e-8), 1e-9);
  // Summary level: two predicted sentences each cover part of the reference sentence,
  // and the union counts (Lin 2004's example: r = w1..w5, c1 = w1 w2 w6 w7 w8,
  // c2 = w1 w3 w8 w9 w5: union LCS w1 w2 w3 w5, R 4/5, P 4/8 over distinct words).
  EXPECT_NEAR(lb::rouge_l("w1 w2 w6 w7 w8. w1 w3 w8 w9 w5", "w1 w2 w3 w4 w5"),
              2 * 0.8 * 0.5 / (1.3 + 1e-8), 1e-9);
  // Punctuation other than '.' stays on the word; case is kept.
  EXPECT_NEAR(lb::rouge_l("kadu, mero", "kadu mero"), 2 * 0.5 * 0.5 / (1.0 + 1e-8), 1e-9);
  EXPECT_NEAR(lb::rouge_l("Kadu", "kadu"), 0.0, 1e-12);
  EXPECT_EQ(lb::rouge_l("", "kadu"), 0.0);
  EXPECT_EQ(lb::rouge_l("...", "kadu"), 0.0);
}

TEST(LongBenchMetrics, Classification) {
  const std::vector<std::string> classes{"kadu", "mero", "tola", "kadumero"};
  EXPECT_DOUBLE_EQ(lb::classification("tola", "tola", classes), 1.0);
  EXPECT_DOUBLE_EQ(lb::classification("mero or tola", "tola", classes), 0.5);
  EXPECT_DOUBLE_EQ(lb::classification("mero", "tola", classes), 0.0);
  // "kadu" and "mero" are inside the reference "kadumero". metrics.py drops them while
  // iterating over the list, which skips the entry after each drop: "kadu" goes, "mero"
  // stays, so naming "kadumero" scores 1/2 and adding "tola" 1/3, as in LongBench.
  EXPECT_DOUBLE_EQ(lb::classification("kadumero", "kadumero", classes), 0.5);
  EXPECT_DOUBLE_EQ(lb::classification("kadumero, tola", "kadumero", classes), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(lb::classification("kadumero", "kadumero", {"kadumero", "kadu"}), 1.0);
}

TEST(LongBenchMetrics, CountAndRetrieval) {
  EXPECT_DOUBLE_EQ(lb::count("there are 12 passages", "12"), 1.0);
  EXPECT_DOUBLE_EQ(lb::count("12 or 13", "12"), 0.5);
  EXPECT_DOUBLE_EQ(lb::count("twelve", "12"), 0.0);
  EXPECT_DOUBLE_EQ(lb::count("112", "12"), 0.0);
  EXPECT_DOUBLE_EQ(lb::retrieval("paragraph 7", "paragraph 7"), 1.0);
  EXPECT_DOUBLE_EQ(lb::retrieval("Paragraph 7, or paragraph 17", "Paragraph 7"), 0.5);
  EXPECT_DOUBLE_EQ(lb::retrieval("7", "paragraph 17"), 0.0);
  EXPECT_DOUBLE_EQ(lb::retrieval("none", "paragraph 7"), 0.0);
}

TEST(LongBenchMetrics, CodeSimilarity) {
  EXPECT_DOUBLE_EQ(lb::code_similarity("x = f(a, b)", "x = f(a, b)"), 1.0);
  // "abcd" vs "abed": LCS 3 of 8 characters -> 0.75.
  EXPECT_DOUBLE_EQ(lb::code_similarity("abcd", "abed"), 0.75);
  // Lines with comments or fences are skipped; the first other line is scored.
  EXPECT_DOUBLE_EQ(lb::code_similarity("\n# note\n```\nabcd\nzzz", "abed"), 0.75);
  // Python rounds 12.5 to 12: "a" vs "abcdefghijklmno" (1 + 15 characters, LCS 1).
  EXPECT_DOUBLE_EQ(lb::code_similarity("a", "abcdefghijklmno"), 0.12);
  EXPECT_EQ(lb::code_similarity("", "abc"), 0.0);
}

// ---- generators ---------------------------------------------------------------------

namespace {

using tasks::vocabulary;

using attnbench::testing::contains;
using attnbench::testing::longbench_tasks;

}  // namespace

TEST(LongBenchTasks, SixCategoriesOfTwoTasks) {
  std::map<std::string, int> per_category;
  for (const auto& t : longbench_tasks()) ++per_category[std::string(tasks::longbench_category(t))];
  ASSERT_EQ(per_category.size(), 6u);
  for (const auto& [c, n] : per_category) EXPECT_EQ(n, 2) << c;
  EXPECT_EQ(tasks::longbench_category("niah_single_1"), "");
}

TEST(LongBenchTasks, SamplesHaveExactLengthAndAreDeterministic) {
  for (const auto& name : longbench_tasks()) {
    const auto task = tasks::make_task(name, nlohmann::json::object());
    EXPECT_LE(task->min_context_length(), 1024u) << name;
    for (std::uint32_t n : {1024u, 4096u, 20000u, 131072u}) {
      const auto a = task->make_sample(3, n), b = task->make_sample(3, n), c = task->make_sample(4, n);
      EXPECT_EQ(a.prompt.size(), n) << name;
      EXPECT_EQ(a.prompt, b.prompt) << name;
      EXPECT_EQ(a.references, b.references) << name;
      EXPECT_NE(a.prompt, c.prompt) << name;
      ASSERT_FALSE(a.references.empty()) << name;
      // A prediction equal to the reference scores 100.
      EXPECT_NEAR(task->score(a.references[0], a.references), 100.0, 1e-6) << name;
    }
    EXPECT_THROW(task->make_sample(1, 200), tasks::task_error) << name;
    // Beyond the pseudo-words' supply of entities the context grows prose, not names.
    EXPECT_EQ(task->make_sample(5, 300000).prompt.size(), 300000u) << name;
    EXPECT_THROW(tasks::make_task(name, {{"depth", 3}}), tasks::task_params_error) << name;
  }
}

TEST(LongBenchTasks, AnswersStandInTheContext) {
  const auto& v = vocabulary::standard();
  for (const char* name : {"narrativeqa", "multifieldqa_en", "hotpotqa", "musique", "lcc", "repobench-p"}) {
    const auto task = tasks::make_task(name, nlohmann::json::object());
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
      const auto s = task->make_sample(seed, 4096);
      EXPECT_TRUE(contains(s.prompt, v.tokenize(s.references[0]))) << name << " " << s.references[0];
    }
  }
}

TEST(LongBenchTasks, PassageCountReferenceIsTheNumberOfDistinctParagraphs) {
  const auto& v = vocabulary::standard();
  const auto task = tasks::make_task("passage_count", nlohmann::json::object());
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    const auto s = task->make_sample(seed, 8192);
    // Paragraphs run from "paragraph k :" to the line end.
    std::set<std::vector<tasks::token>> distinct;
    std::size_t paragraphs = 0;
    const auto header = v.id("paragraph"), colon = v.id(":");
    for (std::size_t i = 0; i + 3 < s.prompt.size(); ++i) {
      if (s.prompt[i] != header || v.kind(s.prompt[i + 1]) != tasks::token_class::digit) continue;
      std::size_t j = i + 1;
      while (v.kind(s.prompt[j]) == tasks::token_class::digit) ++j;
      if (s.prompt[j] != colon) continue;
      std::size_t end = j + 1;
      while (s.prompt[end] != v.newline()) ++end;
      distinct.emplace(s.prompt.begin() + static_cast<std::ptrdiff_t>(j + 1),
                       s.prompt.begin() + static_cast<std::ptrdiff_t>(end));
      ++paragraphs;
    }
    EXPECT_EQ(paragraphs, s.info["paragraphs"].get<std::size_t>());
    EXPECT_EQ(std::to_string(distinct.size()), s.references[0]);
  }
}

TEST(LongBenchTasks, TopicWordsAreTheMostFrequentWordsInFrequencyOrder) {
  const auto& v = vocabulary::standard();
  for (const char* name : {"gov_report", "multi_news"}) {
    const auto task = tasks::make_task(name, nlohmann::json::object());
    const auto s = task->make_sample(2, 8192);
    std::map<tasks::token, std::size_t> count;
    for (auto t : s.prompt)
      if (v.kind(t) == tasks::token_class::pseudo_word) ++count[t];
    std::vector<std::pair<std::size_t, tasks::token>> ranked;
    for (auto [t, c] : count) ranked.emplace_back(c, t);
    std::sort(ranked.rbegin(), ranked.rend());
    std::string top;
    for (std::size_t k = 0; k < 5; ++k) top += (k ? " " : "") + v.text(ranked[k].second);
    EXPECT_EQ(top, s.references[0]) << name;
    EXPECT_GT(ranked[4].first, ranked[5].first) << name;
  }
}

TEST(LongBenchTasks, ClassLabelsAreScoredAgainstTheTaskClasses) {
  for (const char* name : {"trec", "lsht"}) {
    const auto task = tasks::make_task(name, nlohmann::json::object());
    std::set<std::string> labels;
    for (std::uint64_t seed = 0; seed < 40; ++seed) labels.insert(task->make_sample(seed, 2048).references[0]);
    ASSERT_GE(labels.size(), 10u) << name;
    for (const auto& a : labels)
      for (const auto& b : labels)
        if (a != b) {
          EXPECT_EQ(a.find(b), std::string::npos) << name << ": " << b << " inside " << a;
        }
    const std::string right = *labels.begin(), wrong = *labels.rbegin();
    EXPECT_EQ(task->score(right, {right}), 100.0) << name;
    EXPECT_EQ(task->score(right + ", " + wrong, {right}), 50.0) << name;
    EXPECT_EQ(task->score(wrong, {right}), 0.0) << name;
    EXPECT_EQ(task->score("not a class", {right}), 0.0) << name;
  }
}
