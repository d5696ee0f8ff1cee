// LongBench's six categories as generators for the synthetic model. Prompts follow
// LongBench's templates (config/dataset2prompt.json) where the model allows; the model
// copies forwards only (a retrieval head returns the token after a context it matches),
// so an answer prefix restates the frame that stands before the answer in the context,
// as in the RULER analogs. docs/tasks.md says, task by task, which heads answer and
// where the analog is easier or harder than its LongBench counterpart.
#include "longbench.hpp"

#include <attnbench/tasks/scoring.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace attnbench::tasks {
namespace {

using tokens = std::vector<token>;

const vocabulary& V() { return vocabulary::standard(); }
tokens T(std::string_view text) { return V().tokenize(text); }

tokens operator+(tokens a, std::span<const token> b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
tokens operator+(tokens a, token b) {
  a.push_back(b);
  return a;
}
void append(tokens& out, std::span<const token> x) { out.insert(out.end(), x.begin(), x.end()); }

std::string text_of(std::span<const token> x) { return V().detokenize(x); }

// A prompt: <bos>, the intro, the body, newlines up to the length, the question.
sample assemble(std::uint32_t n, std::span<const token> intro, std::span<const token> body,
                std::span<const token> question, std::string_view task) {
  const std::size_t used = 1 + intro.size() + body.size() + question.size();
  if (used > n)
    throw task_error(std::string(task) + ": the context needs " + std::to_string(used) + " tokens, more than " +
                     std::to_string(n));
  sample s;
  s.prompt.reserve(n);
  s.prompt.push_back(V().bos());
  append(s.prompt, intro);
  append(s.prompt, body);
  s.prompt.insert(s.prompt.end(), n - used, V().newline());
  append(s.prompt, question);
  s.stop_tokens = {V().id("."), V().newline(), V().eos()};
  return s;
}

std::size_t budget_of(std::uint32_t n, std::span<const token> intro, std::span<const token> question,
                      std::string_view task) {
  const std::size_t fixed = 1 + intro.size() + question.size();
  if (fixed + 64 > n)
    throw task_error(std::string(task) + ": " + std::to_string(n) + " tokens leave no room for the context");
  return n - fixed;
}

// Pseudo-words not in `taken` (which gets them).
std::vector<token> fresh_words(rng& r, std::size_t n, std::set<std::string>& taken) {
  std::vector<token> out;
  for (const auto& it : distinct_items(item_kind::words, r, 0, n, taken)) out.push_back(it.tokens[0]);
  return out;
}

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

// One to `most` fresh pseudo-words: a multi-token answer.
tokens answer_words(rng& r, std::set<std::string>& taken, std::size_t most) {
  return fresh_words(r, 1 + r.below(most), taken);
}

constexpr std::string_view kStoryAttributes[] = {"friend", "partner", "owner", "color", "favorite", "capital"};

// ---- single-document QA ------------------------------------------------------------

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

// ---- multi-document QA -------------------------------------------------------------

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

// ---- summarisation -----------------------------------------------------------------

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
  s.branch_separator = " ";
  s.max_new_tokens = 1;
  return s;
}

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

// ---- few-shot classification -------------------------------------------------------

// Class names: pseudo-words drawn with a fixed seed, none inside another.
std::vector<std::string> class_names(std::uint64_t seed, std::size_t n) {
  rng r(seed);
  std::vector<std::string> out;
  const auto& pool = V().pseudo_words();
  while (out.size() < n) {
    const std::string w = V().text(pool[r.below(pool.size())]);
    if (w.size() < 6) continue;
    const bool clash = std::any_of(out.begin(), out.end(), [&](const std::string& o) {
      return o.find(w) != std::string::npos || w.find(o) != std::string::npos;
    });
    if (!clash) out.push_back(w);
  }
  return out;
}

const std::vector<std::string>& trec_classes() {
  static const auto c = class_names(0x74726563, 50);  // "trec"
  return c;
}
const std::vector<std::string>& lsht_classes() {
  static const auto c = class_names(0x6c736874, 24);  // "lsht"
  return c;
}

std::set<std::string> class_set(const std::vector<std::string>& classes) {
  return std::set<std::string>(classes.begin(), classes.end());
}

// Examples "PROMPT LABEL" in shuffled rounds over the cases (each case one class's cue),
// the gold case early enough in the first round to fit, then the test prompt.
template <class Example>
sample few_shot(rng& r, std::uint32_t n, std::string_view name, const tokens& intro, std::size_t cases,
                std::size_t gold, std::size_t typical_length, Example example,
                const std::function<std::string(std::size_t)>& label) {
  const tokens question = T("\n") + example(gold);
  const std::size_t budget = budget_of(n, intro, question, name);
  std::vector<std::size_t> order(cases);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  tokens body;
  bool seen = false, full = false;
  for (std::size_t round = 0; !full; ++round) {
    shuffle(order, r);
    if (round == 0)
      std::swap(*std::find(order.begin(), order.end(), gold),
                order[r.below(std::clamp<std::size_t>(budget / typical_length, 1, order.size()))]);
    for (std::size_t c : order) {
      const tokens e = example(c) + T(label(c)) + V().newline();
      if (body.size() + e.size() > budget) {
        full = true;
        break;
      }
      append(body, e);
      seen |= c == gold;
    }
  }
  if (!seen) throw task_error(std::string(name) + ": " + std::to_string(n) + " tokens do not hold the asked example");
  sample s = assemble(n, intro, body, question, name);
  s.references = {label(gold)};
  s.max_new_tokens = 2;
  return s;
}

// trec: 50 classes; a question's class is told by its cue word (two per class), the word
// right before "type :". The test question reuses a cue seen in an example.
sample trec(rng& r, std::uint32_t n) {
  const auto& classes = trec_classes();
  std::set<std::string> taken = class_set(classes);
  const auto cues = fresh_words(r, classes.size() * 2, taken);
  auto example = [&](std::size_t cue) {
    tokens q = T("question :") + essay(r, 3 + r.below(6));
    std::erase(q, V().id("."));
    return q + cues[cue] + T("type :");
  };
  const std::size_t gold = r.below(cues.size());
  sample s = few_shot(r, n, "trec",
                      T("please determine the type of the question below . here are some examples of questions .\n\n"),
                      cues.size(), gold, 16, example, [&](std::size_t cue) { return classes[cue / 2]; });
  s.info = {{"cue", V().text(cues[gold])}};
  return s;
}

// lsht: 24 news classes; a class is told by a two-word topic phrase before "category :".
// Classes come in pairs that share the phrase's second word, so the last three tokens
// name two classes and only a longer context tells them apart.
sample lsht(rng& r, std::uint32_t n) {
  const auto& classes = lsht_classes();
  std::set<std::string> taken = class_set(classes);
  const auto firsts = fresh_words(r, classes.size(), taken);
  const auto seconds = fresh_words(r, classes.size() / 2, taken);
  auto example = [&](std::size_t c) {
    tokens q = T("news :") + essay(r, 20 + r.below(40));
    std::erase(q, V().id("."));
    return q + firsts[c] + seconds[c / 2] + T("category :");
  };
  return few_shot(r, n, "lsht", T("please classify the news below . here are some examples .\n\n"), classes.size(),
                  r.below(classes.size()), 64, example, [&](std::size_t c) { return classes[c]; });
}

// ---- synthetic ---------------------------------------------------------------------

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

// ---- code --------------------------------------------------------------------------

// A statement of code-like tokens over the identifiers in `names`, without its ";".
tokens code_line(rng& r, const std::vector<token>& names) {
  auto id = [&] { return names[r.below(names.size())]; };
  const token eq = V().id("="), dot = V().id("."), open = V().id("("), close = V().id(")"), comma = V().id(",");
  switch (r.below(6)) {
    case 0: return {id(), eq, id(), dot, id(), open, id(), comma, id(), close};
    case 1: return {V().id("self"), dot, id(), eq, id(), V().id("["), id(), V().id("]")};
    case 2: return {V().id("if"), open, id(), V().id("<"), id(), close, V().id("return"), id()};
    case 3: return {V().id("return"), id(), V().id("+"), id(), V().id("*"), id()};
    case 4: return {V().id("def"), id(), open, id(), comma, id(), close};
    default: return {id(), eq, id(), open, id(), close};
  }
}

// A statement as a line: its tokens, ";", a line end.
tokens as_line(std::span<const token> statement) { return tokens(statement.begin(), statement.end()) + V().id(";") + V().newline(); }

tokens code_lines(rng& r, std::size_t n, const std::vector<token>& names) {
  tokens out;
  while (true) {
    const tokens line = as_line(code_line(r, names));
    if (out.size() + line.size() > n) break;
    append(out, line);
  }
  out.insert(out.end(), n - out.size(), V().newline());
  return out;
}

sample code_sample(std::uint32_t n, std::span<const token> intro, std::span<const token> body,
                   std::span<const token> ending, std::string reference, std::string_view name) {
  sample s = assemble(n, intro, body, ending, name);
  s.stop_tokens = {V().id(";"), V().eos()};  // a statement ends at ";" (the readout never emits a line end)
  s.references = {std::move(reference)};
  s.max_new_tokens = 24;
  return s;
}

// lcc: a file of code-like lines; a block of lines far back is repeated near the end and
// the next line of the block is to be written.
sample lcc(rng& r, std::uint32_t n) {
  std::set<std::string> taken;
  const auto names = fresh_words(r, 400, taken);
  const tokens intro = T("please complete the code given below .\n");
  std::vector<tokens> block;
  const std::size_t lines = 4 + r.below(4), shown = 2 + r.below(lines - 2);
  for (std::size_t i = 0; i < lines; ++i) block.push_back(code_line(r, names));
  tokens repeat;
  for (std::size_t i = 0; i < shown; ++i) append(repeat, as_line(block[i]));
  const std::size_t budget = budget_of(n, intro, repeat, "lcc");
  tokens far;
  for (const auto& l : block) append(far, as_line(l));
  if (far.size() + 16 > budget) throw task_error("lcc: " + std::to_string(n) + " tokens are too few");
  tokens body = code_lines(r, budget - far.size(), names);
  // The block goes after a line end at a random depth of the file's first 90%.
  std::size_t at = r.below(body.size() * 9 / 10 + 1);
  while (at > 0 && body[at - 1] != V().newline()) --at;
  body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), far.begin(), far.end());
  sample s = code_sample(n, intro, body, repeat, text_of(block[shown]), "lcc");
  s.info = {{"block_position", 1 + intro.size() + at}, {"line", shown}};
  return s;
}

