// The decode kernel's device code (decode.cu launches it): the work unit, the layout and
// the versions tried are described at the top of decode.cu.
#pragma once

#include "common.cuh"

#include <cmath>

namespace attnbench::cuda {
namespace {

struct decode_params {
  const float* q;
  const int32_t* table;
  const int32_t* lens;
  const int32_t* list;
  const int32_t* list_counts;
  int traversals, n_kv_heads, max_blocks, max_list, splits, chunks_per_split;
  float tau_mag, tau_dir;
  int patience, min_blocks, art_mass;
  uint32_t *planned, *visited, *stops;
  float *part_m, *part_l, *part_acc;
};

// Pool row of row r (0 .. kBlock - 1) of chunk c of a traversal, or -1 past its end.
template <int MODE>
__device__ __forceinline__ int chunk_row(const int32_t* blocks, const int32_t* list, int len, int count, int c,
                                         int r) {
  if constexpr (MODE == ATTNBENCH_CUDA_ALL) {
    const int t = c * kBlock + r;
    return t < len ? blocks[c] * kBlock + r : -1;
  } else if constexpr (MODE == ATTNBENCH_CUDA_BLOCKS) {
    const int lb = list[c];
    return lb * kBlock + r < len ? blocks[lb] * kBlock + r : -1;
  } else {
    const int i = c * kBlock + r;
    if (i >= count) return -1;
    const int t = list[i];
    return blocks[t / kBlock] * kBlock + t % kBlock;
  }
}

template <class T>
__device__ __forceinline__ void mma16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// The transpose of the 8x8 16-bit matrix whose row lane / 4, columns 2 (lane % 4) and
// 2 (lane % 4) + 1 this lane holds, in the same layout.
__device__ __forceinline__ uint32_t transpose8x8(uint32_t x) {
  uint32_t y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(y) : "r"(x));
  return y;
}

// (a, b) as two 16-bit values of T (high part) and what they leave (low part).
template <class T>
__device__ __forceinline__ void split_pair(float a, float b, uint32_t& hi, uint32_t& lo) {
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 h = __floats2half2_rn(a, b);
    const float2 back = __half22float2(h);
    const __half2 l = __floats2half2_rn(a - back.x, b - back.y);
    hi = *reinterpret_cast<const uint32_t*>(&h);
    lo = *reinterpret_cast<const uint32_t*>(&l);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    const float2 back = __bfloat1622float2(h);
    const __nv_bfloat162 l = __floats2bfloat162_rn(a - back.x, b - back.y);
    hi = *reinterpret_cast<const uint32_t*>(&h);
    lo = *reinterpret_cast<const uint32_t*>(&l);
  }
}

template <int N>
__device__ __forceinline__ uint32_t word(const uint4 (&x)[N], int r) {  // 32-bit word r of the row registers
  const uint4& v = x[r / 4];
  return (r % 4) == 0 ? v.x : (r % 4) == 1 ? v.y : (r % 4) == 2 ? v.z : v.w;
}

// ART's state on the tensor-core layout, in shared memory with the lane index fastest (a
// layout with each lane's values together put all 32 lanes on one bank): each lane's
// accumulators of its two heads at the last test, in its own column order, and each
// head's squared accumulator norm, output norm, max and sum then (kept here, not in
// registers, so that the ART kernels need few more registers than plain decode).
template <int D>
struct art_state_tc {
  float prev[2][D / 8][32];
  float sq[2][32], norm[2][32], max[2][32], sum[2][32];
};

__device__ __forceinline__ float head_sum(float x) {  // over the 8 lanes of equal tig
  x += __shfl_xor_sync(0xffffffffu, x, 4);
  x += __shfl_xor_sync(0xffffffffu, x, 8);
  return x + __shfl_xor_sync(0xffffffffu, x, 16);
}

