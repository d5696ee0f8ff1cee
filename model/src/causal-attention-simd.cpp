// Causal grouped-query attention of a whole prompt (the trained model's prefill), in fp32,
// compiled once per x86 target by Highway and chosen at run time (as kernels/ does).
//
// A task is a block of queries and one KV head; its rows are (query, query head of the
// KV head's group) pairs, so every K and V element loaded serves the whole group. Keys
// go in tiles of kKeyTile; for each tile, rows go in register tiles of kRows:
//  - scores S = Q K^T by broadcast multiply-adds over head_dim, keys along the lanes (K is
//    packed per tile as [head_dim][kKeyTile], Q pre-scaled);
//  - an online softmax per row in base 2 (a vector exp2, Exp2NonPositive: cheaper than
//    Highway's general Exp), the causal mask applied only where
//    a tile crosses the diagonal, tiles past the diagonal skipped;
//  - O += P V by broadcast multiply-adds over the tile's keys, head_dim along the lanes (V
//    packed with rows padded to whole vectors, which is also how a head_dim that is not a
//    multiple of the vector width is handled).
// SwiGLU's silu(gate) * up (SiluMul) is here too: the prefill's other per-element loop.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "causal-attention-simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#ifndef ATTNBENCH_CAUSAL_ATTENTION_ONCE
#define ATTNBENCH_CAUSAL_ATTENTION_ONCE
namespace attnbench::detail {
// The packed inputs of one call, shared by every task.
struct attention_job {
  const float* q = nullptr;    // [n x hq*d]
  float* out = nullptr;        // [n x hq*d]
  const float* kt = nullptr;   // [hkv][tiles][d][kKeyTile]: K transposed per tile, zero past n
  const float* vp = nullptr;   // [hkv][tiles * kKeyTile][dp]: V rows padded to dp, zero past n
  std::size_t n = 0, tiles = 0, dp = 0;
  std::uint32_t hq = 0, hkv = 0, d = 0;
  float scale = 1.0f;
};
constexpr std::size_t kKeyTile = 64;       // keys per tile: a multiple of two vectors on every target
constexpr std::size_t kRowsPerTask = 96;   // rows (query x head) of a task
}  // namespace attnbench::detail
#endif

HWY_BEFORE_NAMESPACE();
namespace attnbench::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Rows of a register tile: two vectors per row, so 24 accumulators with AVX-512's 32
// registers, 12 with the 16 of the other x86 targets.
#if HWY_TARGET <= HWY_AVX3
constexpr std::size_t kRows = 12;
#else
constexpr std::size_t kRows = 6;
#endif

// s[r][0 .. width) = qp[r] . K[j] for the tile's keys j, width a multiple of two vectors.
HWY_INLINE void ScoreTile(const float* HWY_RESTRICT qp, std::size_t d, const float* HWY_RESTRICT kt,
                          std::size_t width, float* HWY_RESTRICT s) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  for (std::size_t k0 = 0; k0 < width; k0 += 2 * N) {
    VF a0[kRows], a1[kRows];
    for (std::size_t r = 0; r < kRows; ++r) a0[r] = a1[r] = hn::Zero(df);
    const float* kc = kt + k0;
    for (std::size_t c = 0; c < d; ++c, kc += kKeyTile) {
      const VF k_lo = hn::LoadU(df, kc), k_hi = hn::LoadU(df, kc + N);
      for (std::size_t r = 0; r < kRows; ++r) {
        const VF b = hn::Set(df, qp[r * d + c]);
        a0[r] = hn::MulAdd(b, k_lo, a0[r]);
        a1[r] = hn::MulAdd(b, k_hi, a1[r]);
      }
    }
    for (std::size_t r = 0; r < kRows; ++r) {
      hn::StoreU(a0[r], df, s + r * kKeyTile + k0);
      hn::StoreU(a1[r], df, s + r * kKeyTile + k0 + N);
    }
  }
}

