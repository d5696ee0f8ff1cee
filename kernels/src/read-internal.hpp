// The read ceiling's SIMD reader (read-simd.cpp), shared with probe.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace attnbench::kernels::detail {

// Sum of the 64-bit words of [p, p + bytes) with the best SIMD target this CPU supports
// (never a pinned one); prefetch_distance > 0 also requests each line that far ahead.
std::uint64_t sum_words_best(const void* p, std::size_t bytes, std::size_t prefetch_distance);
// That target's name (e.g. "AVX3", "AVX2").
std::string best_read_target();
// Records the CPU's own targets; called before any target is pinned.
void note_cpu_targets();

}  // namespace attnbench::kernels::detail