// One (sequence, KV head) traversal as one split sees it: its block table and list, and
// the chunks [first, last) of the split.
template <int MODE>
struct traversal {
  int b, h, len, count, first, last;
  const int32_t* blocks;
  const int32_t* list;
  __device__ __forceinline__ traversal(const decode_params& p, int bh, int split)
      : b(bh / p.n_kv_heads), h(bh % p.n_kv_heads), len(p.lens[b]),
        count(MODE == ATTNBENCH_CUDA_ALL ? 0 : min(p.list_counts[bh], p.max_list)),
        blocks(p.table + static_cast<size_t>(bh) * p.max_blocks),
        list(MODE == ATTNBENCH_CUDA_ALL ? nullptr : p.list + static_cast<size_t>(bh) * p.max_list) {
    const int n_chunks = MODE == ATTNBENCH_CUDA_ALL      ? (len + kBlock - 1) / kBlock
                         : MODE == ATTNBENCH_CUDA_BLOCKS ? count
                                                         : (count + kBlock - 1) / kBlock;
    first = split * p.chunks_per_split;
    last = min(n_chunks, first + p.chunks_per_split);
  }
  // Pool row of row r of chunk c, or -1 past the end.
  __device__ __forceinline__ int row(int c, int r) const { return chunk_row<MODE>(blocks, list, len, count, c, r); }
};

// B fragments of the queries of a GQA group: head gid (zeros past the group); k-step ks
// takes the 4 columns its K words hold, 32 (ks / 2) + 8 tig + 4 (ks % 2). Each query is
// split into a 16-bit high part (qh) and what it leaves (ql).
template <class T, int D, int G>
__device__ __forceinline__ void load_query_fragments(const float* q, int gid, int tig, uint32_t (&qh)[D / 16][2],
                                                     uint32_t (&ql)[D / 16][2]) {
  const float* qg = q + 8 * tig;
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
    const float4 x =
        gid < G ? *reinterpret_cast<const float4*>(qg + 32 * (ks / 2) + 4 * (ks % 2)) : make_float4(0, 0, 0, 0);
    split_pair<T>(x.x, x.y, qh[ks][0], ql[ks][0]);
    split_pair<T>(x.z, x.w, qh[ks][1], ql[ks][1]);
  }
}

// ART's test of a warp's traversal, run before each chunk after the first: per head, the
// change of the normalised output since the last test (magnitude, or with art_mass the
// share of the softmax mass added since) and its direction. True when every head of the
// group has passed `patience` tests in a row, after min_blocks chunks. The direction's
// cosine is taken between the raw accumulators (the output times its positive sum), so
// the previous one's squared norm is the one computed at the last test.
template <int D, int G>
struct art_tracker {
  int passes = 0, done = 0;

  __device__ __forceinline__ void reset(art_state_tc<D>& sm, int lane) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
#pragma unroll
      for (int i = 0; i < D / 8; ++i) sm.prev[e][i][lane] = 0.0f;
      sm.sq[e][lane] = sm.norm[e][lane] = sm.max[e][lane] = sm.sum[e][lane] = 0.0f;
    }
  }

  __device__ __forceinline__ bool should_stop(const decode_params& p, art_state_tc<D>& sm, int lane, int tig,
                                              const float (&acc)[D / 16][4], const float (&m)[2],
                                              const float (&l)[2]) {
    constexpr int KS = D / 16;
    ++done;
    bool pass = done >= 2;
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const float L = head_sum(l[e]);
      float nn = 0.0f, dp = 0.0f;
#pragma unroll
      for (int t = 0; t < KS; ++t) {
        const float x0 = acc[t][e], x1 = acc[t][2 + e];
        nn = fmaf(x0, x0, fmaf(x1, x1, nn));
        dp = fmaf(x0, sm.prev[e][2 * t][lane], fmaf(x1, sm.prev[e][2 * t + 1][lane], dp));
        sm.prev[e][2 * t][lane] = x0;
        sm.prev[e][2 * t + 1][lane] = x1;
      }
      nn = head_sum(nn);
      dp = head_sum(dp);
      const float pp = sm.sq[e][lane];
      const float norm = L > 0.0f ? sqrtf(nn) * __frcp_rn(L) : 0.0f;
      if (pass && 2 * tig + e < G) {
        bool mag_ok;
        if (p.art_mass) {
          const float carried = sm.sum[e][lane] * __expf(sm.max[e][lane] - m[e]);
          mag_ok = L > 0.0f ? L - carried < p.tau_mag * L : 1.0f < p.tau_mag;
        } else {
          const float prev_norm = sm.norm[e][lane];
          mag_ok = prev_norm > 0.0f ? fabsf(norm - prev_norm) < p.tau_mag * prev_norm
                                    : (norm > 0.0f ? 1.0f : 0.0f) < p.tau_mag;
        }
        const float cosine = nn > 0.0f && pp > 0.0f ? dp * rsqrtf(nn * pp) : 1.0f;
        pass = mag_ok && 1.0f - cosine < p.tau_dir;
      }
      sm.sq[e][lane] = nn;
      sm.norm[e][lane] = norm;
      sm.max[e][lane] = m[e];
      sm.sum[e][lane] = L;
    }
    passes = __all_sync(0xffffffffu, pass) ? passes + 1 : 0;
    return done >= p.min_blocks && passes >= p.patience;
  }
};

