// Decode attention over a paged fp16/bf16 KV cache on an NVIDIA GPU (issue 9): a batch of
// sequences; GQA (the query heads of a KV head share every 16-byte K/V load); dense, or
// over a per-head list of blocks or tokens; split-K across the sequence with a log-sum-exp
// merge; ART's stability test after each chunk, per split and GQA group. The C API and
// the layout are in include/attnbench/cuda.h; the versions tried and their figures in
// results/gpu/NOTES.md (v1-v7 did the products on CUDA cores; v8 on tensor cores).
//
// Work unit: one warp runs one split of one (sequence, KV head) traversal alone, from its
// first chunk to its last (or until ART stops it), and writes its unnormalised partial
// (max, sum, accumulator per query head); a CTA is just four such warps. No CTA-wide
// synchronisation, so a warp's ART test needs only shuffles. A chunk (64 rows: one block,
// or 64 entries of a token list) is four sub-chunks of 16 rows, one MMA row tile.
//
// Layout. Lane (gid = lane / 4, tig = lane % 4) loads rows gid and gid + 8 of each
// sub-chunk, and of each row the 16 bytes at columns 32 u + 8 tig for u < D / 32: each
// load instruction reads 64 contiguous bytes of 8 rows (a first version read D / 4
// contiguous columns per lane, so that an instruction used half of each 32-byte sector,
// and ran 5% slower; NOTES.md). Both products may permute the head dimension as long as
// both operands agree, so these registers are the MMA fragments directly:
//  - S^T = K Q^T (M = 16 rows, N = 8 query heads, the GQA group padded with zeros, K = the
//    head dimension): the K registers are the A fragments; the queries, split into a
//    16-bit high part and the rounding rest (two MMAs), the B fragments. Logits are
//    exact to about 2^-22 of q.k, not to fp16.
//  - O^T += V^T P^T (M = 16 columns of the head dimension, N = 8 heads, K = 16 rows): the
//    V registers transposed 8x8 at a time with movmatrix are the A fragments; the
//    softmax weights, again split in two 16-bit parts, transposed the same way, the B
//    fragments.
// The softmax, the accumulators and ART's test then live in the accumulator layout: a lane
// holds heads 2 tig and 2 tig + 1, for 2 D / 16 columns of each; lanes of equal tig share
// a head, so a head's reductions take three shuffles.
#include "common.cuh"

#include <algorithm>
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

// ART's state on the tensor-core layout: each lane's previous normalised output of its
// two heads, in its own column order.
template <int D>
struct art_state_tc {
  float prev[32][2][D / 8];
};

__device__ __forceinline__ float head_sum(float x) {  // over the 8 lanes of equal tig
  x += __shfl_xor_sync(0xffffffffu, x, 4);
  x += __shfl_xor_sync(0xffffffffu, x, 8);
  return x + __shfl_xor_sync(0xffffffffu, x, 16);
}

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
  const int b = bh / p.n_kv_heads, h = bh % p.n_kv_heads;
  const int n_q = p.n_kv_heads * G;
  const int len = p.lens[b];
  const int32_t* blocks = p.table + static_cast<size_t>(bh) * p.max_blocks;
  const int32_t* list = MODE == ATTNBENCH_CUDA_ALL ? nullptr : p.list + static_cast<size_t>(bh) * p.max_list;
  const int count = MODE == ATTNBENCH_CUDA_ALL ? 0 : min(p.list_counts[bh], p.max_list);
  const int n_chunks = MODE == ATTNBENCH_CUDA_ALL      ? (len + kBlock - 1) / kBlock
                       : MODE == ATTNBENCH_CUDA_BLOCKS ? count
                                                       : (count + kBlock - 1) / kBlock;
  const int first = split * p.chunks_per_split;
  const int last = min(n_chunks, first + p.chunks_per_split);

  // B fragments of the queries: head gid (zeros past the group); k-step ks takes the 4
  // columns its K words hold, 32 (ks / 2) + 8 tig + 4 (ks % 2).
  uint32_t qh[KS][2], ql[KS][2];
  {
    const float* qg = p.q + (static_cast<size_t>(b) * n_q + h * G + min(gid, G - 1)) * D + 8 * tig;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      const float4 x =
          gid < G ? *reinterpret_cast<const float4*>(qg + 32 * (ks / 2) + 4 * (ks % 2)) : make_float4(0, 0, 0, 0);
      split_pair<T>(x.x, x.y, qh[ks][0], ql[ks][0]);
      split_pair<T>(x.z, x.w, qh[ks][1], ql[ks][1]);
    }
  }
  float acc[KS][4];  // O^T: [m-tile][c0 c1: column gid, heads 2 tig + e; c2 c3: column gid + 8]
