// Decode attention over a paged fp16/bf16 KV cache on an NVIDIA GPU (issue 9): a batch of
// sequences; GQA (the query heads of a KV head share every 16-byte K/V load); dense, or
// over a per-head list of blocks or tokens; split-K across the sequence with a log-sum-exp
// merge; ART's stability test after each chunk, per split and GQA group. The C API and
// the layout are in include/attnbench/cuda.h; the versions tried and their figures in
// results/gpu/NOTES.md.
//
// Work unit: one warp runs one split of one (sequence, KV head) traversal alone, from its
// first chunk to its last (or until ART stops it), and writes its unnormalised partial
// (max, sum, accumulator per query head); a CTA is just four such warps. No CTA-wide
// synchronisation, so a warp's ART test needs only shuffles. Each lane holds 16 bytes
// (8 values) of a row: LPR = D / 8 lanes per row, RPL = 32 / LPR rows per load, ITER
// loads per sub-chunk of SUB = ITER * RPL rows. The next sub-chunk's K loads are issued
// right after the current one's V loads, before its softmax and V arithmetic.
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

#ifndef ATTNBENCH_CUDA_ITER_G4
#define ATTNBENCH_CUDA_ITER_G4 8  // loads per lane per sub-chunk for GQA 4 (a tuning knob; NOTES.md)
#endif

template <int D, int G>
struct shape {
  static constexpr int LPR = D / 8;
  static constexpr int RPL = 32 / LPR;
  static constexpr int ITER = G >= 8 ? 4 : G == 4 ? ATTNBENCH_CUDA_ITER_G4 : 8;
  static constexpr int SUB = ITER * RPL;
  static constexpr int SUBS = kBlock / SUB;  // sub-chunks per chunk
};

// ART's per-warp state in shared memory: each row group's partial accumulators and sums
// (published at each test), and per head the previous normalised output, its norm, the
// running max and sum it came from.
template <int D, int G>
struct art_state {
  static constexpr int RG = 32 / (D / 8);  // row groups of a warp
  float part[RG][G][D];
  float part_l[RG][G];
  float prev[G][D];
  float prev_norm[G], prev_max[G], prev_sum[G];
};

// ART's stability test after a chunk, for one warp's split (see cuda.h): the running
// output of each head (accumulators summed over the warp's row groups) against the one
// after the previous chunk. Each row group tests its own G / RG heads, so the work is not
// repeated across row groups. fp32 and no division: |norm - prev_norm| < tau_mag
// prev_norm for the norm test, L - carried < tau_mag L for the mass test, and
// 1 - cosine < tau_dir. Returns true (on every lane) when the split stops.
template <int D, int G>
__device__ __forceinline__ bool art_step(const decode_params& p, art_state<D, G>& st, const float (&acc)[G][8],
                                         const float (&l)[G], const float (&m)[G], int done, int& passes, int col,
                                         int group_row) {
  constexpr int LPR = D / 8, RG = 32 / LPR, HPR = (G + RG - 1) / RG;  // heads per row group
  __syncwarp();
#pragma unroll
  for (int g = 0; g < G; ++g) {
    *reinterpret_cast<float4*>(&st.part[group_row][g][col]) = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
    *reinterpret_cast<float4*>(&st.part[group_row][g][col + 4]) = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
    if (col == 0) st.part_l[group_row][g] = l[g];
  }
  __syncwarp();
  bool pass = done >= 2;
#pragma unroll
  for (int i = 0; i < HPR; ++i) {
    const int g_want = group_row * HPR + i;
    const bool active = g_want < G;  // uniform within a row group
    const int g = active ? g_want : G - 1;
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, L = 0.0f;
#pragma unroll
    for (int r = 0; r < RG; ++r) {
      const float4 x0 = *reinterpret_cast<const float4*>(&st.part[r][g][col]);
      const float4 x1 = *reinterpret_cast<const float4*>(&st.part[r][g][col + 4]);
      a[0] += x0.x, a[1] += x0.y, a[2] += x0.z, a[3] += x0.w;
      a[4] += x1.x, a[5] += x1.y, a[6] += x1.z, a[7] += x1.w;
      L += st.part_l[r][g];
    }
    const float4 p0 = *reinterpret_cast<const float4*>(&st.prev[g][col]);
    const float4 p1 = *reinterpret_cast<const float4*>(&st.prev[g][col + 4]);
    const float pr[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
    float nn = 0.0f, dp = 0.0f, pp = 0.0f;
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      nn = fmaf(a[k], a[k], nn);
      dp = fmaf(a[k], pr[k], dp);
      pp = fmaf(pr[k], pr[k], pp);
    }
#pragma unroll
    for (int off = 1; off < LPR; off *= 2) {  // within the row group
      nn += __shfl_xor_sync(0xffffffffu, nn, off);
      dp += __shfl_xor_sync(0xffffffffu, dp, off);
      pp += __shfl_xor_sync(0xffffffffu, pp, off);
    }
    float mg = m[0];
#pragma unroll
    for (int j = 1; j < G; ++j) mg = j == g ? m[j] : mg;
    const float inv = L > 0.0f ? __frcp_rn(L) : 0.0f;
    const float norm = sqrtf(nn) * inv;
    const float pn = st.prev_norm[g];
    if (pass && active) {
      bool mag_ok;
      if (p.art_mass) {
        const float carried = st.prev_sum[g] * __expf(st.prev_max[g] - mg);
        mag_ok = L > 0.0f ? L - carried < p.tau_mag * L : 1.0f < p.tau_mag;
      } else {
        mag_ok = pn > 0.0f ? fabsf(norm - pn) < p.tau_mag * pn : (norm > 0.0f ? 1.0f : 0.0f) < p.tau_mag;
      }
      const float cosine = nn > 0.0f && pp > 0.0f ? dp * rsqrtf(nn * pp) : 1.0f;
      pass = mag_ok && 1.0f - cosine < p.tau_dir;
    }
    __syncwarp();
    if (active) {
      *reinterpret_cast<float4*>(&st.prev[g][col]) = make_float4(a[0] * inv, a[1] * inv, a[2] * inv, a[3] * inv);
      *reinterpret_cast<float4*>(&st.prev[g][col + 4]) = make_float4(a[4] * inv, a[5] * inv, a[6] * inv, a[7] * inv);
      if (col == 0) st.prev_norm[g] = norm, st.prev_max[g] = mg, st.prev_sum[g] = L;
    }
  }
  passes = __all_sync(0xffffffffu, pass) ? passes + 1 : 0;
  return done >= p.min_blocks && passes >= p.patience;
}

