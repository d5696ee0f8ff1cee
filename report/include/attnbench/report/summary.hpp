// Suite scores computed from a run's cells, the way the suites' papers report them (the
// suites themselves, RULER's tasks and LongBench's categories, are tasks/suites.hpp's).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace attnbench {

// RULER's table: for each policy and terminator, per context length the mean over the
// RULER tasks of each task's accuracy (averaged over seeds), then the mean over lengths.
// Entries say how many of the 13 tasks they cover (RULER's figure needs all 13) and each
// task's accuracy at that length (task_scores). Empty when the run has no RULER task.
nlohmann::ordered_json ruler_summary(const nlohmann::ordered_json& cells);

// LongBench's table: for each policy and terminator, each task's score (the mean over
// its cells), each category's (the mean of its tasks) and the overall score (the mean of
// the categories); and the same per length bucket, LongBench-E's view, with contexts of
// at most 4K, at most 8K and more than 8K tokens. Empty when the run has no LongBench task.
nlohmann::ordered_json longbench_summary(const nlohmann::ordered_json& cells);

}  // namespace attnbench
