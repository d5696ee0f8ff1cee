#include "report.hpp"

#include "errors.hpp"
#include "results.hpp"
#include "summary.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

namespace attnbench {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

struct run_data {
  fs::path dir;
  ojson doc;
  std::map<std::string, std::vector<ojson>> samples;  // by cell id
  std::map<std::string, std::string> plugin_of;       // policy label -> plugin name
};

run_data load(const fs::path& dir) {
  run_data r;
  r.dir = dir;
  r.doc = read_results_file(dir);
  std::ifstream in(dir / "samples.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    try {
      ojson s = ojson::parse(line);
      r.samples[s.value("cell", "")].push_back(std::move(s));
    } catch (const std::exception&) {
      // a torn last line of an interrupted run
    }
  }
  for (const auto& p : r.doc["meta"].value("config", ojson::object()).value("policies", ojson::array())) {
    if (p.is_string()) r.plugin_of[p.get<std::string>()] = p.get<std::string>();
    else if (p.is_object()) r.plugin_of[p.value("label", p.value("name", ""))] = p.value("name", "");
  }
  return r;
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

// A markdown table and the same rows as CSV.
struct table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string markdown() const {
    std::string out = "|";
    for (const auto& h : header) out += " " + h + " |";
    out += "\n|";
    for (std::size_t i = 0; i < header.size(); ++i) out += "---|";
    out += "\n";
    for (const auto& r : rows) {
      out += "|";
      for (const auto& c : r) out += " " + c + " |";
      out += "\n";
    }
    return out;
  }
  std::string csv() const {
    auto line = [](const std::vector<std::string>& v) {
      std::string out;
      for (std::size_t i = 0; i < v.size(); ++i) {
        std::string c = v[i];
        if (c.find_first_of(",\"") != std::string::npos) {
          std::string q = "\"";
          for (char ch : c) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
          c = q + "\"";
        }
        out += (i ? "," : "") + c;
      }
      return out + "\n";
    };
    std::string out = line(header);
    for (const auto& r : rows) out += line(r);
    return out;
  }
};

struct group_key {
  std::string policy, terminator;
  unsigned length;
  bool operator<(const group_key& o) const {
    return std::tie(policy, terminator, length) < std::tie(o.policy, o.terminator, o.length);
  }
};

double geomean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double s = 0;
  for (double x : v) s += std::log(x);
  return std::exp(s / static_cast<double>(v.size()));
}

// RULER: per policy and terminator, tasks x lengths, with per-length means and the mean
// over lengths.
table ruler_table(const std::vector<const ojson*>& cells) {
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::map<unsigned, std::vector<double>>>> acc;
  std::set<unsigned> lengths;
  std::vector<std::pair<std::string, std::string>> order;
  for (const ojson* c : cells) {
    if (!is_ruler_task((*c)["task"].get<std::string>())) continue;
    const auto k = std::make_pair((*c)["policy"].get<std::string>(), (*c)["terminator"].get<std::string>());
    if (!acc.count(k)) order.push_back(k);
    const unsigned len = (*c)["context_length"].get<unsigned>();
    lengths.insert(len);
    acc[k][(*c)["task"].get<std::string>()][len].push_back((*c)["metrics"]["accuracy"].get<double>());
  }
  table t;
  t.header = {"policy", "terminator", "task"};
  for (unsigned l : lengths) t.header.push_back(std::to_string(l));
  t.header.push_back("mean");
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  for (const auto& k : order) {
    std::map<unsigned, std::vector<double>> per_length;
    for (const auto& [task, by_len] : acc[k]) {
      std::vector<std::string> row{k.first, k.second, task};
      std::vector<double> over;
      for (unsigned l : lengths) {
        const auto it = by_len.find(l);
        if (it == by_len.end()) {
          row.push_back("-");
          continue;
        }
        const double m = mean(it->second);
        row.push_back(fmt("%.1f", m));
        over.push_back(m);
        per_length[l].push_back(m);
      }
      row.push_back(fmt("%.1f", mean(over)));
      t.rows.push_back(row);
    }
    std::vector<std::string> row{k.first, k.second, "**mean**"};
    std::vector<double> over;
    for (unsigned l : lengths) {
      const double m = mean(per_length[l]);
      row.push_back(per_length[l].empty() ? "-" : fmt("%.1f", m));
      if (!per_length[l].empty()) over.push_back(m);
    }
    row.push_back(fmt("%.1f", mean(over)));
    t.rows.push_back(row);
  }
  return t;
}

