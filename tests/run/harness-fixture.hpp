// A dense (or any policy's) run of one sample on a profile of the mechanistic model,
// through the real plugin and the run engine.
#pragma once

#include "../test-helpers.hpp"

#include <attnbench/host/config.hpp>
#include <attnbench/host/plugin-loader.hpp>
#include <attnbench/model/mechanistic.hpp>
#include <attnbench/run/engine.hpp>

#include <attnbench/tasks/task.hpp>

namespace attnbench::testing {

// Runs samples through a policy plugin found in the build folder.
class harness_fixture {
 public:
  explicit harness_fixture(const std::string& profile_name, const std::string& policy = "dense",
                           nlohmann::json params = nlohmann::json::object())
      : registry_({build_dir(), test_plugin_dir()}), model_(load_profile(profile_file(profile_name)), 1) {
    config_.dtype = ATTNBENCH_DTYPE_FP16;
    config_.block_size = 64;
    library_ = registry_.find(policy, ATTNBENCH_PLUGIN_POLICY);
    policy_ = std::make_unique<policy_instance>(library_, params, model_info(config_, model_.shape()));
  }
  // Returns the sample's row (prediction, score, ...); totals() are this sample's, or with
  // accumulate every sample's since the last run without it.
  nlohmann::ordered_json run(const tasks::task& task, const tasks::sample& s, const terminator_instance* t = nullptr,
                             bool accumulate = false) {
    const run_inputs in{config_, model_, plugins_, 0.0};
    if (!accumulate) totals_ = {};
    return run_sample(in, task, s, *policy_, t, totals_);
  }
  const cell_totals& totals() const { return totals_; }
  const mechanistic_model& model() const { return model_; }
  plugin_registry& registry() { return registry_; }
  const run_config& config() const { return config_; }
  void set_fidelity(bool on) { config_.fidelity = on; }

 private:
  plugin_registry registry_;
  mechanistic_model model_;
  run_config config_;
  resolved_plugins plugins_;
  std::shared_ptr<plugin_library> library_;
  std::unique_ptr<policy_instance> policy_;
  cell_totals totals_;
};

}  // namespace attnbench::testing
