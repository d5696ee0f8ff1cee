// The mechanistic model's realistic population (profile.realistic; docs/model.md,
// "Realistic heads"). Every key and query turns with its position by Llama 3.1's rotary
// frequencies, so a logit depends on the distance between query and key:
//
//   key(p)   = R(p) [ key_mean * m_h + mask_h (key_token * T0 e(t_p) + key_context * ctx(p)) ]
//              (+ the induction code of tokens p-1 ... p-w in retrieval heads,
//               + the category direction for words in aggregation heads)
//   key(0)   = s_h, the sink direction, in the slowest `sink_pairs` pairs (they turn by under
//              0.1 radian over 128K positions, so the first token's logit does not drift)
//   query(t) = R(t) [ local' * m_h + noise' * (r_q + query_token * mask_h V e(t_{t-1})) ]
//              + sink' * s_h  (+ the retrieval query, or the category when cued)
//
// m_h, a head's key mean, lives in its positional pairs (a quarter of them: the fastest for
// local heads, spread over all frequencies otherwise), so local' m_h . R(p - t) m_h gives
// a recency profile that decays with distance; token and context parts live in the other
// (content) pairs, so the query's constant part r_q meets each key's token part as a
// logit that is fixed per key and slowly varying in t: the long tail of ordinary tokens,
// the same tokens standing out step after step. ctx(p) blends the embeddings of the
// anchor tokens at the last two multiples of context_stride, so neighbouring keys share
// it. sink', local', noise' turn the query head's drawn logits into norms.
#include <attnbench/model/mechanistic.hpp>

#include "vectors.hpp"

#include <algorithm>
#include <cmath>

