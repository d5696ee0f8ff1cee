// quest: Quest (Tang et al., arXiv 2406.10774), query-aware page selection. The cache is
// cut into pages of page_size tokens with per-channel key minimum and maximum; for each
// query head a page's upper bound on q.k is sum_i max(q_i min_i, q_i max_i), and the
// head attends to the pages with the highest bounds, `budget` tokens' worth of them.
// The first `dense_layers` layers attend densely (the paper leaves its first two layers
// dense). Quest selects per query head (its models are multi-head); with
// granularity = "kv_head" a GQA group shares one selection, by the largest bound over
// the group. Page metadata is built after prefill (one pass over the prompt's keys)
// and extended as tokens are appended; with page_size equal to the cache's block size it
// is the cache's own block metadata.
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/score.hpp>
#include <attnbench/plugin-support.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace {

using attnbench::plugin::fail;
using attnbench::plugin::guard;

struct page_table {
  std::uint64_t tokens = 0;  // tokens folded in
  std::vector<float> kmin, kmax;  // [pages * head_dim]
};

struct quest_policy {
  std::uint32_t page_size = 16;
  std::uint64_t budget = 2048;
  std::uint32_t dense_layers = 2;
  bool per_kv_head = false;
  attnbench_model_info model{};
  std::vector<page_table> pages;  // [layer][kv_head]
  std::vector<float> row;         // one key in fp32
  std::vector<float> bound;       // [pages] for one head
  std::vector<std::uint32_t> order;
  std::vector<std::uint32_t> indices;
  std::vector<attnbench_plan_entry> entries;
  std::uint64_t steps = 0, pages_scored = 0, pages_selected = 0;
  std::string stats;

  page_table& table(std::uint32_t layer, std::uint32_t kv_head) {
    return pages[static_cast<std::size_t>(layer) * model.n_kv_heads + kv_head];
  }

  // Brings one head's page metadata up to the cache. Called at every step of a sparse
  // layer, so between calls the cache grows by one token; any other change (a
  // continuation cut back and regrown, a follow-up appended) may have replaced tokens
  // already folded, so the head is refolded from the start.
  void sync(page_table& t, const attnbench_kv_head_view& v) {
    const std::size_t d = model.head_dim;
    if (v.n_tokens != t.tokens && v.n_tokens != t.tokens + 1) t.tokens = 0;
    const std::uint64_t n_pages = (v.n_tokens + page_size - 1) / page_size;
    t.kmin.resize(n_pages * d);
    t.kmax.resize(n_pages * d);
    for (std::uint64_t pg = (t.tokens + page_size - 1) / page_size; pg < n_pages; ++pg) {  // pages not begun
      std::fill_n(&t.kmin[pg * d], d, std::numeric_limits<float>::infinity());
      std::fill_n(&t.kmax[pg * d], d, -std::numeric_limits<float>::infinity());
    }
    const auto dtype = static_cast<attnbench_dtype>(model.dtype);
    const std::size_t row_bytes = d * attnbench::kernels::dtype_size(dtype);
    row.resize(d);
    for (std::uint64_t tok = t.tokens; tok < v.n_tokens; ++tok) {
      const auto* block = static_cast<const std::uint8_t*>(v.key_blocks[tok / model.block_size]);
      attnbench::kernels::to_fp32(dtype, block + (tok % model.block_size) * row_bytes, row.data(), d);
      float* mn = &t.kmin[tok / page_size * d];
      float* mx = &t.kmax[tok / page_size * d];
      for (std::size_t i = 0; i < d; ++i) {
        mn[i] = std::min(mn[i], row[i]);
        mx[i] = std::max(mx[i], row[i]);
      }
    }
    t.tokens = v.n_tokens;
  }

