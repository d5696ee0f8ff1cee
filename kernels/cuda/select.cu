// TokenSelect's selection on the GPU (issue 9), as plugins/tokenselect does it on the CPU
// with soft_vote: per query head the logits of the candidate tokens, a softmax per head,
// summed over all query heads, and the top_k candidates by that sum.
//
// Three kernels. score_logits: one warp per range of candidates of one (sequence, KV
// head), reading each K row once for the whole GQA group (the decode kernel's logit
// pass), writing the logits and each warp's running (max, sum of exp) per head. vote:
// per candidate, the sum over query heads of exp(logit - max) / sum, with each head's
// max and sum merged from the warps' partials. top_k_select: one CTA per sequence, a
// radix select on 32-bit order keys (4 passes of 8 bits, same-digit lanes of a warp
// counted with one shared-memory atomic), then the selection written in position order.
#include "common.cuh"

#include <cub/block/block_scan.cuh>

#include <algorithm>

namespace attnbench::cuda {
namespace {

// Logits of a lane's ITER rows for the G query heads of a GQA group: each lane holds 8
// columns of every row (raw, 16 bytes) and of every query (qv); the dot products are
// summed over the row's D / 8 lanes, so every lane of a row ends with the row's logits.
template <class T, int D, int G, int ITER>
__device__ __forceinline__ void row_logits(const float (&qv)[G][8], const uint4 (&raw)[ITER], float (&s)[ITER][G]) {
  constexpr int LPR = D / 8;
#pragma unroll
  for (int it = 0; it < ITER; ++it) {
    float kf[8];
    to_float8<T>(raw[it], kf);
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float dot = 0.0f;
#pragma unroll
      for (int k = 0; k < 8; ++k) dot = fmaf(qv[g][k], kf[k], dot);
#pragma unroll
      for (int off = LPR / 2; off >= 1; off /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, off);
      s[it][g] = dot;
    }
  }
}

struct score_params {
  const float* q;
  const int32_t* table;
  const int32_t* lens;
  int n_kv_heads, max_blocks, n_init, n_local, max_cand, wsplits, subs_per_split, traversals;
  float* logits;  // [b][hq][max_cand]
  float *part_m, *part_z;  // [b][hq][wsplits]
};

__device__ __forceinline__ int candidates(const score_params& p, int b) {
  return max(0, p.lens[b] - p.n_local - p.n_init);
}

template <class T, int D, int G>
__global__ void __launch_bounds__(kThreads) score_logits(const T* __restrict__ k_pool, score_params p) {
  constexpr int LPR = D / 8, RPL = 32 / LPR, ITER = G >= 8 ? 4 : 8, SUB = ITER * RPL;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int unit = blockIdx.x * kWarps + warp;
  const int split = unit % p.wsplits, bh = unit / p.wsplits;
  if (bh >= p.traversals) return;
  const int b = bh / p.n_kv_heads, h = bh % p.n_kv_heads;
  const int group_row = lane / LPR, col = (lane % LPR) * 8;
  const int n_q = p.n_kv_heads * G;
  const int n_cand = candidates(p, b);
  const int32_t* blocks = p.table + static_cast<size_t>(bh) * p.max_blocks;
  float qv[G][8], m[G], z[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float* qg = p.q + (static_cast<size_t>(b) * n_q + h * G + g) * D + col;
#pragma unroll
    for (int k = 0; k < 8; ++k) qv[g][k] = qg[k];
    m[g] = -INFINITY;
    z[g] = 0.0f;
  }
  const int first = split * p.subs_per_split * SUB;
  const int last = min(n_cand, first + p.subs_per_split * SUB);
  for (int j0 = first; j0 < last; j0 += SUB) {
    uint4 raw[ITER];
    int j[ITER];
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      j[it] = j0 + it * RPL + group_row;
      const int t = p.n_init + j[it];
      raw[it] = load_row<D>(k_pool, j[it] < last ? blocks[t / kBlock] * kBlock + t % kBlock : -1, col);
    }
    float s[ITER][G];
    row_logits<T, D, G, ITER>(qv, raw, s);
#pragma unroll
    for (int it = 0; it < ITER; ++it)
#pragma unroll
      for (int g = 0; g < G; ++g) {
        if (j[it] < last && lane % LPR == g % LPR)  // spread the stores over the row's lanes
          p.logits[(static_cast<size_t>(b) * n_q + h * G + g) * p.max_cand + j[it]] = s[it][g];
        s[it][g] = j[it] < last ? s[it][g] : -INFINITY;
      }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float cm = -INFINITY;
#pragma unroll
      for (int it = 0; it < ITER; ++it) cm = fmaxf(cm, s[it][g]);
#pragma unroll
      for (int off = LPR; off < 32; off *= 2) cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, off));
      if (cm == -INFINITY) continue;
      const float m_new = fmaxf(m[g], cm);
      z[g] *= m[g] == -INFINITY ? 0.0f : __expf(m[g] - m_new);
      m[g] = m_new;