#pragma unroll
  for (int t = 0; t < KS; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // heads 2 tig + e; l: this lane's rows

  __shared__ art_state_tc<ART ? D : 8> sm_art[ART ? kWarps : 1];
  float prev_norm[2] = {0, 0}, prev_max[2] = {0, 0}, prev_sum[2] = {0, 0};
  int passes = 0, done = 0;
  bool stopped = false;
  if constexpr (ART)
#pragma unroll
    for (int e = 0; e < 2; ++e)
#pragma unroll
      for (int i = 0; i < D / 8; ++i) sm_art[warp].prev[lane][e][i] = 0.0f;

  const int sc_end = last * SUBS;
  int sc = first * SUBS;
  int ra = -1, rb = -1;
  uint4 ka[NU], kb[NU];
  auto load_k = [&](int x) {
    ra = chunk_row<MODE>(blocks, list, len, count, x / SUBS, (x % SUBS) * 16 + gid);
    rb = chunk_row<MODE>(blocks, list, len, count, x / SUBS, (x % SUBS) * 16 + gid + 8);
#pragma unroll
    for (int u = 0; u < NU; ++u) {
      ka[u] = load_row<D>(k_pool, ra, 32 * u + 8 * tig);
      kb[u] = load_row<D>(k_pool, rb, 32 * u + 8 * tig);
    }
  };
  if (sc < sc_end) load_k(sc);
  for (; sc < sc_end; ++sc) {
    // This sub-chunk's V loads first, then the wait for its K (issued one step back).
    uint4 vra[NU], vrb[NU];
#pragma unroll
    for (int u = 0; u < NU; ++u) {
      vra[u] = load_row<D>(v_pool, ra, 32 * u + 8 * tig);
      vrb[u] = load_row<D>(v_pool, rb, 32 * u + 8 * tig);
    }
    // S^T of this sub-chunk: rows gid, gid + 8 x heads 2 tig + e.
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      const uint32_t a0 = word(ka, 2 * ks), a1 = word(kb, 2 * ks), a2 = word(ka, 2 * ks + 1), a3 = word(kb, 2 * ks + 1);
      mma16816<T>(s, a0, a1, a2, a3, qh[ks][0], qh[ks][1]);
      mma16816<T>(s, a0, a1, a2, a3, ql[ks][0], ql[ks][1]);
    }
    const bool va = ra >= 0, vb = rb >= 0;
    if (!va) s[0] = s[1] = -INFINITY;
    if (!vb) s[2] = s[3] = -INFINITY;
    if (sc + 1 < sc_end) load_k(sc + 1);
    if constexpr (ART) {
      if (sc % SUBS == 0 && sc > first * SUBS) {
        ++done;
        bool pass = done >= 2;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float L = head_sum(l[e]);
          float nn = 0.0f, dp = 0.0f, pp = 0.0f;
          float* pr = sm_art[warp].prev[lane][e];
#pragma unroll
          for (int t = 0; t < KS; ++t) {
            const float x0 = acc[t][e], x1 = acc[t][2 + e], p0 = pr[2 * t], p1 = pr[2 * t + 1];
            nn = fmaf(x0, x0, fmaf(x1, x1, nn));
            dp = fmaf(x0, p0, fmaf(x1, p1, dp));
            pp = fmaf(p0, p0, fmaf(p1, p1, pp));
          }
          nn = head_sum(nn);
          dp = head_sum(dp);
          pp = head_sum(pp);
          const float inv = L > 0.0f ? __frcp_rn(L) : 0.0f;
          const float norm = sqrtf(nn) * inv;
          if (pass && 2 * tig + e < G) {
            bool mag_ok;
            if (p.art_mass) {
              const float carried = prev_sum[e] * __expf(prev_max[e] - m[e]);
              mag_ok = L > 0.0f ? L - carried < p.tau_mag * L : 1.0f < p.tau_mag;
            } else {
              mag_ok = prev_norm[e] > 0.0f ? fabsf(norm - prev_norm[e]) < p.tau_mag * prev_norm[e]
                                           : (norm > 0.0f ? 1.0f : 0.0f) < p.tau_mag;
            }
            const float cosine = nn > 0.0f && pp > 0.0f ? dp * rsqrtf(nn * pp) : 1.0f;
            pass = mag_ok && 1.0f - cosine < p.tau_dir;
          }
#pragma unroll
          for (int t = 0; t < KS; ++t) pr[2 * t] = acc[t][e] * inv, pr[2 * t + 1] = acc[t][2 + e] * inv;
          prev_norm[e] = norm;
          prev_max[e] = m[e];
          prev_sum[e] = L;
        }
        passes = __all_sync(0xffffffffu, pass) ? passes + 1 : 0;
        if (done >= p.min_blocks && passes >= p.patience) {
          stopped = true;
          break;
        }
      }
    }
    // Online softmax per head: the max over the 16 rows is over the 8 lanes of equal tig.
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
    // B fragments of P^T (rows 16 x heads 8), high and low parts.
    uint32_t p0h, p0l, p1h, p1l;
    split_pair<T>(s[0], s[1], p0h, p0l);
    split_pair<T>(s[2], s[3], p1h, p1l);
    const uint32_t b0h = transpose8x8(p0h), b1h = transpose8x8(p1h), b0l = transpose8x8(p0l),
                   b1l = transpose8x8(p1l);
