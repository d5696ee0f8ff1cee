// attnbench: the command-line entry point. Subcommands run, validate and list; exit
// codes are documented in --help and in errors.hpp.
#include "config.hpp"
#include "errors.hpp"
#include "machine.hpp"
#include "model.hpp"
#include "plugin-loader.hpp"
#include "results.hpp"
#include "runner.hpp"
#include "stats.hpp"
#include "dump.hpp"
#include "calibrate.hpp"
#include "compare.hpp"
#include "merge.hpp"
#include "report.hpp"
#include "summary.hpp"

#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/probe.hpp>
#include <attnbench/kernels/random.hpp>
#include <attnbench/kernels/simd.hpp>
#include <attnbench/tasks/task.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <tbb/global_control.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <set>
#include <thread>

#ifndef ATTNBENCH_VERSION
#define ATTNBENCH_VERSION "0.0.0"
#endif

namespace fs = std::filesystem;
using nlohmann::json;
using namespace attnbench;

namespace {

constexpr const char* kExitCodes =
    "Exit codes:\n"
    "  0    success\n"
    "  1    unexpected internal error\n"
    "  2    bad command line, including --set with an unknown path\n"
    "  3    config or profile error: missing file, malformed JSON, wrong type or value, unknown task\n"
    "  4    plugin error: not found, not a plugin, wrong ABI version, params rejected, operation failed\n"
    "  5    output error: results folder not writable, or --resume that does not match\n"
    "  6    not enough memory for a cell\n"
    "  7    compare: a metric regressed past its threshold\n"
    "  130  interrupted (Ctrl-C); finished cells are kept, continue with --resume\n";

void on_sigint(int) {
  if (g_interrupt_requested.exchange(true)) std::_Exit(exit_interrupted);  // second Ctrl-C: leave now
}

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::string utc_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct loaded_run {
  run_config config;
  model_profile profile;
  resolved_plugins plugins;
};

loaded_run load_everything(const std::string& config_file, const std::vector<std::string>& sets,
                           plugin_registry& registry) {
  run_config config = load_config(config_file, sets);
  model_profile profile = load_profile(resolve_profile_path(config));
  resolved_plugins plugins = resolve_plugins(config, profile, registry);
  check_memory(config, profile);
  return {std::move(config), std::move(profile), std::move(plugins)};
}

// Widths of the policy and terminator columns: the longest label, at least the header's.
struct label_widths {
  int policy = 14, terminator = 12, task = 16;
  explicit label_widths(const nlohmann::ordered_json& rows) {
    for (const auto& r : rows) {
      policy = std::max(policy, static_cast<int>(r["policy"].get<std::string>().size()));
      terminator = std::max(terminator, static_cast<int>(r["terminator"].get<std::string>().size()));
      if (r.contains("task")) task = std::max(task, static_cast<int>(r["task"].get<std::string>().size()));
    }
  }
};

void print_table(const nlohmann::ordered_json& cells) {
  const label_widths w(cells);
  std::printf("%-*s %-*s %-*s %8s %9s %9s %12s\n", w.policy, "policy", w.terminator, "terminator", w.task, "task", "context",
              "accuracy", "skipped", "decode tok/s");
  for (const auto& c : cells) {
    const auto& m = c["metrics"];
    std::printf("%-*s %-*s %-*s %8u %9.1f %8.1f%% %12.2f\n", w.policy, c["policy"].get<std::string>().c_str(),
                w.terminator, c["terminator"].get<std::string>().c_str(), w.task, c["task"].get<std::string>().c_str(),
                c["context_length"].get<unsigned>(), m["accuracy"].get<double>(),
                100.0 * m["blocks_skipped_frac"].get<double>(), m["decode_tokens_per_s"].get<double>());
  }
}

// RULER's table: one row per policy and terminator, the mean of the tasks per length,
// then the mean over lengths.
void print_ruler(const nlohmann::ordered_json& ruler) {
  const label_widths w(ruler);
  std::printf("\nRULER score (per length: mean over tasks; then mean over lengths)\n%-*s %-*s", w.policy, "policy",
              w.terminator, "terminator");
  for (const auto& l : ruler[0]["lengths"]) std::printf(" %8u", l["context_length"].get<unsigned>());
  std::printf(" %8s\n", "mean");
  for (const auto& r : ruler) {
    std::printf("%-*s %-*s", w.policy, r["policy"].get<std::string>().c_str(), w.terminator,
                r["terminator"].get<std::string>().c_str());
    for (const auto& l : r["lengths"]) std::printf(" %8.1f", l["score"].get<double>());
    std::printf(" %8.1f%s\n", r["mean"].get<double>(), r["complete"].get<bool>() ? "" : "  (not all 13 tasks)");
  }
}

// LongBench's tables: per task, per category and overall; then overall per length bucket.
void print_longbench(const nlohmann::ordered_json& lb) {
  const label_widths w(lb);
  std::vector<std::string> tasks;
  for (const auto& r : lb)
    for (const auto& [task, score] : r["tasks"].items())
      if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) tasks.push_back(task);
  auto cell = [](const nlohmann::ordered_json& obj, const std::string& key, int width) {
    if (obj.contains(key)) std::printf(" %*.1f", width, obj[key].get<double>());
    else std::printf(" %*s", width, "-");
  };
  auto head = [&](const char* title) {
    std::printf("\n%s\n%-*s %-*s", title, w.policy, "policy", w.terminator, "terminator");
  };
  auto label = [&](const nlohmann::ordered_json& r) {
    std::printf("%-*s %-*s", w.policy, r["policy"].get<std::string>().c_str(), w.terminator,
                r["terminator"].get<std::string>().c_str());
  };
  head("LongBench tasks (mean over lengths and seeds)");
  for (const auto& t : tasks) std::printf(" %9s", longbench_short_name(t).c_str());
  std::printf("\n");
  for (const auto& r : lb) {
    label(r);
    for (const auto& t : tasks) cell(r["tasks"], t, 9);
    std::printf("\n");
  }
  head("LongBench categories (mean of their tasks) and overall (mean of the categories)");
  for (const auto& c : longbench_categories()) std::printf(" %13s", c.c_str());
  std::printf(" %8s %6s %6s %6s\n", "overall", "0-4K", "4-8K", "8K+");
  for (const auto& r : lb) {
    label(r);
    for (const auto& c : longbench_categories()) cell(r["categories"], c, 13);
    std::printf(" %8.1f", r["overall"].get<double>());
    for (const char* b : {"0-4K", "4-8K", "8K+"})
      if (r["buckets"].contains(b)) std::printf(" %6.1f", r["buckets"][b]["overall"].get<double>());
      else std::printf(" %6s", "-");
    std::printf("%s\n", r["complete"].get<bool>() ? "" : "  (not all 6 categories)");
  }
}

