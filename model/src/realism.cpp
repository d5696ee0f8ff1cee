#include <attnbench/model/realism.hpp>

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/score.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>

namespace attnbench {

namespace {

// The definitions' constants (docs/model.md, "Realism", says where each comes from).
constexpr std::size_t kSinkTokens = 4;       // StreamingLLM keeps four initial tokens
constexpr std::size_t kStreamSink = 64;      // a streaming head: the first 64 tokens ...
constexpr std::size_t kStreamRecent = 256;   // ... and the last 256
constexpr std::size_t kPage = 16;            // Quest's page
constexpr double kTopShare = 0.2;            // MagicPIG's top 20%
constexpr double kOracleShare = 0.02;        // arXiv 2502.06766: under 2% of the tokens
constexpr double kRetrievalScore = 0.1;      // Wu et al.'s retrieval-head threshold
constexpr double kFullContextChange = 0.1;   // a tenth of the layer's mean head output
constexpr double kLongTail = 0.8;            // MagicPIG: the top 20% "often" hold only 70-80%
constexpr double kSinkShare = 0.3;           // Gu et al.'s threshold for a sink head
constexpr std::uint32_t kFirstLayers = 2;    // StreamingLLM: sinks beyond the first two layers

// One query head's measures at one step.
struct head_step {
  double first_mass = 0, top_mass = 0, tokens_90 = 0, l1 = 0, stream_change = 0, out_norm = 0, pages_open = 0;
  std::size_t argmax = 0;
};

// Sums over steps and samples for one query head.
struct head_sums {
  double first_mass = 0, top_mass = 0, tokens_90 = 0, l1 = 0, stream_change = 0, cosine = 0, pages_open = 0;
  std::uint64_t n = 0, n_cosine = 0, copies = 0;
};

// Scratch of one KV head's analysis.
struct scratch {
  std::vector<float> keys, values, logits, page_min, page_max;
  std::vector<double> probs, out, stream;
  std::vector<std::uint32_t> order;
};

void read_rows(const void* const* blocks, std::size_t n, std::uint32_t d, std::uint32_t block_size, attnbench_dtype dtype,
               std::vector<float>& rows) {
  rows.resize(n * d);
  for (std::size_t start = 0; start < n; start += block_size)
    kernels::to_fp32(dtype, static_cast<const std::byte*>(blocks[start / block_size]), &rows[start * d],
                     std::min<std::size_t>(block_size, n - start) * d);
}

float dot(const float* a, const float* b, std::uint32_t d) {
  float s[8] = {};
  std::uint32_t i = 0;
  for (; i + 8 <= d; i += 8)
    for (std::uint32_t j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  float total = 0;
  for (; i < d; ++i) total += a[i] * b[i];
  for (float x : s) total += x;
  return total;
}

struct layer_args {
  const attnbench_kv_layer_view* view;
  const float* queries;
  std::uint32_t n_query_heads, head_dim, block_size;
  attnbench_dtype dtype;
  float scale;
  bool measure;                                    // fill steps
  bool neighbours;                                 // fill neighbour (first step of a sample)
  std::vector<head_step>* steps;                   // [n_query_heads]
  std::vector<double>* neighbour;                  // [n_kv_heads]: mean cosine of adjacent keys
  std::vector<std::vector<std::uint32_t>>* top;    // [n_query_heads]: top 2% token indices, or null
};

// Every query head of one layer: logits over the whole cache, the measures, and the
// oracle's top tokens.
void analyse_layer(const layer_args& a) {
  const std::uint32_t d = a.head_dim, hkv = a.view->n_kv_heads, group = a.n_query_heads / hkv;
  tbb::parallel_for(std::uint32_t{0}, hkv, [&](std::uint32_t h) {
    thread_local scratch s;
    const attnbench_kv_head_view& hv = a.view->heads[h];
    const std::size_t n = hv.n_tokens;
    if (n == 0) return;
    read_rows(hv.key_blocks, n, d, a.block_size, a.dtype, s.keys);
    if (a.measure) read_rows(hv.value_blocks, n, d, a.block_size, a.dtype, s.values);
    if (a.neighbours) {
      double sum = 0;
      std::size_t count = 0;
      for (std::size_t t = 1; t + 1 < n; ++t, ++count) sum += kernels::cosine(&s.keys[t * d], &s.keys[(t + 1) * d], d);
      (*a.neighbour)[h] = count ? sum / static_cast<double>(count) : 0.0;
    }
    const std::size_t pages = (n + kPage - 1) / kPage;
    if (a.measure) {  // Quest's per-channel key bounds of each page
      s.page_min.assign(pages * d, std::numeric_limits<float>::infinity());
      s.page_max.assign(pages * d, -std::numeric_limits<float>::infinity());
      for (std::size_t t = 0; t < n; ++t)
        for (std::uint32_t i = 0; i < d; ++i) {
          float& mn = s.page_min[(t / kPage) * d + i];
          float& mx = s.page_max[(t / kPage) * d + i];
          mn = std::min(mn, s.keys[t * d + i]);
          mx = std::max(mx, s.keys[t * d + i]);
        }
    }
    s.logits.resize(n);
    s.probs.resize(n);
    for (std::uint32_t qh = h * group; qh < (h + 1) * group; ++qh) {
      const float* q = a.queries + static_cast<std::size_t>(qh) * d;
      float top = -std::numeric_limits<float>::infinity();
      std::size_t argmax = 0;
      double l1 = 0;
      for (std::size_t t = 0; t < n; ++t) {
        s.logits[t] = a.scale * dot(q, &s.keys[t * d], d);
        l1 += std::fabs(static_cast<double>(s.logits[t]));
        if (s.logits[t] > top) top = s.logits[t], argmax = t;
      }
      if (a.top) {  // the oracle: this head's exact top 2%
        const std::size_t k = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(kOracleShare * n)));
        auto& idx = (*a.top)[qh];
        idx.resize(n);
        std::iota(idx.begin(), idx.end(), 0u);
        std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k - 1), idx.end(),
                         [&](std::uint32_t x, std::uint32_t y) { return s.logits[x] > s.logits[y]; });
        idx.resize(k);
        std::sort(idx.begin(), idx.end());
      }
      if (!a.measure) continue;
      double z = 0;
      for (std::size_t t = 0; t < n; ++t) z += (s.probs[t] = std::exp(static_cast<double>(s.logits[t] - top)));
      for (auto& p : s.probs) p /= z;
      head_step& st = (*a.steps)[qh];
      st = {};
      st.argmax = argmax;
      st.l1 = l1;
      for (std::size_t t = 0; t < std::min(n, kSinkTokens); ++t) st.first_mass += s.probs[t];
      // The dense output and the streaming head's (first 64 and last 256 tokens, renormalised).
      s.out.assign(d, 0.0);
      s.stream.assign(d, 0.0);
      double stream_mass = 0;
      for (std::size_t t = 0; t < n; ++t) {
        const double p = s.probs[t];
        const float* v = &s.values[t * d];
        for (std::uint32_t i = 0; i < d; ++i) s.out[i] += p * v[i];
        if (t < kStreamSink || t + kStreamRecent >= n) {
          stream_mass += p;
          for (std::uint32_t i = 0; i < d; ++i) s.stream[i] += p * v[i];
        }
      }
      double change2 = 0, norm2 = 0;
      for (std::uint32_t i = 0; i < d; ++i) {
        const double x = stream_mass > 0 ? s.stream[i] / stream_mass : 0.0;
        change2 += (x - s.out[i]) * (x - s.out[i]);
        norm2 += s.out[i] * s.out[i];
      }
      st.stream_change = std::sqrt(change2);
      st.out_norm = std::sqrt(norm2);
      // Mass of the top 20% of tokens, and tokens for 90% of the mass.
      std::vector<double> sorted(s.probs);
      std::sort(sorted.begin(), sorted.end(), std::greater<>());
      const auto top_n = static_cast<std::size_t>(std::ceil(kTopShare * static_cast<double>(n)));
      double covered = 0;
      std::size_t k = 0;
      for (; k < n && covered < 0.9; ++k) {
        covered += sorted[k];
        if (k + 1 == top_n) st.top_mass = covered;
      }
      st.tokens_90 = static_cast<double>(k);
      if (st.top_mass == 0) st.top_mass = std::accumulate(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(top_n), 0.0);
      // Pages whose bound reaches the best logit: what Quest's bound cannot rule out.
      std::size_t open = 0;
      for (std::size_t pg = 0; pg < pages; ++pg) {
        double bound = 0;
        for (std::uint32_t i = 0; i < d; ++i)
          bound += std::max(q[i] * s.page_min[pg * d + i], q[i] * s.page_max[pg * d + i]);
        if (a.scale * bound >= top) ++open;
      }
      st.pages_open = static_cast<double>(open) / static_cast<double>(pages);
    }
  });
}

