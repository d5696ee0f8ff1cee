#include <attnbench/report/report.hpp>

#include <attnbench/host/errors.hpp>
#include <attnbench/report/results.hpp>
#include <attnbench/report/summary.hpp>
#include <attnbench/report/tables.hpp>

#include "report-data.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

namespace attnbench {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

using report_detail::geomean;
using report_detail::group_key;
using report_detail::load;
using report_detail::run_data;

// One report being written: the runs, their cells (no cell in two folders), the folder
// and report.md as it grows.
struct report_context {
  const std::vector<fs::path>& runs;
  std::vector<run_data> data;
  std::vector<const ojson*> cells;
  std::vector<std::size_t> cell_run;  // index in data of each cell's run
  report_result res;
  std::string md;
  void write(const std::string& name, const std::string& text) {
    write_atomically(res.dir / name, text);
    res.files.push_back(name);
  }
  // name.md and name.csv, and the table in report.md under a heading with its blurb; a
  // headline table is also printed on the terminal.
  void section(const std::string& name, const std::string& heading, const std::string& blurb, table t,
               bool headline = false) {
    write(name + ".md", t.markdown());
    write(name + ".csv", t.csv());
    md += "\n## " + heading + "\n\n" + blurb + " ([" + name + ".csv](" + name + ".csv)).\n\n" + t.markdown();
    if (t.title.empty()) t.title = heading;
    if (headline) res.headline += t.text();
  }
};

void collect_cells(report_context& ctx) {
  std::map<std::string, std::size_t> owner;
  for (std::size_t i = 0; i < ctx.data.size(); ++i)
    for (const auto& c : ctx.data[i].doc["cells"]) {
      const std::string id = c.value("id", "");
      if (const auto [it, fresh] = owner.emplace(id, i); !fresh)
        throw config_error(ctx.runs[i].string(), "", "holds cell " + id + ", which " + ctx.runs[it->second].string() +
                                                          " holds too; report combines folders whose cells do not overlap");
      ctx.cells.push_back(&c);
      ctx.cell_run.push_back(i);
    }
}

void runs_section(report_context& ctx) {
  ctx.md = "# attnbench report\n\nRuns:\n\n";
  for (std::size_t i = 0; i < ctx.data.size(); ++i) {
    const ojson& meta = ctx.data[i].doc["meta"];
    const ojson git = meta.contains("git") && meta["git"].is_object() ? meta["git"] : ojson::object();
    ctx.md += "- `" + ctx.runs[i].string() + "`: config `" + meta.value("config_file", std::string("?")) + "`, " +
              std::to_string(ctx.data[i].doc["cells"].size()) + " cells, created " +
              meta.value("created", std::string("?")) + ", commit " +
              (git.value("commit", ojson()).is_string() ? git["commit"].get<std::string>().substr(0, 12)
                                                        : std::string("unknown")) +
              (git.value("dirty", ojson()) == ojson(true) ? " with uncommitted changes" : "") + ", read bandwidth " +
              format_number("%.1f", meta.value("read_bandwidth_bytes_per_s", 0.0) / 1e9) + " GB/s\n";
    if (const std::string note = incompleteness(ctx.data[i].doc, ctx.runs[i]); !note.empty()) {
      ctx.md += "  - **" + note + "**\n";
      ctx.res.warnings.push_back(ctx.runs[i].string() + ": " + note);
    }
  }
}

void suite_sections(report_context& ctx) {
  ojson all_cells = ojson::array();
  for (const ojson* c : ctx.cells) all_cells.push_back(*c);
  if (const auto ruler = ruler_summary(all_cells); !ruler.empty()) {
    ctx.section("ruler-score", "RULER score",
                "Per policy and terminator, the mean over tasks per length and the mean over lengths, as `run` prints "
                "it",
                ruler_score_table(ruler), /*headline=*/true);
    ctx.section("ruler", "RULER per task",
                "Accuracy per task and context length (mean over seeds), the mean over tasks per length, and the mean "
                "over lengths",
                ruler_task_table(ruler));
  }
  if (const auto lb = longbench_summary(all_cells); !lb.empty()) {
    ctx.section("longbench", "LongBench",
                "Category scores (mean of their tasks), overall (mean of the categories) and overall per length bucket",
                longbench_category_table(lb), /*headline=*/true);
    ctx.section("longbench-tasks", "LongBench tasks", "Each task's score, mean over lengths and seeds",
                longbench_task_table(lb));
  }
}

}  // namespace

