// Dense decode attention over a paged fp16 KV cache on an NVIDIA GPU: a batch of
// sequences, GQA (the query heads of a KV head share every K/V load), split-K across the
// sequence with a log-sum-exp merge. A first step of issue 9: no sparse lists, no ART,
// no bf16 yet (see results/gpu/NOTES.md).
//
// Layout, as the CPU cache's: blocks of kBlock tokens, each row-major token x D fp16, K
// and V in two pools indexed by the same block ids; a block table [B][Hkv][max_blocks]
// names each sequence's blocks in order. Queries are fp32 [B][Hq][D], already multiplied
// by the softmax scale; the output is fp32 [B][Hq][D].
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <string>

namespace {

constexpr int kBlock = 64;  // tokens per cache block
constexpr int kWarps = 4;   // a CTA's warps split a block's rows: 16 each
constexpr int kThreads = 32 * kWarps;
constexpr int kRowsPerWarp = kBlock / kWarps;

// 16 bytes of each of this lane's ITER rows (row0, row0 + RPL, ...) of a block, zero
// past the block's n valid rows; all loads are issued before any is used.
template <int D, int ITER, int RPL>
__device__ __forceinline__ void load_rows(const __half* block_col, int row0, int n, uint4 (&raw)[ITER]) {
#pragma unroll
  for (int it = 0; it < ITER; ++it) {
    const int row = row0 + it * RPL;
    raw[it] = row < n ? *reinterpret_cast<const uint4*>(block_col + static_cast<size_t>(row) * D)
                      : make_uint4(0, 0, 0, 0);
  }
}

// One CTA: one sequence, one KV head, one range of blocks (a split). Each lane reads 16
// bytes (8 fp16) of a row: LPR = D / 8 lanes per row, 32 / LPR rows per load.
template <int D, int G>
__global__ void __launch_bounds__(kThreads) decode_split(const float* __restrict__ q, const __half* __restrict__ k_pool,
                                                         const __half* __restrict__ v_pool,
                                                         const int32_t* __restrict__ table,
                                                         const int32_t* __restrict__ lens, int n_kv_heads,
                                                         int max_blocks, int blocks_per_split, float* __restrict__ part_m,
                                                         float* __restrict__ part_l, float* __restrict__ part_acc) {
  constexpr int LPR = D / 8;
  constexpr int RPL = 32 / LPR;
  constexpr int ITER = kRowsPerWarp / RPL;
  const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int splits = gridDim.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group_row = lane / LPR, col = (lane % LPR) * 8;
  const int n_q = n_kv_heads * G;
  const int len = lens[b];
  const int n_blocks = (len + kBlock - 1) / kBlock;
  const int first = split * blocks_per_split;
  const int last = min(n_blocks, first + blocks_per_split);
  const int32_t* blocks = table + (static_cast<size_t>(b) * n_kv_heads + h) * max_blocks;

  float qv[G][8], acc[G][8], m[G], l[G];
  for (int g = 0; g < G; ++g) {
    const float* qg = q + (static_cast<size_t>(b) * n_q + h * G + g) * D + col;
    for (int k = 0; k < 8; ++k) qv[g][k] = qg[k], acc[g][k] = 0.0f;
    m[g] = -INFINITY;
    l[g] = 0.0f;
  }

  for (int bi = first; bi < last; ++bi) {
    const size_t base = static_cast<size_t>(blocks[bi]) * kBlock * D;
    const int n = min(kBlock, len - bi * kBlock);
    // Logits of this warp's rows: all loads first, then the arithmetic.
    const int row0 = warp * kRowsPerWarp + group_row;  // this lane's row at it = 0
    uint4 kraw[ITER];
    load_rows<D, ITER, RPL>(k_pool + base + col, row0, n, kraw);
    float s[ITER][G];
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      const __half2* h2 = reinterpret_cast<const __half2*>(&kraw[it]);
      float kf[8];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = __half22float2(h2[k]);
        kf[2 * k] = f.x;
        kf[2 * k + 1] = f.y;
      }
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; ++k) dot = fmaf(qv[g][k], kf[k], dot);
#pragma unroll
        for (int off = LPR / 2; off >= 1; off /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, off);
        s[it][g] = row0 + it * RPL < n ? dot : -INFINITY;
      }
    }
    // Start the V loads before the softmax arithmetic.
    uint4 vraw[ITER];
    load_rows<D, ITER, RPL>(v_pool + base + col, row0, n, vraw);
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float cm = -INFINITY;
#pragma unroll
      for (int it = 0; it < ITER; ++it) cm = fmaxf(cm, s[it][g]);
