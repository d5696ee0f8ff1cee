// A run killed with SIGKILL at random points, then resumed (and killed again), many
// times: each must end with the cells and sample records of an uninterrupted run,
// timing aside. ATTNBENCH_KILL_POINTS sets how many kills (default 200),
// ATTNBENCH_KILL_SEED the random seed (printed, to replay a failure).
#include "cli-helpers.hpp"

#include <random>

using namespace attnbench;
using namespace attnbench::testing;
using namespace attnbench::testing::cli;
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using clock_type = std::chrono::steady_clock;

namespace {

// What must not depend on being interrupted: cells and sample records without their
// timing fields, keyed so that order does not matter but duplicates do.
struct outcome {
  std::multiset<std::string> cells, samples;
  bool operator==(const outcome&) const = default;
};

outcome read_outcome(const fs::path& out) {
  outcome o;
  const auto doc = ojson::parse(read_file(out / "results.json"));
  for (auto c : doc["cells"]) {
    c.erase("wall_s");
    c.erase("read_bandwidth_bytes_per_s");
    for (const char* timing : {"decode_tokens_per_s", "selection_us_per_step", "attention_us_per_step", "prefill_ms",
                               "attention_bytes_per_s", "bandwidth_ratio"})
      c["metrics"].erase(timing);
    o.cells.insert(c.dump());
  }
  std::istringstream in(read_file(out / "samples.jsonl"));
  for (std::string line; std::getline(in, line);) {
    auto s = ojson::parse(line);
    for (const char* timing : {"prepare_ms", "prefill_ms", "decode_ms"}) s.erase(timing);
    o.samples.insert(s.dump());
  }
  return o;
}

pid_t start_run(const fs::path& cfg, const fs::path& out, bool resume) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string exe = ATTNBENCH_EXE, plugins = test_plugin_dir().string(), c = cfg.string(), o = out.string();
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    // A small probe: the runs start in a tenth of a second, so most kills land in cells.
    execl(exe.c_str(), exe.c_str(), "--plugin-path", plugins.c_str(), "run", c.c_str(), "--probe-mib", "16", "--out",
          o.c_str(), resume ? "--resume" : static_cast<char*>(nullptr), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Waits for the run up to `limit`; true with its status when it ended, else false.
bool wait_for(pid_t pid, clock_type::duration limit, int& status) {
  const auto deadline = clock_type::now() + limit;
  while (clock_type::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return false;
}

}  // namespace

TEST(KillResume, EveryKillPointEndsLikeAnUninterruptedRun) {
  const char* points_env = std::getenv("ATTNBENCH_KILL_POINTS");
  const char* seed_env = std::getenv("ATTNBENCH_KILL_SEED");
  const int points = points_env ? std::atoi(points_env) : 200;
  const auto seed = seed_env ? std::strtoull(seed_env, nullptr, 10) : std::random_device{}();
  std::printf("kill points %d, seed %llu\n", points, static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);

  const auto d = scratch("kill-resume");
  // Twelve short cells of two policies and a terminator.
  const auto cfg = write(d, "c.json", config(R"(["dense", "sink_window"])",
                                             R"(, "terminators": ["none", "stop_after"], "seeds": [0, 1, 2], "samples": 2)"));
  const auto t0 = clock_type::now();
  const auto reference =
      run_cli("run " + quote(cfg.string()) + " --probe-mib 16 --out " + quote((d / "reference").string()));
  const auto run_time = clock_type::now() - t0;
  ASSERT_EQ(reference.code, 0) << reference.err;
  const outcome expected = read_outcome(d / "reference");
  ASSERT_EQ(expected.cells.size(), 12u);
  ASSERT_EQ(expected.samples.size(), 24u);

  int kills = 0, scenarios = 0;
  std::uniform_real_distribution<double> when(0.0, 1.1);
  while (kills < points) {
    const auto out = d / ("run-" + std::to_string(scenarios++));
    // Kill the run up to four times, then let it finish.
    for (int attempt = 0;; ++attempt) {
      const bool resume = fs::exists(out / "results.json");
      const pid_t pid = start_run(cfg, out, resume);
      ASSERT_GT(pid, 0);
      int status = 0;
      if (attempt < 4 && kills < points) {
        const auto delay = std::chrono::duration_cast<clock_type::duration>(run_time * when(rng));
        if (!wait_for(pid, delay, status)) {
          kill(pid, SIGKILL);
          waitpid(pid, &status, 0);
          ++kills;
          continue;
        }
      } else {
        ASSERT_TRUE(wait_for(pid, std::chrono::minutes(2), status));
      }
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "scenario " << scenarios - 1 << ", start " << attempt << ": status " << status << " (seed " << seed << ")";
      break;
    }
    const outcome got = read_outcome(out);
    ASSERT_EQ(got.cells, expected.cells) << "scenario " << scenarios - 1 << " (seed " << seed << ")";
    ASSERT_EQ(got.samples, expected.samples) << "scenario " << scenarios - 1 << " (seed " << seed << ")";
    fs::remove_all(out);
  }
  std::printf("%d kills over %d runs, each ended identical to the uninterrupted run\n", kills, scenarios);
}
