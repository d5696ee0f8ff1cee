// The mechanistic model (the "synthetic model" of the docs), one implementation of the
// model interface (model.hpp): a fixed, seeded function from tokens to K, V and queries,
// whose heads are built to do what heads of real models are known to do, and a readout
// that turns all heads' attention outputs into the next token. See DESIGN.md section 6
// and docs/model.md.
//
// Head roles (docs/model.md has the numbers):
//  - retrieval (induction): the key at position p encodes the `window` tokens before p,
//    the value encodes the token at p, the query encodes the last `window` tokens; an
//    exact match of the context copies the token that followed it. With no match the
//    head rests on the first token, whose value is small.
//  - sink: the first position's key aligns with the head's query and takes most of the
//    attention mass while carrying a small value; other keys are random.
//  - local: keys and queries carry only rotary phases, so attention decays with distance
//    and covers the last few tens of tokens.
//  - aggregation: every word token's key is the head's category direction; when a cue
//    word ("most") is among the last tokens, the query points there and the output is
//    the frequency-weighted mean of the words' values; otherwise it rests on the first
//    token like a sink.
// That is the sharp population. A profile with a `realistic` block builds a realistic one
// instead (mechanistic-realistic.cpp; docs/model.md, "Realistic heads"): rotary position
// on every key and query, and each query head its own mix of sink, recency and a long
// tail, with few copying heads.
// Every K/V is computed in closed form from tokens: no attention output feeds a later
// layer, so all layers see the same token sequence.
#pragma once

#include <attnbench/model/model.hpp>
#include <attnbench/model/profile.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace attnbench {

class mechanistic_model final : public model {
 public:
  mechanistic_model(model_profile profile, std::uint64_t seed);

  const model_profile& profile() const { return profile_; }
  const model_shape& shape() const override { return profile_; }
  // Softmax scale applied to q.k by the kernels (1 / sqrt(head_dim), as in real models).
  float scale() const override { return scale_; }
  nlohmann::json describe() const override { return profile_.to_json(); }
  // A sequence whose readout sees the outputs folded in; K/V of appended tokens are
  // written at once, for all layers (every K/V is a function of the tokens alone).
  std::unique_ptr<model_sequence> start_sequence(std::span<const tasks::token> prompt,
                                                 kernels::kv_cache& cache) const override;

  // The stateless pieces the sequence is made of (tests and benchmarks use them too):
  // Writes K and V of every position of tokens into the cache (all layers and heads).
  void prefill(std::span<const tasks::token> tokens, kernels::kv_cache& cache) const;
  // Appends K and V of positions first ... tokens.size() - 1.
  void append_from(std::span<const tasks::token> tokens, std::size_t first, kernels::kv_cache& cache) const;
  // Queries of one layer for predicting the token after tokens: [n_query_heads * head_dim].
  void queries(std::uint32_t layer, std::span<const tasks::token> tokens, float* out) const;
  // A token's value embedding (head_dim floats), before any head's transform.
  const float* value_embedding(tasks::token t) const { return value_row(t); }
  // The k best next tokens in the order found: the first is the argmax, each next one the
  // best match to what the earlier ones leave of the readout (orthogonal matching pursuit;
  // logit is the fitted amplitude). noise_sd is the standard deviation of all tokens'
  // logits against what all k leave: the noise floor of random embeddings (with k = 1,
  // against the whole readout).
  std::vector<readout_candidate> readout_candidates(const float* outputs, std::size_t k) const;

