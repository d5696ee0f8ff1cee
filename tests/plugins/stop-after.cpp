// A terminator that stops every traversal after `blocks` blocks (default 1): lets the
// tests check that the kernel honours STOP and that skipped blocks are counted.
#include <attnbench/plugin-support.hpp>

namespace {
struct config {
  std::uint32_t blocks = 1;
};
attnbench_status create(const char* params, const attnbench_model_info*, void** out) {
  return attnbench::plugin::guard([&] {
    attnbench::plugin::params p(params);
    config c;
    c.blocks = static_cast<std::uint32_t>(p.integer("blocks", 1, 1, 1 << 30));
    p.finish("stop_after");
    *out = new config(c);
    return ATTNBENCH_STATUS_OK;
  });
}
void destroy(void* c) { delete static_cast<config*>(c); }
size_t state_size(const void*, std::uint32_t, std::uint32_t) { return 0; }
attnbench_status reset(const void*, void*, const attnbench_traversal_info*) { return ATTNBENCH_STATUS_OK; }
attnbench_decision check(const void* instance, void*, const attnbench_kernel_state* ks) {
  return ks->blocks_done >= static_cast<const config*>(instance)->blocks ? ATTNBENCH_STOP : ATTNBENCH_CONTINUE;
}
constexpr attnbench_terminator_ops kOps = {create, destroy, state_size, reset, check, nullptr, nullptr};
constexpr attnbench_plugin_descriptor kDescriptor = {
    ATTNBENCH_ABI_VERSION, sizeof(attnbench_plugin_descriptor), ATTNBENCH_PLUGIN_TERMINATOR, 0, "stop_after",
    "1.0.0", "stops after a fixed number of blocks (tests only)", attnbench::plugin::last_error, nullptr, &kOps};
}  // namespace

extern "C" ATTNBENCH_PLUGIN_EXPORT const attnbench_plugin_descriptor* attnbench_plugin_entry(void) {
  return &kDescriptor;
}
