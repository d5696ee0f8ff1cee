// The attnbench executable against hostile input: configs that are too deep, too large
// or not files; results folders of another schema or with malformed cells; plugin files
// that are truncated or writable by anyone; option values that are not numbers; output
// paths inside results folders.
#include "cli-helpers.hpp"

#include <sys/stat.h>

using namespace attnbench;
using namespace attnbench::testing;
using namespace attnbench::testing::cli;
namespace fs = std::filesystem;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// A finished one-cell run, for the results-file tests.
fs::path finished_run(const fs::path& d) {
  const auto out = d / "run";
  const auto r = run_cli("run " + quote(write(d, "c.json", config("[\"dense\"]")).string()) + " --out " + quote(out.string()));
  EXPECT_EQ(r.code, 0) << r.err;
  return out;
}

void edit_results(const fs::path& run, const std::function<void(nlohmann::ordered_json&)>& edit) {
  auto doc = nlohmann::ordered_json::parse(read_file(run / "results.json"));
  edit(doc);
  std::ofstream(run / "results.json", std::ios::trunc) << doc.dump(2);
}

}  // namespace

TEST(CliInputs, ConfigsAreReadUnderLimits) {
  const auto d = scratch("cli-limits");
  // 100000 levels of nesting crashed validate (SIGSEGV).
  expect_failure(run_cli("validate " + quote(write(d, "deep.json", std::string(100000, '[') + std::string(100000, ']')).string())),
                 exit_config, {"deep.json:1:65", "nested deeper than 64"});
  expect_failure(run_cli("validate " + quote(write(d, "ok.json", config("[\"dense\"]")).string()) + " --set 'tasks=" +
                         std::string(1000, '[') + "'"),
                 exit_usage, {"--set tasks", "nested deeper than 64"});
  // /dev/zero grew memory without bound; a folder and a FIFO are refused too.
  expect_failure(run_cli("validate /dev/zero"), exit_config, {"/dev/zero: is not a regular file"});
  expect_failure(run_cli("validate " + quote(d.string())), exit_config, {"is a folder"});
  ASSERT_EQ(::mkfifo((d / "fifo.json").c_str(), 0600), 0);
  expect_failure(run_cli("validate " + quote((d / "fifo.json").string())), exit_config, {"fifo.json: is not a regular file"});
  std::string big = config("[\"dense\"]", ", \"description\": \"" + std::string(17u << 20, 'x') + "\"");
  expect_failure(run_cli("validate " + quote(write(d, "big.json", big).string())), exit_config,
                 {"big.json: is 17 MiB, more than the limit of 16 MiB"});
}

TEST(CliInputs, LongSeedListsAreCheckedInLinearTime) {
  // 200000 seeds took minutes (a quadratic duplicate check); CTest's timeout of this test
  // (60 s) fails it if that comes back. A grid past a million cells is refused.
  const auto d = scratch("cli-seeds");
  auto seeds = [](std::size_t n, bool duplicate) {
    std::string s = "[";
    for (std::size_t i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(duplicate && i == n - 1 ? 0 : i);
    return s + "]";
  };
  const auto ok = run_cli("validate " + quote(write(d, "s.json", config("[\"dense\"]", ", \"seeds\": " + seeds(200000, false))).string()));
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("valid: 200000 cells"), std::string::npos) << ok.out;
  expect_failure(run_cli("validate " + quote(write(d, "dup.json", config("[\"dense\"]", ", \"seeds\": " + seeds(200000, true))).string())),
                 exit_config, {"/seeds/199999", "listed twice (also at index 0)"});
  expect_failure(run_cli("validate " + quote(write(d, "grid.json", config("[\"dense\", {\"name\": \"dense\", \"label\": \"d2\"}]",
                                                                            ", \"seeds\": " + seeds(600000, false))).string())),
                 exit_config, {"more than 1000000 cells"});
}

