// tokenselect: TokenSelect (arXiv 2411.02886), dynamic token-level selection. Each step
// and layer: per query head, scale * q.k over the candidate tokens (between the first
// n_init and the last n_local), softmax per head, summed over every query head of the
// layer (the soft vote), optionally max-pooled along the sequence, and one top-k shared
// by all heads of the layer. Heads attend to the first n_init tokens, the selected ones
// and the last n_local tokens; a context that fits n_init + top_k + n_local is attended
// whole. The selection cache reuses a layer's last selection while the cosine similarity
// of the layer's query (all heads' queries as one vector) to the one that selected it is
// at least cache_threshold. `selection` = hard_vote (each head's own top_k as votes) or
// topk (top-k of the summed raw logits) reproduce the paper's ablation.
// Reports reselection_rate (selections over steps that needed one) and
// k_bytes_scored_per_step (K bytes the scoring read, per planned step and layer).
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/score.hpp>
#include <attnbench/plugin-support.hpp>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using attnbench::plugin::fail;
using attnbench::plugin::guard;

enum class vote { soft, hard, topk };

struct layer_cache {
  bool valid = false;
  std::uint64_t last_n = 0;            // cache size at the previous plan of this layer
  std::uint64_t n_tokens = 0;          // cache size when selected
  std::vector<float> query;            // the selecting query, all heads
  std::vector<std::uint32_t> selected;  // candidate tokens chosen, ascending
};

struct tokenselect_policy {
  std::uint64_t n_init = 128, n_local = 512;
  std::uint32_t top_k = 2048;
  vote selection = vote::soft;
  std::uint32_t pool_kernel = 0;
  std::optional<double> cache_threshold = 0.9;
  attnbench_model_info model{};
  std::vector<layer_cache> layers;
  std::vector<float> logits, summed, pooled;
  std::vector<std::uint32_t> top, indices;
  std::vector<attnbench_plan_entry> entries;
  std::uint64_t steps_selecting = 0, selections = 0, k_bytes_scored = 0;
  std::string stats;

  // Chooses top_k of the candidates [n_init, n - n_local) into `selected`.
  attnbench_status select(const attnbench_plan_request& r, std::uint64_t n, std::vector<std::uint32_t>& selected) {
    const std::uint64_t count = n - n_local - n_init;
    const std::uint32_t nq = r.n_query_heads, group = nq / model.n_kv_heads, d = model.head_dim;
    logits.resize(static_cast<std::size_t>(nq) * count);
    // The layer's KV heads on oneTBB's threads; every sum below runs over heads in a fixed
    // order, so the selection does not depend on the thread count.
    std::vector<attnbench_status> status(model.n_kv_heads, ATTNBENCH_STATUS_OK);
    const auto dtype = static_cast<attnbench_dtype>(model.dtype);
    tbb::parallel_for(std::uint32_t{0}, model.n_kv_heads, [&](std::uint32_t h) {
      attnbench::kernels::score_args a;
      a.queries = r.queries + static_cast<std::size_t>(h) * group * d;
      a.n_query_heads = group;
      a.head_dim = d;
      a.scale = r.scale;
      a.kv = &r.kv->heads[h];
      a.block_size = model.block_size;
      a.dtype = dtype;
      a.first = n_init;
      a.count = count;
      a.out = logits.data() + static_cast<std::size_t>(h) * group * count;
      status[h] = attnbench::kernels::score_keys(a);
      if (status[h] == ATTNBENCH_STATUS_OK && selection == vote::soft)
        attnbench::kernels::softmax_rows(a.out, group, count);
    });
    for (auto st : status)
      if (st != ATTNBENCH_STATUS_OK) return fail(st, "scoring the candidates failed");
    k_bytes_scored += model.n_kv_heads * count * d * attnbench::kernels::dtype_size(dtype);
    summed.assign(count, 0.0f);
    if (selection == vote::soft || selection == vote::topk) {
      tbb::parallel_for(tbb::blocked_range<std::uint64_t>(0, count, 4096), [&](const auto& range) {
        for (std::uint32_t q = 0; q < nq; ++q) {
          const float* row = logits.data() + q * count;
          for (std::uint64_t j = range.begin(); j < range.end(); ++j) summed[j] += row[j];
        }
      });
    } else {  // hard vote: each head's own top_k, one vote each
      top.resize(top_k);
      for (std::uint32_t q = 0; q < nq; ++q) {
        attnbench::kernels::top_k(logits.data() + q * count, count, top_k, top.data());
        for (std::uint32_t i = 0; i < std::min<std::uint64_t>(top_k, count); ++i) summed[top[i]] += 1.0f;
      }
    }
    const float* scores = summed.data();
    if (pool_kernel > 1) {  // max pooling along the sequence, centred
      pooled.resize(count);
      const std::int64_t half = pool_kernel / 2;
      for (std::int64_t j = 0; j < static_cast<std::int64_t>(count); ++j) {
        float m = summed[j];
        for (std::int64_t i = std::max<std::int64_t>(0, j - half);
             i <= std::min<std::int64_t>(static_cast<std::int64_t>(count) - 1, j + half); ++i)
          m = std::max(m, summed[i]);
        pooled[j] = m;
      }
      scores = pooled.data();
    }
    const std::uint32_t k = static_cast<std::uint32_t>(std::min<std::uint64_t>(top_k, count));
    selected.resize(k);
    attnbench::kernels::top_k(scores, count, k, selected.data());
    for (auto& x : selected) x += static_cast<std::uint32_t>(n_init);
    std::sort(selected.begin(), selected.end());
    ++selections;
    return ATTNBENCH_STATUS_OK;
  }
};

