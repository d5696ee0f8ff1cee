// LongBench single-document QA: narrativeqa (a story with recurring characters) and
// multifieldqa_en (a document of prose and records).
#include "longbench-common.hpp"
#include "longbench-generators.hpp"

#include <algorithm>

namespace attnbench::tasks::longbench_detail {
namespace {

// Essay text of n tokens with `pieces` put after sentence ends at the given depths;
// returns the pieces' positions relative to the start of the text.
tokens essay_with(rng& r, std::size_t n, const std::vector<tokens>& pieces, const std::vector<double>& depths,
                  std::vector<std::size_t>* positions = nullptr) {
  std::size_t fixed = 0;
  for (const auto& p : pieces) fixed += p.size();
  if (fixed > n) throw task_error("the facts do not fit in the context");
  tokens out;
  const auto at = interleave(out, essay(r, n - fixed), pieces, depths, V().id("."));
  if (positions) *positions = at;
  return out;
}

std::vector<double> uniform_depths(rng& r, std::size_t n) {
  std::vector<double> d(n);
  for (auto& x : d) x = 100.0 * r.uniform();
  return d;
}

constexpr std::string_view kStoryAttributes[] = {"friend", "partner", "owner", "color", "favorite", "capital"};

}  // namespace

// narrativeqa: a story in which six characters recur; facts give their attributes; the
// question asks one attribute of one character. Distractors: the character's other
// attributes and the same attribute of the others.
sample narrativeqa(rng& r, std::uint32_t n) {
  std::set<std::string> taken;
  const auto people = fresh_words(r, 6, taken);
  const auto attr = kStoryAttributes[r.below(std::size(kStoryAttributes))];
  auto fact = [&](std::string_view a, token who, const tokens& value) {
    return T("the " + std::string(a) + " of") + who + T("is") + value + V().id(".");
  };
  const tokens answer = answer_words(r, taken, 3);
  std::vector<tokens> facts{fact(attr, people[0], answer)};
  for (std::string_view other : kStoryAttributes)
    if (other != attr && facts.size() < 3) facts.push_back(fact(other, people[0], answer_words(r, taken, 3)));
  for (std::size_t p = 1; p < people.size(); ++p) facts.push_back(fact(attr, people[p], answer_words(r, taken, 3)));

  const tokens intro = T("you are given a story . answer the question as concisely as you can . do not provide any "
                         "explanation .\n\nstory :\n");
  const tokens question = T("\n\nnow , answer the question based on the story as concisely as you can .\nquestion : "
                            "what is the " + std::string(attr) + " of") + people[0] +
                          T("? answer : the " + std::string(attr) + " of") + people[0] + T("is");
  const std::size_t budget = budget_of(n, intro, question, "narrativeqa");
  std::vector<std::size_t> at;
  tokens story = essay_with(r, budget, facts, uniform_depths(r, facts.size()), &at);
  // The characters recur: about one word in fifteen outside the facts is a name.
  std::vector<bool> in_fact(story.size(), false);
  for (std::size_t f = 0; f < facts.size(); ++f)
    for (std::size_t i = 0; i < facts[f].size(); ++i) in_fact[at[f] + i] = true;
  for (std::size_t i = 0; i < story.size(); ++i)
    if (!in_fact[i] && V().kind(story[i]) == token_class::word && r.below(15) == 0)
      story[i] = people[r.below(people.size())];
  sample s = assemble(n, intro, story, question, "narrativeqa");
  s.references = {text_of(answer)};
  s.max_new_tokens = 4;
  s.info = {{"needle_position", 1 + intro.size() + at[0]}, {"depth_percent", 100.0 * at[0] / story.size()}};
  return s;
}

// multifieldqa_en: a document of prose and records ("E year : 1987 .", "E maker : A B .")
// about many entities; the question asks one field of one entity.
sample multifieldqa_en(rng& r, std::uint32_t n) {
  std::set<std::string> taken;
  constexpr std::string_view fields[] = {"year", "maker", "city", "color", "owner"};
  const tokens intro = T("read the following text and answer briefly .\n\n");
  // Entities: one record block per 120 tokens of the body, at most 600 (each takes up to
  // 9 of the 8000 pseudo-words; longer contexts get more prose between the records).
  const std::size_t entities = std::clamp<std::size_t>(n / 120, 3, 600);
  const auto names = fresh_words(r, entities, taken);
  auto value = [&](std::string_view field) {
    if (field == "year") return make_item(item_kind::numbers, r, 4).tokens;
    return answer_words(r, taken, 2);
  };
  std::vector<tokens> blocks;
  tokens gold_value;
  const std::size_t target = r.below(entities);
  const std::string_view asked = fields[r.below(std::size(fields))];
  for (std::size_t e = 0; e < entities; ++e) {
    tokens block;
    std::vector<std::string_view> order(std::begin(fields), std::end(fields));
    shuffle(order, r);
    const std::size_t count = e == target ? std::size(fields) : 2 + r.below(3);
    for (std::size_t f = 0; f < count; ++f) {
      const tokens v = value(order[f]);
      if (e == target && order[f] == asked) gold_value = v;
      block = block + names[e] + T(std::string(order[f]) + " :") + v + V().id(".");
    }
    blocks.push_back(block);
  }
  const tokens question = T("\n\nnow , answer the question based on the text above , only give me the answer .\n"
                            "question : what is the " + std::string(asked) + " of") + names[target] +
                          T("? answer :") + names[target] + T(std::string(asked) + " :");
  const std::size_t budget = budget_of(n, intro, question, "multifieldqa_en");
  std::vector<double> depths(blocks.size());
  for (std::size_t i = 0; i < depths.size(); ++i) depths[i] = 100.0 * (i + r.uniform()) / depths.size();
  std::vector<std::size_t> at;
  std::size_t fixed = 0;
  for (const auto& b : blocks) fixed += b.size();
  if (fixed > budget) throw task_error("multifieldqa_en: the records do not fit in " + std::to_string(n) + " tokens");
  const tokens body = essay_with(r, budget, blocks, depths, &at);
  sample s = assemble(n, intro, body, question, "multifieldqa_en");
  s.references = {text_of(gold_value)};
  s.max_new_tokens = 6;
  s.info = {{"needle_position", 1 + intro.size() + at[target]}, {"depth_percent", depths[target]}, {"field", asked}};
  return s;
}

}  // namespace attnbench::tasks::longbench_detail
