// The read ceiling's SIMD reader: a sum of 64-bit lanes with eight vector accumulators,
// compiled by Highway for every x86 target. The ceiling always calls the best target
// this CPU supports, whatever target the kernels are pinned to (see best_read_target).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "read-simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace attnbench::kernels::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sum of the 64-bit words of [p, p + bytes): eight independent vector accumulators, so
// the adds never wait on each other and the loads issue back to back. With
// prefetch_distance > 0 every cache line is also requested that many bytes ahead.
std::uint64_t SumWords(const std::uint8_t* p, std::size_t bytes, std::size_t prefetch_distance) {
  const hn::ScalableTag<std::uint64_t> d;
  const std::size_t N = hn::Lanes(d);
  const auto* w = reinterpret_cast<const std::uint64_t*>(p);
  const std::size_t n = bytes / 8, step = 8 * N;
  auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  std::size_t i = 0;
  for (; i + step <= n; i += step) {
    if (prefetch_distance)
      for (std::size_t b = 0; b < step * 8; b += 64) __builtin_prefetch(p + i * 8 + prefetch_distance + b, 0, 0);
    a0 = hn::Add(a0, hn::LoadU(d, w + i));
    a1 = hn::Add(a1, hn::LoadU(d, w + i + N));
    a2 = hn::Add(a2, hn::LoadU(d, w + i + 2 * N));
    a3 = hn::Add(a3, hn::LoadU(d, w + i + 3 * N));
    a4 = hn::Add(a4, hn::LoadU(d, w + i + 4 * N));
    a5 = hn::Add(a5, hn::LoadU(d, w + i + 5 * N));
    a6 = hn::Add(a6, hn::LoadU(d, w + i + 6 * N));
    a7 = hn::Add(a7, hn::LoadU(d, w + i + 7 * N));
  }
  const auto s = hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  std::uint64_t sum = hn::GetLane(hn::SumOfLanes(d, s));
  for (; i < n; ++i) sum += w[i];
  return sum;
}

}  // namespace attnbench::kernels::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "read-internal.hpp"

namespace attnbench::kernels::detail {

HWY_EXPORT(SumWords);

namespace {
// The CPU's own targets, read once before any pin narrows Highway's list (set_target
// calls available_targets first, which calls this).
std::int64_t cpu_targets() {
  static const std::int64_t targets = hwy::SupportedTargets();
  return targets;
}
}  // namespace

void note_cpu_targets() { cpu_targets(); }

std::string best_read_target() {
  const std::int64_t t = cpu_targets() & HWY_TARGETS;
  return t ? hwy::TargetName(t & -t) : "scalar";
}

std::uint64_t sum_words_best(const void* p, std::size_t bytes, std::size_t prefetch_distance) {
  // The dispatch table's index for the best target, computed once as ChosenTarget does,
  // from the CPU's own list rather than from the (possibly pinned) chosen target.
  static const std::size_t index = hwy::Num0BitsBelowLS1Bit_Nonzero64(static_cast<std::uint64_t>(
      (HWY_CHOSEN_TARGET_SHIFT(cpu_targets()) | HWY_CHOSEN_TARGET_MASK_SCALAR) & HWY_CHOSEN_TARGET_MASK_TARGETS));
  return (*HWY_DISPATCH_TABLE(SumWords)[index])(static_cast<const std::uint8_t*>(p), bytes, prefetch_distance);
}

}  // namespace attnbench::kernels::detail
#endif  // HWY_ONCE
