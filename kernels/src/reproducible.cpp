#include <attnbench/kernels/reproducible.hpp>

#include <cstring>

namespace attnbench::kernels {

// GCC vector types, whose lanes are the chains, keep the sixteen chains in SIMD
// registers in every version.
ATTNBENCH_REPRODUCIBLE_CLONES double reproducible_dot(const float* __restrict a, const float* __restrict b,
                                                      std::size_t n) {
  using f8 = float __attribute__((vector_size(32)));
  using d8 = double __attribute__((vector_size(64)));
  d8 lo = {}, hi = {};  // chains 0-7 and 8-15
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    f8 x0, y0, x1, y1;
    std::memcpy(&x0, a + i, sizeof x0);
    std::memcpy(&y0, b + i, sizeof y0);
    std::memcpy(&x1, a + i + 8, sizeof x1);
    std::memcpy(&y1, b + i + 8, sizeof y1);
    lo += __builtin_convertvector(x0, d8) * __builtin_convertvector(y0, d8);
    hi += __builtin_convertvector(x1, d8) * __builtin_convertvector(y1, d8);
  }
  const d8 s = lo + hi;
  double tail = 0;
  for (; i < n; ++i) tail += static_cast<double>(a[i]) * b[i];
  return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + tail;
}

}  // namespace attnbench::kernels
