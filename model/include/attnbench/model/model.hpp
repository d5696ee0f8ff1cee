// The model interface: what the run engine, head statistics, K/V dumps and calibration
// ask of any model. A model turns tokens into K/V (written into a paged cache the caller
// owns) and decode queries, takes each layer's attention outputs back, and reads the next
// token out of them. The mechanistic model (mechanistic.hpp) is one implementation; a
// new model is one more, and nothing in run/ changes for it.
//
// One decode step of a sequence, as the run engine drives it:
//   for each layer: queries(layer) -> the policy plans -> the kernel attends over the
//                   cache -> fold(layer, outputs)
//   read_out(k) -> the next token -> append({token})
#pragma once

#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace attnbench {

// What a KV head does, as measured or as built. Metrics are broken down by role.
enum class head_role : std::uint8_t { retrieval, sink, local, aggregation };
inline constexpr std::size_t kHeadRoles = 4;

const char* head_role_name(head_role role);

struct model_shape {
  std::string name;
  std::uint32_t n_layers = 0;
  std::uint32_t n_query_heads = 0;  // per layer
  std::uint32_t n_kv_heads = 0;     // per layer
  std::uint32_t head_dim = 0;
  std::vector<std::vector<head_role>> roles;  // [layer][kv_head]
};

// A next-token candidate: its logit (or fitted amplitude) and the standard deviation of
// the logits of the tokens that were not picked, the noise floor it stands out from.
struct readout_candidate {
  tasks::token token;
  float logit;
  float noise_sd;
};

// One sequence being decoded: its tokens, and K/V in a cache the caller owns and keeps
// alive. One thread at a time; different sequences of one model may run on different
// threads at once.
class model_sequence {
 public:
  virtual ~model_sequence() = default;
  // Every token so far: the prompt, then appended tokens.
  virtual std::span<const tasks::token> tokens() const = 0;
  // Appends tokens. Their K/V of layer l are in the cache by the time queries(l) returns.
  virtual void append(std::span<const tasks::token> tokens) = 0;
  // Keeps the first n tokens (and their K/V) and drops the rest.
  virtual void truncate(std::size_t n) = 0;
  // Queries of one layer for predicting the token after tokens(): [n_query_heads * head_dim],
  // unscaled (the kernels apply scale()).
  virtual void queries(std::uint32_t layer, float* out) = 0;
  // The layer's attention outputs for the current step: [n_query_heads * head_dim].
  virtual void fold(std::uint32_t layer, const float* outputs) = 0;
  // The k best next tokens from the outputs folded in this step, best first; special
  // tokens are never candidates.
  virtual std::vector<readout_candidate> read_out(std::size_t k) = 0;
};

class model {
 public:
  virtual ~model() = default;
  virtual const model_shape& shape() const = 0;
  // Softmax scale the kernels apply to q.k.
  virtual float scale() const = 0;
  // What results.json records about the model (meta.model_profile).
  virtual nlohmann::json describe() const = 0;
  // A sequence over `cache` (of the model's shape, empty) whose K/V of `prompt` are
  // written now: the prefill.
  virtual std::unique_ptr<model_sequence> start_sequence(std::span<const tasks::token> prompt,
                                                         kernels::kv_cache& cache) const = 0;
  // The fp32 multiply-adds a prefill of `tokens` performs, for the cost estimate of a
  // cell (run/shards.hpp); 0 for a model whose prefill only writes K/V (the mechanistic
  // one, whose cost the estimate counts per K/V element).
  virtual double prefill_macs(std::uint64_t tokens) const {
    (void)tokens;
    return 0;
  }
};

// FNV-1a of the token ids: lets outputs of different commands show they saw one prompt.
std::string prompt_hash(std::span<const tasks::token> tokens);

}  // namespace attnbench
