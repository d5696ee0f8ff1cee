// The mechanistic model's profile: its shape, head roles and the knobs of each role
// (docs/model.md has what each one does). Read from configs/profiles/NAME.json.
#pragma once

#include <attnbench/model/model.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace attnbench {

// The realistic head population (docs/model.md, "Realistic heads"): every key and query
// carries rotary position (Llama 3.1's frequencies); each query head draws its own sink,
// locality and noise logits, so heads form a continuum; keys share a per-head mean that
// rotates with position and a slowly varying context part, so neighbours are similar.
// Ranges [low, high] are drawn per query head (uniform, or log-uniform for *_logit
// ranges marked so in docs/model.md).
struct realistic_knobs {
  double rope_base = 500000.0;            // Llama 3's rope_theta
  double rope_factor = 8.0;               // Llama 3.1's rope scaling ("llama3")
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  double rope_original_context = 8192.0;
  std::uint32_t sink_pairs = 4;           // slowest rotary pairs, which hold the sink direction
  std::uint32_t plain_layers = 2;         // first layers, whose heads have (almost) no sink
  std::array<double, 2> plain_sink_logit{0.0, 4.0};  // uniform, first layers
  std::array<double, 2> sink_logit{8.7, 14.7};       // uniform, later layers
  std::array<double, 2> noise_logit{0.2, 0.8};       // log-uniform: sd of logits over ordinary keys
  std::array<double, 2> local_logit{0.3, 4.0};       // log-uniform: logit of the previous tokens over far ones
  std::array<double, 2> logit_offset{0.2, 60.0};     // log-uniform, random sign: logit every key shares
  double key_bias = 0.5;                  // norm of the key part every key shares (in the sink pairs)
  double dormant_share = 0.25;            // an aggregation head's query parts, scaled, until it is cued
  double positional_share = 0.25;         // share of a head's rotary pairs that carry its key mean
  double key_mean = 1.0;                  // norm of the key's shared mean (rotated by position)
  double key_token = 0.6;                 // norm of the key's token part
  double key_context = 0.6;               // norm of the key's context part (anchors every context_stride tokens)
  std::uint32_t context_stride = 64;
  double query_token = 0.15;              // a query's last-token part, relative to its constant part
  std::uint32_t retrieval_queries = 1;    // query heads per retrieval KV head that match contexts
  double retrieval_key_share = 0.1;       // the rotated part of a retrieval KV head's keys, scaled
  double value_scale = 0.05;              // norm of the values of heads that are neither retrieval nor aggregation

  nlohmann::json to_json() const;
};

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
  // Present: the realistic population; absent: the sharp one (each role's heads alike,
  // K/V in closed form without rotary position except local heads).
  std::optional<realistic_knobs> realistic;

  nlohmann::json to_json() const;
};

// Reads a profile file; throws config_error naming the file and JSON path on bad input.
model_profile load_profile(const std::filesystem::path& file);

}  // namespace attnbench
