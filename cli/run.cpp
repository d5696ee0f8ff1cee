// run and validate.
#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/host/machine.hpp>
#include <attnbench/host/spelling.hpp>
#include <attnbench/report/results.hpp>
#include <attnbench/report/summary.hpp>
#include <attnbench/report/tables.hpp>
#include <attnbench/run/cells.hpp>
#include <attnbench/run/grid.hpp>
#include <attnbench/run/shards.hpp>

#include <attnbench/kernels/simd.hpp>

#include <attnbench/host/files.hpp>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <thread>

namespace attnbench::cli {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

struct run_options {
  config_options config;
  std::string out_dir, shard;
  bool resume = false;
  bool in_process = false;
  double cell_timeout_s = 0;
  unsigned probe_mib = 512;
};

// The results folder: --out, or a new results/NAME-TIME (the config's name is one path
// component, checked by load_config).
folder results_folder(const run_options& o, const run_config& config, std::size_t shard_index, std::size_t shard_count) {
  if (!o.out_dir.empty()) return folder::open(o.out_dir, folder::create::parents);
  return folder::create_unique("results", config.name + "-" + time_text(/*utc=*/false) +
                                              (shard_count > 1 ? "-shard" + std::to_string(shard_index) : ""));
}

// "I/N" with 0 <= I < N.
std::pair<std::size_t, std::size_t> parse_shard(const std::string& text) {
  unsigned long i = 0, n = 0;
  char tail = 0;
  if (text.empty()) return {0, 1};
  if (std::sscanf(text.c_str(), "%lu/%lu%c", &i, &n, &tail) != 2 || n == 0 || i >= n)
    throw usage_error("--shard: expected I/N with 0 <= I < N (e.g. 0/4), got '" + text + "'");
  return {i, n};
}

ojson run_meta(const loaded_run& run, unsigned threads, std::size_t shard_index, std::size_t shard_count) {
  ojson meta = {{"schema_version", kResultsSchemaVersion},
                {"attnbench_version", ATTNBENCH_VERSION},
                {"created", time_text(/*utc=*/true)},
                {"git", git_info()},
                {"config_file", run.config.file.string()},
                {"config", run.config.resolved},
                {"model_profile", run.model->describe()},
                {"plugins", run.plugins.info()},
                {"plugin_abi_version", ATTNBENCH_ABI_VERSION},
                {"machine", machine_info()},
                {"threads", threads},
                {"kernel_target", kernels::current_target()}};
  if (shard_count > 1) {
    // Which cells, by which assignment, and their estimated seconds (run/shards.hpp): a
    // merge reads them to name missing cells and to report the shards' balance.
    std::vector<double> costs;
    for (const auto& e : estimate_cells(run.config, *run.model, expand_grid(run.config))) costs.push_back(e.total());
    const auto shard_of = assign_shards(costs, shard_count);
    std::size_t cells = 0;
    double seconds = 0;
    for (std::size_t i = 0; i < costs.size(); ++i)
      if (shard_of[i] == shard_index) ++cells, seconds += costs[i];
    meta["shard"] = {{"index", shard_index},
                     {"count", shard_count},
                     {"assignment", kShardAssignment},
                     {"cells", cells},
                     {"estimated_s", seconds}};
  }
  return meta;
}

int run_command(const run_options& o, const global_options& g) {
  const auto [shard_index, shard_count] = parse_shard(o.shard);
  plugin_registry registry(plugin_registry::default_search_path(g.plugin_paths));
  const loaded_run run = load_everything(o.config, registry);
  const run_config& config = run.config;
  if (o.resume && o.out_dir.empty()) throw usage_error("--resume needs --out DIR naming the run folder to continue");
  const unsigned threads = config.threads > 0 ? config.threads : usable_cores();
  ojson meta = run_meta(run, threads, shard_index, shard_count);
  meta["probe_bytes"] = std::size_t{o.probe_mib} << 20;
  results_writer writer(results_folder(o, config, shard_index, shard_count), meta, o.resume);
  spdlog::info("results folder: {}", writer.dir().string());
  for (const auto& id : writer.repaired_cells()) spdlog::warn("--resume: repaired cell {}: it runs again", id);

  // Speed figures are ratios to the read ceiling (the best of several read methods),
  // measured first in the process that runs the cells.
  const run_inputs inputs{config,      *run.model, run.plugins, 0.0, shard_index, shard_count, threads,
                          std::size_t{o.probe_mib} << 20, {}};
  try {
    run_cells(inputs, writer, cell_isolation{!o.in_process, o.cell_timeout_s});
  } catch (const harness_error& e) {
    writer.set_meta("status", e.code == exit_interrupted ? "interrupted" : "stopped");
    throw;
  }
  const std::size_t failed = writer.failed_cells();
  writer.set_meta("status", failed ? "failed cells" : "complete");
  if (const auto ruler = ruler_summary(writer.document()["cells"]); !ruler.empty()) writer.set_summary("ruler", ruler);
  if (const auto lb = longbench_summary(writer.document()["cells"]); !lb.empty()) writer.set_summary("longbench", lb);
  std::fputs(console_tables(writer.document()).c_str(), stdout);
  std::printf("results: %s\n", writer.dir().string().c_str());
  if (failed) {
    spdlog::error("{} cells failed (their records are under failures in {}); the {} finished cells are kept; "
                  "run them again with --resume --out {}",
                  failed, (writer.dir() / "results.json").string(), writer.finished_cells(), writer.dir().string());
    return exit_cells_failed;
  }
  return exit_ok;
}

int validate_command(const config_options& o, const global_options& g) {
  plugin_registry registry(plugin_registry::default_search_path(g.plugin_paths));
  const loaded_run run = load_everything(o, registry);
  const run_config& c = run.config;
  std::printf("%s: valid: %s (%s x %s x %s x %s x %s), %s each, profile '%s'\n", o.file.c_str(),
              count_of(expand_grid(c).size(), "cell").c_str(), count_of(c.tasks.size(), "task").c_str(),
              count_of(c.context_lengths.size(), "context length").c_str(),
              count_of(c.policies.size(), "policy", "policies").c_str(),
              count_of(c.terminators.size(), "terminator").c_str(), count_of(c.seeds.size(), "seed").c_str(),
              count_of(c.samples, "sample").c_str(), run.model->shape().name.c_str());
  return exit_ok;
}

}  // namespace

