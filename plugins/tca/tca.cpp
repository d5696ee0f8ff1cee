// tca: TCA-Attention (arXiv 2512.09238), calibrated per-head budgets and eviction after
// prefill. `attnbench calibrate` writes a budgets file (per layer and KV head, the width of
// the candidate profile that keeps the fewest tokens while covering at least tau of the
// attention mass on a calibration sample); `budgets` points at it. After prefill, per KV
// head: importance s = softmax(scale * q.k) of the prompt's last query, averaged over the
// GQA group (eviction is per KV head); blocks of `block` tokens ranked by
// h = (1 - alpha) * sum(s) + alpha * (1 - sum(s^2) / sum(s)^2) keep their top tokens by s
// as the head's profile allows, and the last `window` tokens stay; every other token is
// evicted through the host's compaction. Decode then attends to all that is left.
// Left out: compressing each completed block of tokens generated during decode (answers
// here are far shorter than the window, which always keeps them).
#include <attnbench/kernels/tca-select.hpp>

#include <attnbench/kernels/score.hpp>
#include <attnbench/plugin-support.hpp>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

using attnbench::plugin::fail;
using attnbench::plugin::guard;
using attnbench::plugin::params_error;

struct tca_policy {
  attnbench::tca::selection_params sel;
  std::vector<double> widths;  // [layer][kv_head]
  attnbench_model_info model{};
  std::vector<float> logits, s;
  std::vector<std::vector<std::uint32_t>> keep;  // [kv_head]
  std::vector<attnbench_plan_entry> entries;
  double kept_tokens = 0, prompt_tokens = 0;
  std::string stats;
};

attnbench_status tca_create(const char* params_json, const attnbench_model_info* model, void** out) {
  return guard([&] {
    attnbench::plugin::params params(params_json);
    auto p = std::make_unique<tca_policy>();
    const std::string file = params.string("budgets", "");
    if (file.empty())
      throw params_error(
          "budgets: tca needs a budgets file; make one with `attnbench calibrate CONFIG --out budgets.json` "
          "and set the policy's params to {\"budgets\": \"budgets.json\"}");
    std::ifstream in(file);
    if (!in) throw params_error("budgets: cannot open '" + file + "'");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
      p->sel.block = j.at("block").get<std::uint32_t>();
      p->sel.alpha = j.at("alpha").get<double>();
      p->sel.window = j.at("window").get<std::uint64_t>();
      const auto& b = j.at("widths");
      if (b.size() != model->n_layers)
        throw params_error("budgets: '" + file + "' has " + std::to_string(b.size()) + " layers, the model " +
                           std::to_string(model->n_layers) + "; calibrate again for this profile");
      for (const auto& layer : b) {
        if (layer.size() != model->n_kv_heads)
          throw params_error("budgets: '" + file + "' has " + std::to_string(layer.size()) +
                             " KV heads per layer, the model " + std::to_string(model->n_kv_heads));
        for (const auto& w : layer) {
          const double x = w.get<double>();
          if (!(x > 0 && std::isfinite(x)))
            throw params_error("budgets: '" + file + "': every width must be a positive number, got " + w.dump());
          p->widths.push_back(x);
        }
      }
      const auto& jb = j.at("block");
      const auto& ja = j.at("alpha");
      const auto& jw = j.at("window");
      if (!jb.is_number_unsigned() || jb.get<std::uint64_t>() < 1 || jb.get<std::uint64_t>() > (1u << 20) ||
          !ja.is_number() || !(ja.get<double>() >= 0 && ja.get<double>() <= 1) || !jw.is_number_unsigned())
        throw params_error("budgets: '" + file +
                           "': block must be an integer in [1, 1048576], alpha a number in [0, 1], window a "
                           "non-negative integer");
    } catch (const nlohmann::json::exception& e) {
      throw params_error("budgets: '" + file + "' is not a budgets file from attnbench calibrate: " + e.what());
    }
    // The file's selection settings are the defaults; params may override them.
    p->sel.alpha = params.number("alpha", p->sel.alpha, 0.0, 1.0);
    p->sel.window = static_cast<std::uint64_t>(params.integer("window", static_cast<std::int64_t>(p->sel.window), 0,
                                                              std::int64_t{1} << 40));
    p->sel.block = static_cast<std::uint32_t>(params.integer("block", p->sel.block, 1, 1 << 20));
    params.finish("tca");
    p->model = *model;
    *out = p.release();
    return ATTNBENCH_STATUS_OK;
  });
}

