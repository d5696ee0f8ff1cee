#include "niah.hpp"

#include <attnbench/tasks/task.hpp>

namespace attnbench::tasks {

const std::vector<task_info>& task_catalogue() {
  static const std::vector<task_info> catalogue = {
      {"niah_single_1", "RULER single needle: noise haystack, word key, 7-digit number value (string_match_all)"},
  };
  return catalogue;
}

std::unique_ptr<task> make_task(std::string_view name, const nlohmann::json& params) {
  if (name == "niah_single_1") return std::make_unique<niah_single>(params);
  throw std::out_of_range("unknown task '" + std::string(name) + "'");
}

}  // namespace attnbench::tasks
