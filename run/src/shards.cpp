#include <attnbench/run/shards.hpp>

#include <attnbench/host/errors.hpp>
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/tasks/task.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <queue>
#include <utility>

namespace attnbench {

namespace {

// The reference machine's rates (docs/scale.md says how they were measured): the
// development VM, AMD EPYC Zen 3, 2 threads, default profile, fp16 cache.
// Mechanistic prefill: seconds per K/V element written (a token x layer x KV head x
// head_dim); decode: seconds per cache byte a step reads; trained prefill: fp32
// multiply-adds a second.
constexpr double kMechanisticPrefillSecondsPerElement = 5e-9;  // 3.7e-9 (niah) to 1e-8 (gov_report)
constexpr double kDecodeSecondsPerByte = 1.0e-10;              // dense: 0.7e-10 to 1.2e-10 at 16K-64K
constexpr double kPrefillMacsPerSecond = 2.5e10;
constexpr double kDecodeStepOverheadSeconds = 2.0e-4;  // a step's readout and plans, whatever the length

// A policy's decode step over dense's, per token it reads, by plugin, measured at
// 16K-64K on the reference machine (tokenselect-512 reads little but scores every token;
// quest-1024 scores every page and reads in scattered pieces); 1 for any other plugin.
double decode_factor(const std::string& plugin) {
  if (plugin == "tokenselect") return 0.45;
  if (plugin == "quest") return 1.7;
  return 1.0;
}

// The tokens a policy's step reads: streaming keeps its sinks and window (measured flat,
// 5-7 ms a step from 4K to 16K on the default profile), the others scan the context.
double policy_read_tokens(const std::string& plugin, const nlohmann::json& params, double context) {
  if (plugin != "streaming") return context;
  const auto number = [&](const char* key, double fallback) {
    return params.contains(key) && params[key].is_number() ? params[key].get<double>() : fallback;
  };
  return std::min(context, number("n_sink", 4) + number("window", 2044));
}

// Decode steps of one sample: each generation (the first and one per follow-up) emits
// up to max_new_tokens tokens per continuation.
std::size_t decode_steps(const tasks::sample& s) {
  return (1 + s.follow_ups.size()) * static_cast<std::size_t>(s.max_new_tokens) * std::max<std::uint32_t>(1, s.branches);
}

}  // namespace

std::vector<cell_estimate> estimate_cells(const run_config& c, const model& m, const std::vector<cell_key>& grid) {
  const model_shape& p = m.shape();
  const double elements_per_token = double(p.n_layers) * p.n_kv_heads * p.head_dim;
  const double bytes_per_token = 2 * elements_per_token * kernels::dtype_size(c.dtype);
  std::map<std::pair<std::size_t, std::size_t>, std::size_t> steps;  // (task, length) -> decode steps
  std::vector<cell_estimate> out;
  out.reserve(grid.size());
  for (const cell_key& k : grid) {
    const std::uint32_t length = c.context_lengths[k.length];
    auto it = steps.find({k.task, k.length});
    if (it == steps.end()) {
      const auto task = tasks::make_task(c.tasks[k.task].name, c.tasks[k.task].params);
      std::size_t n = 0;
      try {
        n = decode_steps(tasks::make_indexed_sample(*task, c.seeds[0], length, 0));
      } catch (const std::exception& e) {  // a length the task cannot fill: every run of the cell would fail
        throw config_error(c.file.string(), "/context_lengths",
                           "task " + c.tasks[k.task].label + " cannot build a sample of " + std::to_string(length) +
                               " tokens: " + e.what());
      }
      it = steps.emplace(std::pair{k.task, k.length}, n).first;
    }
    const double n = length, samples = c.samples;
    const double macs = m.prefill_macs(length);
    cell_estimate e;
    e.decode_steps = it->second;
    e.prefill_s = samples * (macs > 0 ? macs / kPrefillMacsPerSecond : n * elements_per_token * kMechanisticPrefillSecondsPerElement);
    // With fidelity, a dense probe attends the whole cache beside a sparse policy.
    const auto& policy = c.policies[k.policy];
    const double read = policy_read_tokens(policy.name, policy.params, n) * decode_factor(policy.name) +
                        (c.fidelity && policy.name != "dense" ? n : 0.0);
    e.decode_s = samples * double(e.decode_steps) * (read * bytes_per_token * kDecodeSecondsPerByte + kDecodeStepOverheadSeconds);
    out.push_back(e);
  }
  return out;
}

std::vector<std::size_t> assign_shards(const std::vector<double>& costs, std::size_t shards) {
  shards = std::max<std::size_t>(1, shards);
  std::vector<std::size_t> order(costs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });
  // The least-loaded shard first, the lower index among equals.
  using slot = std::pair<double, std::size_t>;
  std::priority_queue<slot, std::vector<slot>, std::greater<slot>> least;
  for (std::size_t s = 0; s < shards; ++s) least.push({0.0, s});
  std::vector<std::size_t> out(costs.size(), 0);
  for (std::size_t cell : order) {
    const auto [load, s] = least.top();
    least.pop();
    out[cell] = s;
    least.push({load + costs[cell], s});
  }
  return out;
}

std::vector<std::size_t> shard_cells(const run_config& c, const model& m, std::size_t index, std::size_t count) {
  const auto grid = expand_grid(c);
  std::vector<std::size_t> mine;
  if (count <= 1) {
    mine.resize(grid.size());
    std::iota(mine.begin(), mine.end(), std::size_t{0});
    return mine;
  }
  std::vector<double> costs;
  for (const auto& e : estimate_cells(c, m, grid)) costs.push_back(e.total());
  const auto shard = assign_shards(costs, count);
  for (std::size_t i = 0; i < grid.size(); ++i)
    if (shard[i] == index) mine.push_back(i);
  return mine;
}

double shard_spread(const std::vector<double>& seconds) {
  if (seconds.empty()) return 1.0;
  const double mean = std::accumulate(seconds.begin(), seconds.end(), 0.0) / double(seconds.size());
  return mean > 0 ? *std::max_element(seconds.begin(), seconds.end()) / mean : 1.0;
}

}  // namespace attnbench