table longbench_table(const ojson& summary) {
  table t;
  t.header = {"policy", "terminator"};
  for (const auto& c : longbench_categories()) t.header.push_back(c);
  for (const char* h : {"overall", "0-4K", "4-8K", "8K+"}) t.header.push_back(h);
  for (const auto& r : summary) {
    std::vector<std::string> row{r["policy"].get<std::string>(), r["terminator"].get<std::string>()};
    for (const auto& c : longbench_categories())
      row.push_back(r["categories"].contains(c) ? fmt("%.1f", r["categories"][c].get<double>()) : "-");
    row.push_back(fmt("%.1f", r["overall"].get<double>()));
    for (const char* b : {"0-4K", "4-8K", "8K+"})
      row.push_back(r["buckets"].contains(b) ? fmt("%.1f", r["buckets"][b]["overall"].get<double>()) : "-");
    t.rows.push_back(row);
  }
  return t;
}

}  // namespace

fs::path default_plots_script() {
  const fs::path source = fs::path(ATTNBENCH_SOURCE_DIR) / "scripts" / "plots.py";
  if (fs::exists(source)) return source;
  return fs::path(ATTNBENCH_INSTALL_DATADIR) / "attnbench" / "plots.py";
}

report_result write_report(const std::vector<fs::path>& runs, const report_options& options) {
  if (runs.empty()) throw usage_error("report needs at least one results folder");
  if (runs.size() > 1 && options.out.empty()) throw usage_error("report of several folders needs --out DIR");
  std::vector<run_data> data;
  for (const auto& r : runs) data.push_back(load(r));
  // Cells of all folders; a cell in two folders is an error.
  std::map<std::string, std::size_t> owner;
  std::vector<const ojson*> cells;
  std::vector<std::size_t> cell_run;
  for (std::size_t i = 0; i < data.size(); ++i)
    for (const auto& c : data[i].doc["cells"]) {
      const std::string id = c.value("id", "");
      if (const auto [it, fresh] = owner.emplace(id, i); !fresh)
        throw config_error(runs[i].string(), "", "holds cell " + id + ", which " + runs[it->second].string() +
                                                      " holds too; report combines folders whose cells do not overlap");
      cells.push_back(&c);
      cell_run.push_back(i);
    }

  report_result res;
  res.dir = options.out.empty() ? runs[0] / "report" : options.out;
  std::error_code ec;
  fs::create_directories(res.dir, ec);
  if (ec) throw output_error("report folder " + res.dir.string() + ": cannot create: " + ec.message());
  auto write = [&](const std::string& name, const std::string& text) {
    write_atomically(res.dir / name, text);
    res.files.push_back(name);
  };
  std::string md = "# attnbench report\n\n";
  md += "Runs:\n\n";
  for (std::size_t i = 0; i < data.size(); ++i) {
    const ojson& meta = data[i].doc["meta"];
    md += "- `" + runs[i].string() + "`: config `" + meta.value("config_file", std::string("?")) + "`, " +
          std::to_string(data[i].doc["cells"].size()) + " cells, created " + meta.value("created", std::string("?")) +
          ", commit " + (meta.value("git", ojson::object()).value("commit", ojson()).is_string()
                             ? meta["git"]["commit"].get<std::string>().substr(0, 12)
                             : std::string("unknown")) +
          (meta.value("git", ojson::object()).value("dirty", ojson()) == ojson(true) ? " with uncommitted changes" : "") +
          ", read bandwidth " + fmt("%.1f", meta.value("read_bandwidth_bytes_per_s", 0.0) / 1e9) + " GB/s\n";
  }

  // RULER.
  const table ruler = ruler_table(cells);
  if (!ruler.rows.empty()) {
    write("ruler.md", ruler.markdown());
    write("ruler.csv", ruler.csv());
    md += "\n## RULER\n\nAccuracy per task and context length (mean over seeds), the mean over tasks per length, "
          "and the mean over lengths ([ruler.csv](ruler.csv)).\n\n" +
          ruler.markdown();
  }
  // LongBench.
  ojson all_cells = ojson::array();
  for (const ojson* c : cells) all_cells.push_back(*c);
  if (const auto lb = longbench_summary(all_cells); !lb.empty()) {
    const table t = longbench_table(lb);
    write("longbench.md", t.markdown());
    write("longbench.csv", t.csv());
    md += "\n## LongBench\n\nCategory scores (mean of their tasks), overall (mean of the categories) and overall per "
          "length bucket ([longbench.csv](longbench.csv)).\n\n" +
          t.markdown();
  }

  // Efficiency: per policy, terminator and context length over tasks and seeds.
  struct eff {
    std::string plugin;
    std::vector<double> scores, stage_speedups, decode_speedups;
    double tokens = 0, skipped = 0, kv_read = 0, kv_resident = 0, selection = 0, attention = 0, tps = 0;
    int cells = 0;
  };
  std::map<group_key, eff> groups;
  std::vector<group_key> order;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const ojson& c = *cells[i];
    const run_data& run = data[cell_run[i]];
    const ojson& m = c["metrics"];
    const group_key k{c["policy"].get<std::string>(), c["terminator"].get<std::string>(),
                      c["context_length"].get<unsigned>()};
    if (!groups.count(k)) order.push_back(k);
    eff& g = groups[k];
    const auto pl = run.plugin_of.find(k.policy);
    g.plugin = pl == run.plugin_of.end() ? k.policy : pl->second;
    ++g.cells;
    if (const auto s = run.samples.find(c["id"].get<std::string>()); s != run.samples.end())
      for (const auto& row : s->second) g.scores.push_back(row.value("score", 0.0));
    g.tokens += m.value("tokens_attended_frac", 0.0);
    g.skipped += m.value("blocks_skipped_frac", 0.0);
    g.kv_read += m.value("kv_bytes_read_per_step", 0.0);
    g.kv_resident += m.value("kv_bytes_resident", 0.0);
    g.selection += m.value("selection_us_per_step", 0.0);
    g.attention += m.value("attention_us_per_step", 0.0);
    g.tps += m.value("decode_tokens_per_s", 0.0);
    // The dense cell of the same run, task label, length and seed, without a terminator:
    // the cell id with its policy and terminator parts replaced.
    const ojson* dense = nullptr;
    for (const auto& [label, plugin] : run.plugin_of) {
      if (plugin != "dense" || dense) continue;
      const std::string want = cell_id_with(c["id"].get<std::string>(), label, "none");
      for (const auto& d : run.doc["cells"])
        if (d.value("id", "") == want) dense = &d;
    }
    if (dense) {
      const ojson& dm = (*dense)["metrics"];
      const double stage = m.value("selection_us_per_step", 0.0) + m.value("attention_us_per_step", 0.0);
      const double dense_stage = dm.value("selection_us_per_step", 0.0) + dm.value("attention_us_per_step", 0.0);
      if (stage > 0 && dense_stage > 0) g.stage_speedups.push_back(dense_stage / stage);
      if (dm.value("decode_tokens_per_s", 0.0) > 0 && m.value("decode_tokens_per_s", 0.0) > 0)
        g.decode_speedups.push_back(m.value("decode_tokens_per_s", 0.0) / dm.value("decode_tokens_per_s", 0.0));
    }
  }
  table e;
  e.header = {"policy", "plugin", "terminator", "context", "cells", "accuracy", "95% CI", "tokens attended %",
              "blocks skipped %", "KV read MB/step", "KV resident MB", "selection ms/step", "attention ms/step",
              "decode tok/s", "attention speedup vs dense", "decode speedup vs dense"};
  std::sort(order.begin(), order.end(), [](const group_key& a, const group_key& b) {
    return std::tie(a.length, a.policy, a.terminator) < std::tie(b.length, b.policy, b.terminator);
  });
  for (const auto& k : order) {
    const eff& g = groups[k];
    const double n = g.cells;
    double mean = 0, var = 0;
    for (double x : g.scores) mean += x;
    mean = g.scores.empty() ? 0 : mean / static_cast<double>(g.scores.size());
    for (double x : g.scores) var += (x - mean) * (x - mean);
    const double half = g.scores.size() > 1
                            ? 1.96 * std::sqrt(var / static_cast<double>(g.scores.size() - 1)) /
                                  std::sqrt(static_cast<double>(g.scores.size()))
                            : 0.0;
    e.rows.push_back({k.policy, g.plugin, k.terminator, std::to_string(k.length), std::to_string(g.cells),
                      fmt("%.1f", mean),
                      fmt("%.1f", std::max(0.0, mean - half)) + "-" + fmt("%.1f", std::min(100.0, mean + half)),
                      fmt("%.1f", 100 * g.tokens / n), fmt("%.1f", 100 * g.skipped / n), fmt("%.1f", g.kv_read / n / 1e6),
                      fmt("%.1f", g.kv_resident / n / 1e6), fmt("%.2f", g.selection / n / 1e3),
                      fmt("%.2f", g.attention / n / 1e3), fmt("%.2f", g.tps / n),
                      g.stage_speedups.empty() ? "-" : fmt("%.2f", geomean(g.stage_speedups)),
                      g.decode_speedups.empty() ? "-" : fmt("%.2f", geomean(g.decode_speedups))});
  }
  write("efficiency.md", e.markdown());
  write("efficiency.csv", e.csv());
  md += "\n## Efficiency\n\nPer policy, terminator and context length, over tasks and seeds: accuracy with a 95% "
        "confidence interval over samples (normal approximation), the share of context tokens attended and of "
        "planned blocks skipped, K/V bytes read per decode step (all layers) and resident after prefill, selection "
        "and attention time per step, decode throughput, and speedups over dense in the same run (geometric mean "
        "over the cells that have a dense counterpart: the attention stage is selection plus attention) "
        "([efficiency.csv](efficiency.csv)).\n\n" +
        e.markdown();

  // The plugins' own figures (re-selection rate, K bytes scored, art's bounds, ...): per
  // policy, terminator and context length, the mean of every number they report.
  {
    std::map<group_key, std::map<std::string, std::pair<double, int>>> stats;
    std::set<std::string> names;
    for (const ojson* c : cells) {
      const group_key k{(*c)["policy"].get<std::string>(), (*c)["terminator"].get<std::string>(),
                        (*c)["context_length"].get<unsigned>()};
      for (const char* source : {"policy_stats", "terminator_stats"}) {
        const ojson figures = (*c)["metrics"].value(source, ojson::object());
        for (const auto& [name, v] : figures.items())
          if (v.is_number()) {
            auto& s = stats[k][name];
            s.first += v.get<double>();
            ++s.second;
            names.insert(name);
          }
      }
    }
    if (!names.empty()) {
      table t;
      t.header = {"policy", "terminator", "context"};
      t.header.insert(t.header.end(), names.begin(), names.end());
      for (const auto& k : order) {
        if (!stats.count(k)) continue;
        std::vector<std::string> row{k.policy, k.terminator, std::to_string(k.length)};
        for (const auto& n : names) {
          const auto it = stats[k].find(n);
          row.push_back(it == stats[k].end() ? "-" : fmt("%.4g", it->second.first / it->second.second));
        }
        t.rows.push_back(row);
      }
      write("plugin-stats.md", t.markdown());
      write("plugin-stats.csv", t.csv());
      md += "\n## Plugin figures\n\nWhat the policy and terminator plugins report about themselves, mean over the "
            "cells of each policy, terminator and context length ([plugin-stats.csv](plugin-stats.csv)).\n\n" +
            t.markdown();
    }
  }

  // Plot data: needle depth x context length, and blocks skipped per layer.
  table needles;
  needles.header = {"policy", "terminator", "context_length", "depth_bin", "accuracy", "samples"};
  std::map<std::tuple<std::string, std::string, unsigned, int>, std::pair<double, int>> depth;
  table layers;
  layers.header = {"policy", "terminator", "layer", "blocks_skipped_frac"};
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<double, int>>> by_layer;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const ojson& c = *cells[i];
    const std::string p = c["policy"].get<std::string>(), t = c["terminator"].get<std::string>();
    if (const auto s = data[cell_run[i]].samples.find(c["id"].get<std::string>()); s != data[cell_run[i]].samples.end())
      for (const auto& row : s->second)
        if (row.contains("info") && row["info"].contains("depth_percent") && c["task"].get<std::string>().rfind("niah", 0) == 0) {
          const int bin = std::min(9, static_cast<int>(row["info"]["depth_percent"].get<double>() / 10.0));
          auto& cell = depth[{p, t, c["context_length"].get<unsigned>(), bin}];
          cell.first += row.value("score", 0.0);
          ++cell.second;
        }
    const auto& bl = c["metrics"].value("blocks_skipped_frac_by_layer", ojson::array());
    auto& v = by_layer[{p, t}];
    if (v.size() < bl.size()) v.resize(bl.size());
    for (std::size_t l = 0; l < bl.size(); ++l) v[l].first += bl[l].get<double>(), ++v[l].second;
  }
  for (const auto& [k, v] : depth)
    needles.rows.push_back({std::get<0>(k), std::get<1>(k), std::to_string(std::get<2>(k)),
                            std::to_string(std::get<3>(k) * 10) + "-" + std::to_string(std::get<3>(k) * 10 + 10),
                            fmt("%.2f", v.first / v.second), std::to_string(v.second)});
  for (const auto& [k, v] : by_layer)
    for (std::size_t l = 0; l < v.size(); ++l)
      if (v[l].second) layers.rows.push_back({k.first, k.second, std::to_string(l), fmt("%.4f", v[l].first / v[l].second)});
  write("needles.csv", needles.csv());
  write("layers.csv", layers.csv());

  // Plots.
  if (options.plots_script.empty()) {
    res.plot_message = "plots not requested (--no-plots)";
  } else if (!fs::exists(options.plots_script)) {
    res.plot_message = "plots skipped: " + options.plots_script.string() + " not found";
  } else {
    // Debian's interpreter, where python3-matplotlib lives, before whatever python3 is
    // first on PATH (a pyenv or venv may lack matplotlib); ATTNBENCH_PYTHON overrides both.
    std::string python = "python3";
    if (const char* env = std::getenv("ATTNBENCH_PYTHON"); env && *env) python = env;
    else if (fs::exists("/usr/bin/python3")) python = "/usr/bin/python3";
    const std::string cmd = "'" + python + "' '" + options.plots_script.string() + "' '" + res.dir.string() + "'";
    fs::remove_all(res.dir / "plots", ec);  // no stale PNGs from an earlier report
    const int status = std::system(cmd.c_str());
    if (status == 0) res.plotted = true;
    else res.plot_message = "plots skipped: `" + cmd + "` failed (is python3-matplotlib installed? bash scripts/setup.sh installs it)";
  }
  md += "\n## Plots\n\n";
  if (res.plotted) {
    for (const auto& entry : fs::directory_iterator(res.dir / "plots")) {
      const std::string name = entry.path().filename().string();
      if (entry.path().extension() == ".png") res.files.push_back("plots/" + name);
    }
    std::sort(res.files.begin(), res.files.end());
    for (const auto& f : res.files)
      if (f.rfind("plots/", 0) == 0) md += "![" + f.substr(6, f.size() - 10) + "](" + f + ")\n\n";
  } else {
    md += res.plot_message + ".\n";
  }
  write("report.md", md);
  return res;
}

}  // namespace attnbench