namespace attnbench {

using tasks::token;
using tasks::vocabulary;
using model_detail::normalize;
using model_detail::project_out;
using model_detail::random_unit;

namespace {

constexpr double kPi = 3.141592653589793;

// Llama 3.1's rotary frequencies (rope_type "llama3"): pair i of d / 2 turns by
// theta_i = base^(-2i/d) per position; wavelengths above original / low_freq_factor are
// stretched by factor, those below original / high_freq_factor kept, and those between
// blended.
std::vector<double> rope_thetas(const realistic_knobs& k, std::uint32_t d) {
  std::vector<double> out;
  const double long_wave = k.rope_original_context / k.rope_low_freq_factor;
  const double short_wave = k.rope_original_context / k.rope_high_freq_factor;
  for (std::uint32_t i = 0; i < d / 2; ++i) {
    const double theta = std::pow(k.rope_base, -2.0 * i / d);
    const double wavelength = 2.0 * kPi / theta;
    if (wavelength < short_wave) {
      out.push_back(theta);
    } else if (wavelength > long_wave) {
      out.push_back(theta / k.rope_factor);
    } else {
      const double smooth =
          (k.rope_original_context / wavelength - k.rope_low_freq_factor) / (k.rope_high_freq_factor - k.rope_low_freq_factor);
      out.push_back((1.0 - smooth) * theta / k.rope_factor + smooth * theta);
    }
  }
  return out;
}

double draw_uniform(rng& r, const std::array<double, 2>& range) {
  return range[0] + (range[1] - range[0]) * r.uniform();
}

double draw_log_uniform(rng& r, const std::array<double, 2>& range) {
  return range[0] * std::pow(range[1] / range[0], r.uniform());
}

}  // namespace

void mechanistic_model::setup_realistic() {
  const realistic_knobs& k = *profile_.realistic;
  const std::uint32_t d = profile_.head_dim, pairs = d / 2, hq = profile_.n_query_heads, hkv = profile_.n_kv_heads;
  const std::uint32_t group = hq / hkv;
  const std::uint32_t sink_first = pairs - k.sink_pairs;  // pairs sink_first ... pairs - 1 hold the sink
  rng r(hash_combine(seed_, 0x7265616c6973ull));           // "realis"
  thetas_ = rope_thetas(k, d);
  fill_rotary_table();
  const std::uint32_t positional = std::max<std::uint32_t>(
      1, static_cast<std::uint32_t>(std::lround(k.positional_share * sink_first)));
  const std::uint32_t stride = std::max<std::uint32_t>(1, sink_first / positional);
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l)
    for (std::uint32_t h = 0; h < hkv; ++h) {
      const std::size_t idx = static_cast<std::size_t>(l) * hkv + h;
      float* sink = &sink_directions_[idx * d];
      std::fill(sink, sink + d, 0.0f);
      random_unit(r, sink + 2 * sink_first, 2 * k.sink_pairs);
      sink_norms2_[idx] = kernels::reproducible_dot(sink, sink, d);
      std::vector<float> bias(d, 0.0f);
      random_unit(r, bias.data() + 2 * sink_first, 2 * k.sink_pairs);
      project_out(bias.data(), sink, d);
      normalize(bias.data(), d, 1.0f);
      bias_directions_.insert(bias_directions_.end(), bias.begin(), bias.end());
      float* category = &category_directions_[idx * d];
      std::fill(category + 2 * sink_first, category + d, 0.0f);
      normalize(category, d, 1.0f);
      // Positional pairs: the fastest for local heads, every stride-th from a drawn offset otherwise.
      std::vector<bool> is_positional(pairs, false);
      const std::uint32_t offset = static_cast<std::uint32_t>(r.below(stride));
      for (std::uint32_t j = 0; j < positional; ++j)
        is_positional[profile_.roles[l][h] == head_role::local ? j : std::min(sink_first - 1, offset + j * stride)] = true;
      std::vector<float> mean(d, 0.0f), mask(d, 0.0f);
      std::uint32_t content_dims = 0;
      for (std::uint32_t i = 0; i < sink_first; ++i)
        for (std::uint32_t c = 2 * i; c < 2 * i + 2; ++c) {
          if (is_positional[i]) {
            mean[c] = static_cast<float>(r.normal());
          } else {
            mask[c] = 1.0f;
            ++content_dims;
          }
        }
      normalize(mean.data(), d, 1.0f);
      mean_directions_.insert(mean_directions_.end(), mean.begin(), mean.end());
      content_masks_.insert(content_masks_.end(), mask.begin(), mask.end());
      content_gains_.push_back(static_cast<float>(std::sqrt(static_cast<double>(d) / content_dims)));
    }
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l)
    for (std::uint32_t q = 0; q < hq; ++q) {
      const std::uint32_t h = q / group;
      query_knobs kn;
      kn.sink = static_cast<float>(draw_uniform(r, l < k.plain_layers ? k.plain_sink_logit : k.sink_logit));
      kn.noise = static_cast<float>(draw_log_uniform(r, k.noise_logit));
      kn.local = static_cast<float>(draw_log_uniform(r, k.local_logit));
      kn.offset = static_cast<float>(draw_log_uniform(r, k.logit_offset) * ((r.next() >> 63) ? 1.0 : -1.0));
      kn.matches = profile_.roles[l][h] == head_role::retrieval && q % group < k.retrieval_queries;
      query_knobs_.push_back(kn);
      output_gains_.push_back(profile_.roles[l][h] == head_role::retrieval && !kn.matches
                                  ? static_cast<float>(k.value_scale)
                                  : 1.0f);
      std::vector<float> dir(d);
      random_unit(r, dir.data(), d);
      const float* mask = &content_masks_[(static_cast<std::size_t>(l) * hkv + h) * d];
      for (std::uint32_t i = 0; i < d; ++i) dir[i] *= mask[i];
      normalize(dir.data(), d, 1.0f);
      noise_directions_.insert(noise_directions_.end(), dir.begin(), dir.end());
    }
}

