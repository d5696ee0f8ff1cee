// The attnbench executable end to end: exit codes and one-line errors for bad input,
// a small run with its results files, --resume, and Ctrl-C keeping finished cells.
#include "test-helpers.hpp"

#include "errors.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

using namespace attnbench;
using namespace attnbench::testing;
namespace fs = std::filesystem;

namespace {

struct cli_result {
  int code;
  std::string out, err;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

cli_result run_cli(const std::string& args) {
  static int counter = 0;
  const auto dir = build_dir() / "test-scratch" / "cli-io";
  fs::create_directories(dir);
  // CTest runs tests in parallel processes: the pid keeps their files apart.
  const std::string tag = std::to_string(getpid()) + "-" + std::to_string(counter++);
  const auto out = dir / ("out-" + tag + ".txt");
  const auto err = dir / ("err-" + tag + ".txt");
  const std::string cmd = quote(ATTNBENCH_EXE) + " --plugin-path " + quote(test_plugin_dir().string()) + " " + args +
                          " > " + quote(out.string()) + " 2> " + quote(err.string());
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

fs::path write(const fs::path& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name) << text;
  return dir / name;
}

// Expects a failure with the given code and exactly one line on stderr containing all fragments.
void expect_failure(const cli_result& r, int code, std::vector<std::string> fragments) {
  EXPECT_EQ(r.code, code) << r.err;
  int lines = 0;
  for (char c : r.err) lines += c == '\n';
  EXPECT_EQ(lines, 1) << r.err;
  for (const auto& f : fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "'" << f << "' not in: " << r.err;
}

std::string config(const std::string& policies, const std::string& extra = "") {
  return R"({"model": {"profile": "tiny"}, "tasks": ["niah_single_1"], "context_lengths": [1024], "samples": 2, "policies": )" +
         policies + extra + "}";
}

}  // namespace

TEST(Cli, HelpDocumentsExitCodes) {
  const auto r = run_cli("run --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Exit codes"), std::string::npos);
  EXPECT_NE(r.out.find("--resume"), std::string::npos);
  EXPECT_EQ(run_cli("frobnicate").code, exit_usage);
}

TEST(Cli, ListShowsPluginsTasksAndBrokenFiles) {
  const auto r = run_cli("list");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("dense"), std::string::npos);
  EXPECT_NE(r.out.find("stop_after"), std::string::npos);
  EXPECT_NE(r.out.find("niah_single_1"), std::string::npos);
  EXPECT_NE(r.out.find("not loaded"), std::string::npos);  // the broken test plugins
  const auto j = run_cli("list --json");
  ASSERT_EQ(j.code, 0);
  const auto parsed = nlohmann::json::parse(j.out);
  EXPECT_FALSE(parsed["plugins"].empty());
}

