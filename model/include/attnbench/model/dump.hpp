// attnbench dump-kv: a model's K/V cache and decode queries of one sample,
// written as raw arrays beside a meta.json, for kernels outside the harness (the CUDA
// kernels' ART run in scripts/gpu-bench.py sees realistic attention this way).
//
// Files in the output folder:
//   meta.json  shapes, dtype, softmax scale, head roles, task, length, run seed and
//              sample index, the sample's seed and prompt_hash, and this layout
//   k.bin      [layer][kv_head][token][head_dim] in the cache dtype (fp16, bf16 or fp32)
//   v.bin      the same for values
//   q.bin      [layer][query_head][head_dim] fp32, unscaled: the queries of the first
//              decode step (predicting the token after the prompt)
#pragma once

#include <attnbench/model/model.hpp>

#include <attnbench/plugin.h>

#include <attnbench/tasks/task.hpp>

#include <filesystem>

namespace attnbench {

struct dump_request {
  std::uint32_t context_length = 0;
  std::uint64_t seed = 0;     // the run seed
  std::uint32_t sample = 0;   // the sample index: tasks::make_indexed_sample(seed, ..., sample), as run makes it
  attnbench_dtype dtype = ATTNBENCH_DTYPE_FP16;
  std::uint32_t block_size = 64;
  std::string task_name;
};

// Writes the three arrays and meta.json into dir (created). Throws output_error naming
// the file that cannot be written. Returns the meta written.
nlohmann::ordered_json dump_kv(const model& m, const tasks::task& task, const dump_request& request,
                               const std::filesystem::path& dir);

}  // namespace attnbench