// The needle spans of a sample ([first, end) token indices), from its info.
std::vector<std::pair<std::size_t, std::size_t>> needle_spans(const tasks::sample& smp) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  if (!smp.info.contains("needles")) return spans;
  for (const auto& needle : smp.info["needles"]) {
    const auto first = needle.value("position", std::size_t{0});
    spans.emplace_back(first, first + needle.value("tokens", std::size_t{0}));
  }
  return spans;
}

struct length_state {
  const model& m;
  const tasks::task& task;
  const realism_request& req;
  std::uint32_t context_length;
  std::vector<head_sums> heads;        // [layer][query_head]
  std::vector<double> neighbour;       // [layer][kv_head] sums
  std::uint64_t neighbour_n = 0;
  std::vector<double> layer_cosine;    // [layer] sums
  std::uint64_t layer_cosine_n = 0;
  std::uint64_t copy_chances = 0;
  double dense_score = 0, oracle_score = 0;
  std::uint32_t scored = 0;
};

// Decodes one sample greedily (one continuation) with dense attention, measuring the
// first max_steps steps, or with the oracle's top 2%; returns the task's score.
double decode_sample(length_state& ls, const tasks::sample& smp, bool oracle) {
  const model_shape& p = ls.m.shape();
  const std::uint32_t d = p.head_dim, hq = p.n_query_heads, hkv = p.n_kv_heads;
  kernels::kv_cache cache(p.n_layers, hkv, d, ls.req.block_size, ls.req.dtype);
  const auto seq = ls.m.start_sequence(smp.prompt, cache);
  const auto spans = needle_spans(smp);
  std::vector<float> queries(static_cast<std::size_t>(hq) * d), outputs(queries.size());
  std::vector<float> previous(static_cast<std::size_t>(p.n_layers) * hq * d);
  std::vector<head_step> steps(hq);
  std::vector<std::size_t> argmax(static_cast<std::size_t>(p.n_layers) * hq);
  std::vector<double> neighbour(hkv);
  std::vector<std::vector<std::uint32_t>> top(hq);
  std::vector<attnbench_plan_entry> entries;
  std::vector<kernels::decode_counters> counters(hq);
  std::vector<tasks::token> generated;
  const std::uint32_t limit = smp.max_new_tokens;
  for (std::uint32_t step = 0; step < limit; ++step) {
    const bool measure = !oracle && step < ls.req.max_steps;
    for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
      seq->queries(layer, queries.data());
      const attnbench_kv_layer_view& view = cache.layer_view(layer);
      if (measure || oracle) {
        layer_args a{&view, queries.data(), hq, d, ls.req.block_size, ls.req.dtype, ls.m.scale(), measure,
                     measure && step == 0, &steps, &neighbour, oracle ? &top : nullptr};
        analyse_layer(a);
      }
      if (measure) {
        double mean_norm = 0;
        for (const auto& st : steps) mean_norm += st.out_norm / hq;
        for (std::uint32_t qh = 0; qh < hq; ++qh) {
          head_sums& hs = ls.heads[static_cast<std::size_t>(layer) * hq + qh];
          const head_step& st = steps[qh];
          hs.first_mass += st.first_mass;
          hs.top_mass += st.top_mass;
          hs.tokens_90 += st.tokens_90;
          hs.l1 += st.l1;
          hs.stream_change += mean_norm > 0 ? st.stream_change / mean_norm : 0.0;
          hs.pages_open += st.pages_open;
          ++hs.n;
          argmax[static_cast<std::size_t>(layer) * hq + qh] = st.argmax;
          float* prev = &previous[(static_cast<std::size_t>(layer) * hq + qh) * d];
          if (step > 0) {
            hs.cosine += kernels::cosine(prev, &queries[static_cast<std::size_t>(qh) * d], d);
            ++hs.n_cosine;
          }
        }
        float* prev_layer = &previous[static_cast<std::size_t>(layer) * hq * d];
        if (step > 0) ls.layer_cosine[layer] += kernels::cosine(prev_layer, queries.data(), queries.size());
        std::copy(queries.begin(), queries.end(), prev_layer);
        if (step == 0)
          for (std::uint32_t h = 0; h < hkv; ++h) ls.neighbour[static_cast<std::size_t>(layer) * hkv + h] += neighbour[h];
      }
      entries.assign(oracle ? hq : hkv, {ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
      if (oracle)
        for (std::uint32_t qh = 0; qh < hq; ++qh)
          entries[qh] = {ATTNBENCH_PLAN_TOKENS, static_cast<std::uint32_t>(top[qh].size()), top[qh].data(), nullptr};
      const attnbench_plan plan{oracle ? ATTNBENCH_PLAN_PER_QUERY_HEAD : ATTNBENCH_PLAN_PER_KV_HEAD,
                                static_cast<std::uint32_t>(entries.size()), entries.data()};
      kernels::layer_decode_args da;
      da.queries = queries.data();
      da.n_query_heads = hq;
      da.scale = ls.m.scale();
      da.kv = &view;
      da.plan = &plan;
      da.out = outputs.data();
      kernels::decode_error error;
      if (kernels::decode_layer(da, counters.data(), &error) != ATTNBENCH_STATUS_OK)
        throw std::runtime_error("realism: the decode kernel refused a plan: " + error.message);
      seq->fold(layer, outputs.data());
    }
    if (measure && step == 0) ++ls.neighbour_n;
    if (measure && step > 0) ++ls.layer_cosine_n;
    const tasks::token next = seq->read_out(1).front().token;
    // Wu et al.'s retrieval score: a head copies when the token generated is in a needle
    // and the head's most attended token is that token, inside the needle.
    if (measure) {
      const auto& tokens = seq->tokens();
      bool chance = false;
      for (const auto& [first, end] : spans)
        for (std::size_t t = first; t < end && t < tokens.size(); ++t) chance = chance || tokens[t] == next;
      if (chance) {
        ++ls.copy_chances;
        for (std::size_t i = 0; i < argmax.size(); ++i) {
          const std::size_t j = argmax[i];
          for (const auto& [first, end] : spans)
            if (j >= first && j < end && tokens[j] == next) {
              ++ls.heads[i].copies;
              break;
            }
        }
      }
    }
    if (std::find(smp.stop_tokens.begin(), smp.stop_tokens.end(), next) != smp.stop_tokens.end()) break;
    generated.push_back(next);
    const tasks::token one[] = {next};
    seq->append(one);
  }
  return ls.task.score(tasks::vocabulary::standard().detokenize(generated), smp.references);
}

double median(const std::vector<double>& values) {
  if (values.empty()) return 0;
  std::vector<double> v(values);
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double x = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<std::size_t>(x);
  return i + 1 < v.size() ? v[i] + (x - static_cast<double>(i)) * (v[i + 1] - v[i]) : v.back();
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double share(const std::vector<double>& v, double above) {
  if (v.empty()) return 0;
  return static_cast<double>(std::count_if(v.begin(), v.end(), [&](double x) { return x > above; })) /
         static_cast<double>(v.size());
}

// One statistic: its value over all heads and the same reduction per head role.
nlohmann::ordered_json statistic(const std::map<std::string, std::vector<double>>& by_role,
                                 const std::vector<double>& all, double (*reduce)(const std::vector<double>&)) {
  nlohmann::ordered_json roles = nlohmann::ordered_json::object();
  for (const auto& [role, values] : by_role) roles[role] = reduce(values);
  return {{"value", reduce(all)}, {"by_role", roles}};
}

nlohmann::ordered_json summarize(const length_state& ls) {
  const model_shape& p = ls.m.shape();
  const std::uint32_t hq = p.n_query_heads, hkv = p.n_kv_heads, group = hq / hkv;
  struct per_head {
    std::vector<double> all;
    std::map<std::string, std::vector<double>> by_role;
    void add(const std::string& role, double x) {
      all.push_back(x);
      by_role[role].push_back(x);
    }
  };
  per_head cosine, retrieval, full_context, first_mass, late_first_mass, top_mass, l1, pages, neighbour, tokens_90;
  nlohmann::ordered_json heads = nlohmann::ordered_json::array();
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer)
    for (std::uint32_t qh = 0; qh < hq; ++qh) {
      const head_sums& hs = ls.heads[static_cast<std::size_t>(layer) * hq + qh];
      if (hs.n == 0) continue;
      const double n = static_cast<double>(hs.n);
      const std::string role = head_role_name(p.roles[layer][qh / group]);
      const double cos = hs.n_cosine ? hs.cosine / static_cast<double>(hs.n_cosine) : 0.0;
      const double score = ls.copy_chances ? static_cast<double>(hs.copies) / static_cast<double>(ls.copy_chances) : 0.0;
      cosine.add(role, cos);
      retrieval.add(role, score);
      full_context.add(role, hs.stream_change / n);
      first_mass.add(role, hs.first_mass / n);
      if (layer >= kFirstLayers) late_first_mass.add(role, hs.first_mass / n);
      top_mass.add(role, hs.top_mass / n);
      tokens_90.add(role, hs.tokens_90 / n);
      l1.add(role, hs.l1 / n);
      pages.add(role, hs.pages_open / n);
      heads.push_back({{"layer", layer}, {"query_head", qh}, {"kv_head", qh / group}, {"role", role},
                       {"query_cosine", cos}, {"retrieval_score", score}, {"streaming_change", hs.stream_change / n},
                       {"first4_mass", hs.first_mass / n}, {"top20_mass", hs.top_mass / n},
                       {"tokens_for_90pct", hs.tokens_90 / n}, {"logit_l1", hs.l1 / n},
                       {"pages_open", hs.pages_open / n}});
    }
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer)
    for (std::uint32_t h = 0; h < hkv; ++h)
      if (ls.neighbour_n)
        neighbour.add(head_role_name(p.roles[layer][h]),
                      ls.neighbour[static_cast<std::size_t>(layer) * hkv + h] / static_cast<double>(ls.neighbour_n));

  nlohmann::ordered_json stats = nlohmann::ordered_json::object();
  double layer_cos = 0;
  for (double c : ls.layer_cosine) layer_cos += ls.layer_cosine_n ? c / static_cast<double>(ls.layer_cosine_n) : 0.0;
  layer_cos /= p.n_layers;
  stats["query_cosine"] = {{"value", layer_cos}, {"by_role", statistic(cosine.by_role, cosine.all, mean)["by_role"]},
                           {"note", "value: a layer's flattened query; by role: the mean per query head"}};
  auto above_retrieval = [](const std::vector<double>& v) { return share(v, kRetrievalScore); };
  auto above_full = [](const std::vector<double>& v) { return share(v, kFullContextChange); };
  auto above_sink = [](const std::vector<double>& v) { return share(v, kSinkShare); };
  stats["retrieval_heads"] = statistic(retrieval.by_role, retrieval.all, +above_retrieval);
  stats["retrieval_heads"]["copy_steps"] = ls.copy_chances;
  stats["full_context_heads"] = statistic(full_context.by_role, full_context.all, +above_full);
  stats["sink_heads"] = statistic(late_first_mass.by_role, late_first_mass.all, +above_sink);
  stats["sink_heads"]["share_over_half"] = share(late_first_mass.all, 0.5);
  stats["sink_heads"]["first4_mass_quartiles"] = {quantile(late_first_mass.all, 0), quantile(late_first_mass.all, 0.25),
                                                  quantile(late_first_mass.all, 0.5), quantile(late_first_mass.all, 0.75),
                                                  quantile(late_first_mass.all, 1)};
  auto at_most_tail = [](const std::vector<double>& v) { return 1.0 - share(v, kLongTail); };
  stats["top20_mass"] = statistic(top_mass.by_role, top_mass.all, +at_most_tail);
  stats["top20_mass"]["median"] = median(top_mass.all);
  stats["top20_mass"]["tokens_for_90pct_median"] = median(tokens_90.all);
  if (ls.scored) {
    const double dense = ls.dense_score / ls.scored, oracle = ls.oracle_score / ls.scored;
    stats["top2pct_quality"] = {{"value", dense > 0 ? oracle / dense : 0.0}, {"dense_score", dense},
                                {"oracle_score", oracle}, {"samples", ls.scored}};
  }
  const auto [lo, hi] = std::minmax_element(l1.all.begin(), l1.all.end());
  stats["logit_l1_spread"] = {{"value", l1.all.empty() || *lo <= 0 ? 0.0 : *hi / *lo},
                              {"min", l1.all.empty() ? 0.0 : *lo},
                              {"max", l1.all.empty() ? 0.0 : *hi},
                              {"by_role", statistic(l1.by_role, l1.all, median)["by_role"]},
                              {"note", "by role: the median L1 norm"}};
  stats["neighbour_keys"] = statistic(neighbour.by_role, neighbour.all, mean);
  stats["neighbour_keys"]["pages_open"] = statistic(pages.by_role, pages.all, mean);
  return {{"context_length", ls.context_length}, {"statistics", stats}, {"heads", heads}};
}

