// Suite scores computed from a run's cells, the way the suites' papers report them.
#pragma once

#include <nlohmann/json.hpp>

namespace attnbench {

// RULER's table: for each policy and terminator, per context length the mean over the
// RULER tasks of each task's accuracy (averaged over seeds), then the mean over lengths.
// Entries say how many of the 13 tasks they cover (RULER's figure needs all 13). Empty
// when the run has no RULER task.
nlohmann::ordered_json ruler_summary(const nlohmann::ordered_json& cells);

}  // namespace attnbench
