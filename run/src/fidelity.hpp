// Attention fidelity (config metrics.fidelity): beside each layer's decode under the
// policy's plan, dense attention over the sequence's whole cache (prompt and generated
// tokens), and per query head the dense mass the policy visited and the relative error
// of its output. Run only when asked: it adds a dense traversal to every step, outside
// the timed attention region but inside the decode's wall time.
#pragma once

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/model/model.hpp>
#include <attnbench/run/metrics.hpp>

#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace attnbench {

class fidelity_probe {
 public:
  // After prefill and the policy's eviction. When the policy evicted tokens, dense
  // attention runs over a second cache of the whole sequence: the model writes the
  // prompt's K/V into it again, and each later token's K/V are copied from the policy's
  // cache as measure() reaches its layers, so that both traversals score the same keys
  // (a trained model's K/V of layer l + 1 depend on what the policy kept in layer l).
  fidelity_probe(const attnbench::model& m, std::span<const tasks::token> prompt, kernels::kv_cache& policy_cache,
                 bool evicted);
  // The sequence's appends and truncations, mirrored into the second cache.
  void append(std::span<const tasks::token> tokens);
  void truncate(std::size_t n);
  // Where the policy's decode of a layer writes each query head's log softmax denominator.
  float* lse() { return lse_.data(); }
  // Dense attention of `layer` for `queries`, compared with the policy's output (and lse());
  // one value per query head, kept until add_to.
  void measure(std::uint32_t layer, const float* queries, const float* policy_out);
  void add_to(std::uint32_t layer, fidelity_totals& totals) const;

 private:
  // Copies the tokens the second cache lacks at `layer` from the end of the policy's.
  void copy_new_tokens(std::uint32_t layer);

  const attnbench::model& model_;
  kernels::kv_cache* policy_cache_;
  kernels::kv_cache* cache_;  // the policy's, or own_
  std::optional<kernels::kv_cache> own_;
  std::uint64_t tokens_ = 0;  // the sequence's length
  std::vector<float> lse_, dense_lse_, dense_out_, keys_, values_;
  std::vector<kernels::decode_counters> counters_;
  std::vector<attnbench_plan_entry> all_;  // the dense plan: every token of every KV head
  std::vector<double> recall_, error_;  // [n_query_heads], of the last measure
};

}  // namespace attnbench
