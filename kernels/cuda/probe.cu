// Read probes (issue 9): the bytes a dense decode step must read (K and V of every chunk
// of every traversal, over the same block table and split of the work), read without
// arithmetic, in three ways. They measure what each way of reading the paged cache can
// reach, so that the decode's own read path is chosen by a figure rather than a guess:
//  - ATTNBENCH_PROBE_WARP_LOADS: each warp reads its split with 16-byte ld.global.nc
//    loads, one 16-row sub-chunk of K and V at a time with the next one's K in flight,
//    the way decode v8 does;
//  - ATTNBENCH_PROBE_WARP_BULK: each warp copies its sub-chunks (4 KB of K and 4 KB of V
//    for head dim 128) into a ring of `stages` shared-memory buffers with the bulk copy
//    engine (cp.async.bulk, completing on an mbarrier), then reads them from there;
//  - ATTNBENCH_PROBE_CTA_BULK: a CTA of four warps per split copies whole chunks (16 KB
//    of K and 16 KB of V) into `stages` buffers, and its warps read them.
#include "common.cuh"

#include <algorithm>

namespace attnbench::cuda {
namespace {

// The bulk copy engine and mbarrier transaction counts need compute capability 9.0: for
// older targets the two bulk kernels compile to a trap, and the call refuses them.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
#define ATTNBENCH_BULK 1
#endif

#ifdef ATTNBENCH_BULK
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}

__device__ __forceinline__ void mbar_fence_init() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// Arrives once and expects `bytes` of bulk copies to complete on the barrier.
__device__ __forceinline__ void mbar_expect(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  uint32_t ready = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
        : "=r"(ready)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!ready);
}

// bytes (a multiple of 16) from global src to shared dst, completing on bar.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                   smem_addr(dst)),
               "l"(src), "r"(bytes), "r"(smem_addr(bar))
               : "memory");
}

__device__ __forceinline__ void fence_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}
#endif

__device__ __forceinline__ uint4 ld_nc(const uint4* src) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(src));
  return r;
}

__device__ __forceinline__ void mix(uint32_t& acc, const uint4& x) { acc ^= x.x ^ x.y ^ x.z ^ x.w; }

struct probe_params {
  const uint4* k;
  const uint4* v;
  const int32_t* table;
  int traversals, max_blocks, n_chunks, splits, per_split, stages;
  uint32_t* sink;
};

constexpr int kRowVecs = 16;                   // uint4 per row (head dim 128, 16-bit)
constexpr int kSubVecs = 16 * kRowVecs;        // one 16-row sub-chunk: 256 uint4 = 4 KB
constexpr int kChunkVecs = kBlock * kRowVecs;  // one chunk: 1024 uint4 = 16 KB

// The split's chunk range of unit u, or false when u is past the work.
__device__ __forceinline__ bool unit_range(const probe_params& p, int u, const int32_t*& blocks, int& c0, int& c1) {
  const int bh = u / p.splits, split = u % p.splits;
  if (bh >= p.traversals) return false;
  blocks = p.table + static_cast<size_t>(bh) * p.max_blocks;
  c0 = split * p.per_split;
  c1 = min(p.n_chunks, c0 + p.per_split);
  return true;
}

__global__ void __launch_bounds__(kThreads) probe_warp_loads(probe_params p) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int32_t* blocks;
  int c0, c1;
  if (!unit_range(p, blockIdx.x * kWarps + warp, blocks, c0, c1)) return;
  uint32_t acc = 0;
  const int s_end = c1 * 4;
  int s = c0 * 4;
  uint4 kr[8];
  auto load_k = [&](int x) {
    const uint4* src = p.k + static_cast<size_t>(blocks[x / 4]) * kChunkVecs + (x % 4) * kSubVecs + lane;
#pragma unroll
    for (int i = 0; i < 8; ++i) kr[i] = ld_nc(src + 32 * i);
  };
  if (s < s_end) load_k(s);
  for (; s < s_end; ++s) {
    uint4 vr[8];
    const uint4* vsrc = p.v + static_cast<size_t>(blocks[s / 4]) * kChunkVecs + (s % 4) * kSubVecs + lane;
#pragma unroll
    for (int i = 0; i < 8; ++i) vr[i] = ld_nc(vsrc + 32 * i);
#pragma unroll
    for (int i = 0; i < 8; ++i) mix(acc, kr[i]);
    if (s + 1 < s_end) load_k(s + 1);
#pragma unroll
    for (int i = 0; i < 8; ++i) mix(acc, vr[i]);
  }
  if (acc == 0x9e3779b9u) p.sink[0] = acc;  // keeps the loads; (almost) never written
}

constexpr int kMaxStages = 8;

