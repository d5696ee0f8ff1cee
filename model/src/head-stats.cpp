#include <attnbench/model/head-stats.hpp>

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/score.hpp>

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

// What one decode step's measurement needs besides the model: the sums per head, the
// previous step's queries, and scratch.
struct stats_state {
  const model_shape& shape;
  const stats_request& req;
  float scale;
  std::vector<head_sums> sums;    // [layer][query_head]
  std::vector<float> previous;    // [layer][query_head][head_dim]: the last step's queries
  std::vector<float> keys, logits;
};

// Every key of one KV head, as fp32 rows.
void read_keys(const attnbench_kv_head_view& hv, const stats_request& req, std::uint32_t d, std::vector<float>& keys) {
  const std::size_t row_bytes = static_cast<std::size_t>(d) * kernels::dtype_size(req.dtype);
  keys.resize(hv.n_tokens * d);
  for (std::size_t t = 0; t < hv.n_tokens; ++t)
    kernels::to_fp32(req.dtype,
                     static_cast<const std::byte*>(hv.key_blocks[t / req.block_size]) + (t % req.block_size) * row_bytes,
                     &keys[t * d], d);
}

// One query head's logits over n keys: first-token mass, tokens for 90% of the mass,
// logit spread, and the cosine with its query of the step before.
void measure_head(stats_state& st, std::uint32_t layer, std::uint32_t qh, const float* q, std::size_t n, bool first_step) {
  const std::uint32_t d = st.shape.head_dim;
  std::vector<float>& logits = st.logits;
  logits.resize(n);
  float top = -std::numeric_limits<float>::infinity();
  double sum = 0, sum2 = 0;
  for (std::size_t t = 0; t < n; ++t) {
    float x = 0;
    for (std::uint32_t i = 0; i < d; ++i) x += q[i] * st.keys[t * d + i];
    logits[t] = x * st.scale;
    top = std::max(top, logits[t]);
    sum += logits[t];
    sum2 += static_cast<double>(logits[t]) * logits[t];
  }
  double z = 0;
  for (std::size_t t = 0; t < n; ++t) z += std::exp(static_cast<double>(logits[t] - top));
  head_sums& hs = st.sums[static_cast<std::size_t>(layer) * st.shape.n_query_heads + qh];
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
  float* prev = &st.previous[(static_cast<std::size_t>(layer) * st.shape.n_query_heads + qh) * d];
  if (!first_step) {
    hs.cosine += kernels::cosine(prev, q, d);
    ++hs.n_cosine;
  }
  std::copy(q, q + d, prev);
}

// One decode step of a sample: per layer, measure every head, then attend densely and
// fold the outputs into the sequence. Returns the next token.
tasks::token measure_step(stats_state& st, model_sequence& seq, kernels::kv_cache& cache, bool first_step) {
  const model_shape& p = st.shape;
  const std::uint32_t d = p.head_dim, hq = p.n_query_heads, hkv = p.n_kv_heads, group = hq / hkv;
  const std::vector<attnbench_plan_entry> entries(hkv, {ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
  const attnbench_plan plan{ATTNBENCH_PLAN_PER_KV_HEAD, hkv, entries.data()};
  std::vector<kernels::decode_counters> counters(hq);
  std::vector<float> queries(static_cast<std::size_t>(hq) * d), outputs(queries.size());
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
    seq.queries(layer, queries.data());
    const attnbench_kv_layer_view& view = cache.layer_view(layer);
    for (std::uint32_t h = 0; h < hkv; ++h) {
      read_keys(view.heads[h], st.req, d, st.keys);
      for (std::uint32_t qh = h * group; qh < (h + 1) * group; ++qh)
        measure_head(st, layer, qh, &queries[static_cast<std::size_t>(qh) * d], view.heads[h].n_tokens, first_step);
    }
    kernels::layer_decode_args a;
    a.queries = queries.data();
    a.n_query_heads = hq;
    a.scale = st.scale;
    a.kv = &view;
    a.plan = &plan;
    a.out = outputs.data();
    kernels::decode_layer(a, counters.data());
    seq.fold(layer, outputs.data());
  }
  return seq.read_out(1).front().token;
}

struct role_acc {
  std::uint32_t heads = 0;
  double first_mass = 0, tokens_90 = 0, cosine = 0, logit_sd = 0;
  double tokens_90_min = std::numeric_limits<double>::infinity(), tokens_90_max = 0;
};

// Per head and per role means, and the spread of logit sd over heads.
nlohmann::ordered_json summarize(const stats_state& st) {
  const model_shape& p = st.shape;
  const std::uint32_t hq = p.n_query_heads, group = hq / p.n_kv_heads;
  nlohmann::ordered_json heads = nlohmann::ordered_json::array();
  std::map<std::string, role_acc> roles;
  double sd_min = std::numeric_limits<double>::infinity(), sd_max = 0;
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer)
    for (std::uint32_t qh = 0; qh < hq; ++qh) {
      const head_sums& hs = st.sums[static_cast<std::size_t>(layer) * hq + qh];
      if (hs.n == 0) continue;
      const double n = static_cast<double>(hs.n);
      const std::string role = head_role_name(p.roles[layer][qh / group]);
      const double cos = hs.n_cosine ? hs.cosine / static_cast<double>(hs.n_cosine) : 0.0;
      heads.push_back({{"layer", layer}, {"query_head", qh}, {"kv_head", qh / group}, {"role", role},
                       {"first_token_mass", hs.first_mass / n}, {"tokens_for_90pct", hs.tokens_90 / n},
                       {"query_cosine", cos}, {"logit_sd", hs.logit_sd / n}});
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
  return {{"context_length", st.req.context_length},
          {"samples", st.req.samples},
          {"steps", st.req.steps},
          {"roles", by_role},
          {"logit_sd_spread", {{"min", sd_min}, {"max", sd_max}, {"max_over_min", sd_min > 0 ? sd_max / sd_min : 0.0}}},
          {"heads", heads}};
}

}  // namespace

nlohmann::ordered_json head_statistics(const model& m, const tasks::task& task, const stats_request& req) {
  const model_shape& p = m.shape();
  stats_state st{p, req, m.scale(), {}, {}, {}, {}};
  st.sums.resize(static_cast<std::size_t>(p.n_layers) * p.n_query_heads);
  st.previous.resize(st.sums.size() * p.head_dim);
  kernels::kv_cache cache(p.n_layers, p.n_kv_heads, p.head_dim, req.block_size, req.dtype);
  nlohmann::ordered_json prompts = nlohmann::ordered_json::array();
  for (std::uint32_t s = 0; s < req.samples; ++s) {
    const tasks::sample smp = tasks::make_indexed_sample(task, req.seed, req.context_length, s);
    prompts.push_back({{"sample", s}, {"prompt_hash", prompt_hash(smp.prompt)}});
    cache.truncate(0);
    const auto seq = m.start_sequence(smp.prompt, cache);
    for (std::uint32_t step = 0; step < req.steps; ++step) {
      const tasks::token next = measure_step(st, *seq, cache, step == 0);
      if (std::find(smp.stop_tokens.begin(), smp.stop_tokens.end(), next) != smp.stop_tokens.end()) break;
      const tasks::token one[] = {next};
      seq->append(one);
    }
  }
  nlohmann::ordered_json out = summarize(st);
  out["prompts"] = prompts;
  return out;
}

}  // namespace attnbench
