// The python plugin (plugins/python): a Python class's plans and keep sets reach the
// host as it returned them, what it is shown is a read-only view of the host's memory,
// and every way a Python policy can go wrong is an error that names the file and line,
// never a crash. The conformance suite runs the plugin's examples like any plugin.
// Skipped where the plugin is not built (ATTNBENCH_PYTHON off, as under the sanitizers).
#include "conformance-cases.hpp"

#include <attnbench/host/errors.hpp>

#include <gtest/gtest.h>

#include <string>

using namespace attnbench;
using namespace attnbench::testing::conformance;
using attnbench::testing::build_dir;
using attnbench::testing::source_dir;

// Not in an anonymous namespace: gtest's test classes derive from the fixture.
class PythonPolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_registry registry({build_dir()});
    try {
      library_ = registry.find("python", ATTNBENCH_PLUGIN_POLICY);
    } catch (const std::exception&) {
      GTEST_SKIP() << "the python plugin is not built (ATTNBENCH_PYTHON is off)";
    }
    attnbench::rng r(7);
    std::vector<float> k(kTokens * kDim), v(kTokens * kDim);
    std::vector<std::int64_t> positions(kTokens);
    for (std::uint64_t i = 0; i < kTokens; ++i) positions[i] = static_cast<std::int64_t>(i);
    for (std::uint32_t l = 0; l < kLayers; ++l)
      for (std::uint32_t h = 0; h < kKvHeads; ++h) {
        fill_random(r, k, 1.0);
        fill_random(r, v, 1.0);
        cache_.append(l, h, kTokens, positions.data(), k.data(), v.data());
      }
    fill_random(r, queries_, 1.0);
  }

  nlohmann::json params(const std::string& cls, const std::string& file = "faulty.py") const {
    return {{"module", (source_dir() / "tests" / "plugins" / "python" / file).string()}, {"class", cls}};
  }
  std::unique_ptr<policy_instance> make(const nlohmann::json& p) const {
    return std::make_unique<policy_instance>(library_, p, info_);
  }
  attnbench_plan_request plan_request() {
    return {0, kQueryHeads, 0, kTokens, queries_.data(), 0.125f, 0, &cache_.layer_view(0)};
  }
  attnbench_prefill_request prefill_request() {
    return {0, kQueryHeads, kTokens, queries_.data(), 0.125f, 0, &cache_.layer_view(0)};
  }
  // The message of the plugin_error that fn throws ("" when it throws none).
  template <class F>
  static std::string error_of(F&& fn) {
    try {
      fn();
    } catch (const plugin_error& e) {
      return e.what();
    }
    return "";
  }

  static constexpr std::uint32_t kQueryHeads = kKvHeads * 2;
  static constexpr std::uint64_t kTokens = 100;
  std::shared_ptr<plugin_library> library_;
  attnbench_model_info info_{kLayers, kQueryHeads, kKvHeads, kDim, kBlock, ATTNBENCH_DTYPE_FP16};
  kernels::kv_cache cache_{kLayers, kKvHeads, kDim, kBlock, ATTNBENCH_DTYPE_FP16};
  std::vector<float> queries_ = std::vector<float>(kQueryHeads * kDim);
};

TEST_F(PythonPolicy, PlansKeepSetsAndStatsComeFromTheClass) {
  auto p = make(params("Echo"));
  const attnbench_plan keep = p->on_prefill(prefill_request());
  ASSERT_EQ(keep.n_entries, kKvHeads);
  EXPECT_EQ(keep.entries[0].kind, ATTNBENCH_PLAN_TOKENS);
  ASSERT_EQ(keep.entries[0].count, kTokens);
  EXPECT_EQ(keep.entries[0].indices[0], 0u) << "a keep set is sorted";
  EXPECT_EQ(keep.entries[0].indices[kTokens - 1], kTokens - 1);
  const attnbench_plan plan = p->plan(plan_request());
  ASSERT_EQ(plan.n_entries, kKvHeads);
  EXPECT_EQ(plan.granularity, ATTNBENCH_PLAN_PER_KV_HEAD);
  const std::uint32_t blocks = cache_.layer_view(0).heads[0].n_blocks;
  ASSERT_EQ(plan.entries[1].kind, ATTNBENCH_PLAN_BLOCKS);
  ASSERT_EQ(plan.entries[1].count, blocks);
  EXPECT_EQ(plan.entries[1].indices[0], blocks - 1) << "a plan keeps the class's order";
  EXPECT_EQ(p->stats()["block_rows"], kTokens);
}

TEST_F(PythonPolicy, AnExceptionNamesTheFileAndLine) {
  auto p = make(params("RaisesInPlan"));
  const std::string e = error_of([&] { p->plan(plan_request()); });
  EXPECT_NE(e.find("faulty.py:10 in plan: ValueError: no plan today"), std::string::npos) << e;
  auto q = make(params("RaisesInPrefill"));
  const std::string f = error_of([&] { q->on_prefill(prefill_request()); });
  EXPECT_NE(f.find("faulty.py:18 in on_prefill: KeyError"), std::string::npos) << f;
}

TEST_F(PythonPolicy, AMalformedResultIsAnError) {
  auto a = make(params("NotAList"));
  EXPECT_NE(error_of([&] { a->plan(plan_request()); }).find("expected None or a list"), std::string::npos);
  auto b = make(params("WrongCount"));
  EXPECT_NE(error_of([&] { b->plan(plan_request()); }).find("returned 7 items"), std::string::npos);
  auto d = make(params("FloatIndices"));
  EXPECT_NE(error_of([&] { d->plan(plan_request()); }).find("expected integer indices"), std::string::npos);
  auto e = make(params("KeepsQueries"));
  EXPECT_NE(error_of([&] { e->plan(plan_request()); }).find("kept a view"), std::string::npos);
  auto f = make(params("NumpyRaises"));
  const std::string numpy = error_of([&] { f->plan(plan_request()); });
  EXPECT_NE(numpy.find("faulty.py:100 in plan (raised at "), std::string::npos) << numpy;
  auto c = make(params("KeepsAView"));
  EXPECT_EQ(error_of([&] { c->plan(plan_request()); }), "");
  EXPECT_NE(error_of([&] { c->plan(plan_request()); }).find("after the call"), std::string::npos);
}

TEST_F(PythonPolicy, BadParamsNameWhatIsWrong) {
  auto made = [&](const nlohmann::json& p) { return error_of([&] { make(p); }); };
  EXPECT_NE(made(params("NoPlan")).find("has no plan method"), std::string::npos);
  EXPECT_NE(made(params("Nope")).find("has no 'Nope'"), std::string::npos);
  EXPECT_NE(made(params("Broken", "syntax_error.py")).find("syntax_error.py:2: SyntaxError"), std::string::npos)
      << made(params("Broken", "syntax_error.py"));
  EXPECT_NE(made(params("Echo", "no-such-file.py")).find("no such file"), std::string::npos);
  nlohmann::json extra = params("Echo");
  extra["params"] = {{"colour", 1}};
  EXPECT_NE(made(extra).find("TypeError"), std::string::npos) << made(extra);
  EXPECT_NE(made({{"modul", "x.py"}, {"class", "X"}}).find("unknown parameter"), std::string::npos);
  EXPECT_NE(made({{"class", "X"}}).find("module: required"), std::string::npos);
}
