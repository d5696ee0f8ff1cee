// RULER's vt, cwe, fwe, qa_1 and qa_2 as analogs; qa_1 and qa_2 are in ruler-qa.cpp.
// RULER's parameters (synthetic.yaml):
//   vt   num_chains 1, num_hops 4, noise haystack, 5-digit values
//   cwe  freq_cw 30, freq_ucw 3, num_cw 10, numbered list "1. word 2. word ..."
//   fwe  alpha 2.0, vocab_size 2000, the most frequent word replaced by dots
//   qa   SQuAD (qa_1) and HotpotQA (qa_2) documents; here essay paragraphs with facts
// The synthetic model has no semantics, so answer prefixes restate the frame that comes
// before the answer in the text, as for the needles (docs/tasks.md).
#include "ruler.hpp"

#include <attnbench/tasks/scoring.hpp>

#include <algorithm>
#include <cmath>

namespace attnbench::tasks {
namespace ruler_detail {

std::vector<token> T(std::string_view text) { return vocabulary::standard().tokenize(text); }

std::vector<token> operator+(std::vector<token> a, std::span<const token> b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
std::vector<token> operator+(std::vector<token> a, token b) {
  a.push_back(b);
  return a;
}

std::string text_of(std::span<const token> tokens) { return vocabulary::standard().detokenize(tokens); }

sample start_sample(std::uint32_t context_length) {
  sample s;
  s.prompt.reserve(context_length);
  s.prompt.push_back(vocabulary::standard().bos());
  const auto& v = vocabulary::standard();
  s.stop_tokens = {v.id("."), v.newline(), v.eos()};
  return s;
}

}  // namespace ruler_detail

using namespace ruler_detail;

namespace {

std::uint32_t read_uint(const nlohmann::json& value, const std::string& key, std::uint32_t lo, std::uint32_t hi) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < lo || value.get<std::int64_t>() > hi)
    throw task_params_error("/" + key, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                           "], got " + value.dump());
  return value.get<std::uint32_t>();
}

}  // namespace

double ruler_task::score(std::string_view prediction, const std::vector<std::string>& references) const {
  return metric_ == "string_match_part" ? string_match_part(prediction, references)
                                        : string_match_all(prediction, references);
}

void ruler_task::require_length(std::uint32_t context_length) const {
  if (context_length < min_context_length())
    throw task_error(name_ + " needs a context of at least " + std::to_string(min_context_length()) + " tokens, got " +
                     std::to_string(context_length));
}

void ruler_task::unknown_param(const std::string& key, std::string_view known) const {
  throw task_params_error("/" + key, "unknown parameter for " + name_ + " (known: " + std::string(known) + ")");
}

// ---- vt ----------------------------------------------------------------------------
// RULER writes "VAR X2 = VAR X1", which a reader follows backwards from the value. The
// synthetic model's retrieval heads copy forwards only (the token after a matched
// context), so the analog writes each assignment in the direction the value flows:
// "the value 12345 is assigned to var X1 ." and "var X1 is assigned to var X2 .". The
// answer prefix restates the first frame; each follow-up ". var X is assigned to var",
// X being the model's own last answer, asks for the next hop, so a wrong hop derails the
// rest.

vt_task::vt_task(const nlohmann::json& params) : ruler_task("vt", "string_match_all"), depths_(default_depths()) {
  for (const auto& [key, value] : params.items()) {
    if (key == "depths") depths_ = parse_depths(value);
    else if (key == "num_chains") num_chains_ = read_uint(value, key, 1, 16);
    else if (key == "num_hops") num_hops_ = read_uint(value, key, 1, 16);
    else unknown_param(key, "depths, num_chains, num_hops");
  }
}

std::uint32_t vt_task::min_context_length() const { return 100 + num_chains_ * (num_hops_ + 1) * 12 + 64; }

