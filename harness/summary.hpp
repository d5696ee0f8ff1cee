// Suite scores computed from a run's cells, the way the suites' papers report them.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace attnbench {

// RULER's table: for each policy and terminator, per context length the mean over the
// RULER tasks of each task's accuracy (averaged over seeds), then the mean over lengths.
// Entries say how many of the 13 tasks they cover (RULER's figure needs all 13). Empty
// when the run has no RULER task.
nlohmann::ordered_json ruler_summary(const nlohmann::ordered_json& cells);

// Whether a task is one of RULER's 13.
bool is_ruler_task(const std::string& name);

// LongBench's table: for each policy and terminator, each task's score (the mean over
// its cells), each category's (the mean of its tasks) and the overall score (the mean of
// the categories); and the same per length bucket, LongBench-E's view, with contexts of
// at most 4K, at most 8K and more than 8K tokens. Empty when the run has no LongBench task.
nlohmann::ordered_json longbench_summary(const nlohmann::ordered_json& cells);

// LongBench's six categories in its order, and its short names for the tasks.
const std::vector<std::string>& longbench_categories();
std::string longbench_short_name(const std::string& task);

}  // namespace attnbench
