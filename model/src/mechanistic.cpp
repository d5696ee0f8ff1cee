#include <attnbench/model/mechanistic.hpp>


#include "vectors.hpp"

#include <attnbench/kernels/random.hpp>
#include <attnbench/kernels/reproducible.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace attnbench {

using tasks::token;
using tasks::vocabulary;
using model_detail::normalize;
using model_detail::project_out;
using model_detail::random_unit;

namespace {

// Hot loops here are elementwise or use reproducible_dot, and carry
// ATTNBENCH_REPRODUCIBLE_CLONES; CMake sets -ffp-contract=off for this file, so every
// version gives the same bits (see attnbench/kernels/reproducible.hpp).

// v = unit(v - (v . dir) dir) for a near-unit dir with |dir|^2 = dir_norm2, both dot
// products taken from the v given: |v - a dir|^2 = v.v - 2a^2 + a^2 dir_norm2 with a = v.dir.
ATTNBENCH_REPRODUCIBLE_CLONES void project_normalize(float* __restrict v, const float* __restrict dir, double dir_norm2,
                                        std::uint32_t d) {
  const double a = kernels::reproducible_dot(v, dir, d);
  const double norm2 = kernels::reproducible_dot(v, v, d) - 2.0 * a * a + a * a * dir_norm2;
  if (!(norm2 > 0)) return;
  const auto fa = static_cast<float>(a);
  const auto f = static_cast<float>(1.0 / std::sqrt(norm2));
  for (std::size_t k = 0; k < d; ++k) v[k] = (v[k] - fa * dir[k]) * f;
}

}  // namespace

mechanistic_model::mechanistic_model(model_profile profile, std::uint64_t seed)
    : profile_(std::move(profile)), seed_(seed), scale_(static_cast<float>(1.0 / std::sqrt(profile_.head_dim))) {
  const std::uint32_t d = profile_.head_dim;
  const std::size_t vocab = vocabulary::standard().size();
  rng r(hash_combine(seed, 0x6d6f64656cull));  // "model"
  // Each row is stored twice in a row of 2 * d floats, so that a cyclic shift of it is one
  // straight run of d floats (see shifted_axpy).
  key_table_.resize(vocab * 2 * d);
  value_table_.resize(vocab * 2 * d);
  // Embeddings come from streams of their own, token by token, so a vocabulary that grows
  // at its end leaves earlier tokens' embeddings and every head's maps as they were.
  rng rk(hash_combine(seed, 0x6b657973ull));    // "keys"
  rng rv(hash_combine(seed, 0x76616c756573ull));  // "values"
  for (std::size_t t = 0; t < vocab; ++t) random_unit(rk, &key_table_[t * 2 * d], d);
  for (std::size_t t = 0; t < vocab; ++t) random_unit(rv, &value_table_[t * 2 * d], d);
  for (auto* table : {&key_table_, &value_table_})
    for (std::size_t t = 0; t < vocab; ++t)
      std::copy_n(&(*table)[t * 2 * d], d, &(*table)[t * 2 * d + d]);

  auto make_transform = [&] {
    transform t;
    t.signs.resize(d);
    for (auto& s : t.signs) s = (r.next() >> 63) ? 1.0f : -1.0f;
    t.shift = static_cast<std::uint32_t>(r.below(d));
    return t;
  };
  slots_ = *std::max_element(profile_.retrieval_windows.begin(), profile_.retrieval_windows.end()) + 1;
  const std::uint32_t slots = slots_;
  std::uint32_t nth_retrieval = 0;
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l) {
    // Windows alternate over a layer's retrieval heads (sharp), or over the model's
    // (realistic: a layer has two or none, and both windows must be spread over depth).
    if (!profile_.realistic) nth_retrieval = 0;
    for (std::uint32_t h = 0; h < profile_.n_kv_heads; ++h)
      windows_.push_back(profile_.roles[l][h] == head_role::retrieval
                             ? profile_.retrieval_windows[nth_retrieval++ % profile_.retrieval_windows.size()]
                             : 0);
  }
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l)
    for (std::uint32_t h = 0; h < profile_.n_kv_heads; ++h) {
      for (std::uint32_t s = 0; s < slots; ++s) key_transforms_.push_back(make_transform());
      value_transforms_.push_back(make_transform());
      sink_directions_.resize(sink_directions_.size() + d);
      random_unit(r, &sink_directions_[sink_directions_.size() - d], d);
    }
  for (std::size_t h = 0; h * d < sink_directions_.size(); ++h)
    sink_norms2_.push_back(kernels::reproducible_dot(&sink_directions_[h * d], &sink_directions_[h * d], d));
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l)
    for (std::uint32_t q = 0; q < profile_.n_query_heads; ++q)
      for (std::uint32_t s = 0; s < slots; ++s)
        query_weights_.push_back(static_cast<float>(1.0 + profile_.query_jitter * (2.0 * r.uniform() - 1.0)));
  // Drawn after everything above, so adding roles left the older heads' numbers as they were.
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l)
    for (std::uint32_t h = 0; h < profile_.n_kv_heads; ++h) {
      category_directions_.resize(category_directions_.size() + d);
      float* c = &category_directions_[category_directions_.size() - d];
      random_unit(r, c, d);
      project_out(c, direction(sink_directions_, l, h), d);
      normalize(c, d, 1.0f);
    }
  // Local heads' rotary frequencies: periods log-spaced from local_span / 8 to
  // 4 * local_span tokens, so q.k stays near its peak over the last tens of tokens, falls
  // over the next hundreds and is noise beyond.
  const std::uint32_t pairs = d / 2;
  const double fastest = 2.0 * 3.141592653589793 / (profile_.local_span / 8.0);
  for (std::uint32_t i = 0; i < pairs; ++i)
    thetas_.push_back(fastest * std::pow(1.0 / 32.0, pairs > 1 ? static_cast<double>(i) / (pairs - 1) : 0.0));
  fill_rotary_table();
  for (const auto& w : profile_.aggregation_cues) cues_.push_back(vocabulary::standard().id(w));
  if (profile_.realistic) setup_realistic();
}

