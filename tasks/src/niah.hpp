// RULER's needle-in-a-haystack family (niah_single_1/2/3, niah_multikey_1/2/3,
// niah_multivalue, niah_multiquery): one generator, configured per task with RULER's
// parameters (haystack kind, key and value kinds, needle counts).
#pragma once

#include "text.hpp"

#include <attnbench/tasks/task.hpp>

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
  sample make_sample(std::uint64_t seed, std::uint32_t context_length) const override;
  double score(std::string_view prediction, const std::vector<std::string>& references) const override;

 private:
  niah_spec spec_;
  std::vector<double> depths_;
  std::uint32_t value_digits_ = 7;
};

}  // namespace attnbench::tasks
