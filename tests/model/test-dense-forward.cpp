// The trained model's dense building blocks against plain float64 loops.
#include "dense-forward.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

using namespace attnbench;

namespace {

std::vector<float> random_matrix(std::size_t n, std::mt19937& g) {
  std::normal_distribution<float> d;
  std::vector<float> out(n);
  for (auto& x : out) x = d(g);
  return out;
}

}  // namespace

TEST(DenseForward, CausalAttentionMatchesAPlainSoftmax) {
  std::mt19937 g(7);
  // Lengths around the kernel's query (64) and key (256) blocks.
  for (std::size_t n : {1, 63, 65, 300, 600}) {
    const std::uint32_t hq = 4, hkv = 2, d = 32;
    const auto q = random_matrix(n * hq * d, g), k = random_matrix(n * hkv * d, g), v = random_matrix(n * hkv * d, g);
    std::vector<float> out(n * hq * d);
    const float scale = 0.4f;
    detail::causal_attention(q.data(), k.data(), v.data(), n, hq, hkv, d, scale, out.data());
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::uint32_t h = 0; h < hq; ++h) {
        const std::uint32_t kh = h / (hq / hkv);
        std::vector<double> s(i + 1);
        double mx = -1e300, sum = 0;
        for (std::size_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (std::uint32_t c = 0; c < d; ++c) dot += double(q[(i * hq + h) * d + c]) * k[(j * hkv + kh) * d + c];
          s[j] = scale * dot;
          mx = std::max(mx, s[j]);
        }
        for (auto& x : s) sum += x = std::exp(x - mx);
        for (std::uint32_t c = 0; c < d; ++c) {
          double o = 0;
          for (std::size_t j = 0; j <= i; ++j) o += s[j] / sum * v[(j * hkv + kh) * d + c];
          worst = std::max(worst, std::abs(o - out[(i * hq + h) * d + c]));
        }
      }
    EXPECT_LT(worst, 1e-4) << "n = " << n;
  }
}

TEST(DenseForward, MatmulMatchesAPlainLoop) {
  std::mt19937 g(3);
  const std::size_t n = 300, k = 48, m = 20;
  const auto x = random_matrix(n * k, g), w = random_matrix(m * k, g);
  std::vector<float> y(n * m, 1.0f);
  detail::matmul_nt(x.data(), n, k, w.data(), m, y.data(), true);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < m; ++j) {
      double want = 1.0;
      for (std::size_t c = 0; c < k; ++c) want += double(x[i * k + c]) * w[j * k + c];
      EXPECT_NEAR(y[i * m + j], want, 1e-3);
    }
}
