// The SIMD step of the decode kernel, compiled once per x86 target by Highway and
// chosen at run time (AVX-512, AVX2, SSE4, ...). All query heads of a GQA group read each
// K and V row once; fp16 and bf16 rows widen to fp32 in registers; exp is vectorised.
// The row loads and the logits pass it shares with scoring are in rows-simd-inl.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "decode-simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "decode-internal.hpp"
#include "rows-simd-inl.h"

#include <algorithm>
#include <cmath>
#include <limits>

HWY_BEFORE_NAMESPACE();
namespace attnbench::kernels::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
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
  const std::uint32_t with_prefetch = c == 0 && job.prefetch && !job.stream ? std::min(job.next_count, job.count) : 0;
  for (std::uint32_t j = 0; j < job.count; ++j) {
    if (j < with_prefetch) prefetch_row(job.next_k_rows[j], job.row_bytes);
    if (job.stream) job.stream->issue();
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

// G (at most kMaxSubGroup) query heads share every row load; G is a compile-time constant
// so the accumulators live in registers. Both passes keep 8 or 9 independent FMA chains
// in flight on AVX2 (T tokens at a time for the logits, C slices of d at a time for the
// output: G x T = G x C = 8, 8, 9, 8 for G = 1..4) and 15-16 on AVX-512 (8, 16, 15, 16,
// then 2 G for G = 5..8; logit_rows_per_step), and load each K or V vector once per G
// FMAs.
// G x T accumulators plus G query or probability vectors fit AVX2's 16 registers; the
// earlier 16 accumulators for G = 2 to 4 spilled, and removing the spills made GQA 4
// 15-20% faster (probe_ratio 0.56-0.58 -> 0.66-0.70 at 32K, one thread).
template <int DT, std::size_t G>
void fold(const chunk_job& job) {
  constexpr std::size_t C = logit_rows_per_step<G>();  // slices of d per step of the output pass
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
  logits_pass<DT, G>(q, d, job.k_rows, count, logits, stride, job.prefetch && !job.stream ? job.v_rows : nullptr,
                     count, job.row_bytes, job.stream);

  // 2. Online softmax: new max, rescale factor, probabilities (in place of the logits).
  float alpha[G];
  for (std::size_t g = 0; g < G; ++g) {
    float* row = logits + g * stride;
    for (std::size_t i = count; i < stride; ++i) row[i] = kNegInf;
    auto vmax = hn::Set(df, kNegInf);
    for (std::size_t i = 0; i < stride; i += N) vmax = hn::Max(vmax, hn::LoadU(df, row + i));
    const float bmax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    job.state.block_max[g] = job.merge_block_max ? std::max(job.state.block_max[g], bmax) : bmax;
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

// The prefetch stream of a GQA group's chunk on AVX-512 (null elsewhere): the next chunk's
// K and V rows, spread over every logits step and output row of this chunk's sub-groups,
// into L2. There the bursts (the chunk's V rows during the first logits pass, the next
// chunk's K rows during the first output pass) left the memory idle while the group
// computed: the stream read GQA 4 at 0.55-0.60 of the read ceiling against 0.50-0.56, GQA
// 8 at 0.38-0.45 against 0.33-0.38 (Intel Xeon; 128K, fp16 and bf16, 1 and 2 threads;
// into L1 it gained nothing). On AMD EPYC Zen 3 (AVX2), where GQA 4 and 8 are bound by
// the multiply-adds, it was 15-22% slower, so AVX2 keeps the bursts.
prefetch_stream* group_stream(const chunk_job& job, prefetch_stream& stream) {
  if constexpr (HWY_TARGET > HWY_AVX3) return nullptr;
  if (job.n_q < 2 || !job.prefetch || job.next_count == 0) return nullptr;
  const std::uint32_t lanes = static_cast<std::uint32_t>(hn::Lanes(DF()));
  const std::uint32_t size = sub_group_size(job.n_q);
  std::uint64_t calls = 0;  // a logits step per T rows, an output step per row and slice pass
  for (std::uint32_t g0 = 0; g0 < job.n_q; g0 += size)
    with_group_size(std::min(size, job.n_q - g0), [&](auto g) {
      constexpr std::size_t t = logit_rows_per_step<decltype(g)::value>();
      calls += (job.count + t - 1) / t + static_cast<std::uint64_t>(job.count) * ((job.d / lanes + t - 1) / t);
    });
  stream = {job.next_k_rows, job.next_v_rows, job.next_count, static_cast<std::uint32_t>((job.row_bytes + 63) / 64)};
  const std::uint64_t lines = 2ull * stream.count * stream.row_lines;
  stream.rate = static_cast<std::uint32_t>((lines + calls - 1) / std::max<std::uint64_t>(calls, 1));
  return &stream;
}

// One query head per KV head: the chunk runs in pieces of one vector of rows (at least
// 8), each its own logits, softmax and output step. A piece's prefetches then run one
// piece ahead (its V rows during its logits, the next piece's K rows during its output)
// instead of a whole chunk, and the K and V streams alternate every 2-4 KiB instead of
// every 16 KiB. From memory this streamed 10-25% faster than whole chunks (fp16 and bf16,
// 32K and 128K, 1 and 2 threads; AMD EPYC Zen 3, AVX2, interleaved runs); with several
// heads the pieces lose (GQA 4 on Zen 3: 0.40-0.56 of the read ceiling against
// 0.52-0.58; on the Xeon, pieces of 16 rows: 0.46-0.57 against 0.50-0.60), so groups
// keep whole chunks, in sub-groups.
template <int DT>
bool fold_groups(const chunk_job& job) {
  const std::uint32_t lanes = static_cast<std::uint32_t>(hn::Lanes(DF()));
  const std::uint32_t piece_rows = job.n_q == 1 ? std::max<std::uint32_t>(8, lanes) : job.count;
  const std::uint32_t size = sub_group_size(job.n_q);
  prefetch_stream stream;
  chunk_job piece = job;
  piece.stream = group_stream(job, stream);
  for (std::uint32_t first = 0; first < job.count; first += piece_rows) {
    const std::uint32_t next = first + piece_rows;
    piece.k_rows = job.k_rows + first;
    piece.v_rows = job.v_rows + first;
    piece.count = std::min(piece_rows, job.count - first);
    piece.next_k_rows = next < job.count ? job.k_rows + next : job.next_k_rows;
    piece.next_v_rows = next < job.count ? job.v_rows + next : job.next_v_rows;
    piece.next_count = next < job.count ? std::min(piece_rows, job.count - next) : std::min(piece_rows, job.next_count);
    piece.merge_block_max = first > 0;  // the chunk's largest logit, as the terminator expects
    chunk_job sub = piece;
    for (std::uint32_t g0 = 0; g0 < job.n_q; g0 += size) {
      const std::uint32_t g = std::min(size, job.n_q - g0);
      sub.n_q = g;
      sub.queries = job.queries + static_cast<std::size_t>(g0) * job.d;
      sub.state = {job.state.max + g0, job.state.sum + g0, job.state.acc + static_cast<std::size_t>(g0) * job.d,
                   job.state.block_max + g0};
      sub.prefetch = job.prefetch && g0 == 0;  // later sub-groups find the rows in cache
      with_group_size(g, [&](auto n) { fold<DT, decltype(n)::value>(sub); });
    }
  }
  return true;
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

namespace {
std::atomic<bool> g_scalar{false};
}

bool simd_enabled() { return !g_scalar.load(std::memory_order_relaxed); }

bool fold_chunk_simd(const chunk_job& job) { return HWY_DYNAMIC_DISPATCH(FoldChunk)(job); }

void force_scalar(bool on) { g_scalar.store(on); }

}  // namespace detail

}  // namespace attnbench::kernels
#endif  // HWY_ONCE