  // Page bounds of nq query heads (rows of queries), one pass over the metadata for all
  // of them: bound[g * n_pages + page].
  void bounds(const float* kmin, const float* kmax, std::uint64_t n_pages, const float* queries, std::uint32_t nq) {
    const std::size_t d = model.head_dim;
    bound.resize(nq * n_pages);
    for (std::uint64_t pg = 0; pg < n_pages; ++pg)
      for (std::uint32_t g = 0; g < nq; ++g)
        bound[g * n_pages + pg] =
            attnbench::kernels::key_range_bound(queries + static_cast<std::size_t>(g) * d, kmin + pg * d, kmax + pg * d, d);
  }

  // The largest bound over a group's heads, per page, into the first n_pages of bound.
  void group_max(std::uint64_t n_pages, std::uint32_t nq) {
    for (std::uint32_t g = 1; g < nq; ++g)
      for (std::uint64_t pg = 0; pg < n_pages; ++pg) bound[pg] = std::max(bound[pg], bound[g * n_pages + pg]);
  }

  // Appends the tokens of the top pages by bounds[0, n_pages), in cache order; returns
  // how many tokens.
  std::uint32_t select(const float* b, std::uint64_t n_tokens, std::uint64_t n_pages) {
    const std::uint64_t keep = std::min<std::uint64_t>(n_pages, (budget + page_size - 1) / page_size);
    order.resize(n_pages);
    std::iota(order.begin(), order.end(), 0u);
    std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                     [&](std::uint32_t x, std::uint32_t y) { return b[x] > b[y] || (b[x] == b[y] && x < y); });
    std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep));
    std::uint32_t count = 0;
    for (std::uint64_t i = 0; i < keep; ++i) {
      const std::uint64_t start = static_cast<std::uint64_t>(order[i]) * page_size;
      const std::uint64_t end = std::min<std::uint64_t>(start + page_size, n_tokens);
      for (std::uint64_t tok = start; tok < end; ++tok) indices.push_back(static_cast<std::uint32_t>(tok));
      count += static_cast<std::uint32_t>(end - start);
    }
    pages_scored += n_pages;
    pages_selected += keep;
    return count;
  }
};

attnbench_status quest_create(const char* params_json, const attnbench_model_info* model, void** out) {
  return guard([&] {
    attnbench::plugin::params params(params_json);
    auto p = std::make_unique<quest_policy>();
    p->page_size = static_cast<std::uint32_t>(params.integer("page_size", 16, 1, 1 << 20));
    p->budget = static_cast<std::uint64_t>(params.integer("budget", 2048, 1, std::int64_t{1} << 40));
    p->dense_layers = static_cast<std::uint32_t>(params.integer("dense_layers", 2, 0, 1 << 20));
    const std::string granularity = params.string("granularity", "query_head");
    if (granularity != "query_head" && granularity != "kv_head")
      throw attnbench::plugin::params_error("granularity: expected \"query_head\" or \"kv_head\", got \"" +
                                            granularity + "\"");
    p->per_kv_head = granularity == "kv_head";
    params.finish("quest");
    p->model = *model;
    p->pages.resize(static_cast<std::size_t>(model->n_layers) * model->n_kv_heads);
    *out = p.release();
    return ATTNBENCH_STATUS_OK;
  });
}

void quest_destroy(void* instance) { delete static_cast<quest_policy*>(instance); }

