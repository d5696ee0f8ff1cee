// The plugins a config names, loaded once and checked (each created once with its
// params) before any cell runs.
#pragma once

#include <attnbench/host/config.hpp>
#include <attnbench/host/plugin-loader.hpp>
#include <attnbench/model/model.hpp>

#include <memory>
#include <vector>

namespace attnbench {

struct resolved_plugins {
  std::vector<std::shared_ptr<plugin_library>> policies;     // parallel to config.policies
  std::vector<std::shared_ptr<plugin_library>> terminators;  // null for "none"
  nlohmann::json info() const;  // for results meta
};

// What plugins are told of the model: its shape and the config's cache settings.
attnbench_model_info model_info(const run_config& config, const model_shape& shape);

// Loads every plugin the config names and creates one instance of each with its params.
// Throws plugin_error naming the config entry.
resolved_plugins resolve_plugins(const run_config& config, const model_shape& shape, plugin_registry& registry);

// The task registry's answers for load_config (tasks/ through run/, host knows no tasks).
task_rules config_task_rules();

}  // namespace attnbench
