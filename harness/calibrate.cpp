#include "calibrate.hpp"

#include "tca-select.hpp"

#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/score.hpp>

#include <stdexcept>
#include <vector>

namespace attnbench {

nlohmann::ordered_json calibrate_tca(const synthetic_model& model, const tasks::task& task,
                                     const calibrate_request& r) {
  const model_profile& p = model.profile();
  const std::uint32_t hq = p.n_query_heads, hkv = p.n_kv_heads, group = hq / hkv, d = p.head_dim;
  const tca::selection_params sel{r.block, r.alpha, r.window};
  const std::vector<double> widths = tca::profile_widths(r.profiles, r.mu, r.sigma);
  // coverage[layer][kv_head][profile], summed over samples; kept share likewise.
  std::vector<double> coverage(static_cast<std::size_t>(p.n_layers) * hkv * widths.size(), 0.0);
  std::vector<double> kept(coverage.size(), 0.0);
  kernels::kv_cache cache(p.n_layers, hkv, d, r.block_size, r.dtype);
  std::vector<float> queries(static_cast<std::size_t>(hq) * d), logits, s;
  for (std::uint32_t i = 0; i < r.samples; ++i) {
    const tasks::sample smp = task.make_sample(r.seed * 1000003ull + i, r.context_length);
    cache.truncate(0);
    model.prefill(smp.prompt, cache);
    const std::uint64_t n = smp.prompt.size();
    for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
      model.queries(layer, smp.prompt, queries.data());
      const auto& view = cache.layer_view(layer);
      for (std::uint32_t h = 0; h < hkv; ++h) {
        kernels::score_args a;
        a.queries = queries.data() + static_cast<std::size_t>(h) * group * d;
        a.n_query_heads = group;
        a.head_dim = d;
        a.scale = model.scale();
        a.kv = &view.heads[h];
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
        for (std::size_t k = 0; k < widths.size(); ++k) {
          const auto keep = tca::select(s.data(), n, widths[k], sel);
          double mass = 0;
          for (auto t : keep) mass += s[t];
          const std::size_t at = (static_cast<std::size_t>(layer) * hkv + h) * widths.size() + k;
          coverage[at] += mass;
          kept[at] += static_cast<double>(keep.size()) / static_cast<double>(n);
        }
      }
    }
  }
  nlohmann::ordered_json out;
  out["block"] = r.block;
  out["alpha"] = r.alpha;
  out["window"] = r.window;
  out["tau"] = r.tau;
  out["profiles"] = widths;
  out["calibration"] = {{"task", std::string(task.name())}, {"context_length", r.context_length},
                        {"samples", r.samples}, {"seed", r.seed}, {"profile", p.name},
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
        if (coverage[base + k] / r.samples >= r.tau) pick = k, reached = true;
      if (!reached) ++missed;
      w_row.push_back(widths[pick]);
      c_row.push_back(coverage[base + pick] / r.samples);
      s_row.push_back(kept[base + pick] / r.samples);
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