void mechanistic_model::fill_rotary_table() {
  // cos and sin of (k << 8 * level) * theta for k < 256, so that any position's phases
  // come from four table rows and three complex products instead of d / 2 calls to sincos.
  const std::size_t pairs = thetas_.size();
  rotary_table_.assign(std::size_t{kRotaryLevels} * 256 * pairs * 2, 0.0);
  for (std::uint32_t level = 0; level < kRotaryLevels; ++level)
    for (std::uint32_t k = 0; k < 256; ++k)
      for (std::size_t i = 0; i < pairs; ++i) {
        const double a = static_cast<double>(std::uint64_t{k} << (8 * level)) * thetas_[i];
        double* row = &rotary_table_[(std::size_t{level} * 256 + k) * pairs * 2];
        row[i] = std::cos(a);
        row[pairs + i] = std::sin(a);
      }
}

namespace {

// dst = scale * (rotation of u's coordinate pairs by the product of the levels' phases);
// rows[level] holds cos of each pair's phase, then sin. Elementwise over pairs, so it
// vectorises across them and every version gives the same bits.
template <std::uint32_t Levels>
ATTNBENCH_REPRODUCIBLE_CLONES void rotate_pairs(std::size_t pairs, const double* const* rows, const float* __restrict u,
                                   float scale, float* __restrict dst) {
  for (std::size_t i = 0; i < pairs; ++i) {
    double c = 1.0, s = 0.0;
    for (std::uint32_t level = 0; level < Levels; ++level) {
      const double ec = rows[level][i], es = rows[level][pairs + i];
      const double nc = c * ec - s * es;
      s = s * ec + c * es;
      c = nc;
    }
    dst[2 * i] = scale * static_cast<float>(c * u[2 * i] - s * u[2 * i + 1]);
    dst[2 * i + 1] = scale * static_cast<float>(s * u[2 * i] + c * u[2 * i + 1]);
  }
}

}  // namespace

