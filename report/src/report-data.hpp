// The report's view of one results folder, and the key its per-group tables share;
// internal to report.cpp.
#pragma once

#include <attnbench/report/results.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <compare>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace attnbench::report_detail {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

struct run_data {
  fs::path dir;
  ojson doc;
  std::map<std::string, std::vector<ojson>> samples;  // by cell id
  std::map<std::string, std::string> plugin_of;       // policy label -> plugin name
  std::map<std::string, ojson> params_of;             // policy label -> its params
};

inline run_data load(const fs::path& dir) {
  run_data r;
  r.dir = dir;
  r.doc = read_results_file(dir);
  for (auto& s : read_sample_records(dir).records) r.samples[s["cell"].get<std::string>()].push_back(std::move(s));
  for (const auto& p : r.doc["meta"].value("config", ojson::object()).value("policies", ojson::array())) {
    if (p.is_string()) r.plugin_of[p.get<std::string>()] = p.get<std::string>();
    if (!p.is_object()) continue;
    r.plugin_of[p.value("label", p.value("name", ""))] = p.value("name", "");
    r.params_of[p.value("label", p.value("name", ""))] = p.value("params", ojson::object());
  }
  return r;
}

struct group_key {
  std::string policy, terminator;
  unsigned length;
  auto operator<=>(const group_key&) const = default;
};

inline double geomean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double s = 0;
  for (double x : v) s += std::log(x);
  return std::exp(s / static_cast<double>(v.size()));
}

}  // namespace attnbench::report_detail
