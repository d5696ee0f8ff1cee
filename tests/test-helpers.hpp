// Shared helpers for the tests: paths of the build, and a dense run of one sample on
// a profile through the real plugin and runner.
#pragma once

#include "config.hpp"
#include "model.hpp"
#include "plugin-loader.hpp"
#include "runner.hpp"

#include <attnbench/tasks/task.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

namespace attnbench::testing {

inline std::filesystem::path source_dir() { return ATTNBENCH_TEST_SOURCE_DIR; }
inline std::filesystem::path build_dir() { return ATTNBENCH_BUILD_DIR; }
inline std::filesystem::path test_plugin_dir() { return ATTNBENCH_TEST_PLUGIN_DIR; }

inline model_profile profile(const std::string& name) {
  return load_profile(source_dir() / "configs" / "profiles" / (name + ".json"));
}

// A scratch folder under the build tree, emptied first. CTest runs each test in its own
// process, in parallel: the pid keeps their folders apart.
inline std::filesystem::path scratch(const std::string& name) {
  const auto dir = build_dir() / "test-scratch" / (name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Runs samples through a policy plugin found in the build folder.
class harness_fixture {
 public:
  explicit harness_fixture(const std::string& profile_name, const std::string& policy = "dense",
                           nlohmann::json params = nlohmann::json::object())
      : registry_({build_dir(), test_plugin_dir()}), model_(testing::profile(profile_name), 1) {
    config_.dtype = ATTNBENCH_DTYPE_FP16;
    config_.block_size = 64;
    library_ = registry_.find(policy, ATTNBENCH_PLUGIN_POLICY);
    policy_ = std::make_unique<policy_instance>(library_, params, model_info(config_, model_.profile()));
  }
  // Returns the sample's row (prediction, score, ...).
  nlohmann::ordered_json run(const tasks::task& task, const tasks::sample& s, const terminator_instance* t = nullptr) {
    const run_inputs in{config_, model_, plugins_, 0.0};
    totals_ = {};
    return run_sample(in, task, s, *policy_, t, totals_);
  }
  const cell_totals& totals() const { return totals_; }
  const synthetic_model& model() const { return model_; }
  plugin_registry& registry() { return registry_; }
  const run_config& config() const { return config_; }

 private:
  plugin_registry registry_;
  synthetic_model model_;
  run_config config_;
  resolved_plugins plugins_;
  std::shared_ptr<plugin_library> library_;
  std::unique_ptr<policy_instance> policy_;
  cell_totals totals_;
};

}  // namespace attnbench::testing