TEST(Cli, BadInputGivesOneLineAndADocumentedCode) {
  const auto d = scratch("cli-bad");
  expect_failure(run_cli("run " + (d / "missing.json").string()), exit_config, {"missing.json: no such file"});
  expect_failure(run_cli("run " + write(d, "malformed.json", "{\n \"tasks\": [,]\n}").string()), exit_config,
                 {"malformed.json:2:"});
  expect_failure(run_cli("run " + write(d, "type.json", config("[\"dense\"]", R"(, "threads": "all")")).string()),
                 exit_config, {"type.json: /threads: expected an integer"});
  expect_failure(run_cli("run " + write(d, "task.json", R"({"tasks": ["niah_x"], "context_lengths": [1024], "policies": ["dense"]})").string()),
                 exit_config, {"/tasks/0/name", "known: niah_single_1"});
  expect_failure(run_cli("run " + write(d, "policy.json", config("[\"nope\"]")).string()), exit_plugin,
                 {"policy.json: /policies/0: unknown policy 'nope'", "dense"});
  expect_failure(run_cli("run " + write(d, "notplugin.json",
                                        config(R"([{"name": "x", "plugin": ")" + (test_plugin_dir() / "attnbench-plugin-not_a_plugin.so").string() + "\"}]"))
                                      .string()),
                 exit_plugin, {"is not an attnbench plugin"});
  expect_failure(run_cli("run " + write(d, "abi.json", config(R"(["other_abi"])")).string()), exit_plugin,
                 {"ABI version 999", "needs ABI version " + std::to_string(ATTNBENCH_ABI_VERSION)});
  expect_failure(run_cli("run " + write(d, "params.json", config(R"([{"name": "dense", "params": {"top_k": 64}}])")).string()),
                 exit_plugin, {"/policies/0", "rejected its params", "unknown parameter 'top_k'"});
  expect_failure(run_cli("run " + write(d, "term.json", config("[\"dense\"]", R"(, "terminators": [{"name": "stop_after", "params": {"blocks": 0}}])")).string()),
                 exit_plugin, {"/terminators/0", "blocks: expected an integer in [1,"});
  const auto good = write(d, "good.json", config("[\"dense\"]"));
  expect_failure(run_cli("run " + good.string() + " --set samples.x=1"), exit_usage, {"unknown path"});
  expect_failure(run_cli("run " + good.string() + " --set nosuch=1"), exit_usage, {"--set nosuch=1: unknown path /nosuch"});
  write(d, "a-file", "x");
  expect_failure(run_cli("run " + good.string() + " --out " + (d / "a-file" / "run").string()), exit_output,
                 {"a-file/run", "cannot create"});
  expect_failure(run_cli("run " + write(d, "huge.json", R"({"tasks": ["niah_single_1"], "context_lengths": [16000000], "policies": ["dense"]})").string()),
                 exit_resources, {"needs about", "GiB"});
  // A failure during the run: -q keeps the progress lines off stderr, leaving the error.
  expect_failure(run_cli("-q run " + write(d, "badplan.json", config("[\"bad_plan\"]")).string() + " --out " + (d / "bp").string()),
                 exit_plugin, {"plugin 'bad_plan'", "invalid plan", "out of range"});
}

