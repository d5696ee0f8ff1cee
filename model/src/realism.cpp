#include "realism-internal.hpp"

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/score.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace attnbench {

using realism_detail::head_sums;
using realism_detail::length_state;

namespace {

// The definitions' constants (docs/model.md, "Realism", says where each comes from).
constexpr std::size_t kSinkTokens = 4;       // StreamingLLM keeps four initial tokens
constexpr std::size_t kStreamSink = 64;      // a streaming head: the first 64 tokens ...
constexpr std::size_t kStreamRecent = 256;   // ... and the last 256
constexpr std::size_t kPage = 16;            // Quest's page
constexpr double kTopShare = 0.2;            // MagicPIG's top 20%
constexpr double kOracleShare = 0.02;        // arXiv 2502.06766: under 2% of the tokens

// One query head's measures at one step.
struct head_step {
  double first_mass = 0, top_mass = 0, tokens_90 = 0, l1 = 0, stream_change = 0, out_norm = 0, pages_open = 0;
  std::size_t argmax = 0;
};


// Scratch of one KV head's analysis.
struct scratch {
  std::vector<float> keys, values, logits, page_min, page_max;
  std::vector<double> probs, sorted, out, stream;
  std::vector<std::uint32_t> order;
};

void read_rows(const void* const* blocks, std::size_t n, std::uint32_t d, std::uint32_t block_size, attnbench_dtype dtype,
               std::vector<float>& rows) {
  rows.resize(n * d);
  for (std::size_t start = 0; start < n; start += block_size)
    kernels::to_fp32(dtype, static_cast<const std::byte*>(blocks[start / block_size]), &rows[start * d],
                     std::min<std::size_t>(block_size, n - start) * d);
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

// Quest's per-channel key bounds of each 16-token page.
void page_bounds(scratch& s, std::size_t n, std::uint32_t d) {
  const std::size_t pages = (n + kPage - 1) / kPage;
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

// The oracle's tokens for one head: its exact top 2% by logit, in cache order.
void oracle_tokens(const float* logits, std::size_t n, std::vector<std::uint32_t>& idx) {
  const std::size_t k = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(kOracleShare * n)));
  idx.resize(k);
  kernels::top_k(logits, n, static_cast<std::uint32_t>(k), idx.data());
  std::sort(idx.begin(), idx.end());
}

// How much the head's output changes when only the first 64 and last 256 tokens are
// kept (renormalised), and the dense output's norm.
void streaming_change(scratch& s, std::size_t n, std::uint32_t d, head_step& st) {
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
}

// One head's measures from its logits (s.logits, best `top`): mass on the first tokens,
// the streaming change, the top 20%'s mass, tokens for 90%, and the pages Quest's bound
// cannot rule out (those whose bound reaches the best logit).
void measure_head(scratch& s, const float* logits, const float* q, std::size_t n, std::uint32_t d, float scale,
                  float top, head_step& st) {
  double z = 0;
  for (std::size_t t = 0; t < n; ++t) z += (s.probs[t] = std::exp(static_cast<double>(logits[t] - top)));
  for (auto& p : s.probs) p /= z;
  for (std::size_t t = 0; t < std::min(n, kSinkTokens); ++t) st.first_mass += s.probs[t];
  streaming_change(s, n, d, st);
  std::vector<double>& sorted = s.sorted;
  sorted.assign(s.probs.begin(), s.probs.end());
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  const auto top_n = static_cast<std::size_t>(std::ceil(kTopShare * static_cast<double>(n)));
  st.top_mass = std::accumulate(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(top_n), 0.0);
  double covered = 0;
  std::size_t k = 0;
  while (k < n && covered < 0.9) covered += sorted[k++];
  st.tokens_90 = static_cast<double>(k);
  const std::size_t pages = (n + kPage - 1) / kPage;
  std::size_t open = 0;
  for (std::size_t pg = 0; pg < pages; ++pg) {
    if (scale * kernels::key_range_bound(q, &s.page_min[pg * d], &s.page_max[pg * d], d) >= top) ++open;
  }
  st.pages_open = static_cast<double>(open) / static_cast<double>(pages);
}

// Every query head of one layer: logits over the whole cache, the measures, and the
// oracle's top tokens.
void analyse_layer(const layer_args& a) {
  const std::uint32_t d = a.head_dim, hkv = a.view->n_kv_heads, group = a.n_query_heads / hkv;
  tbb::parallel_for(std::uint32_t{0}, hkv, [&](std::uint32_t h) {
    thread_local scratch s;
    const attnbench_kv_head_view& hv = a.view->heads[h];
    const std::size_t n = hv.n_tokens;
    if (n == 0) return;
    if (a.measure || a.neighbours) read_rows(hv.key_blocks, n, d, a.block_size, a.dtype, s.keys);
    if (a.measure) {
      read_rows(hv.value_blocks, n, d, a.block_size, a.dtype, s.values);
      page_bounds(s, n, d);
    }
    if (a.neighbours) {
      double sum = 0;
      std::size_t count = 0;
      for (std::size_t t = 1; t + 1 < n; ++t, ++count) sum += kernels::cosine(&s.keys[t * d], &s.keys[(t + 1) * d], d);
      (*a.neighbour)[h] = count ? sum / static_cast<double>(count) : 0.0;
    }
    // The group's logits over the whole cache, as a token-level policy scores them.
    s.logits.resize(group * n);
    s.probs.resize(n);
    kernels::score_args sa;
    sa.queries = a.queries + static_cast<std::size_t>(h) * group * d;
    sa.n_query_heads = group;
    sa.head_dim = d;
    sa.scale = a.scale;
    sa.kv = &hv;
    sa.block_size = a.block_size;
    sa.dtype = a.dtype;
    sa.count = n;
    sa.out = s.logits.data();
    if (kernels::score_keys(sa) != ATTNBENCH_STATUS_OK) throw std::runtime_error("realism: score_keys refused its arguments");
    for (std::uint32_t g = 0; g < group; ++g) {
      const std::uint32_t qh = h * group + g;
      const float* logits = &s.logits[g * n];
      if (a.top) oracle_tokens(logits, n, (*a.top)[qh]);
      if (!a.measure) continue;
      head_step& st = (*a.steps)[qh];
      st = {};
      st.argmax = static_cast<std::size_t>(std::max_element(logits, logits + n) - logits);
      for (std::size_t t = 0; t < n; ++t) st.l1 += std::fabs(static_cast<double>(logits[t]));
      measure_head(s, logits, sa.queries + static_cast<std::size_t>(g) * d, n, d, a.scale, logits[st.argmax], st);
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

// One sample's decode: its cache, sequence and the buffers of a step.
struct sample_decode {
  sample_decode(const length_state& ls, const tasks::sample& smp)
      : shape(ls.m.shape()),
        cache(shape.n_layers, shape.n_kv_heads, shape.head_dim, ls.req.block_size, ls.req.dtype),
        seq(ls.m.start_sequence(smp.prompt, cache)),
        queries(static_cast<std::size_t>(shape.n_query_heads) * shape.head_dim),
        outputs(queries.size()),
        previous(shape.n_layers * queries.size()),
        steps(shape.n_query_heads),
        argmax(static_cast<std::size_t>(shape.n_layers) * shape.n_query_heads),
        neighbour(shape.n_kv_heads),
        top(shape.n_query_heads),
        counters(shape.n_query_heads) {}
  const model_shape& shape;
  kernels::kv_cache cache;
  std::unique_ptr<model_sequence> seq;
  std::vector<float> queries, outputs, previous;  // previous: [layer][query_head][head_dim], the last step's
  std::vector<head_step> steps;
  std::vector<std::size_t> argmax;                // [layer][query_head]
  std::vector<double> neighbour;
  std::vector<std::vector<std::uint32_t>> top;
  std::vector<attnbench_plan_entry> entries;
  std::vector<kernels::decode_counters> counters;
};

// Adds one measured layer of one step to the length's sums.
void accumulate_layer(length_state& ls, sample_decode& sd, std::uint32_t layer, std::uint32_t step) {
  const std::uint32_t d = sd.shape.head_dim, hq = sd.shape.n_query_heads, hkv = sd.shape.n_kv_heads;
  double mean_norm = 0;
  for (const auto& st : sd.steps) mean_norm += st.out_norm / hq;
  for (std::uint32_t qh = 0; qh < hq; ++qh) {
    head_sums& hs = ls.heads[static_cast<std::size_t>(layer) * hq + qh];
    const head_step& st = sd.steps[qh];
    hs.first_mass += st.first_mass;
    hs.top_mass += st.top_mass;
    hs.tokens_90 += st.tokens_90;
    hs.l1 += st.l1;
    hs.stream_change += mean_norm > 0 ? st.stream_change / mean_norm : 0.0;
    hs.pages_open += st.pages_open;
    ++hs.n;
    sd.argmax[static_cast<std::size_t>(layer) * hq + qh] = st.argmax;
    const float* prev = &sd.previous[(static_cast<std::size_t>(layer) * hq + qh) * d];
    if (step > 0) {
      hs.cosine += kernels::cosine(prev, &sd.queries[static_cast<std::size_t>(qh) * d], d);
      ++hs.n_cosine;
    }
  }
  float* prev_layer = &sd.previous[static_cast<std::size_t>(layer) * hq * d];
  if (step > 0) ls.layer_cosine[layer] += kernels::cosine(prev_layer, sd.queries.data(), sd.queries.size());
  std::copy(sd.queries.begin(), sd.queries.end(), prev_layer);
  if (step == 0)
    for (std::uint32_t h = 0; h < hkv; ++h) ls.neighbour[static_cast<std::size_t>(layer) * hkv + h] += sd.neighbour[h];
}

// Attends one layer densely, or over each head's oracle tokens, and folds the outputs.
void attend_layer(const length_state& ls, sample_decode& sd, std::uint32_t layer, bool oracle) {
  const std::uint32_t hq = sd.shape.n_query_heads;
  sd.entries.assign(oracle ? hq : sd.shape.n_kv_heads, {ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
  if (oracle)
    for (std::uint32_t qh = 0; qh < hq; ++qh)
      sd.entries[qh] = {ATTNBENCH_PLAN_TOKENS, static_cast<std::uint32_t>(sd.top[qh].size()), sd.top[qh].data(), nullptr};
  const attnbench_plan plan{oracle ? ATTNBENCH_PLAN_PER_QUERY_HEAD : ATTNBENCH_PLAN_PER_KV_HEAD,
                            static_cast<std::uint32_t>(sd.entries.size()), sd.entries.data()};
  kernels::layer_decode_args da;
  da.queries = sd.queries.data();
  da.n_query_heads = hq;
  da.scale = ls.m.scale();
  da.kv = &sd.cache.layer_view(layer);
  da.plan = &plan;
  da.out = sd.outputs.data();
  kernels::decode_error error;
  if (kernels::decode_layer(da, sd.counters.data(), &error) != ATTNBENCH_STATUS_OK)
    throw std::runtime_error("realism: the decode kernel refused a plan: " + error.message);
  sd.seq->fold(layer, sd.outputs.data());
}

// Wu et al.'s retrieval score: a head copies when the token generated is in a needle and
// the head's most attended token is that token, inside the needle.
void count_copies(length_state& ls, const sample_decode& sd, const std::vector<std::pair<std::size_t, std::size_t>>& spans,
                  tasks::token next) {
  const auto tokens = sd.seq->tokens();
  bool chance = false;
  for (const auto& [first, end] : spans)
    for (std::size_t t = first; t < end && t < tokens.size(); ++t) chance = chance || tokens[t] == next;
  if (!chance) return;
  ++ls.copy_chances;
  for (std::size_t i = 0; i < sd.argmax.size(); ++i) {
    const std::size_t j = sd.argmax[i];
    for (const auto& [first, end] : spans)
      if (j >= first && j < end && tokens[j] == next) {
        ++ls.heads[i].copies;
        break;
      }
  }
}

// Decodes one sample greedily (one continuation) with dense attention, measuring the
// first max_steps steps, or with the oracle's top 2%; returns the task's score.
double decode_sample(length_state& ls, const tasks::sample& smp, bool oracle) {
  sample_decode sd(ls, smp);
  const model_shape& p = sd.shape;
  const auto spans = needle_spans(smp);
  std::vector<tasks::token> generated;
  for (std::uint32_t step = 0; step < smp.max_new_tokens; ++step) {
    const bool measure = !oracle && step < ls.req.max_steps;
    for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
      sd.seq->queries(layer, sd.queries.data());
      if (measure || oracle)
        analyse_layer({&sd.cache.layer_view(layer), sd.queries.data(), p.n_query_heads, p.head_dim, ls.req.block_size,
                       ls.req.dtype, ls.m.scale(), measure, measure && step == 0, &sd.steps, &sd.neighbour,
                       oracle ? &sd.top : nullptr});
      if (measure) accumulate_layer(ls, sd, layer, step);
      attend_layer(ls, sd, layer, oracle);
    }
    if (measure && step == 0) ++ls.neighbour_n;
    if (measure && step > 0) ++ls.layer_cosine_n;
    const tasks::token next = sd.seq->read_out(1).front().token;
    if (measure) count_copies(ls, sd, spans, next);
    if (std::find(smp.stop_tokens.begin(), smp.stop_tokens.end(), next) != smp.stop_tokens.end()) break;
    generated.push_back(next);
    const tasks::token one[] = {next};
    sd.seq->append(one);
  }
  return ls.task.score(tasks::vocabulary::standard().detokenize(generated), smp.references);
}

}  // namespace

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
    lengths.push_back(realism_detail::summarize(ls));
  }
  return {{"profile", p.name}, {"task", task_name}, {"samples", req.samples}, {"max_steps", req.max_steps},
          {"rows", realism_detail::realism_rows(lengths)}, {"lengths", lengths}};
}

}  // namespace attnbench
