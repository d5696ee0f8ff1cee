// The attnbench executable on the model itself: calibrate (and tca reading what it
// writes), dump-kv, and the one sample recipe that run, dump-kv and stats share.
#include "cli-helpers.hpp"

using namespace attnbench;
using namespace attnbench::testing;
using namespace attnbench::testing::cli;
namespace fs = std::filesystem;

// TCA's two halves: calibrate writes a budgets file for the profile; tca reads it, evicts
// after prefill, and without one says how to make it.
TEST(Cli, CalibrateWritesBudgetsThatTcaUses) {
  const auto d = scratch("cli-tca");
  const auto budgets = d / "budgets.json";
  const auto cfg = write(d, "cal.json", config(R"(["dense"])", R"(, "context_lengths": [4096])"));
  const auto c = run_cli("calibrate " + cfg.string() + " --out " + budgets.string() + " --window 512 --block 64");
  ASSERT_EQ(c.code, 0) << c.err;
  const auto b = nlohmann::json::parse(read_file(budgets));
  const profile_shape profile = tiny_profile();
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

// dump-kv: the arrays have the sizes meta.json states, the same sample dumps the same
// bytes, another sample other bytes, and an unwritable folder is an output error.
TEST(Cli, DumpKvWritesArraysOfTheStatedShape) {
  const auto d = scratch("cli-dump");
  const auto cfg = write(d, "dump.json", config(R"(["dense"])"));
  const auto r = run_cli("dump-kv " + cfg.string() + " --out " + (d / "a").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto meta = nlohmann::json::parse(read_file(d / "a" / "meta.json"));
  const profile_shape profile = tiny_profile();
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

// One recipe makes every sample: run, dump-kv, stats and calibrate see the same prompt for the same
// (task, length, seed, sample), and different prompts for different samples.
TEST(Cli, RunDumpKvStatsAndCalibrateSeeTheSameSamples) {
  const auto d = scratch("cli-samples");
  const auto cfg = write(d, "s.json", config(R"(["dense"])", R"(, "seeds": [7], "context_lengths": [1024, 2048])"));
  ASSERT_EQ(run_cli("run " + cfg.string() + " --out " + (d / "run").string()).code, 0);
  std::map<std::pair<unsigned, int>, std::string> run_hashes;  // (length, sample) -> prompt_hash
  std::istringstream lines(read_file(d / "run" / "samples.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const auto row = nlohmann::json::parse(line);
    run_hashes[{row["context_length"].get<unsigned>(), row["sample"].get<int>()}] = row["prompt_hash"];
  }
  ASSERT_EQ(run_hashes.size(), 4u);
  for (unsigned length : {1024u, 2048u}) {
    const std::string len = " --length " + std::to_string(length);
    const auto stats = run_cli("stats " + cfg.string() + len + " --samples 2 --steps 1 --json " + (d / "stats.json").string());
    ASSERT_EQ(stats.code, 0) << stats.err;
    const auto prompts = nlohmann::json::parse(read_file(d / "stats.json"))["prompts"];
    ASSERT_EQ(prompts.size(), 2u);
    for (int sample : {0, 1}) {
      const auto out = d / ("dump-" + std::to_string(length) + "-" + std::to_string(sample));
      const auto dump = run_cli("dump-kv " + cfg.string() + len + " --sample " + std::to_string(sample) + " --out " + out.string());
      ASSERT_EQ(dump.code, 0) << dump.err;
      const std::string want = run_hashes[std::make_pair(length, sample)];
      EXPECT_EQ(nlohmann::json::parse(read_file(out / "meta.json"))["prompt_hash"], want) << length << "/" << sample;
      EXPECT_EQ(prompts[sample]["prompt_hash"], want) << length << "/" << sample;
    }
    EXPECT_NE(run_hashes[std::make_pair(length, 0)], run_hashes[std::make_pair(length, 1)]);
    const auto budgets = d / ("budgets-" + std::to_string(length) + ".json");
    const auto cal = run_cli("calibrate " + cfg.string() + len + " --samples 2 --window 64 --block 64 --out " +
                             budgets.string());
    ASSERT_EQ(cal.code, 0) << cal.err;
    const auto cal_prompts = nlohmann::json::parse(read_file(budgets))["calibration"]["prompts"];
    ASSERT_EQ(cal_prompts.size(), 2u);
    for (int sample : {0, 1})
      EXPECT_EQ(cal_prompts[sample]["prompt_hash"], run_hashes[std::make_pair(length, sample)]) << length;
  }
}

// realism: the table on stdout with every statistic, the JSON and markdown files on
// request, lengths checked against the task, and no file written over a results folder.
TEST(Cli, RealismPrintsTheTableAndWritesItsFiles) {
  const auto d = scratch("cli-realism");
  const auto cfg = write(d, "r.json", config(R"(["dense"])"));
  const auto r = run_cli("realism " + cfg.string() + " --length 1024 --length 2048 --samples 1 --steps 2 --json " +
                         (d / "r.json.out").string() + " --markdown " + (d / "r.md").string());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* statistic : {"query_cosine", "retrieval_heads", "sink_heads", "top20_mass", "top2pct_quality",
                                "logit_l1_spread", "neighbour_keys"})
    EXPECT_NE(r.out.find(std::string("| ") + statistic + " |"), std::string::npos) << statistic;
  const auto j = nlohmann::json::parse(read_file(d / "r.json.out"));
  EXPECT_EQ(j["profile"], "tiny");
  ASSERT_EQ(j["lengths"].size(), 2u);
  EXPECT_EQ(j["lengths"][1]["context_length"], 2048);
  EXPECT_EQ(j["lengths"][0]["heads"].size(), 2u * 8u);
  EXPECT_NE(read_file(d / "r.md").find("| retrieval_heads |"), std::string::npos);
  expect_failure(run_cli("realism " + cfg.string() + " --length 10"), exit_usage, {"--length", "needs at least"});
  expect_failure(run_cli("realism " + cfg.string() + " --task nosuch"), exit_usage, {"nosuch"});
  fs::create_directories(d / "results");
  write(d / "results", "results.json", "{}");
  expect_failure(run_cli("realism " + cfg.string() + " --length 1024 --json " + (d / "results" / "results.json").string()),
                 exit_output, {"--json"});
}

TEST(Cli, CorpusWritesTokensAndAnIndexAndNeverOverwrites) {
  const auto d = scratch("cli-corpus");
  const std::string config = quote((source_dir() / "configs" / "corpus" / "default.json").string());
  const auto out = d / "corpus";
  const auto r = run_cli("corpus " + config + " --out " + quote(out.string()) + " --tokens 50000");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto meta = nlohmann::json::parse(read_file(out / "meta.json"));
  const std::uint64_t total = meta["total_tokens"];
  EXPECT_GE(total, 50000u);
  EXPECT_EQ(fs::file_size(out / "tokens.bin"), 2 * total);
  EXPECT_EQ(meta["domain"], "training");
  std::uint64_t sum = 0;
  for (const auto& n : meta["index"]["length"]) sum += n.get<std::uint64_t>();
  EXPECT_EQ(sum, total);
  EXPECT_EQ(meta["index"]["offset"].size(), meta["sequences"].get<std::size_t>());
  // A second corpus into the same folder is refused; the first is kept.
  expect_failure(run_cli("corpus " + config + " --out " + quote(out.string()) + " --tokens 100"), exit_output,
                 {"already holds a corpus"});
  EXPECT_EQ(fs::file_size(out / "tokens.bin"), 2 * total);
  // Bad configs name the JSON path.
  const auto unknown = write(d, "unknown.json", R"({"tasks": ["nope"], "context_lengths": [1024]})");
  expect_failure(run_cli("corpus " + quote(unknown.string()) + " --out " + quote((d / "x").string()) + " --tokens 100"),
                 exit_config, {"/tasks/0", "unknown task"});
  const auto two_hop = write(d, "two-hop.json", R"({"tasks": ["qa_2"], "context_lengths": [4096]})");
  expect_failure(run_cli("corpus " + quote(two_hop.string()) + " --out " + quote((d / "y").string()) + " --tokens 100"),
                 exit_config, {"/tasks/0", "qa_2", "intermediate answers"});
  // A task that cannot fill one of the lengths fails before anything is written.
  const auto too_long = write(d, "too-long.json", R"({"tasks": ["niah_multikey_2"], "context_lengths": [1024, 262144]})");
  expect_failure(run_cli("corpus " + quote(too_long.string()) + " --out " + quote((d / "w").string()) + " --tokens 100"),
                 exit_config, {"/context_lengths/1", "niah_multikey_2", "262144"});
  EXPECT_FALSE(fs::exists(d / "w"));
  const auto weights = write(d, "weights.json", R"({"tasks": ["vt"], "context_lengths": [1024, 2048], "length_weights": [1]})");
  expect_failure(run_cli("corpus " + quote(weights.string()) + " --out " + quote((d / "z").string()) + " --tokens 100"),
                 exit_config, {"/length_weights", "one weight per context length"});
}
