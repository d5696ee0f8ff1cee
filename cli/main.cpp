// attnbench: the command-line entry point. Each subcommand's options and body live in
// run.cpp, model.cpp, results.cpp and list.cpp; exit codes are documented in --help and
// in host/errors.hpp.
#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/host/spelling.hpp>
#include <attnbench/run/engine.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <new>
#include <cstdlib>

using namespace attnbench;

namespace {

void on_sigint(int) {
  if (g_interrupt_requested.exchange(true)) std::_Exit(exit_interrupted);  // second Ctrl-C: leave now
}

// The first word that is neither an option nor an option's value must name a
// subcommand; CLI11 alone would say "A subcommand is required" without naming it.
void check_subcommand_word(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--plugin-path") {
      ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;
    std::string known;
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->get_name() == arg) return;
      known += (known.empty() ? "" : ", ") + sub->get_name();
      names.push_back(sub->get_name());
    }
    throw usage_error("unknown subcommand '" + arg + "'" + did_you_mean(arg, names) + " (known: " + known +
                      "; attnbench --help lists them)");
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("attnbench");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^[%l]%$ %v");

  CLI::App app{"attnbench: accuracy, KV skipped and decode speed of long-context attention policies"};
  app.footer(cli::kExitCodes);
  app.set_version_flag("--version", ATTNBENCH_VERSION);
  app.require_subcommand(1);
  int verbosity = 0;
  bool quiet = false;
  cli::global_options global;
  app.add_flag("-v,--verbose", verbosity, "More log output on stderr (-vv for trace)");
  app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");
  app.add_option("--plugin-path", global.plugin_paths,
                 "Folder to search for attnbench-plugin-*.so before ATTNBENCH_PLUGIN_PATH and the executable's folder")
      ->type_name("DIR");
  std::vector<cli::registered_command> commands;
  cli::add_run_commands(app, commands);
  cli::add_model_commands(app, commands);
  cli::add_results_commands(app, commands);
  cli::add_list_command(app, commands);
  cli::add_probe_command(app, commands);
  cli::add_corpus_command(app, commands);
  cli::add_sweep_command(app, commands);

  try {
    check_subcommand_word(app, argc, argv);
    app.parse(argc, argv);
  } catch (const usage_error& e) {
    spdlog::error("{}", e.what());
    return exit_usage;
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? exit_ok : exit_usage;
  }
  spdlog::set_level(quiet ? spdlog::level::warn
                          : verbosity >= 2 ? spdlog::level::trace
                          : verbosity == 1 ? spdlog::level::debug
                                           : spdlog::level::info);
  std::signal(SIGINT, on_sigint);
  try {
    for (const auto& c : commands)
      if (*c.app) return c.run(global);
  } catch (const harness_error& e) {
    spdlog::error("{}", e.what());
    return e.code;
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory (the machine's memory, the address-space limit or the cgroup's memory limit); "
                  "use shorter context_lengths, a smaller profile or batch, or raise the limit");
    return exit_resources;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return exit_failure;
  }
  return exit_failure;
}
