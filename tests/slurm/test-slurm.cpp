// `attnbench sweep --slurm` against a real Slurm (issue 25): a single-node cluster on
// localhost from Debian's packages (tests/slurm/cluster.sh starts munged, slurmctld and
// slurmd in a scratch folder and stops them at the end, also when a check fails). The
// sweep's merged folder must equal an unsharded run of the same config, after a clean
// sweep and after one whose array task was cancelled mid-run and which was submitted
// again. Skips, saying why, only where the cluster cannot start (no Slurm, not root).
#include "../cli/cli-helpers.hpp"

#include <cstdlib>
#include <set>

using namespace attnbench::testing;
using namespace attnbench::testing::cli;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const fs::path kClusterScript = fs::path(ATTNBENCH_TEST_SOURCE_DIR) / "tests" / "slurm" / "cluster.sh";

std::string shell(const std::string& cmd, int* code = nullptr) {
  const fs::path out = scratch("slurm-shell") / ("out-" + std::to_string(getpid()) + ".txt");
  const int status = std::system((cmd + " > " + quote(out.string()) + " 2>&1").c_str());
  if (code) *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return read_file(out);
}

// The cluster for one test; stopped by the destructor whatever happened.
struct cluster {
  fs::path dir;
  int code = 0;
  std::string message;
  explicit cluster(const fs::path& d) : dir(d) {
    message = shell("bash " + quote(kClusterScript.string()) + " start " + quote(dir.string()), &code);
    if (code == 0) setenv("SLURM_CONF", (dir / "slurm.conf").c_str(), 1);
  }
  ~cluster() { shell("bash " + quote(kClusterScript.string()) + " stop " + quote(dir.string())); }
};

// Waits until no job of the ids is queued or running (squeue lists none of them).
bool wait_for_jobs(const std::string& ids, int seconds) {
  for (int i = 0; i < seconds * 5; ++i) {
    int code = 0;
    const std::string out = shell("squeue -h -o %i -j " + ids, &code);
    if (code != 0 || out.find_first_not_of(" \n") == std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

// The job ids a sweep printed ("progress: squeue -j A,M").
std::string job_ids(const std::string& out) {
  const auto at = out.find("squeue -j ");
  return at == std::string::npos ? "" : out.substr(at + 10, out.find('\n', at) - at - 10);
}

std::map<std::string, std::string> predictions(const fs::path& dir) {
  std::map<std::string, std::string> out;
  std::istringstream lines(read_file(dir / "samples.jsonl"));
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) {
      const json s = json::parse(line);
      out[s["cell"].get<std::string>() + "#" + std::to_string(s["sample"].get<int>())] = s["prediction"].dump();
    }
  return out;
}

// The merged folder holds what the unsharded run holds: cells in grid order with their
// accuracies, every sample's prediction, and the RULER and LongBench tables.
void expect_same_run(const fs::path& full, const fs::path& merged) {
  ASSERT_TRUE(fs::exists(merged / "results.json")) << merged;
  const json a = json::parse(read_file(full / "results.json")), b = json::parse(read_file(merged / "results.json"));
  ASSERT_EQ(a["cells"].size(), b["cells"].size());
  for (std::size_t i = 0; i < a["cells"].size(); ++i) {
    EXPECT_EQ(a["cells"][i]["id"], b["cells"][i]["id"]);
    EXPECT_EQ(a["cells"][i]["metrics"]["accuracy"], b["cells"][i]["metrics"]["accuracy"]) << a["cells"][i]["id"];
  }
  EXPECT_EQ(b["meta"]["status"], "complete");
  EXPECT_EQ(predictions(full), predictions(merged));
  ASSERT_TRUE(a["summary"].contains("ruler") && a["summary"].contains("longbench"));
  EXPECT_EQ(a["summary"]["ruler"], b["summary"]["ruler"]);
  EXPECT_EQ(a["summary"]["longbench"], b["summary"]["longbench"]);
}

// 16 cells: two RULER and two LongBench tasks, two lengths, two policies.
const char* const kConfig = R"({"name": "slurm-sweep", "model": {"profile": "tiny"},
  "tasks": ["niah_single_1", "niah_multikey_1", "trec", "passage_count"], "context_lengths": [1024, 2048],
  "policies": ["dense", {"name": "streaming", "params": {"window": 500}}], "samples": 2})";

}  // namespace