TEST(Cli, RunWritesResultsAndResumeSkipsFinishedCells) {
  const auto d = scratch("cli-run");
  const auto cfg = write(d, "small.json", config(R"(["dense", {"name": "dense", "label": "dense-stop", "params": {}}])",
                                                 R"(, "terminators": ["none", "stop_after"], "context_lengths": [1024, 2048])"));
  const auto v = run_cli("validate " + cfg.string());
  EXPECT_EQ(v.code, 0) << v.err;
  EXPECT_NE(v.out.find("valid: 8 cells"), std::string::npos) << v.out;

  const auto out = d / "run";
  const auto r = run_cli("run " + cfg.string() + " --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("results: " + out.string()), std::string::npos) << r.out;
  const auto results = nlohmann::ordered_json::parse(read_file(out / "results.json"));
  EXPECT_EQ(results.begin().key(), "meta");
  EXPECT_EQ(results["meta"]["schema_version"], 1);
  EXPECT_EQ(results["meta"]["config"]["samples"], 2);
  EXPECT_TRUE(results["meta"]["git"].contains("commit"));
  EXPECT_GT(results["meta"]["machine"]["cores"].get<int>(), 0);
  EXPECT_GT(results["meta"]["read_bandwidth_bytes_per_s"].get<double>(), 0);
  ASSERT_EQ(results["cells"].size(), 8u);
  for (const auto& c : results["cells"]) {
    const auto& m = c["metrics"];
    if (c["terminator"] == "none") {
      EXPECT_EQ(m["blocks_skipped_frac"], 0.0);
      EXPECT_EQ(m["tokens_attended_frac"], 1.0);
      EXPECT_EQ(m["accuracy"], 100.0) << c.dump();
    } else {
      EXPECT_GT(m["blocks_skipped_frac"].get<double>(), 0.9);
      EXPECT_EQ(m["accuracy"], 0.0) << c.dump();
    }
    // Per layer and per head role: as many layers as the profile has, and the tiny
    // profile's roles; stop_after skips in every one of them, none in none.
    ASSERT_EQ(m["blocks_skipped_frac_by_layer"].size(), results["meta"]["model_profile"]["n_layers"].get<std::size_t>());
    for (const auto& x : m["blocks_skipped_frac_by_layer"])
      EXPECT_EQ(x.get<double>() > 0.9, c["terminator"] != "none") << c.dump();
    ASSERT_FALSE(m["blocks_skipped_frac_by_role"].empty());
    for (const auto& [role, x] : m["blocks_skipped_frac_by_role"].items())
      EXPECT_EQ(x.get<double>() > 0.9, c["terminator"] != "none") << role << " " << c.dump();
    EXPECT_GT(m["decode_tokens_per_s"].get<double>(), 0);
    EXPECT_EQ(m["kv_bytes_read_k"], m["kv_bytes_read_v"]);
  }
  std::ifstream samples(out / "samples.jsonl");
  int lines = 0;
  for (std::string line; std::getline(samples, line); ++lines) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j.contains("prediction") && j.contains("references") && j.contains("score") && j.contains("cell"));
  }
  EXPECT_EQ(lines, 16);

  // Without --resume an existing run is never overwritten.
  const std::string before = read_file(out / "results.json");
  expect_failure(run_cli("run " + cfg.string() + " --out " + out.string()), exit_output, {"already holds results.json"});
  EXPECT_EQ(read_file(out / "results.json"), before);
  // With --resume every cell is skipped and the results are kept.
  const auto again = run_cli("run " + cfg.string() + " --out " + out.string() + " --resume");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("already in results, skipped"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(read_file(out / "results.json"))["cells"].size(), 8u);
  // A different config may not resume into the folder.
  expect_failure(run_cli("run " + cfg.string() + " --out " + out.string() + " --resume --set samples=3"), exit_output,
                 {"different config"});
}

TEST(Cli, BatchedDecodeGivesTheAnswersOfOneByOne) {
  // Sequences decoded together (each with its own cache and policy instance, the
  // terminator shared) must produce what they produce alone: same tokens, same counts.
  // Five samples in batches of three leave a short last batch; qa_2 has follow-ups that
  // restate the previous answer, niah_multivalue forks continuations.
  const auto d = scratch("cli-batch");
  const auto cfg = write(d, "batch.json",
                         R"({"model": {"profile": "tiny"}, "tasks": ["niah_multivalue", "qa_2"], "context_lengths": [1024],
                             "samples": 5, "policies": ["dense"], "terminators": ["none", "stop_after"]})");
  std::vector<std::vector<nlohmann::json>> runs;
  std::vector<nlohmann::json> metrics;
  for (int batch : {1, 3}) {
    const auto out = d / ("run" + std::to_string(batch));
    const auto r = run_cli("run " + cfg.string() + " --set batch=" + std::to_string(batch) + " --out " + out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto results = nlohmann::json::parse(read_file(out / "results.json"));
    EXPECT_EQ(results["meta"]["config"]["batch"], batch);
    metrics.push_back(results["cells"]);
    std::vector<nlohmann::json> rows;
    std::ifstream samples(out / "samples.jsonl");
    for (std::string line; std::getline(samples, line);) {
      auto j = nlohmann::json::parse(line);
      j.erase("prepare_ms");
      j.erase("prefill_ms");
      j.erase("decode_ms");
      rows.push_back(j);
    }
    runs.push_back(rows);
  }
  ASSERT_EQ(runs[0].size(), 20u);
  ASSERT_EQ(runs[0].size(), runs[1].size());
  for (std::size_t i = 0; i < runs[0].size(); ++i) EXPECT_EQ(runs[0][i], runs[1][i]) << i;
  ASSERT_EQ(metrics[0].size(), metrics[1].size());
  for (std::size_t i = 0; i < metrics[0].size(); ++i)
    for (const char* key : {"accuracy", "decode_steps", "blocks_planned", "blocks_visited", "kv_bytes_read_k"})
      EXPECT_EQ(metrics[0][i]["metrics"][key], metrics[1][i]["metrics"][key]) << metrics[0][i]["id"] << " " << key;
}