#pragma unroll
      for (int off = LPR; off < 32; off *= 2) cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, off));
      const float m_new = fmaxf(m[g], cm);
      if (m_new == -INFINITY) {  // no row of this warp yet: nothing to add
#pragma unroll
        for (int it = 0; it < ITER; ++it) s[it][g] = 0.0f;
        continue;
      }
      const float alpha = m[g] == -INFINITY ? 0.0f : __expf(m[g] - m_new);
      m[g] = m_new;
      l[g] *= alpha;
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[g][k] *= alpha;
#pragma unroll
      for (int it = 0; it < ITER; ++it) {
        const float p = s[it][g] == -INFINITY ? 0.0f : __expf(s[it][g] - m_new);
        s[it][g] = p;
        l[g] += p;  // per row group; summed across groups at the end
      }
    }
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      const __half2* h2 = reinterpret_cast<const __half2*>(&vraw[it]);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = __half22float2(h2[k]);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          acc[g][2 * k] = fmaf(s[it][g], f.x, acc[g][2 * k]);
          acc[g][2 * k + 1] = fmaf(s[it][g], f.y, acc[g][2 * k + 1]);
        }
      }
    }
  }

  // Row groups of a warp share m: sum their l and acc.
#pragma unroll
  for (int g = 0; g < G; ++g) {
#pragma unroll
    for (int off = LPR; off < 32; off *= 2) {
      l[g] += __shfl_xor_sync(0xffffffffu, l[g], off);
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[g][k] += __shfl_xor_sync(0xffffffffu, acc[g][k], off);
    }
  }
  __shared__ float sm_m[kWarps][G], sm_l[kWarps][G], sm_acc[kWarps][G][D];
  if (lane < LPR)
    for (int g = 0; g < G; ++g)
      for (int k = 0; k < 8; ++k) sm_acc[warp][g][col + k] = acc[g][k];
  if (lane == 0)
    for (int g = 0; g < G; ++g) sm_m[warp][g] = m[g], sm_l[warp][g] = l[g];
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * D; idx += kThreads) {
    const int g = idx / D, c = idx % D;
    float M = -INFINITY;
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w][g]);
    float a = 0.0f, L = 0.0f;
    if (M != -INFINITY)
      for (int w = 0; w < kWarps; ++w) {
        const float e = sm_m[w][g] == -INFINITY ? 0.0f : __expf(sm_m[w][g] - M);
        a += e * sm_acc[w][g][c];
        L += e * sm_l[w][g];
      }
    const size_t part = (static_cast<size_t>(b) * n_q + h * G + g) * splits + split;
    part_acc[part * D + c] = a;
    if (c == 0) part_m[part] = M, part_l[part] = L;
  }
}

// One CTA per (query head, sequence), D threads: the log-sum-exp merge of the splits.
__global__ void merge_splits(const float* __restrict__ part_m, const float* __restrict__ part_l,
                             const float* __restrict__ part_acc, int splits, int D, float* __restrict__ out) {
  const size_t head = static_cast<size_t>(blockIdx.y) * gridDim.x + blockIdx.x;
  const float* pm = part_m + head * splits;
  const float* pl = part_l + head * splits;
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, pm[s]);
  for (int c = threadIdx.x; c < D; c += blockDim.x) {
    float a = 0.0f, L = 0.0f;
    if (M != -INFINITY)
      for (int s = 0; s < splits; ++s) {
        if (pm[s] == -INFINITY) continue;
        const float e = __expf(pm[s] - M);
        a += e * part_acc[(head * splits + s) * D + c];
        L += e * pl[s];
      }
    out[head * D + c] = L > 0.0f ? a / L : 0.0f;
  }
}

thread_local std::string g_error;

struct workspace {
  float* data = nullptr;
  size_t floats = 0;
  ~workspace() { cudaFree(data); }
};

