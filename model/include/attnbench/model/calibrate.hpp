// `attnbench calibrate`: TCA-Attention's offline step. A dense pass over calibration
// samples; per layer and KV head, the candidate profile that keeps the fewest tokens
// while covering at least tau of the attention mass of the prompt's last query. Writes
// the budgets file the tca policy reads (docs/plugins.md).
#pragma once

#include <attnbench/model/model.hpp>

#include <attnbench/plugin.h>

#include <attnbench/tasks/task.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>

namespace attnbench {

struct calibrate_request {
  std::uint32_t context_length = 16384;
  std::uint32_t samples = 1;
  std::uint64_t seed = 0;  // the run seed: samples are tasks::make_indexed_sample(seed, ..., 0 .. samples - 1)
  attnbench_dtype dtype = ATTNBENCH_DTYPE_FP16;
  std::uint32_t block_size = 64;  // the cache's
  // TCA's: profiles, their log-normal (mu, sigma) of widths in blocks, coverage target,
  // selection block, block-score weight, always-kept window.
  std::uint32_t profiles = 14;
  double mu = 1.0, sigma = 1.0, tau = 0.9;
  std::uint32_t block = 128;
  double alpha = 0.5;
  std::uint64_t window = 4096;
};

// The budgets file's contents: settings, candidate widths, per layer and KV head the
// chosen width, its coverage and kept share.
nlohmann::ordered_json calibrate_tca(const model& m, const tasks::task& task,
                                     const calibrate_request& request);

}  // namespace attnbench
