#include <attnbench/run/cells.hpp>

#include "progress.hpp"
#include "worker.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/run/grid.hpp>
#include <attnbench/run/shards.hpp>

#include <attnbench/kernels/probe.hpp>

#include <spdlog/spdlog.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>

namespace attnbench {

using ojson = nlohmann::ordered_json;
using clock_type = std::chrono::steady_clock;

namespace {

void check_interrupt(const cell_sink& sink, bool now = false) {
  if (now || g_interrupt_requested.load())
    throw harness_error(exit_interrupted, "interrupted: " + std::to_string(sink.finished_cells()) +
                                              " finished cells are in " + sink.location() +
                                              "; continue with --resume --out " + sink.location());
}

// In the process that runs the cells: a batch cut short by Ctrl-C is not recorded.
void stop_if_interrupted() {
  if (g_interrupt_requested.load()) throw harness_error(exit_interrupted, "interrupted");
}

// The read ceiling with the cells' thread count: three rounds of every method.
void measure_probe(run_inputs& in) {
  const kernels::read_ceiling ceiling = kernels::measure_read_ceiling(in.probe_bytes, 3, static_cast<int>(in.threads));
  in.read_bandwidth_bytes_per_s = ceiling.bytes_per_s();
  in.read_ceiling_method = ceiling.best_method().name();
  spdlog::info("read ceiling {:.2f} GB/s ({}, {} threads)", in.read_bandwidth_bytes_per_s / 1e9, in.read_ceiling_method,
               in.threads);
}

// What one cell runs with: one policy instance and one cache per sequence of a batch,
// reused by the cell's batches; the terminator instance is shared (its per-traversal
// state is not).
struct cell_instances {
  std::vector<std::unique_ptr<policy_instance>> policies;
  std::vector<std::unique_ptr<kernels::kv_cache>> caches;
  std::unique_ptr<terminator_instance> terminator;
};

cell_instances make_instances(const run_inputs& in, const cell_key& key, std::uint32_t batch) {
  const run_config& c = in.config;
  const model_shape& p = in.model.shape();
  const attnbench_model_info info = model_info(c, p);
  cell_instances out;
  for (std::uint32_t i = 0; i < batch; ++i) {
    out.policies.push_back(
        std::make_unique<policy_instance>(in.plugins.policies[key.policy], c.policies[key.policy].params, info));
    out.caches.push_back(std::make_unique<kernels::kv_cache>(p.n_layers, p.n_kv_heads, p.head_dim, c.block_size, c.dtype));
  }
  if (in.plugins.terminators[key.terminator])
    out.terminator = std::make_unique<terminator_instance>(in.plugins.terminators[key.terminator],
                                                           c.terminators[key.terminator].params, info);
  return out;
}

// The cell's samples in batches; returns their rows for samples.jsonl.
std::vector<ojson> run_cell_samples(const run_inputs& in, const cell_key& key, const std::string& id,
                                    const tasks::task& task, cell_instances& inst, cell_totals& totals) {
  const run_config& c = in.config;
  const std::uint32_t length = c.context_lengths[key.length];
  const std::uint64_t seed = c.seeds[key.seed];
  const auto batch = static_cast<std::uint32_t>(inst.policies.size());
  std::vector<ojson> rows;
  for (std::uint32_t first = 0; first < c.samples; first += batch) {
    stop_if_interrupted();
    const std::uint32_t n = std::min(batch, c.samples - first);
    std::vector<tasks::sample> samples;
    for (std::uint32_t s = first; s < first + n; ++s) samples.push_back(tasks::make_indexed_sample(task, seed, length, s));
    std::vector<policy_instance*> policy_ptrs;
    std::vector<kernels::kv_cache*> cache_ptrs;
    for (std::uint32_t i = 0; i < n; ++i) {
      policy_ptrs.push_back(inst.policies[i].get());
      cache_ptrs.push_back(inst.caches[i].get());
    }
    std::vector<ojson> batch_rows = run_batch(in, task, samples, policy_ptrs, inst.terminator.get(), totals, cache_ptrs);
    stop_if_interrupted();
    for (std::uint32_t i = 0; i < n; ++i) {
      ojson line = {{"cell", id},
                    {"task", c.tasks[key.task].label},
                    {"context_length", length},
                    {"policy", c.policies[key.policy].label},
                    {"terminator", c.terminators[key.terminator].label},
                    {"seed", seed},
                    {"sample", first + i}};
      line.update(batch_rows[i]);
      rows.push_back(std::move(line));
    }
  }
  return rows;
}

}  // namespace

ojson failure_record(const run_config& c, const cell_key& key, std::size_t grid_index, const std::string& id) {
  return {{"id", id},
          {"grid_index", grid_index},
          {"task", c.tasks[key.task].name},
          {"context_length", c.context_lengths[key.length]},
          {"policy", c.policies[key.policy].label},
          {"terminator", c.terminators[key.terminator].label},
          {"seed", c.seeds[key.seed]}};
}

cell_outcome run_one_cell(const run_inputs& in, const cell_key& key, std::size_t grid_index, const std::string& id) {
  const run_config& c = in.config;
  const auto& spec = c.tasks[key.task];
  cell_outcome out;
  try {
    const auto task = tasks::make_task(spec.name, spec.params);
    cell_instances inst = make_instances(in, key, std::min(c.batch, c.samples));
    const auto t0 = clock_type::now();
    cell_totals totals;
    out.samples = run_cell_samples(in, key, id, *task, inst, totals);
    ojson metrics = cell_metrics(totals, in.read_bandwidth_bytes_per_s);
    metrics["policy_stats"] = mean_stats(inst.policies);
    metrics["terminator_stats"] = inst.terminator ? ojson(inst.terminator->stats()) : ojson::object();
    out.cell = {{"id", id},
                {"grid_index", grid_index},
                {"task", spec.name},
                {"metric", std::string(task->metric())},
                {"context_length", c.context_lengths[key.length]},
                {"policy", c.policies[key.policy].label},
                {"terminator", c.terminators[key.terminator].label},
                {"seed", c.seeds[key.seed]},
                {"wall_s", std::chrono::duration<double>(clock_type::now() - t0).count()},
                {"read_bandwidth_bytes_per_s", in.read_bandwidth_bytes_per_s},  // the probe of the cell's process
                {"metrics", metrics}};
    out.finished = true;
  } catch (const plugin_error& e) {
    out.samples.clear();
    out.failure = failure_record(c, key, grid_index, id);
    out.failure["reason"] = "plugin error";
    out.failure["plugin"] = e.plugin;
    out.failure["operation"] = e.operation;
    out.failure["message"] = e.what();
  }
  return out;
}

run_summary run_cells(const run_inputs& in, cell_sink& sink, const cell_isolation& isolation) {
  const run_config& c = in.config;
  const auto grid = expand_grid(c);
  const auto ids = grid_cell_ids(c, grid);
  const std::vector<std::size_t> mine = shard_cells(c, in.model, in.shard_index, in.shard_count);  // in grid order
  std::size_t to_run = 0;
  for (std::size_t i : mine) to_run += !sink.has_cell(ids[i]);

  // The cells' process: a forked worker, or this one (with its threads and probe).
  run_inputs local = in;
  std::unique_ptr<cell_worker> worker;
  std::optional<tbb::global_control> parallelism;
  if (isolation.worker) {
    worker = std::make_unique<cell_worker>(in, grid, ids, isolation.timeout_s);
    local.read_bandwidth_bytes_per_s = worker->read_bandwidth();
    local.read_ceiling_method = worker->read_method();
  } else {
    parallelism.emplace(tbb::global_control::max_allowed_parallelism, std::max(1u, in.threads));
    measure_probe(local);
  }
  sink.set_read_bandwidth(local.read_bandwidth_bytes_per_s, local.read_ceiling_method);

  progress_line progress(mine.size(), to_run);
  run_summary summary;
  std::size_t done = 0;
  for (std::size_t grid_index : mine) {
    const std::string& id = ids[grid_index];
    ++done;
    if (sink.has_cell(id)) {
      spdlog::info("[{}/{}] {}: already in results, skipped", done, mine.size(), id);
      continue;
    }
    check_interrupt(sink);
    progress.start(done, id);
    cell_outcome o;
    try {
      o = worker ? worker->run(grid_index) : run_one_cell(local, grid[grid_index], grid_index, id);
    } catch (const harness_error& e) {
      progress.clear();
      if (e.code == exit_interrupted) check_interrupt(sink, /*now=*/true);
      throw;
    }
    progress.finish();
    if (!o.finished) {
      ++summary.failed;
      sink.add_failure(o.failure);
      spdlog::error("[{}/{}] {}: failed: {}", done, mine.size(), id, o.failure["message"].get<std::string>());
      continue;
    }
    ++summary.finished;
    sink.add_cell(o.cell, o.samples);
    const ojson& metrics = o.cell["metrics"];
    spdlog::info("[{}/{}] {}: accuracy {:.1f}, blocks skipped {:.1f}%, {:.1f} tokens/s ({})", done, mine.size(), id,
                 metrics["accuracy"].get<double>(), 100.0 * metrics["blocks_skipped_frac"].get<double>(),
                 metrics["decode_tokens_per_s"].get<double>(), progress.times());
  }
  progress.clear();
  return summary;
}

}  // namespace attnbench