TEST(Cli, InterruptKeepsFinishedCellsAndResumeCompletesTheRun) {
  const auto d = scratch("cli-interrupt");
  const auto cfg = write(d, "long.json",
                         // Cells of about a second each, so Ctrl-C lands while the run is busy.
                         R"({"model": {"profile": "default"}, "tasks": ["niah_single_1"], "context_lengths": [4096],
                             "policies": ["dense"], "seeds": [0, 1, 2, 3], "samples": 3})");
  const auto out = d / "run";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string exe = ATTNBENCH_EXE, cfg_s = cfg.string(), out_s = out.string();
    std::freopen("/dev/null", "w", stdout);
    std::freopen((d / "stderr.txt").c_str(), "w", stderr);
    execl(exe.c_str(), exe.c_str(), "run", cfg_s.c_str(), "--out", out_s.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the first finished cell, then press Ctrl-C.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  bool saw_cell = false;
  while (!saw_cell && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    try {
      saw_cell = !nlohmann::json::parse(read_file(out / "results.json"))["cells"].empty();
    } catch (const std::exception&) {
    }
  }
  ASSERT_TRUE(saw_cell);
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), exit_interrupted) << read_file(d / "stderr.txt");
  EXPECT_NE(read_file(d / "stderr.txt").find("--resume"), std::string::npos);
  const auto partial = nlohmann::json::parse(read_file(out / "results.json"));
  const std::size_t kept = partial["cells"].size();
  EXPECT_GE(kept, 1u);
  EXPECT_LT(kept, 4u);

  const auto r = run_cli("run " + cfg.string() + " --out " + out.string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto full = nlohmann::json::parse(read_file(out / "results.json"));
  EXPECT_EQ(full["cells"].size(), 4u);
  for (std::size_t i = 0; i < kept; ++i) EXPECT_EQ(full["cells"][i], partial["cells"][i]);  // finished cells untouched
  std::ifstream samples(out / "samples.jsonl");
  int lines = 0;
  for (std::string line; std::getline(samples, line);) ++lines;
  EXPECT_EQ(lines, 4 * 3);
}

// TCA's two halves: calibrate writes a budgets file for the profile; tca reads it, evicts
// after prefill, and without one says how to make it.
TEST(Cli, CalibrateWritesBudgetsThatTcaUses) {
  const auto d = scratch("cli-tca");
  const auto budgets = d / "budgets.json";
  const auto cfg = write(d, "cal.json", config(R"(["dense"])", R"(, "context_lengths": [4096])"));
  const auto c = run_cli("calibrate " + cfg.string() + " --out " + budgets.string() + " --window 512 --block 64");
  ASSERT_EQ(c.code, 0) << c.err;
  const auto b = nlohmann::json::parse(read_file(budgets));
  const auto profile = attnbench::testing::profile("tiny");
  ASSERT_EQ(b["widths"].size(), profile.n_layers);
  for (std::size_t l = 0; l < profile.n_layers; ++l) {
    ASSERT_EQ(b["widths"][l].size(), profile.n_kv_heads);
    for (std::size_t h = 0; h < profile.n_kv_heads; ++h) {
      // The chosen profile covers tau of the mass, unless even the widest could not.
      EXPECT_TRUE(b["coverage"][l][h].get<double>() >= 0.9 || b["widths"][l][h] == b["profiles"].back())
          << "layer " << l << ", head " << h;
      EXPECT_LT(b["kept_share"][l][h].get<double>(), 1.0);
    }
  }
  const auto run_cfg = write(d, "tca.json", config(R"(["dense", {"name": "tca", "params": {"budgets": ")" +
                                                       budgets.string() + R"("}}])",
                                                   R"(, "context_lengths": [4096])"));
  const auto r = run_cli("run " + run_cfg.string() + " --out " + (d / "run").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto results = nlohmann::json::parse(read_file(d / "run" / "results.json"));
  for (const auto& cell : results["cells"]) {
    const auto& m = cell["metrics"];
    if (cell["policy"] == "tca") {
      EXPECT_LT(m["kv_bytes_resident"].get<double>(), 0.7 * m["kv_bytes_resident_before_eviction"].get<double>());
    } else {
      EXPECT_EQ(m["kv_bytes_resident"], m["kv_bytes_resident_before_eviction"]);
    }
  }
  expect_failure(run_cli("run " + write(d, "nobudget.json", config(R"(["tca"])")).string()), exit_plugin,
                 {"tca", "attnbench calibrate"});
  const auto missing = write(d, "missing.json", config(R"([{"name": "tca", "params": {"budgets": "nope.json"}}])"));
  expect_failure(run_cli("run " + missing.string()), exit_plugin, {"tca", "cannot open 'nope.json'"});
}

