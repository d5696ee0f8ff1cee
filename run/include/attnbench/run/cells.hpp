// Running a config's grid: each cell's samples in batches through the engine, its
// metrics, and the finished cell handed to a sink (report/'s results_writer writes it).
#pragma once

#include <attnbench/run/engine.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace attnbench {

// Where finished cells go. run_cells asks which cells are already there (--resume) and
// hands over each cell with its sample rows as soon as it finishes.
class cell_sink {
 public:
  virtual ~cell_sink() = default;
  virtual bool has_cell(const std::string& id) const = 0;
  virtual std::size_t finished_cells() const = 0;
  // Where the cells are kept, for messages (a results folder).
  virtual std::string location() const = 0;
  virtual void add_cell(const nlohmann::ordered_json& cell, const std::vector<nlohmann::ordered_json>& samples) = 0;
};

// Runs the grid's cells (those of the shard), skipping cells the sink already has. Logs
// each cell with the elapsed and estimated remaining time; when stderr is a terminal,
// also keeps a progress line (cells done, current cell, elapsed, remaining) at its
// bottom. Throws harness_error(exit_interrupted) when interrupted, after the last
// finished cell is handed over.
void run_cells(const run_inputs& inputs, cell_sink& sink);

}  // namespace attnbench