// "I/N" with 0 <= I < N.
std::pair<std::size_t, std::size_t> parse_shard(const std::string& text) {
  unsigned long i = 0, n = 0;
  char tail = 0;
  if (text.empty()) return {0, 1};
  if (std::sscanf(text.c_str(), "%lu/%lu%c", &i, &n, &tail) != 2 || n == 0 || i >= n)
    throw usage_error("--shard: expected I/N with 0 <= I < N (e.g. 0/4), got '" + text + "'");
  return {i, n};
}

// The cell table and the suites' tables of a results document.
void print_tables(const nlohmann::ordered_json& doc) {
  print_table(doc["cells"]);
  if (const auto ruler = ruler_summary(doc["cells"]); !ruler.empty()) print_ruler(ruler);
  if (const auto lb = longbench_summary(doc["cells"]); !lb.empty()) print_longbench(lb);
}

int cmd_run(const std::string& config_file, const std::vector<std::string>& sets, std::string out_dir, bool resume,
            const std::string& shard_text, plugin_registry& registry) {
  const auto [shard_index, shard_count] = parse_shard(shard_text);
  loaded_run run = load_everything(config_file, sets, registry);
  const run_config& config = run.config;
  if (resume && out_dir.empty()) throw usage_error("--resume needs --out DIR naming the run folder to continue");
  if (out_dir.empty())
    out_dir = (fs::path("results") / (config.name + "-" + timestamp() +
                                      (shard_count > 1 ? "-shard" + std::to_string(shard_index) : "")))
                  .string();

  const unsigned threads = config.threads > 0 ? config.threads : std::max(1u, std::thread::hardware_concurrency());
  tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism, threads);

  const nlohmann::ordered_json meta = {{"schema_version", kResultsSchemaVersion},
                     {"attnbench_version", ATTNBENCH_VERSION},
                     {"created", utc_iso8601()},
                     {"git", git_info()},
                     {"config_file", config.file.string()},
                     {"config", config.resolved},
                     {"model_profile", run.profile.to_json()},
                     {"plugins", run.plugins.info()},
                     {"plugin_abi_version", ATTNBENCH_ABI_VERSION},
                     {"machine", machine_info()},
                     {"threads", threads},
                     {"kernel_target", kernels::current_target()}};
  nlohmann::ordered_json full_meta = meta;
  if (shard_count > 1) full_meta["shard"] = {{"index", shard_index}, {"count", shard_count}};
  results_writer writer(out_dir, full_meta, resume);
  spdlog::info("results folder: {}", writer.dir().string());

  // Speed figures are ratios to this probe, measured in the same process.
  const double bandwidth = kernels::measure_read_bandwidth(std::size_t{512} << 20, 5, static_cast<int>(threads));
  spdlog::info("read bandwidth {:.2f} GB/s ({} threads)", bandwidth / 1e9, threads);
  writer.set_meta("read_bandwidth_bytes_per_s", bandwidth);

  const synthetic_model model(run.profile, config.model_seed);
  const run_inputs inputs{config, model, run.plugins, bandwidth, shard_index, shard_count};
  run_cells(inputs, writer);

  if (const auto ruler = ruler_summary(writer.document()["cells"]); !ruler.empty()) writer.set_summary("ruler", ruler);
  if (const auto lb = longbench_summary(writer.document()["cells"]); !lb.empty()) writer.set_summary("longbench", lb);
  print_tables(writer.document());
  std::printf("results: %s\n", writer.dir().string().c_str());
  return exit_ok;
}