// repobench-p: files of a repository; one defines a function and another calls it; the
// current file ends in a call of it, whose arguments are to be written.
sample repobench_p(rng& r, std::uint32_t n) {
  std::set<std::string> taken;
  const auto names = fresh_words(r, 400, taken);
  const auto functions = fresh_words(r, 6, taken);  // the first is asked about
  const tokens intro = T("please complete the code given below .\n");
  const token eq = V().id("="), open = V().id("("), close = V().id(")"), comma = V().id(",");
  auto args = [&] { return tokens{names[r.below(names.size())], comma, names[r.below(names.size())], close}; };
  std::vector<tokens> arg(functions.size());
  for (auto& a : arg) a = args();
  const tokens ending = T("file : main . py\n") + tokens{names[r.below(names.size())], eq, functions[0], open};
  const std::size_t budget = budget_of(n, intro, ending, "repobench-p");
  const std::size_t files = std::clamp<std::size_t>(budget / 400, 3, 24);
  const std::size_t per = budget / files;
  // Each function is defined in one file and called in another.
  std::vector<std::vector<tokens>> planted(files);
  for (std::size_t f = 0; f < functions.size(); ++f) {
    const std::size_t def = r.below(files);
    std::size_t use = r.below(files);
    if (use == def) use = (use + 1) % files;
    planted[def].push_back(tokens{V().id("def"), functions[f], open} + arg[f]);
    planted[use].push_back(tokens{names[r.below(names.size())], eq, functions[f], open} + arg[f]);
  }
  tokens body;
  for (std::size_t f = 0; f < files; ++f) {
    const tokens h = T("file :") + names[r.below(names.size())] + T(". py\n");
    std::size_t fixed = h.size();
    for (const auto& p : planted[f]) fixed += p.size() + 2;
    if (fixed + 8 > per) throw task_error("repobench-p: " + std::to_string(n) + " tokens are too few");
    tokens code = code_lines(r, per - fixed, names);
    for (const auto& p : planted[f]) {
      std::size_t at = r.below(code.size() + 1);
      while (at > 0 && code[at - 1] != V().newline()) --at;
      const tokens line = as_line(p);
      code.insert(code.begin() + static_cast<std::ptrdiff_t>(at), line.begin(), line.end());
    }
    append(body, h);
    append(body, code);
  }
  sample s = code_sample(n, intro, body, ending, text_of(arg[0]), "repobench-p");
  s.info = {{"function", V().text(functions[0])}};
  return s;
}

}  // namespace

