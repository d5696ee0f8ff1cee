// RULER's needle-in-a-haystack tasks. RULER's template and parameters (scripts/data/
// synthetic/constants.py and synthetic.yaml in NVIDIA/RULER):
//   needle    "One of the special magic {numbers|uuids|words} for {key} is: {value}."
//   question  "What is the special magic {...} for {key} mentioned in the provided text?"
//   haystacks noise ("The grass is green. The sky is blue. ..."), essays, or other needles
//   keys      words (here: seeded pseudo-words), 7-digit numbers or uuids
//   values    7-digit numbers (randint(10^6, 10^7 - 1)), words or uuids
//   depths    each needle at one of 40 even points over 0-100%, distinct per sample
//
// The synthetic model has no semantics, so the answer prefix restates the needle's frame
// ("... for KEY is:"); the value is then copied token by token by the retrieval
// (induction) heads, which must find where that frame occurs. Several values for one key
// (multivalue) are read as the top candidates of the first answer steps (sample.branches);
// several keys (multiquery) are asked one after another (sample.follow_ups).
#include "niah.hpp"
#include "text.hpp"

#include <attnbench/kernels/random.hpp>
#include <attnbench/tasks/scoring.hpp>

#include <algorithm>
#include <cmath>
#include <set>

namespace attnbench::tasks {

const std::vector<niah_spec>& niah_specs() {
  using H = haystack_kind;
  using I = item_kind;
  static const std::vector<niah_spec> specs = {
      {"niah_single_1", H::noise, I::words, I::numbers, 1, 1, 1,
       "RULER single needle: noise haystack, word key, 7-digit number value"},
      {"niah_single_2", H::essay, I::words, I::numbers, 1, 1, 1,
       "RULER single needle: essay haystack, word key, 7-digit number value"},
      {"niah_single_3", H::essay, I::words, I::uuids, 1, 1, 1,
       "RULER single needle: essay haystack, word key, uuid value"},
      {"niah_multikey_1", H::essay, I::words, I::numbers, 4, 1, 1,
       "RULER multi-key: essay haystack, the needle among 3 distractor needles with other keys"},
      {"niah_multikey_2", H::needles, I::words, I::numbers, 1, 1, 1,
       "RULER multi-key: the haystack is made of needles with other word keys"},
      {"niah_multikey_3", H::needles, I::uuids, I::uuids, 1, 1, 1,
       "RULER multi-key: the haystack is made of needles with other uuid keys, uuid values"},
      {"niah_multivalue", H::essay, I::words, I::numbers, 1, 4, 1,
       "RULER multi-value: 4 values for one key, all must be recalled"},
      {"niah_multiquery", H::essay, I::words, I::numbers, 4, 1, 4,
       "RULER multi-query: 4 keys asked for, all values must be recalled"},
  };
  return specs;
}

namespace {

constexpr std::string_view kIntro =
    "some special magic {type} are hidden within the following text . make sure to memorize it . "
    "i will quiz you about the {type} afterwards .\n";

}  // namespace

niah_task::niah_task(const niah_spec& spec, const nlohmann::json& params) : spec_(spec), depths_(default_depths()) {
  for (const auto& [key, value] : params.items()) {
    if (key == "depths") {
      depths_ = parse_depths(value);
    } else if (key == "value_digits") {
      if (!value.is_number_integer() || value.get<int>() < 1 || value.get<int>() > 12)
        throw task_params_error("/value_digits", "expected an integer in [1, 12], got " + value.dump());
      value_digits_ = value.get<std::uint32_t>();
    } else {
      throw task_params_error("/" + key, "unknown parameter for " + std::string(spec_.name) +
                                             " (known: depths, value_digits)");
    }
  }
}

std::uint32_t niah_task::min_context_length() const {
  // <bos>, intro, needles, questions and answer prefixes (uuids are 36 tokens), with room
  // for some haystack.
  const std::uint32_t item = spec_.keys == item_kind::uuids || spec_.values == item_kind::uuids ? 36 : value_digits_;
  const std::uint32_t needles = spec_.num_keys * spec_.num_values;
  return 40 + needles * (14 + 2 * item) + spec_.num_queries * (30 + 2 * item) + 64;
}

sample niah_task::make_sample(std::uint64_t seed, std::uint32_t context_length) const {
  if (context_length < min_context_length())
    throw task_error(std::string(spec_.name) + " needs a context of at least " + std::to_string(min_context_length()) +
                     " tokens, got " + std::to_string(context_length));
  const auto& v = vocabulary::standard();
  rng r(seed);
  const std::string type(type_name(spec_.values));
  const token period = v.id(".");

  // Keys, values and the needles that carry them.
  std::set<std::string> taken;
  const auto keys = distinct_items(spec_.keys, r, value_digits_, spec_.num_keys, taken);
  std::vector<std::vector<item>> values;
  for (std::uint32_t k = 0; k < spec_.num_keys; ++k)
    values.push_back(distinct_items(spec_.values, r, value_digits_, spec_.num_values, taken));
  const auto needle_head = v.tokenize("one of the special magic " + type + " for");
  const auto needle_mid = v.tokenize("is :");
  const auto needle_end = v.tokenize(" . ");
  auto needle = [&](const item& key, const item& value) {
    return concat({needle_head, key.tokens, needle_mid, value.tokens, needle_end});
  };
  std::vector<std::vector<token>> needles;
  for (std::uint32_t k = 0; k < spec_.num_keys; ++k)
    for (std::uint32_t j = 0; j < spec_.num_values; ++j) needles.push_back(needle(keys[k], values[k][j]));

  // Question and answer prefixes: the first in the prompt, the others after each answer.
  const auto intro = v.tokenize(replace_all(std::string(kIntro), "{type}", type));
  auto answer_prefix = [&](const item& key) {
    return concat({v.tokenize("the special magic " + type + " for"), key.tokens, needle_mid});
  };
  std::vector<token> question = v.tokenize("\nwhat " + std::string(spec_.num_values > 1 ? "are all" : "is") +
                                           " the special magic " + type + " for");
  for (std::uint32_t q = 0; q < spec_.num_queries; ++q) {
    if (q > 0) question.push_back(v.id(q + 1 == spec_.num_queries ? "and" : ","));
    question.insert(question.end(), keys[q].tokens.begin(), keys[q].tokens.end());
  }
  const auto question_end = v.tokenize("mentioned in the provided text ?\nanswer :");
  question.insert(question.end(), question_end.begin(), question_end.end());
  const auto first_prefix = answer_prefix(keys[0]);
  question.insert(question.end(), first_prefix.begin(), first_prefix.end());

  std::size_t needle_tokens = 0;
  for (const auto& n : needles) needle_tokens += n.size();
  const std::size_t fixed = 1 + intro.size() + needle_tokens + question.size();
  if (fixed + 16 > context_length)
    throw task_error(std::string(spec_.name) + ": needles and question take " + std::to_string(fixed) +
                     " tokens, more than the context of " + std::to_string(context_length));
  const std::size_t haystack_len = context_length - fixed;

  // The haystack, cut at needle boundaries ('.').
  std::vector<token> haystack;
  switch (spec_.haystack) {
    case haystack_kind::noise: haystack = noise(haystack_len); break;
    case haystack_kind::essay: haystack = essay(r, haystack_len); break;
    case haystack_kind::needles: {
      // Needles with other keys and values, as many as fit; the rest is padding.
      while (true) {
        const auto k = distinct_items(spec_.keys, r, value_digits_, 1, taken);
        const auto val = make_item(spec_.values, r, value_digits_);
        const auto n = needle(k[0], val);
        if (haystack.size() + n.size() > haystack_len) break;
        haystack.insert(haystack.end(), n.begin(), n.end());
      }
      while (haystack.size() < haystack_len) haystack.push_back(period);
      break;
    }
  }

  // Depths: distinct points for the needles (RULER samples them without replacement when
  // there are enough), each insertion at the sentence boundary nearest to it.
  const std::vector<double> depth = draw_depths(r, depths_, needles.size());
  sample s;
  s.prompt.reserve(context_length);
  s.prompt.push_back(v.bos());
  s.prompt.insert(s.prompt.end(), intro.begin(), intro.end());
  const auto positions = interleave(s.prompt, haystack, needles, depth, period);
  nlohmann::json needle_info = nlohmann::json::array();
  for (std::size_t i = 0; i < needles.size(); ++i) {
    const std::uint32_t k = static_cast<std::uint32_t>(i) / spec_.num_values;
    needle_info.push_back({{"position", positions[i]},
                           {"tokens", needles[i].size()},
                           {"depth_percent", depth[i]},
                           {"key", keys[k].text},
                           {"value", values[k][i % spec_.num_values].text}});
  }
  s.prompt.insert(s.prompt.end(), question.begin(), question.end());

  for (std::uint32_t q = 0; q < spec_.num_queries; ++q)
    for (const auto& val : values[q]) s.references.push_back(val.text);
  for (std::uint32_t q = 1; q < spec_.num_queries; ++q) {
    auto follow = concat({v.tokenize(". "), answer_prefix(keys[q])});
    s.follow_ups.push_back(std::move(follow));
  }
  s.branches = spec_.num_values;
  const std::uint32_t value_len = spec_.values == item_kind::uuids ? 36 : spec_.values == item_kind::words ? 1
                                                                                                           : value_digits_;
  s.max_new_tokens = value_len + 3;
  s.stop_tokens = {period, v.newline(), v.eos()};
  s.info = {{"needles", needle_info}, {"depth_percent", depth[0]}, {"needle_position", needle_info[0]["position"]}};
  return s;
}

double niah_task::score(std::string_view prediction, const std::vector<std::string>& references) const {
  return string_match_all(prediction, references);
}

}  // namespace attnbench::tasks