fs::path default_plots_script() {
  const fs::path source = fs::path(ATTNBENCH_SOURCE_DIR) / "scripts" / "plots.py";
  if (fs::exists(source)) return source;
  return fs::path(ATTNBENCH_INSTALL_DATADIR) / "attnbench" / "plots.py";
}

namespace {

group_key key_of(const ojson& c) {
  return {c["policy"].get<std::string>(), c["terminator"].get<std::string>(), c["context_length"].get<unsigned>()};
}

// Policy, terminator and length groups in the order the tables list them: by length, then
// policy and terminator in the config's order (the order the cells first name them), as
// the RULER and LongBench tables list them.
std::vector<group_key> group_order(const report_context& ctx) {
  std::map<std::pair<std::string, std::string>, std::size_t> rank;
  std::set<group_key> seen;
  std::vector<group_key> order;
  for (const ojson* c : ctx.cells) {
    const group_key k = key_of(*c);
    rank.emplace(std::pair(k.policy, k.terminator), rank.size());
    if (seen.insert(k).second) order.push_back(k);
  }
  std::stable_sort(order.begin(), order.end(), [&](const group_key& a, const group_key& b) {
    return std::pair(a.length, rank.at({a.policy, a.terminator})) < std::pair(b.length, rank.at({b.policy, b.terminator}));
  });
  return order;
}

// Efficiency figures of a policy, terminator and length, summed over its cells.
struct efficiency_sums {
  std::string plugin;
  ojson params;
  std::vector<double> scores, stage_speedups, decode_speedups;
  double tokens = 0, skipped = 0, kv_read = 0, kv_resident = 0, selection = 0, attention = 0, tps = 0;
  int cells = 0;
};

// The dense cell of the same run, task label, length and seed, without a terminator:
// the cell id with its policy and terminator parts replaced.
const ojson* dense_cell(const run_data& run, const ojson& c) {
  for (const auto& [label, plugin] : run.plugin_of) {
    if (plugin != "dense") continue;
    const std::string want = cell_id_with(c["id"].get<std::string>(), label, "none");
    for (const auto& d : run.doc["cells"])
      if (d.value("id", "") == want) return &d;
  }
  return nullptr;
}

void add_efficiency(const run_data& run, const ojson& c, efficiency_sums& g) {
  const ojson& m = c["metrics"];
  const std::string policy = c["policy"].get<std::string>();
  const auto pl = run.plugin_of.find(policy);
  g.plugin = pl == run.plugin_of.end() ? policy : pl->second;
  if (const auto pa = run.params_of.find(policy); pa != run.params_of.end()) g.params = pa->second;
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
  if (const ojson* dense = dense_cell(run, c)) {
    const ojson& dm = (*dense)["metrics"];
    const double stage = m.value("selection_us_per_step", 0.0) + m.value("attention_us_per_step", 0.0);
    const double dense_stage = dm.value("selection_us_per_step", 0.0) + dm.value("attention_us_per_step", 0.0);
    if (stage > 0 && dense_stage > 0) g.stage_speedups.push_back(dense_stage / stage);
    if (dm.value("decode_tokens_per_s", 0.0) > 0 && m.value("decode_tokens_per_s", 0.0) > 0)
      g.decode_speedups.push_back(m.value("decode_tokens_per_s", 0.0) / dm.value("decode_tokens_per_s", 0.0));
  }
}

std::vector<std::string> efficiency_row(const group_key& k, const efficiency_sums& g) {
  const double n = g.cells;
  double mean = 0, var = 0;
  for (double x : g.scores) mean += x;
  mean = g.scores.empty() ? 0 : mean / static_cast<double>(g.scores.size());
  for (double x : g.scores) var += (x - mean) * (x - mean);
  const double half = g.scores.size() > 1 ? 1.96 * std::sqrt(var / static_cast<double>(g.scores.size() - 1)) /
                                                std::sqrt(static_cast<double>(g.scores.size()))
                                          : 0.0;
  return {k.policy, g.plugin, k.terminator, std::to_string(k.length), std::to_string(g.cells),
          format_number("%.1f", mean),
          format_number("%.1f", std::max(0.0, mean - half)) + "-" + format_number("%.1f", std::min(100.0, mean + half)),
          format_number("%.1f", 100 * g.tokens / n), format_number("%.1f", 100 * g.skipped / n),
          format_number("%.1f", g.kv_read / n / 1e6), format_number("%.1f", g.kv_resident / n / 1e6),
          format_number("%.2f", g.selection / n / 1e3), format_number("%.2f", g.attention / n / 1e3),
          format_number("%.2f", g.tps / n),
          g.stage_speedups.empty() ? "-" : format_number("%.2f", geomean(g.stage_speedups)),
          g.decode_speedups.empty() ? "-" : format_number("%.2f", geomean(g.decode_speedups))};
}

// Why quest reads more K/V per step than dense at its length and terminator, when it does:
// its dense first layers and its pages chosen (and read) per query head, as its params
// (quest's defaults: 2 and "query_head") have them.
std::string efficiency_note(const group_key& k, const std::map<group_key, efficiency_sums>& groups) {
  const efficiency_sums& g = groups.at(k);
  bool more = false;
  for (const auto& [other, d] : groups)
    more = more || (g.plugin == "quest" && d.plugin == "dense" && other.length == k.length &&
                    other.terminator == k.terminator && d.cells && g.cells && g.kv_read / g.cells > d.kv_read / d.cells);
  const int layers = g.params.is_object() ? g.params.value("dense_layers", 2) : 2;
  const bool per_query = !g.params.is_object() || g.params.value("granularity", "query_head") == "query_head";
  if (!more || (layers == 0 && !per_query)) return "";
  return "reads more K/V than dense: " + (layers ? "its first " + std::to_string(layers) + " layers are dense" : "") +
         (layers && per_query ? " and " : "") +
         (per_query ? "its pages are chosen per query head, each read once per query head that chose it" : "");
}

// Per policy, terminator and context length over tasks and seeds.
void efficiency_section(report_context& ctx) {
  std::map<group_key, efficiency_sums> groups;
  for (std::size_t i = 0; i < ctx.cells.size(); ++i)
    add_efficiency(ctx.data[ctx.cell_run[i]], *ctx.cells[i], groups[key_of(*ctx.cells[i])]);
  table e;
  e.header = {"policy", "plugin", "terminator", "context", "cells", "accuracy", "95% CI", "tokens attended %",
              "blocks skipped %", "KV read MB/step", "KV resident MB", "selection ms/step", "attention ms/step",
              "decode tok/s", "attention speedup vs dense", "decode speedup vs dense"};
  for (const auto& k : group_order(ctx)) e.add(efficiency_row(k, groups[k]), efficiency_note(k, groups));
  ctx.section("efficiency", "Efficiency",
              "Per policy, terminator and context length, over tasks and seeds: accuracy with a 95% confidence "
              "interval over samples (normal approximation), the share of context tokens attended and of planned "
              "blocks skipped, K/V bytes read per decode step (all layers) and resident after prefill, selection and "
              "attention time per step, decode throughput, and speedups over dense in the same run (geometric mean "
              "over the cells that have a dense counterpart: the attention stage is selection plus attention)",
              e, /*headline=*/true);
}

// Attention fidelity, where the run measured it (metrics.fidelity): per policy, terminator
// and context length, the mean over cells of accuracy, the dense mass visited (overall and
// per head role) and the output's relative error against dense attention.
void fidelity_section(report_context& ctx) {
  struct sums {
    std::string plugin;
    int cells = 0;
    double accuracy = 0, recall = 0, error = 0;
    std::map<std::string, std::pair<double, int>> role_recall;
  };
  std::map<group_key, sums> groups;
  std::set<std::string> roles;
  for (std::size_t i = 0; i < ctx.cells.size(); ++i) {
    const ojson& c = *ctx.cells[i];
    const ojson& m = c["metrics"];
    if (!m.contains("attention_recall") || !m["attention_recall"].is_number()) continue;
    const run_data& run = ctx.data[ctx.cell_run[i]];
    auto& g = groups[key_of(c)];
    const auto pl = run.plugin_of.find(c["policy"].get<std::string>());
    g.plugin = pl == run.plugin_of.end() ? c["policy"].get<std::string>() : pl->second;
    ++g.cells;
    g.accuracy += m.value("accuracy", 0.0);
    g.recall += m["attention_recall"].get<double>();
    g.error += m.value("output_error", 0.0);
    const ojson by_role = m.value("attention_recall_by_role", ojson::object());
    for (const auto& [role, v] : by_role.items())
      if (v.is_number()) {
        g.role_recall[role].first += v.get<double>();
        ++g.role_recall[role].second;
        roles.insert(role);
      }
  }
  if (groups.empty()) return;
  table t;
  t.header = {"policy", "plugin", "terminator", "context", "cells", "accuracy", "attention recall %", "output error %"};
  for (const auto& r : roles) t.header.push_back("recall " + r + " %");
  for (const auto& k : group_order(ctx)) {
    const auto it = groups.find(k);
    if (it == groups.end()) continue;
    const sums& g = it->second;
    const double n = g.cells;
    std::vector<std::string> row{k.policy, g.plugin, k.terminator, std::to_string(k.length), std::to_string(g.cells),
                                 format_number("%.1f", g.accuracy / n), format_number("%.2f", 100 * g.recall / n),
                                 format_number("%.2f", 100 * g.error / n)};
    for (const auto& r : roles) {
      const auto rr = g.role_recall.find(r);
      row.push_back(rr == g.role_recall.end() ? "-" : format_number("%.2f", 100 * rr->second.first / rr->second.second));
    }
    t.add(std::move(row));
  }
  ctx.section("fidelity", "Attention fidelity",
              "Where the run measured it (metrics.fidelity): per policy, terminator and context length, the mean over "
              "cells of the share of dense attention mass the visited tokens hold (per query head and step, then "
              "per head role) and the relative L2 error of the attention output against dense attention over the "
              "sequence's whole cache",
              t);
}

// The plugins' own figures (re-selection rate, K bytes scored, art's bounds, ...): per
// policy, terminator and context length, the mean of every number they report.
void plugin_stats_section(report_context& ctx) {
  std::map<group_key, std::map<std::string, std::pair<double, int>>> stats;
  std::set<std::string> names;
  for (const ojson* c : ctx.cells)
    for (const char* source : {"policy_stats", "terminator_stats"}) {
      const ojson figures = (*c)["metrics"].value(source, ojson::object());
      for (const auto& [name, v] : figures.items())
        if (v.is_number()) {
          auto& s = stats[key_of(*c)][name];
          s.first += v.get<double>();
          ++s.second;
          names.insert(name);
        }
    }
  if (names.empty()) return;
  table t;
  t.header = {"policy", "terminator", "context"};
  t.header.insert(t.header.end(), names.begin(), names.end());
  for (const auto& k : group_order(ctx)) {
    if (!stats.count(k)) continue;
    std::vector<std::string> row{k.policy, k.terminator, std::to_string(k.length)};
    for (const auto& n : names) {
      const auto it = stats[k].find(n);
      row.push_back(it == stats[k].end() ? "-" : format_number("%.4g", it->second.first / it->second.second));
    }
    t.add(std::move(row));
  }
  ctx.section("plugin-stats", "Plugin figures",
              "What the policy and terminator plugins report about themselves, mean over the cells of each policy, "
              "terminator and context length",
              t);
}

// Plot data: accuracy by needle depth and context length (needles.csv), and blocks
// skipped per layer (layers.csv).
void plot_data(report_context& ctx) {
  table needles;
  needles.header = {"policy", "terminator", "context_length", "depth_bin", "accuracy", "samples"};
  std::map<std::tuple<std::string, std::string, unsigned, int>, std::pair<double, int>> depth;
  table layers;
  layers.header = {"policy", "terminator", "layer", "blocks_skipped_frac"};
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<double, int>>> by_layer;
  for (std::size_t i = 0; i < ctx.cells.size(); ++i) {
    const ojson& c = *ctx.cells[i];
    const run_data& run = ctx.data[ctx.cell_run[i]];
    const std::string p = c["policy"].get<std::string>(), t = c["terminator"].get<std::string>();
    const bool niah = c["task"].get<std::string>().rfind("niah", 0) == 0;
    if (const auto s = run.samples.find(c["id"].get<std::string>()); s != run.samples.end() && niah)
      for (const auto& row : s->second)
        if (row.contains("info") && row["info"].contains("depth_percent")) {
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
    needles.add({std::get<0>(k), std::get<1>(k), std::to_string(std::get<2>(k)),
                 std::to_string(std::get<3>(k) * 10) + "-" + std::to_string(std::get<3>(k) * 10 + 10),
                 format_number("%.2f", v.first / v.second), std::to_string(v.second)});
  for (const auto& [k, v] : by_layer)
    for (std::size_t l = 0; l < v.size(); ++l)
      if (v[l].second) layers.add({k.first, k.second, std::to_string(l), format_number("%.4f", v[l].first / v[l].second)});
  ctx.write("needles.csv", needles.csv());
  ctx.write("layers.csv", layers.csv());
}

// Plots through the plots script (none when script is empty), linked from report.md.
void plots_section(report_context& ctx, const fs::path& script) {
  report_result& res = ctx.res;
  std::error_code ec;
  if (script.empty()) {
    res.plot_message = "plots not requested (--no-plots)";
  } else if (!fs::exists(script)) {
    res.plot_message = "plots skipped: " + script.string() + " not found";
  } else {
    // Debian's interpreter, where python3-matplotlib lives, before whatever python3 is
    // first on PATH (a pyenv or venv may lack matplotlib); ATTNBENCH_PYTHON overrides both.
    std::string python = "python3";
    if (const char* env = std::getenv("ATTNBENCH_PYTHON"); env && *env) python = env;
    else if (fs::exists("/usr/bin/python3")) python = "/usr/bin/python3";
    const std::string cmd = "'" + python + "' '" + script.string() + "' '" + res.dir.string() + "'";
    fs::remove_all(res.dir / "plots", ec);  // no stale PNGs from an earlier report
    const int status = std::system(cmd.c_str());
    if (status == 0) res.plotted = true;
    else res.plot_message = "plots skipped: `" + cmd + "` failed (is python3-matplotlib installed? bash scripts/setup.sh installs it)";
  }
  ctx.md += "\n## Plots\n\n";
  if (!res.plotted) {
    ctx.md += res.plot_message + ".\n";
    return;
  }
  for (const auto& entry : fs::directory_iterator(res.dir / "plots"))
    if (entry.path().extension() == ".png") res.files.push_back("plots/" + entry.path().filename().string());
  std::sort(res.files.begin(), res.files.end());
  for (const auto& f : res.files)
    if (f.rfind("plots/", 0) == 0) ctx.md += "![" + f.substr(6, f.size() - 10) + "](" + f + ")\n\n";
}

}  // namespace

report_result write_report(const std::vector<fs::path>& runs, const report_options& options) {
  if (runs.empty()) throw usage_error("report needs at least one results folder");
  if (runs.size() > 1 && options.out.empty()) throw usage_error("report of several folders needs --out DIR");
  report_context ctx{runs, {}, {}, {}, {}, {}};
  for (const auto& r : runs) ctx.data.push_back(load(r));
  collect_cells(ctx);
  ctx.res.dir = options.out.empty() ? runs[0] / "report" : options.out;
  std::error_code ec;
  fs::create_directories(ctx.res.dir, ec);
  if (ec) throw output_error("report folder " + ctx.res.dir.string() + ": cannot create: " + ec.message());
  runs_section(ctx);
  suite_sections(ctx);
  efficiency_section(ctx);
  fidelity_section(ctx);
  plugin_stats_section(ctx);
  plot_data(ctx);
  plots_section(ctx, options.plots_script);
  ctx.write("report.md", ctx.md);
  return ctx.res;
}

}  // namespace attnbench