// This lane's 16-byte pieces of pool rows ra and rb (columns 32 u + 8 tig).
template <int D, class T>
__device__ __forceinline__ void load_rows(const T* __restrict__ pool, int ra, int rb, int tig, uint4 (&xa)[D / 32],
                                          uint4 (&xb)[D / 32]) {
#pragma unroll
  for (int u = 0; u < D / 32; ++u) {
    xa[u] = load_row<D>(pool, ra, 32 * u + 8 * tig);
    xb[u] = load_row<D>(pool, rb, 32 * u + 8 * tig);
  }
}

// S^T += K Q^T for one sub-chunk: the K registers as A fragments, the queries' high and
// low parts as B fragments.
template <class T, int KS, int NU>
__device__ __forceinline__ void key_logits(float (&s)[4], const uint4 (&ka)[NU], const uint4 (&kb)[NU],
                                           const uint32_t (&qh)[KS][2], const uint32_t (&ql)[KS][2]) {
#pragma unroll
  for (int ks = 0; ks < KS; ++ks) {
    const uint32_t a0 = word(ka, 2 * ks), a1 = word(kb, 2 * ks), a2 = word(ka, 2 * ks + 1), a3 = word(kb, 2 * ks + 1);
    mma16816<T>(s, a0, a1, a2, a3, qh[ks][0], qh[ks][1]);
    mma16816<T>(s, a0, a1, a2, a3, ql[ks][0], ql[ks][1]);
  }
}

// Online softmax per head over a sub-chunk's logits s (rows gid, gid + 8 x heads 2 tig + e):
// the max over the 16 rows is over the 8 lanes of equal tig. Rescales acc and l, and
// leaves the weights in s.
template <int KS>
__device__ __forceinline__ void softmax_step(float (&s)[4], float (&m)[2], float (&l)[2], float (&acc)[KS][4]) {
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    float cm = fmaxf(s[e], s[2 + e]);
    cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, 4));
    cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, 8));
    cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, 16));
    const float m_new = fmaxf(m[e], cm);
    if (m_new == -INFINITY) {
      s[e] = s[2 + e] = 0.0f;
      continue;
    }
    const float alpha = m[e] == -INFINITY ? 0.0f : __expf(m[e] - m_new);
    m[e] = m_new;
    l[e] *= alpha;
#pragma unroll
    for (int t = 0; t < KS; ++t) acc[t][e] *= alpha, acc[t][2 + e] *= alpha;
    s[e] = __expf(s[e] - m_new);
    s[2 + e] = __expf(s[2 + e] - m_new);
    l[e] += s[e] + s[2 + e];
  }
}

