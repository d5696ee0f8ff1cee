// Running a config's grid: each cell's samples in batches through the engine, its
// metrics, and the finished (or failed) cell handed to a sink (report/'s results_writer
// writes it). Cells run in a forked worker process by default, so that a plugin that
// crashes or hangs costs its cell, not the run.
#pragma once

#include <attnbench/run/engine.hpp>
#include <attnbench/run/grid.hpp>

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
  // A cell that failed: {id, grid_index, task, context_length, policy, terminator, seed,
  // reason ("plugin error", "crash", "timeout", "worker exit"), plugin, operation,
  // signal (crashes), location (crashes), message}.
  virtual void add_failure(const nlohmann::ordered_json& failure) = 0;
  // The read ceiling of the process that runs the cells, before the first cell, and the
  // read method that reached it.
  virtual void set_read_bandwidth(double bytes_per_s, const std::string& method) = 0;
};

struct cell_isolation {
  bool worker = true;     // run cells in a forked worker process; false: in this process
  double timeout_s = 0;   // a cell running longer fails ("timeout"); 0: no limit. Worker only.
};

// What one cell came to: finished with its record and sample rows, or a failure record.
struct cell_outcome {
  bool finished = false;
  nlohmann::ordered_json cell;
  std::vector<nlohmann::ordered_json> samples;
  nlohmann::ordered_json failure;
};

// Runs one cell in this process. A plugin_error (an operation returned an error status)
// becomes a failure; throws harness_error(exit_interrupted) on Ctrl-C and lets other
// errors through.
cell_outcome run_one_cell(const run_inputs& inputs, const cell_key& key, std::size_t grid_index,
                          const std::string& id);

// The failure record's fields that name the cell.
nlohmann::ordered_json failure_record(const run_config& config, const cell_key& key, std::size_t grid_index,
                                      const std::string& id);

struct run_summary {
  std::size_t finished = 0, failed = 0;  // cells of this call
};

// Runs the grid's cells (those of the shard), skipping cells the sink already has;
// measures the read-bandwidth probe first in the process that runs them. Logs each cell
// with the elapsed and estimated remaining time; when stderr is a terminal, also keeps a
// progress line at its bottom. Throws harness_error(exit_interrupted) when interrupted,
// after the last finished cell is handed over.
run_summary run_cells(const run_inputs& inputs, cell_sink& sink, const cell_isolation& isolation = {});

}  // namespace attnbench
