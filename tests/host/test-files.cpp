// Safe files and checked inputs below the command line: folders written without
// following links, the results-folder lock, JSON limits, the plugin file check, and the
// config rules that keep cells distinct.
#include "../test-helpers.hpp"

#include <attnbench/host/config.hpp>
#include <attnbench/host/errors.hpp>
#include <attnbench/host/files.hpp>
#include <attnbench/host/json.hpp>
#include <attnbench/host/plugin-file.hpp>
#include <attnbench/host/plugin-loader.hpp>
#include <attnbench/run/plugins.hpp>

#include <elf.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace attnbench;
using namespace attnbench::testing;
namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

std::string dense_image() { return read(build_dir() / "attnbench-plugin-dense.so"); }

}  // namespace

TEST(Files, WritesReplaceLinksNeverTheirTargets) {
  const auto d = scratch("files-links");
  std::ofstream(d / "victim") << "keep";
  fs::create_symlink(d / "victim", d / "out.json");
  const folder f = folder::open(d, folder::create::no);
  f.write_atomically("out.json", "new");
  EXPECT_EQ(read(d / "victim"), "keep");
  EXPECT_FALSE(fs::is_symlink(d / "out.json"));
  EXPECT_EQ(read(d / "out.json"), "new");
  fs::create_symlink(d / "victim", d / "log");
  EXPECT_NE(error_of<output_error>([&] { f.append("log", "x"); }).find("symbolic link"), std::string::npos);
  EXPECT_NE(error_of<config_error>([&] { f.read("log", 100); }).find("symbolic link"), std::string::npos);
  EXPECT_EQ(read(d / "victim"), "keep");
  EXPECT_NE(error_of<output_error>([&] { f.write_atomically("../x", ""); }).find("is not a file name"), std::string::npos);
  // No temporary file is left behind.
  for (const auto& e : fs::directory_iterator(d)) EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos);
}

TEST(Files, ALockedFolderNamesItsHolderAndFreesOnRelease) {
  const auto d = scratch("files-lock");
  const folder f = folder::open(d, folder::create::no);
  {
    const folder_lock held(f);
    EXPECT_EQ(folder_lock_holder(d), static_cast<long>(getpid()));
    const std::string e = error_of<output_error>([&] { folder_lock again(f); });
    EXPECT_NE(e.find("in use by another attnbench run (pid " + std::to_string(getpid()) + ")"), std::string::npos) << e;
  }
  EXPECT_EQ(folder_lock_holder(d), 0);
  const folder_lock again(f);  // free again
}

TEST(Files, UniqueFoldersAndResultsFolderGuards) {
  const auto d = scratch("files-unique");
  const folder a = folder::create_unique(d, "run"), b = folder::create_unique(d, "run");
  EXPECT_EQ(a.path().filename(), "run");
  EXPECT_EQ(b.path().filename(), "run-2");
  std::ofstream(d / "run" / "results.json") << "{}";
  EXPECT_THROW(refuse_results_folder_file(d / "run" / "results.json", "--json"), output_error);
  EXPECT_THROW(refuse_results_folder_file(d / "run" / "samples.jsonl", "--json"), output_error);
  EXPECT_NO_THROW(refuse_results_folder_file(d / "run" / "budgets.json", "--out"));  // a new file
  EXPECT_NO_THROW(refuse_results_folder_file(d / "run-2" / "results.json", "--out"));  // not a results folder
  EXPECT_THROW(refuse_results_folder(d / "run", "--out"), output_error);
  const fs::path link = d / "link";
  fs::create_directory_symlink(d / "run-2", link);
  EXPECT_NE(error_of<output_error>([&] { folder::open(link, folder::create::no); }).find("is a symbolic link"),
            std::string::npos);
}