const std::vector<longbench_spec>& longbench_specs() {
  using m = longbench_metric;
  static const std::vector<longbench_spec> specs{
      {"narrativeqa", "single_doc_qa", m::qa_f1, 640, narrativeqa,
       "LongBench NarrativeQA: an attribute of one of six recurring characters in a story (qa_f1)"},
      {"multifieldqa_en", "single_doc_qa", m::qa_f1, 640, multifieldqa_en,
       "LongBench MultiFieldQA-en: one field of one entity in a document of prose and records (qa_f1)"},
      {"hotpotqa", "multi_doc_qa", m::qa_f1, 1024, hotpotqa,
       "LongBench HotpotQA: two hops through a bridge entity across passages with distractors (qa_f1)"},
      {"musique", "multi_doc_qa", m::qa_f1, 1024, musique,
       "LongBench MuSiQue: three hops across passages with distractors (qa_f1)"},
      {"gov_report", "summarization", m::rouge_l, 1024, gov_report,
       "LongBench GovReport: list the five topic words of a long report, most frequent first (rouge_l)"},
      {"multi_news", "summarization", m::rouge_l, 1024, multi_news,
       "LongBench Multi-News: list the five topic words of several articles (rouge_l)"},
      {"trec", "few_shot", m::classification, 1024, trec,
       "LongBench TREC: 50-class question typing from in-context examples (classification)"},
      {"lsht", "few_shot", m::classification, 1024, lsht,
       "LongBench LSHT: 24-class news classification from in-context examples (classification)"},
      {"passage_count", "synthetic", m::count, 1024, passage_count,
       "LongBench PassageCount: how many unique paragraphs among repeats (count)"},
      {"passage_retrieval_en", "synthetic", m::retrieval, 1024, passage_retrieval_en,
       "LongBench PassageRetrieval-en: which of 30 paragraphs an abstract comes from (retrieval)"},
      {"lcc", "code", m::code_similarity, 640, lcc,
       "LongBench LCC: the next line of a code block repeated from far back (code_sim)"},
      {"repobench-p", "code", m::code_similarity, 1024, repobench_p,
       "LongBench RepoBench-P: the arguments of a call to a function defined in another file (code_sim)"},
  };
  return specs;
}