TEST(CliInputs, ResultsOfAnotherSchemaVersionAreRefusedEverywhere) {
  const auto d = scratch("cli-schema");
  const auto run = finished_run(d);
  const auto copy = d / "copy";
  fs::copy(run, copy);
  edit_results(run, [](auto& doc) { doc["meta"]["schema_version"] = 999; });
  const std::vector<std::string> fragments = {"schema_version", "results schema version 999", "reads version 1"};
  expect_failure(run_cli("report --no-plots " + quote(run.string())), exit_config, fragments);
  expect_failure(run_cli("compare " + quote(copy.string()) + " " + quote(run.string())), exit_config, fragments);
  expect_failure(run_cli("merge " + quote(run.string()) + " --out " + quote((d / "m").string())), exit_config, fragments);
  expect_failure(run_cli("run " + quote((d / "c.json").string()) + " --resume --out " + quote(run.string())), exit_config,
                 fragments);
}

TEST(CliInputs, MalformedCellsAreConfigErrorsNamingTheField) {
  const auto d = scratch("cli-cells");
  const auto run = finished_run(d);
  const auto original = read_file(run / "results.json");
  const std::vector<std::pair<std::function<void(nlohmann::ordered_json&)>, std::string>> cases = {
      {[](auto& doc) { doc["cells"][0]["id"] = 5; }, "/cells/0/id: expected a string"},
      {[](auto& doc) { doc["cells"][0]["metrics"]["accuracy"] = "high"; }, "/cells/0/metrics/accuracy"},
      {[](auto& doc) { doc["cells"][0].erase("metrics"); }, "/cells/0/metrics: required field is missing"},
      {[](auto& doc) { doc["cells"] = "none"; }, "/cells: expected an array"},
      {[](auto& doc) { doc["cells"].push_back(doc["cells"][0]); }, "is listed twice"},
      {[](auto& doc) { doc["meta"]["git"] = 3; }, "/meta/git"},
      {[](auto& doc) { doc["meta"]["config"]["seeds"] = {"a"}; }, "/meta/config/seeds/0"},
  };
  for (const auto& [edit, fragment] : cases) {
    std::ofstream(run / "results.json", std::ios::trunc) << original;
    edit_results(run, edit);
    expect_failure(run_cli("report --no-plots " + quote(run.string())), exit_config, {"results.json", fragment});
  }
  // A malformed line of samples.jsonl (not a torn last one) names its line.
  std::ofstream(run / "results.json", std::ios::trunc) << original;
  std::ofstream(run / "samples.jsonl", std::ios::app) << "{\"cell\": 3}\n";
  expect_failure(run_cli("report --no-plots " + quote(run.string())), exit_config, {"samples.jsonl:3", "/cell"});
}

TEST(CliInputs, CompareNeedsSomethingToCompareAndFiniteOptions) {
  const auto d = scratch("cli-compare-empty");
  const auto run = finished_run(d);
  const auto empty = d / "empty";
  fs::copy(run, empty);
  edit_results(empty, [](auto& doc) { doc["cells"] = nlohmann::ordered_json::array(); });
  // Before: "0 metrics; 0 regressed" and exit 0.
  expect_failure(run_cli("compare " + quote(empty.string()) + " " + quote(run.string())), exit_config,
                 {"empty", "has no metric to compare"});
  expect_failure(run_cli("compare " + quote(run.string()) + " " + quote(empty.string())), exit_config,
                 {"empty", "has no metric to compare"});
  for (const char* option : {"--noise-sigmas nan", "--threshold inf", "--accuracy-drop -1", "--threshold x"})
    EXPECT_EQ(run_cli("compare " + quote(run.string()) + " " + quote(run.string()) + " " + option).code, exit_usage) << option;
}

