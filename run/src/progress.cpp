#include "progress.hpp"

#include <cstdio>

#include <unistd.h>

namespace attnbench {

using clock_type = std::chrono::steady_clock;

std::string duration_text(double s) {
  char buf[32];
  const auto t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

progress_line::progress_line(std::size_t total, std::size_t to_run)
    : total_(total), to_run_(to_run), t0_(clock_type::now()), tty_(::isatty(STDERR_FILENO) == 1) {}

void progress_line::start(std::size_t position, const std::string& id) {
  if (!tty_) return;
  std::fprintf(stderr, "\r\033[K[%zu/%zu] running %s (%s)", position, total_, id.c_str(), times().c_str());
  std::fflush(stderr);
}

void progress_line::finish() {
  ++finished_;
  clear();
}

void progress_line::clear() const {
  if (tty_) std::fprintf(stderr, "\r\033[K");
}

std::string progress_line::times() const {
  const double elapsed = std::chrono::duration<double>(clock_type::now() - t0_).count();
  std::string out = "elapsed " + duration_text(elapsed);
  if (finished_ > 0 && finished_ < to_run_)
    out += ", about " + duration_text(elapsed / finished_ * (to_run_ - finished_)) + " left";
  return out;
}

}  // namespace attnbench
