#include <attnbench/model/calibrate.hpp>

#include <attnbench/kernels/tca-select.hpp>

#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/score.hpp>

#include <stdexcept>
#include <vector>

namespace attnbench {

namespace {

// Per layer, KV head and candidate profile ([layer][kv_head][profile]), summed over
// samples: the attention mass a profile keeps, and the share of tokens it keeps.
struct coverage_sums {
  std::vector<double> coverage, kept;
};

// The importance of each token for one KV head: the softmax of the prompt's last query,
// averaged over the heads of its group.
void head_importance(const model& m, const float* group_queries, const attnbench_kv_head_view& kv,
                     const calibrate_request& r, std::uint64_t n, std::vector<float>& logits, std::vector<float>& s) {
  const model_shape& p = m.shape();
  const std::uint32_t group = p.n_query_heads / p.n_kv_heads;
  kernels::score_args a;
  a.queries = group_queries;
  a.n_query_heads = group;
  a.head_dim = p.head_dim;
  a.scale = m.scale();
  a.kv = &kv;
  a.block_size = r.block_size;
  a.dtype = r.dtype;
  a.count = n;
  logits.resize(static_cast<std::size_t>(group) * n);
  a.out = logits.data();
  if (kernels::score_keys(a) != ATTNBENCH_STATUS_OK) throw std::runtime_error("calibrate: scoring failed");
  kernels::softmax_rows(logits.data(), group, n);
  s.assign(n, 0.0f);
  for (std::uint32_t g = 0; g < group; ++g)
    for (std::uint64_t t = 0; t < n; ++t) s[t] += logits[g * n + t] / static_cast<float>(group);
}

// One calibration sample: prefill, then every head's coverage under every profile.
void calibrate_sample(const model& m, const tasks::sample& smp, const calibrate_request& r,
                      const std::vector<double>& widths, kernels::kv_cache& cache, coverage_sums& sums) {
  const model_shape& p = m.shape();
  const std::uint32_t hkv = p.n_kv_heads, group = p.n_query_heads / hkv, d = p.head_dim;
  const tca::selection_params sel{r.block, r.alpha, r.window};
  std::vector<float> queries(static_cast<std::size_t>(p.n_query_heads) * d), logits, s;
  cache.truncate(0);
  const auto seq = m.start_sequence(smp.prompt, cache);
  const std::uint64_t n = smp.prompt.size();
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
    seq->queries(layer, queries.data());
    const auto& view = cache.layer_view(layer);
    for (std::uint32_t h = 0; h < hkv; ++h) {
      head_importance(m, queries.data() + static_cast<std::size_t>(h) * group * d, view.heads[h], r, n, logits, s);
      for (std::size_t k = 0; k < widths.size(); ++k) {
        const auto keep = tca::select(s.data(), n, widths[k], sel);
        double mass = 0;
        for (auto t : keep) mass += s[t];
        const std::size_t at = (static_cast<std::size_t>(layer) * hkv + h) * widths.size() + k;
        sums.coverage[at] += mass;
        sums.kept[at] += static_cast<double>(keep.size()) / static_cast<double>(n);
      }
    }
  }
}

}  // namespace

nlohmann::ordered_json calibrate_tca(const model& m, const tasks::task& task, const calibrate_request& r) {
  const model_shape& p = m.shape();
  const std::uint32_t hkv = p.n_kv_heads;
  const std::vector<double> widths = tca::profile_widths(r.profiles, r.mu, r.sigma);
  coverage_sums sums;
  sums.coverage.assign(static_cast<std::size_t>(p.n_layers) * hkv * widths.size(), 0.0);
  sums.kept.assign(sums.coverage.size(), 0.0);
  kernels::kv_cache cache(p.n_layers, hkv, p.head_dim, r.block_size, r.dtype);
  nlohmann::ordered_json prompts = nlohmann::ordered_json::array();
  for (std::uint32_t i = 0; i < r.samples; ++i) {
    const tasks::sample smp = tasks::make_indexed_sample(task, r.seed, r.context_length, i);
    prompts.push_back({{"sample", i}, {"prompt_hash", prompt_hash(smp.prompt)}});
    calibrate_sample(m, smp, r, widths, cache, sums);
  }
  nlohmann::ordered_json out;
  out["block"] = r.block;
  out["alpha"] = r.alpha;
  out["window"] = r.window;
  out["tau"] = r.tau;
  out["profiles"] = widths;
  out["calibration"] = {{"task", std::string(task.name())}, {"context_length", r.context_length},
                        {"samples", r.samples}, {"seed", r.seed}, {"prompts", prompts}, {"profile", p.name},
                        {"mu", r.mu}, {"sigma", r.sigma}};
  nlohmann::ordered_json chosen = nlohmann::ordered_json::array(), cov = nlohmann::ordered_json::array(),
                         share = nlohmann::ordered_json::array();
  std::uint64_t missed = 0;
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
    nlohmann::ordered_json w_row = nlohmann::ordered_json::array(), c_row = w_row, s_row = w_row;
    for (std::uint32_t h = 0; h < hkv; ++h) {
      const std::size_t base = (static_cast<std::size_t>(layer) * hkv + h) * widths.size();
      std::size_t pick = widths.size() - 1;  // the widest when none reaches tau
      bool reached = false;
      for (std::size_t k = 0; k < widths.size() && !reached; ++k)  // widths ascend: fewest tokens first
        if (sums.coverage[base + k] / r.samples >= r.tau) pick = k, reached = true;
      if (!reached) ++missed;
      w_row.push_back(widths[pick]);
      c_row.push_back(sums.coverage[base + pick] / r.samples);
      s_row.push_back(sums.kept[base + pick] / r.samples);
    }
    chosen.push_back(w_row);
    cov.push_back(c_row);
    share.push_back(s_row);
  }
  out["widths"] = chosen;
  out["coverage"] = cov;
  out["kept_share"] = share;
  out["heads_below_tau"] = missed;
  return out;
}

}  // namespace attnbench