void add_run_commands(CLI::App& app, std::vector<registered_command>& commands) {
  auto ro = std::make_shared<run_options>();
  auto* run = app.add_subcommand("run", "Run every cell of a config and write a results folder");
  add_config_options(run, ro->config, "Config file (JSON); see docs/config.md");
  run->add_option("--out", ro->out_dir, "Results folder (default: results/<name>-<timestamp>)")->type_name("DIR");
  run->add_flag("--resume", ro->resume,
                "Continue the run in --out DIR: its finished cells are kept (checked against samples.jsonl), "
                "failed and unfinished ones run");
  run->add_option("--cell-timeout", ro->cell_timeout_s,
                  "A cell running longer than this fails (recorded with the plugin operation in progress) and the "
                  "run goes on; default: no limit")
      ->check(finite_positive)
      ->type_name("SECONDS");
  run->add_option("--probe-mib", ro->probe_mib,
                  "Each buffer of the read ceiling that speed ratios are measured against, in MiB (default 512, "
                  "well past any cache; three are held while it is measured; smaller starts faster, for quick checks; "
                  "ATTNBENCH_PROBE_MIB sets the default, as the test presets do)")
      ->check(CLI::Range(16u, 65536u))
      ->envname("ATTNBENCH_PROBE_MIB")
      ->type_name("MIB");
  run->add_flag("--in-process", ro->in_process,
                "Run the cells in this process instead of a worker process (for a debugger); a crashing plugin then "
                "ends the run, and --cell-timeout does not apply");
  run->add_option("--shard", ro->shard,
                  "Run shard I (0-based) of N: the grid's cells split into N shards of about equal estimated time "
                  "(docs/scale.md); join the shards' folders with merge, or let sweep do both on Slurm")
      ->type_name("I/N");
  run->footer(kExitCodes);
  commands.push_back({run, [ro](const global_options& g) { return run_command(*ro, g); }});

  auto vo = std::make_shared<config_options>();
  auto* validate = app.add_subcommand("validate", "Check a config, its profile and its plugins without running");
  add_config_options(validate, *vo, "Config file (JSON)");
  validate->footer(kExitCodes);
  commands.push_back({validate, [vo](const global_options& g) { return validate_command(*vo, g); }});
}

}  // namespace attnbench::cli
