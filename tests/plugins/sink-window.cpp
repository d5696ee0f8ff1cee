// A policy for the model's validation tests: every KV head attends to the first
// sink_blocks blocks and the last window_blocks blocks only (StreamingLLM's shape). A
// needle outside both must be lost; one inside either must be found.
#include <attnbench/plugin-support.hpp>

#include <algorithm>
#include <vector>

namespace {
struct state {
  std::uint32_t sink = 1, window = 4;
  std::vector<std::vector<std::uint32_t>> blocks;
  std::vector<attnbench_plan_entry> entries;
};
attnbench_status create(const char* params, const attnbench_model_info* model, void** out) {
  return attnbench::plugin::guard([&] {
    attnbench::plugin::params p(params);
    auto* s = new state;
    s->sink = static_cast<std::uint32_t>(p.integer("sink_blocks", 1, 0, 1 << 20));
    s->window = static_cast<std::uint32_t>(p.integer("window_blocks", 4, 1, 1 << 20));
    p.finish("sink_window");
    s->blocks.resize(model->n_kv_heads);
    s->entries.resize(model->n_kv_heads);
    *out = s;
    return ATTNBENCH_STATUS_OK;
  });
}
void destroy(void* s) { delete static_cast<state*>(s); }
attnbench_status plan(void* instance, const attnbench_plan_request* req, attnbench_plan* out) {
  auto* s = static_cast<state*>(instance);
  for (std::uint32_t h = 0; h < s->entries.size(); ++h) {
    const std::uint32_t n = req->kv->heads[h].n_blocks;
    auto& b = s->blocks[h];
    b.clear();
    for (std::uint32_t i = 0; i < n; ++i)
      if (i < s->sink || i + s->window >= n) b.push_back(i);
    s->entries[h] = {ATTNBENCH_PLAN_BLOCKS, static_cast<std::uint32_t>(b.size()), b.data(), nullptr};
  }
  *out = {ATTNBENCH_PLAN_PER_KV_HEAD, static_cast<std::uint32_t>(s->entries.size()), s->entries.data()};
  return ATTNBENCH_STATUS_OK;
}
constexpr attnbench_policy_ops kOps = {create, destroy, plan, nullptr, nullptr};
constexpr attnbench_plugin_descriptor kDescriptor = {
    ATTNBENCH_ABI_VERSION, sizeof(attnbench_plugin_descriptor), ATTNBENCH_PLUGIN_POLICY, 0, "sink_window", "1.0.0",
    "first blocks and a recent window only (tests)", attnbench::plugin::last_error, &kOps, nullptr};
}  // namespace

extern "C" ATTNBENCH_PLUGIN_EXPORT const attnbench_plugin_descriptor* attnbench_plugin_entry(void) {
  return &kDescriptor;
}
