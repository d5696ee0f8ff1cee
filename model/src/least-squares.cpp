#include "least-squares.hpp"

#include <cmath>
#include <utility>

namespace attnbench {

std::vector<double> solve_linear_system(std::vector<double> g, std::vector<double> rhs) {
  const std::size_t m = rhs.size();
  for (std::size_t c = 0; c < m; ++c) {
    std::size_t piv = c;
    for (std::size_t x = c + 1; x < m; ++x)
      if (std::abs(g[x * m + c]) > std::abs(g[piv * m + c])) piv = x;
    for (std::size_t y = 0; y < m; ++y) std::swap(g[c * m + y], g[piv * m + y]);
    std::swap(rhs[c], rhs[piv]);
    for (std::size_t x = c + 1; x < m; ++x) {
      const double f = g[x * m + c] / g[c * m + c];
      for (std::size_t y = c; y < m; ++y) g[x * m + y] -= f * g[c * m + y];
      rhs[x] -= f * rhs[c];
    }
  }
  std::vector<double> a(m, 0.0);
  for (std::size_t c = m; c-- > 0;) {
    double v = rhs[c];
    for (std::size_t y = c + 1; y < m; ++y) v -= g[c * m + y] * a[y];
    a[c] = v / g[c * m + c];
  }
  return a;
}

}  // namespace attnbench