// Warps per CTA: 4, or 2 where ART's shared state of 4 warps would pass 48 KB (D 128, GQA 8).
__host__ __device__ constexpr int cta_warps(int D, int G, bool art) { return art && D * G > 512 ? 2 : kWarps; }

template <class T, int D, int G, int MODE, bool ART>
__global__ void __launch_bounds__(kThreads) decode_split(const T* __restrict__ k_pool, const T* __restrict__ v_pool,
                                                         decode_params p) {
  using S = shape<D, G>;
  constexpr int LPR = S::LPR, RPL = S::RPL, ITER = S::ITER, SUB = S::SUB, SUBS = S::SUBS;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  constexpr int W = cta_warps(D, G, ART);
  const int unit = blockIdx.x * W + warp;
  const int split = unit % p.splits;
  const int bh = unit / p.splits;  // b * n_kv_heads + h
  if (bh >= p.traversals) return;  // the last CTA's spare warps
  const int b = bh / p.n_kv_heads, h = bh % p.n_kv_heads;
  const int group_row = lane / LPR, col = (lane % LPR) * 8;
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

  float qv[G][8], acc[G][8], m[G], l[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float* qg = p.q + (static_cast<size_t>(b) * n_q + h * G + g) * D + col;
    const float4 a = *reinterpret_cast<const float4*>(qg), c = *reinterpret_cast<const float4*>(qg + 4);
    qv[g][0] = a.x, qv[g][1] = a.y, qv[g][2] = a.z, qv[g][3] = a.w;
    qv[g][4] = c.x, qv[g][5] = c.y, qv[g][6] = c.z, qv[g][7] = c.w;
#pragma unroll
    for (int k = 0; k < 8; ++k) acc[g][k] = 0.0f;
    m[g] = -INFINITY;
    l[g] = 0.0f;
  }

  // ART: its state in shared memory, zeroed (the CPU terminator starts from zeros too).
  __shared__ art_state<ART ? D : 8, ART ? G : 1> sm_art[ART ? W : 1];
  int passes = 0, done = 0;
  bool stopped = false;
  if constexpr (ART) {
    float* z = reinterpret_cast<float*>(&sm_art[warp]);
    for (int i = lane; i < static_cast<int>(sizeof(art_state<D, G>) / sizeof(float)); i += 32) z[i] = 0.0f;
  }

  const int sc_end = last * SUBS;
  int sc = first * SUBS;
  int rid[ITER];
  uint4 kraw[ITER];
  if (sc < sc_end) {
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      rid[it] = chunk_row<MODE>(blocks, list, len, count, sc / SUBS, (sc % SUBS) * SUB + it * RPL + group_row);
      kraw[it] = load_row<D>(k_pool, rid[it], col);
    }
  }
  for (; sc < sc_end; ++sc) {
    // Logits of this lane's rows for every head of the group.
    float s[ITER][G];
    row_logits<T, D, G, ITER>(qv, kraw, s);
#pragma unroll
    for (int it = 0; it < ITER; ++it)
#pragma unroll
      for (int g = 0; g < G; ++g) s[it][g] = rid[it] >= 0 ? s[it][g] : -INFINITY;
    uint4 vraw[ITER];
#pragma unroll
    for (int it = 0; it < ITER; ++it) vraw[it] = load_row<D>(v_pool, rid[it], col);
    // The next sub-chunk's K, in flight during this one's softmax and V arithmetic.
    if (sc + 1 < sc_end) {
      const int nc = (sc + 1) / SUBS, nr = ((sc + 1) % SUBS) * SUB + group_row;
#pragma unroll
      for (int it = 0; it < ITER; ++it) {
        rid[it] = chunk_row<MODE>(blocks, list, len, count, nc, nr + it * RPL);
        kraw[it] = load_row<D>(k_pool, rid[it], col);
      }
    }
    // ART's test of the chunk that ended with the previous sub-chunk: here, with this
    // sub-chunk's V and the next one's K in flight, and before this sub-chunk changes the
    // running state (a stop discards it). None after the last chunk: nothing is left.
    if constexpr (ART) {
      if (sc % SUBS == 0 && sc > first * SUBS) {
        ++done;
        if (art_step<D, G>(p, sm_art[warp], acc, l, m, done, passes, col, group_row)) {
          stopped = true;
          break;
        }
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float cm = -INFINITY;
#pragma unroll
      for (int it = 0; it < ITER; ++it) cm = fmaxf(cm, s[it][g]);
#pragma unroll
      for (int off = LPR; off < 32; off *= 2) cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, off));
      const float m_new = fmaxf(m[g], cm);
      if (m_new == -INFINITY) {  // no valid row yet
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
        const float e = __expf(s[it][g] - m_new);  // 0 for -inf
        s[it][g] = e;
        l[g] += e;  // this row group's share; summed over row groups when needed
      }
    }
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      float vf[8];
      to_float8<T>(vraw[it], vf);