#pragma unroll
      for (int it = 0; it < ITER; ++it) z[g] += __expf(s[it][g] - m_new);
    }
  }
#pragma unroll
  for (int g = 0; g < G; ++g) {
    // Each row's sum is held by all LPR lanes of the row: count it once, then sum rows.
    float zz = lane % LPR == 0 ? z[g] : 0.0f;
#pragma unroll
    for (int off = 1; off < 32; off *= 2) zz += __shfl_xor_sync(0xffffffffu, zz, off);
    if (lane == 0) {
      const size_t part = (static_cast<size_t>(b) * n_q + h * G + g) * p.wsplits + split;
      p.part_m[part] = m[g];
      p.part_z[part] = zz;
    }
  }
}

constexpr int kVoteThreads = 256;
constexpr int kMaxHeads = 256;

// scores[b][j] = sum over query heads (in order) of exp(logit - M) / Z.
__global__ void __launch_bounds__(kVoteThreads) vote(score_params p, int n_q, float* __restrict__ scores) {
  __shared__ float sm_m[kMaxHeads], sm_inv[kMaxHeads];
  const int b = blockIdx.y;
  for (int hq = threadIdx.x; hq < n_q; hq += blockDim.x) {
    const float* pm = p.part_m + (static_cast<size_t>(b) * n_q + hq) * p.wsplits;
    const float* pz = p.part_z + (static_cast<size_t>(b) * n_q + hq) * p.wsplits;
    float M = -INFINITY, Z = 0.0f;
    for (int s = 0; s < p.wsplits; ++s) M = fmaxf(M, pm[s]);
    for (int s = 0; s < p.wsplits; ++s)
      if (pm[s] != -INFINITY) Z += pz[s] * __expf(pm[s] - M);
    sm_m[hq] = M;
    sm_inv[hq] = Z > 0.0f ? 1.0f / Z : 0.0f;
  }
  __syncthreads();
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= candidates(p, b)) return;
  float sum = 0.0f;
  for (int hq = 0; hq < n_q; ++hq)
    sum += __expf(p.logits[(static_cast<size_t>(b) * n_q + hq) * p.max_cand + j] - sm_m[hq]) * sm_inv[hq];
  scores[static_cast<size_t>(b) * p.max_cand + j] = sum;
}