// o[r][col .. col + V vectors) += sum over the first `keys` keys j of p[r][j] V[j].
template <std::size_t V>
HWY_INLINE void AccumulateTile(const float* HWY_RESTRICT p, const float* HWY_RESTRICT vp, std::size_t dp,
                               std::size_t keys, float* HWY_RESTRICT o, std::size_t col) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  VF acc[kRows][V];
  for (std::size_t r = 0; r < kRows; ++r)
    for (std::size_t v = 0; v < V; ++v) acc[r][v] = hn::LoadU(df, o + r * dp + col + v * N);
  const float* vr = vp + col;
  for (std::size_t j = 0; j < keys; ++j, vr += dp) {
    VF x[V];
    for (std::size_t v = 0; v < V; ++v) x[v] = hn::LoadU(df, vr + v * N);
    for (std::size_t r = 0; r < kRows; ++r) {
      const VF b = hn::Set(df, p[r * kKeyTile + j]);
      for (std::size_t v = 0; v < V; ++v) acc[r][v] = hn::MulAdd(b, x[v], acc[r][v]);
    }
  }
  for (std::size_t r = 0; r < kRows; ++r)
    for (std::size_t v = 0; v < V; ++v) hn::StoreU(acc[r][v], df, o + r * dp + col + v * N);
}

// 2^x for x <= 0 (and -inf), to a few parts in 10^7 relative, as 2^round(x) times a
// polynomial of the fraction (Cephes' exp2f); below 2^-126 it gives 2^-126, which is nil
// next to a row's largest weight, 1. Cheaper than a general exp: this is most of the
// softmax's cost.
HWY_INLINE VF Exp2NonPositive(DF df, VF x) {
  const hn::RebindToSigned<DF> di;
  const VF t = hn::Max(x, hn::Set(df, -126.0f));
  const VF n = hn::Round(t);
  const VF f = hn::Sub(t, n);  // [-0.5, 0.5]
  VF p = hn::Set(df, 1.535336188319500e-4f);
  p = hn::MulAdd(p, f, hn::Set(df, 1.339887440266574e-3f));
  p = hn::MulAdd(p, f, hn::Set(df, 9.618437357674640e-3f));
  p = hn::MulAdd(p, f, hn::Set(df, 5.550332471162809e-2f));
  p = hn::MulAdd(p, f, hn::Set(df, 2.402264791363012e-1f));
  p = hn::MulAdd(p, f, hn::Set(df, 6.931472028550421e-1f));
  p = hn::MulAdd(p, f, hn::Set(df, 1.0f));
  const auto e = hn::ShiftLeft<23>(hn::ConvertTo(di, n));
  return hn::BitCast(df, hn::Add(hn::BitCast(di, p), e));
}

// The online softmax of one row over the tile's scores s[0 .. width) (log2 units), of
// which the first `valid` (> 0) are visible (all when not kMasked): s becomes the weights
// 2^(s - m), zero where masked; the row's running max m, its per-lane sums l (one
// vector) and its output o (dp floats) are updated.
template <bool kMasked>
HWY_INLINE void SoftmaxRow(float* HWY_RESTRICT s, std::size_t width, std::size_t valid, float& m, float* HWY_RESTRICT l,
                           float* HWY_RESTRICT o, std::size_t dp) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const auto lanes = [&](std::size_t j) { return hn::FirstN(df, valid > j ? valid - j : 0); };
  VF vmax = hn::Set(df, -std::numeric_limits<float>::infinity());
  for (std::size_t j = 0; j < width; j += N) {
    const VF x = hn::LoadU(df, s + j);
    vmax = kMasked ? hn::IfThenElse(lanes(j), hn::Max(vmax, x), vmax) : hn::Max(vmax, x);
  }
  const float m_new = std::max(m, hn::GetLane(hn::MaxOfLanes(df, vmax)));
  VF sum = hn::LoadU(df, l);
  if (m_new > m) {
    const float alpha = std::exp2(m - m_new);  // 0 on the row's first tile
    const VF a = hn::Set(df, alpha);
    sum = hn::Mul(sum, a);
    for (std::size_t c = 0; c < dp; c += N) hn::StoreU(hn::Mul(hn::LoadU(df, o + c), a), df, o + c);
    m = m_new;
  }
  const VF shift = hn::Set(df, m);
  for (std::size_t j = 0; j < width; j += N) {
    VF p = Exp2NonPositive(df, hn::Sub(hn::LoadU(df, s + j), shift));
    if (kMasked) p = hn::IfThenElseZero(lanes(j), p);
    hn::StoreU(p, df, s + j);
    sum = hn::Add(sum, p);
  }
  hn::StoreU(sum, df, l);
}