// O^T += V^T P^T for one sub-chunk: the weights s as B fragments (high and low parts,
// rows 16 x heads 8), the V rows transposed 8x8 at a time as A fragments.
template <class T, int KS, int NU>
__device__ __forceinline__ void accumulate_values(float (&acc)[KS][4], const float (&s)[4], const uint4 (&vra)[NU],
                                                  const uint4 (&vrb)[NU]) {
  uint32_t p0h, p0l, p1h, p1l;
  split_pair<T>(s[0], s[1], p0h, p0l);
  split_pair<T>(s[2], s[3], p1h, p1l);
  const uint32_t b0h = transpose8x8(p0h), b1h = transpose8x8(p1h), b0l = transpose8x8(p0l), b1l = transpose8x8(p1l);
#pragma unroll
  for (int t = 0; t < KS; ++t) {
    const uint32_t a0 = transpose8x8(word(vra, 2 * t)), a1 = transpose8x8(word(vra, 2 * t + 1)),
                   a2 = transpose8x8(word(vrb, 2 * t)), a3 = transpose8x8(word(vrb, 2 * t + 1));
    mma16816<T>(acc[t], a0, a1, a2, a3, b0h, b1h);
    mma16816<T>(acc[t], a0, a1, a2, a3, b0l, b1l);
  }
}

// The partial of each head of this lane: columns 32 (t / 2) + 8 (gid / 2) + 4 (t % 2) +
// gid % 2 (c0, c1) and + 2 (c2, c3); its max and sum from the lanes with gid 0.
template <int D, int G>
__device__ __forceinline__ void write_partials(const decode_params& p, size_t first_part, int gid, int tig,
                                               const float (&acc)[D / 16][4], const float (&m)[2],
                                               const float (&l)[2]) {
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const float L = head_sum(l[e]);
    const int head = 2 * tig + e;
    if (head >= G) continue;
    const size_t part = first_part + static_cast<size_t>(head) * p.splits;
    float* dst = p.part_acc + part * D + 8 * (gid / 2) + (gid % 2);
#pragma unroll
    for (int t = 0; t < D / 16; ++t) {
      dst[32 * (t / 2) + 4 * (t % 2)] = acc[t][e];
      dst[32 * (t / 2) + 4 * (t % 2) + 2] = acc[t][2 + e];
    }
    if (gid == 0) p.part_m[part] = m[e], p.part_l[part] = L;
  }
}

