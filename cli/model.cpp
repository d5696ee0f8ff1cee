// stats, dump-kv and calibrate: what is measured on the model itself.
#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/host/files.hpp>
#include <attnbench/model/calibrate.hpp>
#include <attnbench/model/dump.hpp>
#include <attnbench/model/head-stats.hpp>
#include <attnbench/model/realism.hpp>

#include <attnbench/kernels/dtype.hpp>

#include <cstdio>
#include <fstream>

namespace attnbench::cli {

namespace {

// --task and --length, as stats, dump-kv and calibrate take them.
struct sample_options {
  config_options config;
  std::string task;
  std::uint32_t length = 0;
};

void add_sample_options(CLI::App* sub, sample_options& o, const char* length_default) {
  add_config_options(sub, o.config, "Config file (JSON): profile, dtype, seed, and the default task and length");
  sub->add_option("--task", o.task, "Task (default: the config's first)");
  sub->add_option("--length", o.length, std::string("Context length in tokens (default: the config's ") + length_default + ")");
}

// Written atomically, never over a results folder's files.
void write_json_file(const std::string& file, const std::string& option, const nlohmann::ordered_json& j) {
  refuse_results_folder_file(file, option);
  write_atomically(file, j.dump(2) + "\n");
}

struct stats_options {
  sample_options sample;
  std::string json_out;
  std::uint32_t samples = 2, steps = 8;
};

int stats_command(const stats_options& o, const global_options& g) {
  plugin_registry registry(plugin_registry::default_search_path(g.plugin_paths));
  const loaded_run run = load_everything(o.sample.config, registry);
  std::string name;
  const auto task = find_task(run.config, o.sample.task, name);
  stats_request req;
  req.context_length = context_length(*task, name, o.sample.length, run.config.context_lengths.front());
  req.samples = o.samples;
  req.steps = o.steps;
  req.seed = run.config.seeds.front();
  req.dtype = run.config.dtype;
  req.block_size = run.config.block_size;
  nlohmann::ordered_json out = head_statistics(*run.model, *task, req);
  const std::string& profile = run.model->shape().name;
  out["profile"] = profile;
  out["task"] = name;
  std::printf("head statistics: profile %s, task %s, %u tokens, %u samples x up to %u decode steps\n", profile.c_str(),
              name.c_str(), req.context_length, req.samples, req.steps);
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
    write_json_file(o.json_out, "--json", out);
    std::printf("per-head figures: %s\n", o.json_out.c_str());
  }
  return exit_ok;
}

struct dump_options {
  sample_options sample;
  std::string out;
  std::uint32_t index = 0;
};

// Plugins are not loaded: the dump needs only the model, the task and the cache settings.
int dump_command(const dump_options& o) {
  const run_config config = load_run_config(o.sample.config);
  const auto m = load_model(config);
  std::string name;
  const auto task = find_task(config, o.sample.task, name);
  dump_request req;
  req.context_length = context_length(*task, name, o.sample.length, config.context_lengths.front());
  req.seed = config.seeds.front();
  if (o.index >= config.samples)
    throw usage_error("--sample " + std::to_string(o.index) + ": the config's runs score samples 0 .. " +
                      std::to_string(config.samples - 1) + " (samples " + std::to_string(config.samples) + ")");
  refuse_results_folder(o.out, "--out");
  req.sample = o.index;
  req.dtype = config.dtype;
  req.block_size = config.block_size;
  req.task_name = name;
  const auto meta = dump_kv(*m, *task, req, o.out);
  const model_shape& p = m->shape();
  std::printf("dump-kv: %s, task %s, sample %u, %llu tokens x %u layers x %u KV heads x %u (%s) -> %s\n",
              p.name.c_str(), name.c_str(), o.index, static_cast<unsigned long long>(meta["n_tokens"].get<std::uint64_t>()),
              p.n_layers, p.n_kv_heads, p.head_dim, std::string(kernels::dtype_name(config.dtype)).c_str(), o.out.c_str());
  return exit_ok;
}

struct calibrate_options {
  sample_options sample;
  std::string out;
  calibrate_request req;
};

// Plugins are not loaded: the config may already name tca with the file this writes.
int calibrate_command(calibrate_options o) {
  const run_config config = load_run_config(o.sample.config);
  const auto m = load_model(config);
  std::string name;
  const auto task = find_task(config, o.sample.task, name);
  o.req.context_length = context_length(*task, name, o.sample.length, config.context_lengths.back());
  o.req.seed = config.seeds.front();
  o.req.dtype = config.dtype;
  o.req.block_size = config.block_size;
  std::printf("calibrating tca: profile %s, task %s, %u tokens, %u samples, %u profiles, tau %.2f\n",
              m->shape().name.c_str(), name.c_str(), o.req.context_length, o.req.samples, o.req.profiles, o.req.tau);
  const nlohmann::ordered_json out = calibrate_tca(*m, *task, o.req);
  write_json_file(o.out, "--out", out);
  double kept = 0;
  std::size_t heads = 0;
  for (const auto& row : out["kept_share"])
    for (const auto& x : row) kept += x.get<double>(), ++heads;
  std::printf("mean kept share %.3f over %zu KV heads; %llu heads below tau with the widest profile\nbudgets: %s\n",
              heads ? kept / heads : 0.0, heads, static_cast<unsigned long long>(out["heads_below_tau"].get<std::uint64_t>()),
              o.out.c_str());
  return exit_ok;
}

struct realism_options {
  config_options config;
  std::string task = "niah_single_2";
  std::vector<std::uint32_t> lengths;
  std::string json_out, markdown_out;
  realism_request req;
  bool no_oracle = false;
};

// Plugins are not loaded: realism measures the model alone, with dense attention.
int realism_command(realism_options o) {
  const run_config config = load_run_config(o.config);
  const auto m = load_model(config);
  std::string name;
  const auto task = find_task(config, o.task, name);
  if (o.lengths.empty()) o.lengths.push_back(16384);
  o.req.context_lengths.clear();
  for (const std::uint32_t l : o.lengths) o.req.context_lengths.push_back(context_length(*task, name, l, l));
  o.req.seed = config.seeds.front();
  o.req.dtype = config.dtype;
  o.req.block_size = config.block_size;
  o.req.oracle = !o.no_oracle;
  if (!o.json_out.empty()) refuse_results_folder_file(o.json_out, "--json");
  if (!o.markdown_out.empty()) refuse_results_folder_file(o.markdown_out, "--markdown");
  std::printf("realism: profile %s, task %s, %u samples x up to %u measured decode steps per length\n\n",
              m->shape().name.c_str(), name.c_str(), o.req.samples, o.req.max_steps);
  const nlohmann::ordered_json out = measure_realism(*m, *task, name, o.req);
  const std::string table = realism_markdown(out);
  std::fputs(table.c_str(), stdout);
  if (!o.json_out.empty()) write_json_file(o.json_out, "--json", out);
  if (!o.markdown_out.empty()) write_atomically(o.markdown_out, table);
  return exit_ok;
}

void add_realism_command(CLI::App& app, std::vector<registered_command>& commands) {
  auto o = std::make_shared<realism_options>();
  auto* sub = app.add_subcommand(
      "realism", "Set the model's attention statistics beside those published for real models (docs/model.md)");
  add_config_options(sub, o->config, "Config file (JSON): profile, dtype and seed");
  sub->add_option("--length", o->lengths, "Context length in tokens; repeat for several (default 16384)");
  sub->add_option("--task", o->task, "Task whose samples are decoded (default niah_single_2: a needle, for the "
                                     "retrieval score)");
  sub->add_option("--samples", o->req.samples, "Samples per length, the run's samples 0 .. N-1 (default 2)")
      ->check(CLI::Range(1, 1000));
  sub->add_option("--steps", o->req.max_steps, "Decode steps measured per sample at most (default 16)")
      ->check(CLI::Range(1, 4096));
  sub->add_flag("--no-oracle", o->no_oracle, "Skip the top-2% oracle decode (top2pct_quality)");
  sub->add_option("--json", o->json_out, "Also write every statistic and every head's figures here")->type_name("FILE");
  sub->add_option("--markdown", o->markdown_out, "Also write the table here")->type_name("FILE");
  sub->footer(kExitCodes);
  commands.push_back({sub, [o](const global_options&) { return realism_command(*o); }});
}

void add_calibrate_command(CLI::App& app, std::vector<registered_command>& commands) {
  auto o = std::make_shared<calibrate_options>();
  auto* sub = app.add_subcommand(
      "calibrate", "Write per-head budgets for the tca policy from a dense pass over calibration samples");
  add_sample_options(sub, o->sample, "longest");
  sub->add_option("--out", o->out, "Budgets file to write (JSON)")->required()->type_name("FILE");
  sub->add_option("--samples", o->req.samples, "Calibration samples (default 1)")->check(CLI::Range(1, 1000));
  sub->add_option("--tau", o->req.tau, "Attention mass each head's profile must cover (default 0.9)")
      ->check(finite_in(0.0, 1.0));
  sub->add_option("--profiles", o->req.profiles, "Candidate profiles (default 14)")->check(CLI::Range(1, 1000));
  sub->add_option("--mu", o->req.mu, "Log-normal mu of profile widths, in blocks (default 1.0)")
      ->check(finite_in(-100.0, 100.0));
  sub->add_option("--sigma", o->req.sigma, "Log-normal sigma of profile widths (default 1.0)")
      ->check(finite_in(0.0, 10.0));
  sub->add_option("--block", o->req.block, "Tokens per selection block (default 128)")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--alpha", o->req.alpha, "Block score weight of one minus concentration (default 0.5)")
      ->check(finite_in(0.0, 1.0));
  sub->add_option("--window", o->req.window, "Last tokens always kept (default 4096)");
  sub->footer(kExitCodes);
  commands.push_back({sub, [o](const global_options&) { return calibrate_command(*o); }});
}

}  // namespace