attnbench_status quest_plan(void* instance, const attnbench_plan_request* request, attnbench_plan* out) {
  return guard([&] {
    auto* p = static_cast<quest_policy*>(instance);
    const auto& kv = *request->kv;
    if (kv.n_kv_heads != p->model.n_kv_heads || request->layer >= p->model.n_layers ||
        request->n_query_heads != p->model.n_query_heads)
      return fail(ATTNBENCH_STATUS_INVALID_ARGUMENT, "request shape differs from the model given to create");
    const std::uint32_t group = p->model.n_query_heads / p->model.n_kv_heads;
    const std::uint32_t n_entries = p->per_kv_head ? p->model.n_kv_heads : p->model.n_query_heads;
    p->entries.assign(n_entries, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
    *out = attnbench_plan{p->per_kv_head ? ATTNBENCH_PLAN_PER_KV_HEAD : ATTNBENCH_PLAN_PER_QUERY_HEAD, n_entries,
                          p->entries.data()};
    if (request->layer < p->dense_layers) return ATTNBENCH_STATUS_OK;
    ++p->steps;
    p->indices.clear();
    std::vector<std::pair<std::size_t, std::uint32_t>> spans(n_entries, {0, 0});  // offset, count
    for (std::uint32_t h = 0; h < kv.n_kv_heads; ++h) {
      const auto& v = kv.heads[h];
      page_table& t = p->table(request->layer, h);
      const bool own_pages = p->page_size != kv.block_size;
      if (own_pages) p->sync(t, v);  // every step, so that it sees each appended token
      if (v.n_tokens <= p->budget) continue;  // the budget covers the head: dense
      const float *kmin, *kmax;
      std::uint64_t n_pages;
      if (!own_pages) {
        kmin = v.key_min;
        kmax = v.key_max;
        n_pages = v.n_blocks;
      } else {
        kmin = t.kmin.data();
        kmax = t.kmax.data();
        n_pages = (v.n_tokens + p->page_size - 1) / p->page_size;
      }
      p->bounds(kmin, kmax, n_pages, request->queries + static_cast<std::size_t>(h) * group * p->model.head_dim, group);
      if (p->per_kv_head) {
        p->group_max(n_pages, group);
        const std::size_t at = p->indices.size();
        spans[h] = {at, p->select(p->bound.data(), v.n_tokens, n_pages)};
      } else {
        for (std::uint32_t g = 0; g < group; ++g) {
          const std::size_t at = p->indices.size();
          spans[h * group + g] = {at, p->select(p->bound.data() + g * n_pages, v.n_tokens, n_pages)};
        }
      }
    }
    // Pointers only now: indices may have moved while it grew.
    for (std::uint32_t e = 0; e < n_entries; ++e)
      if (spans[e].second > 0)
        p->entries[e] = attnbench_plan_entry{ATTNBENCH_PLAN_TOKENS, spans[e].second, p->indices.data() + spans[e].first,
                                             nullptr};
    return ATTNBENCH_STATUS_OK;
  });
}

attnbench_status quest_on_prefill(void* instance, const attnbench_prefill_request* request, attnbench_plan* out_keep) {
  return guard([&] {
    auto* p = static_cast<quest_policy*>(instance);
    const auto& kv = *request->kv;
    if (kv.n_kv_heads != p->model.n_kv_heads || request->layer >= p->model.n_layers)
      return fail(ATTNBENCH_STATUS_INVALID_ARGUMENT, "request shape differs from the model given to create");
    // A new prompt: build this layer's page metadata from scratch (Quest's prefill step).
    if (request->layer >= p->dense_layers && p->page_size != kv.block_size)
      for (std::uint32_t h = 0; h < kv.n_kv_heads; ++h) {
        page_table& t = p->table(request->layer, h);
        t.tokens = 0;
        p->sync(t, kv.heads[h]);
      }
    p->entries.assign(kv.n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
    *out_keep = attnbench_plan{ATTNBENCH_PLAN_PER_KV_HEAD, kv.n_kv_heads, p->entries.data()};
    return ATTNBENCH_STATUS_OK;
  });
}

const char* quest_stats(void* instance) {
  auto* p = static_cast<quest_policy*>(instance);
  const double share = p->pages_scored ? static_cast<double>(p->pages_selected) / p->pages_scored : 0.0;
  p->stats = "{\"pages_selected_share\": " + std::to_string(share) + "}";
  return p->stats.c_str();
}

constexpr attnbench_policy_ops kOps = {
    /*create=*/quest_create,
    /*destroy=*/quest_destroy,
    /*plan=*/quest_plan,
    /*on_prefill=*/quest_on_prefill,
    /*stats_json=*/quest_stats,
};

constexpr auto kDescriptor = attnbench::plugin::policy_descriptor(
    "quest", "1.0.0",
    "Quest: per head, the pages with the highest upper bound of q.k, budget tokens' worth", &kOps);

}  // namespace

ATTNBENCH_PLUGIN_ENTRY(kDescriptor)
