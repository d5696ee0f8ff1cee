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
#include "decode-kernel.cuh"

#include <algorithm>
#include <cmath>

namespace attnbench::cuda {
namespace {

constexpr int kDecodeCtasPerSm = 2;

template <class T, int D, int G, int MODE, bool ART>
cudaError_t launch(const attnbench_cuda_decode_args& a) {
  auto kernel = decode_tc<T, D, G, MODE, ART>;
  constexpr int W = kWarps;
  const int max_chunks = MODE == ATTNBENCH_CUDA_ALL      ? (a.max_len + kBlock - 1) / kBlock
                         : MODE == ATTNBENCH_CUDA_BLOCKS ? a.max_list
                                                         : (a.max_list + kBlock - 1) / kBlock;
  const int traversals = a.batch * a.n_kv_heads;
  // Splits: enough warps for one wave of at most kDecodeCtasPerSm CTAs per SM. On the
  // H200, 2 CTAs (8 warps) per SM did as well as or better than a wave of all 3 resident
  // ones: 0.945-0.994 of copy against 0.935-0.988 at batch 8 and 32, 0.55-0.81 against
  // 0.49-0.77 at batch 1 (32K-128K; results/gpu/NOTES.md, v10).
  int splits = a.splits;
  if (splits <= 0) splits = std::max(1, resident_ctas(kernel, W * 32, 0, kDecodeCtasPerSm) * W / traversals);
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
