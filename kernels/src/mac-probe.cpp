// The arithmetic probe: how many fp32 multiply-adds per second one core retires with the
// SIMD target the kernels use. Decode with a GQA group of G heads performs 2 G x head_dim
// multiply-adds per token; at large G that, not memory, can bound a step, and the
// benchmarks report how close each case comes to this ceiling.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "mac-probe.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace attnbench::kernels::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 16 independent chains of vector multiply-adds, `iterations` times; returns the lane
// count (multiply-adds per vector operation) through *lanes and a sum that keeps the
// work alive.
float MacChains(std::uint64_t iterations, std::size_t* lanes) {
  const hn::ScalableTag<float> df;
  *lanes = hn::Lanes(df);
  const auto m = hn::Set(df, 0.999999f), c = hn::Set(df, 1e-7f);
  hn::Vec<decltype(df)> a[16];
  for (int i = 0; i < 16; ++i) a[i] = hn::Set(df, static_cast<float>(i));
  for (std::uint64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 16; ++i) a[i] = hn::MulAdd(a[i], m, c);
  auto s = a[0];
  for (int i = 1; i < 16; ++i) s = hn::Add(s, a[i]);
  return hn::GetLane(s);
}

}  // namespace attnbench::kernels::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <attnbench/kernels/probe.hpp>

#include "decode-internal.hpp"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

namespace attnbench::kernels {
namespace detail {
HWY_EXPORT(MacChains);
}  // namespace detail

namespace {
// The scalar path's chains, for a binary pinned to "scalar".
float scalar_chains(std::uint64_t iterations, std::size_t* lanes) {
  *lanes = 1;
  volatile float m_in = 0.999999f;
  const float m = m_in;
  float a[16];
  for (int i = 0; i < 16; ++i) a[i] = static_cast<float>(i);
  for (std::uint64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 16; ++i) a[i] = a[i] * m + 1e-7f;
  float s = 0;
  for (float x : a) s += x;
  return s;
}
}  // namespace

double measure_mac_rate(int threads, int repetitions) {
  tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
  const int n = arena.max_concurrency();
  constexpr std::uint64_t kIterations = 1 << 22;  // about 10 ms per thread with AVX-512
  std::vector<double> rates;
  std::atomic<float> sink{0};
  for (int r = 0; r <= repetitions; ++r) {  // the first pass warms up clocks and threads
    std::atomic<std::uint64_t> macs{0};
    const auto t0 = std::chrono::steady_clock::now();
    arena.execute([&] {
      tbb::parallel_for(0, n, 1, [&](int) {
        std::size_t lanes = 1;
        const float s = detail::simd_enabled() ? HWY_DYNAMIC_DISPATCH(detail::MacChains)(kIterations, &lanes)
                                               : scalar_chains(kIterations, &lanes);
        sink.fetch_add(s);
        macs += kIterations * 16 * lanes;
      });
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) rates.push_back(static_cast<double>(macs.load()) / s);
  }
  std::sort(rates.begin(), rates.end());
  return rates.empty() ? 0.0 : rates[rates.size() / 2];
}

}  // namespace attnbench::kernels
#endif  // HWY_ONCE
