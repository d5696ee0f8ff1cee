// The training corpus (attnbench corpus): samples written with their answers, the same
// sequences on every call, and no evaluation sample among them.
#include <attnbench/tasks/corpus.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

using namespace attnbench::tasks;

namespace {

std::string text(const std::vector<token>& tokens, std::uint32_t begin, std::uint32_t end) {
  return vocabulary::standard().detokenize(std::span<const token>(tokens.data() + begin, end - begin));
}

corpus_spec default_like_spec(std::vector<std::uint32_t> lengths) {
  corpus_spec spec;
  for (const char* name : {"niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_3",
                           "niah_multivalue", "niah_multiquery", "vt", "cwe", "fwe", "qa_1", kHaystackTask})
    spec.tasks.emplace_back(name, nlohmann::json::object());
  spec.lengths = std::move(lengths);
  spec.length_weights.assign(spec.lengths.size(), 1.0);
  return spec;
}

}  // namespace

TEST(Corpus, WritesThePromptThenTheAnswerAndTheStopToken) {
  const auto t = make_task("niah_single_1", nlohmann::json::object());
  const sample s = t->make_sample(3, 2048, sample_domain::training);
  const corpus_sequence c = write_sample(s, "niah_single_1");
  ASSERT_EQ(c.answers.size(), 1u);
  EXPECT_TRUE(std::equal(s.prompt.begin(), s.prompt.end(), c.tokens.begin()));
  const auto [b, e] = c.answers[0];
  EXPECT_EQ(b, s.prompt.size());
  EXPECT_EQ(e, c.tokens.size());
  EXPECT_EQ(c.tokens[e - 1], s.stop_tokens.front());
  EXPECT_EQ(text(c.tokens, b, e - 1), s.references[0]);
}

TEST(Corpus, AMultiHopSampleRestatesEachAnswerInItsFollowUp) {
  const auto t = make_task("vt", nlohmann::json::object());
  const sample s = t->make_sample(5, 4096, sample_domain::training);
  const corpus_sequence c = write_sample(s, "vt");
  ASSERT_EQ(c.answers.size(), s.follow_ups.size() + 1);
  for (std::size_t g = 0; g < c.answers.size(); ++g)
    EXPECT_EQ(text(c.tokens, c.answers[g].first, c.answers[g].second - 1), s.references[g]) << "generation " << g;
  // Between two answers: the follow-up with the previous answer in place of kLastAnswer.
  const auto between = text(c.tokens, c.answers[0].second, c.answers[1].first);
  EXPECT_NE(between.find(s.references[0]), std::string::npos) << between;
  // The follow-up's leading "." is the generation's stop, written once, as the harness
  // sees it: no stop token twice.
  const token stop = s.stop_tokens.front();
  ASSERT_EQ(s.follow_ups[0].front(), stop);
  EXPECT_EQ(c.tokens[c.answers[0].second - 1], stop);
  EXPECT_NE(c.tokens[c.answers[0].second], stop);
}

TEST(Corpus, SeveralAnswersOfOneStepAreWrittenOneAtATime) {
  // niah_multivalue's readout branches into its values: a sequence holds one of them,
  // picked by `choice`, and different choices cover every value.
  const auto t = make_task("niah_multivalue", nlohmann::json::object());
  const sample s = t->make_sample(2, 2048, sample_domain::training);
  ASSERT_GT(s.references.size(), 1u);
  std::set<std::string> written;
  for (std::uint64_t choice = 0; choice < s.references.size(); ++choice) {
    const corpus_sequence c = write_sample(s, "niah_multivalue", choice);
    ASSERT_EQ(c.answers.size(), 1u);
    written.insert(text(c.tokens, c.answers[0].first, c.answers[0].second - 1));
  }
  EXPECT_EQ(written, std::set<std::string>(s.references.begin(), s.references.end()));
}

TEST(Corpus, AnAnswerIsSpelledWithTheTokensOfTheNeedleItCopies) {
  // A model learns to copy a needle's value only if the answer holds the same tokens.
  // uuids are one token per character in prompts; the tokenizer alone would keep letter
  // pairs that are words ("be") whole in a few of them.
  for (const char* name : {"niah_single_3", "niah_multikey_3", "niah_single_2", "niah_multikey_1"}) {
    const auto t = make_task(name, nlohmann::json::object());
    for (std::uint64_t seed = 0; seed < 300; ++seed) {
      const sample s = t->make_sample(seed, 512, sample_domain::training);
      const corpus_sequence c = write_sample(s, name);
      const auto [b, e] = c.answers[0];
      EXPECT_EQ(text(c.tokens, b, e - 1), s.references[0]) << name << " seed " << seed;
      const auto found = std::search(c.tokens.begin(), c.tokens.begin() + b, c.tokens.begin() + b, c.tokens.begin() + e - 1);
      EXPECT_NE(found, c.tokens.begin() + b) << name << " seed " << seed << ": \"" << s.references[0]
                                             << "\" is not in the prompt token for token";
    }
  }
}