sample vt_task::make_sample(std::uint64_t seed, std::uint32_t context_length, sample_domain domain) const {
  require_length(context_length);
  const auto& v = vocabulary::standard();
  rng r(seed, static_cast<std::uint64_t>(domain));
  std::set<std::string> taken;
  std::vector<item> values = distinct_items(item_kind::numbers, r, 5, num_chains_, taken);
  std::vector<std::vector<token>> statements;
  std::vector<std::vector<token>> chains;
  const auto assigned = T("is assigned to var");
  for (std::uint32_t c = 0; c < num_chains_; ++c) {
    const auto names = distinct_items(item_kind::words, r, 0, num_hops_ + 1, taken);
    std::vector<token> chain;
    for (const auto& n : names) chain.push_back(n.tokens[0]);
    statements.push_back(T("the value") + values[c].tokens + assigned + chain[0] + v.id("."));
    for (std::uint32_t k = 1; k <= num_hops_; ++k)
      statements.push_back(T("var") + chain[k - 1] + assigned + chain[k] + v.id("."));
    chains.push_back(std::move(chain));
  }
  const std::string value = values[0].text;
  const auto intro = T("memorize and track the chain of variable assignment hidden in the following text .\n");
  const auto question =
      T("\nquestion : find all variables that are assigned the value " + value +
        " in the text above . answer : according to the chain of variable assignment in the text above , " +
        std::to_string(num_hops_ + 1) + " variables are assigned the value " + value + " , they are : the value " +
        value + " is assigned to var");
  std::size_t fixed = 1 + intro.size() + question.size();
  for (const auto& s : statements) fixed += s.size();
  if (fixed + 16 > context_length)
    throw task_error("vt: statements and question take " + std::to_string(fixed) + " tokens, more than the context of " +
                     std::to_string(context_length));

  // Depths: distinct points; each chain's statements in chain order through the text.
  std::vector<double> depth = draw_depths(r, depths_, statements.size());
  for (std::uint32_t c = 0; c < num_chains_; ++c) {
    const auto first = depth.begin() + static_cast<std::ptrdiff_t>(c * (num_hops_ + 1));
    std::sort(first, first + num_hops_ + 1);
  }
  sample s = start_sample(context_length);
  s.prompt.insert(s.prompt.end(), intro.begin(), intro.end());
  const auto positions = interleave(s.prompt, noise(context_length - fixed), statements, depth, v.id("."));
  s.prompt.insert(s.prompt.end(), question.begin(), question.end());

  nlohmann::json needles = nlohmann::json::array();
  for (std::size_t i = 0; i < statements.size(); ++i)
    needles.push_back({{"position", positions[i]},
                       {"tokens", statements[i].size()},
                       {"depth_percent", depth[i]},
                       {"chain", i / (num_hops_ + 1)},
                       {"text", text_of(statements[i])}});
  for (token x : chains[0]) s.references.push_back(v.text(x));
  // ". var X is assigned to var", X being the model's own last answer.
  for (std::uint32_t k = 0; k < num_hops_; ++k) s.follow_ups.push_back(T(". var") + kLastAnswer + assigned);
  s.max_new_tokens = 3;
  s.info = {{"needles", needles}, {"value", value}, {"depth_percent", depth[0]}, {"needle_position", positions[0]}};
  return s;
}

// ---- cwe ---------------------------------------------------------------------------
// Read by aggregation heads: the cue "most" in the answer prefix turns their queries to
// the word category; repeated words weigh more (see docs/model.md), and the top
// candidates of the first answer step are the answers.

cwe_task::cwe_task(const nlohmann::json& params) : ruler_task("cwe", "string_match_all") {
  for (const auto& [key, value] : params.items()) {
    if (key == "num_cw") num_cw_ = read_uint(value, key, 1, 64);
    else if (key == "freq_cw") freq_cw_ = read_uint(value, key, 2, 1000);
    else if (key == "freq_ucw") freq_ucw_ = read_uint(value, key, 1, 1000);
    else unknown_param(key, "num_cw, freq_cw, freq_ucw");
  }
  if (freq_ucw_ >= freq_cw_)
    throw task_params_error("/freq_ucw", "must be below freq_cw (" + std::to_string(freq_cw_) + "), got " +
                                             std::to_string(freq_ucw_));
}

std::uint32_t cwe_task::min_context_length() const {
  // The common words' entries ("123 . word": up to 6 tokens) and the templates.
  return 120 + num_cw_ * freq_cw_ * 6 + 64;
}

