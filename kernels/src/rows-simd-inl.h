// What the SIMD decode step (decode-simd.cpp) and the SIMD scoring (score-simd.cpp)
// share, once per Highway target: row loads that widen fp16 and bf16 to fp32, the logits
// pass of a GQA group over K rows, and the split of large groups into sub-groups.
// Included after hwy/foreach_target.h, the Highway way (the guard flips per target).
#if defined(ATTNBENCH_KERNELS_ROWS_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ATTNBENCH_KERNELS_ROWS_SIMD_INL_H_
#undef ATTNBENCH_KERNELS_ROWS_SIMD_INL_H_
#else
#define ATTNBENCH_KERNELS_ROWS_SIMD_INL_H_
#endif

#include <hwy/highway.h>

#include "decode-internal.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

HWY_BEFORE_NAMESPACE();
namespace attnbench::kernels::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

template <int DT>
HWY_INLINE hn::Vec<DF> load_row(DF df, const void* row, std::size_t i) {
  if constexpr (DT == ATTNBENCH_DTYPE_FP32) {
    return hn::LoadU(df, static_cast<const float*>(row) + i);
  } else if constexpr (DT == ATTNBENCH_DTYPE_FP16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, static_cast<const hwy::float16_t*>(row) + i));
  } else {
    const hn::Rebind<hwy::bfloat16_t, DF> db;
    return hn::PromoteTo(df, hn::LoadU(db, static_cast<const hwy::bfloat16_t*>(row) + i));
  }
}

// Sums of four vectors at once: out[i] = sum of the lanes of v[i]. Interleaving within
// 128-bit blocks, then folding halves, costs about 13 operations for four sums instead
// of about 10 for each (SumOfLanes).
template <class D, class V>
HWY_INLINE void sum4(D df, V a, V b, V c, V d, float* out) {
#if HWY_TARGET == HWY_SCALAR  // one lane: nothing to interleave
  out[0] = hn::GetLane(a);
  out[1] = hn::GetLane(b);
  out[2] = hn::GetLane(c);
  out[3] = hn::GetLane(d);
#else
  const hn::Repartition<std::uint64_t, D> d64;
  // Per 128-bit block: [a0+a2, b0+b2, a1+a3, b1+b3] and the same for c, d.
  const auto ab = hn::Add(hn::InterleaveLower(df, a, b), hn::InterleaveUpper(df, a, b));
  const auto cd = hn::Add(hn::InterleaveLower(df, c, d), hn::InterleaveUpper(df, c, d));
  // Per block: the partial sums [a, b, c, d].
  const auto x = hn::Add(hn::BitCast(df, hn::InterleaveLower(d64, hn::BitCast(d64, ab), hn::BitCast(d64, cd))),
                         hn::BitCast(df, hn::InterleaveUpper(d64, hn::BitCast(d64, ab), hn::BitCast(d64, cd))));
  // Fold the blocks together.
  if constexpr (HWY_LANES(float) >= 16) {
    const hn::Half<D> dh;
    const hn::Half<decltype(dh)> dq;
    const auto h = hn::Add(hn::LowerHalf(dh, x), hn::UpperHalf(dh, x));
    hn::StoreU(hn::Add(hn::LowerHalf(dq, h), hn::UpperHalf(dq, h)), dq, out);
  } else if constexpr (HWY_LANES(float) >= 8) {
    const hn::Half<D> dh;
    hn::StoreU(hn::Add(hn::LowerHalf(dh, x), hn::UpperHalf(dh, x)), dh, out);
  } else {
    hn::StoreU(x, df, out);
  }
#endif
}

// Logits of G query heads for TT rows starting at row j, into out[g * out_stride + j + t].
// Inlined into its caller so the G x TT accumulators stay in registers.
template <int DT, std::size_t G, std::size_t TT>
HWY_INLINE void logits_step(const float* q, std::size_t d, const void* const* k_rows, std::uint32_t j, float* out,
                            std::size_t out_stride) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  hn::Vec<DF> acc[G][TT];
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t t = 0; t < TT; ++t) acc[g][t] = hn::Zero(df);
  for (std::size_t c = 0; c < d; c += N) {
    if constexpr (G == 1) {  // all TT loads first: measured a little faster from memory
      hn::Vec<DF> k[TT];
      for (std::size_t t = 0; t < TT; ++t) k[t] = load_row<DT>(df, k_rows[j + t], c);
      const auto qv = hn::LoadU(df, q + c);
      for (std::size_t t = 0; t < TT; ++t) acc[0][t] = hn::MulAdd(qv, k[t], acc[0][t]);
    } else {
      hn::Vec<DF> qv[G];
      for (std::size_t g = 0; g < G; ++g) qv[g] = hn::LoadU(df, q + g * d + c);
      for (std::size_t t = 0; t < TT; ++t) {
        const auto k = load_row<DT>(df, k_rows[j + t], c);
        for (std::size_t g = 0; g < G; ++g) acc[g][t] = hn::MulAdd(qv[g], k, acc[g][t]);
      }
    }
  }
  if constexpr ((G * TT) % 4 == 0) {
    // Four accumulators at a time through the transposed reduction.
    for (std::size_t i = 0; i < G * TT; i += 4) {
      alignas(16) float sums[4];
      sum4(df, acc[i / TT][i % TT], acc[(i + 1) / TT][(i + 1) % TT], acc[(i + 2) / TT][(i + 2) % TT],
           acc[(i + 3) / TT][(i + 3) % TT], sums);
      for (std::size_t k = 0; k < 4; ++k) out[((i + k) / TT) * out_stride + j + (i + k) % TT] = sums[k];
    }
  } else {
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t t = 0; t < TT; ++t) out[g * out_stride + j + t] = hn::GetLane(hn::SumOfLanes(df, acc[g][t]));
  }
}

