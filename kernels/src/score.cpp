#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/reproducible.hpp>
#include <attnbench/kernels/score.hpp>

#include "decode-internal.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

namespace attnbench::kernels {
namespace detail {

void score_rows_scalar(const score_job& job) {
  thread_local std::vector<float> k;
  k.resize(job.d);
  for (std::uint32_t j = 0; j < job.count; ++j) {
    to_fp32(job.dtype, job.k_rows[j], k.data(), job.d);
    for (std::uint32_t g = 0; g < job.n_q; ++g) {
      const float* q = job.queries + static_cast<std::size_t>(g) * job.d;
      float dot = 0;
      for (std::uint32_t i = 0; i < job.d; ++i) dot += q[i] * k[i];
      job.out[g * job.out_stride + j] = dot;
    }
  }
}

}  // namespace detail

namespace {

bool tokens_in_range(const score_args& a) {
  if (a.tokens) {
    for (std::uint64_t i = 0; i < a.count; ++i)
      if (a.tokens[i] >= a.kv->n_tokens) return false;
    return true;
  }
  return a.first <= a.kv->n_tokens && a.count <= a.kv->n_tokens - a.first;
}

}  // namespace

attnbench_status score_keys(const score_args& a) {
  if (!a.queries || !a.kv || !a.out || a.head_dim == 0 || a.n_query_heads == 0 || a.block_size == 0)
    return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  if (!tokens_in_range(a)) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  const std::uint32_t nq = a.n_query_heads, d = a.head_dim;
  const std::size_t row_bytes = d * dtype_size(a.dtype);
  thread_local std::vector<float> q;
  thread_local std::vector<const void*> rows;
  q.resize(static_cast<std::size_t>(nq) * d);
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = a.queries[i] * a.scale;
  // Walk the candidates in pieces of a block so the row table stays small and in cache;
  // the next piece's rows are prefetched while this one is scored.
  const std::uint64_t piece = a.block_size;
  rows.resize(2 * piece);
  // Row pointers without a division per row: a range advances a block offset, a token
  // list shifts when block_size is a power of two (the default).
  const bool pow2 = (a.block_size & (a.block_size - 1)) == 0;
  const unsigned shift = pow2 ? static_cast<unsigned>(__builtin_ctz(a.block_size)) : 0;
  auto fill = [&](std::uint64_t start, const void** dst) {
    const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(piece, a.count - start));
    if (!a.tokens) {
      std::uint64_t t = a.first + start;
      std::uint64_t b = t / a.block_size, o = t % a.block_size;
      for (std::uint32_t j = 0; j < n; ++j) {
        dst[j] = static_cast<const std::byte*>(a.kv->key_blocks[b]) + o * row_bytes;
        if (++o == a.block_size) o = 0, ++b;
      }
    } else if (pow2) {
      const std::uint64_t mask = a.block_size - 1;
      for (std::uint32_t j = 0; j < n; ++j) {
        const std::uint64_t t = a.tokens[start + j];
        dst[j] = static_cast<const std::byte*>(a.kv->key_blocks[t >> shift]) + (t & mask) * row_bytes;
      }
    } else {
      for (std::uint32_t j = 0; j < n; ++j) {
        const std::uint64_t t = a.tokens[start + j];
        dst[j] = static_cast<const std::byte*>(a.kv->key_blocks[t / a.block_size]) + (t % a.block_size) * row_bytes;
      }
    }
    return n;
  };
  const bool simd = detail::simd_enabled();
  std::uint32_t n = a.count > 0 ? fill(0, rows.data()) : 0;
  for (std::uint64_t start = 0, i = 0; start < a.count; start += piece, ++i) {
    const void** current = rows.data() + (i % 2) * piece;
    const void** next = rows.data() + ((i + 1) % 2) * piece;
    const std::uint32_t next_n = start + piece < a.count ? fill(start + piece, next) : 0;
    const detail::score_job job{q.data(), nq,  d,         a.dtype,   current, n,
                                a.out + start, a.count, row_bytes, next_n ? next : nullptr, next_n};
    if (!simd || !detail::score_rows_simd(job)) detail::score_rows_scalar(job);
    n = next_n;
  }
  return ATTNBENCH_STATUS_OK;
}

attnbench_status score_reference(const score_args& a, double* out) {
  if (!a.queries || !a.kv || !out || a.head_dim == 0) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  if (!tokens_in_range(a)) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  const std::uint32_t d = a.head_dim;
  const std::size_t row_bytes = d * dtype_size(a.dtype);
  std::vector<float> k(d);
  for (std::uint64_t j = 0; j < a.count; ++j) {
    const std::uint64_t t = a.tokens ? a.tokens[j] : a.first + j;
    to_fp32(a.dtype, static_cast<const std::byte*>(a.kv->key_blocks[t / a.block_size]) + (t % a.block_size) * row_bytes,
            k.data(), d);
    for (std::uint32_t g = 0; g < a.n_query_heads; ++g) {
      double dot = 0;
      for (std::uint32_t i = 0; i < d; ++i) dot += static_cast<double>(a.queries[g * d + i]) * k[i];
      out[g * a.count + j] = a.scale * dot;
    }
  }
  return ATTNBENCH_STATUS_OK;
}

