// The mechanistic model's profile: its shape, head roles and the knobs of each role
// (docs/model.md has what each one does). Read from configs/profiles/NAME.json.
#pragma once

#include <attnbench/model/model.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace attnbench {

// The shape (name, layers, heads, head dim, roles) and every role's knobs.
struct model_profile : model_shape {
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

}  // namespace attnbench
