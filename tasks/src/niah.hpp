// RULER's needle-in-a-haystack family (niah_single_1/2/3, niah_multikey_1/2/3,
// niah_multivalue, niah_multiquery): one generator, configured per task with RULER's
// parameters (haystack kind, key and value kinds, needle counts).
#pragma once

#include "text.hpp"

#include <attnbench/tasks/task.hpp>

#include <optional>

namespace attnbench::tasks {

struct niah_spec {
  std::string_view name;
  haystack_kind haystack;
  item_kind keys, values;
  std::uint32_t num_keys = 1;     // RULER num_needle_k: needles with different keys
  std::uint32_t num_values = 1;   // RULER num_needle_v: values per key
  std::uint32_t num_queries = 1;  // RULER num_needle_q: keys asked about
  std::string_view description;
};

const std::vector<niah_spec>& niah_specs();

class niah_task final : public task {
 public:
  niah_task(const niah_spec& spec, const nlohmann::json& params);
  std::string_view name() const override { return spec_.name; }
  std::string_view metric() const override { return "string_match_all"; }
  std::uint32_t min_context_length() const override;
  sample make_sample(std::uint64_t seed, std::uint32_t context_length,
                     sample_domain domain = sample_domain::evaluation) const override;
  // With depth_spread "even", the asked needle of sample i sits at depth point
  // floor(frac(i / golden ratio) * points): any cell's samples cover the points evenly.
  sample make_sample_at(std::uint64_t seed, std::uint32_t context_length, std::uint32_t index,
                        sample_domain domain) const override;
  double score(std::string_view prediction, const std::vector<std::string>& references) const override;

 private:
  struct needle_frame;  // the needle template for spec_.values (niah.cpp)
  struct needle_set;    // a sample's keys, values and needles (niah.cpp)

  // The sample's keys and values, distinct from each other and from `taken` (which gets them), and their needles.
  needle_set draw_needles(rng& r, const needle_frame& frame, std::set<std::string>& taken) const;
  // The question about the first num_queries keys, ending with the first answer prefix.
  std::vector<token> make_question(const needle_frame& frame, const std::vector<item>& keys) const;
  // The haystack of `length` tokens; a needle haystack draws its keys distinct from `taken`.
  std::vector<token> make_haystack(rng& r, const needle_frame& frame, std::set<std::string>& taken,
                                   std::size_t length) const;
  // Each needle's info: position, tokens, depth, key and value.
  nlohmann::json describe_needles(const needle_set& drawn, const std::vector<std::size_t>& positions,
                                  const std::vector<double>& depth) const;
  // Sets the sample's references, follow-ups, branches, max_new_tokens and stop tokens.
  void set_answers(sample& s, const needle_frame& frame, const needle_set& drawn) const;

  // The sample; `first_depth` (an index into depths_) places the first needle, or none
  // for RULER's random draw.
  sample build(std::uint64_t seed, std::uint32_t context_length, sample_domain domain,
               std::optional<std::size_t> first_depth) const;

  niah_spec spec_;
  std::vector<double> depths_;
  bool even_spread_ = false;
  std::uint32_t value_digits_ = 7;
};

}  // namespace attnbench::tasks
