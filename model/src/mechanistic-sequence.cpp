// A sequence of the mechanistic model: its tokens, the cache it writes K/V into, and the
// attention outputs of the current step, all of which its readout reads.
#include <attnbench/model/mechanistic.hpp>

#include <algorithm>

namespace attnbench {

namespace {

class mechanistic_sequence final : public model_sequence {
 public:
  mechanistic_sequence(const mechanistic_model& model, std::span<const tasks::token> prompt, kernels::kv_cache& cache)
      : model_(model), cache_(cache), tokens_(prompt.begin(), prompt.end()) {
    const model_shape& s = model.shape();
    outputs_.resize(static_cast<std::size_t>(s.n_layers) * s.n_query_heads * s.head_dim);
    model_.prefill(tokens_, cache_);
  }

  std::span<const tasks::token> tokens() const override { return tokens_; }

  void append(std::span<const tasks::token> tokens) override {
    const std::size_t first = tokens_.size();
    tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
    model_.append_from(tokens_, first, cache_);
  }

  void truncate(std::size_t n) override {
    cache_.truncate(n);
    tokens_.resize(n);
  }

  void queries(std::uint32_t layer, float* out) override { model_.queries(layer, tokens_, out); }

  void fold(std::uint32_t layer, const float* outputs) override {
    const std::size_t n = static_cast<std::size_t>(model_.shape().n_query_heads) * model_.shape().head_dim;
    std::copy_n(outputs, n, outputs_.data() + layer * n);
  }

  std::vector<readout_candidate> read_out(std::size_t k) override {
    return model_.readout_candidates(outputs_.data(), k);
  }

 private:
  const mechanistic_model& model_;
  kernels::kv_cache& cache_;
  std::vector<tasks::token> tokens_;
  std::vector<float> outputs_;  // [layer][query_head][head_dim] of the current step
};

}  // namespace

std::unique_ptr<model_sequence> mechanistic_model::start_sequence(std::span<const tasks::token> prompt,
                                                                  kernels::kv_cache& cache) const {
  return std::make_unique<mechanistic_sequence>(*this, prompt, cache);
}

}  // namespace attnbench
