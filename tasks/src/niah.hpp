#pragma once

#include <attnbench/tasks/task.hpp>

namespace attnbench::tasks {

class niah_single final : public task {
 public:
  explicit niah_single(const nlohmann::json& params);
  std::string_view name() const override { return "niah_single_1"; }
  std::string_view metric() const override { return "string_match_all"; }
  std::uint32_t min_context_length() const override;
  sample make_sample(std::uint64_t seed, std::uint32_t context_length) const override;
  double score(std::string_view prediction, const std::vector<std::string>& references) const override;

 private:
  std::vector<double> depths_;
  std::uint32_t value_digits_ = 7;
  std::vector<token> intro_, noise_;
};

}  // namespace attnbench::tasks
