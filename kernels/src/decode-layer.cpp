// decode_layer: one layer's decode step. Checks the plan once, decides the split of each
// traversal over the sequence, runs the parts on oneTBB threads (each with the
// terminator's order and reset), and merges them.
#include <attnbench/kernels/decode.hpp>

#include "decode-internal.hpp"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

namespace attnbench::kernels {

namespace {

// Scratch per calling thread and nesting depth, reused across layers and steps. Depth
// matters when decode_layer runs inside a parallel loop (a batch of sequences): while a
// call waits for its workers, oneTBB may run another iteration, and so another
// decode_layer, on this same thread. Workers reach the scratch through references:
// naming a thread_local inside their lambda would give each worker its own.
struct layer_scratch {
  std::vector<std::uint64_t> chunks;
  std::vector<float> max, sum, acc;
  std::vector<decode_counters> part_counters;
  std::vector<attnbench_status> status;
  std::vector<std::string> messages;
};

// The shape of one call: traversals (plan entries), each cut into `splits` parts.
struct layer_schedule {
  std::uint32_t traversals = 0, splits = 1, group = 1, nq = 1, d = 0;
  bool per_query = false;
};

struct alignas(64) cache_line {
  std::byte bytes[64];
};

// The terminator's failure message, read on the thread that saw the failure (plugins
// keep it thread-local).
std::string terminator_message(const layer_decode_args& la) {
  const char* message = la.terminator_last_error ? la.terminator_last_error() : nullptr;
  return message ? message : "";
}

// One part of one traversal: the terminator's chunk order and reset, then the traversal
// of its range of chunks into the part's slot of the scratch.
void run_part(const layer_decode_args& la, const layer_schedule& ls, layer_scratch& s, std::size_t job) {
  const attnbench_kv_layer_view& kv = *la.kv;
  const auto t = static_cast<std::uint32_t>(job / ls.splits);
  const auto split = static_cast<std::uint32_t>(job % ls.splits);
  const std::uint32_t kv_head = ls.per_query ? t / ls.group : t, nq = ls.nq, d = ls.d;
  const std::uint64_t n_chunks = s.chunks[t];
  decode_args a;
  a.queries = la.queries + static_cast<std::size_t>(t) * nq * d;
  a.n_query_heads = nq;
  a.head_dim = d;
  a.scale = la.scale;
  a.kv = &kv.heads[kv_head];
  a.block_size = kv.block_size;
  a.dtype = static_cast<attnbench_dtype>(kv.dtype);
  a.entry = &la.plan->entries[t];
  const std::uint64_t first = n_chunks * split / ls.splits, end = n_chunks * (split + 1) / ls.splits;
  thread_local std::vector<cache_line> state;
  thread_local std::vector<std::uint32_t> order, reordered;
  attnbench_plan_entry reordered_entry;
  if (la.terminator && la.terminator->order) {  // the terminator's chunk order
    const attnbench_traversal_info planned{kv.layer, kv_head, nq, d, static_cast<std::uint32_t>(n_chunks), 0,
                                           detail::chunk_tokens(*a.entry, *a.kv, a.block_size, 0, n_chunks),
                                           a.queries, la.scale, kv.block_size, a.kv, a.entry};
    order.resize(n_chunks);
    s.status[job] =
        la.terminator->order(la.terminator_instance, &planned, static_cast<std::uint32_t>(n_chunks), order.data());
    if (s.status[job] != ATTNBENCH_STATUS_OK) {
      s.messages[job] = terminator_message(la);
      return;
    }
    if (!reorder_entry(*a.entry, *a.kv, a.block_size, order.data(), static_cast<std::uint32_t>(n_chunks), reordered,
                       reordered_entry)) {
      s.status[job] = ATTNBENCH_STATUS_INVALID_ARGUMENT;
      s.messages[job] = "order is not a permutation of the traversal's chunks";
      return;
    }
    a.entry = &reordered_entry;
  }
  if (la.terminator) {
    state.resize(la.terminator_state_size / sizeof(cache_line) + 1);
    const attnbench_traversal_info info{kv.layer, kv_head, nq, d, static_cast<std::uint32_t>(end - first), 0,
                                        detail::chunk_tokens(*a.entry, *a.kv, a.block_size, first, end), a.queries,
                                        la.scale, kv.block_size, a.kv, a.entry};
    s.status[job] = la.terminator->reset(la.terminator_instance, state.data(), &info);
    if (s.status[job] != ATTNBENCH_STATUS_OK) {
      s.messages[job] = terminator_message(la);
      return;
    }
    a.hook = {la.terminator, la.terminator_instance, state.data()};
  }
  const std::size_t nq_job = job * nq;
  const partial_state part{&s.max[nq_job], &s.sum[nq_job], &s.acc[nq_job * d]};
  detail::decode_valid_partial(a, first, end, part, &s.part_counters[job]);
}

// Split-K: traversals are cut until there are at least min_parts parts, each of at least
// 4 chunks (see decode.hpp); never with a terminator.
std::uint32_t choose_splits(const layer_decode_args& la, std::uint32_t traversals, const std::vector<std::uint64_t>& chunks) {
  std::uint32_t splits = 1;
  if (!la.terminator && la.min_parts > traversals) splits = (la.min_parts + traversals - 1) / traversals;
  std::uint64_t min_chunks = UINT64_MAX;
  for (auto c : chunks) min_chunks = std::min(min_chunks, c);
  return static_cast<std::uint32_t>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(splits, min_chunks / 4)));
}

