// Facts about the machine and the build that go into results.json.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace attnbench {

// {"cpu", "cores", "memory_bytes", "os"}.
nlohmann::json machine_info();

// The cores this process may run on (its CPU affinity: what a Slurm task or taskset
// gives it), else every core.
unsigned usable_cores();
// {"commit", "dirty"} of the source tree attnbench was built from (null when unknown).
nlohmann::json git_info();
// Bytes the system could still give this process (MemAvailable).
// What a cell may use: the least of MemAvailable, the room under the address-space limit
// (RLIMIT_AS, less what this process has mapped) and the room under the cgroup's memory
// limit; `source` says which one it is, for messages.
struct memory_budget {
  std::uint64_t bytes;
  std::string source;
};
memory_budget available_memory();
std::uint64_t available_memory_bytes();

}  // namespace attnbench