// Larger score, larger key; -0 equals +0; NaN below every number.
__device__ __forceinline__ uint32_t order_key(float x) {
  if (x != x) return 0u;
  if (x == 0.0f) x = 0.0f;
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

constexpr int kSelectThreads = 1024;
constexpr int kSelectWarps = kSelectThreads / 32;

__global__ void __launch_bounds__(kSelectThreads) top_k_select(const float* __restrict__ scores, const int32_t* lens,
                                                               int n_init, int n_local, int max_cand, int top_k,
                                                               int32_t* __restrict__ selected,
                                                               int32_t* __restrict__ n_selected) {
  using scan = cub::BlockScan<int, kSelectThreads>;
  __shared__ typename scan::TempStorage scan_tmp;
  __shared__ int hist[kSelectWarps][256];  // one histogram per warp: conflicts stay inside a warp
  __shared__ uint32_t sm_prefix;
  __shared__ int sm_want;
  const int b = blockIdx.x;
  const int warp = threadIdx.x / 32;
  const int n = max(0, lens[b] - n_local - n_init);
  const int k = min(top_k, n);
  const float* x = scores + static_cast<size_t>(b) * max_cand;
  int32_t* out = selected + static_cast<size_t>(b) * top_k;
  if (threadIdx.x == 0) n_selected[b] = k;
  if (k == 0) return;

  // Radix select of the k-th largest key: after the 4 passes `prefix` is that key and
  // `want` the number of keys equal to it that belong to the top k.
  uint32_t prefix = 0, mask = 0;
  int want = k;
  if (k < n) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = threadIdx.x; i < kSelectWarps * 256; i += blockDim.x) (&hist[0][0])[i] = 0;
      __syncthreads();
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const uint32_t key = order_key(x[i]);
        if ((key & mask) == prefix) atomicAdd(&hist[warp][(key >> shift) & 255u], 1);
      }
      __syncthreads();
      if (threadIdx.x < 256) {
        int total = 0;
        for (int w = 0; w < kSelectWarps; ++w) total += hist[w][threadIdx.x];
        hist[0][threadIdx.x] = total;
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        int above = 0, d = 255;
        for (; d > 0 && above + hist[0][d] < want; --d) above += hist[0][d];
        sm_want = want - above;
        sm_prefix = prefix | (static_cast<uint32_t>(d) << shift);
      }
      __syncthreads();
      want = sm_want;
      prefix = sm_prefix;
      mask |= 255u << shift;
    }
  }

  // The selection in position order: every key above the threshold and the first `want`
  // keys equal to it. Each thread owns a contiguous segment: it counts, one block scan
  // places its segment, then it writes.
  const bool all = k == n;
  const int per = (n + blockDim.x - 1) / blockDim.x;
  const int lo = min(n, static_cast<int>(threadIdx.x) * per), hi = min(n, lo + per);
  int n_gt = 0, n_eq = 0;
  for (int i = lo; i < hi; ++i) {
    const uint32_t key = order_key(x[i]);
    n_gt += all || key > prefix;
    n_eq += !all && key == prefix;
  }
  int eq_before;
  scan(scan_tmp).ExclusiveSum(n_eq, eq_before);
  __syncthreads();
  const int eq_taken = max(0, min(n_eq, want - eq_before));  // this segment's share of the ties
  int pos;
  scan(scan_tmp).ExclusiveSum(n_gt + eq_taken, pos);
  int eq_left = eq_taken;
  for (int i = lo; i < hi; ++i) {
    const uint32_t key = order_key(x[i]);
    if (all || key > prefix || (key == prefix && eq_left-- > 0)) out[pos++] = n_init + i;
  }
}

workspace g_select_ws;

