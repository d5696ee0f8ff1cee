#include "fidelity.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/kernels/dtype.hpp>

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace attnbench {

fidelity_probe::fidelity_probe(const attnbench::model& m, std::span<const tasks::token> prompt,
                               kernels::kv_cache& policy_cache, bool evicted)
    : model_(m), policy_cache_(&policy_cache), cache_(&policy_cache), tokens_(prompt.size()) {
  const model_shape& p = m.shape();
  const std::size_t hq = p.n_query_heads, d = p.head_dim;
  if (evicted) {
    own_.emplace(p.n_layers, p.n_kv_heads, p.head_dim, policy_cache.block_size(), policy_cache.dtype());
    m.start_sequence(prompt, *own_);  // the prompt's K/V; the sequence itself is not kept
    cache_ = &*own_;
  }
  lse_.resize(hq);
  dense_lse_.resize(hq);
  dense_out_.resize(hq * d);
  counters_.resize(hq);
  all_.assign(p.n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
  recall_.resize(hq);
  error_.resize(hq);
}

void fidelity_probe::append(std::span<const tasks::token> tokens) { tokens_ += tokens.size(); }

void fidelity_probe::truncate(std::size_t n) {
  tokens_ = n;
  if (own_) own_->truncate(n);
}

void fidelity_probe::copy_new_tokens(std::uint32_t layer) {
  const attnbench_kv_layer_view& from = policy_cache_->layer_view(layer);
  const std::size_t d = from.head_dim, row = d * kernels::dtype_size(static_cast<attnbench_dtype>(from.dtype));
  for (std::uint32_t h = 0; h < from.n_kv_heads; ++h) {
    const std::uint64_t have = own_->n_tokens(layer, h);
    if (have >= tokens_) continue;
    const std::uint64_t need = tokens_ - have;
    const attnbench_kv_head_view& v = from.heads[h];
    auto not_newest = [&] {
      return std::runtime_error("fidelity: the policy's cache of layer " + std::to_string(layer) +
                                " does not end with the sequence's newest tokens (did the policy evict them?)");
    };
    if (need > v.n_tokens) throw not_newest();
    keys_.resize(need * d);
    values_.resize(need * d);
    std::vector<std::int64_t> positions(need);
    for (std::uint64_t i = 0; i < need; ++i) {
      const std::uint64_t at = v.n_tokens - need + i;  // the newest tokens are the last ones
      positions[i] = static_cast<std::int64_t>(have + i);
      const std::int64_t held = v.positions ? v.positions[at] : static_cast<std::int64_t>(at);
      if (held != positions[i]) throw not_newest();
      const auto* k = static_cast<const std::byte*>(v.key_blocks[at / from.block_size]) + (at % from.block_size) * row;
      const auto* val = static_cast<const std::byte*>(v.value_blocks[at / from.block_size]) + (at % from.block_size) * row;
      kernels::to_fp32(static_cast<attnbench_dtype>(from.dtype), k, keys_.data() + i * d, d);
      kernels::to_fp32(static_cast<attnbench_dtype>(from.dtype), val, values_.data() + i * d, d);
    }
    own_->append(layer, h, need, positions.data(), keys_.data(), values_.data());
  }
}

void fidelity_probe::measure(std::uint32_t layer, const float* queries, const float* policy_out) {
  const model_shape& p = model_.shape();
  const std::uint32_t hq = p.n_query_heads, d = p.head_dim;
  // The interface lets a model write appended tokens' K/V as late as queries(layer).
  if (own_) copy_new_tokens(layer);
  const attnbench_plan plan{ATTNBENCH_PLAN_PER_KV_HEAD, p.n_kv_heads, all_.data()};
  kernels::layer_decode_args a;
  a.queries = queries;
  a.n_query_heads = hq;
  a.scale = model_.scale();
  a.kv = &cache_->layer_view(layer);
  a.plan = &plan;
  a.out = dense_out_.data();
  a.lse = dense_lse_.data();
  kernels::decode_error error;
  if (kernels::decode_layer(a, counters_.data(), &error) != ATTNBENCH_STATUS_OK)
    throw std::runtime_error("fidelity: dense decode failed at layer " + std::to_string(layer) + ": " + error.message);
  for (std::uint32_t h = 0; h < hq; ++h) {
    // Both traversals score the same keys with the same query, so the ratio of their
    // softmax denominators is the dense mass the policy's tokens hold.
    recall_[h] = std::isfinite(lse_[h]) ? std::min(1.0, std::exp(double(lse_[h]) - double(dense_lse_[h]))) : 0.0;
    double diff = 0, norm = 0;
    for (std::uint32_t i = 0; i < d; ++i) {
      const double o = dense_out_[std::size_t{h} * d + i], x = policy_out[std::size_t{h} * d + i];
      diff += (x - o) * (x - o);
      norm += o * o;
    }
    error_[h] = norm > 0 ? std::sqrt(diff / norm) : (diff > 0 ? 1.0 : 0.0);
  }
}

void fidelity_probe::add_to(std::uint32_t layer, fidelity_totals& t) const {
  const model_shape& p = model_.shape();
  const std::uint32_t group = p.n_query_heads / p.n_kv_heads;
  for (std::uint32_t h = 0; h < p.n_query_heads; ++h) t.add(layer, p.roles[layer][h / group], recall_[h], error_[h]);
}

}  // namespace attnbench
