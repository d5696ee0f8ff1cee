// report, merge and compare: commands over results folders.
#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/report/compare.hpp>
#include <attnbench/report/merge.hpp>
#include <attnbench/report/report.hpp>
#include <attnbench/report/results.hpp>
#include <attnbench/report/tables.hpp>
#include <attnbench/run/shards.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace attnbench::cli {

namespace fs = std::filesystem;

namespace {

struct report_command_options {
  std::vector<std::string> folders;
  std::string out;
  bool no_plots = false;
};

int report_command(const report_command_options& o) {
  report_options ro;
  ro.out = o.out;
  if (!o.no_plots) ro.plots_script = default_plots_script();
  const report_result r = write_report(std::vector<fs::path>(o.folders.begin(), o.folders.end()), ro);
  if (!r.plotted && !o.no_plots) spdlog::warn("{}", r.plot_message);
  for (const auto& w : r.warnings) spdlog::warn("{}", w);
  std::fputs(r.headline.c_str(), stdout);
  std::printf("\nreport: %s\n", (r.dir / "report.md").string().c_str());
  for (const auto& f : r.files) std::printf("  %s\n", f.c_str());
  return exit_ok;
}

struct merge_options {
  std::vector<std::string> folders;
  std::string out;
  bool allow_missing = false;
};

int merge_command(const merge_options& o) {
  const std::vector<fs::path> folders(o.folders.begin(), o.folders.end());
  const merge_report r = merge_runs(folders, o.out, o.allow_missing);
  std::fputs(console_tables(read_results_file(o.out)).c_str(), stdout);
  std::printf("merged %zu of the grid's %zu cells from %zu folders into %s\n", r.cells, r.grid_cells, folders.size(),
              o.out.c_str());
  if (!r.estimated_s.empty()) {
    // The balance of cost-balanced shards: the largest shard over the mean, estimated
    // before the run and measured (the cells' wall time).
    std::printf("shards: estimated %.0f s in all, largest/mean %.2f; measured %.0f s in all, largest/mean %.2f\n",
                std::accumulate(r.estimated_s.begin(), r.estimated_s.end(), 0.0), shard_spread(r.estimated_s),
                std::accumulate(r.measured_s.begin(), r.measured_s.end(), 0.0), shard_spread(r.measured_s));
  }
  if (!r.missing.empty()) spdlog::warn("{} cells of the grid are in none of the folders (--allow-missing)", r.missing.size());
  return exit_ok;
}

struct compare_command_options {
  std::string base, now;
  compare_options options;
};

int compare_command(const compare_command_options& o) {
  const auto rows = compare_sources(o.base, o.now, o.options);
  std::fputs(compare_markdown(rows, o.options).c_str(), stdout);
  const bool regressed =
      std::any_of(rows.begin(), rows.end(), [](const compare_row& r) { return r.verdict == "REGRESSION"; });
  return regressed ? exit_regression : exit_ok;
}

void add_compare_command(CLI::App& app, std::vector<registered_command>& commands) {
  auto o = std::make_shared<compare_command_options>();
  auto* sub = app.add_subcommand(
      "compare", "Compare two run folders or two Google Benchmark JSON files; non-zero exit on a regression");
  sub->add_option("base", o->base, "Baseline run folder or benchmark JSON file")->required()->type_name("BASE");
  sub->add_option("new", o->now, "Run folder or benchmark JSON file to check")->required()->type_name("NEW");
  sub->add_option("--threshold", o->options.threshold_pct,
                  "Percent by which a ratio metric may get worse before it fails (default 5)")
      ->check(finite_in(0.0, 1000.0))
      ->type_name("PCT");
  sub->add_option("--accuracy-drop", o->options.accuracy_points,
                  "Accuracy points a cell may lose before it fails (default 1)")
      ->check(finite_in(0.0, 100.0))
      ->type_name("POINTS");
  sub->add_option("--noise-sigmas", o->options.noise_sigmas,
                  "A worse metric fails only when the change is this many standard errors out (default 3)")
      ->check(finite_in(0.0, 100.0));
  sub->add_option("--metric", o->options.metrics,
                  "Metric to compare (repeatable). Run folders: accuracy, speedup_vs_dense, bandwidth_ratio "
                  "(default), decode_tokens_per_s; benchmarks: ceiling_ratio, roofline_ratio, same_memory_ratio, "
                  "fraction_of_score_pass (default; probe_ratio in files from before the read ceiling), "
                  "kv_bytes_per_s, ceiling_bytes_per_s, probe_bytes_per_s, real_time, cpu_time, ns_per_token_head");
  sub->footer(kExitCodes);
  commands.push_back({sub, [o](const global_options&) { return compare_command(*o); }});
}

}  // namespace

void add_results_commands(CLI::App& app, std::vector<registered_command>& commands) {
  auto ro = std::make_shared<report_command_options>();
  auto* report = app.add_subcommand("report", "Write tables (markdown, CSV), plots and report.md for run folders");
  report->add_option("folders", ro->folders, "Results folders; several combine when their cells do not overlap")
      ->required()
      ->type_name("RUN_DIR");
  report->add_option("--out", ro->out, "Report folder (default: RUN_DIR/report; required for several folders)")
      ->type_name("DIR");
  report->add_flag("--no-plots", ro->no_plots,
                   "Tables only (plots need python3-matplotlib, installed by scripts/setup.sh)");
  report->footer(kExitCodes);
  commands.push_back({report, [ro](const global_options&) { return report_command(*ro); }});

  auto mo = std::make_shared<merge_options>();
  auto* merge = app.add_subcommand("merge", "Join the results folders of one config's shards into one run folder");
  merge->add_option("folders", mo->folders, "Results folders of `run --shard I/N` (or any runs of one config)")
      ->required()
      ->type_name("FOLDER");
  merge->add_option("--out", mo->out, "Merged results folder to create")->required()->type_name("DIR");
  merge->add_flag("--allow-missing", mo->allow_missing,
                  "Write the merged folder (status \"incomplete\") even when cells of the grid are in none of the "
                  "folders; without it such a merge names them and exits 9");
  merge->footer(kExitCodes);
  commands.push_back({merge, [mo](const global_options&) { return merge_command(*mo); }});

  add_compare_command(app, commands);
}

}  // namespace attnbench::cli