int cmd_validate(const std::string& config_file, const std::vector<std::string>& sets, plugin_registry& registry) {
  const loaded_run run = load_everything(config_file, sets, registry);
  const auto cells = expand_grid(run.config);
  std::printf("%s: valid: %zu cells (%zu tasks x %zu context lengths x %zu policies x %zu terminators x %zu seeds), "
              "%u samples each, profile '%s'\n",
              config_file.c_str(), cells.size(), run.config.tasks.size(), run.config.context_lengths.size(),
              run.config.policies.size(), run.config.terminators.size(), run.config.seeds.size(), run.config.samples,
              run.profile.name.c_str());
  return exit_ok;
}

struct stats_options {
  std::string task, json_out;
  std::uint32_t length = 0, samples = 2, steps = 8;
};

// The task named by --task (a config task's name or label, or any task), else the
// config's first; name receives the task's name.
std::unique_ptr<tasks::task> find_task(const run_config& config, const std::string& wanted, std::string& name) {
  name = wanted.empty() ? config.tasks.front().name : wanted;
  nlohmann::json params = nlohmann::json::object();
  for (const auto& t : config.tasks)
    if (t.name == name || t.label == name) name = t.name, params = t.params;
  try {
    return tasks::make_task(name, params);
  } catch (const std::out_of_range&) {
    throw usage_error("--task: unknown task '" + name + "' (attnbench list shows the tasks)");
  }
}