std::string_view longbench_category(std::string_view task) {
  for (const auto& s : longbench_specs())
    if (s.name == task) return s.category;
  return {};
}

const std::vector<std::string>& longbench_classes(std::string_view task) {
  static const std::vector<std::string> none;
  if (task == "trec") return trec_classes();
  if (task == "lsht") return lsht_classes();
  return none;
}

longbench_task::longbench_task(const longbench_spec& spec, const nlohmann::json& params) : spec_(spec) {
  for (const auto& [key, value] : params.items())
    throw task_params_error("/" + key, "unknown parameter for " + std::string(spec.name) + " (it takes none)");
}

std::string_view longbench_task::metric() const {
  switch (spec_.metric) {
    case longbench_metric::qa_f1: return "qa_f1";
    case longbench_metric::rouge_l: return "rouge_l";
    case longbench_metric::classification: return "classification";
    case longbench_metric::count: return "count";
    case longbench_metric::retrieval: return "retrieval";
    case longbench_metric::code_similarity: return "code_sim";
  }
  return "";
}

sample longbench_task::make_sample(std::uint64_t seed, std::uint32_t context_length) const {
  if (context_length < spec_.min_context_length)
    throw task_error(std::string(spec_.name) + " needs a context of at least " +
                     std::to_string(spec_.min_context_length) + " tokens, got " + std::to_string(context_length));
  rng r(seed);
  return spec_.generate(r, context_length);
}

double longbench_task::score(std::string_view prediction, const std::vector<std::string>& references) const {
  double best = 0.0;
  for (const auto& ref : references) {
    double x = 0.0;
    switch (spec_.metric) {
      case longbench_metric::qa_f1: x = longbench::qa_f1(prediction, ref); break;
      case longbench_metric::rouge_l: x = longbench::rouge_l(prediction, ref); break;
      case longbench_metric::classification:
        x = longbench::classification(prediction, ref, longbench_classes(spec_.name));
        break;
      case longbench_metric::count: x = longbench::count(prediction, ref); break;
      case longbench_metric::retrieval: x = longbench::retrieval(prediction, ref); break;
      case longbench_metric::code_similarity: x = longbench::code_similarity(prediction, ref); break;
    }
    best = std::max(best, x);
  }
  return 100.0 * best;
}

}  // namespace attnbench::tasks
