#include "niah.hpp"

#include <attnbench/tasks/task.hpp>

namespace attnbench::tasks {

const std::vector<task_info>& task_catalogue() {
  static const std::vector<task_info> catalogue = [] {
    std::vector<task_info> out;
    for (const auto& spec : niah_specs())
      out.push_back({std::string(spec.name), std::string(spec.description) + " (string_match_all)"});
    return out;
  }();
  return catalogue;
}

std::unique_ptr<task> make_task(std::string_view name, const nlohmann::json& params) {
  for (const auto& spec : niah_specs())
    if (spec.name == name) return std::make_unique<niah_task>(spec, params);
  throw std::out_of_range("unknown task '" + std::string(name) + "'");
}

}  // namespace attnbench::tasks
