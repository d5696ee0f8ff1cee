// run and validate.
#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/host/machine.hpp>
#include <attnbench/report/results.hpp>
#include <attnbench/report/summary.hpp>
#include <attnbench/report/tables.hpp>
#include <attnbench/run/cells.hpp>
#include <attnbench/run/grid.hpp>

#include <attnbench/kernels/probe.hpp>
#include <attnbench/kernels/simd.hpp>

#include <spdlog/spdlog.h>
#include <tbb/global_control.h>

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
};

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
  if (shard_count > 1) meta["shard"] = {{"index", shard_index}, {"count", shard_count}};
  return meta;
}

int run_command(const run_options& o, const global_options& g) {
  const auto [shard_index, shard_count] = parse_shard(o.shard);
  plugin_registry registry(plugin_registry::default_search_path(g.plugin_paths));
  const loaded_run run = load_everything(o.config, registry);
  const run_config& config = run.config;
  if (o.resume && o.out_dir.empty()) throw usage_error("--resume needs --out DIR naming the run folder to continue");
  const std::string out_dir =
      !o.out_dir.empty() ? o.out_dir
                         : (fs::path("results") / (config.name + "-" + time_text(/*utc=*/false) +
                                                   (shard_count > 1 ? "-shard" + std::to_string(shard_index) : "")))
                               .string();
  const unsigned threads = config.threads > 0 ? config.threads : std::max(1u, std::thread::hardware_concurrency());
  tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism, threads);
  results_writer writer(out_dir, run_meta(run, threads, shard_index, shard_count), o.resume);
  spdlog::info("results folder: {}", writer.dir().string());

  // Speed figures are ratios to this probe, measured in the same process.
  const double bandwidth = kernels::measure_read_bandwidth(std::size_t{512} << 20, 5, static_cast<int>(threads));
  spdlog::info("read bandwidth {:.2f} GB/s ({} threads)", bandwidth / 1e9, threads);
  writer.set_meta("read_bandwidth_bytes_per_s", bandwidth);

  const run_inputs inputs{config, *run.model, run.plugins, bandwidth, shard_index, shard_count};
  run_cells(inputs, writer);
  if (const auto ruler = ruler_summary(writer.document()["cells"]); !ruler.empty()) writer.set_summary("ruler", ruler);
  if (const auto lb = longbench_summary(writer.document()["cells"]); !lb.empty()) writer.set_summary("longbench", lb);
  std::fputs(console_tables(writer.document()).c_str(), stdout);
  std::printf("results: %s\n", writer.dir().string().c_str());
  return exit_ok;
}

int validate_command(const config_options& o, const global_options& g) {
  plugin_registry registry(plugin_registry::default_search_path(g.plugin_paths));
  const loaded_run run = load_everything(o, registry);
  const run_config& c = run.config;
  std::printf("%s: valid: %zu cells (%zu tasks x %zu context lengths x %zu policies x %zu terminators x %zu seeds), "
              "%u samples each, profile '%s'\n",
              o.file.c_str(), expand_grid(c).size(), c.tasks.size(), c.context_lengths.size(), c.policies.size(),
              c.terminators.size(), c.seeds.size(), c.samples, run.model->shape().name.c_str());
  return exit_ok;
}

}  // namespace

void add_run_commands(CLI::App& app, std::vector<registered_command>& commands) {
  auto ro = std::make_shared<run_options>();
  auto* run = app.add_subcommand("run", "Run every cell of a config and write a results folder");
  add_config_options(run, ro->config, "Config file (JSON); see docs/config.md");
  run->add_option("--out", ro->out_dir, "Results folder (default: results/<name>-<timestamp>)")->type_name("DIR");
  run->add_flag("--resume", ro->resume, "Continue the run in --out DIR, skipping its finished cells");
  run->add_option("--shard", ro->shard,
                  "Run every N-th cell of the grid starting at I (0-based); join the shards' folders with merge")
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