// Merges each traversal's parts into its outputs and sums its parts' counters.
void merge_parts(const layer_decode_args& la, const layer_schedule& ls, const layer_scratch& s,
                 decode_counters* counters) {
  const std::uint32_t nq = ls.nq, d = ls.d;
  for (std::uint32_t t = 0; t < ls.traversals; ++t) {
    const std::size_t base = static_cast<std::size_t>(t) * ls.splits;
    merge_partials(ls.splits, nq, d, &s.max[base * nq], &s.sum[base * nq], &s.acc[base * nq * d],
                   la.out + static_cast<std::size_t>(t) * nq * d, la.lse ? la.lse + static_cast<std::size_t>(t) * nq : nullptr);
    if (!counters) continue;
    counters[t] = {};
    for (std::uint32_t p = 0; p < ls.splits; ++p) {
      const auto& c = s.part_counters[base + p];
      counters[t].blocks_planned += c.blocks_planned;
      counters[t].blocks_visited += c.blocks_visited;
      counters[t].tokens_planned += c.tokens_planned;
      counters[t].tokens_visited += c.tokens_visited;
    }
  }
}

attnbench_status fail(decode_error* error, decode_error::source where, std::string message, attnbench_status status) {
  if (error) *error = decode_error{where, std::move(message)};
  return status;
}

}  // namespace

attnbench_status decode_layer(const layer_decode_args& la, decode_counters* counters, decode_error* error) {
  using source = decode_error::source;
  if (!la.queries || !la.kv || !la.plan || !la.out)
    return fail(error, source::arguments, "a null queries, kv, plan or out", ATTNBENCH_STATUS_INVALID_ARGUMENT);
  const attnbench_kv_layer_view& kv = *la.kv;
  const std::uint32_t hq = la.n_query_heads, hkv = kv.n_kv_heads;
  if (hkv == 0 || hq == 0 || hq % hkv != 0)
    return fail(error, source::arguments,
                std::to_string(hq) + " query heads do not form groups over " + std::to_string(hkv) + " KV heads",
                ATTNBENCH_STATUS_INVALID_ARGUMENT);
  if (std::string problem = check_plan(*la.plan, kv, hq); !problem.empty())
    return fail(error, source::plan, std::move(problem), ATTNBENCH_STATUS_INVALID_ARGUMENT);

  layer_schedule ls;
  ls.group = hq / hkv;
  ls.per_query = la.plan->granularity == ATTNBENCH_PLAN_PER_QUERY_HEAD;
  ls.traversals = ls.per_query ? hq : hkv;
  ls.nq = ls.per_query ? 1 : ls.group;
  ls.d = kv.head_dim;
  thread_local std::vector<std::unique_ptr<layer_scratch>> pool;
  thread_local std::size_t depth = 0;
  if (pool.size() <= depth) pool.push_back(std::make_unique<layer_scratch>());
  layer_scratch& s = *pool[depth];
  struct depth_guard {
    std::size_t& d;
    explicit depth_guard(std::size_t& x) : d(x) { ++d; }
    ~depth_guard() { --d; }
  } guard(depth);

  s.chunks.resize(ls.traversals);
  for (std::uint32_t t = 0; t < ls.traversals; ++t)
    s.chunks[t] = detail::chunk_count(la.plan->entries[t], kv.heads[ls.per_query ? t / ls.group : t], kv.block_size);
  ls.splits = choose_splits(la, ls.traversals, s.chunks);
  const std::size_t parts = static_cast<std::size_t>(ls.traversals) * ls.splits;
  s.max.resize(parts * ls.nq);
  s.sum.resize(parts * ls.nq);
  s.acc.resize(parts * ls.nq * ls.d);
  s.part_counters.assign(parts, decode_counters{});
  s.status.assign(parts, ATTNBENCH_STATUS_OK);
  s.messages.resize(parts);
  tbb::parallel_for(std::size_t{0}, parts, [&](std::size_t job) { run_part(la, ls, s, job); });
  for (std::size_t job = 0; job < parts; ++job)
    if (s.status[job] != ATTNBENCH_STATUS_OK) return fail(error, source::terminator, s.messages[job], s.status[job]);
  merge_parts(la, ls, s, counters);
  return ATTNBENCH_STATUS_OK;
}

}  // namespace attnbench::kernels
