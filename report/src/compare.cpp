#include <attnbench/report/compare.hpp>

#include <attnbench/host/errors.hpp>
#include <attnbench/host/json.hpp>
#include <attnbench/report/results.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace attnbench {
namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Standard error of the median: 1.2533 sigma / sqrt(n), sigma from the median absolute
// deviation (1.4826 MAD), robust to the odd slow repetition of a shared machine.
double median_se(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = median(v);
  std::vector<double> dev;
  for (double x : v) dev.push_back(std::fabs(x - m));
  return 1.2533 * 1.4826 * median(dev) / std::sqrt(static_cast<double>(v.size()));
}

struct metric_kind {
  const char* name;
  bool higher_is_better;
  bool absolute;
};

constexpr metric_kind kKnown[] = {
    {"accuracy", true, true},          {"speedup_vs_dense", true, false}, {"bandwidth_ratio", true, false},
    {"decode_tokens_per_s", true, false}, {"probe_ratio", true, false},  {"same_memory_ratio", true, false},
    {"fraction_of_score_pass", false, false}, {"kv_bytes_per_s", true, false}, {"real_time", false, false},
    {"cpu_time", false, false},         {"ns_per_token_head", false, false}, {"probe_bytes_per_s", true, false},
    {"ceiling_ratio", true, false},     {"roofline_ratio", true, false},    {"ceiling_bytes_per_s", true, false},
};

const metric_kind& kind_of(const std::string& metric, const std::string& file) {
  for (const auto& k : kKnown)
    if (metric == k.name) return k;
  std::string known;
  for (const auto& k : kKnown) known += (known.empty() ? "" : ", ") + std::string(k.name);
  throw config_error(file, "", "unknown metric '" + metric + "' (known: " + known + ")");
}

// ---- Google Benchmark JSON ---------------------------------------------------------

metric_table load_benchmark(const fs::path& file, const json& doc, const std::vector<std::string>& wanted) {
  const std::vector<std::string> defaults{"ceiling_ratio", "roofline_ratio", "same_memory_ratio", "probe_ratio",
                                          "fraction_of_score_pass"};
  const auto& metrics = wanted.empty() ? defaults : wanted;
  if (!doc.contains("benchmarks") || !doc["benchmarks"].is_array())
    throw config_error(file.string(), "", "not a Google Benchmark JSON file (no \"benchmarks\" array)");
  // Repetitions: the iteration entries; files written with aggregates only give their
  // median (one value, no noise estimate).
  bool has_iterations = false;
  for (const auto& b : doc["benchmarks"]) has_iterations |= b.value("run_type", "") == "iteration";
  metric_table out;
  std::set<std::string> found;
  for (const auto& b : doc["benchmarks"]) {
    const std::string type = b.value("run_type", "iteration");
    if (has_iterations ? type != "iteration" : b.value("aggregate_name", "") != "median") continue;
    const std::string name = b.value("run_name", b.value("name", ""));
    for (const auto& m : metrics) {
      const auto& k = kind_of(m, file.string());
      if (!b.contains(m) || !b[m].is_number()) continue;
      auto& s = out[name + " : " + m];
      s.values.push_back(b[m].get<double>());
      s.higher_is_better = k.higher_is_better;
      s.absolute = k.absolute;
      found.insert(m);
    }
  }
  for (const auto& m : wanted)
    if (!found.count(m)) throw config_error(file.string(), "", "no benchmark reports the metric '" + m + "'");
  if (out.empty()) throw config_error(file.string(), "", "no benchmark reports any of the compared metrics");
  return out;
}

// ---- run folders -------------------------------------------------------------------

// Labels of the config's dense policies.
std::set<std::string> dense_labels(const ojson& config) {
  std::set<std::string> out;
  for (const auto& p : config.value("policies", ojson::array())) {
    if (p.is_string() && p == "dense") out.insert("dense");
    if (p.is_object() && p.value("name", "") == "dense") out.insert(p.value("label", "dense"));
  }
  return out;
}

metric_table load_run(const fs::path& dir, const std::vector<std::string>& wanted) {
  const std::vector<std::string> defaults{"accuracy", "speedup_vs_dense", "bandwidth_ratio"};
  const auto& metrics = wanted.empty() ? defaults : wanted;
  const ojson doc = read_results_file(dir);
  const auto dense = dense_labels(doc["meta"]["config"]);
  // Per-sample decode rates, by cell id and sample index.
  std::map<std::string, std::map<std::uint64_t, double>> rates;
  for (const auto& s : read_sample_records(dir).records) {
    const double ms = s.value("decode_ms", 0.0);
    if (ms > 0) rates[s["cell"].get<std::string>()][s["sample"].get<std::uint64_t>()] = s.value("generated_tokens", 0.0) / ms;
  }
  // The dense cell of the same task label, length and seed, without a terminator: the
  // cell id with its policy and terminator parts replaced.
  std::set<std::string> ids;
  for (const auto& c : doc["cells"]) ids.insert(c.value("id", ""));
  auto dense_cell = [&](const ojson& c) -> std::string {
    for (const auto& label : dense)
      if (const std::string candidate = cell_id_with(c.value("id", ""), label, "none"); ids.count(candidate))
        return candidate;
    return "";
  };
  metric_table out;
  std::set<std::string> found;
  for (const auto& c : doc["cells"]) {
    const std::string id = c.value("id", "");
    const json& m = c.value("metrics", json::object());
    for (const auto& name : metrics) {
      const auto& k = kind_of(name, dir.string());
      metric_series s{{}, k.higher_is_better, k.absolute, false};
      if (name == "speedup_vs_dense") {
        s.paired = true;
        const std::string base = dense_cell(c);
        if (base.empty() || base == id) continue;
        for (const auto& [i, r] : rates[id])
          if (const auto it = rates[base].find(i); it != rates[base].end() && it->second > 0)
            s.values.push_back(r / it->second);
      } else if (m.contains(name) && m[name].is_number()) {
        s.values.push_back(m[name].get<double>());
      }
      if (s.values.empty()) continue;
      out[id + " : " + name] = std::move(s);
      found.insert(name);
    }
  }
  for (const auto& name : wanted)
    if (!found.count(name)) throw config_error(dir.string(), "", "no cell has the metric '" + name + "'");
  return out;
}

