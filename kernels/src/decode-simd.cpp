// The SIMD step of the decode kernel, compiled once per x86 target by Highway and
// chosen at run time (AVX-512, AVX2, SSE4, ...). All query heads of a GQA group read each
// K and V row once; fp16 and bf16 rows widen to fp32 in registers; exp is vectorised.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "decode-simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "decode-internal.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

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
// the steps. T rows per step: with G heads that is G x T independent FMA chains.
template <int DT, std::size_t G>
void logits_pass(const float* q, std::size_t d, const void* const* k_rows, std::uint32_t count, float* out,
                 std::size_t out_stride, const void* const* prefetch_rows, std::uint32_t prefetch_count,
                 std::size_t row_bytes) {
  constexpr std::size_t T = G == 1 ? 8 : G == 2 ? 4 : G == 3 ? 3 : 2;
  std::uint32_t j = 0;
  for (; j + T <= count; j += T) {
    if (prefetch_rows)
      for (std::size_t t = 0; t < T; ++t)
        if (j + t < prefetch_count) prefetch_row(prefetch_rows[j + t], row_bytes);
    logits_step<DT, G, T>(q, d, k_rows, j, out, out_stride);
  }
  for (; j < count; ++j) {
    if (prefetch_rows && j < prefetch_count) prefetch_row(prefetch_rows[j], row_bytes);
    logits_step<DT, G, 1>(q, d, k_rows, j, out, out_stride);
  }
}

// Output slices [c, c + CC * N) of every head of the group: acc_g = alpha_g * acc_g +
// sum_j p_gj v_j over the chunk's rows. The accumulators are locals of this function (not
// of a lambda) so that the compiler keeps them in registers. The pass at c = 0 also
// prefetches the next chunk's K rows.
template <int DT, std::size_t G, std::size_t CC>
HWY_INLINE void output_slices(const chunk_job& job, const float* logits, std::size_t stride, const float* alpha,
                              std::size_t c) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const std::size_t d = job.d;
  hn::Vec<DF> o[G][CC];
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t s = 0; s < CC; ++s)
      o[g][s] = hn::Mul(hn::LoadU(df, job.state.acc + g * d + c + s * N), hn::Set(df, alpha[g]));
  const std::uint32_t with_prefetch = c == 0 && job.prefetch ? std::min(job.next_count, job.count) : 0;
  for (std::uint32_t j = 0; j < job.count; ++j) {
    if (j < with_prefetch) prefetch_row(job.next_k_rows[j], job.row_bytes);
    hn::Vec<DF> p[G];
    for (std::size_t g = 0; g < G; ++g) p[g] = hn::Set(df, logits[g * stride + j]);
    for (std::size_t s = 0; s < CC; ++s) {
      const auto v = load_row<DT>(df, job.v_rows[j], c + s * N);
      for (std::size_t g = 0; g < G; ++g) o[g][s] = hn::MulAdd(p[g], v, o[g][s]);
    }
  }
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t s = 0; s < CC; ++s) hn::StoreU(o[g][s], df, job.state.acc + g * d + c + s * N);
}

// The same for a single head, in the form the kernel had before output_slices: each
// row's CC slices are loaded before any is used, the rows that prefetch and the rows
// that do not run as two loops, and the accumulators go through the caller's array
// (GCC keeps part of them on the stack). For one head, which is memory-bound, this form
// streamed about 3% faster from memory than output_slices on the development machine
// (AMD EPYC, AVX2; decode benchmark at 32K, 1 and 2 threads, interleaved runs), although
// it is slower on data in cache; for two or more heads output_slices is 15-25% faster.
template <int DT, std::size_t CC>
HWY_NOINLINE void output_rows_one_head(const chunk_job& job, const float* logits, hn::Vec<DF> (&o)[CC],
                                       std::size_t c, std::uint32_t from, std::uint32_t to, bool prefetch) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  for (std::uint32_t j = from; j < to; ++j) {
    if (prefetch) prefetch_row(job.next_k_rows[j], job.row_bytes);
    hn::Vec<DF> v[CC];
    for (std::size_t s = 0; s < CC; ++s) v[s] = load_row<DT>(df, job.v_rows[j], c + s * N);
    const auto p = hn::Set(df, logits[j]);
    for (std::size_t s = 0; s < CC; ++s) o[s] = hn::MulAdd(p, v[s], o[s]);
  }
}

