// Config loading: defaults, --set overrides, and an error naming the file and the JSON
// path for each kind of bad input.
#include "../test-helpers.hpp"

#include <attnbench/host/config.hpp>
#include <attnbench/host/errors.hpp>
#include <attnbench/model/profile.hpp>
#include <attnbench/run/grid.hpp>
#include <attnbench/run/plugins.hpp>

#include <gtest/gtest.h>

#include <fstream>

using namespace attnbench;
using namespace attnbench::testing;

namespace {

std::filesystem::path write_config(const std::string& name, const std::string& text) {
  static const auto dir = scratch("config");
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path;
}

const char* kGood = R"({"model": {"profile": "tiny"}, "tasks": ["niah_single_1"], "context_lengths": [1024],
  "policies": ["dense", {"name": "dense", "label": "dense-b", "params": {}}]})";

// Expects load_config to throw E with a message containing every fragment.
template <class E>
void expect_error(const std::filesystem::path& file, std::vector<std::string> fragments,
                  std::vector<std::string> sets = {}) {
  try {
    load_config(file, config_task_rules(), sets);
    FAIL() << "no error for " << file;
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line message: " << msg;
  }
}

}  // namespace

TEST(Config, DefaultsAreFilledIn) {
  const auto c = load_config(write_config("good.json", kGood), config_task_rules());
  EXPECT_EQ(c.name, "good");
  EXPECT_EQ(c.samples, 10u);
  EXPECT_EQ(c.block_size, 64u);
  EXPECT_EQ(c.dtype, ATTNBENCH_DTYPE_FP16);
  ASSERT_EQ(c.terminators.size(), 1u);
  EXPECT_EQ(c.terminators[0].name, "none");
  EXPECT_EQ(c.seeds, std::vector<std::uint64_t>{0});
  EXPECT_EQ(c.policies[1].label, "dense-b");
  EXPECT_EQ(c.resolved["policies"][0]["params"], nlohmann::json::object());
  EXPECT_EQ(expand_grid(c).size(), 2u);
}

TEST(Config, SetOverridesResolvedValues) {
  const auto file = write_config("good.json", kGood);
  const auto c = load_config(file, config_task_rules(), {"samples=3", "model.dtype=bf16", "policies.1.params.extra=5", "seeds=[1,2]"});
  EXPECT_EQ(c.samples, 3u);
  EXPECT_EQ(c.dtype, ATTNBENCH_DTYPE_BF16);
  EXPECT_EQ(c.policies[1].params["extra"], 5);
  EXPECT_EQ(c.seeds.size(), 2u);
  expect_error<usage_error>(file, {"--set sample=3", "unknown path /sample"}, {"sample=3"});
  expect_error<usage_error>(file, {"unknown path /policies/5", "2 entries"}, {"policies.5.name=x"});
  expect_error<usage_error>(file, {"expected PATH=VALUE"}, {"samples"});
  expect_error<config_error>(file, {"(after --set)", "/samples", "expected an integer"}, {"samples=many"});
}

// metrics.fidelity is off unless asked, settable with --set, and must be a boolean.
TEST(Config, FidelityIsAskedForByMetricsFidelity) {
  const auto file = write_config("good.json", kGood);
  EXPECT_FALSE(load_config(file, config_task_rules()).fidelity);
  EXPECT_TRUE(load_config(file, config_task_rules(), {"metrics.fidelity=true"}).fidelity);
  expect_error<config_error>(file, {"/metrics/fidelity", "expected true or false", "string \"yes\""},
                             {"metrics.fidelity=\"yes\""});
  expect_error<config_error>(
      write_config("f1.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense"], "metrics": {"recall": true}})"),
      {"f1.json", "/metrics/recall", "unknown field"});
  expect_error<config_error>(
      write_config("f2.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense"], "metrics": true})"),
      {"f2.json", "/metrics", "expected an object"});
}

TEST(Config, MissingFile) {
  expect_error<config_error>(scratch("config-missing") / "nope.json", {"nope.json", "no such file"});
}

