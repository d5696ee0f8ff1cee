// Which instruction set the kernels use. By default the best one the CPU supports
// (AVX-512, AVX2, SSE4, ... through Highway's runtime dispatch); tests and benchmarks
// can pin one, including "scalar" (plain C++, no Highway).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace attnbench::kernels {

// Targets this binary has code for and this CPU can run, best first, then "scalar".
std::vector<std::string> available_targets();
// The target in use now: a Highway target name (e.g. "AVX3") or "scalar".
std::string current_target();
// Pins a target from available_targets(), or "auto" for the best. Returns false for a
// name that is not available. Not thread-safe: call it before starting work.
bool set_target(std::string_view name);

}  // namespace attnbench::kernels