// One task's scratch: its rows' scaled queries, outputs, running max and sum, and one
// register tile's scores.
struct scratch {
  std::vector<float> qp, o, m, l, s;
};

// Copies the task's queries, scaled (into log2 units), into qp (rows padded to a whole register tile with
// copies of the last row) and resets its outputs.
void LoadRows(const attention_job& job, std::size_t i0, std::size_t rows, std::uint32_t kh, std::size_t padded,
              scratch& w) {
  const std::uint32_t group = job.hq / job.hkv, d = job.d;
  const std::size_t q_stride = std::size_t{job.hq} * d;
  w.qp.resize(padded * d);
  const float scale = job.scale * 1.44269504088896341f;  // log2(e): the softmax works in base 2
  for (std::size_t r = 0; r < padded; ++r) {
    const std::size_t row = std::min(r, rows - 1);
    const float* src = job.q + (i0 + row / group) * q_stride + (std::size_t{kh} * group + row % group) * d;
    for (std::uint32_t c = 0; c < d; ++c) w.qp[r * d + c] = scale * src[c];
  }
  w.o.assign(padded * job.dp, 0.0f);
  w.m.assign(padded, -std::numeric_limits<float>::infinity());
  w.l.assign(padded * hn::Lanes(DF()), 0.0f);
  w.s.resize(kRows * kKeyTile);
}

// One register tile of rows (the task's rows r0 .. r0 + kRows) against the key tile
// starting at key j0 (kt and vp point at its packed K and V).
void AttendTile(const attention_job& job, std::size_t i0, std::size_t rows, std::size_t r0, std::size_t j0,
                const float* kt, const float* vp, scratch& w) {
  const DF df;
  const std::size_t N = hn::Lanes(df), group = job.hq / job.hkv, dp = job.dp;
  const auto query = [&](std::size_t r) { return i0 + std::min(r, rows - 1) / group; };
  const std::size_t i_max = query(r0 + kRows - 1);
  const std::size_t keys = std::min(kKeyTile, i_max - j0 + 1);  // keys any row of the tile sees
  const std::size_t width = (keys + 2 * N - 1) / (2 * N) * (2 * N);
  ScoreTile(w.qp.data() + r0 * job.d, job.d, kt, width, w.s.data());
  // Rows whose query is below the tile's last key are masked; the others see `keys` keys.
  for (std::size_t r = 0; r < kRows; ++r) {
    const std::ptrdiff_t seen = std::ptrdiff_t(query(r0 + r)) - std::ptrdiff_t(j0) + 1;
    float* s = w.s.data() + r * kKeyTile;
    float *l = w.l.data() + (r0 + r) * N, *o = w.o.data() + (r0 + r) * dp;
    if (seen <= 0) {
      std::fill(s, s + width, 0.0f);
    } else if (std::size_t(seen) >= width) {
      SoftmaxRow<false>(s, width, width, w.m[r0 + r], l, o, dp);
    } else {
      SoftmaxRow<true>(s, width, std::size_t(seen), w.m[r0 + r], l, o, dp);
    }
  }
  float* o = w.o.data() + r0 * dp;
  std::size_t col = 0;
  for (; col + 2 * N <= dp; col += 2 * N) AccumulateTile<2>(w.s.data(), vp, dp, keys, o, col);
  if (col < dp) AccumulateTile<1>(w.s.data(), vp, dp, keys, o, col);
}

// The task of `queries` queries from i0 and KV head kh.
void AttendBlock(const attention_job& job, std::size_t i0, std::size_t queries, std::uint32_t kh) {
  thread_local scratch w;
  const std::uint32_t group = job.hq / job.hkv;
  const std::size_t rows = queries * group, padded = (rows + kRows - 1) / kRows * kRows, dp = job.dp;
  LoadRows(job, i0, rows, kh, padded, w);
  const std::size_t last = i0 + queries - 1;
  const float* kt = job.kt + std::size_t{kh} * job.tiles * job.d * kKeyTile;
  const float* vp = job.vp + std::size_t{kh} * job.tiles * kKeyTile * dp;
  for (std::size_t t = 0; t * kKeyTile <= last; ++t) {
    const std::size_t j0 = t * kKeyTile;
    for (std::size_t r0 = 0; r0 < padded; r0 += kRows) {
      if (j0 > i0 + std::min(r0 + kRows - 1, rows - 1) / group) continue;  // past these rows' diagonal
      AttendTile(job, i0, rows, r0, j0, kt + t * job.d * kKeyTile, vp + j0 * dp, w);
    }
  }
  const std::size_t q_stride = std::size_t{job.hq} * job.d;
  const std::size_t N = hn::Lanes(DF());
  for (std::size_t r = 0; r < rows; ++r) {
    float sum = 0;
    for (std::size_t lane = 0; lane < N; ++lane) sum += w.l[r * N + lane];
    const float inv = 1.0f / sum;
    float* out = job.out + (i0 + r / group) * q_stride + (std::size_t{kh} * group + r % group) * job.d;
    for (std::uint32_t c = 0; c < job.d; ++c) out[c] = w.o[r * dp + c] * inv;
  }
}