TEST(CliInputs, PluginFilesAreCheckedBeforeLoading) {
  const auto d = scratch("cli-plugin-files");
  const auto dense = ATTNBENCH_EXE_DIR / fs::path("attnbench-plugin-dense.so");
  // A truncated copy crashed list with SIGBUS inside dlopen.
  const auto cut = d / "cut";
  fs::create_directories(cut);
  const std::string image = read_file(dense);
  std::ofstream(cut / "attnbench-plugin-trunc.so", std::ios::binary) << image.substr(0, image.size() / 3);
  const auto l = run_cli("--plugin-path " + quote(cut.string()) + " list");
  EXPECT_EQ(l.code, 0) << l.err;
  EXPECT_NE(l.out.find("lies outside the file"), std::string::npos) << l.out;
  std::string other = image;
  other[18] = 0x28;  // e_machine: ARM
  std::ofstream(cut / "attnbench-plugin-arm.so", std::ios::binary) << other;
  EXPECT_NE(run_cli("--plugin-path " + quote(cut.string()) + " list").out.find("another architecture"), std::string::npos);

  // A folder or file anyone may write is refused, saying how to fix it.
  const auto open_dir = d / "open";
  fs::create_directories(open_dir);
  fs::copy_file(dense, open_dir / "attnbench-plugin-mine.so");
  fs::permissions(open_dir, fs::perms::all);
  const auto cfg = write(d, "c.json", config(R"([{"name": "dense", "plugin": ")" + (open_dir / "attnbench-plugin-mine.so").string() + "\"}]"));
  expect_failure(run_cli("validate " + quote(cfg.string())), exit_plugin, {"writable by every user", "chmod o-w"});
  fs::permissions(open_dir, fs::perms::others_write, fs::perm_options::remove);
  EXPECT_EQ(run_cli("validate " + quote(cfg.string())).code, exit_ok);
  fs::permissions(open_dir / "attnbench-plugin-mine.so", fs::perms::others_write, fs::perm_options::add);
  expect_failure(run_cli("validate " + quote(cfg.string())), exit_plugin, {"attnbench-plugin-mine.so is writable by every user"});

  // The current directory is never searched: a relative ATTNBENCH_PLUGIN_PATH entry is an error.
  expect_failure(run_cli_env("ATTNBENCH_PLUGIN_PATH=plugins", "list"), exit_plugin, {"ATTNBENCH_PLUGIN_PATH", "relative"});
}

TEST(CliInputs, OtherCommandsNeverWriteOverAResultsFolder) {
  const auto d = scratch("cli-overwrite");
  const auto run = finished_run(d);
  const std::string before = read_file(run / "results.json");
  const auto cfg = (d / "c.json").string();
  expect_failure(run_cli("stats " + quote(cfg) + " --samples 1 --steps 1 --json " + quote((run / "results.json").string())),
                 exit_output, {"--json", "would write over a file of the results folder"});
  expect_failure(run_cli("calibrate " + quote(cfg) + " --out " + quote((run / "results.json").string())), exit_output,
                 {"--out", "would write over"});
  expect_failure(run_cli("dump-kv " + quote(cfg) + " --out " + quote(run.string())), exit_output, {"is a results folder"});
  EXPECT_EQ(read_file(run / "results.json"), before);
  expect_failure(run_cli("dump-kv " + quote(cfg) + " --sample 99999 --out " + quote((d / "dump").string())), exit_usage,
                 {"--sample 99999", "samples 0 .. 1"});
}

TEST(CliInputs, TheMemoryCheckHonoursTheAddressSpaceLimit) {
  // Under ulimit -v a big cell died with std::bad_alloc (exit 1); now the check sees the
  // limit (exit 6) before any cell runs.
  if (kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: no run starts under ulimit -v";
  const auto d = scratch("cli-ulimit");
  const auto cfg = write(d, "big.json", R"({"model": {"profile": "default"}, "tasks": ["niah_single_1"],
                                           "context_lengths": [131072], "policies": ["dense"], "samples": 1})");
  const auto r = run_cli_prefix("ulimit -v 3000000; ", "run " + quote(cfg.string()) + " --out " + quote((d / "run").string()));
  EXPECT_EQ(r.code, exit_resources) << r.err;
  EXPECT_NE(r.err.find("address-space limit"), std::string::npos) << r.err;
}

TEST(CliInputs, AnUnknownSubcommandIsNamed) {
  expect_failure(run_cli("frobnicate"), exit_usage, {"unknown subcommand 'frobnicate'", "run"});
  expect_failure(run_cli("-v frob x"), exit_usage, {"unknown subcommand 'frob'"});
  // A typing mistake gets the closest subcommand; a word far from all of them gets none.
  expect_failure(run_cli("rnu"), exit_usage, {"unknown subcommand 'rnu' (did you mean 'run'?)"});
  expect_failure(run_cli("merg"), exit_usage, {"(did you mean 'merge'?)"});
  EXPECT_EQ(run_cli("frobnicate").err.find("did you mean"), std::string::npos);
}

