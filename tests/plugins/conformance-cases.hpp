// The conformance suites' cases: every plugin of a kind in the build folder, with its
// default params and each set its folder lists in conformance.json.
#pragma once

#include "../test-helpers.hpp"

#include <attnbench/host/plugin-loader.hpp>
#include <attnbench/host/policy-host.hpp>

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/random.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <set>
#include <thread>

namespace attnbench::testing::conformance {

// The shape of every scenario: layers, KV heads, head dim, block size (tokens), decode steps.
constexpr std::uint32_t kLayers = 3, kKvHeads = 2, kDim = 64, kBlock = 16, kSteps = 4;


struct policy_case {
  std::string plugin;
  nlohmann::json params;
  std::string name;  // for the test name
};

inline void PrintTo(const policy_case& c, std::ostream* os) { *os << c.plugin << " " << c.params.dump(); }

// Every plugin of the kind in the build folder (not the built-in "none"), with default
// params and each set in plugins/NAME/conformance.json: {"params": [...], "paths": [keys
// whose values are files in the plugin's folder], "defaults": false to skip defaults}.
inline std::vector<policy_case> discover(attnbench_plugin_kind kind) {
  std::vector<policy_case> cases;
  plugin_registry registry({build_dir()});
  for (const auto& entry : registry.scan()) {
    if (!entry.library || entry.library->descriptor().kind != kind) continue;
    const std::string name = entry.library->descriptor().name;
    const auto folder = source_dir() / "plugins" / name;
    nlohmann::json j = nlohmann::json::object();
    if (std::ifstream in(folder / "conformance.json"); in) j = nlohmann::json::parse(in);
    // "defaults": false for a plugin whose defaults cannot run (tca needs a budgets file).
    if (j.value("defaults", true)) cases.push_back({name, nlohmann::json::object(), name + "_defaults"});
    std::size_t i = 0;
    for (auto params : j.value("params", nlohmann::json::array())) {
      for (const auto& key : j.value("paths", nlohmann::json::array()))  // files in the plugin's folder
        if (params.contains(key.get<std::string>()))
          params[key.get<std::string>()] = (folder / params[key.get<std::string>()].get<std::string>()).string();
      cases.push_back({name, params, name + "_set" + std::to_string(i++)});
    }
  }
  return cases;
}
inline std::vector<policy_case> discover_policies() { return discover(ATTNBENCH_PLUGIN_POLICY); }
inline std::vector<policy_case> discover_terminators() { return discover(ATTNBENCH_PLUGIN_TERMINATOR); }

inline void fill_random(attnbench::rng& r, std::vector<float>& v, double sd) {
  for (auto& x : v) x = static_cast<float>(r.normal() * sd);
}

}  // namespace attnbench::testing::conformance
