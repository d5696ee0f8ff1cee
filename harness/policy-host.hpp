// What the host does with a policy's answers, shared by the runner and the plugin
// conformance tests: checking a plan against the cache, and applying a keep set.
#pragma once

#include "plugin-loader.hpp"

#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/plugin.h>

#include <cstdint>
#include <string>
#include <vector>

namespace attnbench {

// `seen` holds a stamp per index; an index is a duplicate when it already carries this
// entry's stamp, so nothing is cleared between entries or steps.
struct seen_stamps {
  std::vector<std::uint32_t> stamp;
  std::uint32_t current = 0;
  void begin(std::uint64_t size);
  bool mark(std::uint32_t i);
};

// Checks a plan against the cache before the kernel sees it; returns "" or the problem.
std::string check_plan(const attnbench_plan& plan, const attnbench_kv_layer_view& kv, std::uint32_t n_query_heads,
                       seen_stamps& seen);

// Compacts each KV head of one layer to what on_prefill kept (no entries: keep all).
// Throws plugin_error naming the policy, the layer and the head for a malformed keep set.
void apply_keep_set(const policy_instance& policy, kernels::kv_cache& cache, std::uint32_t layer,
                    const attnbench_plan& keep);

}  // namespace attnbench
