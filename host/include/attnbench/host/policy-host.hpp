// What the host does with a policy's keep set after prefill, shared by the run engine
// and the plugin conformance tests. (A plan is checked once, by kernels::check_plan
// inside kernels::decode_layer.)
#pragma once

#include <attnbench/host/plugin-loader.hpp>

#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/plugin.h>

#include <cstdint>

namespace attnbench {

// Compacts each KV head of one layer to what on_prefill kept (no entries: keep all).
// Throws plugin_error naming the policy, the layer and the head for a malformed keep set.
void apply_keep_set(const policy_instance& policy, kernels::kv_cache& cache, std::uint32_t layer,
                    const attnbench_plan& keep);

}  // namespace attnbench
