// RULER's qa_1 and qa_2 as analogs (vt, cwe and fwe are in ruler.cpp). RULER's documents
// are SQuAD's (qa_1) and HotpotQA's (qa_2); here essay paragraphs with facts.
#include "ruler.hpp"

#include <algorithm>
#include <cmath>

namespace attnbench::tasks {

using namespace ruler_detail;

// ---- qa ----------------------------------------------------------------------------
// Documents are essay paragraphs, each with one fact sentence. qa_1 asks for an
// attribute of an entity ("the capital of E is A"); other documents state other
// attributes of the same entity and the same attribute of other entities. qa_2 asks for
// the city of a company's founder: the founder is read from one document, then the
// follow-up "lives in the city of" after the model's own answer finds the city in another.

namespace {

constexpr std::string_view kAttributes[] = {"capital", "founder", "owner",  "partner", "friend",
                                            "director", "mayor",  "anthem", "color",   "river"};

struct document {
  std::vector<token> paragraph;  // ends with <nl>
  std::size_t fact_offset = 0;   // where the fact starts in the paragraph
  int gold = -1;                 // index of the gold fact, -1 for distractors
};

document make_document(rng& r, std::span<const token> fact) {
  const auto& v = vocabulary::standard();
  std::vector<token> text = essay(r, 50 + r.below(100));
  const token period = v.id(".");
  while (!text.empty() && text.back() != period) text.pop_back();
  // After a sentence, never at the paragraph's start: there the document header would
  // stand before the fact, and "... : the capital of" would look like the answer prefix.
  std::vector<std::size_t> boundaries;
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] == period) boundaries.push_back(i + 1);
  if (boundaries.empty()) text.push_back(period), boundaries.push_back(text.size());
  document d;
  d.fact_offset = boundaries[r.below(boundaries.size())];
  d.paragraph.assign(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(d.fact_offset));
  d.paragraph.insert(d.paragraph.end(), fact.begin(), fact.end());
  d.paragraph.insert(d.paragraph.end(), text.begin() + static_cast<std::ptrdiff_t>(d.fact_offset), text.end());
  d.paragraph.push_back(v.newline());
  return d;
}

std::vector<token> header(std::size_t i) { return T("document " + std::to_string(i) + " :"); }

// The words of a sample's facts: pseudo-words distinct within the sample.
struct fact_words {
  explicit fact_words(rng& gen) : r(gen) {}
  // A one-token pseudo-word not drawn before in this sample.
  token word() { return distinct_items(item_kind::words, r, 0, 1, taken)[0].tokens[0]; }
  // An answer of one or two such words.
  std::vector<token> answer_words() {
    std::vector<token> a{word()};
    if (r.below(2)) a.push_back(word());
    return a;
  }
  rng& r;
  std::set<std::string> taken;
};

// The fact "the ATTRIBUTE of ENTITY is ANSWER .".
std::vector<token> fact_sentence(std::string_view attribute, token entity, std::span<const token> answer) {
  return T("the " + std::string(attribute) + " of") + entity + T("is") + answer + vocabulary::standard().id(".");
}

// The fact "PERSON lives in the city of CITY .".
std::vector<token> lives_sentence(token person, token city) {
  return std::vector<token>{person} + T("lives in the city of") + city + vocabulary::standard().id(".");
}

// The gold facts and the question about them.
struct qa_gold {
  std::vector<std::vector<token>> facts;
  std::vector<token> question;
  token entity = 0;            // the entity asked about (qa_2: the company)
  std::string_view attribute;  // the attribute asked for (qa_2: "founder")
};

