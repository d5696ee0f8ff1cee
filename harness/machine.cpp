#include "machine.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#ifndef ATTNBENCH_SOURCE_DIR
#define ATTNBENCH_SOURCE_DIR ""
#endif
#ifndef ATTNBENCH_BUILD_COMMIT
#define ATTNBENCH_BUILD_COMMIT ""
#endif

namespace attnbench {

namespace {

std::string run_command(const std::string& cmd, bool* ok) {
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) {
    *ok = false;
    return out;
  }
  std::array<char, 256> buf{};
  while (fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  *ok = pclose(pipe) == 0;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::uint64_t meminfo_field(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit)
    if (key == field + ":") return value * 1024;
  return 0;
}

}  // namespace

nlohmann::json machine_info() {
  std::string cpu = "unknown";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname u{};
  uname(&u);
  return {{"cpu", cpu},
          {"cores", std::thread::hardware_concurrency()},
          {"memory_bytes", meminfo_field("MemTotal")},
          {"os", std::string(u.sysname) + " " + u.release + " " + u.machine}};
}

nlohmann::json git_info() {
  const std::string dir = ATTNBENCH_SOURCE_DIR;
  if (!dir.empty()) {
    bool ok = false;
    const std::string commit = run_command("git -C '" + dir + "' rev-parse HEAD 2>/dev/null", &ok);
    if (ok && !commit.empty()) {
      bool ok2 = false;
      const std::string status =
          run_command("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null", &ok2);
      return {{"commit", commit}, {"dirty", ok2 ? nlohmann::json(!status.empty()) : nlohmann::json(nullptr)}};
    }
  }
  const std::string built = ATTNBENCH_BUILD_COMMIT;
  return {{"commit", built.empty() ? nlohmann::json(nullptr) : nlohmann::json(built)}, {"dirty", nullptr}};
}

std::uint64_t available_memory_bytes() { return meminfo_field("MemAvailable"); }

double measure_read_bandwidth(std::size_t bytes, int repetitions, int threads) {
  const std::size_t n = bytes / sizeof(std::uint64_t);
  std::unique_ptr<std::uint64_t[]> buf(new std::uint64_t[n]);
  for (std::size_t i = 0; i < n; ++i) buf[i] = i;
  tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
  std::vector<double> rates;
  volatile std::uint64_t sink = 0;
  for (int r = 0; r < repetitions + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t sum = arena.execute([&] {
      return tbb::parallel_reduce(
          tbb::blocked_range<std::size_t>(0, n, 1 << 16), std::uint64_t{0},
          [&](const tbb::blocked_range<std::size_t>& range, std::uint64_t acc) {
            std::uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            std::size_t i = range.begin();
            for (; i + 4 <= range.end(); i += 4) {
              a0 += buf[i];
              a1 += buf[i + 1];
              a2 += buf[i + 2];
              a3 += buf[i + 3];
            }
            for (; i < range.end(); ++i) a0 += buf[i];
            return acc + a0 + a1 + a2 + a3;
          },
          [](std::uint64_t a, std::uint64_t b) { return a + b; });
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + sum;
    if (r > 0) rates.push_back(static_cast<double>(n * sizeof(std::uint64_t)) / s);  // first pass warms up
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace attnbench
