#include "policy-host.hpp"

#include <algorithm>
#include <stdexcept>

namespace attnbench {

void seen_stamps::begin(std::uint64_t size) {
  if (stamp.size() < size) stamp.resize(size, 0);
  if (++current == 0) {  // wrapped: clear once every 2^32 entries
    std::fill(stamp.begin(), stamp.end(), 0);
    current = 1;
  }
}

bool seen_stamps::mark(std::uint32_t i) {
  if (stamp[i] == current) return false;
  stamp[i] = current;
  return true;
}

std::string check_plan(const attnbench_plan& plan, const attnbench_kv_layer_view& kv, std::uint32_t n_query_heads,
                       seen_stamps& seen) {
  std::uint32_t expected = 0;
  if (plan.granularity == ATTNBENCH_PLAN_PER_KV_HEAD) expected = kv.n_kv_heads;
  else if (plan.granularity == ATTNBENCH_PLAN_PER_QUERY_HEAD) expected = n_query_heads;
  else return "unknown granularity " + std::to_string(plan.granularity);
  if (plan.n_entries != expected || !plan.entries)
    return "expected " + std::to_string(expected) + " entries, got " + std::to_string(plan.n_entries);
  const std::uint32_t group = n_query_heads / kv.n_kv_heads;
  for (std::uint32_t e = 0; e < plan.n_entries; ++e) {
    const auto& entry = plan.entries[e];
    const auto& head = kv.heads[plan.granularity == ATTNBENCH_PLAN_PER_KV_HEAD ? e : e / group];
    if (entry.kind == ATTNBENCH_PLAN_ALL) continue;
    if (entry.kind != ATTNBENCH_PLAN_BLOCKS && entry.kind != ATTNBENCH_PLAN_TOKENS)
      return "entry " + std::to_string(e) + ": unknown kind " + std::to_string(entry.kind);
    if (entry.count > 0 && !entry.indices) return "entry " + std::to_string(e) + ": indices is NULL";
    const std::uint64_t limit = entry.kind == ATTNBENCH_PLAN_BLOCKS ? head.n_blocks : head.n_tokens;
    seen.begin(limit);
    for (std::uint32_t i = 0; i < entry.count; ++i) {
      const std::uint32_t x = entry.indices[i];
      if (x >= limit)
        return "entry " + std::to_string(e) + ": index " + std::to_string(x) + " out of range (" +
               std::to_string(limit) + (entry.kind == ATTNBENCH_PLAN_BLOCKS ? " blocks)" : " tokens)");
      if (!seen.mark(x)) return "entry " + std::to_string(e) + ": index " + std::to_string(x) + " listed twice";
    }
  }
  return "";
}

void apply_keep_set(const policy_instance& policy, kernels::kv_cache& cache, std::uint32_t layer,
                    const attnbench_plan& keep) {
  const std::uint32_t hkv = cache.layer_view(layer).n_kv_heads;
  if (keep.n_entries == 0) return;
  if (keep.n_entries != hkv || !keep.entries)
    throw plugin_error(policy.library().label() + ": on_prefill returned " + std::to_string(keep.n_entries) +
                       " keep entries, expected one per KV head (" + std::to_string(hkv) + ")");
  for (std::uint32_t h = 0; h < hkv; ++h) {
    const auto& e = keep.entries[h];
    if (e.kind == ATTNBENCH_PLAN_ALL) continue;
    if (e.kind != ATTNBENCH_PLAN_TOKENS)
      throw plugin_error(policy.library().label() + ": on_prefill keep entries must be ALL or TOKENS");
    if (e.count > 0 && !e.indices)
      throw plugin_error(policy.library().label() + ": on_prefill keep entry for layer " + std::to_string(layer) +
                         ", KV head " + std::to_string(h) + " has " + std::to_string(e.count) +
                         " tokens but indices is NULL");
    try {
      cache.compact(layer, h, e.indices, e.count);
    } catch (const std::invalid_argument& err) {
      throw plugin_error(policy.library().label() + ": on_prefill keep set for layer " + std::to_string(layer) +
                         ", KV head " + std::to_string(h) + ": " + err.what());
    }
  }
}

}  // namespace attnbench
