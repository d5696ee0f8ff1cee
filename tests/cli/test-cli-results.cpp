// The attnbench executable on results folders: compare, shards and merge, report.
#include "cli-helpers.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using namespace attnbench::testing::cli;
namespace fs = std::filesystem;

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
  // Two of the three shards: the missing cells are named and nothing is written, unless
  // --allow-missing, which writes an incomplete run.
  const std::string two = quote((dir / "s0").string()) + " " + quote((dir / "s1").string());
  const auto s2 = nlohmann::json::parse(read_file(dir / "s2" / "results.json"));
  ASSERT_FALSE(s2["cells"].empty());
  expect_failure(run_cli("merge " + two + " --out " + quote((dir / "m4").string())), 9,
                 {"cells are in none of the 2 folders", s2["cells"][0]["id"].get<std::string>(), "--resume"});
  EXPECT_FALSE(fs::exists(dir / "m4" / "results.json"));
  ASSERT_EQ(run_cli("merge " + two + " --allow-missing --out " + quote((dir / "m4").string())).code, 0);
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "m4" / "results.json"))["meta"]["status"], "incomplete");
  // The shards' balance, estimated and measured.
  EXPECT_NE(merged.out.find("shards: estimated"), std::string::npos) << merged.out;
  expect_failure(run("--shard 3/3", dir / "bad"), 2, {"--shard", "3/3"});
  expect_failure(run("--shard 1/3 --resume", dir / "s0"), 5, {"--resume", "shard"});
}

namespace {

// The rows of a CSV file, quoted cells ("a, b" and "" for a quote) read whole.
std::vector<std::vector<std::string>> read_csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted && c == '"' && i + 1 < text.size() && text[i + 1] == '"') cell += text[++i];
    else if (c == '"') quoted = !quoted;
    else if (!quoted && c == ',') rows.back().push_back(std::exchange(cell, {}));
    else if (!quoted && c == '\n') {
      rows.back().push_back(std::exchange(cell, {}));
      rows.emplace_back();
    } else cell += c;
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

}  // namespace

TEST(Cli, ReportWritesTablesPlotDataAndReportMd) {
  const auto dir = scratch("cli-report");
  // The config lists sink_window before dense: every table keeps that order.
  const auto cfg = write(dir, "c.json", config(R"(["sink_window", "dense"])", R"(, "context_lengths": [1024, 2048])"));
  ASSERT_EQ(run_cli("run " + quote(cfg.string()) + " --out " + quote((dir / "run").string())).code, 0);
  // Plugin figures come from a plugin that reports some (quest), in a folder of its own,
  // run with attention fidelity on the default profile's long-tailed heads: the report
  // gains its table, quest visiting part of the mass that dense visits whole.
  const auto quest = write(dir, "q.json",
                           R"({"model": {"profile": "default"}, "tasks": ["niah_single_1"], "context_lengths": [1024],
                               "samples": 2, "policies": ["dense", {"name": "quest", "params": {"budget": 256}}],
                               "metrics": {"fidelity": true}})");
  ASSERT_EQ(run_cli("run " + quote(quest.string()) + " --out " + quote((dir / "quest").string())).code, 0);
  const auto q = run_cli("report " + quote((dir / "quest").string()) + " --no-plots");
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_NE(read_file(dir / "quest" / "report" / "plugin-stats.csv").find("pages_selected_share"), std::string::npos);
  const std::string fidelity = read_file(dir / "quest" / "report" / "fidelity.csv");
  EXPECT_EQ(fidelity.rfind("policy,plugin,terminator,context,cells,accuracy,attention recall %,output error %,", 0), 0u)
      << fidelity;
  EXPECT_NE(fidelity.find("\ndense,dense,none,1024,1,100.0,100.00,0.00,"), std::string::npos) << fidelity;
  EXPECT_NE(fidelity.find("\nquest,quest,none,1024,1,"), std::string::npos) << fidelity;
  EXPECT_EQ(fidelity.find("\nquest,quest,none,1024,1,100.0,100.00,"), std::string::npos) << fidelity;
  EXPECT_NE(read_file(dir / "quest" / "report" / "report.md").find("## Attention fidelity"), std::string::npos);
  const auto r = run_cli("report " + quote((dir / "run").string()) + " --no-plots");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rep = dir / "run" / "report";
  for (const char* f : {"report.md", "ruler.md", "ruler.csv", "ruler-score.md", "ruler-score.csv", "efficiency.md",
                        "efficiency.csv", "needles.csv", "layers.csv"})
    EXPECT_TRUE(fs::exists(rep / f)) << f;
  EXPECT_FALSE(fs::exists(rep / "fidelity.csv"));  // not asked for
  // The score table run printed, as one row per policy and terminator.
  const std::string score = read_file(rep / "ruler-score.csv");
  EXPECT_EQ(score.rfind("policy,terminator,1024,2048,mean\n", 0), 0u) << score;
  const std::string ruler = read_file(rep / "ruler.csv");
  EXPECT_EQ(ruler.rfind("policy,terminator,task,1024,2048,mean\n", 0), 0u) << ruler;
  EXPECT_NE(ruler.find("dense,none,niah_single_1,"), std::string::npos) << ruler;
  const std::string eff = read_file(rep / "efficiency.csv");
  // dense and sink_window at two lengths; sink_window has a speedup against dense.
  std::size_t rows = 0;
  for (char c : eff) rows += c == '\n';
  EXPECT_EQ(rows, 1u + 4u) << eff;
  EXPECT_NE(eff.find("sink_window,sink_window,none,2048,1,"), std::string::npos) << eff;
  EXPECT_LT(eff.find("sink_window,sink_window,none,1024,"), eff.find("dense,dense,none,1024,")) << eff;
  EXPECT_LT(eff.find("dense,dense,none,1024,"), eff.find("sink_window,sink_window,none,2048,")) << eff;
  EXPECT_LT(score.find("\nsink_window,"), score.find("\ndense,")) << score;
  // The terminal gets the headline tables, in the same order, then the files.
  EXPECT_NE(r.out.find("RULER score"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Efficiency"), std::string::npos) << r.out;
  EXPECT_LT(r.out.find("\nsink_window "), r.out.find("\ndense ")) << r.out;
  EXPECT_LT(r.out.find("Efficiency"), r.out.find("report: ")) << r.out;
  // Where quest reads more K/V per step than dense, its row says why.
  const auto q_eff = read_csv_rows(read_file(dir / "quest" / "report" / "efficiency.csv"));
  ASSERT_EQ(q_eff.size(), 3u);
  const auto column = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(q_eff[0].begin(), q_eff[0].end(), name) - q_eff[0].begin());
  };
  const std::size_t kv = column("KV read MB/step"), note = column("note");
  const double quest_kv = std::stod(q_eff[2][kv]), dense_kv = std::stod(q_eff[1][kv]);
  ASSERT_EQ(q_eff[2][0], "quest");
  // The figures are rounded to 0.1 MB; the note follows the unrounded ones.
  if (quest_kv != dense_kv) EXPECT_EQ(note < q_eff[0].size(), quest_kv > dense_kv) << "a note only where quest reads more";
  if (quest_kv > dense_kv) EXPECT_NE(q_eff[2][note].find("first 2 layers are dense"), std::string::npos);
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