TEST(Json, DepthIsCountedOutsideStringsOnly) {
  EXPECT_NO_THROW(check_json_depth(R"({"a": "[[[[[[[[[[", "b": [1, {"c": "\"]]]]"}]})", 3, "x"));
  const std::string e = error_of<config_error>([] { check_json_depth("{\n [[[[", 4, "f.json"); });
  EXPECT_NE(e.find("f.json:2:5"), std::string::npos) << e;
  EXPECT_NE(e.find("deeper than 4"), std::string::npos) << e;
}

TEST(PluginFile, TheElfCheckNamesWhatIsWrong) {
  const std::string good = dense_image();
  EXPECT_EQ(elf_image_problem(good), "");
  auto with = [&](std::size_t offset, std::string_view bytes) {
    std::string image = good;
    image.replace(offset, bytes.size(), bytes);
    return elf_image_problem(image);
  };
  EXPECT_NE(elf_image_problem("#!/bin/sh\n").find("not an ELF"), std::string::npos);
  EXPECT_NE(elf_image_problem("").find("not an ELF"), std::string::npos);
  EXPECT_NE(with(EI_CLASS, std::string(1, ELFCLASS32)).find("32-bit"), std::string::npos);
  EXPECT_NE(with(EI_DATA, std::string(1, ELFDATA2MSB)).find("big-endian"), std::string::npos);
  EXPECT_NE(with(16, std::string("\x02\x00", 2)).find("not a shared object"), std::string::npos);  // ET_EXEC
  EXPECT_NE(with(18, std::string("\x28\x00", 2)).find("another architecture"), std::string::npos);
  EXPECT_NE(with(32, std::string(8, '\xff')).find("program headers lie outside"), std::string::npos);  // e_phoff
  EXPECT_NE(with(40, std::string(8, '\x7f')).find("section headers lie outside"), std::string::npos);  // e_shoff
  EXPECT_NE(elf_image_problem(good.substr(0, good.size() / 2)).find("outside the file"), std::string::npos);
  // Every prefix of the image is judged without reading past it (ASan watches).
  for (std::size_t n = 0; n < 4096 && n < good.size(); n += 61) (void)elf_image_problem(good.substr(0, n));
}

TEST(PluginFile, NamesAndKindsMustMatch) {
  const auto d = scratch("plugin-names");
  fs::copy_file(build_dir() / "attnbench-plugin-dense.so", d / "attnbench-plugin-other.so");
  plugin_registry r({d, build_dir()});
  EXPECT_NE(error_of<plugin_error>([&] { r.find("other", ATTNBENCH_PLUGIN_POLICY); }).find("holds plugin 'dense', expected 'other'"),
            std::string::npos);
  EXPECT_NE(error_of<plugin_error>([&] { r.find("dense", ATTNBENCH_PLUGIN_TERMINATOR); }).find("is a policy, not a terminator"),
            std::string::npos);
}

TEST(Config, LabelsNamesAndBuiltInsAreChecked) {
  const auto d = scratch("config-rules");
  auto error = [&](const std::string& text) {
    std::ofstream(d / "c.json", std::ios::trunc) << text;
    return error_of<harness_error>([&] { load_config(d / "c.json", config_task_rules()); });
  };
  const std::string base = R"("tasks": ["niah_single_1"], "context_lengths": [1024])";
  EXPECT_NE(error("{" + base + R"(, "policies": [{"name": "dense", "label": ""}]})").find("/policies/0/label: must not be empty"),
            std::string::npos);
  EXPECT_NE(error("{" + base + "}").find("/policies: required field is missing"), std::string::npos);
  EXPECT_NE(error(R"({"context_lengths": [1024], "policies": ["dense"]})").find("/tasks: required field is missing"),
            std::string::npos);
  EXPECT_NE(error("{" + base + R"(, "policies": []})").find("/policies: expected a non-empty array"), std::string::npos);
  EXPECT_NE(error("{" + base + R"(, "policies": ["dense"], "name": "x\u0001y"})").find("control characters"),
            std::string::npos);
  EXPECT_NE(error("{" + base + R"(, "policies": ["dense"], "name": ")" + std::string(101, 'n') + "\"}").find("longer than 100"),
            std::string::npos);
}

TEST(Config, SetValuesMustBeUtf8) {
  // Found by fuzz_config: a bare word with invalid UTF-8 threw nlohmann's type_error
  // (exit 1) when a message or results.json wrote it.
  const auto d = scratch("config-utf8");
  std::ofstream(d / "c.json") << R"({"tasks": ["niah_single_1"], "context_lengths": [1024], "policies": ["dense"]})";
  const std::string e = error_of<usage_error>(
      [&] { load_config(d / "c.json", config_task_rules(), {"samples=\x83", "policies.0.params.k\x83=1"}); });
  EXPECT_NE(e.find("not valid UTF-8"), std::string::npos) << e;
  EXPECT_NE(describe_json(nlohmann::json(std::string("a\x83"))).find("a"), std::string::npos);  // replaced, no throw
}
