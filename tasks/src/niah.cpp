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

// An integer task parameter in [1, most]; task_params_error naming it otherwise.
std::uint32_t count_param(const std::string& key, const nlohmann::json& value, int most) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < 1 || value.get<std::int64_t>() > most)
    throw task_params_error("/" + key, "expected an integer in [1, " + std::to_string(most) + "], got " + value.dump());
  return value.get<std::uint32_t>();
}

constexpr std::string_view kIntro =
    "some special magic {type} are hidden within the following text . make sure to memorize it . "
    "i will quiz you about the {type} afterwards .\n";

}  // namespace

niah_task::niah_task(const niah_spec& spec, const nlohmann::json& params) : spec_(spec), depths_(default_depths()) {
  for (const auto& [key, value] : params.items()) {
    if (key == "depths") {
      depths_ = parse_depths(value);
    } else if (key == "value_digits") {
      value_digits_ = count_param(key, value, 12);
    } else if (key == "num_needle_k") {
      spec_.num_keys = count_param(key, value, 64);
    } else if (key == "num_needle_v") {
      spec_.num_values = count_param(key, value, 64);
    } else if (key == "depth_spread") {
      if (value != "random" && value != "even")
        throw task_params_error("/depth_spread", "expected \"random\" (RULER's draw) or \"even\", got " + value.dump());
      even_spread_ = value == "even";
    } else if (key == "num_needle_q") {
      spec_.num_queries = count_param(key, value, 64);
    } else {
      throw task_params_error("/" + key, "unknown parameter for " + std::string(spec_.name) +
                                             " (known: depths, depth_spread, value_digits, num_needle_k, num_needle_v, num_needle_q)");
    }
  }
  if (spec_.num_queries > spec_.num_keys)
    throw task_params_error(params.contains("num_needle_q") ? "/num_needle_q" : "/num_needle_k",
                            "asks about " + std::to_string(spec_.num_queries) + " keys (num_needle_q) but has only " +
                                std::to_string(spec_.num_keys) + " (num_needle_k)");
  // Every value of a sample differs from the others (and numbers have no leading zero).
  if (spec_.values == item_kind::numbers && spec_.num_keys * spec_.num_values > 1) {
    const double distinct = 9.0 * std::pow(10.0, static_cast<double>(value_digits_) - 1);
    if (static_cast<double>(spec_.num_keys * spec_.num_values) * 2 > distinct)
      throw task_params_error(params.contains("value_digits") ? "/value_digits" : "/num_needle_k",
                              std::to_string(spec_.num_keys * spec_.num_values) + " values (num_needle_k x num_needle_v) "
                              "need more distinct numbers than " + std::to_string(value_digits_) + " digits give");
  }
  if (spec_.num_queries > 1 && spec_.num_values > 1)
    throw task_params_error(params.contains("num_needle_q") ? "/num_needle_q" : "/num_needle_v",
                            "several keys asked about (num_needle_q) with several values each (num_needle_v) is not "
                            "supported: each answer after the first is read as one value");
}

std::uint32_t niah_task::min_context_length() const {
  // <bos>, intro, needles, questions and answer prefixes (uuids are 36 tokens), with room
  // for some haystack.
  const std::uint32_t item = spec_.keys == item_kind::uuids || spec_.values == item_kind::uuids ? 36 : value_digits_;
  const std::uint32_t needles = spec_.num_keys * spec_.num_values;
  return 40 + needles * (14 + 2 * item) + spec_.num_queries * (30 + 2 * item) + 64;
}

// The needle template "one of the special magic {type} for KEY is : VALUE . " and the
// answer prefix that restates its frame.
struct niah_task::needle_frame {
  std::string type;
  std::vector<token> head, mid, end;

  explicit needle_frame(item_kind values)
      : type(type_name(values)),
        head(vocabulary::standard().tokenize("one of the special magic " + type + " for")),
        mid(vocabulary::standard().tokenize("is :")),
        end(vocabulary::standard().tokenize(" . ")) {}
  // The needle that states `value` for `key`.
  std::vector<token> needle(const item& key, const item& value) const {
    return concat({head, key.tokens, mid, value.tokens, end});
  }
  // The answer prefix "the special magic {type} for KEY is :".
  std::vector<token> answer_prefix(const item& key) const {
    return concat({vocabulary::standard().tokenize("the special magic " + type + " for"), key.tokens, mid});
  }
};