#pragma unroll
      for (int g = 0; g < G; ++g)
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[g][k] = fmaf(s[it][g], vf[k], acc[g][k]);
    }

  }

  // Row groups share m: sum their l and accumulators, then write the partial.
#pragma unroll
  for (int g = 0; g < G; ++g) {
#pragma unroll
    for (int off = LPR; off < 32; off *= 2) {
      l[g] += __shfl_xor_sync(0xffffffffu, l[g], off);
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[g][k] += __shfl_xor_sync(0xffffffffu, acc[g][k], off);
    }
    const size_t part = (static_cast<size_t>(b) * n_q + h * G + g) * p.splits + split;
    if (group_row == 0) {
      float4* dst = reinterpret_cast<float4*>(p.part_acc + part * D + col);
      dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
      dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
    }
    if (lane == 0) p.part_m[part] = m[g], p.part_l[part] = l[g];
  }
  if (lane == 0 && p.planned) {
    const int planned = max(0, last - first);
    atomicAdd(p.planned + bh, static_cast<uint32_t>(planned));
    atomicAdd(p.visited + bh, static_cast<uint32_t>(ART && stopped ? done : planned));
    if (ART && stopped) atomicAdd(p.stops + bh, 1u);
  }
}

// One CTA per (query head, sequence): the log-sum-exp merge of the splits.
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

workspace g_decode_ws;

template <class T, int D, int G, int MODE, bool ART>
cudaError_t launch(const attnbench_cuda_decode_args& a) {
  auto kernel = decode_split<T, D, G, MODE, ART>;
  const int max_chunks = MODE == ATTNBENCH_CUDA_ALL      ? (a.max_len + kBlock - 1) / kBlock
                         : MODE == ATTNBENCH_CUDA_BLOCKS ? a.max_list
                                                         : (a.max_list + kBlock - 1) / kBlock;
  const int traversals = a.batch * a.n_kv_heads;
  // Splits: enough warps to fill every resident CTA slot once (one wave; see NOTES.md).
  int splits = a.splits;
  constexpr int W = cta_warps(D, G, ART);
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
  merge_splits<<<dim3(a.n_kv_heads * G, a.batch), D>>>(p.part_m, p.part_l, p.part_acc, splits, D, a.out);
  return cudaGetLastError();
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
  if (!args) {
    set_error("attnbench_cuda_decode: args is null");
    return ATTNBENCH_CUDA_BAD_ARGUMENT;
  }
  if (std::string why = check(*args); !why.empty()) {
    set_error("attnbench_cuda_decode: " + why);
    return ATTNBENCH_CUDA_BAD_ARGUMENT;
  }
  const cudaError_t e = run_timed(
      [&] { return args->dtype == ATTNBENCH_CUDA_FP16 ? dispatch<__half>(*args) : dispatch<__nv_bfloat16>(*args); }, iters,
      ms);
  if (e != cudaSuccess) {
    set_error(std::string("attnbench_cuda_decode: ") + cudaGetErrorString(e));
    return ATTNBENCH_CUDA_ERROR;
  }
  return ATTNBENCH_CUDA_OK;
}
