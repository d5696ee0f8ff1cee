// Head statistics of a model at a given context length, to set beside the published
// measurements of real models (docs/model.md, "Statistics"): per head, the attention
// mass on the first token, the tokens needed to cover 90% of the mass, the cosine
// similarity of consecutive decode queries, and the spread of its logits.
#pragma once

#include <attnbench/model/model.hpp>

#include <attnbench/plugin.h>
#include <attnbench/tasks/task.hpp>

#include <nlohmann/json.hpp>

namespace attnbench {

struct stats_request {
  std::uint32_t context_length = 8192;
  std::uint32_t samples = 2;
  std::uint32_t steps = 8;  // decode steps per sample (fewer when the answer ends sooner)
  std::uint64_t seed = 0;   // the run seed: samples are tasks::make_indexed_sample(seed, ..., 0 .. samples - 1)
  attnbench_dtype dtype = ATTNBENCH_DTYPE_FP16;
  std::uint32_t block_size = 64;
};

// Decodes samples of the task with dense attention and measures every query head at
// every step. Returns {"heads": [...], "roles": {...}, "prompts": [...]} with means over
// samples and steps; "prompts" holds each sample's index and prompt_hash.
nlohmann::ordered_json head_statistics(const model& m, const tasks::task& task, const stats_request& request);

}  // namespace attnbench
