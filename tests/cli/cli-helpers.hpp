// Helpers of the end-to-end tests of the attnbench executable: running it, writing
// configs, and checking its one-line errors.
#pragma once

#include "../test-helpers.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/plugin.h>

#include <nlohmann/json.hpp>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace attnbench::testing::cli {

namespace fs = std::filesystem;


struct cli_result {
  int code;
  std::string out, err;
};

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string quote(const std::string& s) { return "'" + s + "'"; }

// Runs a shell command with its stdout and stderr captured.
inline cli_result run_shell(const std::string& command) {
  static int counter = 0;
  const auto dir = build_dir() / "test-scratch" / "cli-io";
  fs::create_directories(dir);
  // CTest runs tests in parallel processes: the pid keeps their files apart.
  const std::string tag = std::to_string(getpid()) + "-" + std::to_string(counter++);
  const auto out = dir / ("out-" + tag + ".txt");
  const auto err = dir / ("err-" + tag + ".txt");
  const std::string cmd = command + " > " + quote(out.string()) + " 2> " + quote(err.string());
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

// Runs `PREFIX attnbench --plugin-path TEST_PLUGINS ARGS` through the shell: PREFIX may
// set variables ("X=y ") or limits ("ulimit -v N; ").
inline cli_result run_cli_prefix(const std::string& prefix, const std::string& args) {
  return run_shell(prefix + quote(ATTNBENCH_EXE) + " --plugin-path " + quote(test_plugin_dir().string()) + " " + args);
}

inline cli_result run_cli(const std::string& args) { return run_cli_prefix("", args); }
inline cli_result run_cli_env(const std::string& assignment, const std::string& args) {
  return run_cli_prefix(assignment + " ", args);
}

// The folder of the attnbench executable, where the built plugins are.
inline const fs::path ATTNBENCH_EXE_DIR = fs::path(ATTNBENCH_EXE).parent_path();

inline fs::path write(const fs::path& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name) << text;
  return dir / name;
}

// Expects a failure with the given code and exactly one line on stderr containing all fragments.
inline void expect_failure(const cli_result& r, int code, std::vector<std::string> fragments) {
  EXPECT_EQ(r.code, code) << r.err;
  int lines = 0;
  for (char c : r.err) lines += c == '\n';
  EXPECT_EQ(lines, 1) << r.err;
  for (const auto& f : fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "'" << f << "' not in: " << r.err;
}

// The tiny profile's shape, read from its file.
struct profile_shape {
  std::uint32_t n_layers, n_query_heads, n_kv_heads, head_dim;
};
inline profile_shape tiny_profile() {
  const auto j = nlohmann::json::parse(read_file(profile_file("tiny")));
  return {j["n_layers"], j["n_query_heads"], j["n_kv_heads"], j["head_dim"]};
}

inline std::string config(const std::string& policies, const std::string& extra = "") {
  return R"({"model": {"profile": "tiny"}, "tasks": ["niah_single_1"], "context_lengths": [1024], "samples": 2, "policies": )" +
         policies + extra + "}";
}

}  // namespace attnbench::testing::cli
