// Facts about the machine and the build that go into results.json.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>

namespace attnbench {

// {"cpu", "cores", "memory_bytes", "os"}.
nlohmann::json machine_info();
// {"commit", "dirty"} of the source tree attnbench was built from (null when unknown).
nlohmann::json git_info();
// Bytes the system could still give this process (MemAvailable).
std::uint64_t available_memory_bytes();

}  // namespace attnbench
