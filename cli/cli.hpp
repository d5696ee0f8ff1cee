// The attnbench command line: CLI11 wiring only. Each subcommand is one add_*_command
// function that declares its options and returns the function that runs it.
#pragma once

#include <attnbench/host/clock.hpp>
#include <attnbench/host/config.hpp>
#include <attnbench/host/plugin-loader.hpp>
#include <attnbench/model/model.hpp>
#include <attnbench/run/plugins.hpp>
#include <attnbench/tasks/task.hpp>

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#ifndef ATTNBENCH_VERSION
#define ATTNBENCH_VERSION "0.0.0"
#endif

namespace attnbench::cli {

extern const char* const kExitCodes;

// Options every subcommand may read (given before the subcommand).
struct global_options {
  std::vector<std::string> plugin_paths;
};

// A subcommand's body, run when it was chosen; returns the exit code.
using command = std::function<int(const global_options&)>;
struct registered_command {
  CLI::App* app;
  command run;
};

// A number option's check: a finite number in [min, max] (or (min, max] with
// min_exclusive); NaN and infinities are refused with the option named (exit 2).
CLI::Validator finite_in(double min, double max, bool min_exclusive = false);
inline const CLI::Validator finite_positive = finite_in(0.0, 1e9, /*min_exclusive=*/true);

// A config positional and --set, as run, validate, stats, dump-kv and calibrate take them.
struct config_options {
  std::string file;
  std::vector<std::string> sets;
};
void add_config_options(CLI::App* sub, config_options& o, const std::string& what);

// The config, the model it names and (for commands that run policies) its plugins.
struct loaded_run {
  run_config config;
  std::unique_ptr<attnbench::model> model;
  resolved_plugins plugins;
};
run_config load_run_config(const config_options& o);
std::unique_ptr<model> load_model(const run_config& config);
// Config, model, plugins and the memory check.
loaded_run load_everything(const config_options& o, plugin_registry& registry);

// The task named by --task (a config task's name or label, or any task), else the
// config's first; name receives the task's name. Throws usage_error for an unknown task.
std::unique_ptr<tasks::task> find_task(const run_config& config, const std::string& wanted, std::string& name);
// --length, or the fallback, checked against the task's smallest length.
std::uint32_t context_length(const tasks::task& task, const std::string& name, std::uint32_t wanted,
                             std::uint32_t fallback);


void add_run_commands(CLI::App& app, std::vector<registered_command>& commands);      // run, validate
void add_model_commands(CLI::App& app, std::vector<registered_command>& commands);    // stats, dump-kv, calibrate
void add_results_commands(CLI::App& app, std::vector<registered_command>& commands);  // report, merge, compare
void add_list_command(CLI::App& app, std::vector<registered_command>& commands);      // list
void add_probe_command(CLI::App& app, std::vector<registered_command>& commands);     // probe
void add_corpus_command(CLI::App& app, std::vector<registered_command>& commands);    // corpus
void add_sweep_command(CLI::App& app, std::vector<registered_command>& commands);     // sweep (Slurm)

}  // namespace attnbench::cli