// A run written before models had a kind used the mechanistic model; its config says so by
// leaving "kind" out.
ojson with_model_kind(ojson config) {
  if (config.contains("model") && config["model"].is_object() && !config["model"].contains("kind"))
    config["model"]["kind"] = "mechanistic";
  return config;
}

// Runs compare only when they come from the same model and grid (key order aside).
void check_same_config(const fs::path& base, const fs::path& now) {
  const ojson a = with_model_kind(read_results_file(base)["meta"]["config"]);
  const ojson b = with_model_kind(read_results_file(now)["meta"]["config"]);
  for (const char* key : {"model", "tasks", "context_lengths", "policies", "terminators", "seeds"})
    if (!same_json(a.value(key, ojson()), b.value(key, ojson())))
      throw config_error(now.string(), std::string("/meta/config/") + key,
                         "differs from " + base.string() + "; compare runs of the same config");
}

}  // namespace

metric_table load_metrics(const fs::path& source, const std::vector<std::string>& metrics) {
  if (fs::is_directory(source)) return load_run(source, metrics);
  if (!fs::exists(source)) throw config_error(source.string(), "", "no such file or folder");
  return load_benchmark(source, read_json_file(source), metrics);
}

std::vector<compare_row> compare_sources(const fs::path& base, const fs::path& now, const compare_options& o) {
  if (fs::is_directory(base) != fs::is_directory(now))
    throw config_error(now.string(), "", "compare needs two run folders or two benchmark JSON files; " + base.string() +
                                             " and " + now.string() + " are one of each");
  if (fs::is_directory(base)) check_same_config(base, now);
  const metric_table a = load_metrics(base, o.metrics), b = load_metrics(now, o.metrics);
  // Nothing to compare is not a pass: a run without cells, or benchmarks without the metrics.
  if (a.empty()) throw config_error(base.string(), "", "has no metric to compare (no finished cell reports one)");
  if (b.empty()) throw config_error(now.string(), "", "has no metric to compare (no finished cell reports one)");
  std::vector<compare_row> rows;
  for (const auto& [key, sa] : a) {
    const auto it = b.find(key);
    if (it == b.end()) throw config_error(now.string(), "", "has no '" + key + "' (present in " + base.string() + ")");
    const metric_series& sb = it->second;
    compare_row r;
    r.key = key;
    r.absolute = sa.absolute;
    r.base = median(sa.values);
    r.now = median(sb.values);
    const double sign = sa.higher_is_better ? 1.0 : -1.0;
    const double se = std::hypot(median_se(sa.values), median_se(sb.values));
    double limit;
    if (sa.paired && !sa.absolute && sa.values.size() == sb.values.size() && sa.values.size() > 1) {
      std::vector<double> ratios;  // better-is-above-one ratio of each pair
      for (std::size_t i = 0; i < sa.values.size(); ++i)
        if (sa.values[i] > 0 && sb.values[i] > 0)
          ratios.push_back(sa.higher_is_better ? sb.values[i] / sa.values[i] : sa.values[i] / sb.values[i]);
      r.change = median(ratios) - 1.0;
      r.noise = median_se(ratios);
      limit = o.threshold_pct / 100.0;
    } else if (sa.absolute) {
      r.change = sign * (r.now - r.base);
      r.noise = se;
      limit = o.accuracy_points;
    } else {
      const double scale = std::fabs(r.base) > 0 ? std::fabs(r.base) : 1.0;
      r.change = sign * (r.now - r.base) / scale;
      r.noise = se / scale;
      limit = o.threshold_pct / 100.0;
    }
    if (r.change >= -limit) r.verdict = r.change > std::max(limit, o.noise_sigmas * r.noise) ? "better" : "ok";
    else r.verdict = -r.change > o.noise_sigmas * r.noise ? "REGRESSION" : "noisy";
    rows.push_back(r);
  }
  return rows;
}

std::string compare_markdown(const std::vector<compare_row>& rows, const compare_options& o) {
  std::string out = "| metric | base | new | change | noise (1 s.e.) | verdict |\n|---|---|---|---|---|---|\n";
  char buf[512];
  for (const auto& r : rows) {
    if (r.absolute)
      std::snprintf(buf, sizeof buf, "| %s | %.2f | %.2f | %+.2f points | %.2f | %s |\n", r.key.c_str(), r.base, r.now,
                    r.change, r.noise, r.verdict.c_str());
    else
      std::snprintf(buf, sizeof buf, "| %s | %.4g | %.4g | %+.1f%% | %.1f%% | %s |\n", r.key.c_str(), r.base, r.now,
                    100 * r.change, 100 * r.noise, r.verdict.c_str());
    out += buf;
  }
  std::size_t regressions = 0, noisy = 0;
  for (const auto& r : rows) regressions += r.verdict == "REGRESSION", noisy += r.verdict == "noisy";
  std::snprintf(buf, sizeof buf,
                "\n%zu metrics; %zu regressed past the threshold (%.1f%%, %.1f accuracy points, and %.0f standard "
                "errors of noise); %zu were worse by more than the threshold but within the noise.\n",
                rows.size(), regressions, o.threshold_pct, o.accuracy_points, o.noise_sigmas, noisy);
  out += buf;
  return out;
}

}  // namespace attnbench
