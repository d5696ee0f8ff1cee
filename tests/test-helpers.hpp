// Shared by every room's tests: the source and build folders, and scratch folders. (A
// run of samples through the engine is run/harness-fixture.hpp.)
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace attnbench::testing {

// True in the sanitizer build (the debug-asan preset sets ATTNBENCH_SANITIZED): there the
// heaviest tests check the same things on fewer samples, shapes or repetitions, so that
// the whole suite runs under AddressSanitizer in CI's time.
#ifdef ATTNBENCH_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

inline std::filesystem::path source_dir() { return ATTNBENCH_TEST_SOURCE_DIR; }
inline std::filesystem::path build_dir() { return ATTNBENCH_BUILD_DIR; }
inline std::filesystem::path test_plugin_dir() { return ATTNBENCH_TEST_PLUGIN_DIR; }

// configs/profiles/NAME.json of the source tree.
inline std::filesystem::path profile_file(const std::string& name) {
  return source_dir() / "configs" / "profiles" / (name + ".json");
}

// A scratch folder under the build tree, emptied first. CTest runs each test in its own
// process, in parallel: the pid keeps their folders apart.
inline std::filesystem::path scratch(const std::string& name) {
  const auto dir = build_dir() / "test-scratch" / (name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace attnbench::testing
