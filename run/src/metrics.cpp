#include <attnbench/run/metrics.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <string>

namespace attnbench {

using ojson = nlohmann::ordered_json;

nlohmann::json mean_stats(const std::vector<std::unique_ptr<policy_instance>>& policies) {
  if (policies.size() == 1) return policies.front()->stats();
  nlohmann::json out = nlohmann::json::object();
  std::map<std::string, std::pair<double, int>> sums;
  for (const auto& policy : policies) {
    const nlohmann::json stats = policy->stats();
    if (!stats.is_object()) continue;
    for (const auto& [k, v] : stats.items()) {
      if (v.is_number()) {
        auto& [sum, count] = sums[k];
        sum += v.get<double>();
        ++count;
      } else if (!out.contains(k)) {
        out[k] = v;
      }
    }
  }
  for (const auto& [k, sc] : sums) out[k] = sc.first / sc.second;
  return out;
}

void fidelity_totals::add(std::uint32_t layer, head_role role, double r, double e) {
  if (layer_count.size() <= layer) {
    layer_recall.resize(layer + 1, 0.0);
    layer_error.resize(layer + 1, 0.0);
    layer_count.resize(layer + 1, 0);
  }
  layer_recall[layer] += r;
  layer_error[layer] += e;
  ++layer_count[layer];
  const auto k = static_cast<std::size_t>(role);
  role_recall[k] += r;
  role_error[k] += e;
  ++role_count[k];
}

namespace {

void add_fidelity(const fidelity_totals& f, ojson& m) {
  const std::uint64_t count = std::accumulate(f.layer_count.begin(), f.layer_count.end(), std::uint64_t{0});
  if (count == 0) return;
  auto mean = [](double sum, std::uint64_t n) { return n ? sum / static_cast<double>(n) : 0.0; };
  auto total = [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); };
  ojson recall_by_layer = ojson::array(), error_by_layer = ojson::array();
  for (std::size_t l = 0; l < f.layer_count.size(); ++l) {
    recall_by_layer.push_back(mean(f.layer_recall[l], f.layer_count[l]));
    error_by_layer.push_back(mean(f.layer_error[l], f.layer_count[l]));
  }
  ojson recall_by_role = ojson::object(), error_by_role = ojson::object();
  for (std::size_t r = 0; r < kHeadRoles; ++r)
    if (f.role_count[r] > 0) {
      const std::string name = head_role_name(static_cast<head_role>(r));
      recall_by_role[name] = mean(f.role_recall[r], f.role_count[r]);
      error_by_role[name] = mean(f.role_error[r], f.role_count[r]);
    }
  m["attention_recall"] = mean(total(f.layer_recall), count);
  m["attention_recall_by_layer"] = recall_by_layer;
  m["attention_recall_by_role"] = recall_by_role;
  m["output_error"] = mean(total(f.layer_error), count);
  m["output_error_by_layer"] = error_by_layer;
  m["output_error_by_role"] = error_by_role;
}

}  // namespace

ojson cell_metrics(const cell_totals& t, double probe) {
  const double n = static_cast<double>(t.scores.size());
  const double mean = std::accumulate(t.scores.begin(), t.scores.end(), 0.0) / n;
  double var = 0;
  for (double s : t.scores) var += (s - mean) * (s - mean);
  const double sd = t.scores.size() > 1 ? std::sqrt(var / (n - 1)) : 0.0;
  const double half = 1.96 * sd / std::sqrt(n);
  const double steps = static_cast<double>(std::max<std::uint64_t>(t.steps, 1));
  const double bytes = static_cast<double>(t.k_bytes + t.v_bytes);
  const double effective_bw = t.attention_s > 0 ? bytes / t.attention_s : 0.0;
  auto skipped = [](std::uint64_t planned, std::uint64_t visited) {
    return planned ? 1.0 - static_cast<double>(visited) / static_cast<double>(planned) : 0.0;
  };
  ojson skipped_by_layer = ojson::array(), skipped_by_role = ojson::object();
  for (std::size_t l = 0; l < t.layer_blocks_planned.size(); ++l)
    skipped_by_layer.push_back(skipped(t.layer_blocks_planned[l], t.layer_blocks_visited[l]));
  for (std::size_t r = 0; r < kHeadRoles; ++r)
    if (t.role_blocks_planned[r] > 0)
      skipped_by_role[head_role_name(static_cast<head_role>(r))] =
          skipped(t.role_blocks_planned[r], t.role_blocks_visited[r]);
  ojson m{{"accuracy", mean},
          {"accuracy_ci95", {std::max(0.0, mean - half), std::min(100.0, mean + half)}},
          {"samples", t.scores.size()},
          {"decode_steps", t.steps},
          {"blocks_planned", t.blocks_planned},
          {"blocks_visited", t.blocks_visited},
          {"blocks_skipped_frac",
           t.blocks_planned ? 1.0 - static_cast<double>(t.blocks_visited) / static_cast<double>(t.blocks_planned) : 0.0},
          {"blocks_skipped_frac_by_layer", skipped_by_layer},
          {"blocks_skipped_frac_by_role", skipped_by_role},
          {"tokens_attended_frac", t.context_token_heads > 0 ? t.attended_token_heads / t.context_token_heads : 0.0},
          {"kv_bytes_read_k", t.k_bytes},
          {"kv_bytes_read_v", t.v_bytes},
          {"kv_bytes_read_per_step", bytes / steps},
          {"kv_bytes_resident_before_eviction", t.resident_before_eviction_bytes / n},
          {"kv_bytes_resident", t.resident_bytes / n},
          {"selection_us_per_step", 1e6 * t.selection_s / steps},
          {"attention_us_per_step", 1e6 * t.attention_s / steps},
          {"decode_tokens_per_s", t.decode_s > 0 ? static_cast<double>(t.steps) / t.decode_s : 0.0},
          {"prefill_ms", 1e3 * t.prefill_s / n},
          {"attention_bytes_per_s", effective_bw},
          {"bandwidth_ratio", probe > 0 ? effective_bw / probe : 0.0}};
  add_fidelity(t.fidelity, m);
  return m;
}

}  // namespace attnbench