#pragma unroll
    for (int t = 0; t < KS; ++t) {
      const uint32_t a0 = transpose8x8(word(vra, 2 * t)), a1 = transpose8x8(word(vra, 2 * t + 1)),
                     a2 = transpose8x8(word(vrb, 2 * t)), a3 = transpose8x8(word(vrb, 2 * t + 1));
      mma16816<T>(acc[t], a0, a1, a2, a3, b0h, b1h);
      mma16816<T>(acc[t], a0, a1, a2, a3, b0l, b1l);
    }
  }

  // The merge kernel may be scheduled from here on (it waits for this grid's writes).
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif

  // The partial of each head of this lane: columns 32 (t / 2) + 8 (gid / 2) + 4 (t % 2) +
  // gid % 2 (c0, c1) and + 2 (c2, c3).
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const float L = head_sum(l[e]);
    const int head = 2 * tig + e;
    if (head >= G) continue;
    const size_t part = (static_cast<size_t>(b) * n_q + h * G + head) * p.splits + split;
    float* dst = p.part_acc + part * D + 8 * (gid / 2) + (gid % 2);
#pragma unroll
    for (int t = 0; t < KS; ++t) {
      dst[32 * (t / 2) + 4 * (t % 2)] = acc[t][e];
      dst[32 * (t / 2) + 4 * (t % 2) + 2] = acc[t][2 + e];
    }
    if (gid == 0) p.part_m[part] = m[e], p.part_l[part] = L;
  }
  if (lane == 0 && p.planned) {
    const int planned = max(0, last - first);
    atomicAdd(p.planned + bh, static_cast<uint32_t>(planned));
    atomicAdd(p.visited + bh, static_cast<uint32_t>(ART && stopped ? done : planned));
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

template <class T, int D, int G, int MODE, bool ART>
cudaError_t launch(const attnbench_cuda_decode_args& a) {
  auto kernel = decode_tc<T, D, G, MODE, ART>;
  constexpr int W = kWarps;
  const int max_chunks = MODE == ATTNBENCH_CUDA_ALL      ? (a.max_len + kBlock - 1) / kBlock
                         : MODE == ATTNBENCH_CUDA_BLOCKS ? a.max_list
                                                         : (a.max_list + kBlock - 1) / kBlock;
  const int traversals = a.batch * a.n_kv_heads;
  // Splits: enough warps to fill every resident CTA slot once (one wave; see NOTES.md).
  int splits = a.splits;
  if (splits <= 0) splits = std::max(1, resident_ctas(kernel, W * 32) * W / traversals);
  splits = std::max(1, std::min(splits, std::max(1, max_chunks)));
  const int per_split = std::max(1, (max_chunks + splits - 1) / splits);
  splits = std::max(1, (max_chunks + per_split - 1) / per_split);
  const size_t heads = static_cast<size_t>(traversals) * G;
  const size_t floats = heads * splits * (D + 2);
  if (cudaError_t e = g_decode_ws.reserve(floats * sizeof(float)); e != cudaSuccess) return e;
  decode_params p{};
  p.q = a.queries;
  p.table = a.block_table;
  p.lens = a.lens;
  p.list = a.list;
  p.list_counts = a.list_counts;
  p.traversals = traversals;
  p.n_kv_heads = a.n_kv_heads;
  p.max_blocks = a.max_blocks;
  p.max_list = a.max_list;
  p.splits = splits;
  p.chunks_per_split = per_split;
  p.tau_mag = static_cast<float>(a.tau_mag);
  p.tau_dir = static_cast<float>(a.tau_dir);
  p.patience = a.patience;
  p.min_blocks = a.min_blocks;
  p.art_mass = a.art_mass;
  p.planned = a.chunks_planned;
  p.visited = a.chunks_visited;
  p.stops = a.stops;
  p.part_m = static_cast<float*>(g_decode_ws.data);
  p.part_l = p.part_m + heads * splits;
  p.part_acc = p.part_l + heads * splits;
  if (p.planned) {
    const size_t bytes = static_cast<size_t>(traversals) * sizeof(uint32_t);
    cudaMemsetAsync(p.planned, 0, bytes);
    cudaMemsetAsync(p.visited, 0, bytes);
    cudaMemsetAsync(p.stops, 0, bytes);
  }
  const int units = traversals * splits;
  kernel<<<(units + W - 1) / W, W * 32>>>(static_cast<const T*>(a.k_pool), static_cast<const T*>(a.v_pool),
                                                      p);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  // The merge as a programmatic dependent launch: its launch overlaps the decode's tail.
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(a.n_kv_heads * G, a.batch);
  config.blockDim = dim3(D);
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, merge_splits, static_cast<const float*>(p.part_m),
                            static_cast<const float*>(p.part_l), static_cast<const float*>(p.part_acc), splits, D,
                            a.out);
}