struct niah_task::needle_set {
  std::vector<item> keys;
  std::vector<std::vector<item>> values;   // values[k]: the values for keys[k]
  std::vector<std::vector<token>> needles;  // needle k * num_values + j: value j of key k
};

niah_task::needle_set niah_task::draw_needles(rng& r, const needle_frame& frame, std::set<std::string>& taken) const {
  needle_set drawn;
  drawn.keys = distinct_items(spec_.keys, r, value_digits_, spec_.num_keys, taken);
  for (std::uint32_t k = 0; k < spec_.num_keys; ++k)
    drawn.values.push_back(distinct_items(spec_.values, r, value_digits_, spec_.num_values, taken));
  for (std::uint32_t k = 0; k < spec_.num_keys; ++k)
    for (std::uint32_t j = 0; j < spec_.num_values; ++j)
      drawn.needles.push_back(frame.needle(drawn.keys[k], drawn.values[k][j]));
  return drawn;
}

std::vector<token> niah_task::make_question(const needle_frame& frame, const std::vector<item>& keys) const {
  const auto& v = vocabulary::standard();
  std::vector<token> question = v.tokenize("\nwhat " + std::string(spec_.num_values > 1 ? "are all" : "is") +
                                           " the special magic " + frame.type + " for");
  for (std::uint32_t q = 0; q < spec_.num_queries; ++q) {
    if (q > 0) question.push_back(v.id(q + 1 == spec_.num_queries ? "and" : ","));
    question.insert(question.end(), keys[q].tokens.begin(), keys[q].tokens.end());
  }
  const auto question_end = v.tokenize("mentioned in the provided text ?\nanswer :");
  question.insert(question.end(), question_end.begin(), question_end.end());
  const auto first_prefix = frame.answer_prefix(keys[0]);
  question.insert(question.end(), first_prefix.begin(), first_prefix.end());
  return question;
}

std::vector<token> niah_task::make_haystack(rng& r, const needle_frame& frame, std::set<std::string>& taken,
                                            std::size_t length) const {
  const token period = vocabulary::standard().id(".");
  std::vector<token> haystack;
  switch (spec_.haystack) {
    case haystack_kind::noise: haystack = noise(length); break;
    case haystack_kind::essay: haystack = essay(r, length); break;
    case haystack_kind::needles: {
      // Needles with other keys and values, as many as fit; the rest is padding.
      while (true) {
        const auto k = distinct_items(spec_.keys, r, value_digits_, 1, taken);
        const auto val = make_item(spec_.values, r, value_digits_);
        const auto n = frame.needle(k[0], val);
        if (haystack.size() + n.size() > length) break;
        haystack.insert(haystack.end(), n.begin(), n.end());
      }
      while (haystack.size() < length) haystack.push_back(period);
      break;
    }
  }
  return haystack;
}

nlohmann::json niah_task::describe_needles(const needle_set& drawn, const std::vector<std::size_t>& positions,
                                           const std::vector<double>& depth) const {
  nlohmann::json needle_info = nlohmann::json::array();
  for (std::size_t i = 0; i < drawn.needles.size(); ++i) {
    const std::uint32_t k = static_cast<std::uint32_t>(i) / spec_.num_values;
    needle_info.push_back({{"position", positions[i]},
                           {"tokens", drawn.needles[i].size()},
                           {"depth_percent", depth[i]},
                           {"key", drawn.keys[k].text},
                           {"value", drawn.values[k][i % spec_.num_values].text}});
  }
  return needle_info;
}