void mechanistic_model::rotary(const float* u, double position, float scale, float* dst) const {
  const std::uint32_t pairs = profile_.head_dim / 2;
  const auto p = static_cast<std::uint64_t>(position);
  const double* rows[kRotaryLevels];
  for (std::uint32_t level = 0; level < kRotaryLevels; ++level)
    rows[level] = &rotary_table_[(std::size_t{level} * 256 + ((p >> (8 * level)) & 255u)) * pairs * 2];
  rotate_pairs<kRotaryLevels>(pairs, rows, u, scale, dst);
}

bool mechanistic_model::aggregation_cued(std::span<const token> tokens) const {
  const std::size_t n = std::min<std::size_t>(tokens.size(), profile_.aggregation_cue_window);
  for (std::size_t i = tokens.size() - n; i < tokens.size(); ++i)
    if (std::find(cues_.begin(), cues_.end(), tokens[i]) != cues_.end()) return true;
  return false;
}

const mechanistic_model::transform& mechanistic_model::key_transform(std::uint32_t layer, std::uint32_t kv_head,
                                                                 std::uint32_t slot) const {
  return key_transforms_[(static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head) * slots_ + slot];
}

const mechanistic_model::transform& mechanistic_model::value_transform(std::uint32_t layer, std::uint32_t kv_head) const {
  return value_transforms_[static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head];
}

namespace {


// src2 is a row stored twice (2 * d floats), so the shifted row is src2[s ... s + d).
ATTNBENCH_REPRODUCIBLE_CLONES void shifted_assign(std::uint32_t d, std::uint32_t s, const float* __restrict sign,
                                     const float* __restrict src2, float scale, float* __restrict dst) {
  const float* __restrict src = src2 + s;
  for (std::size_t i = 0; i < d; ++i) dst[i] = scale * sign[i] * src[i];
}

ATTNBENCH_REPRODUCIBLE_CLONES void shifted_axpy(std::uint32_t d, std::uint32_t s, const float* __restrict sign,
                                   const float* __restrict src2, float scale, float* __restrict dst) {
  const float* __restrict src = src2 + s;  // an offset pointer: a 32-bit i + s would block vector loads
  for (std::size_t i = 0; i < d; ++i) dst[i] += scale * sign[i] * src[i];
}

ATTNBENCH_REPRODUCIBLE_CLONES void shifted_axpy_inverse(std::uint32_t d, std::uint32_t s, const float* __restrict sign,
                                           const float* __restrict src, float scale, float* __restrict dst) {
  for (std::uint32_t i = 0; i < d - s; ++i) dst[i + s] += scale * sign[i] * src[i];
  for (std::uint32_t i = d - s; i < d; ++i) dst[i + s - d] += scale * sign[i] * src[i];
}

}  // namespace

void mechanistic_model::apply(const transform& t, const float* row, float scale, float* dst) const {
  shifted_axpy(profile_.head_dim, t.shift, t.signs.data(), row, scale, dst);
}

void mechanistic_model::assign(const transform& t, const float* row, float scale, float* dst) const {
  shifted_assign(profile_.head_dim, t.shift, t.signs.data(), row, scale, dst);
}

void mechanistic_model::apply_inverse(const transform& t, const float* src, float scale, float* dst) const {
  shifted_axpy_inverse(profile_.head_dim, t.shift, t.signs.data(), src, scale, dst);
}

