// The SIMD scoring pass (TokenSelect's logits of every query head over K rows) and the
// selection helpers, compiled once per x86 target by Highway and chosen at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "score-simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "decode-internal.hpp"
#include "rows-simd-inl.h"

#include <algorithm>
#include <cmath>

HWY_BEFORE_NAMESPACE();
namespace attnbench::kernels::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Scoring: logits of n_q heads (queries pre-scaled) over `count` rows, per head a row of
// out with stride out_stride.
template <int DT>
void score_groups(const float* q, std::uint32_t n_q, std::size_t d, const void* const* k_rows, std::uint32_t count,
                  float* out, std::size_t out_stride, std::size_t row_bytes, const void* const* prefetch_rows,
                  std::uint32_t prefetch_count) {
  const std::uint32_t size = sub_group_size(n_q);
  for (std::uint32_t g0 = 0; g0 < n_q; g0 += size) {
    // Only the first sub-group prefetches; later ones find the rows in cache.
    const void* const* pf = g0 == 0 ? prefetch_rows : nullptr;
    const std::uint32_t pf_count = g0 == 0 ? prefetch_count : 0;
    const std::uint32_t g = std::min(size, n_q - g0);
    const float* qg = q + static_cast<std::size_t>(g0) * d;
    float* o = out + static_cast<std::size_t>(g0) * out_stride;
    with_group_size(g, [&](auto n) {
      logits_pass<DT, decltype(n)::value>(qg, d, k_rows, count, o, out_stride, pf, pf_count, row_bytes);
    });
  }
}

bool ScoreRows(const score_job& job) {
  const DF df;
  if (job.d % hn::Lanes(df) != 0) return false;
  switch (job.dtype) {
    case ATTNBENCH_DTYPE_FP32:
      score_groups<ATTNBENCH_DTYPE_FP32>(job.queries, job.n_q, job.d, job.k_rows, job.count, job.out, job.out_stride, job.row_bytes, job.prefetch_rows, job.prefetch_count);
      return true;
    case ATTNBENCH_DTYPE_FP16:
      score_groups<ATTNBENCH_DTYPE_FP16>(job.queries, job.n_q, job.d, job.k_rows, job.count, job.out, job.out_stride, job.row_bytes, job.prefetch_rows, job.prefetch_count);
      return true;
    case ATTNBENCH_DTYPE_BF16:
      score_groups<ATTNBENCH_DTYPE_BF16>(job.queries, job.n_q, job.d, job.k_rows, job.count, job.out, job.out_stride, job.row_bytes, job.prefetch_rows, job.prefetch_count);
      return true;
  }
  return false;
}

// Indices i in [0, n) with x[i] >= threshold, appended to out; returns how many.
std::size_t SelectAtLeast(const float* x, std::size_t n, float threshold, std::uint32_t* out) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const auto t = hn::Set(df, threshold);
  std::size_t count = 0, i = 0;
  for (; i + N <= n; i += N) {
    const auto m = hn::Ge(hn::LoadU(df, x + i), t);
    if (hn::AllFalse(df, m)) continue;  // the common case when k is a small part of n
    for (std::size_t l = 0; l < N; ++l)
      if (x[i + l] >= threshold) out[count++] = static_cast<std::uint32_t>(i + l);
  }
  for (; i < n; ++i)
    if (x[i] >= threshold) out[count++] = static_cast<std::uint32_t>(i);
  return count;
}

// x[i] = exp(x[i] - shift) for i < n; returns their sum (summed per lane, then across).
float ExpShift(float* x, std::size_t n, float shift) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const auto s = hn::Set(df, shift);
  auto acc = hn::Zero(df);
  std::size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto p = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), s));
    hn::StoreU(p, df, x + i);
    acc = hn::Add(acc, p);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

}  // namespace attnbench::kernels::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnbench::kernels::detail {

HWY_EXPORT(ScoreRows);
HWY_EXPORT(SelectAtLeast);
HWY_EXPORT(ExpShift);

bool score_rows_simd(const score_job& job) { return HWY_DYNAMIC_DISPATCH(ScoreRows)(job); }
std::size_t select_at_least_simd(const float* x, std::size_t n, float threshold, std::uint32_t* out) {
  return HWY_DYNAMIC_DISPATCH(SelectAtLeast)(x, n, threshold, out);
}

float exp_shift_simd(float* x, std::size_t n, float shift) { return HWY_DYNAMIC_DISPATCH(ExpShift)(x, n, shift); }

}  // namespace attnbench::kernels::detail
#endif  // HWY_ONCE