int cmd_stats(const std::string& config_file, const std::vector<std::string>& sets, const stats_options& o,
              plugin_registry& registry) {
  const loaded_run run = load_everything(config_file, sets, registry);
  const run_config& config = run.config;
  std::string name;
  const auto task = find_task(config, o.task, name);
  stats_request req;
  req.context_length = o.length ? o.length : config.context_lengths.front();
  req.samples = o.samples;
  req.steps = o.steps;
  req.seed = config.seeds.front();
  req.dtype = config.dtype;
  req.block_size = config.block_size;
  if (req.context_length < task->min_context_length())
    throw usage_error("--length: " + name + " needs at least " + std::to_string(task->min_context_length()) +
                      " tokens, got " + std::to_string(req.context_length));
  const synthetic_model model(run.profile, config.model_seed);
  nlohmann::ordered_json out = head_statistics(model, *task, req);
  out["profile"] = run.profile.name;
  out["task"] = name;
  std::printf("head statistics: profile %s, task %s, %u tokens, %u samples x up to %u decode steps\n",
              run.profile.name.c_str(), name.c_str(), req.context_length, req.samples, req.steps);
  std::printf("%-12s %5s %16s %12s %14s %12s %10s\n", "role", "heads", "first-token mass", "tokens 90%",
              "(min - max)", "query cosine", "logit sd");
  for (const auto& [role, r] : out["roles"].items())
    std::printf("%-12s %5u %16.3f %12.1f %6.0f - %-7.0f %12.3f %10.2f\n", role.c_str(), r["heads"].get<unsigned>(),
                r["first_token_mass"].get<double>(), r["tokens_for_90pct"].get<double>(),
                r["tokens_for_90pct_min"].get<double>(), r["tokens_for_90pct_max"].get<double>(),
                r["query_cosine"].get<double>(), r["logit_sd"].get<double>());
  const auto& spread = out["logit_sd_spread"];
  std::printf("logit sd over heads: %.2f to %.2f (x%.1f)\n", spread["min"].get<double>(), spread["max"].get<double>(),
              spread["max_over_min"].get<double>());
  if (!o.json_out.empty()) {
    std::ofstream f(o.json_out);
    f << out.dump(2) << "\n";
    if (!f) throw output_error("cannot write " + o.json_out);
    std::printf("per-head figures: %s\n", o.json_out.c_str());
  }
  return exit_ok;
}

struct dump_options {
  std::string task, out;
  std::uint32_t length = 0, sample = 0;
};

// Plugins are not loaded: the dump needs only the model, the task and the cache settings.
int cmd_dump_kv(const std::string& config_file, const std::vector<std::string>& sets, const dump_options& o) {
  const run_config config = load_config(config_file, sets);
  const model_profile profile = load_profile(resolve_profile_path(config));
  std::string name;
  const auto task = find_task(config, o.task, name);
  dump_request req;
  req.context_length = o.length ? o.length : config.context_lengths.front();
  if (req.context_length < task->min_context_length())
    throw usage_error("--length: " + name + " needs at least " + std::to_string(task->min_context_length()) +
                      " tokens, got " + std::to_string(req.context_length));
  req.sample_seed = hash_combine(config.seeds.front(), o.sample);
  req.dtype = config.dtype;
  req.block_size = config.block_size;
  req.task_name = name;
  const synthetic_model model(profile, config.model_seed);
  const auto meta = dump_kv(model, *task, req, o.out);
  std::printf("dump-kv: %s, task %s, %llu tokens x %u layers x %u KV heads x %u (%s) -> %s\n", profile.name.c_str(),
              name.c_str(), static_cast<unsigned long long>(meta["n_tokens"].get<std::uint64_t>()), profile.n_layers,
              profile.n_kv_heads, profile.head_dim, std::string(kernels::dtype_name(config.dtype)).c_str(),
              o.out.c_str());
  return exit_ok;
}

struct calibrate_options {
  std::string task, out;
  std::uint32_t length = 0;
  calibrate_request req;
};

