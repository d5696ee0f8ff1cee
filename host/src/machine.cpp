#include <attnbench/host/machine.hpp>

#include <sys/utsname.h>
#include <unistd.h>


#include <array>
#include <cstdio>
#include <fstream>
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


}  // namespace attnbench
