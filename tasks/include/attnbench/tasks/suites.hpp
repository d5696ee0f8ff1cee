// What the suites' papers define: RULER's 13 tasks, LongBench's six categories in its
// order and its short names for the tasks. Summaries and tables read them from here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace attnbench::tasks {

// RULER's 13 tasks in RULER's order.
const std::vector<std::string>& ruler_tasks();
bool is_ruler_task(std::string_view name);

// LongBench's six categories in its order (single_doc_qa ... code); a task's category is
// longbench_category (task.hpp).
const std::vector<std::string>& longbench_categories();
// LongBench's short name of a task (NrtvQA, MF-en, ...), or the name itself.
std::string longbench_short_name(std::string_view task);

}  // namespace attnbench::tasks
