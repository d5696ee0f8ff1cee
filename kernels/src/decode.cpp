#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>

#include "decode-internal.hpp"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <vector>

namespace attnbench::kernels {
namespace detail {

// The portable step: the same arithmetic as the SIMD path, one element at a time.
void fold_chunk_scalar(const chunk_job& job) {
  const std::uint32_t d = job.d;
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();
  thread_local std::vector<float> k, v;
  k.resize(static_cast<std::size_t>(job.count) * d);
  v.resize(k.size());
  for (std::uint32_t j = 0; j < job.count; ++j) {
    to_fp32(job.dtype, job.k_rows[j], &k[static_cast<std::size_t>(j) * d], d);
    to_fp32(job.dtype, job.v_rows[j], &v[static_cast<std::size_t>(j) * d], d);
  }
  float* p = job.scratch;
  for (std::uint32_t g = 0; g < job.n_q; ++g) {
    const float* q = job.queries + static_cast<std::size_t>(g) * d;
    float bmax = neg_inf;
    for (std::uint32_t j = 0; j < job.count; ++j) {
      float dot = 0;
      for (std::uint32_t i = 0; i < d; ++i) dot += q[i] * k[static_cast<std::size_t>(j) * d + i];
      p[j] = dot;
      bmax = std::max(bmax, dot);
    }
    job.state.block_max[g] = bmax;
    const float old_max = job.state.max[g];
    const float new_max = std::max(old_max, bmax);
    const float alpha = old_max == neg_inf ? 0.0f : std::exp(old_max - new_max);
    float* o = job.state.acc + static_cast<std::size_t>(g) * d;
    float sum = job.state.sum[g] * alpha;
    for (std::uint32_t i = 0; i < d; ++i) o[i] *= alpha;
    for (std::uint32_t j = 0; j < job.count; ++j) {
      const float w = std::exp(p[j] - new_max);
      sum += w;
      for (std::uint32_t i = 0; i < d; ++i) o[i] += w * v[static_cast<std::size_t>(j) * d + i];
    }
    job.state.sum[g] = sum;
    job.state.max[g] = new_max;
  }
}

}  // namespace detail

namespace {

using detail::chunk;

// Per-thread buffers, grown as needed: no allocation per step once warm.
struct scratch_buffers {
  std::vector<const void*> k_rows, v_rows;
  std::vector<float> scaled_queries, logits, block_max;
};
scratch_buffers& scratch() {
  thread_local scratch_buffers s;
  return s;
}

// Traverses chunks [first, end) of a valid entry, updating `part` (already initialised).
void traverse(const decode_args& a, std::uint64_t first, std::uint64_t end, partial_state part,
              decode_counters* counters) {
  const std::uint32_t nq = a.n_query_heads, d = a.head_dim;
  scratch_buffers& s = scratch();
  s.k_rows.resize(2 * static_cast<std::size_t>(a.block_size));  // this chunk and the next
  s.v_rows.resize(2 * static_cast<std::size_t>(a.block_size));
  s.scaled_queries.resize(static_cast<std::size_t>(nq) * d);
  for (std::size_t i = 0; i < s.scaled_queries.size(); ++i) s.scaled_queries[i] = a.queries[i] * a.scale;
  s.logits.resize(static_cast<std::size_t>(nq) * (a.block_size + 64));
  s.block_max.resize(nq);
  const std::size_t row_bytes = d * dtype_size(a.dtype);

  detail::chunk_job job{s.scaled_queries.data(), nq, d, a.dtype, nullptr, nullptr, 0, nullptr, nullptr, 0, true, row_bytes,
                        {part.max, part.sum, part.acc, s.block_max.data()}, s.logits.data()};
  attnbench_kernel_state ks{};
  ks.n_query_heads = nq;
  ks.head_dim = d;
  ks.running_max = part.max;
  ks.running_sum = part.sum;
  ks.output_acc = part.acc;
  ks.block_max = s.block_max.data();
  const bool simd = detail::simd_enabled();

  std::uint64_t visited_blocks = 0, visited_tokens = 0;
  // Row pointers for chunk i live in half (i - first) % 2 of the buffers; the next
  // chunk's are filled one step ahead for prefetching.
  auto rows = [&](std::uint64_t i, std::size_t half) {
    const chunk c = detail::chunk_at(*a.entry, *a.kv, a.block_size, i);
    detail::chunk_rows(*a.kv, c, a.block_size, row_bytes, s.k_rows.data() + half * a.block_size,
                       s.v_rows.data() + half * a.block_size);
    return c;
  };
  chunk next = first < end ? rows(first, 0) : chunk{};
  for (std::uint64_t i = first; i < end; ++i) {
    const std::size_t half = (i - first) % 2;
    const chunk c = next;
    if (i + 1 < end) next = rows(i + 1, 1 - half);
    job.k_rows = s.k_rows.data() + half * a.block_size;
    job.v_rows = s.v_rows.data() + half * a.block_size;
    job.next_k_rows = s.k_rows.data() + (1 - half) * a.block_size;
    job.next_v_rows = s.v_rows.data() + (1 - half) * a.block_size;
    job.next_count = i + 1 < end ? next.count : 0;
    job.count = c.count;
    if (!simd || !detail::fold_chunk_simd(job)) detail::fold_chunk_scalar(job);
    ++visited_blocks;
    visited_tokens += c.count;
    if (a.hook.ops) {
      ks.blocks_done = static_cast<std::uint32_t>(visited_blocks);
      ks.block_id = c.block_id;
      ks.tokens_in_block = c.count;
      if (a.hook.ops->check(a.hook.instance, a.hook.state, &ks) == ATTNBENCH_STOP) break;
    }
  }
  if (counters) {
    counters->blocks_planned += end - first;
    counters->tokens_planned += detail::chunk_tokens(*a.entry, *a.kv, a.block_size, first, end);
    counters->blocks_visited += visited_blocks;
    counters->tokens_visited += visited_tokens;
  }
}

bool args_ok(const decode_args& a) {
  return a.queries && a.kv && a.entry && a.head_dim > 0 && a.n_query_heads > 0 && a.block_size > 0;
}

void init_part(partial_state part, std::uint32_t nq, std::uint32_t d) {
  std::fill(part.max, part.max + nq, -std::numeric_limits<float>::infinity());
  std::fill(part.sum, part.sum + nq, 0.0f);
  std::fill(part.acc, part.acc + static_cast<std::size_t>(nq) * d, 0.0f);
}

}  // namespace

std::uint64_t plan_entry_chunks(const attnbench_plan_entry& entry, const attnbench_kv_head_view& kv,
                                std::uint32_t block_size) {
  return detail::chunk_count(entry, kv, block_size);
}

bool reorder_entry(const attnbench_plan_entry& entry, const attnbench_kv_head_view& kv, std::uint32_t block_size,
                   const std::uint32_t* order, std::uint32_t n_chunks, std::vector<std::uint32_t>& indices,
                   attnbench_plan_entry& out) {
  if (n_chunks != detail::chunk_count(entry, kv, block_size)) return false;
  thread_local std::vector<std::uint8_t> seen;  // reorder runs on the kernel's threads
  seen.assign(n_chunks, 0);
  bool identity = true;
  for (std::uint32_t i = 0; i < n_chunks; ++i) {
    if (order[i] >= n_chunks || seen[order[i]]) return false;
    seen[order[i]] = 1;
    identity = identity && order[i] == i;
  }
  if (identity) {  // as planned: traverse the entry itself
    out = entry;
    return true;
  }
  indices.clear();
  for (std::uint32_t i = 0; i < n_chunks; ++i) {
    const detail::chunk c = detail::chunk_at(entry, kv, block_size, order[i]);
    if (c.tokens) {
      indices.insert(indices.end(), c.tokens, c.tokens + c.count);
    } else {
      indices.push_back(c.block_id);
    }
  }
  out = attnbench_plan_entry{entry.kind == ATTNBENCH_PLAN_TOKENS ? ATTNBENCH_PLAN_TOKENS : ATTNBENCH_PLAN_BLOCKS,
                             static_cast<std::uint32_t>(indices.size()), indices.data(), nullptr};
  return true;
}

void detail::decode_valid_partial(const decode_args& a, std::uint64_t first_chunk, std::uint64_t end_chunk,
                                  partial_state part, decode_counters* counters) {
  end_chunk = std::min(end_chunk, detail::chunk_count(*a.entry, *a.kv, a.block_size));
  init_part(part, a.n_query_heads, a.head_dim);
  if (first_chunk < end_chunk) traverse(a, first_chunk, end_chunk, part, counters);
}

attnbench_status decode_partial(const decode_args& a, std::uint64_t first_chunk, std::uint64_t end_chunk,
                                partial_state part, decode_counters* counters) {
  if (!args_ok(a) || !part.max || !part.sum || !part.acc) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  if (!check_plan_entry(*a.entry, *a.kv).empty()) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  detail::decode_valid_partial(a, first_chunk, end_chunk, part, counters);
  return ATTNBENCH_STATUS_OK;
}

void merge_partials(std::uint32_t n_parts, std::uint32_t nq, std::uint32_t d, const float* max, const float* sum,
                    const float* acc, float* out, float* lse) {
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();
  for (std::uint32_t g = 0; g < nq; ++g) {
    float m = neg_inf;
    for (std::uint32_t p = 0; p < n_parts; ++p) m = std::max(m, max[p * nq + g]);
    float total = 0;
    float* o = out + static_cast<std::size_t>(g) * d;
    std::fill(o, o + d, 0.0f);
    for (std::uint32_t p = 0; p < n_parts; ++p) {
      const float s = sum[p * nq + g];
      if (s == 0.0f) continue;
      const float w = std::exp(max[p * nq + g] - m);
      total += s * w;
      const float* src = acc + (static_cast<std::size_t>(p) * nq + g) * d;
      for (std::uint32_t i = 0; i < d; ++i) o[i] += w * src[i];
    }
    const float inv = total > 0 ? 1.0f / total : 0.0f;
    for (std::uint32_t i = 0; i < d; ++i) o[i] *= inv;
    if (lse) lse[g] = total > 0 ? m + std::log(total) : neg_inf;
  }
}

attnbench_status decode_group(const decode_args& a, decode_counters* counters) {
  if (!args_ok(a) || !a.out) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  const std::uint32_t nq = a.n_query_heads, d = a.head_dim;
  thread_local std::vector<float> m, s, acc;
  m.resize(nq);
  s.resize(nq);
  acc.resize(static_cast<std::size_t>(nq) * d);
  const partial_state part{m.data(), s.data(), acc.data()};
  const attnbench_status status = decode_partial(a, 0, UINT64_MAX, part, counters);
  if (status != ATTNBENCH_STATUS_OK) return status;
  merge_partials(1, nq, d, m.data(), s.data(), acc.data(), a.out, a.lse);
  return ATTNBENCH_STATUS_OK;
}

attnbench_status decode_reference(const decode_args& a, std::uint64_t max_blocks, double* out) {
  if (!args_ok(a) || !out) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  if (!check_plan_entry(*a.entry, *a.kv).empty()) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  const std::uint32_t d = a.head_dim;
  const std::size_t row_bytes = d * dtype_size(a.dtype);
  std::vector<const void*> k_rows(a.block_size), v_rows(a.block_size);
  std::vector<std::vector<double>> keys, values;
  std::vector<float> row(d);
  const std::uint64_t n = std::min(max_blocks, detail::chunk_count(*a.entry, *a.kv, a.block_size));
  for (std::uint64_t i = 0; i < n; ++i) {
    const chunk c = detail::chunk_at(*a.entry, *a.kv, a.block_size, i);
    detail::chunk_rows(*a.kv, c, a.block_size, row_bytes, k_rows.data(), v_rows.data());
    for (std::uint32_t j = 0; j < c.count; ++j) {
      to_fp32(a.dtype, k_rows[j], row.data(), d);
      keys.emplace_back(row.begin(), row.end());
      to_fp32(a.dtype, v_rows[j], row.data(), d);
      values.emplace_back(row.begin(), row.end());
    }
  }
  for (std::uint32_t g = 0; g < a.n_query_heads; ++g) {
    const float* q = a.queries + static_cast<std::size_t>(g) * d;
    std::vector<double> logit(keys.size());
    double mx = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < keys.size(); ++j) {
      double dp = 0;
      for (std::uint32_t k = 0; k < d; ++k) dp += static_cast<double>(q[k]) * keys[j][k];
      logit[j] = static_cast<double>(a.scale) * dp;
      mx = std::max(mx, logit[j]);
    }
    double total = 0;
    std::vector<double> o(d, 0.0);
    for (std::size_t j = 0; j < keys.size(); ++j) {
      const double p = std::exp(logit[j] - mx);
      total += p;
      for (std::uint32_t k = 0; k < d; ++k) o[k] += p * values[j][k];
    }
    for (std::uint32_t k = 0; k < d; ++k) out[static_cast<std::size_t>(g) * d + k] = total > 0 ? o[k] / total : 0.0;
  }
  return ATTNBENCH_STATUS_OK;
}

}  // namespace attnbench::kernels