// One warp: one split of one (sequence, KV head) traversal, sub-chunk by sub-chunk, with
// each sub-chunk's K loads issued one step ahead; then its partials and counters.
template <class T, int D, int G, int MODE, bool ART>
__global__ void __launch_bounds__(kThreads) decode_tc(const T* __restrict__ k_pool, const T* __restrict__ v_pool,
                                                      decode_params p) {
  constexpr int NU = D / 32;  // 16-byte loads per row per lane
  constexpr int KS = D / 16;  // k-steps of S^T, and m-tiles of O^T
  constexpr int SUBS = kBlock / 16;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int gid = lane / 4, tig = lane % 4;
  const int unit = blockIdx.x * kWarps + warp;
  const int split = unit % p.splits;
  const int bh = unit / p.splits;
  if (bh >= p.traversals) return;
  const traversal<MODE> tr(p, bh, split);
  const int n_q = p.n_kv_heads * G;
  const size_t group_row = static_cast<size_t>(tr.b) * n_q + tr.h * G;  // the group's first query head

  uint32_t qh[KS][2], ql[KS][2];
  load_query_fragments<T, D, G>(p.q + (group_row + min(gid, G - 1)) * D, gid, tig, qh, ql);
  float acc[KS][4];  // O^T: [m-tile][c0 c1: column gid, heads 2 tig + e; c2 c3: column gid + 8]
#pragma unroll
  for (int t = 0; t < KS; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // heads 2 tig + e; l: this lane's rows

  __shared__ art_state_tc<ART ? D : 8> sm_art[ART ? kWarps : 1];
  art_tracker<ART ? D : 8, G> art;
  bool stopped = false;
  if constexpr (ART) art.reset(sm_art[warp], lane);

  const int sc_end = tr.last * SUBS;
  int sc = tr.first * SUBS;
  int ra = -1, rb = -1;
  uint4 ka[NU], kb[NU];
  auto load_k = [&](int x) {
    ra = tr.row(x / SUBS, (x % SUBS) * 16 + gid);
    rb = tr.row(x / SUBS, (x % SUBS) * 16 + gid + 8);
    load_rows<D>(k_pool, ra, rb, tig, ka, kb);
  };
  if (sc < sc_end) load_k(sc);
  for (; sc < sc_end; ++sc) {
    // This sub-chunk's V loads first, then the wait for its K (issued one step back).
    uint4 vra[NU], vrb[NU];
    load_rows<D>(v_pool, ra, rb, tig, vra, vrb);
    // ART's test before each chunk after the first, while the chunk's first K and V loads
    // are in flight. Before the V loads (v10) the memory had less to do during the test:
    // ART never firing cost -0.2 to 2.6 points more there than in this order (median 1.1;
    // three H200 machines, batch 8 and 32, 32K-128K; results/gpu/NOTES.md, v11). The V
    // registers live across the test: 178 registers, within the 2 CTAs per SM the splits
    // use.
    if constexpr (ART) {
      if (sc % SUBS == 0 && sc > tr.first * SUBS && art.should_stop(p, sm_art[warp], lane, tig, acc, m, l)) {
        stopped = true;
        break;
      }
    }
    // S^T of this sub-chunk: rows gid, gid + 8 x heads 2 tig + e.
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    key_logits<T, KS, NU>(s, ka, kb, qh, ql);
    if (ra < 0) s[0] = s[1] = -INFINITY;
    if (rb < 0) s[2] = s[3] = -INFINITY;
    if (sc + 1 < sc_end) load_k(sc + 1);
    softmax_step<KS>(s, m, l, acc);
    accumulate_values<T, KS, NU>(acc, s, vra, vrb);
  }

  // The merge kernel may be scheduled from here on (it waits for this grid's writes).
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
  write_partials<D, G>(p, group_row * p.splits + split, gid, tig, acc, m, l);
  if (lane == 0 && p.planned) {
    const int planned = max(0, tr.last - tr.first);
    atomicAdd(p.planned + bh, static_cast<uint32_t>(planned));
    atomicAdd(p.visited + bh, static_cast<uint32_t>(ART && stopped ? art.done : planned));
    if (ART && stopped) atomicAdd(p.stops + bh, 1u);
  }
}

// One CTA of D threads per (query head, sequence): the log-sum-exp merge of the splits.
// Launched as a programmatic dependent of the decode (see launch): it may start while the
// decode's last CTAs run, and waits for their results at griddepcontrol.wait. The loops
// over the splits are unrolled so that their loads are in flight together (a rolled
// loop waited on one L2 round trip per split: batch 1, with up to 200 splits, took 9-50%
// longer; NOTES.md, v9). Before compute capability 9.0 griddepcontrol does not exist and
// the launch is an ordinary one.
__global__ void __launch_bounds__(128) merge_splits(const float* __restrict__ part_m, const float* __restrict__ part_l,
                                                    const float* __restrict__ part_acc, int splits, int D,
                                                    float* __restrict__ out) {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  const size_t head = static_cast<size_t>(blockIdx.y) * gridDim.x + blockIdx.x;
  const float* pm = part_m + head * splits;
  const float* pl = part_l + head * splits;
  const float* pa = part_acc + head * splits * D + threadIdx.x;
  float M = -INFINITY;
#pragma unroll 8
  for (int s = 0; s < splits; ++s) M = fmaxf(M, pm[s]);
  float a = 0.0f, L = 0.0f;
  if (M != -INFINITY) {
#pragma unroll 8
    for (int s = 0; s < splits; ++s) {
      const float m = pm[s];
      const float e = m == -INFINITY ? 0.0f : __expf(m - M);
      a = fmaf(e, pa[static_cast<size_t>(s) * D], a);
      L = fmaf(e, pl[s], L);
    }
  }
  out[head * D + threadIdx.x] = L > 0.0f ? a / L : 0.0f;
}

workspace g_decode_ws;

}  // namespace
}  // namespace attnbench::cuda