// Logits q_g . k_j for G query heads over `count` rows, into out[g * out_stride + j].
// Rows in prefetch_rows (may be null) are requested from memory meanwhile, spread over
// the steps. T rows per step: with G heads that is G x T independent FMA chains, 8 or 9
// on AVX2's 16 registers. AVX-512's 32 hold 16 for 2 to 4 heads, so each query vector
// serves twice the rows (and the output pass, which takes the same count of slices, reads
// each chunk half as often): GQA 4 read 0.69-0.76 of the read ceiling against 0.63-0.69
// (Intel Xeon, 128K, fp16, 1 and 2 threads, interleaved runs).
template <std::size_t G>
constexpr std::size_t logit_rows_per_step() {
  if constexpr (HWY_TARGET <= HWY_AVX3) return G == 1 ? 8 : G == 2 ? 8 : G == 3 ? 5 : G == 4 ? 4 : 2;
  return G == 1 ? 8 : G == 2 ? 4 : G == 3 ? 3 : 2;
}

template <int DT, std::size_t G>
void logits_pass(const float* q, std::size_t d, const void* const* k_rows, std::uint32_t count, float* out,
                 std::size_t out_stride, const void* const* prefetch_rows, std::uint32_t prefetch_count,
                 std::size_t row_bytes, prefetch_stream* stream = nullptr) {
  constexpr std::size_t T = logit_rows_per_step<G>();
  std::uint32_t j = 0;
  for (; j + T <= count; j += T) {
    if (stream) stream->issue();
    if (prefetch_rows)
      for (std::size_t t = 0; t < T; ++t)
        if (j + t < prefetch_count) prefetch_row(prefetch_rows[j + t], row_bytes);
    logits_step<DT, G, T>(q, d, k_rows, j, out, out_stride);
  }
  for (; j < count; ++j) {
    if (stream) stream->issue();
    if (prefetch_rows && j < prefetch_count) prefetch_row(prefetch_rows[j], row_bytes);
    logits_step<DT, G, 1>(q, d, k_rows, j, out, out_stride);
  }
}

// Large GQA groups run as sub-groups of near-equal sizes (with at most 4 heads: 8 = 4 + 4,
// 6 = 3 + 3, 5 = 3 + 2): each sub-group re-reads the rows from L1, which on AVX2 costs
// less than the register spills and reloads of 8 heads' accumulators at once. AVX-512's
// 32 vector registers hold 8 heads (2 rows or slices x 8 accumulators plus 8 query or
// probability vectors): GQA 8 as one group read 0.36-0.43 of the read ceiling against
// 0.33-0.38 as two (Intel Xeon, AVX-512, 128K, fp16 and bf16, 1 and 2 threads).
constexpr std::uint32_t kMaxSubGroup = HWY_TARGET <= HWY_AVX3 ? 8 : 4;

inline std::uint32_t sub_group_size(std::uint32_t n) {
  const std::uint32_t parts = (n + kMaxSubGroup - 1) / kMaxSubGroup;
  return (n + parts - 1) / parts;
}

// f(std::integral_constant<std::size_t, g>) for a sub-group of g heads (g <= kMaxSubGroup).
template <class F>
HWY_INLINE void with_group_size(std::uint32_t g, F&& f) {
  using std::integral_constant;
  if constexpr (kMaxSubGroup > 4) {
    switch (g) {
      case 5: return f(integral_constant<std::size_t, 5>{});
      case 6: return f(integral_constant<std::size_t, 6>{});
      case 7: return f(integral_constant<std::size_t, 7>{});
      case 8: return f(integral_constant<std::size_t, 8>{});
      default: break;
    }
  }
  switch (g) {
    case 1: return f(integral_constant<std::size_t, 1>{});
    case 2: return f(integral_constant<std::size_t, 2>{});
    case 3: return f(integral_constant<std::size_t, 3>{});
    default: return f(integral_constant<std::size_t, 4>{});
  }
}

}  // namespace attnbench::kernels::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // ATTNBENCH_KERNELS_ROWS_SIMD_INL_H_
