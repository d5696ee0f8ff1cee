// Facts about the machine and the build that go into results.json, and the read-
// bandwidth probe that speed figures are measured against.
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

// Read bandwidth in bytes/s: the median of `repetitions` timed sums over a buffer of
// `bytes` (larger than the caches), using up to `threads` threads (0: all).
double measure_read_bandwidth(std::size_t bytes, int repetitions, int threads);

}  // namespace attnbench
