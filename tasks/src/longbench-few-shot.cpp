// LongBench few-shot classification: trec and lsht, in-context examples of fixed classes
// followed by a test prompt.
#include "longbench-common.hpp"
#include "longbench-generators.hpp"

#include <algorithm>
#include <functional>

namespace attnbench::tasks::longbench_detail {
namespace {

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

}  // namespace

const std::vector<std::string>& trec_classes() {
  static const auto c = class_names(0x74726563, 50);  // "trec"
  return c;
}
const std::vector<std::string>& lsht_classes() {
  static const auto c = class_names(0x6c736874, 24);  // "lsht"
  return c;
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

}  // namespace attnbench::tasks::longbench_detail
