// LongBench summarisation: gov_report and multi_news, whose summary lists the five topic
// words planted among rare pseudo-words.
#include "longbench-common.hpp"
#include "longbench-generators.hpp"

#include <algorithm>

namespace attnbench::tasks::longbench_detail {
namespace {

// Sentences of pseudo-words drawn from `pool`, with periods: text whose every word is
// rare unless the caller plants repeats.
tokens pseudo_text(rng& r, std::size_t n, const std::vector<token>& pool) {
  tokens out;
  const token period = V().id(".");
  while (out.size() < n) {
    const auto len = 6 + r.below(9);
    for (std::uint64_t i = 0; i < len && out.size() + 1 < n; ++i) out.push_back(pool[r.below(pool.size())]);
    out.push_back(period);
  }
  out.resize(n);
  return out;
}

// Pseudo-words minus those in `taken`.
std::vector<token> background_pool(const std::set<std::string>& taken) {
  std::vector<token> pool;
  for (token t : V().pseudo_words())
    if (!taken.count(V().text(t))) pool.push_back(t);
  return pool;
}

// Topic words planted among rare pseudo-words: word k of `topics` gets count[k]
// occurrences at random word positions of `text` (never at a period).
void plant(rng& r, tokens& text, const std::vector<token>& topics, const std::vector<std::size_t>& count,
           std::size_t begin, std::size_t end) {
  std::vector<std::size_t> slots;
  for (std::size_t i = begin; i < end; ++i)
    if (V().kind(text[i]) == token_class::pseudo_word) slots.push_back(i);
  shuffle(slots, r);
  std::size_t next = 0;
  for (std::size_t k = 0; k < topics.size(); ++k)
    for (std::size_t c = 0; c < count[k] && next < slots.size(); ++c) text[slots[next++]] = topics[k];
}

// Summaries are word lists separated by spaces, in the reference and in the prediction,
// so ROUGE's words carry no commas.
std::string joined(const std::vector<token>& words) {
  std::string out;
  for (token w : words) out += (out.empty() ? "" : " ") + V().text(w);
  return out;
}

constexpr std::size_t kTopics = 5;

// Occurrences of the five topic words: 1.4%, 1.2%, 1.0%, 0.8% and 0.6% of the body,
// and never fewer than 6, 5, 4, 3 and 2, so that the order is defined at any length.
std::vector<std::size_t> topic_counts(std::size_t budget) {
  std::vector<std::size_t> count(kTopics);
  for (std::size_t k = 0; k < kTopics; ++k)
    count[k] = std::max<std::size_t>(kTopics + 1 - k, static_cast<std::size_t>(budget * (0.014 - 0.002 * k)));
  return count;
}

// "now , write a one - line summary of WHAT : list its 5 main topic words , ..."
tokens summary_question(std::string_view what) {
  return T("\n\nnow , write a one - line summary of " + std::string(what) + " : list its " + std::to_string(kTopics) +
           " main topic words , the ones that appear most often . summary :");
}

// The summary: the topic words, read as the top candidates of the first answer step.
sample summary_sample(std::uint32_t n, const tokens& intro, const tokens& body, const tokens& question,
                      std::string_view name, const std::vector<token>& topics) {
  sample s = assemble(n, intro, body, question, name);
  s.references = {joined(topics)};
  s.branches = kTopics;
  s.branch_ratio = 0.0f;  // the question says how many
  s.branch_separator = std::string(" ");  // not the bare literal: GCC 12 -O3 warns falsely (-Wrestrict)
  s.max_new_tokens = 1;
  return s;
}

}  // namespace

// gov_report: one long report whose five topic words recur throughout (each 0.6% to 1.4%
// of the tokens, in steps); the summary lists them, most frequent first.
sample gov_report(rng& r, std::uint32_t n) {
  std::set<std::string> taken;
  const auto topics = fresh_words(r, kTopics, taken);
  const tokens intro = T("you are given a report . write a one - line summary of the report : list its main topic "
                         "words .\n\nreport :\n");
  const tokens question = summary_question("the report");
  const std::size_t budget = budget_of(n, intro, question, "gov_report");
  tokens body = pseudo_text(r, budget, background_pool(taken));
  const auto count = topic_counts(budget);
  plant(r, body, topics, count, 0, body.size());
  sample s = summary_sample(n, intro, body, question, "gov_report", topics);
  s.info = {{"topic_counts", count}};
  return s;
}

// multi_news: several news articles; five topic words are spread unevenly over them
// (60% of a word's occurrences in one article, the rest evenly), and every article has
// a local word that is frequent inside it but below the five overall.
sample multi_news(rng& r, std::uint32_t n) {
  std::set<std::string> taken;
  const auto topics = fresh_words(r, kTopics, taken);
  const std::size_t articles = std::clamp<std::size_t>(n / 1024, 3, 10);
  const auto locals = fresh_words(r, articles, taken);
  const tokens intro = T("you are given several news articles . write a one - line summary of all news : list the "
                         "main topic words .\n\n");
  const tokens question = summary_question("all the news");
  const std::size_t budget = budget_of(n, intro, question, "multi_news");
  const auto pool = background_pool(taken);
  tokens body;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  const std::size_t per = budget / articles;
  for (std::size_t a = 0; a < articles; ++a) {
    const tokens h = T("news " + std::to_string(a + 1) + " :\n");
    const std::size_t begin = body.size() + h.size();
    append(body, h);
    const std::size_t len = per - h.size() - 1;
    append(body, pseudo_text(r, len, pool));
    body.push_back(V().newline());
    spans.emplace_back(begin, begin + len);
  }
  const auto total = topic_counts(budget);
  // Each topic word: 60% in one article, the rest spread evenly.
  std::vector<std::vector<std::size_t>> in(articles, std::vector<std::size_t>(kTopics, 0));
  for (std::size_t k = 0; k < kTopics; ++k) {
    const std::size_t home = r.below(articles), main = total[k] * 6 / 10;
    in[home][k] += main;
    for (std::size_t c = 0; c < total[k] - main; ++c) ++in[c % articles][k];
  }
  const std::size_t local_count = total[kTopics - 1] * 6 / 10;
  for (std::size_t a = 0; a < articles; ++a) {
    std::vector<token> words(topics.begin(), topics.end());
    words.push_back(locals[a]);
    std::vector<std::size_t> count = in[a];
    count.push_back(local_count);
    plant(r, body, words, count, spans[a].first, spans[a].second);
  }
  sample s = summary_sample(n, intro, body, question, "multi_news", topics);
  s.info = {{"topic_counts", total}, {"articles", articles}, {"local_count", local_count}};
  return s;
}

}  // namespace attnbench::tasks::longbench_detail
