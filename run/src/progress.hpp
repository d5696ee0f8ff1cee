// Elapsed and remaining time of the cells a process runs; on a terminal, a line at the
// bottom of stderr that says which cell runs now.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace attnbench {

// "42s", "3m05s", "1h20m".
std::string duration_text(double seconds);

class progress_line {
 public:
  progress_line(std::size_t total, std::size_t to_run);
  // Shows "[position/total] running ID (times)" on a terminal.
  void start(std::size_t position, const std::string& id);
  void finish();
  void clear() const;
  // "elapsed 1m20s, about 3m05s left" (the cells run so far set the pace).
  std::string times() const;

 private:
  std::size_t total_, to_run_, finished_ = 0;
  std::chrono::steady_clock::time_point t0_;
  bool tty_;
};

}  // namespace attnbench