void mechanistic_model::retrieval_code(std::uint32_t layer, std::uint32_t kv_head, std::span<const token> tokens,
                                       std::size_t p, const float* weights, float norm, float* dst) const {
  const std::uint32_t d = profile_.head_dim;
  assign(key_transform(layer, kv_head, 1), key_row(tokens[p - 1]), weights ? weights[1] : 1.0f, dst);
  for (std::uint32_t j = 2; j <= window(layer, kv_head) && j <= p; ++j)
    apply(key_transform(layer, kv_head, j), key_row(tokens[p - j]), weights ? weights[j] : 1.0f, dst);
  std::fill(dst + d - 2 * profile_.realistic->sink_pairs, dst + d, 0.0f);
  normalize(dst, d, norm);
}

void mechanistic_model::key_value_realistic(std::uint32_t layer, std::uint32_t kv_head, std::span<const token> tokens,
                                            std::size_t p, std::uint32_t earlier, float* key, float* value) const {
  const realistic_knobs& k = *profile_.realistic;
  const std::uint32_t d = profile_.head_dim;
  const std::size_t idx = static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head;
  const transform& vt = value_transform(layer, kv_head);
  const head_role role = profile_.roles[layer][kv_head];
  const float* bias = &bias_directions_[idx * d];
  const auto key_bias = static_cast<float>(k.key_bias);
  if (p == 0) {  // the sink: its own direction and the shared bias, a small value
    const float* sink = &sink_directions_[idx * d];
    for (std::uint32_t i = 0; i < d; ++i) key[i] = sink[i] + key_bias * bias[i];
    assign(vt, value_row(tokens[0]), static_cast<float>(profile_.sink_value_scale), value);
    return;
  }
  thread_local std::vector<float> part;
  part.resize(d);
  const float gain = content_gains_[idx];
  const std::size_t anchor = p / k.context_stride * k.context_stride;
  const std::size_t before = anchor >= k.context_stride ? anchor - k.context_stride : anchor;
  const auto f = static_cast<float>(static_cast<double>(p - anchor) / k.context_stride);
  assign(key_transform(layer, kv_head, 0), key_row(tokens[p]), static_cast<float>(k.key_token) * gain, part.data());
  const auto context = static_cast<float>(k.key_context) * gain;
  apply(key_transform(layer, kv_head, 1), key_row(tokens[before]), context * (1.0f - f), part.data());
  apply(key_transform(layer, kv_head, 1), key_row(tokens[anchor]), context * f, part.data());
  const float* mask = &content_masks_[idx * d];
  const float* mean = &mean_directions_[idx * d];
  const auto key_mean = static_cast<float>(k.key_mean);
  for (std::uint32_t i = 0; i < d; ++i) part[i] = part[i] * mask[i] + key_mean * mean[i];
  rotary(part.data(), static_cast<double>(p), 1.0f, key);
  // The sink pairs hold the shared bias alone: the same bits in every key.
  for (std::uint32_t i = d - 2 * k.sink_pairs; i < d; ++i) key[i] = key_bias * bias[i];
  float value_scale = static_cast<float>(k.value_scale);
  if (role == head_role::retrieval) {
    retrieval_code(layer, kv_head, tokens, p, nullptr, 1.0f, part.data());
    const auto share = static_cast<float>(k.retrieval_key_share);
    for (std::uint32_t i = 0; i < d - 2 * k.sink_pairs; ++i) key[i] = share * key[i] + part[i];
    value_scale = 1.0f;
  } else if (role == head_role::aggregation) {
    const auto kind = vocabulary::standard().kind(tokens[p]);
    if (kind == tasks::token_class::word || kind == tasks::token_class::pseudo_word) {
      // Repeated words weigh more, as in the sharp population.
      const double gain_per_log = profile_.aggregation_sharpness > 0
                                      ? profile_.aggregation_repeat_gain / profile_.aggregation_sharpness
                                      : 0.0;
      const auto w = static_cast<float>(1.0 + gain_per_log * std::log1p(static_cast<double>(earlier)));
      const float* category = &category_directions_[idx * d];
      for (std::uint32_t i = 0; i < d; ++i) key[i] += w * category[i];
    }
    value_scale = static_cast<float>(profile_.aggregation_value_scale);
  }
  assign(vt, value_row(tokens[p]), value_scale, value);
}

