#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/model/mechanistic.hpp>
#include <attnbench/model/profile.hpp>
#include <attnbench/model/trained.hpp>
#include <attnbench/run/memory.hpp>

#include <cmath>
#include <cstdio>
#include <ctime>

namespace attnbench::cli {

const char* const kExitCodes =
    "Exit codes:\n"
    "  0    success\n"
    "  1    unexpected internal error\n"
    "  2    bad command line, including --set with an unknown path\n"
    "  3    config, profile, model weights or results file error: missing, not a regular file, too\n"
    "       large or deep, malformed JSON, wrong type or value, unknown task, unknown results schema\n"
    "       version, a weights file whose tensors do not fit the model's config\n"
    "  4    plugin error: not found, not a plugin, unsafe file or folder, wrong ABI version, params rejected\n"
    "  5    output error: folder not writable, in use by another run, would overwrite results,\n"
    "       or --resume that does not match\n"
    "  6    not enough memory for a cell (memory available, address-space or cgroup limit)\n"
    "  7    compare: a metric regressed past its threshold\n"
    "  8    run: some cells failed (a plugin crashed, hung past --cell-timeout or returned an error);\n"
    "       the other cells finished and are kept; --resume runs the failed ones again\n"
    "  9    merge: cells of the grid are in none of the folders (named); nothing is written unless\n"
    "       --allow-missing. sweep: a sbatch job was not accepted\n"
    "  130  interrupted (Ctrl-C); finished cells are kept, continue with --resume\n";

CLI::Validator finite_in(double min, double max, bool min_exclusive) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double x = 0;
        std::size_t used = 0;
        try {
          x = std::stod(text, &used);
        } catch (const std::exception&) {
          return "expected a number, got '" + text + "'";
        }
        if (used != text.size() || !std::isfinite(x)) return "expected a finite number, got '" + text + "'";
        if (x < min || x > max || (min_exclusive && x == min)) {
          char buf[128];
          std::snprintf(buf, sizeof buf, "expected a number in %s%g, %g], got '%s'", min_exclusive ? "(" : "[", min, max,
                        text.c_str());
          return buf;
        }
        return "";
      },
      "");
}

void add_config_options(CLI::App* sub, config_options& o, const std::string& what) {
  sub->add_option("config", o.file, what)->required()->type_name("CONFIG");
  sub->add_option("--set", o.sets, "Override a config value: a dotted path and a JSON value, e.g. --set samples=20")
      ->type_name("PATH=VALUE");
}

run_config load_run_config(const config_options& o) { return load_config(o.file, config_task_rules(), o.sets); }

std::unique_ptr<model> load_model(const run_config& config) {
  if (config.model_kind == "trained") return std::make_unique<trained_model>(resolve_weights_path(config));
  return std::make_unique<mechanistic_model>(load_profile(resolve_profile_path(config)), config.model_seed);
}

loaded_run load_everything(const config_options& o, plugin_registry& registry) {
  loaded_run run{load_run_config(o), nullptr, {}};
  run.model = load_model(run.config);
  run.plugins = resolve_plugins(run.config, run.model->shape(), registry);
  check_memory(run.config, run.model->shape());
  return run;
}

std::unique_ptr<tasks::task> find_task(const run_config& config, const std::string& wanted, std::string& name) {
  name = wanted.empty() ? config.tasks.front().name : wanted;
  nlohmann::json params = nlohmann::json::object();
  for (const auto& t : config.tasks)
    if (t.name == name || t.label == name) name = t.name, params = t.params;
  try {
    return tasks::make_task(name, params);
  } catch (const std::out_of_range&) {
    throw usage_error("--task: unknown task '" + name + "' (attnbench list shows the tasks)");
  }
}

std::uint32_t context_length(const tasks::task& task, const std::string& name, std::uint32_t wanted,
                             std::uint32_t fallback) {
  const std::uint32_t length = wanted ? wanted : fallback;
  if (length < task.min_context_length())
    throw usage_error("--length: " + name + " needs at least " + std::to_string(task.min_context_length()) +
                      " tokens, got " + std::to_string(length));
  return length;
}

}  // namespace attnbench::cli