template <int DT, std::size_t CC>
HWY_INLINE void output_one_head(const chunk_job& job, const float* logits, float alpha, std::size_t c) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  hn::Vec<DF> o[CC];
  for (std::size_t s = 0; s < CC; ++s) o[s] = hn::Mul(hn::LoadU(df, job.state.acc + c + s * N), hn::Set(df, alpha));
  const std::uint32_t with_prefetch = c == 0 && job.prefetch ? std::min(job.next_count, job.count) : 0;
  output_rows_one_head<DT, CC>(job, logits, o, c, 0, with_prefetch, true);
  output_rows_one_head<DT, CC>(job, logits, o, c, with_prefetch, job.count, false);
  for (std::size_t s = 0; s < CC; ++s) hn::StoreU(o[s], df, job.state.acc + c + s * N);
}

// G (at most 4) query heads share every row load; G is a compile-time constant so the
// accumulators live in registers. Both passes keep 8 or 9 independent FMA chains in
// flight (T tokens at a time for the logits, C slices of d at a time for the output:
// G x T = G x C = 8, 8, 9, 8 for G = 1..4) and load each K or V vector once per G FMAs.
// G x T accumulators plus G query or probability vectors fit AVX2's 16 registers; the
// earlier 16 accumulators for G = 2 to 4 spilled, and removing the spills made GQA 4
// 15-20% faster (probe_ratio 0.56-0.58 -> 0.66-0.70 at 32K, one thread).
template <int DT, std::size_t G>
void fold(const chunk_job& job) {
  constexpr std::size_t C = G == 1 ? 8 : G == 2 ? 4 : G == 3 ? 3 : 2;  // slices of d per step of the output pass
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const std::size_t d = job.d;
  const std::uint32_t count = job.count;
  const std::size_t stride = (count + N - 1) / N * N;  // scratch row length, padded
  float* logits = job.scratch;                          // [G * stride]
  const float* q = job.queries;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

  // 1. Logits: q_g . k_j for every head of the group, one pass over K; this chunk's V
  //    rows are prefetched meanwhile.
  logits_pass<DT, G>(q, d, job.k_rows, count, logits, stride, job.prefetch ? job.v_rows : nullptr, count,
                     job.row_bytes);

  // 2. Online softmax: new max, rescale factor, probabilities (in place of the logits).
  float alpha[G];
  for (std::size_t g = 0; g < G; ++g) {
    float* row = logits + g * stride;
    for (std::size_t i = count; i < stride; ++i) row[i] = kNegInf;
    auto vmax = hn::Set(df, kNegInf);
    for (std::size_t i = 0; i < stride; i += N) vmax = hn::Max(vmax, hn::LoadU(df, row + i));
    const float bmax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    job.state.block_max[g] = bmax;
    const float old_max = job.state.max[g];
    const float new_max = std::max(old_max, bmax);
    alpha[g] = old_max == kNegInf ? 0.0f : std::exp(old_max - new_max);
    const auto vnew = hn::Set(df, new_max);
    auto vsum = hn::Zero(df);
    for (std::size_t i = 0; i < stride; i += N) {
      const auto p = hn::Exp(df, hn::Sub(hn::LoadU(df, row + i), vnew));
      hn::StoreU(p, df, row + i);
      vsum = hn::Add(vsum, p);
    }
    job.state.sum[g] = job.state.sum[g] * alpha[g] + hn::GetLane(hn::SumOfLanes(df, vsum));
    job.state.max[g] = new_max;
  }

  // 3. Output: acc_g = alpha_g * acc_g + sum_j p_gj v_j, one pass over V per C slices of d.
  //    The first pass also prefetches the next chunk's K rows.
  std::size_t c = 0;
  if constexpr (G == 1) {
    for (; c + C * N <= d; c += C * N) output_one_head<DT, C>(job, logits, alpha[0], c);
    for (; c < d; c += N) output_one_head<DT, 1>(job, logits, alpha[0], c);
  } else {
    for (; c + C * N <= d; c += C * N) output_slices<DT, G, C>(job, logits, stride, alpha, c);
    for (; c < d; c += N) output_slices<DT, G, 1>(job, logits, stride, alpha, c);
  }
}

// Large GQA groups run as sub-groups of at most 4 heads, of near-equal sizes (8 = 4 + 4,
// 6 = 3 + 3, 5 = 3 + 2): each sub-group re-reads the chunk from L1, which costs less
// than the register spills and reloads of 8 heads' accumulators at once.
constexpr std::uint32_t kMaxSubGroup = 4;

inline std::uint32_t sub_group_size(std::uint32_t n) {
  const std::uint32_t parts = (n + kMaxSubGroup - 1) / kMaxSubGroup;
  return (n + parts - 1) / parts;
}

