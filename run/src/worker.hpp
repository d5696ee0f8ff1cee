// The worker process that runs a run's cells: forked from the run process (which never
// starts a thread pool, so the fork is safe), it measures the read-bandwidth probe, then
// runs the cells it is sent and sends back each cell's record and sample rows. The run
// process writes them. When the worker dies by a signal, exits, or runs a cell past the
// timeout, the cell is recorded as failed, with the plugin and operation that were in
// progress (host/plugin-calls.hpp), and a new worker takes the next cell.
#pragma once

#include <attnbench/run/cells.hpp>

#include <sys/types.h>

#include <string>
#include <vector>

namespace attnbench {

class cell_worker {
 public:
  cell_worker(const run_inputs& inputs, const std::vector<cell_key>& grid, const std::vector<std::string>& ids,
              double timeout_s);
  ~cell_worker();  // stops the worker
  cell_worker(const cell_worker&) = delete;
  cell_worker& operator=(const cell_worker&) = delete;

  // The probe measured by the worker (started now if it is not running).
  double read_bandwidth();
  // The read method that reached it.
  const std::string& read_method() {
    read_bandwidth();
    return method_;
  }
  // Runs a cell in the worker. Throws the worker's harness_error (exit_interrupted on
  // Ctrl-C, exit_resources for memory, ...) unchanged.
  cell_outcome run(std::size_t grid_index);

 private:
  void start();
  void stop();
  cell_outcome died(std::size_t grid_index, int status);
  cell_outcome timed_out(std::size_t grid_index);

  const run_inputs& in_;
  const std::vector<cell_key>& grid_;
  const std::vector<std::string>& ids_;
  double timeout_s_;
  pid_t pid_ = -1;
  int to_worker_ = -1, from_worker_ = -1;
  double bandwidth_ = 0;
  std::string method_;
};

}  // namespace attnbench