TEST(Cli, CompareExitsSevenOnARegressionAndZeroOtherwise) {
  const auto dir = scratch("cli-compare");
  auto bench = [&](const std::string& name, double ratio) {
    nlohmann::json doc = {{"benchmarks", nlohmann::json::array()}};
    for (int i = 0; i < 5; ++i)
      doc["benchmarks"].push_back({{"name", "decode/x"}, {"run_name", "decode/x"}, {"run_type", "iteration"},
                                   {"probe_ratio", ratio * (1.0 + 0.002 * i)}});
    return write(dir, name, doc.dump()).string();
  };
  const auto base = bench("base.json", 0.8), slow = bench("slow.json", 0.64), same = bench("same.json", 0.8);
  auto r = run_cli("compare " + quote(base) + " " + quote(slow));
  EXPECT_EQ(r.code, 7) << r.out << r.err;
  EXPECT_NE(r.out.find("REGRESSION"), std::string::npos) << r.out;
  r = run_cli("compare " + quote(base) + " " + quote(same));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  r = run_cli("compare " + quote(base) + " " + quote(slow) + " --threshold 25");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  expect_failure(run_cli("compare " + quote(base) + " " + quote((dir / "missing.json").string())), 3,
                 {"missing.json", "no such file"});
}

TEST(Cli, ShardsMergeIntoTheFullRun) {
  const auto dir = scratch("cli-shards");
  const auto cfg = write(dir, "c.json",
                         config(R"(["dense", "sink_window"])", R"(, "context_lengths": [1024, 2048], "seeds": [0, 1])"));
  auto run = [&](const std::string& extra, const fs::path& out) {
    return run_cli("run " + quote(cfg.string()) + " --out " + quote(out.string()) + " " + extra);
  };
  ASSERT_EQ(run("", dir / "full").code, 0);
  for (int i = 0; i < 3; ++i) {
    const auto r = run("--shard " + std::to_string(i) + "/3", dir / ("s" + std::to_string(i)));
    ASSERT_EQ(r.code, 0) << r.err;
    // Not a terminal: one plain log line per cell, with the elapsed time.
    EXPECT_NE(r.err.find("elapsed"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("\r"), std::string::npos);
  }
  const auto merged = run_cli("merge " + quote((dir / "s0").string()) + " " + quote((dir / "s1").string()) + " " +
                              quote((dir / "s2").string()) + " --out " + quote((dir / "merged").string()));
  ASSERT_EQ(merged.code, 0) << merged.err;
  EXPECT_NE(merged.out.find("merged 8 of the grid's 8 cells"), std::string::npos) << merged.out;
  const auto full = nlohmann::json::parse(read_file(dir / "full" / "results.json"));
  const auto joined = nlohmann::json::parse(read_file(dir / "merged" / "results.json"));
  ASSERT_EQ(full["cells"].size(), joined["cells"].size());
  for (std::size_t i = 0; i < full["cells"].size(); ++i) {
    EXPECT_EQ(full["cells"][i]["id"], joined["cells"][i]["id"]);
    EXPECT_EQ(full["cells"][i]["metrics"]["accuracy"], joined["cells"][i]["metrics"]["accuracy"]);
  }
  EXPECT_EQ(full["summary"]["ruler"], joined["summary"]["ruler"]);
  std::size_t lines = 0;
  for (char c : read_file(dir / "merged" / "samples.jsonl")) lines += c == '\n';
  EXPECT_EQ(lines, 8u * 2u);
  // A shard of another config, the same shard twice, a bad --shard, resume with another shard.
  const auto other = write(dir, "o.json", config(R"(["dense"])"));
  ASSERT_EQ(run_cli("run " + quote(other.string()) + " --out " + quote((dir / "other").string())).code, 0);
  expect_failure(run_cli("merge " + quote((dir / "s0").string()) + " " + quote((dir / "other").string()) + " --out " +
                         quote((dir / "m2").string())),
                 3, {"other", "differs from", "merge only shards of one config"});
  expect_failure(run_cli("merge " + quote((dir / "s0").string()) + " " + quote((dir / "s0").string()) + " --out " +
                         quote((dir / "m3").string())),
                 3, {"s0", "holds cell"});
  expect_failure(run("--shard 3/3", dir / "bad"), 2, {"--shard", "3/3"});
  expect_failure(run("--shard 1/3 --resume", dir / "s0"), 5, {"--resume", "shard"});
}

TEST(Cli, ReportWritesTablesPlotDataAndReportMd) {
  const auto dir = scratch("cli-report");
  const auto cfg = write(dir, "c.json", config(R"(["dense", "sink_window"])", R"(, "context_lengths": [1024, 2048])"));
  ASSERT_EQ(run_cli("run " + quote(cfg.string()) + " --out " + quote((dir / "run").string())).code, 0);
  // Plugin figures come from a plugin that reports some (quest), in a folder of its own.
  const auto quest = write(dir, "q.json", config(R"([{"name": "quest", "params": {"budget": 256}}])"));
  ASSERT_EQ(run_cli("run " + quote(quest.string()) + " --out " + quote((dir / "quest").string())).code, 0);
  const auto q = run_cli("report " + quote((dir / "quest").string()) + " --no-plots");
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_NE(read_file(dir / "quest" / "report" / "plugin-stats.csv").find("pages_selected_share"), std::string::npos);
  const auto r = run_cli("report " + quote((dir / "run").string()) + " --no-plots");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rep = dir / "run" / "report";
  for (const char* f : {"report.md", "ruler.md", "ruler.csv", "efficiency.md", "efficiency.csv", "needles.csv", "layers.csv"})
    EXPECT_TRUE(fs::exists(rep / f)) << f;
  const std::string ruler = read_file(rep / "ruler.csv");
  EXPECT_EQ(ruler.rfind("policy,terminator,task,1024,2048,mean\n", 0), 0u) << ruler;
  EXPECT_NE(ruler.find("dense,none,niah_single_1,"), std::string::npos) << ruler;
  const std::string eff = read_file(rep / "efficiency.csv");
  // dense and sink_window at two lengths; sink_window has a speedup against dense.
  std::size_t rows = 0;
  for (char c : eff) rows += c == '\n';
  EXPECT_EQ(rows, 1u + 4u) << eff;
  EXPECT_NE(eff.find("sink_window,sink_window,none,2048,1,"), std::string::npos) << eff;
  const std::string md = read_file(rep / "report.md");
  EXPECT_NE(md.find("## RULER"), std::string::npos);
  EXPECT_NE(md.find("## Efficiency"), std::string::npos);
  EXPECT_NE(md.find("(ruler.csv)"), std::string::npos);
  // Several folders need --out and may not share cells.
  expect_failure(run_cli("report " + quote((dir / "run").string()) + " " + quote((dir / "run").string())), 2, {"--out"});
  expect_failure(run_cli("report " + quote((dir / "run").string()) + " " + quote((dir / "run").string()) +
                         " --no-plots --out " + quote((dir / "both").string())),
                 3, {"holds cell", "do not overlap"});
  expect_failure(run_cli("report " + quote((dir / "nothing").string())), 3, {"nothing", "not a results folder"});
}

TEST(Cli, ReportDrawsPlotsWithMatplotlib) {
  if (std::system("/usr/bin/python3 -c 'import matplotlib' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3-matplotlib is not installed (scripts/setup.sh installs it)";
  const auto dir = scratch("cli-report-plots");
  const auto cfg = write(dir, "c.json", config(R"(["dense", "sink_window"])", R"(, "terminators": ["none", "stop_after"])"));
  ASSERT_EQ(run_cli("run " + quote(cfg.string()) + " --out " + quote((dir / "run").string())).code, 0);
  const auto r = run_cli("report " + quote((dir / "run").string()));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"throughput.png", "tradeoff.png", "layers.png", "needles-dense.png"})
    EXPECT_GT(fs::file_size(dir / "run" / "report" / "plots" / f), 1000u) << f;
  EXPECT_NE(read_file(dir / "run" / "report" / "report.md").find("![throughput](plots/throughput.png)"),
            std::string::npos);
}

// dump-kv: the arrays have the sizes meta.json states, the same sample dumps the same
// bytes, another sample other bytes, and an unwritable folder is an output error.
TEST(Cli, DumpKvWritesArraysOfTheStatedShape) {
  const auto d = scratch("cli-dump");
  const auto cfg = write(d, "dump.json", config(R"(["dense"])"));
  const auto r = run_cli("dump-kv " + cfg.string() + " --out " + (d / "a").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto meta = nlohmann::json::parse(read_file(d / "a" / "meta.json"));
  const auto profile = attnbench::testing::profile("tiny");
  EXPECT_EQ(meta["n_layers"], profile.n_layers);
  EXPECT_EQ(meta["n_kv_heads"], profile.n_kv_heads);
  EXPECT_EQ(meta["dtype"], "fp16");
  const std::uint64_t n = meta["n_tokens"];
  EXPECT_GT(n, 900u);
  EXPECT_LE(n, 1024u);
  const std::uint64_t kv_bytes = std::uint64_t{profile.n_layers} * profile.n_kv_heads * n * profile.head_dim * 2;
  EXPECT_EQ(fs::file_size(d / "a" / "k.bin"), kv_bytes);
  EXPECT_EQ(fs::file_size(d / "a" / "v.bin"), kv_bytes);
  EXPECT_EQ(fs::file_size(d / "a" / "q.bin"),
            std::uint64_t{profile.n_layers} * profile.n_query_heads * profile.head_dim * sizeof(float));
  ASSERT_EQ(run_cli("dump-kv " + cfg.string() + " --out " + (d / "b").string()).code, 0);
  ASSERT_EQ(run_cli("dump-kv " + cfg.string() + " --sample 1 --out " + (d / "c").string()).code, 0);
  EXPECT_EQ(read_file(d / "a" / "k.bin"), read_file(d / "b" / "k.bin"));
  EXPECT_EQ(read_file(d / "a" / "q.bin"), read_file(d / "b" / "q.bin"));
  EXPECT_NE(read_file(d / "a" / "k.bin"), read_file(d / "c" / "k.bin"));
  write(d, "a-file", "x");
  expect_failure(run_cli("dump-kv " + cfg.string() + " --out " + (d / "a-file" / "x").string()), exit_output,
                 {"dump-kv: cannot create"});
}
