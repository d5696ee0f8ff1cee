// Helpers shared by the CUDA kernels: 16-byte row loads of a paged fp16/bf16 cache, their
// conversion to fp32, the thread-local error message and the event timing of a call.
#pragma once

#include <attnbench/cuda.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

namespace attnbench::cuda {

constexpr int kBlock = ATTNBENCH_CUDA_BLOCK;  // tokens per cache block
constexpr int kWarps = 4;                     // warps per CTA; each warp works alone
constexpr int kThreads = 32 * kWarps;

void set_error(std::string message);

// Eight fp16 or bf16 values (16 bytes) to fp32.
template <class T>
__device__ __forceinline__ void to_float8(const uint4& raw, float (&f)[8]) {
  if constexpr (std::is_same_v<T, __half>) {
    const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 x = __half22float2(h2[k]);
      f[2 * k] = x.x;
      f[2 * k + 1] = x.y;
    }
  } else {
    const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 x = __bfloat1622float2(h2[k]);
      f[2 * k] = x.x;
      f[2 * k + 1] = x.y;
    }
  }
}

// The 16 bytes at column col of pool row `row` (a row index over the whole pool: block *
// kBlock + slot), or zeros for row < 0. Read-only, not kept in L1 (nothing is read twice),
// with 256-byte L2 fetches: +0.2-1.4% over __ldg in the same runs (NOTES.md, v7).
template <int D, class T>
__device__ __forceinline__ uint4 load_row(const T* pool, int row, int col) {
  if (row < 0) return make_uint4(0, 0, 0, 0);
  const T* src = pool + static_cast<size_t>(row) * D + col;
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(src));
  return r;
}

// The shape checks the decode and selection calls share; empty when the shape is served.
inline std::string check_shape(int dtype, int batch, int n_query_heads, int n_kv_heads, int head_dim, int max_len,
                               int max_blocks) {
  if (dtype != ATTNBENCH_CUDA_FP16 && dtype != ATTNBENCH_CUDA_BF16) return "dtype must be fp16 (1) or bf16 (2), as attnbench_dtype numbers them";
  if (batch <= 0 || n_kv_heads <= 0 || n_query_heads <= 0) return "batch and head counts must be positive";
  if (n_query_heads % n_kv_heads != 0) return "n_query_heads must be a multiple of n_kv_heads";
  const int G = n_query_heads / n_kv_heads;
  if ((head_dim != 64 && head_dim != 128) || (G != 1 && G != 2 && G != 4 && G != 8))
    return "head_dim must be 64 or 128 and the GQA ratio 1, 2, 4 or 8";
  if (max_len <= 0 || static_cast<long long>(max_blocks) * kBlock < max_len)
    return "max_len must be positive and fit max_blocks";
  return {};
}

// The frame of a C entry point: `why` checks *args (an empty string when they are
// good), `run` does the work; failures leave a message that starts with `name`.
template <class A, class Why, class Run>
int c_entry(const char* name, const A* args, Why&& why, Run&& run) {
  std::string problem = args ? why(*args) : std::string("args is null");
  if (!problem.empty()) {
    set_error(std::string(name) + ": " + problem);
    return ATTNBENCH_CUDA_BAD_ARGUMENT;
  }
  if (const cudaError_t e = run(); e != cudaSuccess) {
    set_error(std::string(name) + ": " + cudaGetErrorString(e));
    return ATTNBENCH_CUDA_ERROR;
  }
  return ATTNBENCH_CUDA_OK;
}

// Calls f(integral_constant D, integral_constant G) for the served head dims and GQA
// ratios (check_shape has accepted the shape).
template <class F>
cudaError_t for_shape(int head_dim, int G, F&& f) {
#define ATTNBENCH_CASE(DD, GG) \
  if (head_dim == DD && G == GG) return f(std::integral_constant<int, DD>{}, std::integral_constant<int, GG>{});
  ATTNBENCH_CASE(128, 1) ATTNBENCH_CASE(128, 2) ATTNBENCH_CASE(128, 4) ATTNBENCH_CASE(128, 8)
  ATTNBENCH_CASE(64, 1) ATTNBENCH_CASE(64, 2) ATTNBENCH_CASE(64, 4) ATTNBENCH_CASE(64, 8)
#undef ATTNBENCH_CASE
  return cudaErrorInvalidValue;
}

// Runs `launch` once (the warm-up, whose result the caller keeps), then, with iters > 0,
// iters more times between two events, and writes milliseconds per call to *ms.
template <class F>
cudaError_t run_timed(F&& launch, int iters, float* ms) {
  cudaError_t e = launch();
  if (e == cudaSuccess && iters > 0) {
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    cudaEventRecord(t0);
    for (int i = 0; i < iters && e == cudaSuccess; ++i) e = launch();
    cudaEventRecord(t1);
    cudaEventSynchronize(t1);
    float total = 0;
    cudaEventElapsedTime(&total, t0, t1);
    if (ms) *ms = total / iters;
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
  }
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  return e;
}

// A device buffer that grows and is kept between calls of one kernel family.
struct workspace {
  void* data = nullptr;
  size_t bytes = 0;
  ~workspace() { cudaFree(data); }
  cudaError_t reserve(size_t need) {
    if (need <= bytes) return cudaSuccess;
    cudaFree(data);
    data = nullptr;
    bytes = 0;
    const cudaError_t e = cudaMalloc(&data, need);
    if (e == cudaSuccess) bytes = need;
    return e;
  }
};

// Resident CTAs of kernel (with `threads` per CTA) per SM, at most max_per_sm, times the
// SMs: what one wave holds.
template <class K>
int resident_ctas(K kernel, int threads = kThreads, size_t dynamic_smem = 0, int max_per_sm = 1 << 30) {
  int device = 0, sms = 0, per_sm = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, dynamic_smem);
  return std::min(per_sm > 0 ? per_sm : 1, max_per_sm) * (sms > 0 ? sms : 1);
}

}  // namespace attnbench::cuda
