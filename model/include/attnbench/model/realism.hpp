// How a model's attention compares with what has been published about real models'
// attention (DESIGN.md section 6a, docs/model.md "Realism"): each statistic measured on
// the model while it decodes samples with dense attention, set beside the published
// range with its source, and judged inside, near or outside it.
//
// The statistics (docs/model.md gives each definition and why its range is what it is):
//  - query_cosine: cosine of a layer's consecutive decode queries, all query heads
//    flattened into one vector (TokenSelect's selection-cache key).
//  - retrieval_heads: share of query heads whose retrieval score (Wu et al.: how often
//    the head's most attended token is the needle token being copied) exceeds 0.1.
//  - full_context_heads: share of query heads whose output changes by more than a tenth
//    of the layer's mean head output when only the first 64 and last 256 tokens are kept
//    (a streaming head, as in StreamingLLM and DuoAttention); reported, not judged.
//  - sink_heads: share of the query heads beyond the first two layers that put over 0.3
//    of their mass on the first four tokens.
//  - top20_mass: share of query heads whose top 20% of tokens hold at most 0.8 of the mass.
//  - top2pct_quality: the task's score when each query head attends only to its top 2%
//    of tokens (exact, an oracle), over the score with dense attention.
//  - logit_l1_spread: largest over smallest per-head L1 norm of the logits.
//  - neighbour_keys: cosine of adjacent keys, and how many 16-token pages Quest's
//    per-channel bound cannot rule out (no published range: reported as is).
#pragma once

#include <attnbench/model/model.hpp>

#include <attnbench/plugin.h>
#include <attnbench/tasks/task.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace attnbench {

struct realism_request {
  std::vector<std::uint32_t> context_lengths{16384};
  std::uint32_t samples = 2;
  std::uint32_t max_steps = 16;  // decode steps per sample at most (the answer may end sooner)
  std::uint64_t seed = 0;        // the run seed: samples are tasks::make_indexed_sample(seed, ..., 0 .. samples - 1)
  bool oracle = true;            // also decode with each head's exact top 2% (top2pct_quality)
  attnbench_dtype dtype = ATTNBENCH_DTYPE_FP16;
  std::uint32_t block_size = 64;
};

// Measures the statistics at each length. Returns {"task", "lengths": [{"context_length",
// "statistics": {name: {"value", "by_role", ...}}, "heads": [...]}], "rows": [{"statistic",
// "published", "range", "source", "values": {length: value}, "verdict"}]}.
nlohmann::ordered_json measure_realism(const model& m, const tasks::task& task, const std::string& task_name,
                                       const realism_request& request);

// The rows as a markdown table: statistic, published range and source, this model per
// head role and overall at each length, and the verdict.
std::string realism_markdown(const nlohmann::ordered_json& realism);

// "inside", "near" (outside by at most a tenth of the range's bound) or "outside".
std::string realism_verdict(double value, double low, double high);

}  // namespace attnbench
