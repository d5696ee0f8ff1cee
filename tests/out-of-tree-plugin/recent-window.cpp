// recent_window: attends to the last `blocks` blocks of each KV head only. A minimal
// out-of-tree policy used to test the installed headers and CMake package.
#include <attnbench/plugin-support.hpp>

#include <vector>

namespace {
struct policy {
  std::uint32_t blocks = 4;
  std::vector<std::vector<std::uint32_t>> lists;
  std::vector<attnbench_plan_entry> entries;
};
attnbench_status create(const char* params, const attnbench_model_info* model, void** out) {
  return attnbench::plugin::guard([&] {
    attnbench::plugin::params p(params);
    auto* pol = new policy;
    pol->blocks = static_cast<std::uint32_t>(p.integer("blocks", 4, 1, 1 << 20));
    p.finish("recent_window");
    pol->lists.resize(model->n_kv_heads);
    pol->entries.resize(model->n_kv_heads);
    *out = pol;
    return ATTNBENCH_STATUS_OK;
  });
}
void destroy(void* p) { delete static_cast<policy*>(p); }
attnbench_status plan(void* instance, const attnbench_plan_request* req, attnbench_plan* out) {
  auto* pol = static_cast<policy*>(instance);
  for (std::uint32_t h = 0; h < req->kv->n_kv_heads; ++h) {
    const std::uint32_t n = req->kv->heads[h].n_blocks;
    auto& list = pol->lists[h];
    list.clear();
    for (std::uint32_t b = n > pol->blocks ? n - pol->blocks : 0; b < n; ++b) list.push_back(b);
    pol->entries[h] = {ATTNBENCH_PLAN_BLOCKS, static_cast<std::uint32_t>(list.size()), list.data(), nullptr};
  }
  *out = {ATTNBENCH_PLAN_PER_KV_HEAD, req->kv->n_kv_heads, pol->entries.data()};
  return ATTNBENCH_STATUS_OK;
}
constexpr attnbench_policy_ops kOps = {create, destroy, plan, nullptr, nullptr};
constexpr attnbench_plugin_descriptor kDescriptor = {
    ATTNBENCH_ABI_VERSION, sizeof(attnbench_plugin_descriptor), ATTNBENCH_PLUGIN_POLICY, 0, "recent_window", "0.1.0",
    "the last few blocks only (out-of-tree example)", attnbench::plugin::last_error, &kOps, nullptr};
}  // namespace

extern "C" ATTNBENCH_PLUGIN_EXPORT const attnbench_plugin_descriptor* attnbench_plugin_entry(void) {
  return &kDescriptor;
}
