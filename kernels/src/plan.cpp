// check_plan: the one validation of a policy's plan, shared by decode_layer and, through
// it, every caller.
#include <attnbench/kernels/decode.hpp>

#include <algorithm>
#include <vector>

namespace attnbench::kernels {

namespace {

// Marks indices of one entry; an index is listed twice when it already carries the
// entry's stamp, so nothing is cleared between entries or calls.
struct seen_stamps {
  std::vector<std::uint32_t> stamp;
  std::uint32_t current = 0;
  void begin(std::uint64_t size) {
    if (stamp.size() < size) stamp.resize(size, 0);
    if (++current == 0) {  // wrapped: clear once every 2^32 entries
      std::fill(stamp.begin(), stamp.end(), 0);
      current = 1;
    }
  }
  bool mark(std::uint32_t i) {
    if (stamp[i] == current) return false;
    stamp[i] = current;
    return true;
  }
};

}  // namespace

std::string check_plan_entry(const attnbench_plan_entry& entry, const attnbench_kv_head_view& head) {
  if (entry.kind == ATTNBENCH_PLAN_ALL) return "";
  if (entry.kind != ATTNBENCH_PLAN_BLOCKS && entry.kind != ATTNBENCH_PLAN_TOKENS)
    return "unknown kind " + std::to_string(entry.kind);
  if (entry.count > 0 && !entry.indices) return "indices is NULL";
  const std::uint64_t limit = entry.kind == ATTNBENCH_PLAN_BLOCKS ? head.n_blocks : head.n_tokens;
  thread_local seen_stamps seen;
  seen.begin(limit);
  for (std::uint32_t i = 0; i < entry.count; ++i) {
    const std::uint32_t x = entry.indices[i];
    if (x >= limit)
      return "index " + std::to_string(x) + " out of range (" + std::to_string(limit) +
             (entry.kind == ATTNBENCH_PLAN_BLOCKS ? " blocks)" : " tokens)");
    if (!seen.mark(x)) return "index " + std::to_string(x) + " listed twice";
  }
  return "";
}


std::string check_plan(const attnbench_plan& plan, const attnbench_kv_layer_view& kv, std::uint32_t n_query_heads) {
  std::uint32_t expected = 0;
  if (plan.granularity == ATTNBENCH_PLAN_PER_KV_HEAD) expected = kv.n_kv_heads;
  else if (plan.granularity == ATTNBENCH_PLAN_PER_QUERY_HEAD) expected = n_query_heads;
  else return "unknown granularity " + std::to_string(plan.granularity);
  if (plan.n_entries != expected || !plan.entries)
    return "expected " + std::to_string(expected) + " entries, got " + std::to_string(plan.n_entries);
  const std::uint32_t group = n_query_heads / kv.n_kv_heads;
  for (std::uint32_t e = 0; e < plan.n_entries; ++e) {
    const auto& head = kv.heads[plan.granularity == ATTNBENCH_PLAN_PER_KV_HEAD ? e : e / group];
    if (std::string problem = check_plan_entry(plan.entries[e], head); !problem.empty())
      return "entry " + std::to_string(e) + ": " + problem;
  }
  return "";
}

}  // namespace attnbench::kernels