void tca_destroy(void* instance) { delete static_cast<tca_policy*>(instance); }

attnbench_status tca_plan(void* instance, const attnbench_plan_request* request, attnbench_plan* out) {
  return guard([&] {
    auto* p = static_cast<tca_policy*>(instance);
    if (request->kv->n_kv_heads != p->model.n_kv_heads)
      return fail(ATTNBENCH_STATUS_INVALID_ARGUMENT, "KV head count differs from the model given to create");
    p->entries.assign(p->model.n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
    *out = attnbench_plan{ATTNBENCH_PLAN_PER_KV_HEAD, p->model.n_kv_heads, p->entries.data()};
    return ATTNBENCH_STATUS_OK;
  });
}

attnbench_status tca_on_prefill(void* instance, const attnbench_prefill_request* request, attnbench_plan* out_keep) {
  return guard([&] {
    auto* p = static_cast<tca_policy*>(instance);
    const auto& kv = *request->kv;
    if (kv.n_kv_heads != p->model.n_kv_heads || request->layer >= p->model.n_layers ||
        request->n_query_heads != p->model.n_query_heads)
      return fail(ATTNBENCH_STATUS_INVALID_ARGUMENT, "request shape differs from the model given to create");
    const std::uint32_t group = p->model.n_query_heads / p->model.n_kv_heads, d = p->model.head_dim;
    p->keep.resize(kv.n_kv_heads);
    p->entries.assign(kv.n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
    for (std::uint32_t h = 0; h < kv.n_kv_heads; ++h) {
      const std::uint64_t n = kv.heads[h].n_tokens;
      p->prompt_tokens += static_cast<double>(n);
      if (n <= p->sel.window) {
        p->kept_tokens += static_cast<double>(n);
        continue;
      }
      attnbench::kernels::score_args a;
      a.queries = request->last_queries + static_cast<std::size_t>(h) * group * d;
      a.n_query_heads = group;
      a.head_dim = d;
      a.scale = request->scale;
      a.kv = &kv.heads[h];
      a.block_size = kv.block_size;
      a.dtype = static_cast<attnbench_dtype>(kv.dtype);
      a.first = 0;
      a.count = n;
      p->logits.resize(static_cast<std::size_t>(group) * n);
      a.out = p->logits.data();
      if (const auto st = attnbench::kernels::score_keys(a); st != ATTNBENCH_STATUS_OK)
        return fail(st, "scoring the prompt failed");
      attnbench::kernels::softmax_rows(p->logits.data(), group, n);
      p->s.assign(n, 0.0f);
      for (std::uint32_t g = 0; g < group; ++g)
        for (std::uint64_t t = 0; t < n; ++t) p->s[t] += p->logits[g * n + t] / static_cast<float>(group);
      p->keep[h] = attnbench::tca::select(p->s.data(), n, p->widths[request->layer * kv.n_kv_heads + h], p->sel);
      p->kept_tokens += static_cast<double>(p->keep[h].size());
      p->entries[h] = attnbench_plan_entry{ATTNBENCH_PLAN_TOKENS, static_cast<std::uint32_t>(p->keep[h].size()),
                                           p->keep[h].data(), nullptr};
    }
    *out_keep = attnbench_plan{ATTNBENCH_PLAN_PER_KV_HEAD, kv.n_kv_heads, p->entries.data()};
    return ATTNBENCH_STATUS_OK;
  });
}

const char* tca_stats(void* instance) {
  auto* p = static_cast<tca_policy*>(instance);
  p->stats = nlohmann::json{{"kept_token_share", p->prompt_tokens > 0 ? p->kept_tokens / p->prompt_tokens : 0.0}}.dump();
  return p->stats.c_str();
}

constexpr attnbench_policy_ops kOps = {
    /*create=*/tca_create,
    /*destroy=*/tca_destroy,
    /*plan=*/tca_plan,
    /*on_prefill=*/tca_on_prefill,
    /*stats_json=*/tca_stats,
};

constexpr auto kDescriptor = attnbench::plugin::policy_descriptor(
    "tca", "1.0.0", "TCA-Attention: calibrated per-head budgets, blocks ranked by importance, eviction after prefill",
    &kOps);

}  // namespace

ATTNBENCH_PLUGIN_ENTRY(kDescriptor)