struct row_spec {
  const char* statistic;
  const char* published;
  const char* source;
  double low, high;  // the range; NaN: no range, reported as is
};

const row_spec kRows[] = {
    {"query_cosine", "0.9-0.975 between consecutive decode queries; retrieval-like heads less predictable",
     "TokenSelect (arXiv 2411.02886); TAPPA (arXiv 2601.21709)", 0.9, 0.975},
    {"retrieval_heads", "under 5% of heads score above 0.1 as retrieval heads (and some do)",
     "Wu et al. (arXiv 2404.15574)", 1e-9, 0.05},
    {"full_context_heads",
     "25% (MHA) to 50% (GQA) of heads need the full context (judged by a trained gate; see docs/model.md)",
     "DuoAttention (arXiv 2410.10819)", std::numeric_limits<double>::quiet_NaN(),
     std::numeric_limits<double>::quiet_NaN()},
    {"sink_heads",
     "beyond the first two layers most heads put a large share, often over half, on the first tokens (a sink head: "
     "over 0.3)",
     "StreamingLLM (arXiv 2309.17453); massive activations (arXiv 2402.17762); Gu et al. (arXiv 2410.10781)", 0.5, 1.0},
    {"top20_mass", "the top 20% of tokens often hold only 70-80% of a head's mass (\"often\": a quarter to three quarters "
     "of heads at 0.8 or less)",
     "MagicPIG (arXiv 2410.16179)", 0.25, 0.75},
    {"top2pct_quality", "under 2% of tokens keeps over 95% of task quality", "arXiv 2502.06766", 0.95,
     std::numeric_limits<double>::infinity()},
    {"logit_l1_spread", "per-head L1 norms of logits span about 3e3 to 1e6 (about 300x)",
     "TokenSelect (arXiv 2411.02886)", 100, 1000},
    {"neighbour_keys", "neighbouring keys are similar, so block-level bounds are informative", "Quest (arXiv 2406.10774)",
     std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()},
};

