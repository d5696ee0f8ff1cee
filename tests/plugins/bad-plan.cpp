// A policy that returns a block index past the end of the cache: the harness must
// reject the plan with a message naming the plugin, never read out of range.
#include <attnbench/plugin-support.hpp>

#include <vector>

namespace {
struct state {
  std::vector<attnbench_plan_entry> entries;
  std::uint32_t index = 0;
};
attnbench_status create(const char* params, const attnbench_model_info* model, void** out) {
  return attnbench::plugin::guard([&] {
    attnbench::plugin::params p(params);
    p.finish("bad_plan");
    auto* s = new state;
    s->entries.resize(model->n_kv_heads);
    *out = s;
    return ATTNBENCH_STATUS_OK;
  });
}
void destroy(void* s) { delete static_cast<state*>(s); }
attnbench_status plan(void* instance, const attnbench_plan_request* req, attnbench_plan* out) {
  auto* s = static_cast<state*>(instance);
  s->index = req->kv->heads[0].n_blocks + 7;
  for (auto& e : s->entries) e = {ATTNBENCH_PLAN_BLOCKS, 1, &s->index, nullptr};
  *out = {ATTNBENCH_PLAN_PER_KV_HEAD, static_cast<std::uint32_t>(s->entries.size()), s->entries.data()};
  return ATTNBENCH_STATUS_OK;
}
constexpr attnbench_policy_ops kOps = {create, destroy, plan, nullptr, nullptr};
constexpr attnbench_plugin_descriptor kDescriptor = {
    ATTNBENCH_ABI_VERSION, sizeof(attnbench_plugin_descriptor), ATTNBENCH_PLUGIN_POLICY, 0, "bad_plan", "1.0.0",
    "returns an out-of-range block", attnbench::plugin::last_error, &kOps, nullptr};
}  // namespace

extern "C" ATTNBENCH_PLUGIN_EXPORT const attnbench_plugin_descriptor* attnbench_plugin_entry(void) {
  return &kDescriptor;
}
