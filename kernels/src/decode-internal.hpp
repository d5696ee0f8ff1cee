// Shared by the scalar and SIMD decode paths: walking a plan in chunks, and the
// traversal of a range of chunks that updates a running (max, sum, accumulator) state.
#pragma once

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace attnbench::kernels::detail {

// One step of a traversal: up to block_size tokens, either a contiguous run inside one
// cache block (ALL and BLOCKS plans) or a slice of a token list.
struct chunk {
  std::uint32_t block_id;       // ATTNBENCH_NO_BLOCK for token-list chunks
  std::uint64_t first;          // first cache token (contiguous chunks)
  const std::uint32_t* tokens;  // token indices (token-list chunks), else nullptr
  std::uint32_t count;
};

// Number of chunks of a plan entry.
inline std::uint64_t chunk_count(const attnbench_plan_entry& e, const attnbench_kv_head_view& kv,
                                 std::uint32_t block_size) {
  switch (e.kind) {
    case ATTNBENCH_PLAN_ALL: return kv.n_blocks;
    case ATTNBENCH_PLAN_BLOCKS: return e.count;
    case ATTNBENCH_PLAN_TOKENS: return (static_cast<std::uint64_t>(e.count) + block_size - 1) / block_size;
    default: return 0;
  }
}

// decode_partial without its checks, for an entry that check_plan or check_plan_entry
// has passed (decode_layer checks a whole plan once, then runs its parts through this).
void decode_valid_partial(const decode_args& a, std::uint64_t first_chunk, std::uint64_t end_chunk,
                          partial_state part, decode_counters* counters);

// Chunk i of a (valid) entry.
inline chunk chunk_at(const attnbench_plan_entry& e, const attnbench_kv_head_view& kv, std::uint32_t block_size,
                      std::uint64_t i) {
  if (e.kind == ATTNBENCH_PLAN_TOKENS) {
    const std::uint64_t start = i * block_size;
    const auto count = static_cast<std::uint32_t>(std::min<std::uint64_t>(block_size, e.count - start));
    return chunk{ATTNBENCH_NO_BLOCK, 0, e.indices + start, count};
  }
  const std::uint32_t b = e.kind == ATTNBENCH_PLAN_ALL ? static_cast<std::uint32_t>(i) : e.indices[i];
  const std::uint64_t first = static_cast<std::uint64_t>(b) * block_size;
  const auto count = static_cast<std::uint32_t>(std::min<std::uint64_t>(block_size, kv.n_tokens - first));
  return chunk{b, first, nullptr, count};
}

// A row's lines, requested into L2 (hint 2): on an Intel Xeon (AVX-512) GQA 1 read
// 0.72-0.84 of the read ceiling this way against 0.63-0.75 with requests into L1 (and
// 0.46-0.58 with no requests); on AMD EPYC Zen 3 (AVX2) the two were even.
inline void prefetch_row(const void* row, std::size_t bytes) {
  const auto* p = static_cast<const char*>(row);
  for (std::size_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 2);
}

// The next chunk's K rows, then its V rows, requested into L2 a few cache lines at a time
// (`rate` per call of issue), spread over the work on this chunk.
struct prefetch_stream {
  const void* const* k_rows = nullptr;
  const void* const* v_rows = nullptr;
  std::uint32_t count = 0, row_lines = 0, rate = 0;
  std::uint32_t row = 0, line = 0;  // the next line: row < count in K, then V

  void issue() {
    for (std::uint32_t i = 0; i < rate && row < 2 * count; ++i) {
      const void* r = row < count ? k_rows[row] : v_rows[row - count];
      __builtin_prefetch(static_cast<const char*>(r) + 64 * static_cast<std::size_t>(line), 0, 2);
      if (++line == row_lines) line = 0, ++row;
    }
  }
};

// Tokens in chunks [first, end) of a (valid) entry; a loop only for block lists, whose
// last block may be partial.
inline std::uint64_t chunk_tokens(const attnbench_plan_entry& e, const attnbench_kv_head_view& kv,
                                  std::uint32_t block_size, std::uint64_t first, std::uint64_t end) {
  if (first >= end) return 0;
  if (e.kind == ATTNBENCH_PLAN_ALL || e.kind == ATTNBENCH_PLAN_TOKENS) {
    const std::uint64_t total = e.kind == ATTNBENCH_PLAN_ALL ? kv.n_tokens : e.count;
    return std::min<std::uint64_t>(end * block_size, total) - first * block_size;
  }
  std::uint64_t tokens = 0;
  for (std::uint64_t i = first; i < end; ++i) tokens += chunk_at(e, kv, block_size, i).count;
  return tokens;
}

// Fills row pointers of a chunk's K and V rows. A contiguous chunk lies in one block, so
// its rows are a base pointer plus a stride; a token list divides each index (a shift
// when block_size is a power of two, as it is by default).
inline void chunk_rows(const attnbench_kv_head_view& kv, const chunk& c, std::uint32_t block_size,
                       std::size_t row_bytes, const void** k_rows, const void** v_rows) {
  if (!c.tokens) {
    const std::size_t offset = (c.first % block_size) * row_bytes;
    const auto* k = static_cast<const std::byte*>(kv.key_blocks[c.first / block_size]) + offset;
    const auto* v = static_cast<const std::byte*>(kv.value_blocks[c.first / block_size]) + offset;
    for (std::uint32_t j = 0; j < c.count; ++j) {
      k_rows[j] = k + j * row_bytes;
      v_rows[j] = v + j * row_bytes;
    }
    return;
  }
  auto fill = [&](auto block_of, auto offset_in) {
    for (std::uint32_t j = 0; j < c.count; ++j) {
      const std::uint64_t t = c.tokens[j];
      const std::size_t offset = offset_in(t) * row_bytes;
      k_rows[j] = static_cast<const std::byte*>(kv.key_blocks[block_of(t)]) + offset;
      v_rows[j] = static_cast<const std::byte*>(kv.value_blocks[block_of(t)]) + offset;
    }
  };
  if ((block_size & (block_size - 1)) == 0) {
    const unsigned shift = static_cast<unsigned>(__builtin_ctz(block_size));
    const std::uint64_t mask = block_size - 1;
    fill([&](std::uint64_t t) { return t >> shift; }, [&](std::uint64_t t) { return t & mask; });
  } else {
    fill([&](std::uint64_t t) { return t / block_size; }, [&](std::uint64_t t) { return t % block_size; });
  }
}

// The running state of one traversal: per query head the max logit, the sum of
// exp(logit - max), and the unnormalised output [n_query_heads * head_dim].
struct running_state {
  float* max;
  float* sum;
  float* acc;
  float* block_max;  // [n_query_heads] scratch for the terminator's view
};

// Folds `count` rows into the state: the inner step both paths implement.
struct chunk_job {
  const float* queries;  // [n_q * d], already multiplied by the softmax scale
  std::uint32_t n_q, d;
  attnbench_dtype dtype;
  const void* const* k_rows;
  const void* const* v_rows;
  std::uint32_t count;
  // Rows of the next chunk (next_count may be 0): its K rows are prefetched while this
  // chunk's V rows are read, and this chunk's V rows while its K rows are read, so about
  // one phase of data is in flight without flooding the miss queues.
  const void* const* next_k_rows;
  const void* const* next_v_rows;
  std::uint32_t next_count;
  bool prefetch;  // false for the second and later sub-groups of a large GQA group
  std::size_t row_bytes;
  running_state state;
  float* scratch;  // [n_q * round_up(count, 64)] logits, then probabilities
  // The chunk in pieces: false for the first piece (block_max takes the piece's largest
  // logit), true for the later ones (block_max keeps the larger).
  bool merge_block_max = false;
  // Where set (GQA groups), this chunk's passes request the next chunk's rows through it
  // instead of prefetching in bursts.
  prefetch_stream* stream = nullptr;
};

// Logits of n_q query heads (queries already scaled) over `count` K rows.
struct score_job {
  const float* queries;
  std::uint32_t n_q, d;
  attnbench_dtype dtype;
  const void* const* k_rows;
  std::uint32_t count;
  float* out;  // row g at out + g * out_stride
  std::size_t out_stride;
  std::size_t row_bytes;
  const void* const* prefetch_rows;  // rows of the next piece, requested meanwhile (may be null)
  std::uint32_t prefetch_count;
};

void fold_chunk_scalar(const chunk_job& job);
void score_rows_scalar(const score_job& job);
bool score_rows_simd(const score_job& job);
std::size_t select_at_least_simd(const float* x, std::size_t n, float threshold, std::uint32_t* out);
// x[i] = exp(x[i] - shift); returns the sum.
float exp_shift_simd(float* x, std::size_t n, float shift);
// Highway path; returns false when the shape is not supported (head_dim not a multiple
// of the vector width), in which case the caller uses the scalar path.
bool fold_chunk_simd(const chunk_job& job);
bool simd_enabled();
// Sends every kernel to the plain C++ scalar path (set_target("scalar")), or back.
void force_scalar(bool on);

}  // namespace attnbench::kernels::detail