// Plugins are not loaded: the config may already name tca with the file this writes.
int cmd_calibrate(const std::string& config_file, const std::vector<std::string>& sets, calibrate_options o) {
  const run_config config = load_config(config_file, sets);
  const model_profile profile = load_profile(resolve_profile_path(config));
  std::string name;
  const auto task = find_task(config, o.task, name);
  o.req.context_length = o.length ? o.length : config.context_lengths.back();
  if (o.req.context_length < task->min_context_length())
    throw usage_error("--length: " + name + " needs at least " + std::to_string(task->min_context_length()) +
                      " tokens, got " + std::to_string(o.req.context_length));
  o.req.seed = config.seeds.front();
  o.req.dtype = config.dtype;
  o.req.block_size = config.block_size;
  const synthetic_model model(profile, config.model_seed);
  std::printf("calibrating tca: profile %s, task %s, %u tokens, %u samples, %u profiles, tau %.2f\n",
              profile.name.c_str(), name.c_str(), o.req.context_length, o.req.samples, o.req.profiles, o.req.tau);
  const nlohmann::ordered_json out = calibrate_tca(model, *task, o.req);
  std::ofstream f(o.out);
  f << out.dump(2) << "\n";
  f.close();
  if (!f) throw output_error("cannot write " + o.out);
  double kept = 0;
  std::size_t heads = 0;
  for (const auto& row : out["kept_share"])
    for (const auto& x : row) kept += x.get<double>(), ++heads;
  std::printf("mean kept share %.3f over %zu KV heads; %llu heads below tau with the widest profile\nbudgets: %s\n",
              heads ? kept / heads : 0.0, heads, static_cast<unsigned long long>(out["heads_below_tau"].get<std::uint64_t>()),
              o.out.c_str());
  return exit_ok;
}

