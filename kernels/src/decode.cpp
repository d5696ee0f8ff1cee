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

  detail::chunk_job job{s.scaled_queries.data(), nq, d, a.dtype, nullptr, nullptr, 0, nullptr, 0, true, row_bytes,
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

attnbench_status decode_partial(const decode_args& a, std::uint64_t first_chunk, std::uint64_t end_chunk,
                                partial_state part, decode_counters* counters) {
  if (!args_ok(a) || !part.max || !part.sum || !part.acc) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  if (!detail::entry_valid(*a.entry, *a.kv)) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  end_chunk = std::min(end_chunk, detail::chunk_count(*a.entry, *a.kv, a.block_size));
  init_part(part, a.n_query_heads, a.head_dim);
  if (first_chunk < end_chunk) traverse(a, first_chunk, end_chunk, part, counters);
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

attnbench_status decode_layer(const layer_decode_args& la, decode_counters* counters, std::string* error) {
  if (!la.queries || !la.kv || !la.plan || !la.out || !la.plan->entries) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  const attnbench_kv_layer_view& kv = *la.kv;
  const std::uint32_t hq = la.n_query_heads, hkv = kv.n_kv_heads, d = kv.head_dim;
  if (hkv == 0 || hq == 0 || hq % hkv != 0) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  const std::uint32_t group = hq / hkv;
  const bool per_query = la.plan->granularity == ATTNBENCH_PLAN_PER_QUERY_HEAD;
  const std::uint32_t traversals = per_query ? hq : hkv;
  const std::uint32_t nq = per_query ? 1 : group;
  if (la.plan->n_entries != traversals) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  for (std::uint32_t t = 0; t < traversals; ++t)
    if (!detail::entry_valid(la.plan->entries[t], kv.heads[per_query ? t / group : t]))
      return ATTNBENCH_STATUS_INVALID_ARGUMENT;

  // Split-K: cut traversals until there are at least min_parts parts (see decode.hpp).
  std::uint32_t splits = 1;
  if (!la.terminator && la.min_parts > traversals) splits = (la.min_parts + traversals - 1) / traversals;
  // Scratch per calling thread and nesting depth, reused across layers and steps. Depth
  // matters when decode_layer runs inside a parallel loop (a batch of sequences): while
  // this call waits for its workers, oneTBB may run another iteration, and so another
  // decode_layer, on this same thread. The workers below reach the scratch through
  // references: naming a thread_local inside the lambda would give each worker its own.
  struct layer_scratch {
    std::vector<std::uint64_t> chunks;
    std::vector<float> max, sum, acc;
    std::vector<decode_counters> part_counters;
    std::vector<attnbench_status> status;
    std::vector<std::string> messages;
  };
  thread_local std::vector<std::unique_ptr<layer_scratch>> pool;
  thread_local std::size_t depth = 0;
  if (pool.size() <= depth) pool.push_back(std::make_unique<layer_scratch>());
  layer_scratch& scratch_here = *pool[depth];
  struct depth_guard {
    std::size_t& d;
    explicit depth_guard(std::size_t& x) : d(x) { ++d; }
    ~depth_guard() { --d; }
  } guard(depth);

  auto& chunks = scratch_here.chunks;
  chunks.resize(traversals);
  for (std::uint32_t t = 0; t < traversals; ++t)
    chunks[t] = detail::chunk_count(la.plan->entries[t], kv.heads[per_query ? t / group : t], kv.block_size);
  std::uint64_t min_chunks = UINT64_MAX;
  for (auto c : chunks) min_chunks = std::min(min_chunks, c);
  splits = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(splits, min_chunks / 4)));

  const std::size_t parts = static_cast<std::size_t>(traversals) * splits;
  auto& max = scratch_here.max;
  auto& sum = scratch_here.sum;
  auto& acc = scratch_here.acc;
  auto& part_counters = scratch_here.part_counters;
  auto& status = scratch_here.status;
  auto& messages = scratch_here.messages;
  max.resize(parts * nq);
  sum.resize(parts * nq);
  acc.resize(parts * nq * d);
  part_counters.assign(parts, decode_counters{});
  status.assign(parts, ATTNBENCH_STATUS_OK);
  messages.resize(parts);
  struct alignas(64) cache_line {
    std::byte bytes[64];
  };

  tbb::parallel_for(std::size_t{0}, parts, [&](std::size_t job) {
    const auto t = static_cast<std::uint32_t>(job / splits);
    const auto split = static_cast<std::uint32_t>(job % splits);
    const std::uint32_t kv_head = per_query ? t / group : t;
    decode_args a;
    a.queries = la.queries + static_cast<std::size_t>(t) * nq * d;
    a.n_query_heads = nq;
    a.head_dim = d;
    a.scale = la.scale;
    a.kv = &kv.heads[kv_head];
    a.block_size = kv.block_size;
    a.dtype = static_cast<attnbench_dtype>(kv.dtype);
    a.entry = &la.plan->entries[t];
    const std::uint64_t first = chunks[t] * split / splits, end = chunks[t] * (split + 1) / splits;
    thread_local std::vector<cache_line> state;
    thread_local std::vector<std::uint32_t> order, reordered;
    attnbench_plan_entry reordered_entry;
    if (la.terminator && la.terminator->order) {  // the terminator's chunk order
      const attnbench_traversal_info planned{kv.layer, kv_head, nq, d, static_cast<std::uint32_t>(chunks[t]), 0,
                                             detail::chunk_tokens(*a.entry, *a.kv, a.block_size, 0, chunks[t]),
                                             a.queries, la.scale, kv.block_size, a.kv, a.entry};
      order.resize(chunks[t]);
      status[job] = la.terminator->order(la.terminator_instance, &planned, static_cast<std::uint32_t>(chunks[t]),
                                         order.data());
      if (status[job] == ATTNBENCH_STATUS_OK &&
          !reorder_entry(*a.entry, *a.kv, a.block_size, order.data(), static_cast<std::uint32_t>(chunks[t]), reordered,
                         reordered_entry)) {
        status[job] = ATTNBENCH_STATUS_INVALID_ARGUMENT;
        messages[job] = "order is not a permutation of the traversal's chunks";
        return;
      }
      if (status[job] != ATTNBENCH_STATUS_OK) {
        const char* message = la.terminator_last_error ? la.terminator_last_error() : nullptr;
        messages[job] = message ? message : "";
        return;
      }
      a.entry = &reordered_entry;
    }
    if (la.terminator) {
      state.resize(la.terminator_state_size / sizeof(cache_line) + 1);
      const attnbench_traversal_info info{kv.layer, kv_head, nq, d, static_cast<std::uint32_t>(end - first), 0,
                                          detail::chunk_tokens(*a.entry, *a.kv, a.block_size, first, end), a.queries,
                                          la.scale, kv.block_size, a.kv, a.entry};
      status[job] = la.terminator->reset(la.terminator_instance, state.data(), &info);
      if (status[job] != ATTNBENCH_STATUS_OK) {
        const char* message = la.terminator_last_error ? la.terminator_last_error() : nullptr;
        messages[job] = message ? message : "";
        return;
      }
      a.hook = {la.terminator, la.terminator_instance, state.data()};
    }
    const partial_state part{&max[job * nq], &sum[job * nq], &acc[job * nq * d]};
    status[job] = decode_partial(a, first, end, part, &part_counters[job]);
  });
  for (std::size_t job = 0; job < parts; ++job)
    if (status[job] != ATTNBENCH_STATUS_OK) {
      if (error) *error = messages[job];
      return status[job];
    }

  for (std::uint32_t t = 0; t < traversals; ++t) {
    const std::size_t base = static_cast<std::size_t>(t) * splits;
    merge_partials(splits, nq, d, &max[base * nq], &sum[base * nq], &acc[base * nq * d],
                   la.out + static_cast<std::size_t>(t) * nq * d, nullptr);
    if (counters) {
      counters[t] = {};
      for (std::uint32_t s = 0; s < splits; ++s) {
        const auto& c = part_counters[base + s];
        counters[t].blocks_planned += c.blocks_planned;
        counters[t].blocks_visited += c.blocks_visited;
        counters[t].tokens_planned += c.tokens_planned;
        counters[t].tokens_visited += c.tokens_visited;
      }
    }
  }
  return ATTNBENCH_STATUS_OK;
}

attnbench_status decode_reference(const decode_args& a, std::uint64_t max_blocks, double* out) {
  if (!args_ok(a) || !out) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  if (!detail::entry_valid(*a.entry, *a.kv)) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
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
