// The trained model (issue 24; docs/trained-model.md): a Llama-style decoder trained by
// scripts/train/, read from a folder models/NAME/ (config.json and safetensors weights),
// a second implementation of the model interface beside the mechanistic one.
//
// Prefill runs the whole prompt densely, layer by layer (matrix products through BLAS,
// blocked causal attention), and writes every layer's K (after rotary) and V into the
// cache. A decode step then runs layer by layer through the harness: queries(l) computes
// the current token's residual stream at layer l into q (writing its K/V first when they
// are not yet in the cache), the policy and kernel attend, fold(l) adds the attention
// and MLP outputs; so what a policy drops in layer l changes what layer l+1 sees. A
// caller that asks for queries(l) without folding the layers before (head statistics,
// calibration, on_prefill) gets those layers attended densely over the cache.
#pragma once

#include <attnbench/model/model.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace attnbench {

struct trained_architecture {
  std::uint32_t vocab_size = 0, dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, hidden = 0;
  double rope_base = 500000.0;
  float norm_eps = 1e-5f;
};

// Weights in fp32, row-major, as PyTorch's modules hold them (a linear layer [out x in]).
struct trained_layer_weights {
  std::vector<float> attn_norm, mlp_norm, wq, wk, wv, wo, w_gate, w_up, w_down;
};

class trained_model final : public model {
 public:
  // Reads FOLDER/config.json and the weights it names. Throws config_error naming the
  // file (and JSON path or tensor) on anything missing, malformed or of the wrong shape.
  explicit trained_model(const std::filesystem::path& folder);

  const model_shape& shape() const override { return shape_; }
  float scale() const override { return scale_; }
  nlohmann::json describe() const override;
  std::unique_ptr<model_sequence> start_sequence(std::span<const tasks::token> prompt,
                                                 kernels::kv_cache& cache) const override;

  // The projections and MLP per token, and causal attention's q.k and p.v over the
  // prefix (the LM head runs on the last token only).
  double prefill_macs(std::uint64_t tokens) const override;

  const trained_architecture& architecture() const { return arch_; }

  // The dense forward over tokens from position 0, what prefill runs: writes every
  // layer's K/V into the cache when it is not null. With attention_outputs, each layer's
  // attention output (before wo) for every token is appended ([n x hq*d] each); with
  // logits, every token's logits over the vocabulary ([n x vocab]).
  void forward(std::span<const tasks::token> tokens, kernels::kv_cache* cache,
               std::vector<std::vector<float>>* attention_outputs = nullptr, std::vector<float>* logits = nullptr) const;

  // The pieces a decode step is made of (trained-sequence.cpp), on one token's vectors.
  void embed(tasks::token t, float* x) const;
  // q [hq*d], k and v [hkv*d] of the token at `position` from its residual x at `layer`.
  void project(std::uint32_t layer, const float* x, std::int64_t position, float* q, float* k, float* v) const;
  // x += wo . attention; x += the MLP of x.
  void fold(std::uint32_t layer, const float* attention, float* x) const;
  // The final norm and the tied LM head: logits [vocab].
  void logits(const float* x, float* out) const;

 private:
  // The cosines and sines (pairs) of `position`'s rotary angles: cs[head_dim].
  void rotation(std::int64_t position, float* cs) const;
  // Rotates every head's pairs by the angles whose cosines and sines cs holds.
  void rotate(float* heads, std::uint32_t n_heads, const float* cs) const;

  std::filesystem::path folder_;
  nlohmann::json config_;
  trained_architecture arch_;
  model_shape shape_;
  float scale_ = 1.0f;
  std::vector<float> embed_, norm_;  // [vocab x dim], [dim]
  std::vector<trained_layer_weights> layers_;
  std::vector<double> inv_freq_;  // [head_dim / 2]
};

}  // namespace attnbench