void niah_task::set_answers(sample& s, const needle_frame& frame, const needle_set& drawn) const {
  const auto& v = vocabulary::standard();
  for (std::uint32_t q = 0; q < spec_.num_queries; ++q)
    for (const auto& val : drawn.values[q]) s.references.push_back(val.text);
  for (std::uint32_t q = 1; q < spec_.num_queries; ++q) {
    auto follow = concat({v.tokenize(". "), frame.answer_prefix(drawn.keys[q])});
    s.follow_ups.push_back(std::move(follow));
  }
  s.branches = spec_.num_values;
  const std::uint32_t value_len = spec_.values == item_kind::uuids   ? 36
                                  : spec_.values == item_kind::words ? 1
                                                                     : value_digits_;
  s.max_new_tokens = value_len + 3;
  s.stop_tokens = {v.id("."), v.newline(), v.eos()};
}

sample niah_task::make_sample(std::uint64_t seed, std::uint32_t context_length, sample_domain domain) const {
  return build(seed, context_length, domain, std::nullopt);
}

sample niah_task::make_sample_at(std::uint64_t seed, std::uint32_t context_length, std::uint32_t index,
                                 sample_domain domain) const {
  if (!even_spread_) return build(seed, context_length, domain, std::nullopt);
  constexpr double kInverseGolden = 0.6180339887498949;
  const double u = std::fmod(index * kInverseGolden, 1.0);
  const auto point = std::min(depths_.size() - 1, static_cast<std::size_t>(u * static_cast<double>(depths_.size())));
  return build(seed, context_length, domain, point);
}

sample niah_task::build(std::uint64_t seed, std::uint32_t context_length, sample_domain domain,
                        std::optional<std::size_t> first_depth) const {
  if (context_length < min_context_length())
    throw task_error(std::string(spec_.name) + " needs a context of at least " + std::to_string(min_context_length()) +
                     " tokens, got " + std::to_string(context_length));
  const auto& v = vocabulary::standard();
  rng r(seed, static_cast<std::uint64_t>(domain));
  const needle_frame frame(spec_.values);
  const token period = v.id(".");

  // Keys, values and the needles that carry them.
  std::set<std::string> taken;
  const needle_set drawn = draw_needles(r, frame, taken);

  // Question and answer prefixes: the first in the prompt, the others after each answer.
  const auto intro = v.tokenize(replace_all(std::string(kIntro), "{type}", frame.type));
  const std::vector<token> question = make_question(frame, drawn.keys);

  std::size_t needle_tokens = 0;
  for (const auto& n : drawn.needles) needle_tokens += n.size();
  const std::size_t fixed = 1 + intro.size() + needle_tokens + question.size();
  if (fixed + 16 > context_length)
    throw task_error(std::string(spec_.name) + ": needles and question take " + std::to_string(fixed) +
                     " tokens, more than the context of " + std::to_string(context_length));
  const std::size_t haystack_len = context_length - fixed;

  // The haystack, cut at needle boundaries ('.').
  const std::vector<token> haystack = make_haystack(r, frame, taken, haystack_len);

  // Depths: distinct points for the needles (RULER samples them without replacement when
  // there are enough), each insertion at the sentence boundary nearest to it.
  std::vector<double> depth;
  if (first_depth) {  // the asked needle where the spread puts it, the others drawn from the other points
    std::vector<double> others = depths_;
    others.erase(others.begin() + static_cast<std::ptrdiff_t>(*first_depth));
    depth = draw_depths(r, others.empty() ? depths_ : others, drawn.needles.size() - 1);
    depth.insert(depth.begin(), depths_[*first_depth]);
  } else {
    depth = draw_depths(r, depths_, drawn.needles.size());
  }
  sample s;
  s.prompt.reserve(context_length);
  s.prompt.push_back(v.bos());
  s.prompt.insert(s.prompt.end(), intro.begin(), intro.end());
  const auto positions = interleave(s.prompt, haystack, drawn.needles, depth, period);
  nlohmann::json needle_info = describe_needles(drawn, positions, depth);
  s.prompt.insert(s.prompt.end(), question.begin(), question.end());

  set_answers(s, frame, drawn);
  s.info = {{"needles", needle_info}, {"depth_percent", depth[0]}, {"needle_position", needle_info[0]["position"]}};
  return s;
}

double niah_task::score(std::string_view prediction, const std::vector<std::string>& references) const {
  return string_match_all(prediction, references);
}

}  // namespace attnbench::tasks
