// `attnbench sweep CONFIG --slurm --shards N --out DIR`: a config's grid as a Slurm job
// array of cost-balanced shards (each `run --shard I/N --out DIR/shard-I`, resumed when
// its folder exists) and a merge job that runs after the array succeeds. Submitting the
// same sweep again submits only the shards that are not complete, then the merge.
// docs/scale.md is the guide.
#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/host/files.hpp>
#include <attnbench/host/json.hpp>
#include <attnbench/report/results.hpp>
#include <attnbench/run/grid.hpp>
#include <attnbench/run/memory.hpp>
#include <attnbench/run/shards.hpp>

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace attnbench::cli {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

struct sweep_options {
  config_options config;
  bool slurm = false, dry_run = false;
  std::size_t shards = 0;
  std::string out;
  std::vector<std::string> sbatch_args, run_args;
};

// A word for a POSIX shell, in single quotes.
std::string quoted(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + quoted(w);
  return out;
}

struct process_result {
  int code = -1;
  std::string output;  // stdout and stderr
};

// Runs argv (found on PATH) and collects what it prints; code 127 when it could not start.
process_result run_process(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  process_result r;
  std::array<char, 4096> buf;
  for (ssize_t n; (n = read(fds[0], buf.data(), buf.size())) > 0;) r.output.append(buf.data(), static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid) r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool on_path(const std::string& tool) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (std::size_t start = 0; start <= dirs.size();) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const fs::path dir = dirs.substr(start, end - start);
    if (!dir.empty() && access((dir / tool).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// Indices as Slurm's --array takes them: "0-3,5,7-8".
std::string index_ranges(const std::vector<std::size_t>& indices) {
  std::string out;
  for (std::size_t i = 0; i < indices.size();) {
    std::size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(indices[i]) + (j > i ? "-" + std::to_string(indices[j]) : "");
    i = j + 1;
  }
  return out;
}

std::string self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "attnbench" : p.string();
}

// What a shard folder holds: nothing yet, all its cells, or part of them.
enum class shard_state { absent, partial, complete };

// `expected` is the number of cells the assignment gives the shard now: a folder written
// under other estimates (another attnbench) holds other cells.
shard_state read_shard(const fs::path& dir, const run_config& config, std::size_t index, std::size_t count,
                       std::size_t expected) {
  if (!fs::exists(dir / "results.json")) return shard_state::absent;
  const ojson doc = read_results_file(dir);
  if (!same_json(doc["meta"]["config"], config.resolved))
    throw output_error(dir.string() + " holds a shard of another config (or other --set options) than " +
                       config.file.string() + "; use another --out for this sweep");
  // One shard is the whole grid: run writes no meta.shard for it.
  const ojson shard = count == 1 && !doc["meta"].contains("shard")
                          ? ojson{{"index", 0}, {"count", 1}, {"assignment", kShardAssignment}, {"cells", expected}}
                          : doc["meta"].value("shard", ojson::object());
  if (shard.value("index", count) != index || shard.value("count", std::size_t{0}) != count ||
      shard.value("assignment", "") != kShardAssignment || shard.value("cells", std::size_t{0}) != expected)
    throw output_error(dir.string() + " holds shard " + shard.dump() + ", not shard " + std::to_string(index) + " of " +
                       std::to_string(count) + " with " + std::to_string(expected) + " cells (" + kShardAssignment +
                       "); use another --out for this sweep");
  const bool done = doc["meta"].value("status", "") == "complete" && doc["cells"].size() == expected &&
                    doc.value("failures", ojson::array()).empty();
  return done ? shard_state::complete : shard_state::partial;
}

std::string array_script(const sweep_options& o, const fs::path& out, const std::string& config,
                         const std::vector<std::string>& globals) {
  std::vector<std::string> sets;
  for (const auto& s : o.config.sets) sets.insert(sets.end(), {"--set", s});
  return "#!/bin/bash\n"
         "# One shard of the sweep: run --shard I/N into shard-I, continued (--resume) when it exists.\n"
         "#SBATCH --job-name=attnbench-shard\n"
         "set -euo pipefail\n"
         "i=$SLURM_ARRAY_TASK_ID\n"
         "folder=" + quoted((out / "shard-").string()) + "$i\n"
         "resume=\n"
         "if [ -e \"$folder/results.json\" ]; then resume=--resume; fi\n"
         "exec " + join({self_exe()}) + (globals.empty() ? "" : " " + join(globals)) + " run " + quoted(config) +
         " --shard \"$i/" + std::to_string(o.shards) + "\" --out \"$folder\" $resume" +
         (sets.empty() ? "" : " " + join(sets)) + (o.run_args.empty() ? "" : " " + join(o.run_args)) + "\n";
}

std::string merge_script(const sweep_options& o, const fs::path& out) {
  std::vector<std::string> words = {self_exe(), "merge"};
  for (std::size_t i = 0; i < o.shards; ++i) words.push_back((out / ("shard-" + std::to_string(i))).string());
  words.insert(words.end(), {"--out", (out / "merged").string()});
  return "#!/bin/bash\n"
         "# The sweep's merge: every shard's folder into merged/, after the array succeeded.\n"
         "#SBATCH --job-name=attnbench-merge\n"
         "set -euo pipefail\n"
         "exec " + join(words) + "\n";
}

// Submits a script with sbatch --parsable; returns the job id.
std::string submit(const std::vector<std::string>& options, const sweep_options& o, const fs::path& script) {
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.insert(argv.end(), o.sbatch_args.begin(), o.sbatch_args.end());
  argv.push_back(script.string());
  const process_result r = run_process(argv);
  std::string id;  // --parsable prints "ID" or "ID;CLUSTER" on a line of its own, warnings on others
  for (const auto& line : lines_of(r.output))
    if (const std::string first = line.substr(0, line.find(';'));
        !first.empty() && first.find_first_not_of("0123456789") == std::string::npos)
      id = first;
  if (r.code != 0 || id.empty())
    throw harness_error(exit_incomplete, "sbatch did not accept " + script.string() + " (exit " + std::to_string(r.code) +
                                             "): " + r.output + "command: " + join(argv));
  return id;
}

// Jobs of an earlier submission of this sweep still queued or running.
std::vector<std::string> active_jobs(const ojson& record) {
  std::vector<std::string> ids;
  for (const auto& s : record.value("submissions", ojson::array()))
    for (const char* key : {"array_job", "merge_job"})
      if (s.contains(key) && !s[key].get<std::string>().empty()) ids.push_back(s[key]);
  if (ids.empty() || !on_path("squeue")) return {};
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  const process_result r = run_process({"squeue", "-h", "-o", "%i", "-j", list});
  if (r.code != 0) return {};  // ids Slurm no longer knows
  std::vector<std::string> active;
  for (const auto& line : lines_of(r.output))
    if (!line.empty()) active.push_back(line);
  return active;
}

std::string duration_text(double s) {
  char buf[64];
  if (s < 10) std::snprintf(buf, sizeof buf, "%.1f s", s);
  else if (s < 120) std::snprintf(buf, sizeof buf, "%.0f s", s);
  else if (s < 7200) std::snprintf(buf, sizeof buf, "%.0f min", s / 60);
  else std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  return buf;
}

// The plan: each shard's cells and estimated time (reference machine, docs/scale.md),
// their balance, and the memory a task needs.
void print_sweep_plan(const run_config& c, const model& m, const std::vector<double>& costs,
                      const std::vector<std::size_t>& shard_of, const std::vector<bool>& pending) {
  const std::size_t shards = pending.size();
  std::vector<double> seconds(shards, 0.0);
  std::vector<std::size_t> cells(shards, 0);
  for (std::size_t i = 0; i < costs.size(); ++i) seconds[shard_of[i]] += costs[i], ++cells[shard_of[i]];
  double total = 0;
  for (double s : seconds) total += s;
  std::printf("%s: %zu cells in %zu shards; estimated %s in all on the reference machine (%.0f s, %.1f core-hours), "
              "largest shard %s (largest/mean %.2f), longest cell %.0f s\n",
              c.file.string().c_str(), costs.size(), shards, duration_text(total).c_str(), total, 2 * total / 3600,
              duration_text(*std::max_element(seconds.begin(), seconds.end())).c_str(), shard_spread(seconds),
              costs.empty() ? 0.0 : *std::max_element(costs.begin(), costs.end()));
  for (std::size_t i = 0; i < shards && shards <= 64; ++i)
    std::printf("  shard %zu: %zu cells, about %s%s\n", i, cells[i], duration_text(seconds[i]).c_str(),
                pending[i] ? "" : " (complete)");
  std::uint32_t longest = 0;
  for (auto n : c.context_lengths) longest = std::max(longest, n);
  std::printf("memory per task: about %.1f GiB (its longest cell; e.g. --sbatch-arg=--mem=%.0fG)\n",
              double(estimate_cell_bytes(c, m.shape(), longest)) / double(1ull << 30),
              std::ceil(double(estimate_cell_bytes(c, m.shape(), longest)) / double(1ull << 30) + 1));
}

// The sweep's record (DIR/sweep.json), with the submissions of earlier calls; a sweep
// folder of another config, --set or shard count is refused.
ojson sweep_record(const fs::path& out, const sweep_options& o, const run_config& config, const std::string& config_file) {
  ojson record = {{"config_file", config_file}, {"sets", o.config.sets}, {"shards", o.shards},
                  {"config", config.resolved}, {"submissions", ojson::array()}};
  if (fs::exists(out / "sweep.json")) {
    const ojson old = read_ordered_json_file(out / "sweep.json", kConfigLimits);
    const bool readable = old.is_object() && old.contains("config") && old.value("shards", ojson()).is_number_unsigned() &&
                          old.value("submissions", ojson::array()).is_array();
    if (!readable)
      throw output_error((out / "sweep.json").string() + " is not a sweep record attnbench wrote; use another --out");
    if (old["shards"].get<std::size_t>() != o.shards ||
        !same_json(old["config"], config.resolved))
      throw output_error((out / "sweep.json").string() + " is a sweep of another config, --set or --shards; use another --out");
    for (const auto& sub : old.value("submissions", ojson::array()))
      if (sub.is_object() && sub.value("array_job", ojson("")).is_string() && sub.value("merge_job", ojson("")).is_string())
        record["submissions"].push_back(sub);
  }
  return record;
}

int sweep_command(const sweep_options& o, const global_options& g) {
  if (!o.slurm) throw usage_error("sweep: give --slurm (Slurm is the scheduler sweep submits to)");
  if (o.shards < 1) throw usage_error("sweep: --shards must be at least 1");
  const run_config config = load_run_config(o.config);
  const auto model = load_model(config);
  plugin_registry registry(plugin_registry::default_search_path(g.plugin_paths));
  (void)resolve_plugins(config, model->shape(), registry);  // a missing plugin fails here, not in every task
  const fs::path out = fs::absolute(o.out).lexically_normal();
  for (const std::string& p : {out.string(), fs::current_path().string()})
    if (p.find_first_of("%\n") != std::string::npos)
      throw usage_error("sweep: '" + p + "' has a '%' or a line break, which Slurm's --output would read as a pattern");
  const std::string config_file = fs::absolute(o.config.file).lexically_normal().string();
  std::vector<std::string> globals;
  for (const auto& p : g.plugin_paths) globals.insert(globals.end(), {"--plugin-path", fs::absolute(p).string()});

  ojson record = sweep_record(out, o, config, config_file);
  std::vector<double> costs;
  for (const auto& e : estimate_cells(config, *model, expand_grid(config))) costs.push_back(e.total());
  const auto shard_of = assign_shards(costs, o.shards);
  std::vector<bool> pending(o.shards);
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < o.shards; ++i) {
    const std::size_t expected = std::count(shard_of.begin(), shard_of.end(), i);
    pending[i] = read_shard(out / ("shard-" + std::to_string(i)), config, i, o.shards, expected) != shard_state::complete;
    if (pending[i]) todo.push_back(i);
  }
  const std::string array = index_ranges(todo);
  print_sweep_plan(config, *model, costs, shard_of, pending);
  if (fs::exists(out / "merged" / "results.json")) {
    if (read_results_file(out / "merged")["meta"].value("status", "") != "complete")
      throw output_error((out / "merged").string() + " holds an incomplete merge; move it away to merge again");
    std::printf("sweep complete: %s\n", (out / "merged").string().c_str());
    return exit_ok;
  }
  const std::string shard_text = array_script(o, out, config_file, globals), merge_text = merge_script(o, out);
  // Log and working folders go to sbatch as arguments, not #SBATCH lines, which Slurm
  // reads without a shell's quoting.
  const std::string cwd = fs::current_path().string();
  std::vector<std::string> array_options = {"--array=" + array, "--output=" + (out / "logs" / "shard-%a.out").string(),
                                            "--chdir=" + cwd};
  std::vector<std::string> merge_options = {"--kill-on-invalid-dep=yes", "--output=" + (out / "logs" / "merge.out").string(),
                                            "--chdir=" + cwd};
  std::printf("pending shards: %s\n", array.empty() ? "none (only the merge runs)" : array.c_str());
  if (o.dry_run) {
    std::printf("--dry-run: nothing written or submitted. %s would hold:\n\n== shard.sbatch ==\n%s\n== merge.sbatch ==\n%s\n",
                out.string().c_str(), shard_text.c_str(), merge_text.c_str());
    std::printf("and be submitted as:\n  sbatch --parsable %s %s\n  sbatch --parsable --dependency=afterok:ARRAY %s %s\n",
                join(array_options).c_str(), (out / "shard.sbatch").string().c_str(), join(merge_options).c_str(),
                (out / "merge.sbatch").string().c_str());
    return exit_ok;
  }
  if (!on_path("sbatch"))
    throw harness_error(exit_incomplete, "sbatch not found on PATH: sweep --slurm submits through Slurm's sbatch; run it "
                                         "where Slurm's commands are (a cluster's login node), or see --dry-run");
  if (const auto active = active_jobs(record); !active.empty())
    throw output_error("jobs of this sweep are still queued or running (" + active.front() +
                       (active.size() > 1 ? " and " + std::to_string(active.size() - 1) + " more" : std::string()) +
                       "); wait for them (squeue) or cancel them (scancel) before submitting it again");
  const folder dir = folder::open(out, folder::create::parents);
  fs::create_directories(out / "logs");
  dir.write_atomically("shard.sbatch", shard_text);
  dir.write_atomically("merge.sbatch", merge_text);
  ojson submission = {{"at", time_text(/*utc=*/true)}, {"shards", array}, {"array_job", ""}, {"merge_job", ""}};
  if (!array.empty()) {
    submission["array_job"] = submit(array_options, o, out / "shard.sbatch");
    merge_options.push_back("--dependency=afterok:" + submission["array_job"].get<std::string>());
  }
  record["submissions"].push_back(submission);
  dir.write_atomically("sweep.json", record.dump(2) + "\n");  // the array's id is kept even if the merge fails
  submission["merge_job"] = submit(merge_options, o, out / "merge.sbatch");
  record["submissions"].back() = submission;
  dir.write_atomically("sweep.json", record.dump(2) + "\n");
  const std::string a = submission["array_job"], m = submission["merge_job"];
  if (!a.empty()) std::printf("submitted shards %s as array job %s (logs in %s)\n", array.c_str(), a.c_str(), (out / "logs").c_str());
  std::printf("submitted the merge as job %s%s; results: %s\n", m.c_str(), a.empty() ? "" : ", after the array succeeds",
              (out / "merged").string().c_str());
  std::printf("progress: squeue -j %s\nafter a failure, the same sweep command again runs what is missing\n",
              (a.empty() ? m : a + "," + m).c_str());
  return exit_ok;
}

}  // namespace

void add_sweep_command(CLI::App& app, std::vector<registered_command>& commands) {
  auto so = std::make_shared<sweep_options>();
  auto* sweep = app.add_subcommand("sweep", "Run a config's grid as a Slurm job array of cost-balanced shards and a merge");
  add_config_options(sweep, so->config, "Config file (JSON); see docs/config.md");
  sweep->add_flag("--slurm", so->slurm, "Submit through Slurm's sbatch (the scheduler sweep drives; required)");
  sweep->add_option("--shards", so->shards, "Shards: the array's tasks, of about equal estimated time")
      ->required()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->type_name("N");
  sweep->add_option("--out", so->out, "Sweep folder: scripts, sweep.json, logs/, shard-I/ and merged/")
      ->required()
      ->type_name("DIR");
  sweep->add_option("--sbatch-arg", so->sbatch_args,
                    "An option for sbatch, for both jobs, e.g. --sbatch-arg=--partition=long (repeatable)")
      ->allow_extra_args(false)
      ->type_name("ARG");
  sweep->add_option("--run-arg", so->run_args,
                    "An option for each shard's `attnbench run`, e.g. --run-arg=--cell-timeout=3600 (repeatable)")
      ->allow_extra_args(false)
      ->type_name("ARG");
  sweep->add_flag("--dry-run", so->dry_run, "Print the plan, the scripts and the sbatch commands; write and submit nothing");
  sweep->footer(kExitCodes);
  commands.push_back({sweep, [so](const global_options& g) { return sweep_command(*so, g); }});
}

}  // namespace attnbench::cli
