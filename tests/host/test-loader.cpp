// The plugin loader: one precise message per failure, and instances that report the
// plugin's own error text.
#include "../test-helpers.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/host/plugin-loader.hpp>

#include <gtest/gtest.h>

#include <fstream>

using namespace attnbench;
using namespace attnbench::testing;

namespace {

std::string load_error(plugin_registry& r, const std::filesystem::path& file) {
  try {
    r.load_file(file);
  } catch (const plugin_error& e) {
    return e.what();
  }
  return "(no error)";
}

attnbench_model_info tiny_info() { return {2, 8, 2, 64, 64, ATTNBENCH_DTYPE_FP16}; }

}  // namespace

TEST(Loader, FindsDenseAndDescribesIt) {
  plugin_registry r({build_dir()});
  const auto lib = r.find("dense", ATTNBENCH_PLUGIN_POLICY);
  EXPECT_EQ(lib->name(), "dense");
  EXPECT_EQ(lib->descriptor().abi_version, ATTNBENCH_ABI_VERSION);
  EXPECT_EQ(lib->info_json()["kind"], "policy");
  EXPECT_EQ(r.find("dense", ATTNBENCH_PLUGIN_POLICY), lib);  // loaded once
}

TEST(Loader, MissingFile) {
  plugin_registry r({});
  EXPECT_NE(load_error(r, "/nonexistent/attnbench-plugin-x.so").find("no such file"), std::string::npos);
}

TEST(Loader, FileThatIsNotALibrary) {
  const auto dir = scratch("loader-text");
  std::ofstream(dir / "attnbench-plugin-text.so") << "this is not an ELF file\n";
  plugin_registry r({});
  const auto msg = load_error(r, dir / "attnbench-plugin-text.so");
  EXPECT_NE(msg.find("cannot be loaded"), std::string::npos) << msg;
}

TEST(Loader, LibraryWithoutEntryPoint) {
  plugin_registry r({});
  const auto msg = load_error(r, test_plugin_dir() / "attnbench-plugin-not_a_plugin.so");
  EXPECT_NE(msg.find("is not an attnbench plugin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("attnbench_plugin_entry"), std::string::npos) << msg;
}

TEST(Loader, OtherAbiVersionNamesBothNumbers) {
  plugin_registry r({});
  const auto msg = load_error(r, test_plugin_dir() / "attnbench-plugin-other_abi.so");
  EXPECT_NE(msg.find("ABI version 999"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs ABI version " + std::to_string(ATTNBENCH_ABI_VERSION)), std::string::npos) << msg;
}

TEST(Loader, MissingRequiredFunction) {
  plugin_registry r({});
  const auto msg = load_error(r, test_plugin_dir() / "attnbench-plugin-no_plan.so");
  EXPECT_NE(msg.find("required function policy.plan is NULL"), std::string::npos) << msg;
}

TEST(Loader, UnknownNameListsWhatExists) {
  plugin_registry r({build_dir(), test_plugin_dir()});
  try {
    r.find("nope", ATTNBENCH_PLUGIN_POLICY);
    FAIL();
  } catch (const plugin_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown policy 'nope'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("policies found: "), std::string::npos) << msg;
    EXPECT_NE(msg.find("dense"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("did you mean"), std::string::npos) << msg;
  }
  // A name a letter off gets the closest plugin of its kind; a missing folder of the
  // search path is marked.
  plugin_registry with_missing({build_dir(), test_plugin_dir(), build_dir() / "no-such-folder"});
  try {
    with_missing.find("dens", ATTNBENCH_PLUGIN_POLICY);
    FAIL();
  } catch (const plugin_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown policy 'dens' (did you mean 'dense'?)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no-such-folder (does not exist)"), std::string::npos) << msg;
    EXPECT_EQ(msg.find(test_plugin_dir().string() + " (does not exist)"), std::string::npos) << msg;
  }
  try {
    r.find("stop_after", ATTNBENCH_PLUGIN_POLICY);
    FAIL();
  } catch (const plugin_error& e) {
    EXPECT_NE(std::string(e.what()).find("is a terminator, not a policy"), std::string::npos) << e.what();
  }
}

TEST(Loader, RejectedParamsCarryThePluginsMessage) {
  plugin_registry r({build_dir()});
  const auto lib = r.find("dense", ATTNBENCH_PLUGIN_POLICY);
  try {
    policy_instance p(lib, {{"top_k", 5}}, tiny_info());
    FAIL();
  } catch (const plugin_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("plugin 'dense'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rejected its params"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unknown parameter 'top_k' for dense"), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(policy_instance(lib, nlohmann::json::object(), tiny_info()));
}

TEST(Loader, ScanReportsBrokenFilesWithoutFailing) {
  plugin_registry r({build_dir(), test_plugin_dir()});
  int good = 0, broken = 0;
  for (const auto& e : r.scan()) (e.library ? good : broken)++;
  EXPECT_GE(good, 3);    // dense, bad_plan, stop_after
  EXPECT_GE(broken, 3);  // not_a_plugin, other_abi, no_plan
}
