#include "worker.hpp"

#include <attnbench/host/clock.hpp>
#include <attnbench/host/errors.hpp>
#include <attnbench/host/plugin-calls.hpp>
#include <attnbench/host/plugin-loader.hpp>

#include <attnbench/kernels/probe.hpp>

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <tbb/global_control.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <new>

namespace attnbench {

using ojson = nlohmann::ordered_json;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kQuit = ~std::uint64_t{0};
constexpr int kCommandFd = 3, kMessageFd = 4;  // the worker's ends of its two pipes

bool write_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Reads n bytes; false at end of file. With a deadline, false too once it passes
// (timed_out set). Ctrl-C (EINTR) does not stop the wait: the worker sees it too.
bool read_all(int fd, void* data, std::size_t n, const clock_type::time_point* deadline = nullptr,
              bool* timed_out = nullptr) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - clock_type::now()).count();
      if (left <= 0) {
        *timed_out = true;
        return false;
      }
      pollfd pfd{fd, POLLIN, 0};
      const int r = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
      if (r <= 0) continue;  // time passed, or EINTR
    }
    const ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

bool send_message(int fd, const ojson& message) {
  const std::string text = message.dump();
  const auto size = static_cast<std::uint64_t>(text.size());
  return write_all(fd, &size, sizeof size) && write_all(fd, text.data(), text.size());
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// "plan (layer 3, step 17)".
std::string operation_text(const plugin_call_record& call) {
  std::string text = plugin_op_name(call.op);
  if (call.op == plugin_op::plan || call.op == plugin_op::terminator_check)
    text += " (layer " + std::to_string(call.layer) + ", step " + std::to_string(call.step) + ")";
  else if (call.op == plugin_op::on_prefill)
    text += " (layer " + std::to_string(call.layer) + ")";
  return text;
}

// The shared object holding an address, as "FILE+0xOFFSET".
std::string code_location(std::uintptr_t pc) {
  Dl_info info{};
  if (pc == 0 || !dladdr(reinterpret_cast<void*>(pc), &info) || !info.dli_fname) return "an unknown address";
  char offset[32];
  std::snprintf(offset, sizeof offset, "+0x%zx", static_cast<std::size_t>(pc - reinterpret_cast<std::uintptr_t>(info.dli_fbase)));
  return std::filesystem::path(info.dli_fname).filename().string() + offset;
}

// The worker: never returns.
[[noreturn]] void worker_main(run_inputs in, const std::vector<cell_key>& grid, const std::vector<std::string>& ids) {
  int code = exit_ok;
  try {
    tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism, std::max(1u, in.threads));
    const kernels::read_ceiling ceiling = kernels::measure_read_ceiling(in.probe_bytes, 3, static_cast<int>(in.threads));
    in.read_bandwidth_bytes_per_s = ceiling.bytes_per_s();
    in.read_ceiling_method = ceiling.best_method().name();
    spdlog::info("read ceiling {:.2f} GB/s ({}, {} threads, in the worker process {})", in.read_bandwidth_bytes_per_s / 1e9,
                 in.read_ceiling_method, in.threads, ::getpid());
    if (!send_message(kMessageFd, {{"type", "ready"},
                                   {"read_bandwidth", in.read_bandwidth_bytes_per_s},
                                   {"read_method", in.read_ceiling_method}}))
      std::_Exit(exit_failure);
    for (std::uint64_t index; read_all(kCommandFd, &index, sizeof index) && index < grid.size();) {
      cell_outcome o = run_one_cell(in, grid[index], index, ids[index]);
      const ojson message = o.finished ? ojson{{"type", "cell"}, {"cell", o.cell}, {"samples", o.samples}}
                                       : ojson{{"type", "failed"}, {"failure", o.failure}};
      if (!send_message(kMessageFd, message)) std::_Exit(exit_failure);
    }
  } catch (const harness_error& e) {
    code = e.code;
    send_message(kMessageFd, {{"type", "error"}, {"code", e.code}, {"message", e.what()}});
  } catch (const std::bad_alloc&) {
    code = exit_resources;
    send_message(kMessageFd, {{"type", "error"},
                              {"code", exit_resources},
                              {"message", "out of memory in the worker (the address-space or cgroup limit, or the "
                                          "machine's memory); use shorter context_lengths or a smaller batch"}});
  } catch (const std::exception& e) {
    code = exit_failure;
    send_message(kMessageFd, {{"type", "error"}, {"code", exit_failure}, {"message", std::string("internal error: ") + e.what()}});
  }
  std::_Exit(code);  // no atexit handlers or static destructors of the run process's copy
}

int thread_count() {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec); !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) ++n;
  return n;
}

}  // namespace

cell_worker::cell_worker(const run_inputs& inputs, const std::vector<cell_key>& grid, const std::vector<std::string>& ids,
                         double timeout_s)
    : in_(inputs), grid_(grid), ids_(ids), timeout_s_(timeout_s) {}

cell_worker::~cell_worker() { stop(); }