void mechanistic_model::query_realistic(std::uint32_t layer, std::uint32_t q, std::span<const token> tokens,
                                        float* o) const {
  const realistic_knobs& k = *profile_.realistic;
  const std::uint32_t d = profile_.head_dim, hq = profile_.n_query_heads, group = hq / profile_.n_kv_heads;
  const std::uint32_t h = q / group;
  const std::size_t idx = static_cast<std::size_t>(layer) * profile_.n_kv_heads + h;
  const query_knobs& kn = query_knobs_[static_cast<std::size_t>(layer) * hq + q];
  const std::size_t t = tokens.size();
  const double sqrt_d = std::sqrt(static_cast<double>(d));
  thread_local std::vector<float> part;
  part.assign(d, 0.0f);
  // noise' meets a key's token part (norm key_token over content dims) with a logit of sd
  // kn.noise; local' meets the key mean with kn.local at distance 0.
  const float gain = content_gains_[idx];
  const auto noise = static_cast<float>(kn.noise * d / (gain * k.key_token));
  const auto local = static_cast<float>(k.key_mean > 0 ? kn.local * sqrt_d / k.key_mean : 0.0);
  apply(value_transform(layer, h), key_row(tokens[t - 1]), static_cast<float>(k.query_token) * gain, part.data());
  const float* mask = &content_masks_[idx * d];
  const float* dir = &noise_directions_[(static_cast<std::size_t>(layer) * hq + q) * d];
  const float* mean = &mean_directions_[idx * d];
  for (std::uint32_t i = 0; i < d; ++i) part[i] = noise * (part[i] * mask[i] + dir[i]) + local * mean[i];
  rotary(part.data(), static_cast<double>(t), 1.0f, o);
  std::fill(o + d - 2 * k.sink_pairs, o + d, 0.0f);
  float sink_logit = kn.sink;
  const head_role role = profile_.roles[layer][h];
  const bool cued = role == head_role::aggregation && aggregation_cued(tokens);
  if (role == head_role::aggregation && !cued) {
    // A dormant head: it rests on the first token until a cue wakes it (active and dormant
    // heads: Guo et al., arXiv 2410.13835), so its large values stay out of the readout.
    const auto dormant = static_cast<float>(k.dormant_share);
    for (std::uint32_t i = 0; i < d; ++i) o[i] *= dormant;
    sink_logit = static_cast<float>(profile_.sink_sharpness);
  }
  if (kn.matches) {
    // The retrieval query: the last w tokens through the key slots (each query head its
    // own weights), with an exact match at logit sharpness * w / 3.
    const float* w = &query_weights_[(static_cast<std::size_t>(layer) * hq + q) * slots_];
    retrieval_code(layer, h, tokens, t, w,
                   static_cast<float>(profile_.retrieval_sharpness * window(layer, h) / 3.0 * sqrt_d), part.data());
    for (std::uint32_t i = 0; i < d; ++i) o[i] += part[i];
    sink_logit = static_cast<float>(profile_.retrieval_rest * window(layer, h) / 3.0);
  } else if (cued) {
    const float* category = &category_directions_[idx * d];
    const auto c = static_cast<float>(profile_.aggregation_sharpness * sqrt_d);
    for (std::uint32_t i = 0; i < d; ++i) o[i] += c * category[i];
  }
  const float* sink = &sink_directions_[idx * d];
  const float* bias = &bias_directions_[idx * d];
  const auto s = static_cast<float>(sink_logit * sqrt_d);
  const auto b = static_cast<float>(kn.offset * sqrt_d / k.key_bias);
  for (std::uint32_t i = 0; i < d; ++i) o[i] += s * sink[i] + b * bias[i];
}

}  // namespace attnbench