void add_model_commands(CLI::App& app, std::vector<registered_command>& commands) {
  auto so = std::make_shared<stats_options>();
  auto* stats = app.add_subcommand(
      "stats", "Measure the model's heads (first-token mass, tokens for 90% of the mass, query cosine, logit spread)");
  add_sample_options(stats, so->sample, "first");
  stats->add_option("--samples", so->samples, "Samples, the run's samples 0 .. N-1 (default 2)")->check(CLI::Range(1, 1000));
  stats->add_option("--steps", so->steps, "Decode steps measured per sample (default 8)")->check(CLI::Range(1, 4096));
  stats->add_option("--json", so->json_out, "Also write every head's figures to this file")->type_name("FILE");
  stats->footer(kExitCodes);
  commands.push_back({stats, [so](const global_options& g) { return stats_command(*so, g); }});

  auto dumpo = std::make_shared<dump_options>();
  auto* dump = app.add_subcommand(
      "dump-kv", "Write one sample's K/V cache and decode queries as raw arrays with a meta.json (for GPU kernels)");
  add_sample_options(dump, dumpo->sample, "first");
  dump->add_option("--out", dumpo->out, "Folder to write meta.json, k.bin, v.bin and q.bin into")
      ->required()
      ->type_name("DIR");
  dump->add_option("--sample", dumpo->index, "Sample index: the sample `run` scores as this index (default 0)");
  dump->footer(kExitCodes);
  commands.push_back({dump, [dumpo](const global_options&) { return dump_command(*dumpo); }});

  add_calibrate_command(app, commands);
  add_realism_command(app, commands);
}

}  // namespace attnbench::cli