template <class T, int D, int G>
cudaError_t launch(const attnbench_cuda_select_args& a, float* scores_out, cudaEvent_t* marks) {
  auto kernel = score_logits<T, D, G>;
  constexpr int SUB = (G >= 8 ? 4 : 8) * (32 / (D / 8));
  const int n_q = a.n_query_heads;
  const int max_cand = std::max(1, a.max_len - a.n_local - a.n_init);
  const int traversals = a.batch * a.n_kv_heads;
  const int max_subs = (max_cand + SUB - 1) / SUB;
  int wsplits = std::max(1, resident_ctas(kernel) * kWarps / traversals);
  wsplits = std::min(wsplits, max_subs);
  const int subs_per_split = (max_subs + wsplits - 1) / wsplits;
  wsplits = (max_subs + subs_per_split - 1) / subs_per_split;
  const size_t logits = static_cast<size_t>(a.batch) * n_q * max_cand;
  const size_t parts = static_cast<size_t>(a.batch) * n_q * wsplits;
  const size_t own_scores = scores_out ? 0 : static_cast<size_t>(a.batch) * max_cand;
  if (cudaError_t e = g_select_ws.reserve((logits + 2 * parts + own_scores) * sizeof(float)); e != cudaSuccess) return e;
  score_params p{};
  p.q = a.queries;
  p.table = a.block_table;
  p.lens = a.lens;
  p.n_kv_heads = a.n_kv_heads;
  p.max_blocks = a.max_blocks;
  p.n_init = a.n_init;
  p.n_local = a.n_local;
  p.max_cand = max_cand;
  p.wsplits = wsplits;
  p.subs_per_split = subs_per_split;
  p.traversals = traversals;
  p.logits = static_cast<float*>(g_select_ws.data);
  p.part_m = p.logits + logits;
  p.part_z = p.part_m + parts;
  float* scores = scores_out ? scores_out : p.part_z + parts;
  if (marks) cudaEventRecord(marks[0]);
  const int units = traversals * wsplits;
  kernel<<<(units + kWarps - 1) / kWarps, kThreads>>>(static_cast<const T*>(a.k_pool), p);
  if (marks) cudaEventRecord(marks[1]);
  vote<<<dim3((max_cand + kVoteThreads - 1) / kVoteThreads, a.batch), kVoteThreads>>>(p, n_q, scores);
  if (marks) cudaEventRecord(marks[2]);
  top_k_select<<<a.batch, kSelectThreads>>>(scores, a.lens, a.n_init, a.n_local, max_cand, a.top_k, a.selected,
                                            a.n_selected);
  if (marks) cudaEventRecord(marks[3]);
  return cudaGetLastError();
}

template <class T>
cudaError_t dispatch(const attnbench_cuda_select_args& a, float* scores, cudaEvent_t* marks) {
  return for_shape(a.head_dim, a.n_query_heads / a.n_kv_heads, [&](auto d, auto g) {
    return launch<T, decltype(d)::value, decltype(g)::value>(a, scores, marks);
  });
}

std::string check(const attnbench_cuda_select_args& a) {
  if (std::string why = check_shape(a.dtype, a.batch, a.n_query_heads, a.n_kv_heads, a.head_dim, a.max_len,
                                    a.max_blocks);
      !why.empty())
    return why;
  if (a.n_query_heads > kMaxHeads) return "at most 256 query heads";
  if (a.n_init < 0 || a.n_local < 0 || a.top_k < 1) return "n_init and n_local must be >= 0 and top_k >= 1";
  if (!a.queries || !a.k_pool || !a.block_table || !a.lens || !a.selected || !a.n_selected)
    return "a required pointer is null";
  return {};
}

}  // namespace
}  // namespace attnbench::cuda

extern "C" int attnbench_cuda_select(const attnbench_cuda_select_args* args, int iters, float* ms, float* ms_parts) {
  using namespace attnbench::cuda;
  auto go = [&](cudaEvent_t* marks) {
    return args->dtype == ATTNBENCH_CUDA_FP16 ? dispatch<__half>(*args, args->scores, marks)
                                              : dispatch<__nv_bfloat16>(*args, args->scores, marks);
  };
  return c_entry("attnbench_cuda_select", args, [](const auto& a) { return check(a); }, [&] {
    cudaError_t e = run_timed([&] { return go(nullptr); }, iters, ms);
    if (e == cudaSuccess && iters > 0 && ms_parts) {  // the stages, timed apart in a second loop
      cudaEvent_t marks[4];
      for (auto& m : marks) cudaEventCreate(&m);
      float sums[3] = {0, 0, 0};
      for (int i = 0; i < iters && e == cudaSuccess; ++i) {
        e = go(marks);
        cudaEventSynchronize(marks[3]);
        for (int s = 0; s < 3; ++s) {
          float t = 0;
          cudaEventElapsedTime(&t, marks[s], marks[s + 1]);
          sums[s] += t;
        }
      }
      for (int s = 0; s < 3; ++s) ms_parts[s] = sums[s] / iters;
      for (auto& m : marks) cudaEventDestroy(m);
    }
    return e;
  });
}
