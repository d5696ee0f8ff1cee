// RULER's niah_single_1 analog: a noise haystack ("The grass is green. ..."), one needle
// "One of the special magic numbers for KEY is: NNNNNNN." at a depth drawn from 40 even
// points over 0-100%, a word key and a 7-digit number value (RULER: randint(10^6, 10^7-1)).
//
// The synthetic model has no semantics, so the answer prefix restates the needle's
// frame ("... for KEY is:"); the value is then copied digit by digit by the induction
// (retrieval) heads, which must find the one place in the context where that frame
// occurs. A policy that drops the needle's block loses the answer.
#include "niah.hpp"

#include <attnbench/kernels/random.hpp>
#include <attnbench/tasks/scoring.hpp>

#include <algorithm>
#include <cmath>

namespace attnbench::tasks {
namespace {

constexpr std::string_view kIntro =
    "some special magic numbers are hidden within the following text . make sure to memorize it . "
    "i will quiz you about the numbers afterwards .\n";
constexpr std::string_view kNoise =
    "the grass is green . the sky is blue . the sun is yellow . here we go . there and back again . ";

std::vector<double> default_depths() {
  std::vector<double> d(40);
  for (int i = 0; i < 40; ++i) d[i] = 100.0 * i / 39.0;  // numpy.linspace(0, 100, 40)
  return d;
}

}  // namespace

niah_single::niah_single(const nlohmann::json& params) : depths_(default_depths()) {
  const auto& v = vocabulary::standard();
  for (const auto& [key, value] : params.items()) {
    if (key == "depths") {
      if (!value.is_array() || value.empty())
        throw task_params_error("/depths", "expected a non-empty array of percentages, got " + value.dump());
      depths_.clear();
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_number() || value[i].get<double>() < 0 || value[i].get<double>() > 100)
          throw task_params_error("/depths/" + std::to_string(i), "expected a number in [0, 100], got " + value[i].dump());
        depths_.push_back(value[i].get<double>());
      }
    } else if (key == "value_digits") {
      if (!value.is_number_integer() || value.get<int>() < 1 || value.get<int>() > 12)
        throw task_params_error("/value_digits", "expected an integer in [1, 12], got " + value.dump());
      value_digits_ = value.get<std::uint32_t>();
    } else {
      throw task_params_error("/" + key, "unknown parameter for niah_single_1 (known: depths, value_digits)");
    }
  }
  intro_ = v.tokenize(kIntro);
  noise_ = v.tokenize(kNoise);
}

std::uint32_t niah_single::min_context_length() const {
  // <bos>, intro, needle, question and answer prefix, with a few haystack tokens.
  return static_cast<std::uint32_t>(1 + intro_.size() + 3 * 16 + value_digits_) + 32;
}

sample niah_single::make_sample(std::uint64_t seed, std::uint32_t context_length) const {
  if (context_length < min_context_length())
    throw task_error("niah_single_1 needs a context of at least " + std::to_string(min_context_length()) +
                     " tokens, got " + std::to_string(context_length));
  const auto& v = vocabulary::standard();
  rng r(seed);

  const token key = v.pseudo_words()[r.below(v.pseudo_words().size())];
  std::string value = std::to_string(1 + r.below(9));
  for (std::uint32_t i = 1; i < value_digits_; ++i) value += std::to_string(r.below(10));
  const double depth = depths_[r.below(depths_.size())];
  const std::string& key_text = v.text(key);

  const auto needle = v.tokenize("one of the special magic numbers for " + key_text + " is : " + value + " . ");
  const auto question = v.tokenize("\nwhat is the special magic number for " + key_text +
                                   " mentioned in the provided text ?\nanswer : the special magic number for " +
                                   key_text + " is :");

  const std::size_t fixed = 1 + intro_.size() + needle.size() + question.size();
  const std::size_t haystack_len = context_length - fixed;
  std::vector<token> haystack(haystack_len);
  for (std::size_t i = 0; i < haystack_len; ++i) haystack[i] = noise_[i % noise_.size()];

  // Insert at the sentence boundary ('.') nearest to the requested depth, as RULER does.
  const auto target = static_cast<std::size_t>(std::llround(depth / 100.0 * static_cast<double>(haystack_len)));
  std::size_t insert_at = 0;
  const token period = v.id(".");
  for (std::size_t i = 0; i < haystack_len; ++i) {
    const std::size_t boundary = i + 1;  // after a period
    if (haystack[i] == period) {
      const auto dist = [&](std::size_t b) { return b > target ? b - target : target - b; };
      if (dist(boundary) < dist(insert_at)) insert_at = boundary;
    }
  }
  if (target >= haystack_len) insert_at = haystack_len;

  sample s;
  s.prompt.reserve(context_length);
  s.prompt.push_back(v.bos());
  s.prompt.insert(s.prompt.end(), intro_.begin(), intro_.end());
  s.prompt.insert(s.prompt.end(), haystack.begin(), haystack.begin() + static_cast<std::ptrdiff_t>(insert_at));
  const std::size_t needle_position = s.prompt.size();
  s.prompt.insert(s.prompt.end(), needle.begin(), needle.end());
  s.prompt.insert(s.prompt.end(), haystack.begin() + static_cast<std::ptrdiff_t>(insert_at), haystack.end());
  s.prompt.insert(s.prompt.end(), question.begin(), question.end());

  s.references = {value};
  s.max_new_tokens = value_digits_ + 3;
  s.stop_tokens = {period, v.newline(), v.eos()};
  s.info = {{"depth_percent", depth},
            {"needle_position", needle_position},
            {"needle_tokens", needle.size()},
            {"key", key_text}};
  return s;
}

double niah_single::score(std::string_view prediction, const std::vector<std::string>& references) const {
  return string_match_all(prediction, references);
}

}  // namespace attnbench::tasks