sample cwe_task::make_sample(std::uint64_t seed, std::uint32_t context_length, sample_domain domain) const {
  require_length(context_length);
  const auto& v = vocabulary::standard();
  rng r(seed, static_cast<std::uint64_t>(domain));
  const std::string n = std::to_string(num_cw_);
  const auto intro = T("below is a numbered list of words . in these words , some appear more often than others . "
                       "memorize the ones that appear most often .\n");
  const auto question = T("\nquestion : what are the " + n + " most common words in the above list ? answer : the top " +
                          n + " words appearing most often in the list are :");
  const std::size_t budget = context_length - 1 - intro.size() - question.size();
  auto digits = [](std::size_t i) { return std::to_string(i).size(); };
  std::size_t entries = 0, used = 0;
  while (used + digits(entries + 1) + 2 <= budget) used += digits(++entries) + 2;
  const std::size_t common_entries = static_cast<std::size_t>(num_cw_) * freq_cw_;
  if (entries < common_entries)
    throw task_error("cwe: " + std::to_string(common_entries) + " entries of common words do not fit in " +
                     std::to_string(context_length) + " tokens");
  const std::size_t uncommon = (entries - common_entries + freq_ucw_ - 1) / freq_ucw_;
  const auto words = draw_words(r, num_cw_ + uncommon);
  std::vector<token> list;
  for (std::uint32_t c = 0; c < num_cw_; ++c) list.insert(list.end(), freq_cw_, words[c]);
  for (std::size_t u = num_cw_; u < words.size() && list.size() < entries; ++u)
    list.insert(list.end(), std::min<std::size_t>(freq_ucw_, entries - list.size()), words[u]);
  shuffle(list, r);

  sample s = start_sample(context_length);
  s.prompt.insert(s.prompt.end(), intro.begin(), intro.end());
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto number = T(std::to_string(i + 1));
    s.prompt.insert(s.prompt.end(), number.begin(), number.end());
    s.prompt.push_back(v.id("."));
    s.prompt.push_back(list[i]);
  }
  s.prompt.insert(s.prompt.end(), budget - used, v.newline());
  s.prompt.insert(s.prompt.end(), question.begin(), question.end());
  for (std::uint32_t c = 0; c < num_cw_; ++c) s.references.push_back(v.text(words[c]));
  s.branches = num_cw_;
  s.branch_ratio = 0.0f;  // the question says how many
  s.max_new_tokens = 1;
  s.info = {{"entries", entries},
            {"distinct_uncommon_words", std::min<std::size_t>(uncommon, v.pseudo_words().size() - num_cw_)},
            {"uncommon_frequency", freq_ucw_}};
  return s;
}

// ---- fwe ---------------------------------------------------------------------------

fwe_task::fwe_task(const nlohmann::json& params) : ruler_task("fwe", "string_match_all") {
  for (const auto& [key, value] : params.items()) {
    if (key == "alpha") {
      if (!value.is_number() || value.get<double>() <= 1.0 || value.get<double>() > 10.0)
        throw task_params_error("/alpha", "expected a number in (1, 10], got " + value.dump());
      alpha_ = value.get<double>();
    } else if (key == "vocab_size") {
      vocab_size_ = read_uint(value, key, 5, 8000);
    } else {
      unknown_param(key, "alpha, vocab_size");
    }
  }
}

std::uint32_t fwe_task::min_context_length() const { return 120 + 200 + 64; }

sample fwe_task::make_sample(std::uint64_t seed, std::uint32_t context_length, sample_domain domain) const {
  require_length(context_length);
  const auto& v = vocabulary::standard();
  rng r(seed, static_cast<std::uint64_t>(domain));
  const auto intro = T("read the following coded text and track the frequency of each coded word . find the three "
                       "most frequently appeared coded words .\n");
  const auto question = T(
      "\nquestion : do not provide any explanation . please ignore the dots . which three coded words appear "
      "the most in the above text ? answer : according to the coded text above , the three most "
      "frequently appeared words are :");
  const std::size_t budget = context_length - 1 - intro.size() - question.size();
  // RULER: count of rank k = floor(N k^-alpha / zeta(alpha)); rank 1 is the dots.
  double zeta = 0;
  for (int k = 1; k <= 100000; ++k) zeta += std::pow(k, -alpha_);
  zeta += std::pow(100000.0, 1.0 - alpha_) / (alpha_ - 1.0);
  const auto words = draw_words(r, vocab_size_);
  std::vector<token> text;
  std::vector<std::size_t> counts;
  for (std::uint32_t k = 0; k < vocab_size_; ++k) {
    const auto c = static_cast<std::size_t>(std::floor(static_cast<double>(budget) * std::pow(k + 1.0, -alpha_) / zeta));
    counts.push_back(c);
    text.insert(text.end(), c, k == 0 ? v.id(".") : words[k]);
  }
  if (counts[3] <= counts[4] || counts[3] == 0)
    throw task_error("fwe: " + std::to_string(context_length) + " tokens are too few to rank three words");
  text.insert(text.end(), budget - text.size(), v.id("."));  // the floors' remainder: more dots
  shuffle(text, r);

  sample s = start_sample(context_length);
  s.prompt.insert(s.prompt.end(), intro.begin(), intro.end());
  s.prompt.insert(s.prompt.end(), text.begin(), text.end());
  s.prompt.insert(s.prompt.end(), question.begin(), question.end());
  for (int k = 1; k <= 3; ++k) s.references.push_back(v.text(words[k]));
  s.branches = 3;
  s.branch_ratio = 0.0f;
  s.max_new_tokens = 1;
  s.info = {{"counts", std::vector<std::size_t>(counts.begin(), counts.begin() + 5)}};
  return s;
}

}  // namespace attnbench::tasks
