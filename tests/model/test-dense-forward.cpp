// The trained model's dense building blocks against plain float64 loops.
#include "dense-forward.hpp"

#include <attnbench/kernels/simd.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace attnbench;

namespace {

std::vector<float> random_matrix(std::size_t n, std::mt19937& g) {
  std::normal_distribution<float> d;
  std::vector<float> out(n);
  for (auto& x : out) x = d(g);
  return out;
}

// The largest difference between causal_attention and a float64 softmax over random
// inputs of n tokens, hq query heads, hkv KV heads of d.
double attention_error(std::size_t n, std::uint32_t hq, std::uint32_t hkv, std::uint32_t d, std::mt19937& g) {
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
  return worst;
}

}  // namespace

TEST(DenseForward, CausalAttentionMatchesAPlainSoftmax) {
  std::mt19937 g(7);
  // Lengths around the kernel's key tile (64) and its tasks' query blocks (96 rows: 48
  // queries at group 2, 96 at group 1), and past several of them.
  for (std::size_t n : {1, 63, 65, 300, 600}) EXPECT_LT(attention_error(n, 4, 2, 32, g), 1e-4) << "n = " << n;
}

TEST(DenseForward, CausalAttentionAtAwkwardShapes) {
  std::mt19937 g(11);
  struct shape {
    std::size_t n;
    std::uint32_t hq, hkv, d;
  };
  // head_dim a multiple of the vector width (32, 64), not (24, 48, 8), groups 1, 2, 3, 4,
  // lengths that are no multiple of any block.
  // Every SIMD target this CPU runs (AVX-512 tiles 12 rows, AVX2 and SSE4 tile 6).
  struct restore {
    ~restore() { kernels::set_target("auto"); }
  } restore_target;
  for (const std::string& target : kernels::available_targets()) {
    if (target == "scalar") continue;  // pins the kernels' plain C++ path, not Highway's
    ASSERT_TRUE(kernels::set_target(target));
    for (const shape s : {shape{97, 2, 2, 32}, shape{257, 4, 2, 32}, shape{130, 2, 1, 64}, shape{200, 4, 4, 64},
                          shape{77, 4, 2, 24}, shape{161, 3, 3, 24}, shape{130, 8, 2, 48}, shape{50, 3, 1, 8},
                          shape{2, 2, 1, 24}, shape{1, 4, 2, 64}})
      EXPECT_LT(attention_error(s.n, s.hq, s.hkv, s.d, g), 1e-4)
          << target << ": n = " << s.n << ", hq = " << s.hq << ", hkv = " << s.hkv << ", d = " << s.d;
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

TEST(DenseForward, SiluMulMatchesAPlainLoopAtEveryMagnitude) {
  // Past Highway Exp's range too (e^178 is no float): silu of a large negative gate is 0.
  std::vector<float> gate, up;
  for (float g : {-300.0f, -200.0f, -178.2f, -120.0f, -88.0f, -20.0f, -1.5f, 0.0f, 0.3f, 7.0f, 90.0f, 300.0f})
    for (int i = 0; i < 3; ++i) gate.push_back(g), up.push_back(0.5f + float(i));  // 36: a vector tail on every target
  const auto g0 = gate;
  detail::silu_mul(gate.data(), up.data(), gate.size());
  for (std::size_t i = 0; i < gate.size(); ++i) {
    const double x = g0[i], want = x / (1.0 + std::exp(-x)) * up[i];
    EXPECT_NEAR(gate[i], want, 1e-5 * std::max(1.0, std::abs(want))) << "gate " << x;
  }
}