attnbench_status tokenselect_create(const char* params_json, const attnbench_model_info* model, void** out) {
  return guard([&] {
    attnbench::plugin::params params(params_json);
    auto p = std::make_unique<tokenselect_policy>();
    p->n_init = static_cast<std::uint64_t>(params.integer("n_init", 128, 0, 1 << 30));
    p->top_k = static_cast<std::uint32_t>(params.integer("top_k", 2048, 1, 1 << 30));
    p->n_local = static_cast<std::uint64_t>(params.integer("n_local", 512, 1, 1 << 30));
    const std::string sel = params.string("selection", "soft_vote");
    if (sel == "soft_vote") p->selection = vote::soft;
    else if (sel == "hard_vote") p->selection = vote::hard;
    else if (sel == "topk") p->selection = vote::topk;
    else
      throw attnbench::plugin::params_error("selection: expected \"soft_vote\", \"hard_vote\" or \"topk\", got \"" +
                                            sel + "\"");
    p->pool_kernel = static_cast<std::uint32_t>(params.integer("pool_kernel", 0, 0, 1 << 16));
    if (p->pool_kernel > 1 && p->pool_kernel % 2 == 0)
      throw attnbench::plugin::params_error("pool_kernel: expected 0 (off) or an odd width, got " +
                                            std::to_string(p->pool_kernel));
    p->cache_threshold = params.number_or("cache_threshold", 0.9, "off", -1.0, 1.0);
    params.finish("tokenselect");
    p->model = *model;
    p->layers.resize(model->n_layers);
    *out = p.release();
    return ATTNBENCH_STATUS_OK;
  });
}

void tokenselect_destroy(void* instance) { delete static_cast<tokenselect_policy*>(instance); }

attnbench_status tokenselect_plan(void* instance, const attnbench_plan_request* request, attnbench_plan* out) {
  return guard([&] {
    auto* p = static_cast<tokenselect_policy*>(instance);
    const auto& kv = *request->kv;
    if (kv.n_kv_heads != p->model.n_kv_heads || request->layer >= p->model.n_layers ||
        request->n_query_heads != p->model.n_query_heads)
      return fail(ATTNBENCH_STATUS_INVALID_ARGUMENT, "request shape differs from the model given to create");
    const std::uint64_t n = kv.heads[0].n_tokens;
    for (std::uint32_t h = 1; h < kv.n_kv_heads; ++h)
      if (kv.heads[h].n_tokens != n)
        return fail(ATTNBENCH_STATUS_INVALID_ARGUMENT,
                    "every KV head of a layer must hold the same tokens (one selection serves the layer)");
    layer_cache& c = p->layers[request->layer];
    // Between two plans of a layer within a generation the cache grows by one token; any
    // other change (a new sample, a continuation cut back and regrown, a follow-up) may
    // have replaced tokens of the cached selection.
    const bool contiguous = n == c.last_n + 1 || n == c.last_n;
    c.last_n = n;
    if (n <= p->n_init + p->top_k + p->n_local) {  // the budget covers the context
      c.valid = false;
      p->entries.assign(kv.n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
      *out = attnbench_plan{ATTNBENCH_PLAN_PER_KV_HEAD, kv.n_kv_heads, p->entries.data()};
      return ATTNBENCH_STATUS_OK;
    }
    ++p->steps_selecting;
    const std::size_t qn = static_cast<std::size_t>(request->n_query_heads) * p->model.head_dim;
    const bool reuse = p->cache_threshold && c.valid && contiguous && request->step > 0 && c.n_tokens <= n &&
                       attnbench::kernels::cosine(request->queries, c.query.data(), qn) >= *p->cache_threshold;
    if (!reuse) {
      if (const auto st = p->select(*request, n, c.selected); st != ATTNBENCH_STATUS_OK) return st;
      c.valid = true;
      c.n_tokens = n;
      c.query.assign(request->queries, request->queries + qn);
    }
    p->indices.clear();
    for (std::uint64_t t = 0; t < p->n_init; ++t) p->indices.push_back(static_cast<std::uint32_t>(t));
    p->indices.insert(p->indices.end(), c.selected.begin(), c.selected.end());
    for (std::uint64_t t = n - p->n_local; t < n; ++t) p->indices.push_back(static_cast<std::uint32_t>(t));
    const attnbench_plan_entry shared{ATTNBENCH_PLAN_TOKENS, static_cast<std::uint32_t>(p->indices.size()),
                                      p->indices.data(), nullptr};
    p->entries.assign(kv.n_kv_heads, shared);
    *out = attnbench_plan{ATTNBENCH_PLAN_PER_KV_HEAD, kv.n_kv_heads, p->entries.data()};
    return ATTNBENCH_STATUS_OK;
  });
}

const char* tokenselect_stats(void* instance) {
  auto* p = static_cast<tokenselect_policy*>(instance);
  const double steps = static_cast<double>(p->steps_selecting);
  const nlohmann::json j = {
      {"reselection_rate", steps > 0 ? static_cast<double>(p->selections) / steps : 0.0},
      {"k_bytes_scored_per_step", steps > 0 ? static_cast<double>(p->k_bytes_scored) / steps : 0.0}};
  p->stats = j.dump();
  return p->stats.c_str();
}

constexpr attnbench_policy_ops kOps = {
    /*create=*/tokenselect_create,
    /*destroy=*/tokenselect_destroy,
    /*plan=*/tokenselect_plan,
    /*on_prefill=*/nullptr,
    /*stats_json=*/tokenselect_stats,
};

constexpr auto kDescriptor = attnbench::plugin::policy_descriptor(
    "tokenselect", "1.0.0",
    "TokenSelect: per layer, the top_k tokens by soft vote of per-head q.k, plus the first and last tokens", &kOps);

}  // namespace

ATTNBENCH_PLUGIN_ENTRY(kDescriptor)