TEST(Slurm, SweepMergesToTheUnshardedRunAndResumesAfterACancelledTask) {
  const auto dir = scratch("slurm-sweep");
  const cluster slurm(dir / "cluster");
  if (slurm.code == 3) GTEST_SKIP() << "Slurm cannot start here: " << slurm.message;
  ASSERT_EQ(slurm.code, 0) << slurm.message;
  const auto cfg = write(dir, "c.json", kConfig);
  ASSERT_EQ(run_cli("run " + quote(cfg.string()) + " --probe-mib 16 --out " + quote((dir / "full").string())).code, 0);

  // 1. A sweep of 4 shards and its merge.
  auto sweep = [&](const fs::path& out) {
    return run_cli("sweep " + quote(cfg.string()) + " --slurm --shards 4 --run-arg=--probe-mib=16 --out " +
                   quote(out.string()));
  };
  auto r = sweep(dir / "s1");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("submitted shards 0-3 as array job"), std::string::npos) << r.out;
  ASSERT_TRUE(wait_for_jobs(job_ids(r.out), 300)) << shell("squeue");
  expect_same_run(dir / "full", dir / "s1" / "merged");
  EXPECT_NE(read_file(dir / "s1" / "logs" / "merge.out").find("merged 16 of the grid's 16 cells"), std::string::npos);
  r = sweep(dir / "s1");  // nothing left to do
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("sweep complete"), std::string::npos) << r.out;

  // 2. One array task cancelled while it runs: the merge never runs (its dependency
  // failed); the sweep submitted again runs what is missing, then merges.
  r = sweep(dir / "s2");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const std::string ids = job_ids(r.out), array = ids.substr(0, ids.find(','));
  std::string running;
  for (int i = 0; i < 600 && running.empty(); ++i) {
    const std::string out = shell("squeue -h -t RUNNING -o %i -j " + array);
    if (const auto end = out.find('\n'); end != std::string::npos && end > 0) running = out.substr(0, end);
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(running.empty()) << "no array task was seen running";
  shell("scancel " + running);
  ASSERT_TRUE(wait_for_jobs(ids, 300)) << shell("squeue");
  EXPECT_FALSE(fs::exists(dir / "s2" / "merged" / "results.json"));
  r = sweep(dir / "s2");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const std::string task = running.substr(running.find('_') + 1);
  EXPECT_NE(r.out.find("pending shards: " + task), std::string::npos) << "cancelled " << running << "\n" << r.out;
  ASSERT_TRUE(wait_for_jobs(job_ids(r.out), 300)) << shell("squeue");
  expect_same_run(dir / "full", dir / "s2" / "merged");
}

TEST(Slurm, SweepErrorsNameWhatIsWrong) {
  const auto dir = scratch("slurm-errors");
  const auto cfg = write(dir, "c.json", kConfig);
  // No sbatch on PATH: exit 9 and what to do (--dry-run still works).
  auto r = run_cli_env("PATH=/nonexistent", "sweep " + quote(cfg.string()) + " --slurm --shards 2 --out " +
                                                quote((dir / "a").string()));
  expect_failure(r, 9, {"sbatch not found on PATH", "--dry-run"});
  r = run_cli_env("PATH=/nonexistent", "sweep " + quote(cfg.string()) + " --slurm --shards 2 --out " +
                                           quote((dir / "a").string()) + " --dry-run");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("--array=0-1"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir / "a"));
  // --slurm is required; a shard folder of another config is refused, naming it.
  expect_failure(run_cli("sweep " + quote(cfg.string()) + " --shards 2 --out " + quote((dir / "a").string())), 2,
                 {"--slurm"});
  const auto other = write(dir, "o.json", R"({"model": {"profile": "tiny"}, "tasks": ["niah_single_1"],
    "context_lengths": [1024], "samples": 1, "policies": ["dense", "streaming"]})");
  ASSERT_EQ(run_cli("run " + quote(other.string()) + " --shard 0/2 --out " + quote((dir / "b" / "shard-0").string())).code, 0);
  expect_failure(run_cli("sweep " + quote(cfg.string()) + " --slurm --shards 2 --out " + quote((dir / "b").string()) +
                         " --dry-run"),
                 5, {"shard-0", "another config"});
}