void cell_worker::start() {
  if (const int threads = thread_count(); threads > 1)
    spdlog::warn("the run process has {} threads before it forks its worker (a plugin started one?)", threads);
  call_board::share();
  call_board::clear();
  ::signal(SIGPIPE, SIG_IGN);  // a dead worker is an error to read, not a signal that ends the run
  int to[2], from[2];
  if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0)
    throw harness_error(exit_failure, std::string("cannot create the worker's pipes: ") + std::strerror(errno));
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw harness_error(exit_failure, std::string("cannot fork the worker: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the worker ends with the run, however the run ends
    if (::getppid() != parent) std::_Exit(exit_failure);
    // Its pipe ends on 3 and 4, every other inherited descriptor closed (the results
    // folder's lock stays the run's alone).
    const int command = ::fcntl(to[0], F_DUPFD_CLOEXEC, 10), message = ::fcntl(from[1], F_DUPFD_CLOEXEC, 10);
    if (command < 0 || message < 0 || ::dup2(command, kCommandFd) < 0 || ::dup2(message, kMessageFd) < 0)
      std::_Exit(exit_failure);
    ::close_range(kMessageFd + 1, ~0U, 0);
    call_board::install_crash_handlers();
    worker_main(in_, grid_, ids_);
  }
  ::close(to[0]);
  ::close(from[1]);
  pid_ = pid;
  to_worker_ = to[1];
  from_worker_ = from[0];
  std::uint64_t size = 0;
  std::string text;
  if (read_all(from_worker_, &size, sizeof size)) {
    text.resize(size);
    if (read_all(from_worker_, text.data(), size)) {
      const ojson m = ojson::parse(text);
      if (m["type"] == "ready") {
        bandwidth_ = m["read_bandwidth"].get<double>();
        method_ = m.value("read_method", std::string());
        return;
      }
      stop();
      throw harness_error(static_cast<exit_code>(m.value("code", 1)), m.value("message", std::string("worker failed")));
    }
  }
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  stop();
  throw harness_error(exit_failure, "the worker process ended before it was ready (status " + std::to_string(status) + ")");
}

void cell_worker::stop() {
  if (to_worker_ >= 0) {
    write_all(to_worker_, &kQuit, sizeof kQuit);
    ::close(to_worker_);
    to_worker_ = -1;
  }
  if (from_worker_ >= 0) ::close(from_worker_), from_worker_ = -1;
  if (pid_ > 0) {
    int status = 0;
    // The worker ends when it reads the quit command; after Ctrl-C it ends by itself.
    for (int i = 0; i < 200 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) ::usleep(10000);
    if (::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }
}

double cell_worker::read_bandwidth() {
  if (pid_ < 0) start();
  return bandwidth_;
}

cell_outcome cell_worker::run(std::size_t grid_index) {
  if (pid_ < 0) start();
  const std::uint64_t index = grid_index;
  const auto deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                                std::chrono::duration<double>(timeout_s_ > 0 ? timeout_s_ : 0));
  bool late = false;
  std::uint64_t size = 0;
  if (write_all(to_worker_, &index, sizeof index) &&
      read_all(from_worker_, &size, sizeof size, timeout_s_ > 0 ? &deadline : nullptr, &late)) {
    std::string text(size, '\0');
    if (read_all(from_worker_, text.data(), size, timeout_s_ > 0 ? &deadline : nullptr, &late)) {
      const ojson m = ojson::parse(text);
      cell_outcome o;
      if (m["type"] == "cell") {
        o.finished = true;
        o.cell = m["cell"];
        for (const auto& s : m["samples"]) o.samples.push_back(s);
      } else if (m["type"] == "failed") {
        o.failure = m["failure"];
        o.failure["at"] = time_text();
      } else {
        stop();
        throw harness_error(static_cast<exit_code>(m.value("code", 1)), m.value("message", std::string("worker failed")));
      }
      return o;
    }
  }
  if (late) return timed_out(grid_index);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  stop();
  return died(grid_index, status);
}

cell_outcome cell_worker::died(std::size_t grid_index, int status) {
  cell_outcome o;
  o.failure = failure_record(in_.config, grid_[grid_index], grid_index, ids_[grid_index]);
  const crash_record crash = call_board::last_crash();
  std::vector<plugin_call_record> calls = call_board::active();
  const plugin_call_record call = crash.signal ? crash.call : calls.empty() ? plugin_call_record{} : calls.front();
  const std::string plugin = call.library >= 0 ? plugin_library::label_of(call.library) : "";
  const std::string operation = call.library >= 0 ? operation_text(call) : "";
  o.failure["plugin"] = plugin;
  o.failure["operation"] = operation;
  std::string message;
  if (WIFSIGNALED(status)) {
    const std::string sig = signal_name(WTERMSIG(status));
    o.failure["reason"] = "crash";
    o.failure["signal"] = sig;
    const std::string where = crash.signal ? code_location(crash.pc) : "";
    if (!where.empty()) o.failure["location"] = where;
    message = plugin.empty() ? "the worker died by " + sig + " outside any plugin call"
                             : plugin + " crashed with " + sig + " in " + operation;
    if (!where.empty()) message += ", at " + where;
  } else {
    o.failure["reason"] = "worker exit";
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    message = "the worker exited with status " + std::to_string(code) +
              (plugin.empty() ? " outside any plugin call" : " while " + plugin + " was in " + operation);
  }
  o.failure["message"] = message;
  o.failure["at"] = time_text();
  return o;
}

cell_outcome cell_worker::timed_out(std::size_t grid_index) {
  const std::vector<plugin_call_record> calls = call_board::active();
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  stop();
  cell_outcome o;
  o.failure = failure_record(in_.config, grid_[grid_index], grid_index, ids_[grid_index]);
  const std::string plugin = calls.empty() ? "" : plugin_library::label_of(calls.front().library);
  const std::string operation = calls.empty() ? "" : operation_text(calls.front());
  char limit[32];
  std::snprintf(limit, sizeof limit, "%g s", timeout_s_);
  o.failure["reason"] = "timeout";
  o.failure["plugin"] = plugin;
  o.failure["operation"] = operation;
  o.failure["message"] = std::string("the cell ran past --cell-timeout ") + limit +
                         (plugin.empty() ? " (no plugin call was in progress)" : "; " + plugin + " was in " + operation);
  o.failure["at"] = time_text();
  return o;
}

}  // namespace attnbench
