// A run against faults: plugins that crash, hang, exit or fail cost their cell and not
// the run; results folders are locked, never written through a planted link, never
// left by a config's name; --resume repairs a samples.jsonl cut by a crash.
#include "cli-helpers.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using namespace attnbench::testing::cli;
namespace fs = std::filesystem;

namespace {

nlohmann::ordered_json results_of(const fs::path& out) {
  return nlohmann::ordered_json::parse(read_file(out / "results.json"));
}

// A config with the faulty policy first (it fails) and dense second (it must still run).
fs::path faulty_config(const fs::path& dir, const std::string& fault) {
  return write(dir, fault + ".json",
               config(R"([{"name": "faulty", "params": {"fault": ")" + fault + R"(", "at_step": 1, "at_layer": 1}}, "dense"])",
                      R"(, "samples": 1)"));
}

struct fault_case {
  const char* fault;
  const char* reason;
  const char* signal;  // "" for none
};

class PluginFault : public ::testing::TestWithParam<fault_case> {};

}  // namespace

TEST_P(PluginFault, CostsItsCellAndTheRunGoesOn) {
  const fault_case f = GetParam();
  const auto d = scratch(std::string("cli-fault-") + f.fault);
  const auto out = d / "run";
  const auto r = run_cli("run " + quote(faulty_config(d, f.fault).string()) + " --out " + quote(out.string()) +
                         (std::string(f.fault) == "hang" ? " --cell-timeout 3" : ""));
  EXPECT_EQ(r.code, exit_cells_failed) << r.err;
  EXPECT_NE(r.err.find("1 cells failed"), std::string::npos) << r.err;
  const auto doc = results_of(out);
  ASSERT_EQ(doc["cells"].size(), 1u) << doc.dump();  // dense, after the failed cell
  EXPECT_EQ(doc["cells"][0]["policy"], "dense");
  EXPECT_EQ(doc["meta"]["status"], "failed cells");
  ASSERT_EQ(doc["failures"].size(), 1u);
  const auto& failure = doc["failures"][0];
  EXPECT_EQ(failure["reason"], f.reason) << failure.dump();
  EXPECT_EQ(failure["policy"], "faulty");
  EXPECT_NE(failure["plugin"].get<std::string>().find("'faulty'"), std::string::npos) << failure.dump();
  EXPECT_EQ(failure["operation"].get<std::string>().rfind("plan", 0), 0u) << failure.dump();
  if (*f.signal) {
    EXPECT_EQ(failure["signal"], f.signal) << failure.dump();
  }
  if (std::string(f.fault) == "segv") {  // the faulting instruction is in the plugin's file
    EXPECT_NE(failure["location"].get<std::string>().find("attnbench-plugin-faulty.so"), std::string::npos);
  }
  // samples.jsonl holds the finished cell's record only.
  EXPECT_EQ(read_file(out / "samples.jsonl").find("faulty"), std::string::npos);

  // --resume runs the failed cell again (it fails again) and keeps the finished one.
  const auto again = run_cli("run " + quote(faulty_config(d, f.fault).string()) + " --out " + quote(out.string()) +
                             " --resume" + (std::string(f.fault) == "hang" ? " --cell-timeout 3" : ""));
  EXPECT_EQ(again.code, exit_cells_failed) << again.err;
  const auto after = results_of(out);
  EXPECT_EQ(after["cells"], doc["cells"]);
  EXPECT_EQ(after["failures"].size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Faults, PluginFault,
                         ::testing::Values(fault_case{"segv", "crash", "SIGSEGV"}, fault_case{"abort", "crash", "SIGABRT"},
                                           fault_case{"exit", "worker exit", ""}, fault_case{"hang", "timeout", ""},
                                           fault_case{"error", "plugin error", ""}),
                         [](const auto& info) { return std::string(info.param.fault); });

TEST(CliFaults, InProcessRunsRecordAPluginErrorAsAFailedCell) {
  const auto d = scratch("cli-fault-inprocess");
  const auto r = run_cli("run " + quote(faulty_config(d, "error").string()) + " --in-process --out " +
                         quote((d / "run").string()));
  EXPECT_EQ(r.code, exit_cells_failed) << r.err;
  const auto doc = results_of(d / "run");
  EXPECT_EQ(doc["cells"].size(), 1u);
  ASSERT_EQ(doc["failures"].size(), 1u);
  EXPECT_NE(doc["failures"][0]["message"].get<std::string>().find("failing on purpose"), std::string::npos);
}

TEST(CliFaults, OptionValuesAreChecked) {
  const auto d = scratch("cli-fault-options");
  const auto cfg = write(d, "c.json", config("[\"dense\"]"));
  for (const char* bad : {"nan", "inf", "0", "-1", "x"})
    EXPECT_EQ(run_cli("run " + quote(cfg.string()) + " --cell-timeout " + bad).code, exit_usage) << bad;
}

TEST(CliFaults, ASecondRunIntoALockedFolderNamesTheHolder) {
  const auto d = scratch("cli-lock");
  const auto cfg = write(d, "slow.json", config(R"([{"name": "faulty", "params": {"fault": "hang"}}])", R"(, "samples": 1)"));
  const auto out = d / "run";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string exe = ATTNBENCH_EXE, plugins = test_plugin_dir().string(), c = cfg.string(), o = out.string();
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    execl(exe.c_str(), exe.c_str(), "--plugin-path", plugins.c_str(), "run", c.c_str(), "--out", o.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // The first run holds the folder (its cell hangs) once results.json is there.
  for (int i = 0; i < 600 && !fs::exists(out / "results.json"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(out / "results.json"));
  const auto second = run_cli("run " + quote(cfg.string()) + " --out " + quote(out.string()) + " --resume");
  expect_failure(second, exit_output, {"in use by another attnbench run", "pid " + std::to_string(pid)});
  const auto fresh = run_cli("run " + quote(cfg.string()) + " --out " + quote(out.string()));
  EXPECT_EQ(fresh.code, exit_output) << fresh.err;
  kill(pid, SIGKILL);  // its worker goes with it
  int status = 0;
  waitpid(pid, &status, 0);
  // The lock ended with its holder: report says the run is incomplete, not in progress.
  const auto rep = run_cli("report --no-plots " + quote(out.string()));
  EXPECT_EQ(rep.code, 0) << rep.err;
  EXPECT_NE(rep.err.find("incomplete run: 0 of 1 cells finished"), std::string::npos) << rep.err;
  EXPECT_NE(rep.err.find("--resume"), std::string::npos) << rep.err;
  EXPECT_NE(read_file(out / "report" / "report.md").find("incomplete run"), std::string::npos);
}

TEST(CliFaults, PlantedLinksAreNeverFollowed) {
  const auto d = scratch("cli-links");
  const auto cfg = write(d, "c.json", config("[\"dense\"]"));
  const auto victim = write(d, "victim.txt", "precious\n");
  const auto out = d / "run";
  fs::create_directories(out);
  for (const char* name : {"results.json.tmp", "samples.jsonl", ".results.json.tmp"})
    fs::create_symlink(victim, out / name);
  const auto r = run_cli("run " + quote(cfg.string()) + " --out " + quote(out.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_file(victim), "precious\n");
  EXPECT_FALSE(fs::is_symlink(out / "samples.jsonl"));
  EXPECT_EQ(results_of(out)["cells"].size(), 1u);
  // A link as the results folder itself is refused.
  fs::create_directory_symlink(d / "elsewhere", d / "linked");
  fs::create_directories(d / "elsewhere");
  expect_failure(run_cli("run " + quote(cfg.string()) + " --out " + quote((d / "linked").string())), exit_output,
                 {"is a symbolic link"});
}

TEST(CliFaults, AConfigNameNeverLeavesTheResultsFolder) {
  const auto d = scratch("cli-name");
  for (const char* name : {"../../x", "/tmp/x", "..", ".hidden", "a/b"}) {
    const auto cfg = write(d, "n.json", config("[\"dense\"]", std::string(R"(, "name": ")") + name + "\""));
    expect_failure(run_cli("validate " + quote(cfg.string())), exit_config, {"n.json: /name"});
  }
}

TEST(CliFaults, LabelsWithSlashesGiveDistinctCells) {
  // Before: "x/none" + "none" and "x" + "none/none" were both .../x/none/none/..., and a
  // cell silently never ran.
  const auto d = scratch("cli-ids");
  const auto cfg = write(d, "ids.json",
                         config(R"([{"name": "dense", "label": "x/none"}, {"name": "dense", "label": "x"}])",
                                R"(, "terminators": ["none", {"name": "stop_after", "label": "none/none"}], "samples": 1)"));
  const auto r = run_cli("run " + quote(cfg.string()) + " --out " + quote((d / "run").string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto doc = results_of(d / "run");
  ASSERT_EQ(doc["cells"].size(), 4u);
  std::set<std::string> ids;
  for (const auto& c : doc["cells"]) ids.insert(c["id"].get<std::string>());
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_TRUE(ids.count("niah_single_1/1024/x%2Fnone/none%2Fnone/0"));
}

TEST(CliFaults, ResumeRepairsACutSamplesFile) {
  const auto d = scratch("cli-repair");
  const auto cfg = write(d, "c.json", config("[\"dense\"]", R"(, "seeds": [0, 1, 2])"));
  const auto out = d / "run";
  ASSERT_EQ(run_cli("run " + quote(cfg.string()) + " --out " + quote(out.string())).code, 0);
  auto strip = [](nlohmann::ordered_json doc) {
    for (auto& c : doc["cells"]) {
      c.erase("wall_s");
      c.erase("read_bandwidth_bytes_per_s");
      for (const char* timing : {"decode_tokens_per_s", "selection_us_per_step", "attention_us_per_step", "prefill_ms",
                                 "attention_bytes_per_s", "bandwidth_ratio"})
        c["metrics"].erase(timing);
    }
    return doc["cells"].dump();
  };
  const std::string cells = strip(results_of(out));
  const std::string samples = read_file(out / "samples.jsonl");
  // A crash tore the last line; the first cell's first record is damaged.
  const auto first_nl = samples.find('\n');
  std::string cut = "{\"cell\": [damaged\n" + samples.substr(first_nl + 1);
  cut = cut.substr(0, cut.size() - 17);
  std::ofstream(out / "samples.jsonl", std::ios::trunc) << cut;
  const auto r = run_cli("run " + quote(cfg.string()) + " --out " + quote(out.string()) + " --resume");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("torn line"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 lines of samples.jsonl were not sample records"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("repaired cell niah_single_1/1024/dense/none/0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("repaired cell niah_single_1/1024/dense/none/2"), std::string::npos) << r.err;
  const auto doc = results_of(out);
  EXPECT_EQ(strip(doc), cells);
  EXPECT_EQ(doc["meta"]["resumes"][0]["repaired_cells"].size(), 2u);
  auto keys = [](const std::string& text) {
    std::multiset<std::string> k;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      k.insert(j["cell"].get<std::string>() + "#" + std::to_string(j["sample"].get<int>()) + "#" + j["prediction"].dump());
    }
    return k;
  };
  EXPECT_EQ(keys(read_file(out / "samples.jsonl")), keys(samples));
}