TEST(CliInputs, TheMemoryCheckHonoursTheCgroupLimit) {
  // A cgroup (v1 memory controller, or v2) of 3 GiB around the run: the check sees it.
  const auto d = scratch("cli-cgroup");
  const std::string name = "attnbench-test-" + std::to_string(getpid());
  fs::path group;
  for (const fs::path root : {fs::path("/sys/fs/cgroup/memory"), fs::path("/sys/fs/cgroup")}) {
    std::error_code ec;
    if (!fs::exists(root / "cgroup.procs") || !fs::create_directory(root / name, ec) || ec) continue;
    const fs::path limit = fs::exists(root / name / "memory.limit_in_bytes") ? root / name / "memory.limit_in_bytes"
                                                                             : root / name / "memory.max";
    std::ofstream(limit) << (3ull << 30) << "\n";
    if (read_file(limit).rfind(std::to_string(3ull << 30), 0) == 0) {
      group = root / name;
      break;
    }
    fs::remove(root / name, ec);
  }
  if (group.empty()) GTEST_SKIP() << "cannot create a memory cgroup here (not root, or no writable cgroup mount)";
  const auto cfg = write(d, "big.json", R"({"model": {"profile": "default"}, "tasks": ["niah_single_1"],
                                           "context_lengths": [131072], "policies": ["dense"], "samples": 1})");
  const auto r = run_cli_prefix("echo $$ > " + quote((group / "cgroup.procs").string()) + " && exec ",
                                "validate " + quote(cfg.string()));
  std::error_code ec;
  fs::remove(group, ec);
  EXPECT_EQ(r.code, exit_resources) << r.err;
  EXPECT_NE(r.err.find("cgroup's memory limit"), std::string::npos) << r.err;
}

TEST(CliInputs, RunningOutOfMemoryInACellIsExitSix) {
  // With the check lifted (memory_limit_gib), a cell that cannot get its memory under
  // ulimit -v ends the run with exit 6 and a message, not std::bad_alloc and exit 1.
  if (kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: no run starts under ulimit -v";
  const auto d = scratch("cli-oom");
  const auto cfg = write(d, "big.json", R"({"model": {"profile": "default"}, "tasks": ["niah_single_1"],
                                           "context_lengths": [131072], "policies": ["dense"], "samples": 1,
                                           "memory_limit_gib": 1000})");
  const auto r = run_cli_prefix("ulimit -v 3000000; ", "run " + quote(cfg.string()) + " --probe-mib 16 --out " +
                                                          quote((d / "run").string()));
  EXPECT_EQ(r.code, exit_resources) << r.err;
  EXPECT_NE(r.err.find("out of memory"), std::string::npos) << r.err;
}

TEST(CliInputs, CommandLineMistakesAreUsageOrOutputErrors) {
  const auto d = scratch("cli-mistakes");
  const auto cfg = write(d, "c.json", config("[\"dense\"]"));
  const std::string c = quote(cfg.string());
  expect_failure(run_cli("run " + c + " --resume"), exit_usage, {"--resume needs --out"});
  expect_failure(run_cli("run " + c + " --resume --out " + quote((d / "none").string())), exit_output,
                 {"results.json does not exist; nothing to resume"});
  expect_failure(run_cli("run " + c + " --shard 2"), exit_usage, {"--shard: expected I/N"});
  EXPECT_EQ(run_cli("run " + c + " --probe-mib 1").code, exit_usage);
  expect_failure(run_cli("report --no-plots " + quote(d.string()) + " " + quote(d.string())), exit_usage,
                 {"several folders needs --out"});
  expect_failure(run_cli("stats " + c + " --task nope"), exit_usage, {"--task: unknown task 'nope'"});
  expect_failure(run_cli("stats " + c + " --length 10"), exit_usage, {"--length", "needs at least"});
  expect_failure(run_cli("validate " + quote(write(d, "n.json", config("[\"dense\"]", R"(, "terminators": [{"name": "none", "params": {"x": 1}}])")).string())),
                 exit_config, {"/terminators/0/params", "takes no parameters"});
  // merge never writes into a results folder.
  const auto run = finished_run(d);
  expect_failure(run_cli("merge " + quote(run.string()) + " --out " + quote(run.string())), exit_output,
                 {"already holds results.json"});
}