// A ring of `stages` buffers, each one piece of K and then the same piece of V, filled by
// the bulk copy engine and read by the group that owns the ring: a warp (pieces of 16
// rows, four per chunk: 8 KB buffers) or the whole CTA (pieces of one chunk: 32 KB).
template <bool PER_CTA>
__global__ void __launch_bounds__(kThreads) probe_bulk(probe_params p) {
#ifdef ATTNBENCH_BULK
  constexpr int kPieceVecs = PER_CTA ? kChunkVecs : kSubVecs;
  constexpr int kPieces = kChunkVecs / kPieceVecs;  // per chunk
  constexpr int kGroup = PER_CTA ? kThreads : 32;   // threads that share a ring
  extern __shared__ __align__(128) uint4 ring[];
  __shared__ uint64_t bars[PER_CTA ? 1 : kWarps][kMaxStages];
  const int group = PER_CTA ? 0 : threadIdx.x / 32, rank = threadIdx.x % kGroup;
  uint4* const mine = ring + static_cast<size_t>(group) * p.stages * 2 * kPieceVecs;
  uint64_t* const bar = bars[group];
  if (rank == 0)
    for (int i = 0; i < p.stages; ++i) mbar_init(&bar[i], 1);
  mbar_fence_init();
  __syncthreads();
  const int32_t* blocks;
  int c0, c1;
  if (!unit_range(p, PER_CTA ? blockIdx.x : blockIdx.x * kWarps + group, blocks, c0, c1)) return;
  const int x0 = c0 * kPieces, x_end = c1 * kPieces;
  auto issue = [&](int x) {
    const int st = (x - x0) % p.stages;
    const size_t off = static_cast<size_t>(blocks[x / kPieces]) * kChunkVecs + (x % kPieces) * kPieceVecs;
    mbar_expect(&bar[st], 2 * kPieceVecs * 16);
    bulk_copy(mine + st * 2 * kPieceVecs, p.k + off, kPieceVecs * 16, &bar[st]);
    bulk_copy(mine + st * 2 * kPieceVecs + kPieceVecs, p.v + off, kPieceVecs * 16, &bar[st]);
  };
  if (rank == 0)
    for (int x = x0; x < min(x_end, x0 + p.stages); ++x) issue(x);
  uint32_t acc = 0;
  for (int x = x0; x < x_end; ++x) {
    const int st = (x - x0) % p.stages;
    mbar_wait(&bar[st], ((x - x0) / p.stages) & 1);
    const uint4* buf = mine + st * 2 * kPieceVecs;
#pragma unroll
    for (int i = 0; i < 2 * kPieceVecs / kGroup; ++i) mix(acc, buf[kGroup * i + rank]);
    if constexpr (PER_CTA)
      __syncthreads();
    else
      __syncwarp();
    if (rank == 0 && x + p.stages < x_end) {
      fence_async_shared();
      issue(x + p.stages);
    }
  }
  if (acc == 0x9e3779b9u) p.sink[0] = acc;
#else
  __trap();
#endif
}

workspace g_probe_sink;

}  // namespace
}  // namespace attnbench::cuda

extern "C" int attnbench_cuda_read_probe(const attnbench_cuda_decode_args* args, int method, int units_per_sm,
                                         int stages, int iters, float* ms) {
  using namespace attnbench::cuda;
  auto why = [&](const attnbench_cuda_decode_args& a) -> std::string {
    if (std::string w = check_shape(a.dtype, a.batch, a.n_query_heads, a.n_kv_heads, a.head_dim, a.max_len,
                                    a.max_blocks);
        !w.empty())
      return w;
    if (a.head_dim != 128) return "the probe reads head dim 128 only";
    if (!a.k_pool || !a.v_pool || !a.block_table) return "a required pointer is null";
    if (method < ATTNBENCH_PROBE_WARP_LOADS || method > ATTNBENCH_PROBE_CTA_BULK) return "unknown method";
    if (units_per_sm < 1) return "units_per_sm must be positive";
    if (method != ATTNBENCH_PROBE_WARP_LOADS && (stages < 1 || stages > kMaxStages)) return "stages must be 1-8";
    return {};
  };
  return c_entry("attnbench_cuda_read_probe", args, why, [&]() -> cudaError_t {
    const auto& a = *args;
    int device = 0, sms = 0, major = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    if (method != ATTNBENCH_PROBE_WARP_LOADS && major < 9) return cudaErrorNotSupported;
    probe_params p{};
    p.k = static_cast<const uint4*>(a.k_pool);
    p.v = static_cast<const uint4*>(a.v_pool);
    p.table = a.block_table;
    p.traversals = a.batch * a.n_kv_heads;
    p.max_blocks = a.max_blocks;
    p.n_chunks = (a.max_len + kBlock - 1) / kBlock;
    p.stages = stages;
    if (cudaError_t e = g_probe_sink.reserve(16); e != cudaSuccess) return e;
    p.sink = static_cast<uint32_t*>(g_probe_sink.data);
    const bool per_cta = method == ATTNBENCH_PROBE_CTA_BULK;
    // units_per_sm: warps per SM (CTAs per SM for CTA_BULK); the splits fill them once.
    const int units = units_per_sm * sms;
    p.splits = std::max(1, std::min(p.n_chunks, units / p.traversals));
    p.per_split = (p.n_chunks + p.splits - 1) / p.splits;
    p.splits = (p.n_chunks + p.per_split - 1) / p.per_split;
    const int total = p.traversals * p.splits;
    size_t smem = 0;
    if (method == ATTNBENCH_PROBE_WARP_BULK) smem = static_cast<size_t>(kWarps) * stages * 2 * kSubVecs * 16;
    if (per_cta) smem = static_cast<size_t>(stages) * 2 * kChunkVecs * 16;
    const int grid = per_cta ? total : (total + kWarps - 1) / kWarps;
    auto launch = [&]() -> cudaError_t {
      if (method == ATTNBENCH_PROBE_WARP_LOADS) {
        probe_warp_loads<<<grid, kThreads>>>(p);
      } else if (method == ATTNBENCH_PROBE_WARP_BULK) {
        cudaFuncSetAttribute(probe_bulk<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
        probe_bulk<false><<<grid, kThreads, smem>>>(p);
      } else {
        cudaFuncSetAttribute(probe_bulk<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
        probe_bulk<true><<<grid, kThreads, smem>>>(p);
      }
      return cudaGetLastError();
    };
    return run_timed(launch, iters, ms);
  });
}