// Three significant digits, in plain notation from 0.001 to 9999.
std::string number(double x) {
  char buf[32];
  const double a = std::fabs(x);
  if (x != 0 && (a >= 1e4 || a < 1e-3))
    std::snprintf(buf, sizeof buf, "%.3g", x);
  else if (a >= 100)
    std::snprintf(buf, sizeof buf, "%.0f", x);
  else
    std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

std::string range_text(double low, double high) {
  if (std::isnan(low)) return "none";
  if (std::isinf(high)) return "at least " + number(low);
  if (low < 1e-6) return "above 0, at most " + number(high);
  return number(low) + "-" + number(high);
}

}  // namespace

std::string realism_verdict(double value, double low, double high) {
  if (std::isnan(low)) return "reported";
  if (value >= low && value <= high) return "inside";
  const double margin = 0.1 * (value < low ? std::fabs(low) : std::fabs(high));
  if ((value < low && value >= low - margin) || (value > high && value <= high + margin)) return "near";
  return "outside";
}

nlohmann::ordered_json measure_realism(const model& m, const tasks::task& task, const std::string& task_name,
                                       const realism_request& req) {
  const model_shape& p = m.shape();
  nlohmann::ordered_json lengths = nlohmann::ordered_json::array();
  for (const std::uint32_t length : req.context_lengths) {
    length_state ls{m, task, req, length, {}, {}, 0, {}, 0, 0, 0, 0, 0};
    ls.heads.resize(static_cast<std::size_t>(p.n_layers) * p.n_query_heads);
    ls.neighbour.resize(static_cast<std::size_t>(p.n_layers) * p.n_kv_heads);
    ls.layer_cosine.resize(p.n_layers);
    for (std::uint32_t s = 0; s < req.samples; ++s) {
      const tasks::sample smp = tasks::make_indexed_sample(task, req.seed, length, s);
      const double dense = decode_sample(ls, smp, false);
      // The oracle's quality needs the prediction the run would make: one continuation.
      if (req.oracle && smp.branches == 1 && smp.follow_ups.empty()) {
        ls.dense_score += dense;
        ls.oracle_score += decode_sample(ls, smp, true);
        ++ls.scored;
      }
    }
    lengths.push_back(summarize(ls));
  }
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const row_spec& r : kRows) {
    nlohmann::ordered_json values = nlohmann::ordered_json::object(), verdicts = nlohmann::ordered_json::object();
    for (const auto& l : lengths) {
      const auto& stats = l["statistics"];
      if (!stats.contains(r.statistic)) continue;
      const std::string key = std::to_string(l["context_length"].get<std::uint32_t>());
      const double v = stats[r.statistic]["value"].get<double>();
      values[key] = v;
      verdicts[key] = realism_verdict(v, r.low, r.high);
    }
    nlohmann::ordered_json range = nlohmann::ordered_json::array();
    if (!std::isnan(r.low)) range = {r.low, std::isinf(r.high) ? nlohmann::ordered_json() : nlohmann::ordered_json(r.high)};
    rows.push_back({{"statistic", r.statistic}, {"published", r.published}, {"source", r.source}, {"range", range},
                    {"values", values}, {"verdicts", verdicts}});
  }
  return {{"profile", p.name}, {"task", task_name}, {"samples", req.samples}, {"max_steps", req.max_steps},
          {"rows", rows}, {"lengths", lengths}};
}