template <int D, int G>
cudaError_t launch(const float* q, const __half* k, const __half* v, const int32_t* table, const int32_t* lens, int B,
                   int n_kv_heads, int max_blocks, int max_len, int splits_wanted, float* out, cudaStream_t stream) {
  static workspace ws;
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int blocks = (max_len + kBlock - 1) / kBlock;
  // Splits: as many as fill the GPU's resident CTA slots once (one wave). Each CTA's work
  // is long, so a partial second wave leaves most SMs idle at the end: measured at 128K,
  // batch 8, 576 CTAs (1.1 waves) gave 0.81 of the copy bandwidth and 1152 (2.2) 0.93;
  // batch 32, 768 CTAs 0.96 and 1280 0.87.
  int per_sm = 0;
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, decode_split<D, G>, kThreads, 0);
  const int slots = std::max(1, per_sm) * sms;
  int splits = splits_wanted > 0 ? splits_wanted : std::max(1, slots / (B * n_kv_heads));
  splits = std::max(1, std::min(splits, blocks));
  const int per_split = (blocks + splits - 1) / splits;
  splits = (blocks + per_split - 1) / per_split;
  const size_t heads = static_cast<size_t>(B) * n_kv_heads * G;
  const size_t need = heads * splits * (D + 2);
  if (need > ws.floats) {
    cudaFree(ws.data);
    ws.data = nullptr;
    ws.floats = 0;
    if (cudaError_t e = cudaMalloc(&ws.data, need * sizeof(float)); e != cudaSuccess) return e;
    ws.floats = need;
  }
  float* pm = ws.data;
  float* pl = pm + heads * splits;
  float* pa = pl + heads * splits;
  decode_split<D, G><<<dim3(splits, n_kv_heads, B), kThreads, 0, stream>>>(q, k, v, table, lens, n_kv_heads, max_blocks,
                                                                           per_split, pm, pl, pa);
  merge_splits<<<dim3(n_kv_heads * G, B), D, 0, stream>>>(pm, pl, pa, splits, D, out);
  return cudaGetLastError();
}

}  // namespace

extern "C" {

const char* attnbench_cuda_last_error() { return g_error.c_str(); }

// Dense decode of one step for B sequences. Returns 0 on success, else non-zero with a
// message in attnbench_cuda_last_error(). With iters > 0 it also times iters launches
// (after one warm-up) with CUDA events and writes milliseconds per step to *ms.
int attnbench_cuda_decode(const float* q, const void* k_pool, const void* v_pool, const int32_t* table,
                          const int32_t* lens, int B, int n_q_heads, int n_kv_heads, int head_dim, int max_blocks,
                          int max_len, int splits, float* out, int iters, float* ms) {
  if (B <= 0 || n_kv_heads <= 0 || n_q_heads % n_kv_heads != 0 || max_len <= 0) {
    g_error = "attnbench_cuda_decode: bad shape";
    return 1;
  }
  const int G = n_q_heads / n_kv_heads;
  auto run = [&]() -> cudaError_t {
    const auto* k = static_cast<const __half*>(k_pool);
    const auto* v = static_cast<const __half*>(v_pool);
#define ATTNBENCH_CASE(DD, GG) \
  if (head_dim == DD && G == GG) return launch<DD, GG>(q, k, v, table, lens, B, n_kv_heads, max_blocks, max_len, splits, out, 0);
    ATTNBENCH_CASE(128, 1) ATTNBENCH_CASE(128, 2) ATTNBENCH_CASE(128, 4) ATTNBENCH_CASE(128, 8)
    ATTNBENCH_CASE(64, 1) ATTNBENCH_CASE(64, 2) ATTNBENCH_CASE(64, 4) ATTNBENCH_CASE(64, 8)
#undef ATTNBENCH_CASE
    return cudaErrorInvalidValue;
  };
  cudaError_t e = run();
  if (e == cudaSuccess && iters > 0) {
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    cudaEventRecord(t0);
    for (int i = 0; i < iters && e == cudaSuccess; ++i) e = run();
    cudaEventRecord(t1);
    cudaEventSynchronize(t1);
    float total = 0;
    cudaEventElapsedTime(&total, t0, t1);
    if (ms) *ms = total / iters;
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
  }
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    g_error = std::string("attnbench_cuda_decode: ") +
              (e == cudaErrorInvalidValue ? "head_dim must be 64 or 128 and the GQA ratio 1, 2, 4 or 8"
                                          : cudaGetErrorString(e));
    return 2;
  }
  return 0;
}

}  // extern "C"