void mechanistic_model::key_value(std::uint32_t layer, std::uint32_t kv_head, std::span<const token> tokens,
                                std::size_t p, std::uint32_t earlier, float* key, float* value) const {
  if (profile_.realistic) {
    key_value_realistic(layer, kv_head, tokens, p, earlier, key, value);
    return;
  }
  const std::uint32_t d = profile_.head_dim;
  const transform& vt = value_transform(layer, kv_head);
  const float* sink = direction(sink_directions_, layer, kv_head);
  const auto small = static_cast<float>(profile_.sink_value_scale);
  const vocabulary& vocab = vocabulary::standard();
  switch (profile_.roles[layer][kv_head]) {
    case head_role::retrieval: {
      if (p == 0) {  // where the head rests when nothing matches
        std::copy(sink, sink + d, key);
        assign(vt, value_row(tokens[p]), small, value);
        break;
      }
      // key(p) encodes tokens p-1 ... p-window, each through its own slot transform.
      assign(key_transform(layer, kv_head, 1), key_row(tokens[p - 1]), 1.0f, key);
      for (std::uint32_t j = 2; j <= window(layer, kv_head) && j <= p; ++j)
        apply(key_transform(layer, kv_head, j), key_row(tokens[p - j]), 1.0f, key);
      project_normalize(key, sink, sink_norms2_[static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head], d);
      assign(vt, value_row(tokens[p]), 1.0f, value);
      break;
    }
    case head_role::sink: {
      if (p == 0) {
        std::copy(sink, sink + d, key);
        assign(vt, value_row(tokens[p]), small, value);
      } else {
        assign(key_transform(layer, kv_head, 0), key_row(tokens[p]), 1.0f, key);
        assign(vt, value_row(tokens[p]), 1.0f, value);
      }
      break;
    }
    case head_role::local: {
      rotary(sink, static_cast<double>(p), 1.0f, key);
      assign(vt, value_row(tokens[p]), static_cast<float>(profile_.local_value_scale), value);
      break;
    }
    case head_role::aggregation: {
      const float* category = direction(category_directions_, layer, kv_head);
      const auto kind = vocab.kind(tokens[p]);
      if (p == 0) {
        std::copy(sink, sink + d, key);
        assign(vt, value_row(tokens[p]), small, value);
        break;
      }
      if (kind == tasks::token_class::word || kind == tasks::token_class::pseudo_word) {
        // Repeated words weigh more: logit = sharpness + gain * ln(1 + earlier occurrences).
        const double gain = profile_.aggregation_sharpness > 0
                                ? profile_.aggregation_repeat_gain / profile_.aggregation_sharpness
                                : 0.0;
        const auto f = static_cast<float>(1.0 + gain * std::log1p(static_cast<double>(earlier)));
        for (std::uint32_t i = 0; i < d; ++i) key[i] = f * category[i];
      } else {
        assign(key_transform(layer, kv_head, 0), key_row(tokens[p]), 1.0f, key);
        project_out(key, sink, d);
        project_out(key, category, d);
        normalize(key, d, 1.0f);
      }
      assign(vt, value_row(tokens[p]), static_cast<float>(profile_.aggregation_value_scale), value);
      break;
    }
  }
}

bool mechanistic_model::has_role(head_role role) const {
  for (const auto& layer : profile_.roles)
    if (std::find(layer.begin(), layer.end(), role) != layer.end()) return true;
  return false;
}

void mechanistic_model::append_from(std::span<const token> tokens, std::size_t first, kernels::kv_cache& cache) const {
  const std::uint32_t d = profile_.head_dim;
  const std::size_t n = tokens.size() - first;
  const std::size_t pairs = static_cast<std::size_t>(profile_.n_layers) * profile_.n_kv_heads;
  // Earlier occurrences of each appended token, for aggregation heads. A decode step
  // appends a token or a few: count them directly; a prefill counts all in one pass.
  std::vector<std::uint32_t> earlier(n, 0);
  if (has_role(head_role::aggregation)) {
    if (n <= 8) {
      for (std::size_t i = 0; i < n; ++i)
        earlier[i] = static_cast<std::uint32_t>(
            std::count(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(first + i), tokens[first + i]));
    } else {
      std::unordered_map<token, std::uint32_t> counts;
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        auto& c = counts[tokens[i]];
        if (i >= first) earlier[i - first] = c;
        ++c;
      }
    }
  }
  tbb::parallel_for(std::size_t{0}, pairs, [&](std::size_t idx) {
    const auto layer = static_cast<std::uint32_t>(idx / profile_.n_kv_heads);
    const auto kv_head = static_cast<std::uint32_t>(idx % profile_.n_kv_heads);
    // Per-thread scratch, kept between calls (a fresh half-megabyte vector per head would
    // be mapped, zeroed and unmapped each time); safe because nothing in this body waits
    // on oneTBB, so no other append can start on this thread before it ends.
    const std::size_t chunk = std::min<std::size_t>(1024, n);
    thread_local std::vector<float> keys, values;
    thread_local std::vector<std::int64_t> positions;
    if (keys.size() < chunk * d) {
      keys.resize(chunk * d);
      values.resize(chunk * d);
      positions.resize(chunk);
    }
    for (std::size_t start = 0; start < n; start += chunk) {
      const std::size_t count = std::min(chunk, n - start);
      for (std::size_t i = 0; i < count; ++i) {
        const std::size_t p = first + start + i;
        positions[i] = static_cast<std::int64_t>(p);
        key_value(layer, kv_head, tokens, p, earlier[p - first], &keys[i * d], &values[i * d]);
      }
      cache.append(layer, kv_head, count, positions.data(), keys.data(), values.data());
    }
  });
}

