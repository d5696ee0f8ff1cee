// Arithmetic whose bits do not depend on the machine, for what must be the same
// everywhere (the synthetic model's K/V, block metadata) yet runs often enough to need
// SIMD. Such loops are elementwise or sum in a fixed set of chains; compiled for
// AVX-512, AVX2 and baseline x86-64 (chosen at load time) and without FMA contraction
// (the file that uses them sets -ffp-contract=off), every version gives the same bits.
#pragma once

#include <cstddef>

// Put before a function to have GCC compile it for AVX-512, AVX2 and baseline x86-64 and
// pick one at load time. Clang (the sanitizer and fuzzing build) compiles the baseline
// only: its target_clones takes no function templates; the bits are the same.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ATTNBENCH_REPRODUCIBLE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ATTNBENCH_REPRODUCIBLE_CLONES
#endif

namespace attnbench::kernels {

// a . b in double: element i goes to chain i % 16, the chains are summed in a fixed tree.
double reproducible_dot(const float* a, const float* b, std::size_t n);

}  // namespace attnbench::kernels
