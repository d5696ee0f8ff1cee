// attnbench compare on constructed result files: a regression fails, noise within the
// threshold passes, an improvement passes, a missing metric or a mismatched config is
// a clear error.
#include "../test-helpers.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/report/compare.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <fstream>

using namespace attnbench;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A Google Benchmark file: one decode case with these ceiling_ratio repetitions.
fs::path bench_file(const fs::path& dir, const std::string& name, const std::vector<double>& ratios,
                    const std::string& metric = "ceiling_ratio") {
  json doc = {{"context", {{"host_name", "test"}}}, {"benchmarks", json::array()}};
  for (std::size_t i = 0; i < ratios.size(); ++i)
    doc["benchmarks"].push_back({{"name", "decode/fp16/gqa1/ctx:32768/threads:1/real_time"},
                                 {"run_name", "decode/fp16/gqa1/ctx:32768/threads:1/real_time"},
                                 {"run_type", "iteration"},
                                 {"repetition_index", i},
                                 {"real_time", 10.0 / ratios[i]},
                                 {metric, ratios[i]}});
  std::ofstream(dir / name) << doc.dump(1);
  return dir / name;
}

// A run folder with a dense and a tokenselect cell: per-sample decode times and accuracy.
fs::path run_folder(const fs::path& dir, const std::string& name, double ts_accuracy, double ts_decode_ms,
                    std::vector<std::uint32_t> lengths = {4096}, bool spread = false,
                    json model = {{"profile", "default"}}) {
  const fs::path d = dir / name;
  fs::create_directories(d);
  auto plugins = [](std::vector<std::string> names) {
    json out = json::array();
    for (const auto& n : names) out.push_back({{"name", n}, {"label", n}, {"params", json::object()}, {"plugin", ""}});
    return out;
  };
  // A results document as run writes it (a resolved config; every cell field the loader checks).
  json config = {{"name", name},
                 {"model", model},
                 {"tasks", {{{"name", "niah_single_1"}, {"label", "niah_single_1"}, {"params", json::object()}}}},
                 {"context_lengths", lengths},
                 {"policies", plugins({"dense", "tokenselect"})},
                 {"terminators", plugins({"none"})},
                 {"seeds", {0}},
                 {"samples", 5}};
  json cells = json::array();
  std::ofstream samples(d / "samples.jsonl");
  for (const std::string policy : {"dense", "tokenselect"}) {
    const std::string id = "niah_single_1/4096/" + policy + "/none/0";
    const bool ts = policy == "tokenselect";
    cells.push_back({{"id", id},
                     {"grid_index", cells.size()},
                     {"task", "niah_single_1"},
                     {"context_length", 4096},
                     {"policy", policy},
                     {"terminator", "none"},
                     {"seed", 0},
                     {"metrics",
                      {{"accuracy", ts ? ts_accuracy : 100.0},
                       {"blocks_skipped_frac", 0.0},
                       {"decode_tokens_per_s", 80.0},
                       {"bandwidth_ratio", 0.5}}}});
    for (int i = 0; i < 5; ++i) {
      // A little noise per sample, the same in every folder.
      // With `spread`, tokenselect's speed differs a lot from sample to sample (as it does
      // between tasks or answers), the same in every folder: not noise.
      const double ms = (ts ? ts_decode_ms * (spread ? 0.5 + 0.25 * i : 1.0) : 100.0) * (1.0 + 0.01 * (i % 3));
      samples << json{{"cell", id}, {"sample", i}, {"decode_ms", ms}, {"generated_tokens", 8}}.dump() << "\n";
    }
  }
  std::ofstream(d / "results.json") << json{{"meta", {{"schema_version", 1}, {"config", config}}}, {"cells", cells}}.dump(1);
  return d;
}

const compare_row& row(const std::vector<compare_row>& rows, const std::string& suffix) {
  for (const auto& r : rows)
    if (r.key.size() >= suffix.size() && r.key.compare(r.key.size() - suffix.size(), suffix.size(), suffix) == 0)
      return r;
  throw std::runtime_error("no row ending in " + suffix);
}

}  // namespace

TEST(Compare, BenchmarkRegressionFailsNoiseAndImprovementPass) {
  const auto dir = attnbench::testing::scratch("compare-bench");
  const auto base = bench_file(dir, "base.json", {0.80, 0.81, 0.79, 0.80, 0.80});
  compare_options o;
  o.threshold_pct = 10;
  // 20% slower: a regression.
  auto rows = compare_sources(base, bench_file(dir, "slow.json", {0.64, 0.65, 0.63, 0.64, 0.64}), o);
  EXPECT_EQ(row(rows, "ceiling_ratio").verdict, "REGRESSION");
  EXPECT_NEAR(row(rows, "ceiling_ratio").change, -0.2, 1e-9);
  // 3% worse, within the threshold: passes.
  rows = compare_sources(base, bench_file(dir, "noise.json", {0.78, 0.77, 0.80, 0.76, 0.776}), o);
  EXPECT_EQ(row(rows, "ceiling_ratio").verdict, "ok");
  // Faster: never fails.
  rows = compare_sources(base, bench_file(dir, "fast.json", {0.95, 0.96, 0.94, 0.95, 0.95}), o);
  EXPECT_EQ(row(rows, "ceiling_ratio").verdict, "better");
  // 15% worse in the median but the repetitions scatter over 0.3 to 1.0: not a verdict.
  rows = compare_sources(base, bench_file(dir, "wild.json", {0.3, 1.0, 0.68, 0.45, 0.95}), o);
  EXPECT_EQ(row(rows, "ceiling_ratio").verdict, "noisy");
}

