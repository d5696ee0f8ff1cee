// A sequence of the trained model: the current token's residual stream carried through a
// decode step layer by layer (trained.hpp has the protocol).
#include <attnbench/model/trained.hpp>

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace attnbench {

namespace {

class trained_sequence final : public model_sequence {
 public:
  trained_sequence(const trained_model& m, std::span<const tasks::token> prompt, kernels::kv_cache& cache)
      : model_(m), cache_(cache), tokens_(prompt.begin(), prompt.end()) {
    const auto& a = m.architecture();
    x_.resize(a.dim);
    q_.resize(std::size_t{a.n_heads} * a.head_dim);
    k_.resize(std::size_t{a.n_kv_heads} * a.head_dim);
    v_.resize(k_.size());
    attention_.resize(q_.size());
    counters_.resize(a.n_kv_heads);
    all_.assign(a.n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
    if (tokens_.empty()) throw std::invalid_argument("trained model: a sequence needs at least one prompt token");
    m.forward(tokens_, &cache_);
    kv_layers_ = a.n_layers;
  }

  std::span<const tasks::token> tokens() const override { return tokens_; }

  void append(std::span<const tasks::token> tokens) override {
    for (tasks::token t : tokens) {
      complete();  // the token before needs its K/V in every layer
      tokens_.push_back(t);
      kv_layers_ = 0;
      started_ = false;
    }
  }

  void truncate(std::size_t n) override {
    if (n == 0 || n > tokens_.size()) throw std::invalid_argument("trained model: truncate to " + std::to_string(n));
    if (n == tokens_.size()) return;
    cache_.truncate(n);  // every token before the current one has its K/V in every layer
    tokens_.resize(n);
    kv_layers_ = model_.architecture().n_layers;  // it was followed by tokens: complete
    started_ = false;
  }

  void queries(std::uint32_t layer, float* out) override {
    advance_to(layer);
    project(layer);
    std::copy(q_.begin(), q_.end(), out);
  }

  void fold(std::uint32_t layer, const float* outputs) override {
    if (!started_ || at_ != layer) throw std::logic_error("trained model: fold(" + std::to_string(layer) + ") out of order");
    model_.fold(layer, outputs, x_.data());
    at_ = layer + 1;
  }

  std::vector<readout_candidate> read_out(std::size_t k) override {
    advance_to(model_.architecture().n_layers);
    const auto& vocab = tasks::vocabulary::standard();
    logits_.resize(vocab.size());
    model_.logits(x_.data(), logits_.data());
    // Logits relative to the mean of the ordinary tokens', so that the engine's branch
    // test (a runner-up's share of the best) reads them as amplitudes over the crowd.
    double sum = 0, sum2 = 0, n = 0;
    std::vector<tasks::token>& order = order_;
    order.clear();
    for (std::size_t t = 0; t < vocab.size(); ++t) {
      if (vocab.is_special(static_cast<tasks::token>(t))) continue;
      sum += logits_[t];
      sum2 += double(logits_[t]) * logits_[t];
      n += 1;
      order.push_back(static_cast<tasks::token>(t));
    }
    const double mean = sum / n, sd = std::sqrt(std::max(0.0, sum2 / n - mean * mean));
    k = std::min(k, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](tasks::token a, tasks::token b) { return logits_[a] > logits_[b] || (logits_[a] == logits_[b] && a < b); });
    std::vector<readout_candidate> out;
    for (std::size_t i = 0; i < k; ++i)
      out.push_back({order[i], static_cast<float>(logits_[order[i]] - mean), static_cast<float>(sd)});
    return out;
  }

 private:
  std::int64_t position() const { return static_cast<std::int64_t>(tokens_.size()) - 1; }

  // q, k, v of the current token at `layer` from x_ (the layer's input); K/V go into the
  // cache unless an earlier pass over this token put them there.
  void project(std::uint32_t layer) {
    model_.project(layer, x_.data(), position(), q_.data(), k_.data(), v_.data());
    if (kv_layers_ != layer) return;
    const std::uint32_t hd = model_.architecture().head_dim;
    const std::int64_t pos = position();
    for (std::uint32_t h = 0; h < model_.architecture().n_kv_heads; ++h)
      cache_.append(layer, h, 1, &pos, k_.data() + std::size_t{h} * hd, v_.data() + std::size_t{h} * hd);
    kv_layers_ = layer + 1;
  }

  // Brings x_ to the input of `layer`: from the embedding when no step is under way (or
  // the caller went back), then every layer the caller did not fold attended densely
  // over the cache.
  void advance_to(std::uint32_t layer) {
    if (!started_ || at_ > layer) {
      model_.embed(tokens_.back(), x_.data());
      at_ = 0;
      started_ = true;
    }
    while (at_ < layer) {
      project(at_);
      const auto& a = model_.architecture();
      const attnbench_plan plan{ATTNBENCH_PLAN_PER_KV_HEAD, a.n_kv_heads, all_.data()};
      kernels::layer_decode_args args;
      args.queries = q_.data();
      args.n_query_heads = a.n_heads;
      args.scale = model_.scale();
      args.kv = &cache_.layer_view(at_);
      args.plan = &plan;
      args.out = attention_.data();
      kernels::decode_error error;
      if (kernels::decode_layer(args, counters_.data(), &error) != ATTNBENCH_STATUS_OK)
        throw std::runtime_error("trained model: dense attention failed at layer " + std::to_string(at_) + ": " +
                                 error.message);
      model_.fold(at_, attention_.data(), x_.data());
      ++at_;
    }
  }

  // Every layer's K/V of the current token in the cache.
  void complete() {
    if (kv_layers_ < model_.architecture().n_layers) advance_to(model_.architecture().n_layers);
  }

  const trained_model& model_;
  kernels::kv_cache& cache_;
  std::vector<tasks::token> tokens_;
  std::vector<float> x_, q_, k_, v_, attention_, logits_;
  std::vector<tasks::token> order_;  // read_out's ranking, reused
  std::vector<kernels::decode_counters> counters_;
  std::vector<attnbench_plan_entry> all_;
  std::uint32_t kv_layers_ = 0;  // layers whose K/V of the current token are in the cache
  std::uint32_t at_ = 0;         // x_ is the input of this layer
  bool started_ = false;         // x_ belongs to the current token
};

}  // namespace

std::unique_ptr<model_sequence> trained_model::start_sequence(std::span<const tasks::token> prompt,
                                                              kernels::kv_cache& cache) const {
  return std::make_unique<trained_sequence>(*this, prompt, cache);
}

}  // namespace attnbench
