// LongBench multi-document QA: hotpotqa (two hops) and musique (three hops), chains of
// facts spread over passages among distractors.
#include "longbench-common.hpp"
#include "longbench-generators.hpp"

#include <algorithm>

namespace attnbench::tasks::longbench_detail {
namespace {

struct hop {
  std::string relation;  // "the founder of", "was born in the city of", ...
  bool subject_first;    // "X rel Y" (true) or "the rel of X is Y" (false)
};

// Passages headed "passage k :", one per fact (the fact after a sentence of essay text),
// then passages of essay alone up to the budget.
tokens passages(rng& r, std::size_t budget, std::vector<tokens> facts) {
  shuffle(facts, r);
  tokens out;
  for (std::size_t k = 0;; ++k) {
    tokens d = essay(r, 40 + r.below(120));
    while (!d.empty() && d.back() != V().id(".")) d.pop_back();
    if (k < facts.size()) {
      std::vector<std::size_t> ends;
      for (std::size_t i = 0; i < d.size(); ++i)
        if (d[i] == V().id(".")) ends.push_back(i + 1);
      const std::size_t cut = ends.empty() ? 0 : ends[r.below(ends.size())];
      d.insert(d.begin() + static_cast<std::ptrdiff_t>(cut), facts[k].begin(), facts[k].end());
    }
    const tokens h = T("passage " + std::to_string(k + 1) + " :\n");
    if (out.size() + h.size() + d.size() + 1 > budget) break;
    append(out, h);
    append(out, d);
    out.push_back(V().newline());
  }
  return out;
}

// A chain of hops from a start entity; `facts` gets the gold facts and distractors that
// reuse each hop's relation with other entities; returns the chain's entities.
struct chain_task {
  std::vector<tokens> facts;
  std::vector<tokens> entities;  // start, then one per hop
};

tokens fact_of(const hop& h, const tokens& from, const tokens& to) {
  if (h.subject_first) return from + T(h.relation) + to + V().id(".");
  return T("the " + h.relation + " of") + from + T("is") + to + V().id(".");
}

sample multi_hop(rng& r, std::uint32_t n, const std::vector<hop>& hops, std::string_view asking,
                 std::string_view name) {
  std::set<std::string> taken;
  chain_task c;
  c.entities.push_back(fresh_words(r, 1, taken));
  for (std::size_t h = 0; h < hops.size(); ++h)
    c.entities.push_back(h + 1 == hops.size() ? answer_words(r, taken, 2) : fresh_words(r, 1, taken));
  for (std::size_t h = 0; h < hops.size(); ++h) c.facts.push_back(fact_of(hops[h], c.entities[h], c.entities[h + 1]));
  const std::size_t gold = c.facts.size();
  // Distractors: every relation with other entities, about one per 110 tokens, at most
  // 2000 (each takes up to 3 of the 8000 pseudo-words; longer contexts get more prose).
  const std::size_t distractors = std::clamp<std::size_t>(n / 110, 6, 2000);
  for (std::size_t i = 0; i < distractors; ++i) {
    const hop& h = hops[i % hops.size()];
    c.facts.push_back(fact_of(h, fresh_words(r, 1, taken), answer_words(r, taken, 2)));
  }
  const tokens intro = T("answer the question based on the given passages . only give me the answer and do not "
                         "output any other words .\n\nthe following are given passages .\n");
  // `asking` holds "{}" where the start entity goes.
  const std::string q(asking);
  const auto brace = q.find("{}");
  const tokens question = T("\n\nanswer the question based on the given passages . only give me the answer and do "
                            "not output any other words .\nquestion : " + q.substr(0, brace)) +
                          c.entities[0] + T(q.substr(brace + 2) + " answer : the " + hops[0].relation + " of") +
                          c.entities[0] + T("is");
  const std::size_t budget = budget_of(n, intro, question, name);
  // Gold facts first in the list so that none is dropped when passages overflow; the
  // order in the text is shuffled.
  std::vector<tokens> facts = c.facts;
  tokens body;
  for (int attempt = 0;; ++attempt) {
    rng rr(r.next());
    body = passages(rr, budget, facts);
    bool all = true;
    for (std::size_t g = 0; g < gold; ++g)
      all &= std::search(body.begin(), body.end(), c.facts[g].begin(), c.facts[g].end()) != body.end();
    if (all) break;
    if (attempt > 50 || facts.size() <= gold) throw task_error(std::string(name) + ": the facts do not fit");
    facts.pop_back();  // fewer distractors
  }
  sample s = assemble(n, intro, body, question, name);
  for (std::size_t h = 1; h < hops.size(); ++h) {
    const hop& next = hops[h];
    // The follow-up restates the model's answer after a period, as the fact stands after one.
    if (next.subject_first) s.follow_ups.push_back(T(".") + kLastAnswer + T(next.relation));
    else s.follow_ups.push_back(T(". the " + next.relation + " of") + kLastAnswer + T("is"));
  }
  s.score_final_generation = true;
  s.references = {text_of(c.entities.back())};
  s.max_new_tokens = 4;
  nlohmann::json chain = nlohmann::json::array();
  for (const auto& e : c.entities) chain.push_back(text_of(e));
  s.info = {{"chain", chain}, {"facts", c.facts.size()}};
  return s;
}

}  // namespace

// hotpotqa: two hops through a bridge entity, three kinds of bridge.
sample hotpotqa(rng& r, std::uint32_t n) {
  switch (r.below(3)) {
    case 0: return multi_hop(r, n, {{"founder", false}, {"lives in the city of", true}},
                             "where does the founder of {} live ?", "hotpotqa");
    case 1: return multi_hop(r, n, {{"director of film", false}, {"was born in the city of", true}},
                             "where was the director of film {} born ?", "hotpotqa");
    default: return multi_hop(r, n, {{"owner", false}, {"works at the school of", true}},
                              "where does the owner of {} work ?", "hotpotqa");
  }
}

// musique: three hops (film -> director -> birthplace -> its mayor).
sample musique(rng& r, std::uint32_t n) {
  return multi_hop(r, n, {{"director of film", false}, {"was born in the city of", true}, {"mayor", false}},
                   "who is the mayor of the city where the director of film {} was born ?", "musique");
}

}  // namespace attnbench::tasks::longbench_detail
