// What realism's measurement (realism.cpp) hands its tables (realism-table.cpp): the sums
// per query head and KV head over one length's samples and steps.
#pragma once

#include <attnbench/model/realism.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace attnbench::realism_detail {

// Sums over steps and samples for one query head.
struct head_sums {
  double first_mass = 0, top_mass = 0, tokens_90 = 0, l1 = 0, stream_change = 0, cosine = 0, pages_open = 0;
  std::uint64_t n = 0, n_cosine = 0, copies = 0;
};

// One context length's measurement.
struct length_state {
  const model& m;
  const tasks::task& task;
  const realism_request& req;
  std::uint32_t context_length;
  std::vector<head_sums> heads;      // [layer][query_head]
  std::vector<double> neighbour;     // [layer][kv_head] sums
  std::uint64_t neighbour_n = 0;
  std::vector<double> layer_cosine;  // [layer] sums
  std::uint64_t layer_cosine_n = 0;
  std::uint64_t copy_chances = 0;    // steps that generated a needle token
  double dense_score = 0, oracle_score = 0;
  std::uint32_t scored = 0;
};

// {"context_length", "statistics": {name: {"value", "by_role", ...}}, "heads": [...]}.
nlohmann::ordered_json summarize(const length_state& ls);

// Each statistic's row over the lengths: published range, source, values and verdicts.
nlohmann::ordered_json realism_rows(const nlohmann::ordered_json& lengths);

}  // namespace attnbench::realism_detail
