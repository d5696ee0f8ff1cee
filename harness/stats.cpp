#include "stats.hpp"

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/random.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <vector>

namespace attnbench {

namespace {

struct head_sums {
  double first_mass = 0, tokens_90 = 0, logit_sd = 0, cosine = 0;
  std::uint64_t n = 0, n_cosine = 0;
};

double cosine(const float* a, const float* b, std::uint32_t d) {
  double ab = 0, aa = 0, bb = 0;
  for (std::uint32_t i = 0; i < d; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

}  // namespace

nlohmann::ordered_json head_statistics(const synthetic_model& model, const tasks::task& task,
                                       const stats_request& req) {
  const model_profile& p = model.profile();
  const std::uint32_t d = p.head_dim, hq = p.n_query_heads, hkv = p.n_kv_heads, group = hq / hkv;
  std::vector<head_sums> sums(static_cast<std::size_t>(p.n_layers) * hq);
  kernels::kv_cache cache(p.n_layers, hkv, d, req.block_size, req.dtype);
  const std::size_t row_bytes = static_cast<std::size_t>(d) * kernels::dtype_size(req.dtype);
  // Dense plans for the outputs that feed the readout.
  const std::vector<attnbench_plan_entry> entries(hkv, {ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
  const attnbench_plan plan{ATTNBENCH_PLAN_PER_KV_HEAD, hkv, entries.data()};
  std::vector<kernels::decode_counters> counters(hq);

  for (std::uint32_t s = 0; s < req.samples; ++s) {
    const tasks::sample smp = task.make_sample(hash_combine(req.seed, s), req.context_length);
    std::vector<tasks::token> tokens = smp.prompt;
    cache.truncate(0);
    model.prefill(tokens, cache);
    std::vector<float> queries(static_cast<std::size_t>(hq) * d), previous(p.n_layers * queries.size());
    std::vector<float> outputs(static_cast<std::size_t>(p.n_layers) * hq * d), keys, logits;
    for (std::uint32_t step = 0; step < req.steps; ++step) {
      for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
        model.queries(layer, tokens, queries.data());
        const attnbench_kv_layer_view& view = cache.layer_view(layer);
        for (std::uint32_t h = 0; h < hkv; ++h) {
          const auto& hv = view.heads[h];
          const std::size_t n = hv.n_tokens;
          keys.resize(n * d);
          for (std::size_t t = 0; t < n; ++t)
            kernels::to_fp32(req.dtype,
                             static_cast<const std::byte*>(hv.key_blocks[t / req.block_size]) +
                                 (t % req.block_size) * row_bytes,
                             &keys[t * d], d);
          logits.resize(n);
          for (std::uint32_t qh = h * group; qh < (h + 1) * group; ++qh) {
            const float* q = &queries[static_cast<std::size_t>(qh) * d];
            float top = -std::numeric_limits<float>::infinity();
            double sum = 0, sum2 = 0;
            for (std::size_t t = 0; t < n; ++t) {
              float x = 0;
              for (std::uint32_t i = 0; i < d; ++i) x += q[i] * keys[t * d + i];
              logits[t] = x * model.scale();
              top = std::max(top, logits[t]);
              sum += logits[t];
              sum2 += static_cast<double>(logits[t]) * logits[t];
            }
            double z = 0;
            for (std::size_t t = 0; t < n; ++t) z += std::exp(static_cast<double>(logits[t] - top));
            head_sums& hs = sums[static_cast<std::size_t>(layer) * hq + qh];
            hs.first_mass += std::exp(static_cast<double>(logits[0] - top)) / z;
            // Tokens to cover 90% of the mass: the largest weights first.
            std::sort(logits.begin(), logits.end(), std::greater<>());
            double covered = 0;
            std::size_t k = 0;
            while (k < n && covered < 0.9 * z) covered += std::exp(static_cast<double>(logits[k++] - top));
            hs.tokens_90 += static_cast<double>(k);
            const double mean = sum / static_cast<double>(n);
            hs.logit_sd += std::sqrt(std::max(0.0, sum2 / static_cast<double>(n) - mean * mean));
            ++hs.n;
            float* prev = &previous[(static_cast<std::size_t>(layer) * hq + qh) * d];
            if (step > 0) {
              hs.cosine += cosine(prev, q, d);
              ++hs.n_cosine;
            }
            std::copy(q, q + d, prev);
          }
        }
        // This layer's attention outputs, for the readout.
        kernels::layer_decode_args a;
        a.queries = queries.data();
        a.n_query_heads = hq;
        a.scale = model.scale();
        a.kv = &view;
        a.plan = &plan;
        a.out = outputs.data() + static_cast<std::size_t>(layer) * hq * d;
        kernels::decode_layer(a, counters.data());
      }
      const tasks::token next = model.readout(outputs.data());
      if (std::find(smp.stop_tokens.begin(), smp.stop_tokens.end(), next) != smp.stop_tokens.end()) break;
      tokens.push_back(next);
      model.append_last(tokens, cache);
    }
  }

  nlohmann::ordered_json heads = nlohmann::ordered_json::array();
  struct role_acc {
    std::uint32_t heads = 0;
    double first_mass = 0, tokens_90 = 0, cosine = 0, logit_sd = 0;
    double tokens_90_min = std::numeric_limits<double>::infinity(), tokens_90_max = 0;
  };
  std::map<std::string, role_acc> roles;
  double sd_min = std::numeric_limits<double>::infinity(), sd_max = 0;
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer)
    for (std::uint32_t qh = 0; qh < hq; ++qh) {
      const head_sums& hs = sums[static_cast<std::size_t>(layer) * hq + qh];
      if (hs.n == 0) continue;
      const double n = static_cast<double>(hs.n);
      const std::string role = head_role_name(p.roles[layer][qh / group]);
      const double cos = hs.n_cosine ? hs.cosine / static_cast<double>(hs.n_cosine) : 0.0;
      heads.push_back({{"layer", layer},
                       {"query_head", qh},
                       {"kv_head", qh / group},
                       {"role", role},
                       {"first_token_mass", hs.first_mass / n},
                       {"tokens_for_90pct", hs.tokens_90 / n},
                       {"query_cosine", cos},
                       {"logit_sd", hs.logit_sd / n}});
      role_acc& r = roles[role];
      ++r.heads;
      r.first_mass += hs.first_mass / n;
      r.tokens_90 += hs.tokens_90 / n;
      r.tokens_90_min = std::min(r.tokens_90_min, hs.tokens_90 / n);
      r.tokens_90_max = std::max(r.tokens_90_max, hs.tokens_90 / n);
      r.cosine += cos;
      r.logit_sd += hs.logit_sd / n;
      sd_min = std::min(sd_min, hs.logit_sd / n);
      sd_max = std::max(sd_max, hs.logit_sd / n);
    }
  nlohmann::ordered_json by_role = nlohmann::ordered_json::object();
  for (const auto& [role, r] : roles)
    by_role[role] = {{"heads", r.heads},
                     {"first_token_mass", r.first_mass / r.heads},
                     {"tokens_for_90pct", r.tokens_90 / r.heads},
                     {"tokens_for_90pct_min", r.tokens_90_min},
                     {"tokens_for_90pct_max", r.tokens_90_max},
                     {"query_cosine", r.cosine / r.heads},
                     {"logit_sd", r.logit_sd / r.heads}};
  return {{"context_length", req.context_length},
          {"samples", req.samples},
          {"steps", req.steps},
          {"roles", by_role},
          {"logit_sd_spread", {{"min", sd_min}, {"max", sd_max}, {"max_over_min", sd_min > 0 ? sd_max / sd_min : 0.0}}},
          {"heads", heads}};
}

}  // namespace attnbench