 private:
  // An orthogonal map of R^d (per-coordinate sign flip after a cyclic shift), cheap to
  // apply and invert; each head and key slot has its own, so heads are independent.
  struct transform {
    std::vector<float> signs;
    std::uint32_t shift = 0;
  };
  // dst += scale * T(row) for a row of key_table_ or value_table_ (stored twice).
  void apply(const transform& t, const float* row, float scale, float* dst) const;
  void assign(const transform& t, const float* row, float scale, float* dst) const;  // dst = scale * T(row)
  // dst += scale * T^-1(src) for any d floats.
  void apply_inverse(const transform& t, const float* src, float scale, float* dst) const;
  const transform& key_transform(std::uint32_t layer, std::uint32_t kv_head, std::uint32_t slot) const;
  const transform& value_transform(std::uint32_t layer, std::uint32_t kv_head) const;
  // A token's embedding: head_dim floats, followed by the same head_dim floats again.
  const float* key_row(tasks::token t) const { return &key_table_[static_cast<std::size_t>(t) * 2 * profile_.head_dim]; }
  const float* value_row(tasks::token t) const {
    return &value_table_[static_cast<std::size_t>(t) * 2 * profile_.head_dim];
  }
  // earlier: how often tokens[p] occurred before p (what a duplicate-token head of an
  // earlier layer would report), used by aggregation heads.
  void key_value(std::uint32_t layer, std::uint32_t kv_head, std::span<const tasks::token> tokens, std::size_t p,
                 std::uint32_t earlier, float* key, float* value) const;
  bool has_role(head_role role) const;
  // How much a query head's output weighs in the readout (its output map's gain): 1 in
  // the sharp population; in the realistic one, the query heads of a retrieval KV head
  // that do not match contexts weigh value_scale, as the other mixed heads' values do.
  float output_gain(std::uint32_t layer, std::uint32_t q) const {
    return output_gains_.empty() ? 1.0f : output_gains_[static_cast<std::size_t>(layer) * profile_.n_query_heads + q];
  }
  // The realistic population (profile.realistic; mechanistic-realistic.cpp): drawn after
  // everything the sharp population draws, from a stream of its own.
  void setup_realistic();
  void key_value_realistic(std::uint32_t layer, std::uint32_t kv_head, std::span<const tasks::token> tokens,
                           std::size_t p, std::uint32_t earlier, float* key, float* value) const;
  void query_realistic(std::uint32_t layer, std::uint32_t q, std::span<const tasks::token> tokens, float* o) const;
  // The induction code of tokens p-1 ... p-w for a realistic retrieval head, each slot
  // weighted (1 when weights is null), sink pairs zeroed, scaled to norm: a key's (at
  // position p) or a query's (predicting position p).
  void retrieval_code(std::uint32_t layer, std::uint32_t kv_head, std::span<const tasks::token> tokens, std::size_t p,
                      const float* weights, float norm, float* dst) const;


  const float* direction(const std::vector<float>& table, std::uint32_t layer, std::uint32_t kv_head) const {
    return &table[(static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head) * profile_.head_dim];
  }
  // dst = scale * (cos, sin rotation of u by position * theta_i on coordinate pairs).
  void rotary(const float* u, double position, float scale, float* dst) const;  // position < 2^32
  void fill_rotary_table();  // rotary_table_ from thetas_
  bool aggregation_cued(std::span<const tasks::token> tokens) const;

  std::uint32_t window(std::uint32_t layer, std::uint32_t kv_head) const {
    return windows_[static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head];
  }

  model_profile profile_;
  std::uint64_t seed_;
  std::vector<std::uint32_t> windows_;  // [layer][kv_head]: retrieval window, 0 for other roles
  std::uint32_t slots_;                 // key transforms per KV head: the longest window + 1
  float scale_;
  std::vector<float> key_table_, value_table_;  // [vocab][2][head_dim] random unit vectors, each twice
  std::vector<transform> key_transforms_;       // [layer][kv_head][slot], slot < window + 1
  std::vector<transform> value_transforms_;     // [layer][kv_head]
  std::vector<float> sink_directions_;          // [layer][kv_head][head_dim] unit
  std::vector<double> sink_norms2_;             // [layer][kv_head] |sink direction|^2 as stored (float rounding)
  std::vector<float> category_directions_;      // [layer][kv_head][head_dim] unit, orthogonal to the sink's
  std::vector<double> thetas_;                  // [head_dim / 2] rotary frequencies of local heads
  static constexpr std::uint32_t kRotaryLevels = 4;  // positions below 2^32
  std::vector<double> rotary_table_;            // [level][256][cos, sin][head_dim / 2]
  std::vector<tasks::token> cues_;              // aggregation cue tokens
  std::vector<float> query_weights_;            // [layer][query_head][slot]
  // Realistic population only.
  struct query_knobs {
    float sink = 0, noise = 0, local = 0;  // logits: of the first token, sd over ordinary keys, of the previous token
    float offset = 0;                      // logit every key shares (softmax ignores it)
    bool matches = false;                  // a retrieval query head: matches contexts
  };
  std::vector<query_knobs> query_knobs_;       // [layer][query_head]
  std::vector<float> mean_directions_;         // [layer][kv_head][head_dim] unit, in the head's positional pairs
  std::vector<float> bias_directions_;         // [layer][kv_head][head_dim] unit, in the sink pairs, orthogonal to the sink
  std::vector<float> content_masks_;           // [layer][kv_head][head_dim] 1 on content pairs, 0 elsewhere
  std::vector<float> content_gains_;           // [layer][kv_head] sqrt(head_dim / content dims)
  std::vector<float> noise_directions_;        // [layer][query_head][head_dim] unit, in the content pairs
  std::vector<float> output_gains_;            // [layer][query_head]; empty: all 1
};

}  // namespace attnbench
