// dense: every query head attends to every cached token, in cache order. The baseline
// every other policy is measured against; its plan is one ALL entry per KV head.
#include <attnbench/plugin-support.hpp>

#include <vector>

namespace {

using attnbench::plugin::guard;

struct dense_policy {
  std::vector<attnbench_plan_entry> entries;
};

attnbench_status dense_create(const char* params_json, const attnbench_model_info* model, void** out) {
  return guard([&] {
    attnbench::plugin::params params(params_json);
    params.finish("dense");
    auto* p = new dense_policy;
    p->entries.assign(model->n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
    *out = p;
    return ATTNBENCH_STATUS_OK;
  });
}

void dense_destroy(void* instance) { delete static_cast<dense_policy*>(instance); }

attnbench_status dense_plan(void* instance, const attnbench_plan_request* request, attnbench_plan* out) {
  auto* p = static_cast<dense_policy*>(instance);
  if (request->kv->n_kv_heads != p->entries.size())
    return attnbench::plugin::fail(ATTNBENCH_STATUS_INVALID_ARGUMENT, "KV head count differs from the model given to create");
  out->granularity = ATTNBENCH_PLAN_PER_KV_HEAD;
  out->n_entries = static_cast<std::uint32_t>(p->entries.size());
  out->entries = p->entries.data();
  return ATTNBENCH_STATUS_OK;
}

constexpr attnbench_policy_ops kOps = {
    /*create=*/dense_create,
    /*destroy=*/dense_destroy,
    /*plan=*/dense_plan,
    /*on_prefill=*/nullptr,
    /*stats_json=*/nullptr,
};

constexpr auto kDescriptor = attnbench::plugin::policy_descriptor(
    "dense", "1.0.0",
    "full attention over every cached token (the baseline)", &kOps);

}  // namespace

ATTNBENCH_PLUGIN_ENTRY(kDescriptor)