TEST(Compare, RunFolderAccuracyAndSpeedup) {
  const auto dir = attnbench::testing::scratch("compare-run");
  const auto base = run_folder(dir, "base", 100.0, 40.0);  // tokenselect 2.5x dense
  compare_options o;
  auto rows = compare_sources(base, run_folder(dir, "same", 100.0, 40.0), o);
  for (const auto& r : rows) EXPECT_EQ(r.verdict, "ok") << r.key;
  EXPECT_NEAR(row(rows, "tokenselect/none/0 : speedup_vs_dense").base, 2.5, 1e-9);
  // Tokenselect 25% slower relative to dense: a regression of speedup_vs_dense.
  rows = compare_sources(base, run_folder(dir, "slower", 100.0, 50.0), o);
  EXPECT_EQ(row(rows, "speedup_vs_dense").verdict, "REGRESSION");
  // Accuracy down 5 points: a regression; up: better.
  rows = compare_sources(base, run_folder(dir, "wrong", 95.0, 40.0), o);
  EXPECT_EQ(row(rows, "tokenselect/none/0 : accuracy").verdict, "REGRESSION");
  EXPECT_NEAR(row(rows, "tokenselect/none/0 : accuracy").change, -5.0, 1e-9);
  rows = compare_sources(run_folder(dir, "low", 90.0, 40.0), base, o);
  EXPECT_EQ(row(rows, "tokenselect/none/0 : accuracy").verdict, "better");
}

TEST(Compare, SpeedupsAreComparedSampleBySample) {
  const auto dir = attnbench::testing::scratch("compare-paired");
  const auto base = run_folder(dir, "base", 100.0, 40.0, {4096}, true);
  compare_options o;
  o.threshold_pct = 15;
  // Every sample 35% slower: a regression, although the samples' speedups spread from
  // 1.25x to 5x in both runs.
  auto rows = compare_sources(base, run_folder(dir, "slower", 100.0, 54.0, {4096}, true), o);
  EXPECT_EQ(row(rows, "speedup_vs_dense").verdict, "REGRESSION");
  EXPECT_NEAR(row(rows, "speedup_vs_dense").change, 40.0 / 54.0 - 1.0, 1e-9);
  EXPECT_LT(row(rows, "speedup_vs_dense").noise, 1e-9);
  rows = compare_sources(base, run_folder(dir, "same", 100.0, 40.0, {4096}, true), o);
  EXPECT_EQ(row(rows, "speedup_vs_dense").verdict, "ok");
}

TEST(Compare, ClearErrors) {
  const auto dir = attnbench::testing::scratch("compare-errors");
  const auto bench = bench_file(dir, "base.json", {0.8, 0.8, 0.8});
  const auto run = run_folder(dir, "base", 100.0, 40.0);
  // A metric that is not in the file.
  compare_options o;
  o.metrics = {"fraction_of_score_pass"};
  EXPECT_THROW(compare_sources(bench, bench, o), config_error);
  // A metric nobody knows.
  o.metrics = {"wallclock"};
  EXPECT_THROW(compare_sources(bench, bench, o), config_error);
  // A case of BASE missing from NEW: the new file reports another metric only.
  EXPECT_THROW(compare_sources(bench, bench_file(dir, "other.json", {0.5}, "same_memory_ratio"), {}), config_error);
  // A run folder against a benchmark file; a missing path; configs that differ.
  EXPECT_THROW(compare_sources(run, bench, {}), config_error);
  try {
    compare_sources(bench, dir / "nothing-here.json", {});
    FAIL() << "a missing file was compared";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("no such file"), std::string::npos) << e.what();
  }
  try {
    compare_sources(run, run_folder(dir, "other", 100.0, 40.0, {8192}), {});
    FAIL() << "configs that differ were compared";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("context_lengths"), std::string::npos) << e.what();
  }
}

TEST(Compare, ARunWithoutAModelKindIsAMechanisticRun) {
  const auto dir = attnbench::testing::scratch("compare-kind");
  // Written before models had a kind: the mechanistic model, as a run now writes it.
  const auto old = run_folder(dir, "old", 100.0, 40.0);
  const auto now = run_folder(dir, "now", 100.0, 40.0, {4096}, false, {{"kind", "mechanistic"}, {"profile", "default"}});
  for (const auto& r : compare_sources(old, now, {})) EXPECT_EQ(r.verdict, "ok") << r.key;
  const auto trained =
      run_folder(dir, "trained", 100.0, 40.0, {4096}, false, {{"kind", "trained"}, {"weights", "models/x"}});
  try {
    compare_sources(old, trained, {});
    FAIL() << "a trained run was compared with a mechanistic one";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("/meta/config/model"), std::string::npos) << e.what();
  }
}
