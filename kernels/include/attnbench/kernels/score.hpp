// Scoring and selection, what token-level policies (TokenSelect, TCA) need each step:
// score_keys computes scale * q.k for every query head of a GQA group over candidate
// tokens of one KV head, reading each K row once for the whole group (the decode
// kernel's logit pass, at the same bandwidth); softmax_rows normalises each head's row;
// top_k picks the k best of n scores.
#pragma once

#include <attnbench/plugin.h>

#include <cstdint>

namespace attnbench::kernels {

struct score_args {
  const float* queries = nullptr;  // [n_query_heads * head_dim]
  std::uint32_t n_query_heads = 1;
  std::uint32_t head_dim = 0;
  float scale = 1.0f;
  const attnbench_kv_head_view* kv = nullptr;
  std::uint32_t block_size = 64;
  attnbench_dtype dtype = ATTNBENCH_DTYPE_FP32;
  // Candidates: the cache tokens [first, first + count), or, when tokens is not null,
  // the count cache tokens it lists.
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  const std::uint32_t* tokens = nullptr;
  float* out = nullptr;  // [n_query_heads * count]: row h holds query head h's logits
};

// Returns ATTNBENCH_STATUS_INVALID_ARGUMENT on a null pointer or a token out of range.
attnbench_status score_keys(const score_args& args);
// float64 reference of the same logits, for tests.
attnbench_status score_reference(const score_args& args, double* out);

// Softmax of each of `rows` rows of n values, in place (fp32, max-subtracted).
void softmax_rows(float* x, std::uint32_t rows, std::uint64_t n);

// x[i] = exp(x[i] - shift) for i < n, SIMD where enabled; returns their sum. The building
// block of an online softmax (the trained model's prefill attention).
float exp_shift(float* x, std::uint64_t n, float shift);

// Quest's upper bound of q.k over the keys of a page or block with per-channel minimum
// kmin and maximum kmax: sum over channels of max(q_i kmin_i, q_i kmax_i). fp32, sixteen
// partial sums (for ranking; a certified bound wants float64).
float key_range_bound(const float* q, const float* kmin, const float* kmax, std::size_t d);

// Writes to out the indices of the k largest of the n scores, ties broken towards the
// lower index, in no particular order; k is clamped to n. NaN scores rank below every
// number. Exact: the result equals a full sort's first k.
void top_k(const float* scores, std::uint64_t n, std::uint32_t k, std::uint32_t* out);

// Cosine similarity of two vectors of n floats, in float64; 0 when either is zero.
double cosine(const float* a, const float* b, std::size_t n);

}  // namespace attnbench::kernels
