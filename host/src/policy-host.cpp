#include <attnbench/host/policy-host.hpp>

#include <stdexcept>

namespace attnbench {

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