// qa_1's gold fact (an attribute of an entity) or qa_2's two (a founder, their city), with the question.
qa_gold draw_gold(fact_words& w, bool two_hop) {
  qa_gold gold;
  if (two_hop) {
    const token company = w.word(), person = w.word(), city = w.word();
    gold.facts = {fact_sentence("founder", company, std::vector<token>{person}), lives_sentence(person, city)};
    gold.question = T("\nquestion : where does the founder of") + company + T("live ? answer : the founder of") +
                    company + T("is");
    gold.entity = company;
    gold.attribute = "founder";
  } else {
    gold.attribute = kAttributes[w.r.below(std::size(kAttributes))];
    gold.entity = w.word();
    gold.facts = {fact_sentence(gold.attribute, gold.entity, w.answer_words())};
    gold.question = T("\nquestion : what is the " + std::string(gold.attribute) + " of") + gold.entity +
                    T("? answer : the " + std::string(gold.attribute) + " of") + gold.entity + T("is");
  }
  return gold;
}

// Distractors: for qa_1 two other attributes of the same entity, then facts about other
// entities; for qa_2 founders of other companies and the cities of other people.
// Returns distractor fact i.
std::vector<token> distractor(fact_words& w, const qa_gold& gold, bool two_hop, std::size_t i) {
  if (two_hop) {
    const token a = w.word(), b = w.word();
    return i % 2 == 0 ? fact_sentence("founder", a, std::vector<token>{b}) : lives_sentence(a, b);
  }
  std::string_view other = kAttributes[w.r.below(std::size(kAttributes))];
  while (other == gold.attribute) other = kAttributes[w.r.below(std::size(kAttributes))];
  if (i < 2) return fact_sentence(other, gold.entity, w.answer_words());
  // Three draws, in this order on every compiler (argument evaluation order is not fixed
  // by C++; this is the order GCC evaluated the single call that stood here before).
  const std::vector<token> answer = w.answer_words();
  const token entity = w.word();
  const std::string_view attribute = kAttributes[w.r.below(std::size(kAttributes))];
  return fact_sentence(attribute, entity, answer);
}

// A sample's documents before placement: the gold ones in gold order, then the distractors.
struct qa_documents {
  std::vector<document> golden, distractors;
};

// The gold documents and as many distractor documents as fit in `budget` with them.
qa_documents draw_documents(fact_words& w, const qa_gold& gold, bool two_hop, std::size_t budget) {
  // The gold documents first, so that the distractors fill what they leave.
  qa_documents d;
  std::size_t size = 0;
  for (std::size_t g = 0; g < gold.facts.size(); ++g) {
    d.golden.push_back(make_document(w.r, gold.facts[g]));
    d.golden.back().gold = static_cast<int>(g);
    size += d.golden.back().paragraph.size() + 6;
  }
  while (true) {
    document doc = make_document(w.r, distractor(w, gold, two_hop, d.distractors.size()));
    if (size + doc.paragraph.size() + 6 > budget) break;
    size += doc.paragraph.size() + 6;
    d.distractors.push_back(std::move(doc));
  }
  return d;
}

// The distractor documents with the gold ones inserted at their depths.
std::vector<document> place_gold(qa_documents d, const std::vector<double>& depth) {
  std::vector<document> docs = std::move(d.distractors);
  std::vector<std::pair<std::size_t, std::size_t>> at;  // (index among distractors, gold)
  for (std::size_t g = 0; g < d.golden.size(); ++g)
    at.emplace_back(static_cast<std::size_t>(std::llround(depth[g] / 100.0 * static_cast<double>(docs.size()))), g);
  std::stable_sort(at.begin(), at.end());
  for (std::size_t i = at.size(); i-- > 0;)
    docs.insert(docs.begin() + static_cast<std::ptrdiff_t>(at[i].first), std::move(d.golden[at[i].second]));
  return docs;
}

// The tokens the numbered documents take: headers and paragraphs.
std::size_t emitted(const std::vector<document>& docs) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < docs.size(); ++i) n += header(i + 1).size() + docs[i].paragraph.size();
  return n;
}

