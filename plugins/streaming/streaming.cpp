// streaming: StreamingLLM (Xiao et al., arXiv 2309.17453). Every head attends to the
// first n_sink tokens (the attention sinks) and the last `window` tokens; with `evict`
// the prompt's other tokens leave the cache after prefill, as in the paper's rolling
// cache, so kv_bytes_resident shows the saving. The paper keeps 4 sink tokens; its
// cache sizes run from 256 to 4096, so the default window (2044) makes 2048 tokens in all.
// Tokens generated during decode stay in the cache; plans keep to the last `window`.
#include <attnbench/plugin-support.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace {

using attnbench::plugin::fail;
using attnbench::plugin::guard;

struct streaming_policy {
  std::uint64_t n_sink = 4;
  std::uint64_t window = 2044;
  bool evict = true;
  std::uint32_t n_kv_heads = 0;
  std::vector<std::uint32_t> indices;  // [n_kv_heads][...]: per head, its plan
  std::vector<attnbench_plan_entry> entries;

  // Fills one entry per KV head: the first n_sink and the last `window` cache tokens
  // (cache order is sequence order, also after eviction), or ALL when that is every token.
  void fill(const attnbench_kv_layer_view& kv) {
    entries.assign(n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
    std::size_t total = 0;
    for (std::uint32_t h = 0; h < n_kv_heads; ++h) {
      const std::uint64_t n = kv.heads[h].n_tokens;
      if (n > n_sink + window) total += n_sink + window;
    }
    indices.resize(total);
    std::size_t at = 0;
    for (std::uint32_t h = 0; h < n_kv_heads; ++h) {
      const std::uint64_t n = kv.heads[h].n_tokens;
      if (n <= n_sink + window) continue;
      std::uint32_t* out = indices.data() + at;
      std::uint32_t k = 0;
      for (std::uint64_t t = 0; t < n_sink; ++t) out[k++] = static_cast<std::uint32_t>(t);
      for (std::uint64_t t = n - window; t < n; ++t) out[k++] = static_cast<std::uint32_t>(t);
      entries[h] = attnbench_plan_entry{ATTNBENCH_PLAN_TOKENS, k, out, nullptr};
      at += k;
    }
  }
};

attnbench_status streaming_create(const char* params_json, const attnbench_model_info* model, void** out) {
  return guard([&] {
    attnbench::plugin::params params(params_json);
    auto p = std::make_unique<streaming_policy>();
    p->n_sink = static_cast<std::uint64_t>(params.integer("n_sink", 4, 0, 1 << 30));
    p->window = static_cast<std::uint64_t>(params.integer("window", 2044, 1, 1 << 30));
    p->evict = params.boolean("evict", true);
    params.finish("streaming");
    p->n_kv_heads = model->n_kv_heads;
    *out = p.release();
    return ATTNBENCH_STATUS_OK;
  });
}

void streaming_destroy(void* instance) { delete static_cast<streaming_policy*>(instance); }

attnbench_status streaming_plan(void* instance, const attnbench_plan_request* request, attnbench_plan* out) {
  return guard([&] {
    auto* p = static_cast<streaming_policy*>(instance);
    if (request->kv->n_kv_heads != p->n_kv_heads)
      return fail(ATTNBENCH_STATUS_INVALID_ARGUMENT, "KV head count differs from the model given to create");
    p->fill(*request->kv);
    *out = attnbench_plan{ATTNBENCH_PLAN_PER_KV_HEAD, p->n_kv_heads, p->entries.data()};
    return ATTNBENCH_STATUS_OK;
  });
}

attnbench_status streaming_on_prefill(void* instance, const attnbench_prefill_request* request,
                                      attnbench_plan* out_keep) {
  return guard([&] {
    auto* p = static_cast<streaming_policy*>(instance);
    if (request->kv->n_kv_heads != p->n_kv_heads)
      return fail(ATTNBENCH_STATUS_INVALID_ARGUMENT, "KV head count differs from the model given to create");
    if (p->evict) {
      p->fill(*request->kv);  // the keep set is what the first step would plan
    } else {
      p->entries.assign(p->n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
    }
    *out_keep = attnbench_plan{ATTNBENCH_PLAN_PER_KV_HEAD, p->n_kv_heads, p->entries.data()};
    return ATTNBENCH_STATUS_OK;
  });
}

constexpr attnbench_policy_ops kOps = {
    /*create=*/streaming_create,
    /*destroy=*/streaming_destroy,
    /*plan=*/streaming_plan,
    /*on_prefill=*/streaming_on_prefill,
    /*stats_json=*/nullptr,
};

constexpr auto kDescriptor = attnbench::plugin::policy_descriptor(
    "streaming", "1.0.0",
    "StreamingLLM: the first n_sink tokens and the last window tokens", &kOps);

}  // namespace

ATTNBENCH_PLUGIN_ENTRY(kDescriptor)