TEST(Config, MalformedJsonGivesLineAndColumn) {
  const auto f = write_config("malformed.json", "{\n  \"tasks\": [\"niah_single_1\",,]\n}\n");
  expect_error<config_error>(f, {"malformed.json:2:", "malformed JSON"});
}

TEST(Config, WrongTypesAndRanges) {
  expect_error<config_error>(
      write_config("t1.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense"], "samples": "ten"})"),
      {"t1.json", "/samples", "expected an integer, got string \"ten\""});
  expect_error<config_error>(
      write_config("t2.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense"], "samples": -5})"),
      {"/samples", "expected an integer in [1, 1000000], got -5"});
  expect_error<config_error>(
      write_config("t3.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024, "2K"], "policies": ["dense"]})"),
      {"/context_lengths/1", "expected an integer"});
  expect_error<config_error>(
      write_config("t4.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": [{"params": {}}]})"),
      {"/policies/0/name", "required field is missing"});
  expect_error<config_error>(
      write_config("t5.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense"], "model": {"dtype": "int3"}})"),
      {"/model/dtype", "\"int3\""});
  expect_error<config_error>(
      write_config("t6.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "polices": ["dense"]})"),
      {"/polices", "unknown field (did you mean 'policies'?)"});
  expect_error<config_error>(write_config("t7.json", R"([1, 2])"), {"t7.json", "expected an object"});
  expect_error<config_error>(
      write_config("t8.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense", "dense"]})"),
      {"/policies/1/label", "used twice"});
  expect_error<config_error>(
      write_config("t9.json", R"({"tasks": ["niah_single_1"], "context_lengths": [20], "policies": ["dense"]})"),
      {"/context_lengths/0", "niah_single_1 needs at least"});
}

TEST(Config, DuplicateGridValuesWouldCollideAndAreRejected) {
  expect_error<config_error>(
      write_config("d1.json", R"({"tasks": ["niah_single_1", {"name": "niah_single_1", "params": {"depths": [90]}}],
                                  "context_lengths": [1024], "policies": ["dense"]})"),
      {"/tasks/1/label", "used twice"});
  expect_error<config_error>(
      write_config("d2.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024, 2048, 1024], "policies": ["dense"]})"),
      {"/context_lengths/2", "listed twice"});
  expect_error<config_error>(
      write_config("d3.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense"], "seeds": [3, 3]})"),
      {"/seeds/1", "listed twice"});
  // With distinct labels, two variants of one task are two cells each.
  const auto c = load_config(write_config(
      "d4.json", R"({"tasks": ["niah_single_1", {"name": "niah_single_1", "label": "niah-deep", "params": {"depths": [90]}}],
                     "context_lengths": [1024], "policies": ["dense"]})"),
      config_task_rules());
  ASSERT_EQ(c.tasks.size(), 2u);
  EXPECT_NE(cell_id(c, {0, 0, 0, 0, 0}), cell_id(c, {1, 0, 0, 0, 0}));
}

TEST(Config, NumbersOutOfRangeAreConfigErrors) {
  expect_error<config_error>(
      write_config("big.json", R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense"], "samples": 1e400})"),
      {"big.json", "invalid JSON"});
  expect_error<usage_error>(write_config("good2.json", kGood), {"out of range"}, {"samples=1e400"});
}

TEST(Config, UnknownTaskAndBadTaskParams) {
  expect_error<config_error>(
      write_config("u1.json", R"({"tasks": ["niah_single_9"], "context_lengths": [1024], "policies": ["dense"]})"),
      {"/tasks/0/name", "unknown task \"niah_single_9\" (did you mean 'niah_single_1'?)", "known: niah_single_1"});
  expect_error<config_error>(
      write_config("u2.json",
                   R"({"tasks": [{"name": "niah_single_1", "params": {"depths": [10, 250]}}], "context_lengths": [1024], "policies": ["dense"]})"),
      {"/tasks/0/params/depths/1", "[0, 100]"});
}

