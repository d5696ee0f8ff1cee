// Shared by the LongBench tests of tests/tasks and tests/run: the suite's task names and
// a token-run search.
#pragma once

#include <attnbench/tasks/task.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace attnbench::testing {

// Every LongBench-style task, in the catalogue's order.
inline std::vector<std::string> longbench_tasks() {
  std::vector<std::string> out;
  for (const auto& t : tasks::task_catalogue())
    if (!tasks::longbench_category(t.name).empty()) out.push_back(t.name);
  return out;
}

// Whether needle stands in hay as a contiguous run.
inline bool contains(const std::vector<tasks::token>& hay, const std::vector<tasks::token>& needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

}  // namespace attnbench::testing