int cmd_list(plugin_registry& registry, bool as_json) {
  json out = {{"plugins", json::array()}, {"broken", json::array()}, {"tasks", json::array()},
              {"search_path", json::array()}};
  for (const auto& p : registry.search_path()) out["search_path"].push_back(p.string());
  for (const auto& e : registry.scan()) {
    if (e.library) {
      json info = e.library->info_json();
      info["description"] = e.library->descriptor().description ? e.library->descriptor().description : "";
      out["plugins"].push_back(info);
    } else {
      out["broken"].push_back({{"file", e.file.string()}, {"error", e.error}});
    }
  }
  out["plugins"].push_back({{"name", "none"}, {"kind", "terminator"}, {"version", ATTNBENCH_VERSION},
                            {"abi_version", ATTNBENCH_ABI_VERSION}, {"file", "(built in)"},
                            {"description", "no terminator: every planned block is visited"}});
  for (const auto& t : tasks::task_catalogue())
    out["tasks"].push_back({{"name", t.name}, {"description", t.description}});
  out["profiles"] = json::array();
  std::set<std::string> seen_profiles;
  for (const auto& dir : profile_dirs()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (!seen_profiles.insert(f.stem().string()).second) continue;
      try {
        const model_profile p = load_profile(f);
        out["profiles"].push_back({{"name", f.stem().string()}, {"n_layers", p.n_layers},
                                   {"n_query_heads", p.n_query_heads}, {"n_kv_heads", p.n_kv_heads},
                                   {"head_dim", p.head_dim}, {"file", f.string()}});
      } catch (const config_error& e) {
        out["broken"].push_back({{"file", f.string()}, {"error", e.what()}});
      }
    }
  }
  if (as_json) {
    std::cout << out.dump(2) << "\n";
    return exit_ok;
  }
  std::printf("plugins:\n  %-14s %-11s %-9s %-4s %s\n", "name", "kind", "version", "abi", "file");
  for (const auto& p : out["plugins"])
    std::printf("  %-14s %-11s %-9s %-4u %s\n", p["name"].get<std::string>().c_str(),
                p["kind"].get<std::string>().c_str(), p["version"].get<std::string>().c_str(),
                p["abi_version"].get<unsigned>(), p["file"].get<std::string>().c_str());
  for (const auto& b : out["broken"])
    std::printf("  not loaded: %s\n", b["error"].get<std::string>().c_str());
  std::printf("tasks:\n");
  for (const auto& t : out["tasks"])
    std::printf("  %-16s %s\n", t["name"].get<std::string>().c_str(), t["description"].get<std::string>().c_str());
  std::printf("model profiles:\n");
  for (const auto& p : out["profiles"])
    std::printf("  %-14s %u layers, %u query heads, %u KV heads, head dim %u  %s\n",
                p["name"].get<std::string>().c_str(), p["n_layers"].get<unsigned>(), p["n_query_heads"].get<unsigned>(),
                p["n_kv_heads"].get<unsigned>(), p["head_dim"].get<unsigned>(), p["file"].get<std::string>().c_str());
  std::printf("kernel SIMD targets (best first):");
  for (const auto& t : kernels::available_targets()) std::printf(" %s", t.c_str());
  std::printf("; using %s\n", kernels::current_target().c_str());
  std::printf("plugin search path:\n");
  for (const auto& p : out["search_path"]) std::printf("  %s\n", p.get<std::string>().c_str());
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("attnbench");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^[%l]%$ %v");

  CLI::App app{"attnbench: accuracy, KV skipped and decode speed of long-context attention policies"};
  app.footer(kExitCodes);
  app.set_version_flag("--version", ATTNBENCH_VERSION);
  app.require_subcommand(1);
  int verbosity = 0;
  bool quiet = false;
  std::vector<std::string> plugin_paths;
  app.add_flag("-v,--verbose", verbosity, "More log output on stderr (-vv for trace)");
  app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");
  app.add_option("--plugin-path", plugin_paths,
                 "Folder to search for attnbench-plugin-*.so before ATTNBENCH_PLUGIN_PATH and the executable's folder")
      ->type_name("DIR");

  std::string config_file, out_dir;
  std::vector<std::string> sets;
  bool resume = false, list_json = false;

  auto* run = app.add_subcommand("run", "Run every cell of a config and write a results folder");
  run->add_option("config", config_file, "Config file (JSON); see docs/config.md")->required()->type_name("CONFIG");
  run->add_option("--set", sets, "Override a config value: a dotted path and a JSON value, e.g. --set samples=20")
      ->type_name("PATH=VALUE");
  run->add_option("--out", out_dir, "Results folder (default: results/<name>-<timestamp>)")->type_name("DIR");
  run->add_flag("--resume", resume, "Continue the run in --out DIR, skipping its finished cells");
  std::string shard;
  run->add_option("--shard", shard,
                  "Run every N-th cell of the grid starting at I (0-based); join the shards' folders with merge")
      ->type_name("I/N");
  run->footer(kExitCodes);

  auto* validate = app.add_subcommand("validate", "Check a config, its profile and its plugins without running");
  validate->add_option("config", config_file, "Config file (JSON)")->required()->type_name("CONFIG");
  validate->add_option("--set", sets, "Override a config value, as for run")->type_name("PATH=VALUE");
  validate->footer(kExitCodes);

  // The config positional and --set of the subcommands that take a task and a length from it.
  auto model_config_options = [&](CLI::App* sub) {
    sub->add_option("config", config_file, "Config file (JSON): profile, dtype, seed, and the default task and length")
        ->required()
        ->type_name("CONFIG");
    sub->add_option("--set", sets, "Override a config value, as for run")->type_name("PATH=VALUE");
  };

  stats_options stats_opts;
  auto* stats = app.add_subcommand(
      "stats", "Measure the model's heads (first-token mass, tokens for 90% of the mass, query cosine, logit spread)");
  model_config_options(stats);
  stats->add_option("--task", stats_opts.task, "Task (default: the config's first)");
  stats->add_option("--length", stats_opts.length, "Context length in tokens (default: the config's first)");
  stats->add_option("--samples", stats_opts.samples, "Samples (default 2)")->check(CLI::Range(1, 1000));
  stats->add_option("--steps", stats_opts.steps, "Decode steps measured per sample (default 8)")->check(CLI::Range(1, 4096));
  stats->add_option("--json", stats_opts.json_out, "Also write every head's figures to this file")->type_name("FILE");
  stats->footer(kExitCodes);

  dump_options dump_opts;
  auto* dump = app.add_subcommand(
      "dump-kv", "Write one sample's K/V cache and decode queries as raw arrays with a meta.json (for GPU kernels)");
  model_config_options(dump);
  dump->add_option("--out", dump_opts.out, "Folder to write meta.json, k.bin, v.bin and q.bin into")
      ->required()
      ->type_name("DIR");
  dump->add_option("--task", dump_opts.task, "Task (default: the config's first)");
  dump->add_option("--length", dump_opts.length, "Context length in tokens (default: the config's first)");
  dump->add_option("--sample", dump_opts.sample, "Sample index (default 0)");
  dump->footer(kExitCodes);

  calibrate_options cal;
  auto* calibrate = app.add_subcommand(
      "calibrate", "Write per-head budgets for the tca policy from a dense pass over calibration samples");
  model_config_options(calibrate);
  calibrate->add_option("--out", cal.out, "Budgets file to write (JSON)")->required()->type_name("FILE");
  calibrate->add_option("--task", cal.task, "Calibration task (default: the config's first)");
  calibrate->add_option("--length", cal.length, "Context length in tokens (default: the config's longest)");
  calibrate->add_option("--samples", cal.req.samples, "Calibration samples (default 1)")->check(CLI::Range(1, 1000));
  calibrate->add_option("--tau", cal.req.tau, "Attention mass each head's profile must cover (default 0.9)")
      ->check(CLI::Range(0.0, 1.0));
  calibrate->add_option("--profiles", cal.req.profiles, "Candidate profiles (default 14)")->check(CLI::Range(1, 1000));
  calibrate->add_option("--mu", cal.req.mu, "Log-normal mu of profile widths, in blocks (default 1.0)");
  calibrate->add_option("--sigma", cal.req.sigma, "Log-normal sigma of profile widths (default 1.0)")
      ->check(CLI::Range(0.0, 10.0));
  calibrate->add_option("--block", cal.req.block, "Tokens per selection block (default 128)")->check(CLI::Range(1, 1 << 20));
  calibrate->add_option("--alpha", cal.req.alpha, "Block score weight of one minus concentration (default 0.5)")
      ->check(CLI::Range(0.0, 1.0));
  calibrate->add_option("--window", cal.req.window, "Last tokens always kept (default 4096)");
  calibrate->footer(kExitCodes);

  compare_options cmp;
  std::string cmp_base, cmp_new;
  auto* compare = app.add_subcommand(
      "compare", "Compare two run folders or two Google Benchmark JSON files; non-zero exit on a regression");
  compare->add_option("base", cmp_base, "Baseline run folder or benchmark JSON file")->required()->type_name("BASE");
  compare->add_option("new", cmp_new, "Run folder or benchmark JSON file to check")->required()->type_name("NEW");
  compare->add_option("--threshold", cmp.threshold_pct,
                      "Percent by which a ratio metric may get worse before it fails (default 5)")
      ->check(CLI::Range(0.0, 1000.0))
      ->type_name("PCT");
  compare->add_option("--accuracy-drop", cmp.accuracy_points, "Accuracy points a cell may lose before it fails (default 1)")
      ->check(CLI::Range(0.0, 100.0))
      ->type_name("POINTS");
  compare->add_option("--noise-sigmas", cmp.noise_sigmas,
                      "A worse metric fails only when the change is this many standard errors out (default 3)")
      ->check(CLI::Range(0.0, 100.0));
  compare->add_option("--metric", cmp.metrics,
                      "Metric to compare (repeatable). Run folders: accuracy, speedup_vs_dense, bandwidth_ratio "
                      "(default), decode_tokens_per_s; benchmarks: probe_ratio, same_memory_ratio, "
                      "fraction_of_score_pass (default), kv_bytes_per_s, probe_bytes_per_s, real_time, cpu_time, ns_per_token_head");
  compare->footer(kExitCodes);

  std::vector<std::string> report_in;
  std::string report_out;
  bool no_plots = false;
  auto* report = app.add_subcommand("report", "Write tables (markdown, CSV), plots and report.md for run folders");
  report->add_option("folders", report_in, "Results folders; several combine when their cells do not overlap")
      ->required()
      ->type_name("RUN_DIR");
  report->add_option("--out", report_out, "Report folder (default: RUN_DIR/report; required for several folders)")
      ->type_name("DIR");
  report->add_flag("--no-plots", no_plots, "Tables only (plots need python3-matplotlib, installed by scripts/setup.sh)");
  report->footer(kExitCodes);

  std::vector<std::string> merge_in;
  std::string merge_out;
  auto* merge = app.add_subcommand("merge", "Join the results folders of one config's shards into one run folder");
  merge->add_option("folders", merge_in, "Results folders of `run --shard I/N` (or any runs of one config)")
      ->required()
      ->type_name("FOLDER");
  merge->add_option("--out", merge_out, "Merged results folder to create")->required()->type_name("DIR");
  merge->footer(kExitCodes);

  auto* list = app.add_subcommand("list", "List the plugins found, the tasks and the model profiles");
  list->add_flag("--json", list_json, "Print JSON instead of a table");
  list->footer(kExitCodes);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? exit_ok : exit_usage;
  }
  spdlog::set_level(quiet ? spdlog::level::warn
                          : verbosity >= 2 ? spdlog::level::trace
                          : verbosity == 1 ? spdlog::level::debug
                                           : spdlog::level::info);
  std::signal(SIGINT, on_sigint);

  try {
    plugin_registry registry(plugin_registry::default_search_path(plugin_paths));
    if (*run) return cmd_run(config_file, sets, out_dir, resume, shard, registry);
    if (*report) {
      report_options ro;
      ro.out = report_out;
      if (!no_plots) ro.plots_script = default_plots_script();
      const report_result r = write_report(std::vector<fs::path>(report_in.begin(), report_in.end()), ro);
      if (!r.plotted && !no_plots) spdlog::warn("{}", r.plot_message);
      std::printf("report: %s\n", (r.dir / "report.md").string().c_str());
      for (const auto& f : r.files) std::printf("  %s\n", f.c_str());
      return exit_ok;
    }
    if (*merge) {
      std::vector<fs::path> folders(merge_in.begin(), merge_in.end());
      const merge_report r = merge_runs(folders, merge_out);
      std::ifstream in(fs::path(merge_out) / "results.json");
      print_tables(nlohmann::ordered_json::parse(in));
      std::printf("merged %zu of the grid's %zu cells from %zu folders into %s\n", r.cells, r.grid_cells,
                  folders.size(), merge_out.c_str());
      if (r.cells < r.grid_cells) spdlog::warn("{} cells of the grid are in none of the folders", r.grid_cells - r.cells);
      return exit_ok;
    }
    if (*validate) return cmd_validate(config_file, sets, registry);
    if (*list) return cmd_list(registry, list_json);
    if (*stats) return cmd_stats(config_file, sets, stats_opts, registry);
    if (*calibrate) return cmd_calibrate(config_file, sets, cal);
    if (*dump) return cmd_dump_kv(config_file, sets, dump_opts);
    if (*compare) {
      const auto rows = compare_sources(cmp_base, cmp_new, cmp);
      std::fputs(compare_markdown(rows, cmp).c_str(), stdout);
      const bool regressed =
          std::any_of(rows.begin(), rows.end(), [](const compare_row& r) { return r.verdict == "REGRESSION"; });
      return regressed ? exit_regression : exit_ok;
    }
  } catch (const harness_error& e) {
    spdlog::error("{}", e.what());
    return e.code;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return exit_failure;
  }
  return exit_failure;
}
