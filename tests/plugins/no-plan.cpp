// A policy descriptor whose required plan function is missing.
#include <attnbench/plugin-support.hpp>

namespace {
attnbench_status create(const char*, const attnbench_model_info*, void** out) {
  *out = nullptr;
  return ATTNBENCH_STATUS_OK;
}
void destroy(void*) {}
constexpr attnbench_policy_ops kOps = {create, destroy, /*plan=*/nullptr, nullptr, nullptr};
constexpr attnbench_plugin_descriptor kDescriptor = {
    ATTNBENCH_ABI_VERSION, sizeof(attnbench_plugin_descriptor), ATTNBENCH_PLUGIN_POLICY, 0, "no_plan", "1.0.0",
    "policy without plan", attnbench::plugin::last_error, &kOps, nullptr};
}  // namespace

extern "C" ATTNBENCH_PLUGIN_EXPORT const attnbench_plugin_descriptor* attnbench_plugin_entry(void) {
  return &kDescriptor;
}