TEST(Corpus, RefusesATaskWhoseIntermediateAnswersAreUnknown) {
  corpus_spec spec;
  spec.tasks.emplace_back("qa_2", nlohmann::json::object());
  spec.lengths = {4096};
  spec.length_weights = {1.0};
  try {
    corpus_writer w(spec);
    FAIL() << "qa_2 was accepted";
  } catch (const task_error& e) {
    EXPECT_NE(std::string(e.what()).find("qa_2"), std::string::npos) << e.what();
  }
}

TEST(Corpus, SequencesAreTheSameOnEveryCallAndFollowTheSpec) {
  const corpus_writer w(default_like_spec({1024, 2048}));
  std::set<std::uint32_t> lengths;
  std::set<std::uint32_t> tasks;
  for (std::uint64_t i = 0; i < 60; ++i) {
    const corpus_sequence a = w.sequence(i), b = w.sequence(i);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.answers, b.answers);
    EXPECT_GE(a.tokens.size(), a.context_length);
    lengths.insert(a.context_length);
    tasks.insert(a.task);
  }
  EXPECT_EQ(lengths, (std::set<std::uint32_t>{1024, 2048}));
  EXPECT_GE(tasks.size(), 8u);
  corpus_spec other = default_like_spec({1024, 2048});
  other.seed = 1;
  EXPECT_NE(corpus_writer(other).sequence(0).tokens, w.sequence(0).tokens);
}

TEST(Corpus, HoldsNoEvaluationSample) {
  // Training samples come from rng's training domain, whose starting states no
  // evaluation seed reaches (test-sample-domains.cpp); here, concretely: 300 sequences
  // of a corpus at 1K and 2K against every evaluation sample of run seeds 0-3 (25 per
  // task and length): no prompt is shared.
  const corpus_spec spec = default_like_spec({1024, 2048});
  const corpus_writer w(spec);
  std::set<std::vector<token>> evaluation;
  for (const auto& [name, params] : spec.tasks) {
    if (name == kHaystackTask) continue;
    const auto t = make_task(name, params);
    for (std::uint32_t n : spec.lengths) {
      if (n < t->min_context_length()) continue;
      for (std::uint64_t run_seed = 0; run_seed < 4; ++run_seed)
        for (std::uint32_t i = 0; i < 25; ++i) evaluation.insert(make_indexed_sample(*t, run_seed, n, i).prompt);
    }
  }
  for (std::uint64_t i = 0; i < 300; ++i) {
    const corpus_sequence c = w.sequence(i);
    const std::uint32_t prompt_end = c.answers.empty() ? static_cast<std::uint32_t>(c.tokens.size()) : c.answers[0].first;
    const std::vector<token> prompt(c.tokens.begin(), c.tokens.begin() + prompt_end);
    EXPECT_EQ(evaluation.count(prompt), 0u) << "sequence " << i << " (" << spec.tasks[c.task].first << ")";
  }
}

// The repeat pseudo-task: each answer span is the tail of a segment that occurred once
// before in the sequence, at the context length asked; bad params name themselves.
TEST(Corpus, RepeatSegmentsAreAnswersAfterTheirFirstToken) {
  for (const char* alphabet : {"digits", "words"}) {
    corpus_spec spec;
    spec.tasks.emplace_back(kRepeatTask, nlohmann::json{{"alphabet", alphabet}, {"segment_tokens", 20}});
    spec.lengths = {200, 700};
    spec.length_weights = {1, 1};
    const corpus_writer w(spec);
    for (std::uint64_t i = 0; i < 6; ++i) {
      const corpus_sequence c = w.sequence(i);
      ASSERT_EQ(c.tokens.size(), c.context_length);
      EXPECT_EQ(c.answers.size(), std::max<std::size_t>(1, (c.context_length - 1) / 80));
      for (const auto& [b, e] : c.answers) {
        ASSERT_EQ(e - b, 19u);
        const std::vector<token> segment(c.tokens.begin() + b - 1, c.tokens.begin() + e);
        const auto first = std::search(c.tokens.begin(), c.tokens.end(), segment.begin(), segment.end());
        ASSERT_LT(first - c.tokens.begin(), b - 1) << "the segment occurs before its repeat";
        if (std::string(alphabet) == "digits") {
          EXPECT_TRUE(std::all_of(segment.begin(), segment.end(), [](token t) {
            return vocabulary::standard().kind(t) == token_class::digit;
          }));
        }
      }
    }
  }
  EXPECT_THROW(parse_repeat_params({{"alphabet", "hex"}}), task_params_error);
  EXPECT_THROW(parse_repeat_params({{"segment_tokens", 3}}), task_params_error);
  EXPECT_THROW(parse_repeat_params({{"colour", 1}}), task_params_error);
  corpus_spec too_short;
  too_short.tasks.emplace_back(kRepeatTask, nlohmann::json{{"segment_tokens", 100}});
  too_short.lengths = {100};
  too_short.length_weights = {1};
  EXPECT_THROW(corpus_writer{too_short}, corpus_error);
  corpus_spec bad = too_short;
  bad.tasks[0].second = {{"alphabet", 7}};
  try {
    corpus_writer{bad};
    ADD_FAILURE() << "bad params were accepted";
  } catch (const corpus_error& e) {
    EXPECT_EQ(e.pointer, "/tasks/0/params/alphabet");
  }
}