void mechanistic_model::prefill(std::span<const token> tokens, kernels::kv_cache& cache) const {
  append_from(tokens, 0, cache);
}

void mechanistic_model::queries(std::uint32_t layer, std::span<const token> tokens, float* out) const {
  const std::uint32_t d = profile_.head_dim;
  const std::uint32_t group = profile_.n_query_heads / profile_.n_kv_heads;
  const std::uint32_t slots = slots_;
  const std::size_t t = tokens.size();  // position being predicted
  if (profile_.realistic) {
    for (std::uint32_t q = 0; q < profile_.n_query_heads; ++q)
      query_realistic(layer, q, tokens, out + static_cast<std::size_t>(q) * d);
    return;
  }
  for (std::uint32_t q = 0; q < profile_.n_query_heads; ++q) {
    const std::uint32_t kv_head = q / group;
    float* o = out + static_cast<std::size_t>(q) * d;
    std::fill(o, o + d, 0.0f);
    const float* w = &query_weights_[(static_cast<std::size_t>(layer) * profile_.n_query_heads + q) * slots];
    const float* sink = direction(sink_directions_, layer, kv_head);
    // Queries carry sharpness * sqrt(d) in their norm so that scale * q.k = sharpness * cos.
    switch (profile_.roles[layer][kv_head]) {
      case head_role::retrieval: {
        for (std::uint32_t j = 1; j <= window(layer, kv_head) && j <= t; ++j)
          apply(key_transform(layer, kv_head, j), key_row(tokens[t - j]), w[j], o);
        // Every mismatched context token costs sharpness / 3 of logit, whatever the window.
        project_out(o, sink, d);
        normalize(o, d, static_cast<float>(profile_.retrieval_sharpness * window(layer, kv_head) / 3.0 * std::sqrt(d)));
        // The rest grows with the window as the query's norm does: random keys reach
        // logits of about 3.5 noise sd (0.3 * the exact-match logit) somewhere in a long
        // context, and the rest must stay above them.
        const auto rest = static_cast<float>(profile_.retrieval_rest * window(layer, kv_head) / 3.0 * std::sqrt(d));
        for (std::uint32_t i = 0; i < d; ++i) o[i] += rest * sink[i];
        break;
      }
      case head_role::sink: {
        for (std::uint32_t i = 0; i < d; ++i) o[i] = sink[i];
        // A little dependence on the last token, different for each head of the group.
        apply(key_transform(layer, kv_head, 1), key_row(tokens[t - 1]), 0.2f * w[1], o);
        normalize(o, d, static_cast<float>(profile_.sink_sharpness * std::sqrt(d)));
        break;
      }
      case head_role::local:
        rotary(sink, static_cast<double>(t), static_cast<float>(profile_.local_sharpness * w[0] * std::sqrt(d)), o);
        break;
      case head_role::aggregation: {
        const bool cued = aggregation_cued(tokens);
        const float* target = cued ? direction(category_directions_, layer, kv_head) : sink;
        for (std::uint32_t i = 0; i < d; ++i) o[i] = target[i];
        apply(key_transform(layer, kv_head, 1), key_row(tokens[t - 1]), 0.2f * w[1], o);
        normalize(o, d,
                  static_cast<float>((cued ? profile_.aggregation_sharpness : profile_.sink_sharpness) * std::sqrt(d)));
        break;
      }
    }
  }
}


}  // namespace attnbench
