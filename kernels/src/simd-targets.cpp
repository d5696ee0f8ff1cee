// Which SIMD target the kernels use: Highway's list for this CPU, and pinning one (or
// the plain C++ scalar path) for tests and benchmarks.
#include <attnbench/kernels/simd.hpp>

#include "decode-internal.hpp"
#include "read-internal.hpp"

#include <hwy/targets.h>

#include <algorithm>

namespace attnbench::kernels {

std::vector<std::string> available_targets() {
  // Computed once, before any target is pinned (pinning narrows Highway's list).
  static const std::vector<std::string> list = [] {
    detail::note_cpu_targets();  // the read ceiling's reader keeps the CPU's best target
    std::vector<std::string> out;
    for (const std::int64_t t : hwy::SupportedAndGeneratedTargets()) out.emplace_back(hwy::TargetName(t));
    out.emplace_back("scalar");
    return out;
  }();
  return list;
}

namespace {
std::string g_pinned = "auto";
}

std::string current_target() {
  if (g_pinned != "auto") return g_pinned;
  return available_targets().front();
}

bool set_target(std::string_view name) {
  const auto targets = available_targets();
  if (name != "auto" && std::find(targets.begin(), targets.end(), name) == targets.end()) return false;
  hwy::SetSupportedTargetsForTest(0);
  if (name != "auto" && name != "scalar") {
    for (const std::int64_t t : hwy::SupportedAndGeneratedTargets())
      if (name == hwy::TargetName(t)) hwy::SetSupportedTargetsForTest(t);
  }
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  detail::force_scalar(name == "scalar");
  g_pinned = std::string(name);
  return true;
}

}  // namespace attnbench::kernels