// One query head per KV head: the chunk runs in pieces of one vector of rows (at least
// 8), each its own logits, softmax and output step. A piece's prefetches then run one
// piece ahead (its V rows during its logits, the next piece's K rows during its output)
// instead of a whole chunk, and the K and V streams alternate every 2-4 KiB instead of
// every 16 KiB. From memory this streamed 10-25% faster than whole chunks (fp16 and bf16,
// 32K and 128K, 1 and 2 threads; AMD EPYC Zen 3, AVX2, interleaved runs); with several
// heads the pieces lose (GQA 4: 0.40-0.56 of the read ceiling against 0.52-0.58), so
// groups keep whole chunks.
template <int DT>
void fold_one_head(const chunk_job& job) {
  const std::uint32_t piece_rows = std::max<std::uint32_t>(8, static_cast<std::uint32_t>(hn::Lanes(DF())));
  chunk_job piece = job;
  float block_max = -std::numeric_limits<float>::infinity();
  for (std::uint32_t first = 0; first < job.count; first += piece_rows) {
    const std::uint32_t next = first + piece_rows;
    piece.k_rows = job.k_rows + first;
    piece.v_rows = job.v_rows + first;
    piece.count = std::min(piece_rows, job.count - first);
    piece.next_k_rows = next < job.count ? job.k_rows + next : job.next_k_rows;
    piece.next_count = next < job.count ? std::min(piece_rows, job.count - next) : std::min(piece_rows, job.next_count);
    fold<DT, 1>(piece);
    block_max = std::max(block_max, job.state.block_max[0]);
  }
  job.state.block_max[0] = block_max;  // the chunk's, as the terminator expects
}

template <int DT>
bool fold_groups(const chunk_job& job) {
  if (job.n_q == 1) {
    fold_one_head<DT>(job);
    return true;
  }
  chunk_job sub = job;
  const std::uint32_t size = sub_group_size(job.n_q);
  for (std::uint32_t g0 = 0; g0 < job.n_q; g0 += size) {
    const std::uint32_t g = std::min(size, job.n_q - g0);
    sub.n_q = g;
    sub.queries = job.queries + static_cast<std::size_t>(g0) * job.d;
    sub.state = {job.state.max + g0, job.state.sum + g0, job.state.acc + static_cast<std::size_t>(g0) * job.d,
                 job.state.block_max + g0};
    sub.prefetch = job.prefetch && g0 == 0;  // later sub-groups find the rows in cache
    switch (g) {
      case 1: fold<DT, 1>(sub); break;
      case 2: fold<DT, 2>(sub); break;
      case 3: fold<DT, 3>(sub); break;
      default: fold<DT, 4>(sub); break;
    }
  }
  return true;
}

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
    switch (g) {
      case 1: logits_pass<DT, 1>(qg, d, k_rows, count, o, out_stride, pf, pf_count, row_bytes); break;
      case 2: logits_pass<DT, 2>(qg, d, k_rows, count, o, out_stride, pf, pf_count, row_bytes); break;
      case 3: logits_pass<DT, 3>(qg, d, k_rows, count, o, out_stride, pf, pf_count, row_bytes); break;
      default: logits_pass<DT, 4>(qg, d, k_rows, count, o, out_stride, pf, pf_count, row_bytes); break;
    }
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

bool FoldChunk(const chunk_job& job) {
  const DF df;
  if (job.d % hn::Lanes(df) != 0) return false;
  switch (job.dtype) {
    case ATTNBENCH_DTYPE_FP32: return fold_groups<ATTNBENCH_DTYPE_FP32>(job);
    case ATTNBENCH_DTYPE_FP16: return fold_groups<ATTNBENCH_DTYPE_FP16>(job);
    case ATTNBENCH_DTYPE_BF16: return fold_groups<ATTNBENCH_DTYPE_BF16>(job);
  }
  return false;
}

}  // namespace attnbench::kernels::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <atomic>

namespace attnbench::kernels {
namespace detail {

HWY_EXPORT(FoldChunk);
HWY_EXPORT(ScoreRows);
HWY_EXPORT(SelectAtLeast);
HWY_EXPORT(ExpShift);

namespace {
std::atomic<bool> g_scalar{false};
}

bool simd_enabled() { return !g_scalar.load(std::memory_order_relaxed); }

bool fold_chunk_simd(const chunk_job& job) { return HWY_DYNAMIC_DISPATCH(FoldChunk)(job); }
bool score_rows_simd(const score_job& job) { return HWY_DYNAMIC_DISPATCH(ScoreRows)(job); }
std::size_t select_at_least_simd(const float* x, std::size_t n, float threshold, std::uint32_t* out) {
  return HWY_DYNAMIC_DISPATCH(SelectAtLeast)(x, n, threshold, out);
}

float exp_shift_simd(float* x, std::size_t n, float shift) { return HWY_DYNAMIC_DISPATCH(ExpShift)(x, n, shift); }

void force_scalar(bool on) { g_scalar.store(on); }

}  // namespace detail

}  // namespace attnbench::kernels
#endif  // HWY_ONCE