TEST(Config, ProfileErrorsNameTheProfileFile) {
  const auto dir = scratch("config-profile");
  std::ofstream(dir / "bad-profile.json") << R"({"n_layers": 2, "n_query_heads": 6, "n_kv_heads": 4, "head_dim": 64, "roles": ["sink"]})";
  try {
    load_profile(dir / "bad-profile.json");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad-profile.json: /n_query_heads: must be a multiple of n_kv_heads"),
              std::string::npos)
        << e.what();
  }
}

TEST(Config, ATrainedModelIsAFolderOfWeightsFoundBesideTheConfigOrInTheTree) {
  const char* trained = R"({"model": {"kind": "trained", "weights": "models/niah-2x128"}, "tasks": ["niah_single_1"],
    "context_lengths": [1024], "policies": ["dense"]})";
  const auto c = load_config(write_config("trained.json", trained), config_task_rules());
  EXPECT_EQ(c.model_kind, "trained");
  EXPECT_EQ(c.resolved["model"].count("profile"), 0u);
  // Not beside the config (a scratch folder), so in the source tree.
  EXPECT_EQ(resolve_weights_path(c), source_dir() / "models" / "niah-2x128");
  EXPECT_EQ(load_config(write_config("mech.json", kGood), config_task_rules()).model_kind, "mechanistic");

  auto with_model = [](const std::string& model) {
    return R"({"model": )" + model + R"(, "tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense"]})";
  };
  expect_error<config_error>(write_config("k1.json", with_model(R"({"kind": "learned"})")),
                             {"k1.json: /model/kind: expected \"mechanistic\" or \"trained\", got \"learned\""});
  expect_error<config_error>(write_config("k2.json", with_model(R"({"kind": "trained"})")),
                             {"k2.json: /model/weights: a trained model needs \"weights\""});
  expect_error<config_error>(write_config("k3.json", with_model(R"({"kind": "trained", "weights": "m", "profile": "tiny"})")),
                             {"k3.json: /model/profile: a trained model has no profile"});
  expect_error<config_error>(write_config("k4.json", with_model(R"({"weights": "models/niah-2x128"})")),
                             {"k4.json: /model/weights: only a trained model has weights"});
  // --set switches the kind: the other kind's key from the file goes.
  const auto switched = load_config(write_config("mech2.json", kGood), config_task_rules(),
                                    {"model.kind=trained", "model.weights=models/niah-2x128"});
  EXPECT_EQ(switched.model_kind, "trained");
  EXPECT_EQ(switched.resolved["model"].count("profile"), 0u);
  const auto back = load_config(write_config("trained2.json", trained), config_task_rules(), {"model.kind=mechanistic"});
  EXPECT_EQ(back.profile, "default");
  EXPECT_EQ(back.resolved["model"].count("weights"), 0u);
  // A whole model object without "kind" is the mechanistic model's, from either kind.
  const auto whole = load_config(write_config("trained3.json", trained), config_task_rules(),
                                 {R"(model={"profile": "sharp", "dtype": "fp16"})"});
  EXPECT_EQ(whole.model_kind, "mechanistic");
  EXPECT_EQ(whole.profile, "sharp");
  expect_error<config_error>(write_config("mech4.json", kGood), {"/model: expected an object"}, {"model=3"});
  // ... and a clash inside it is named, not dropped.
  expect_error<config_error>(write_config("mech5.json", kGood), {"/model/weights: only a trained model has weights"},
                             {R"(model={"weights": "models/niah-2x128"})"});
  expect_error<config_error>(write_config("mech3.json", kGood), {"/model/weights: a trained model needs \"weights\""},
                             {"model.kind=trained"});
  const auto missing = load_config(write_config("k5.json", with_model(R"({"kind": "trained", "weights": "models/nope"})")),
                                   config_task_rules());
  try {
    resolve_weights_path(missing);
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("k5.json: /model/weights: no trained model folder \"models/nope\""),
              std::string::npos)
        << e.what();
  }
}
