// A plugin built for another ABI version: the loader must refuse it and name both
// numbers. Only abi_version and struct_size are meaningful; the rest is never read.
#include <attnbench/plugin.h>

namespace {
const attnbench_plugin_descriptor kDescriptor = {
    /*abi_version=*/999, /*struct_size=*/sizeof(attnbench_plugin_descriptor), /*kind=*/ATTNBENCH_PLUGIN_POLICY,
    /*reserved=*/0, "other_abi", "1.0.0", "built for ABI 999", nullptr, nullptr, nullptr};
}

extern "C" ATTNBENCH_PLUGIN_EXPORT const attnbench_plugin_descriptor* attnbench_plugin_entry(void) {
  return &kDescriptor;
}