ATTNBENCH_REPRODUCIBLE_CLONES float key_range_bound(const float* __restrict q, const float* __restrict kmin,
                                                    const float* __restrict kmax, std::size_t d) {
  using f16 = float __attribute__((vector_size(64)));  // GCC vector type: lanes are the partial sums
  f16 acc = {};
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    f16 x, lo, hi;
    std::memcpy(&x, q + i, sizeof x);
    std::memcpy(&lo, kmin + i, sizeof lo);
    std::memcpy(&hi, kmax + i, sizeof hi);
    const f16 a = x * lo, b = x * hi;
    acc += a > b ? a : b;
  }
  float s = 0;
  for (std::size_t j = 0; j < 16; ++j) s += acc[j];
  for (; i < d; ++i) s += std::max(q[i] * kmin[i], q[i] * kmax[i]);
  return s;
}

float exp_shift(float* x, std::uint64_t n, float shift) {
  if (detail::simd_enabled()) return detail::exp_shift_simd(x, n, shift);
  float sum = 0;
  for (std::uint64_t i = 0; i < n; ++i) sum += x[i] = std::exp(x[i] - shift);
  return sum;
}

void softmax_rows(float* x, std::uint32_t rows, std::uint64_t n) {
  for (std::uint32_t r = 0; r < rows; ++r) {
    float* row = x + r * n;
    float mx = -std::numeric_limits<float>::infinity();
    for (std::uint64_t i = 0; i < n; ++i) mx = std::max(mx, row[i]);
    double sum = 0;
    if (detail::simd_enabled()) {
      sum = detail::exp_shift_simd(row, n, mx);
    } else {
      for (std::uint64_t i = 0; i < n; ++i) {
        row[i] = std::exp(row[i] - mx);
        sum += row[i];
      }
    }
    const auto inv = static_cast<float>(sum > 0 ? 1.0 / sum : 0.0);
    for (std::uint64_t i = 0; i < n; ++i) row[i] *= inv;
  }
}

namespace {

// The order of (score, index) as one unsigned 64-bit key, larger first: the score's bits
// made monotonic in the upper half (NaN lowest, so last), and the complement of the index
// in the lower half (lower index first on ties). Sorting plain integers is several times
// faster than a comparator that loads two scores and tests them for NaN.
inline std::uint64_t order_key(float score, std::uint32_t index) {
  const float canonical = score == 0.0f ? 0.0f : score;  // -0 ties with +0, as == says
  std::uint32_t bits;
  std::memcpy(&bits, &canonical, sizeof bits);
  const std::uint32_t monotonic = std::isnan(score) ? 0u : (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
  return static_cast<std::uint64_t>(monotonic) << 32 | (0xFFFFFFFFu - index);
}

// The k best of the candidates (indices into scores), written to out in no set order.
void select_exact(const float* scores, const std::uint32_t* candidates, std::size_t count, std::uint32_t k,
                  std::uint32_t* out) {
  thread_local std::vector<std::uint64_t> keys;
  keys.resize(count);
  for (std::size_t i = 0; i < count; ++i) keys[i] = order_key(scores[candidates[i]], candidates[i]);
  std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), std::greater<>());
  for (std::uint32_t i = 0; i < k; ++i) out[i] = 0xFFFFFFFFu - static_cast<std::uint32_t>(keys[i]);
}

}  // namespace

void top_k(const float* scores, std::uint64_t n, std::uint32_t k, std::uint32_t* out) {
  if (k > n) k = static_cast<std::uint32_t>(n);
  if (k == 0) return;
  thread_local std::vector<std::uint32_t> candidates;
  if (candidates.size() < n) candidates.resize(n);  // grows once; never cleared per call
  if (k * 8ull >= n || n < 4096) {  // a large share: select over everything
    for (std::uint64_t i = 0; i < n; ++i) candidates[i] = static_cast<std::uint32_t>(i);
    select_exact(scores, candidates.data(), n, k, out);
    return;
  }
  // Estimate a threshold a little below the k-th largest from an evenly strided sample,
  // keep every score at or above it (one vectorised pass), then select exactly among
  // those. If fewer than k pass (an unlucky sample, or NaNs), fall back to all.
  constexpr std::uint32_t kSample = 1024;
  const std::uint64_t stride = n / kSample;
  const auto expected = static_cast<std::uint32_t>(std::min<std::uint64_t>(
      kSample - 1, (static_cast<std::uint64_t>(k) * kSample) / n + 8 + (static_cast<std::uint64_t>(k) * kSample) / (4 * n)));
  thread_local std::vector<std::uint64_t> sample_keys;
  sample_keys.resize(kSample);
  for (std::uint32_t i = 0; i < kSample; ++i) {
    const auto at = static_cast<std::uint32_t>(i * stride);
    sample_keys[i] = order_key(scores[at], at);
  }
  std::nth_element(sample_keys.begin(), sample_keys.begin() + expected, sample_keys.end(), std::greater<>());
  const float threshold = scores[0xFFFFFFFFu - static_cast<std::uint32_t>(sample_keys[expected])];
  std::size_t count = 0;
  if (!std::isnan(threshold)) {
    count = detail::simd_enabled() ? detail::select_at_least_simd(scores, n, threshold, candidates.data()) : 0;
    if (!detail::simd_enabled())
      for (std::uint64_t i = 0; i < n; ++i)
        if (scores[i] >= threshold) candidates[count++] = static_cast<std::uint32_t>(i);
  }
  if (count < k) {
    for (std::uint64_t i = 0; i < n; ++i) candidates[i] = static_cast<std::uint32_t>(i);
    count = n;
  }
  select_exact(scores, candidates.data(), count, k, out);
}

double cosine(const float* a, const float* b, std::size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

}  // namespace attnbench::kernels