// The gold facts' info (position, tokens, depth, document, text), after appending the numbered documents to prompt.
nlohmann::json write_documents(std::vector<token>& prompt, const std::vector<document>& docs,
                               const std::vector<std::vector<token>>& gold, const std::vector<double>& depth) {
  nlohmann::json needles = nlohmann::json::array();
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const auto h = header(i + 1);
    prompt.insert(prompt.end(), h.begin(), h.end());
    if (docs[i].gold >= 0) {
      const auto g = static_cast<std::size_t>(docs[i].gold);
      needles.push_back({{"position", prompt.size() + docs[i].fact_offset},
                         {"tokens", gold[g].size()},
                         {"depth_percent", depth[g]},
                         {"document", i + 1},
                         {"text", text_of(gold[g])}});
    }
    prompt.insert(prompt.end(), docs[i].paragraph.begin(), docs[i].paragraph.end());
  }
  return needles;
}

// The reference answer in the last gold fact: its value (qa_1) or the city (qa_2).
std::string answer_text(const std::vector<token>& last, bool two_hop) {
  const auto& v = vocabulary::standard();
  const auto is_at = std::find(last.begin(), last.end(), two_hop ? v.id("of") : v.id("is"));
  const auto answer_begin = two_hop ? last.end() - 2 : is_at + 1;
  return text_of(std::span<const token>(answer_begin, last.end() - 1));
}

}  // namespace

qa_task::qa_task(bool two_hop, const nlohmann::json& params)
    : ruler_task(two_hop ? "qa_2" : "qa_1", "string_match_part"), two_hop_(two_hop), depths_(default_depths()) {
  for (const auto& [key, value] : params.items()) {
    if (key == "depths") depths_ = parse_depths(value);
    else unknown_param(key, "depths");
  }
}

std::uint32_t qa_task::min_context_length() const { return 120 + 2 * 170 + 64; }

sample qa_task::make_sample(std::uint64_t seed, std::uint32_t context_length, sample_domain domain) const {
  require_length(context_length);
  const auto& v = vocabulary::standard();
  rng r(seed, static_cast<std::uint64_t>(domain));
  fact_words w(r);

  // Gold facts, question and references.
  const qa_gold gold = draw_gold(w, two_hop_);
  const auto instruction =
      T("answer the question based on the given documents . only give me the answer and do not output any other "
        "words .\n");
  const auto intro = instruction + T("the following are given documents .\n");
  const std::size_t budget = context_length - 1 - intro.size() - instruction.size() - gold.question.size();

  qa_documents drawn = draw_documents(w, gold, two_hop_, budget);
  // Gold documents at their depths among the distractors.
  const std::vector<double> depth = draw_depths(r, depths_, gold.facts.size());
  std::vector<document> docs = place_gold(std::move(drawn), depth);
  // Numbered headers; drop trailing distractors until everything fits, then pad.
  while (emitted(docs) > budget) {
    auto it = std::find_if(docs.rbegin(), docs.rend(), [](const document& d) { return d.gold < 0; });
    if (it == docs.rend())
      throw task_error(name_ + ": the gold documents do not fit in " + std::to_string(context_length) + " tokens");
    docs.erase(std::next(it).base());
  }

  sample s = start_sample(context_length);
  s.prompt.insert(s.prompt.end(), intro.begin(), intro.end());
  const nlohmann::json needles = write_documents(s.prompt, docs, gold.facts, depth);
  s.prompt.insert(s.prompt.end(), budget - emitted(docs), v.newline());
  s.prompt.insert(s.prompt.end(), instruction.begin(), instruction.end());
  s.prompt.insert(s.prompt.end(), gold.question.begin(), gold.question.end());

  // The answer: the fact's value (qa_1) or the second document's city (qa_2).
  s.references.push_back(answer_text(gold.facts.back(), two_hop_));
  if (two_hop_) s.follow_ups.push_back(T("lives in the city of"));
  s.max_new_tokens = 4;
  s.info = {{"needles", needles}, {"documents", docs.size()}, {"depth_percent", depth[0]}};
  return s;
}

}  // namespace attnbench::tasks
