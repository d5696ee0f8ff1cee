// The attnbench executable end to end: help and list, exit codes and one-line errors for
// bad input, a small run with its results files, batches, --resume, and Ctrl-C keeping
// finished cells.
#include "cli-helpers.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using namespace attnbench::testing::cli;
namespace fs = std::filesystem;

TEST(Cli, HelpDocumentsExitCodes) {
  const auto r = run_cli("run --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Exit codes"), std::string::npos);
  EXPECT_NE(r.out.find("--resume"), std::string::npos);
  EXPECT_EQ(run_cli("frobnicate").code, exit_usage);
  EXPECT_EQ(run_cli("").code, exit_usage);                   // no subcommand
  EXPECT_EQ(run_cli("run --no-such-option x").code, exit_usage);
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
  EXPECT_FALSE(parsed["profile_path"].empty());
}

// list's columns and folders: every task's description starts in one column, however
// long its name; each kernel target is listed once with what it is; a folder of a search
// path that is not there says so.
TEST(Cli, ListAlignsTasksAndMarksMissingFolders) {
  const auto missing = scratch("cli-list") / "no-such-folder";
  const auto r = run_cli("--plugin-path " + missing.string() + " list");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream in(r.out);
  std::string section;
  std::set<std::size_t> description_columns;
  std::map<std::string, int> targets;
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("  ")) {
      section = line;
      continue;
    }
    if (section == "tasks:") description_columns.insert(line.find_first_not_of(' ', line.find(' ', 2)));
    if (section.starts_with("kernel targets")) ++targets[line.substr(2, line.find(' ', 2) - 2)];
  }
  EXPECT_EQ(description_columns.size(), 1u) << r.out;
  // Highway builds SCALAR or EMU128 as its portable target, by compiler.
  EXPECT_LE(targets["SCALAR"], 1) << r.out;
  EXPECT_EQ(targets["scalar"], 1) << r.out;
  EXPECT_NE(r.out.find("  scalar   plain C++ loops, no Highway"), std::string::npos) << r.out;
  if (targets["SCALAR"]) EXPECT_NE(r.out.find("  SCALAR   Highway's portable one-lane code"), std::string::npos) << r.out;
  if (targets["EMU128"]) EXPECT_NE(r.out.find("  EMU128   Highway's portable 128-bit emulation"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(missing.string() + "  (does not exist)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(ATTNBENCH_EXE_DIR.string() + "  (does not exist)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("profile search path"), std::string::npos);
}

// A binary copied elsewhere with its plugins finds profiles beside itself
// (EXE/configs/profiles), and a profile found nowhere names every folder tried.
TEST(Cli, ARelocatedBinaryFindsProfilesBesideItself) {
  const auto d = scratch("cli-relocated");
  const auto bin = d / "bin";
  fs::create_directories(bin / "configs" / "profiles");
  fs::copy_file(ATTNBENCH_EXE, bin / "attnbench");
  fs::copy_file(ATTNBENCH_EXE_DIR / "attnbench-plugin-dense.so", bin / "attnbench-plugin-dense.so");
  fs::copy_file(fs::path(ATTNBENCH_TEST_SOURCE_DIR) / "configs/profiles/tiny.json",
                bin / "configs" / "profiles" / "relocated-only.json");
  const auto cfg = write(d, "r.json", R"({"model": {"profile": "relocated-only"}, "tasks": ["niah_single_1"],
    "context_lengths": [1024], "policies": ["dense"], "samples": 1})");
  const std::string exe = quote((bin / "attnbench").string());
  const auto r = run_shell(exe + " validate " + cfg.string());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("valid: 1 cell"), std::string::npos) << r.out;
  const auto missing = write(d, "m.json", R"({"model": {"profile": "nowhere"}, "tasks": ["niah_single_1"],
    "context_lengths": [1024], "policies": ["dense"], "samples": 1})");
  const auto m = run_shell(exe + " validate " + missing.string());
  expect_failure(m, exit_config, {"no profile named \"nowhere\"", (bin / "configs" / "profiles" / "nowhere.json").string(),
                                  (d / "profiles" / "nowhere.json").string()});
}

// probe: every read method for each thread count asked, the best median named as the
// ceiling, in the table and in JSON.
TEST(Cli, ProbeReportsEveryReadMethodAndTheCeiling) {
  const auto j = run_cli("probe --threads 1 --threads 2 --mib 16 --repetitions 2 --no-macs --json");
  ASSERT_EQ(j.code, 0) << j.err;
  const auto parsed = nlohmann::json::parse(j.out);
  ASSERT_EQ(parsed["ceilings"].size(), 2u);
  for (const auto& c : parsed["ceilings"]) {
    ASSERT_EQ(c["methods"].size(), 6u);
    double best = 0;
    std::string best_name;
    for (const auto& m : c["methods"]) {
      EXPECT_GT(m["median_bytes_per_s"].get<double>(), 0.0);
      if (m["median_bytes_per_s"].get<double>() > best) best = m["median_bytes_per_s"], best_name = m["method"];
    }
    EXPECT_EQ(c["ceiling_bytes_per_s"].get<double>(), best);
    EXPECT_EQ(c["best_method"], best_name);
    EXPECT_FALSE(c.contains("macs_per_s"));
  }
  const auto t = run_cli("probe --threads 1 --mib 16 --repetitions 1");
  ASSERT_EQ(t.code, 0) << t.err;
  for (const char* word : {"scalar/4k", "simd/huge", "simd/kv", "<- ceiling", "multiply-adds"})
    EXPECT_NE(t.out.find(word), std::string::npos) << word << " not in\n" << t.out;
  EXPECT_EQ(run_cli("probe --mib 1").code, 2);
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
  expect_failure(run_cli("run " + good.string() + " --set samplse=1"), exit_usage,
                 {"unknown path /samplse (did you mean 'samples'?)"});
  write(d, "a-file", "x");
  expect_failure(run_cli("run " + good.string() + " --out " + (d / "a-file" / "run").string()), exit_output,
                 {"a-file/run", "cannot create"});
  expect_failure(run_cli("run " + write(d, "huge.json", R"({"tasks": ["niah_single_1"], "context_lengths": [16000000], "policies": ["dense"]})").string()),
                 exit_resources, {"needs about", "GiB"});
  // A plan the kernel refuses costs its cell (exit 8), named in results.json's failures.
  const auto bad = run_cli("-q run " + write(d, "badplan.json", config("[\"bad_plan\"]")).string() + " --out " + (d / "bp").string());
  EXPECT_EQ(bad.code, exit_cells_failed) << bad.err;
  EXPECT_NE(bad.err.find("plugin 'bad_plan'"), std::string::npos) << bad.err;
  const auto failures = nlohmann::json::parse(read_file(d / "bp" / "results.json"))["failures"];
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0]["reason"], "plugin error");
  EXPECT_EQ(failures[0]["operation"], "plan");
  EXPECT_NE(failures[0]["message"].get<std::string>().find("out of range"), std::string::npos) << failures[0].dump();
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

