#include <attnbench/host/machine.hpp>

#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

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

unsigned usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return static_cast<unsigned>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

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

namespace {

// A number from a one-line file (cgroup's memory.max, memory.current); nullopt for "max",
// a missing file or anything else.
std::optional<std::uint64_t> number_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string text;
  if (!(in >> text) || text.empty() || !std::all_of(text.begin(), text.end(), ::isdigit)) return std::nullopt;
  try {
    return std::stoull(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::uint64_t vm_size_bytes() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("VmSize:")) return std::strtoull(line.c_str() + 7, nullptr, 10) * 1024;
  return 0;
}

// The room left under the cgroup's memory limits (v2: memory.max, v1:
// memory.limit_in_bytes, of this cgroup and its parents), or nullopt when none is set.
std::optional<std::uint64_t> cgroup_room() {
  std::ifstream in("/proc/self/cgroup");
  std::optional<std::uint64_t> room;
  auto take = [&](std::optional<std::uint64_t> limit, std::optional<std::uint64_t> usage) {
    if (!limit || *limit >= (1ull << 60)) return;
    const std::uint64_t left = usage && *usage < *limit ? *limit - *usage : usage ? 0 : *limit;
    room = room ? std::min(*room, left) : left;
  };
  namespace fs = std::filesystem;
  for (std::string line; std::getline(in, line);) {
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const fs::path path = fs::path(line.substr(b + 1)).relative_path();
    if (controllers.empty()) {  // v2: every level up to the root may limit
      for (fs::path p = path;; p = p.parent_path()) {
        const fs::path dir = fs::path("/sys/fs/cgroup") / p;
        take(number_file(dir / "memory.max"), number_file(dir / "memory.current"));
        if (p.empty()) break;
      }
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {  // v1
      for (fs::path p = path;; p = p.parent_path()) {
        const fs::path dir = fs::path("/sys/fs/cgroup/memory") / p;
        take(number_file(dir / "memory.limit_in_bytes"), number_file(dir / "memory.usage_in_bytes"));
        if (p.empty()) break;
      }
    }
  }
  return room;
}

}  // namespace

memory_budget available_memory() {
  memory_budget b{meminfo_field("MemAvailable"), "the memory available now"};
  if (rlimit rl{}; ::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    const std::uint64_t used = vm_size_bytes();
    const std::uint64_t left = rl.rlim_cur > used ? rl.rlim_cur - used : 0;
    if (left < b.bytes) b = {left, "the room left under the address-space limit (ulimit -v)"};
  }
  if (const auto room = cgroup_room(); room && *room < b.bytes) b = {*room, "the room left under the cgroup's memory limit"};
  return b;
}

std::uint64_t available_memory_bytes() { return available_memory().bytes; }


}  // namespace attnbench
