/* attnbench's CUDA kernels (issue 9): decode attention over a paged fp16/bf16 KV cache,
 * dense or over per-head block or token lists, with the ART stability test fused in, and
 * TokenSelect's scoring and top-k. A C API over device pointers, built only with
 * -DATTNBENCH_CUDA=ON (kernels/cuda/CMakeLists.txt); the decode uses mma.sync and
 * movmatrix, so it needs compute capability 8.0 or later (the build targets 9.0).
 *
 * Cache layout (as the CPU cache's pages): K and V in two pools of blocks of
 * ATTNBENCH_CUDA_BLOCK tokens, each block row-major token x head_dim; a block table
 * [batch][n_kv_heads][max_blocks] names each sequence's blocks, in order, by their index
 * in the pools. Queries are fp32 [batch][n_query_heads][head_dim] and already multiplied
 * by the softmax scale. Query head q belongs to KV head q / (n_query_heads / n_kv_heads).
 *
 * Every function returns 0 on success; otherwise a non-zero code below and a message in
 * attnbench_cuda_last_error() (thread-local). With iters > 0 a function also times
 * iters further calls (after the first, which is the warm-up) with CUDA events and
 * writes milliseconds per call to *ms. All calls synchronise before they return. */
#ifndef ATTNBENCH_CUDA_H
#define ATTNBENCH_CUDA_H

#include <attnbench/plugin.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTNBENCH_CUDA_BLOCK 64

enum {
  ATTNBENCH_CUDA_OK = 0,
  ATTNBENCH_CUDA_BAD_ARGUMENT = 1, /* a shape, dtype or parameter out of range */
  ATTNBENCH_CUDA_ERROR = 2,        /* the CUDA runtime failed (no device, launch, memory) */
};

/* The dtypes the CUDA kernels take: the plugin ABI's numbers (attnbench_dtype). */
enum { ATTNBENCH_CUDA_FP16 = ATTNBENCH_DTYPE_FP16, ATTNBENCH_CUDA_BF16 = ATTNBENCH_DTYPE_BF16 };

/* What each (sequence, KV head) attends to. */
enum {
  ATTNBENCH_CUDA_ALL = 0,    /* every token of the sequence: lens[b] */
  ATTNBENCH_CUDA_BLOCKS = 1, /* list: logical block numbers of the sequence (block i holds tokens
                                64 i .. 64 i + 63, cut at lens[b]) */
  ATTNBENCH_CUDA_TOKENS = 2, /* list: token positions of the sequence, each < lens[b] */
};

typedef struct attnbench_cuda_decode_args {
  int dtype; /* ATTNBENCH_CUDA_FP16 or _BF16 */
  int batch, n_query_heads, n_kv_heads, head_dim; /* head_dim 64 or 128; GQA ratio 1, 2, 4 or 8 */
  const float* queries;
  const void* k_pool;
  const void* v_pool;
  const int32_t* block_table; /* [batch][n_kv_heads][max_blocks] */
  int max_blocks;
  const int32_t* lens; /* [batch] tokens of each sequence */
  int max_len;         /* the largest of lens (host value) */
  /* Sparse decode: list_kind BLOCKS or TOKENS; list [batch][n_kv_heads][max_list] and
   * list_counts [batch][n_kv_heads] entries used of each list. */
  int list_kind;
  const int32_t* list;
  const int32_t* list_counts;
  int max_list;
  /* Split-K: each (sequence, KV head) traversal is cut into `splits` ranges of its chunks
   * (a chunk: one block, or 64 entries of a token list), each run by one warp, merged by
   * log-sum-exp. 0 chooses. */
  int splits;
  /* ART inside the kernel (plugins/art, heuristic mode): after each chunk each split
   * compares the running normalised output of every query head of its GQA group with the
   * one after its previous chunk (magnitude: relative change of the norm, or with
   * art_mass the chunk's share of the softmax sum, under tau_mag; direction: 1 - cosine
   * under tau_dir) and stops after `patience` consecutive chunks in which every head
   * passed, never before min_blocks chunks. The first two chunks never pass. */
  int art;
  double tau_mag, tau_dir;
  int patience, min_blocks, art_mass;
  /* Optional device counters [batch][n_kv_heads], zeroed by the call: chunks planned and
   * visited, and splits that stopped. */
  uint32_t* chunks_planned;
  uint32_t* chunks_visited;
  uint32_t* stops;
  float* out; /* [batch][n_query_heads][head_dim], normalised; zeros where nothing was attended */
} attnbench_cuda_decode_args;

int attnbench_cuda_decode(const attnbench_cuda_decode_args* args, int iters, float* ms);

/* TokenSelect's selection for one decode step of one layer: per query head, the logits of
 * the candidate tokens [n_init, lens[b] - n_local) (queries already scaled), a softmax
 * per head, summed over all query heads (the soft vote), and the top_k candidates by
 * that sum (ties to the lower position; NaN below every number). */
typedef struct attnbench_cuda_select_args {
  int dtype;
  int batch, n_query_heads, n_kv_heads, head_dim;
  const float* queries;
  const void* k_pool;
  const int32_t* block_table;
  int max_blocks;
  const int32_t* lens;
  int max_len;
  int n_init, n_local, top_k;
  float* scores;      /* optional [batch][max_len - n_init - n_local]: candidate j's summed vote (token n_init + j) */
  int32_t* selected;  /* [batch][top_k]: token positions, ascending */
  int32_t* n_selected; /* [batch]: min(top_k, candidates) */
} attnbench_cuda_select_args;

/* ms_parts, when not null, receives milliseconds per call of its three stages when
 * timed: scoring, the soft vote, the top-k. */
int attnbench_cuda_select(const attnbench_cuda_select_args* args, int iters, float* ms, float* ms_parts);

/* Read probe: reads the bytes the dense decode of *args must read (K and V of every
 * chunk of every traversal; head_dim 128 only), split over units_per_sm warps per SM
 * (CTAs per SM for CTA_BULK) without arithmetic, to measure what each way of reading
 * the paged cache reaches. `stages`: shared-memory buffers per warp (WARP_BULK) or per
 * CTA (CTA_BULK), 1-8. The bulk methods need compute capability 9.0 (ATTNBENCH_CUDA_ERROR
 * on older devices). Timed as the other calls. */
enum {
  ATTNBENCH_PROBE_WARP_LOADS = 0, /* 16-byte loads per lane, as the decode */
  ATTNBENCH_PROBE_WARP_BULK = 1,  /* bulk copies of 16-row sub-chunks into a ring per warp */
  ATTNBENCH_PROBE_CTA_BULK = 2,   /* bulk copies of whole chunks into a ring per CTA */
};
int attnbench_cuda_read_probe(const attnbench_cuda_decode_args* args, int method, int units_per_sm, int stages,
                              int iters, float* ms);

/* Number of CUDA devices, 0 when there is none or no driver (never an error). */
int attnbench_cuda_device_count(void);

const char* attnbench_cuda_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* ATTNBENCH_CUDA_H */
