// The synthetic transformer: a fixed, seeded function from tokens to K, V and queries,
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
// Every K/V is computed in closed form from tokens: no attention output feeds a later
// layer, so all layers see the same token sequence.
#pragma once

#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace attnbench {

enum class head_role : std::uint8_t { retrieval, sink, local, aggregation };

const char* head_role_name(head_role role);

struct model_profile {
  std::string name;
  std::uint32_t n_layers = 0;
  std::uint32_t n_query_heads = 0;  // per layer
  std::uint32_t n_kv_heads = 0;     // per layer
  std::uint32_t head_dim = 0;
  std::vector<std::vector<head_role>> roles;  // [layer][kv_head]
  // Tokens a retrieval key encodes; the retrieval KV heads of a layer take these in turn
  // (short windows match loosely, long ones pin a needle among look-alikes).
  std::vector<std::uint32_t> retrieval_windows{3, 8};
  double retrieval_sharpness = 20.0;          // logit of an exact context match
  double sink_sharpness = 14.0;               // logit of the first token in a sink head
  double sink_value_scale = 0.05;             // norm of the first token's value in a sink head
  double query_jitter = 0.1;                  // relative spread of query weights inside a GQA group
  double retrieval_rest = 12.0;               // logit of the first token in a retrieval head, x window / 3
  double local_sharpness = 12.0;              // logit of the previous token in a local head
  double local_span = 256.0;                  // local rotary periods run from span / 8 to 4 * span tokens
  double local_value_scale = 0.1;             // norm of a local head's values
  double aggregation_sharpness = 10.0;        // logit of a word token in a cued aggregation head
  double aggregation_value_scale = 4.0;       // norm of an aggregation head's values
  double aggregation_repeat_gain = 1.5;       // logit added per ln(1 + earlier occurrences of the word)
  std::vector<std::string> aggregation_cues{"most"};  // words that switch aggregation heads on
  std::uint32_t aggregation_cue_window = 16;          // ... when among this many last tokens

  nlohmann::json to_json() const;
};

// Reads a profile file; throws config_error naming the file and JSON path on bad input.
model_profile load_profile(const std::filesystem::path& file);

class synthetic_model {
 public:
  synthetic_model(model_profile profile, std::uint64_t seed);

  const model_profile& profile() const { return profile_; }
  // Softmax scale applied to q.k by the kernels (1 / sqrt(head_dim), as in real models).
  float scale() const { return scale_; }

  // Writes K and V of every position of tokens into the cache (all layers and heads).
  void prefill(std::span<const tasks::token> tokens, kernels::kv_cache& cache) const;
  // Appends K and V of the last position of tokens.
  void append_last(std::span<const tasks::token> tokens, kernels::kv_cache& cache) const;
  // Appends K and V of positions first ... tokens.size() - 1.
  void append_from(std::span<const tasks::token> tokens, std::size_t first, kernels::kv_cache& cache) const;
  // Queries of one layer for predicting the token after tokens: [n_query_heads * head_dim].
  void queries(std::uint32_t layer, std::span<const tasks::token> tokens, float* out) const;
  // Next token from all attention outputs, [n_layers][n_query_heads][head_dim]; special
  // tokens are never predicted.
  tasks::token readout(const float* outputs) const;
  // The k best next tokens in the order found: the first is the argmax, each next one the
  // best match to what the earlier ones leave of the readout (orthogonal matching pursuit;
  // logit is the fitted amplitude). noise_sd is the standard deviation of all tokens'
  // logits against what all k leave: the noise floor of random embeddings (with k = 1,
  // against the whole readout).
  struct candidate {
    tasks::token token;
    float logit;
    float noise_sd;
  };
  std::vector<candidate> readout_candidates(const float* outputs, std::size_t k) const;

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


  const float* direction(const std::vector<float>& table, std::uint32_t layer, std::uint32_t kv_head) const {
    return &table[(static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head) * profile_.head_dim];
  }
  // dst = scale * (cos, sin rotation of u by position * theta_i on coordinate pairs).
  void rotary(const float* u, double position, float scale, float* dst) const;  // position < 2^32
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
};

}  // namespace attnbench
