// Run configs: JSON files describing a grid of tasks x context lengths x policies x
// terminators x seeds, and the model to run them on. docs/config.md documents every
// field. load_config validates, fills defaults and applies --set overrides; the result
// carries the full resolved JSON, which goes into results.json.
#pragma once

#include <attnbench/plugin.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace attnbench {

struct task_spec {
  std::string name;
  std::string label;  // unique in the config; names the cell axis value
  nlohmann::json params;
};

struct plugin_spec {
  std::string name;   // plugin name, e.g. "dense"
  std::string label;  // unique in the config; names the cell axis value
  nlohmann::json params;
  std::string plugin_file;  // explicit file; empty: found by name on the search path
};

struct run_config {
  std::filesystem::path file;
  nlohmann::json resolved;  // every field, defaults filled in
  std::string name;
  std::string model_kind = "mechanistic";  // or "trained"
  std::string profile;  // mechanistic: a profile name or a path to a profile file
  std::string weights;  // trained: the model's folder (config.json and safetensors weights)
  attnbench_dtype dtype = ATTNBENCH_DTYPE_FP16;
  std::uint32_t block_size = 64;
  std::uint64_t model_seed = 1;
  std::vector<task_spec> tasks;
  std::vector<std::uint32_t> context_lengths;
  std::vector<plugin_spec> policies;
  std::vector<plugin_spec> terminators;
  std::vector<std::uint64_t> seeds;
  std::uint32_t samples = 10;
  std::uint32_t batch = 1;          // sequences decoded together, each with its own cache
  std::uint32_t threads = 0;        // 0: all cores
  double memory_limit_gib = 0;      // 0: the machine's available memory
  bool fidelity = false;            // metrics.fidelity: dense attention beside the policy's, per step
};

// What a config's tasks are checked against. host/ knows no tasks (tasks/ is not its to
// include); run/'s config_task_rules() fills this from the task registry.
struct task_rules {
  struct verdict {
    bool known = false;           // false: no task of that name
    std::string params_pointer;   // JSON pointer inside params where problem lies
    std::string problem;          // a params problem, or ""
    std::uint32_t min_context_length = 0;
  };
  std::function<verdict(const std::string& name, const nlohmann::json& params)> check;
  std::vector<std::string> names;  // every known task, for messages
};

// The most cells a config's grid may have (tasks x context lengths x policies x
// terminators x seeds); a larger one is a config error.
inline constexpr std::uint64_t kMaxGridCells = 1'000'000;

// Reads, validates and resolves a config; each override is "dotted.path=value" where the
// value is JSON or else a plain string. Throws config_error (file, JSON path) or
// usage_error (an override with an unknown path).
run_config load_config(const std::filesystem::path& file, const task_rules& rules,
                       const std::vector<std::string>& overrides = {});
// The same from the file's text; `file` names it in messages and anchors relative paths.
run_config load_config_text(std::string_view text, const std::filesystem::path& file, const task_rules& rules,
                            const std::vector<std::string>& overrides = {});

// Where a profile named in a config is looked for: a path if it contains '/' or ends in
// .json; else NAME.json in <config dir>/profiles, then in each of profile_dirs().
std::filesystem::path resolve_profile_path(const run_config& config);

// A trained model's folder: the path as given when absolute; else under the config's
// folder, the working directory and each of data_dirs(), the first that holds config.json. Throws config_error (/model/weights) naming where it looked.
std::filesystem::path resolve_weights_path(const run_config& config);

// The folders that hold attnbench's data (configs/, models/), searched in this order:
// the executable's folder, the source tree it was built from, EXE/../share/attnbench (an
// install moved to another prefix) and the share folder it was installed to.
std::vector<std::filesystem::path> data_dirs();
// Each data folder's configs/profiles: where named profiles are found after the config's
// own profiles/ folder. A profile that is not found names every folder tried.
std::vector<std::filesystem::path> profile_dirs();

}  // namespace attnbench
