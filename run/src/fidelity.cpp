#include "fidelity.hpp"

#include <attnbench/host/errors.hpp>

#include <cmath>
#include <string>

namespace attnbench {

fidelity_probe::fidelity_probe(const attnbench::model& m, std::span<const tasks::token> prompt,
                               kernels::kv_cache& policy_cache, bool evicted)
    : model_(m), cache_(&policy_cache) {
  const model_shape& p = m.shape();
  const std::size_t hq = p.n_query_heads, d = p.head_dim;
  if (evicted) {
    own_.emplace(p.n_layers, p.n_kv_heads, p.head_dim, policy_cache.block_size(), policy_cache.dtype());
    own_seq_ = m.start_sequence(prompt, *own_);
    cache_ = &*own_;
    own_queries_.resize(hq * d);
  }
  lse_.resize(hq);
  dense_lse_.resize(hq);
  dense_out_.resize(hq * d);
  counters_.resize(hq);
  all_.assign(p.n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
  recall_.resize(hq);
  error_.resize(hq);
}

void fidelity_probe::append(std::span<const tasks::token> tokens) {
  if (own_seq_) own_seq_->append(tokens);
}

void fidelity_probe::truncate(std::size_t n) {
  if (own_seq_) own_seq_->truncate(n);
}

void fidelity_probe::measure(std::uint32_t layer, const float* queries, const float* policy_out) {
  const model_shape& p = model_.shape();
  const std::uint32_t hq = p.n_query_heads, d = p.head_dim;
  // The interface lets a model write appended tokens' K/V as late as queries(layer).
  if (own_seq_) own_seq_->queries(layer, own_queries_.data());
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
