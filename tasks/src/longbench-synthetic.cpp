// LongBench synthetic tasks: passage_count (unique paragraphs among repeats) and
// passage_retrieval_en (which paragraph an abstract comes from).
#include "longbench-common.hpp"
#include "longbench-generators.hpp"

#include <algorithm>

namespace attnbench::tasks::longbench_detail {

// passage_count: paragraphs, some repeated, shuffled; how many are unique?
sample passage_count(rng& r, std::uint32_t n) {
  const tokens intro = T("there are some paragraphs below . some of them may be duplicates . please carefully read "
                         "these paragraphs and determine how many unique paragraphs there are after removing "
                         "duplicates .\n\n");
  const tokens question = T("\n\nplease enter the final count of unique paragraphs after removing duplicates . the "
                            "final answer is :");
  const std::size_t budget = budget_of(n, intro, question, "passage_count");
  // LongBench: up to 30 paragraphs in all; here the length sets the paragraphs' size.
  const std::size_t total = std::clamp<std::size_t>(budget / 60, 4, 30);
  const std::size_t unique = 2 + r.below(total - 2);
  const std::size_t each = budget / total - 6;
  std::vector<tokens> paras;
  for (std::size_t u = 0; u < unique; ++u) {
    tokens p = essay(r, each);
    paras.push_back(std::move(p));
  }
  std::vector<std::size_t> order;
  for (std::size_t u = 0; u < unique; ++u) order.push_back(u);
  while (order.size() < total) order.push_back(r.below(unique));
  shuffle(order, r);
  tokens body;
  for (std::size_t k = 0; k < order.size(); ++k) {
    append(body, T("paragraph " + std::to_string(k + 1) + " :"));
    append(body, paras[order[k]]);
    body.push_back(V().newline());
  }
  sample s = assemble(n, intro, body, question, "passage_count");
  s.references = {std::to_string(unique)};
  s.max_new_tokens = 3;
  s.info = {{"paragraphs", total}, {"unique", unique}};
  return s;
}

// passage_retrieval_en: 30 paragraphs, each ending with a key sentence and its label
// "( paragraph k )"; the abstract is one paragraph's key sentence.
sample passage_retrieval_en(rng& r, std::uint32_t n) {
  std::set<std::string> taken;
  const tokens intro = T("here are 30 paragraphs , and an abstract . please determine which paragraph the abstract "
                         "is from .\n\n");
  std::vector<tokens> keys;
  for (std::size_t k = 0; k < 30; ++k) {
    tokens s = essay(r, 3 + r.below(4));
    std::erase(s, V().id("."));
    std::erase(s, V().id(","));
    keys.push_back(s + fresh_words(r, 3, taken));
  }
  const std::size_t gold = r.below(keys.size());
  const tokens question = T("\n\nthe following is an abstract .\n") + keys[gold] +
                          T(".\nplease enter the number of the paragraph that the abstract is from . answer :") +
                          keys[gold] + T(". ( paragraph");
  const std::size_t budget = budget_of(n, intro, question, "passage_retrieval_en");
  const std::size_t per = budget / keys.size();
  tokens body;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    const tokens tail = keys[k] + T(". ( paragraph " + std::to_string(k + 1) + " )\n");
    if (per < tail.size() + 8) throw task_error("passage_retrieval_en: " + std::to_string(n) + " tokens are too few");
    tokens text = essay(r, per - tail.size());
    append(body, text);
    append(body, tail);
  }
  sample s = assemble(n, intro, body, question, "passage_retrieval_en");
  s.stop_tokens.push_back(V().id(")"));
  s.references = {"paragraph " + std::to_string(gold + 1)};
  s.max_new_tokens = 3;
  s.info = {{"paragraph", gold + 1}};
  return s;
}

}  // namespace attnbench::tasks::longbench_detail