// Packs K and V (see attention_job), then runs the tasks, longest first.
void CausalAttention(const float* q, const float* k, const float* v, std::size_t n, std::uint32_t hq,
                     std::uint32_t hkv, std::uint32_t d, float scale, float* out) {
  const DF df;
  const std::size_t N = hn::Lanes(df), dp = (d + N - 1) / N * N, tiles = (n + kKeyTile - 1) / kKeyTile;
  const std::size_t kv_stride = std::size_t{hkv} * d;
  std::vector<float> kt(hkv * tiles * d * kKeyTile), vp(hkv * tiles * kKeyTile * dp);
  tbb::parallel_for(std::size_t{0}, hkv * tiles, [&](std::size_t task) {
    const std::size_t kh = task / tiles, t = task % tiles;
    float* kd = kt.data() + task * d * kKeyTile;
    float* vd = vp.data() + task * kKeyTile * dp;
    for (std::size_t jj = 0; jj < kKeyTile && t * kKeyTile + jj < n; ++jj) {
      const std::size_t j = t * kKeyTile + jj;
      for (std::uint32_t c = 0; c < d; ++c) {
        kd[c * kKeyTile + jj] = k[j * kv_stride + kh * d + c];
        vd[jj * dp + c] = v[j * kv_stride + kh * d + c];
      }
    }
  });
  attention_job job;
  job.q = q, job.out = out, job.kt = kt.data(), job.vp = vp.data();
  job.n = n, job.tiles = tiles, job.dp = dp, job.hq = hq, job.hkv = hkv, job.d = d, job.scale = scale;
  const std::size_t block = std::max<std::size_t>(1, kRowsPerTask / (hq / hkv));
  const std::size_t blocks = (n + block - 1) / block;
  tbb::parallel_for(std::size_t{0}, blocks * hkv, [&](std::size_t task) {
    const std::size_t b = blocks - 1 - task / hkv, i0 = b * block;
    AttendBlock(job, i0, std::min(block, n - i0), static_cast<std::uint32_t>(task % hkv));
  }, tbb::simple_partitioner());
}

// gate[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i] (SwiGLU's product).
void SiluMul(float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, std::size_t count) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const VF one = hn::Set(df, 1.0f);
  std::size_t i = 0;
  for (; i + N <= count; i += N) {
    const VF g = hn::LoadU(df, gate + i);
    // Highway's Exp holds to an argument of 104: e^88 (still a float) already makes silu 0.
    const VF silu = hn::Div(g, hn::Add(one, hn::Exp(df, hn::Min(hn::Neg(g), hn::Set(df, 88.0f)))));
    hn::StoreU(hn::Mul(silu, hn::LoadU(df, up + i)), df, gate + i);
  }
  for (; i < count; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace attnbench::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "dense-forward.hpp"

namespace attnbench::detail {

HWY_EXPORT(CausalAttention);
HWY_EXPORT(SiluMul);

void causal_attention(const float* q, const float* k, const float* v, std::size_t n, std::uint32_t hq,
                      std::uint32_t hkv, std::uint32_t d, float scale, float* out) {
  if (n == 0) return;
  HWY_DYNAMIC_DISPATCH(CausalAttention)(q, k, v, n, hq, hkv, d, scale, out);
}

void silu_mul(float* gate, const float* up, std::size_t count) { HWY_DYNAMIC_DISPATCH(SiluMul)(gate, up, count); }

}  // namespace attnbench::detail
#endif  // HWY_ONCE