std::string realism_markdown(const nlohmann::ordered_json& r) {
  std::string out = "| statistic | published (source) | range | length | this model | by head role | verdict |\n"
                    "|---|---|---|---|---|---|---|\n";
  for (const row_spec& spec : kRows)
    for (const auto& l : r["lengths"]) {
      const auto& stats = l["statistics"];
      if (!stats.contains(spec.statistic)) continue;
      const auto& s = stats[spec.statistic];
      const double v = s["value"].get<double>();
      std::string roles;
      if (s.contains("by_role"))
        for (const auto& [role, x] : s["by_role"].items())
          roles += (roles.empty() ? "" : ", ") + role + " " + number(x.get<double>());
      std::string value = number(v);
      if (std::string(spec.statistic) == "neighbour_keys")
        value = "cosine " + number(v) + "; pages open " + number(s["pages_open"]["value"].get<double>());
      else if (std::string(spec.statistic) == "top2pct_quality")
        value = number(v) + " (" + number(s["oracle_score"].get<double>()) + " of " +
                number(s["dense_score"].get<double>()) + ")";
      else if (std::string(spec.statistic) == "top20_mass")
        value = number(v) + " (median head " + number(s["median"].get<double>()) + ")";
      else if (std::string(spec.statistic) == "sink_heads")
        value = number(v) + " (over half: " + number(s["share_over_half"].get<double>()) + ")";
      else if (std::string(spec.statistic) == "logit_l1_spread")
        value = number(v) + "x (" + number(s["min"].get<double>()) + " to " + number(s["max"].get<double>()) + ")";
      out += std::string("| ") + spec.statistic + " | " + spec.published + " (" + spec.source + ") | " +
             range_text(spec.low, spec.high) + " | " + std::to_string(l["context_length"].get<std::uint32_t>()) + " | " +
             value + " | " + roles + " | " + realism_verdict(v, spec.low, spec.high) + " |\n";
    }
  return out;
}

}  // namespace attnbench
