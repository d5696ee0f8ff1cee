// Errors the harness reports to users, each with the exit code `attnbench --help`
// documents. Messages name the file, JSON path or plugin so the user can act on them.
#pragma once

#include <stdexcept>
#include <string>

namespace attnbench {

enum exit_code : int {
  exit_ok = 0,
  exit_failure = 1,      // unexpected internal error
  exit_usage = 2,        // bad command line (including --set with an unknown path)
  exit_config = 3,       // config or profile file: missing, malformed, invalid value, unknown task
  exit_plugin = 4,       // plugin: not found, not a plugin, ABI mismatch, params rejected, call failed
  exit_output = 5,       // results folder not writable, or --resume on a folder that does not match
  exit_resources = 6,    // a cell needs more memory than allowed
  exit_regression = 7,   // compare: a metric regressed past its threshold
  exit_cells_failed = 8, // run: cells failed (a plugin crashed, hung or failed); the others are kept
  exit_incomplete = 9,   // merge: cells of the grid are in no folder (named); nothing written without --allow-missing
  exit_interrupted = 130 // SIGINT: finished cells are kept, --resume continues
};

struct harness_error : std::runtime_error {
  harness_error(exit_code c, const std::string& message) : std::runtime_error(message), code(c) {}
  exit_code code;
};

// "FILE: /json/pointer: message" (the pointer part is left out when empty).
struct config_error : harness_error {
  config_error(const std::string& file, const std::string& pointer, const std::string& message)
      : harness_error(exit_config, file + ": " + (pointer.empty() ? "" : pointer + ": ") + message) {}
};

struct usage_error : harness_error {
  explicit usage_error(const std::string& message) : harness_error(exit_usage, message) {}
};

struct plugin_error : harness_error {
  explicit plugin_error(const std::string& message) : harness_error(exit_plugin, message) {}
  // An operation of a loaded plugin failed: which plugin (its label) and operation.
  plugin_error(const std::string& message, std::string plugin_label, std::string operation_name)
      : harness_error(exit_plugin, message), plugin(std::move(plugin_label)), operation(std::move(operation_name)) {}
  std::string plugin, operation;
};

struct output_error : harness_error {
  explicit output_error(const std::string& message) : harness_error(exit_output, message) {}
};

struct resource_error : harness_error {
  explicit resource_error(const std::string& message) : harness_error(exit_resources, message) {}
};

}  // namespace attnbench
