// `attnbench compare BASE NEW`: two run folders or two Google Benchmark JSON files, metric
// by metric, with repetitions and a noise estimate; a regression past its threshold (and
// clear of the noise) fails, an improvement never does.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace attnbench {

// One metric of one case (a benchmark or a run cell): its repetitions and what "better" means.
struct metric_series {
  std::vector<double> values;  // repetitions (one value where the source has only one)
  bool higher_is_better = true;
  bool absolute = false;  // compared by difference (accuracy points), not by ratio
  // Values i of BASE and NEW belong together (the same sample): the change is the median
  // of the per-sample ratios, and its noise their spread, so the differences between
  // samples, which both runs share, are not taken for noise.
  bool paired = false;
};

// "case : metric" -> series.
using metric_table = std::map<std::string, metric_series>;

// Reads a results folder (results.json, samples.jsonl) or a Google Benchmark JSON file.
// `metrics` empty: the defaults for the source (run folders: accuracy, speedup_vs_dense,
// bandwidth_ratio; benchmarks: ceiling_ratio, roofline_ratio, same_memory_ratio,
// fraction_of_score_pass, and probe_ratio of files from before the read ceiling),
// each where the case has it. Throws config_error naming the file for unreadable input
// and for a requested metric that no case has.
metric_table load_metrics(const std::filesystem::path& source, const std::vector<std::string>& metrics);

struct compare_options {
  double threshold_pct = 5.0;     // relative metrics: a worse median by more than this fails
  double accuracy_points = 1.0;   // absolute metrics (accuracy): a drop by more than this fails
  double noise_sigmas = 3.0;      // ... and only when the change is this many standard errors out
  std::vector<std::string> metrics;
};

struct compare_row {
  std::string key;
  double base = 0, now = 0;
  double change = 0;  // relative (or points for absolute metrics), positive = better
  double noise = 0;   // standard error of the change, same unit
  bool absolute = false;
  std::string verdict;  // "ok", "better", "REGRESSION", "noisy"
};

// Compares every metric of BASE with NEW. Throws config_error when the sources are of
// different kinds, when a case or metric of BASE is missing from NEW, or when the run
// folders come from configs that differ in model or grid.
std::vector<compare_row> compare_sources(const std::filesystem::path& base, const std::filesystem::path& now,
                                         const compare_options& options);

// The markdown table of the rows.
std::string compare_markdown(const std::vector<compare_row>& rows, const compare_options& options);

}  // namespace attnbench