template <class T, int D, int G>
cudaError_t dispatch_mode(const attnbench_cuda_decode_args& a) {
  switch (a.list_kind * 2 + (a.art ? 1 : 0)) {
    case 0: return launch<T, D, G, ATTNBENCH_CUDA_ALL, false>(a);
    case 1: return launch<T, D, G, ATTNBENCH_CUDA_ALL, true>(a);
    case 2: return launch<T, D, G, ATTNBENCH_CUDA_BLOCKS, false>(a);
    case 3: return launch<T, D, G, ATTNBENCH_CUDA_BLOCKS, true>(a);
    case 4: return launch<T, D, G, ATTNBENCH_CUDA_TOKENS, false>(a);
    default: return launch<T, D, G, ATTNBENCH_CUDA_TOKENS, true>(a);
  }
}

template <class T>
cudaError_t dispatch(const attnbench_cuda_decode_args& a) {
  return for_shape(a.head_dim, a.n_query_heads / a.n_kv_heads,
                   [&](auto d, auto g) { return dispatch_mode<T, decltype(d)::value, decltype(g)::value>(a); });
}

// The argument checks a host can make without touching device memory.
std::string check(const attnbench_cuda_decode_args& a) {
  if (std::string why = check_shape(a.dtype, a.batch, a.n_query_heads, a.n_kv_heads, a.head_dim, a.max_len,
                                    a.max_blocks);
      !why.empty())
    return why;
  if (!a.queries || !a.k_pool || !a.v_pool || !a.block_table || !a.lens || !a.out) return "a required pointer is null";
  if (a.list_kind < ATTNBENCH_CUDA_ALL || a.list_kind > ATTNBENCH_CUDA_TOKENS) return "list_kind must be 0, 1 or 2";
  if (a.list_kind != ATTNBENCH_CUDA_ALL && (!a.list || !a.list_counts || a.max_list <= 0))
    return "a block or token list needs list, list_counts and max_list > 0";
  if (a.art && (a.patience < 1 || a.min_blocks < 0 || !(a.tau_mag >= 0) || !(a.tau_dir >= 0)))
    return "ART needs patience >= 1, min_blocks >= 0 and thresholds >= 0";
  if ((a.chunks_planned != nullptr) != (a.chunks_visited != nullptr) || (a.chunks_planned != nullptr) != (a.stops != nullptr))
    return "chunks_planned, chunks_visited and stops go together";
  return {};
}

}  // namespace
}  // namespace attnbench::cuda

extern "C" int attnbench_cuda_decode(const attnbench_cuda_decode_args* args, int iters, float* ms) {
  using namespace attnbench::cuda;
  return c_entry("attnbench_cuda_decode", args, [](const auto& a) { return check(a); }, [&] {
    return run_timed(
        [&] { return args->dtype == ATTNBENCH_CUDA_FP16 ? dispatch<__half>(*args) : dispatch<__nv_bfloat16>(*args); },
        iters, ms);
  });
}
