#include "model.hpp"

#include "json-util.hpp"

#include <attnbench/kernels/random.hpp>
#include <attnbench/kernels/reproducible.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace attnbench {

using tasks::token;
using tasks::vocabulary;

const char* head_role_name(head_role role) {
  switch (role) {
    case head_role::retrieval: return "retrieval";
    case head_role::sink: return "sink";
    case head_role::local: return "local";
    case head_role::aggregation: return "aggregation";
  }
  return "unknown";
}

nlohmann::json model_profile::to_json() const {
  nlohmann::json roles_json = nlohmann::json::array();
  for (const auto& layer : roles) {
    nlohmann::json l = nlohmann::json::array();
    for (auto r : layer) l.push_back(head_role_name(r));
    roles_json.push_back(l);
  }
  return {{"name", name},
          {"n_layers", n_layers},
          {"n_query_heads", n_query_heads},
          {"n_kv_heads", n_kv_heads},
          {"head_dim", head_dim},
          {"roles", roles_json},
          {"retrieval_windows", retrieval_windows},
          {"retrieval_sharpness", retrieval_sharpness},
          {"sink_sharpness", sink_sharpness},
          {"sink_value_scale", sink_value_scale},
          {"query_jitter", query_jitter},
          {"retrieval_rest", retrieval_rest},
          {"local_sharpness", local_sharpness},
          {"local_span", local_span},
          {"local_value_scale", local_value_scale},
          {"aggregation_sharpness", aggregation_sharpness},
          {"aggregation_value_scale", aggregation_value_scale},
          {"aggregation_repeat_gain", aggregation_repeat_gain},
          {"aggregation_cues", aggregation_cues},
          {"aggregation_cue_window", aggregation_cue_window}};
}

model_profile load_profile(const std::filesystem::path& file) {
  const nlohmann::json j = read_json_file(file);
  const json_reader r(file.string());
  r.expect_object(j, "");
  r.reject_unknown_keys(j, "", {"name", "description", "n_layers", "n_query_heads", "n_kv_heads", "head_dim", "roles",
                                "retrieval_windows", "retrieval_sharpness", "sink_sharpness", "sink_value_scale",
                                "query_jitter", "retrieval_rest", "local_sharpness", "local_span", "local_value_scale",
                                "aggregation_sharpness", "aggregation_value_scale", "aggregation_repeat_gain", "aggregation_cues",
                                "aggregation_cue_window"});
  auto required = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) r.fail(std::string("/").append(key), "required field is missing");
    return j.at(key);
  };
  model_profile p;
  p.name = j.contains("name") ? r.string(j["name"], "/name") : file.stem().string();
  p.n_layers = static_cast<std::uint32_t>(r.integer(required("n_layers"), "/n_layers", 1, 256));
  p.n_query_heads = static_cast<std::uint32_t>(r.integer(required("n_query_heads"), "/n_query_heads", 1, 1024));
  p.n_kv_heads = static_cast<std::uint32_t>(r.integer(required("n_kv_heads"), "/n_kv_heads", 1, 1024));
  p.head_dim = static_cast<std::uint32_t>(r.integer(required("head_dim"), "/head_dim", 8, 1024));
  if (p.n_query_heads % p.n_kv_heads != 0)
    r.fail("/n_query_heads", "must be a multiple of n_kv_heads (" + std::to_string(p.n_kv_heads) + "), got " +
                                 std::to_string(p.n_query_heads));
  if (j.contains("retrieval_windows")) {
    const auto& w = j["retrieval_windows"];
    r.expect_array(w, "/retrieval_windows", true);
    p.retrieval_windows.clear();
    for (std::size_t i = 0; i < w.size(); ++i)
      p.retrieval_windows.push_back(
          static_cast<std::uint32_t>(r.integer(w[i], "/retrieval_windows/" + std::to_string(i), 1, 32)));
  }
  if (j.contains("retrieval_sharpness"))
    p.retrieval_sharpness = r.number(j["retrieval_sharpness"], "/retrieval_sharpness", 0.0, 1000.0);
  if (j.contains("sink_sharpness")) p.sink_sharpness = r.number(j["sink_sharpness"], "/sink_sharpness", 0.0, 1000.0);
  if (j.contains("sink_value_scale"))
    p.sink_value_scale = r.number(j["sink_value_scale"], "/sink_value_scale", 0.0, 100.0);
  if (j.contains("query_jitter")) p.query_jitter = r.number(j["query_jitter"], "/query_jitter", 0.0, 1.0);
  auto optional_number = [&](const char* key, double& field, double lo, double hi) {
    if (j.contains(key)) field = r.number(j[key], std::string("/").append(key), lo, hi);
  };
  optional_number("retrieval_rest", p.retrieval_rest, 0.0, 1000.0);
  optional_number("local_sharpness", p.local_sharpness, 0.0, 1000.0);
  optional_number("local_span", p.local_span, 2.0, 1e9);
  optional_number("local_value_scale", p.local_value_scale, 0.0, 100.0);
  optional_number("aggregation_sharpness", p.aggregation_sharpness, 0.0, 1000.0);
  optional_number("aggregation_value_scale", p.aggregation_value_scale, 0.0, 1000.0);
  optional_number("aggregation_repeat_gain", p.aggregation_repeat_gain, 0.0, 100.0);
  if (j.contains("aggregation_cue_window"))
    p.aggregation_cue_window =
        static_cast<std::uint32_t>(r.integer(j["aggregation_cue_window"], "/aggregation_cue_window", 1, 4096));
  if (j.contains("aggregation_cues")) {
    const auto& c = j["aggregation_cues"];
    r.expect_array(c, "/aggregation_cues", false);
    p.aggregation_cues.clear();
    for (std::size_t i = 0; i < c.size(); ++i) {
      const std::string ptr = "/aggregation_cues/" + std::to_string(i);
      std::string word = r.string(c[i], ptr);
      if (!vocabulary::standard().contains(word)) r.fail(ptr, "\"" + word + "\" is not a vocabulary word");
      p.aggregation_cues.push_back(std::move(word));
    }
  }

  // roles: one array of n_kv_heads role names used by every layer, or one such array per layer.
  const auto& roles = required("roles");
  r.expect_array(roles, "/roles", true);
  auto parse_layer = [&](const nlohmann::json& arr, const std::string& ptr) {
    r.expect_array(arr, ptr, true);
    if (arr.size() != p.n_kv_heads)
      r.fail(ptr, "expected " + std::to_string(p.n_kv_heads) + " roles (one per KV head), got " +
                      std::to_string(arr.size()));
    std::vector<head_role> out;
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const std::string name = r.string(arr[i], ptr + "/" + std::to_string(i));
      if (name == "retrieval") out.push_back(head_role::retrieval);
      else if (name == "sink") out.push_back(head_role::sink);
      else if (name == "local") out.push_back(head_role::local);
      else if (name == "aggregation") out.push_back(head_role::aggregation);
      else
        r.fail(ptr + "/" + std::to_string(i),
               "unknown head role \"" + name + "\" (known: retrieval, sink, local, aggregation)");
    }
    return out;
  };
  if (roles[0].is_string()) {
    const auto layer = parse_layer(roles, "/roles");
    p.roles.assign(p.n_layers, layer);
  } else {
    if (roles.size() != p.n_layers)
      r.fail("/roles", "expected one role array per layer (" + std::to_string(p.n_layers) + "), got " +
                           std::to_string(roles.size()));
    for (std::size_t l = 0; l < roles.size(); ++l) p.roles.push_back(parse_layer(roles[l], "/roles/" + std::to_string(l)));
  }
  return p;
}

namespace {

// Hot loops here are elementwise or use reproducible_dot, and carry
// ATTNBENCH_REPRODUCIBLE_CLONES; CMake sets -ffp-contract=off for this file, so every
// version gives the same bits (see attnbench/kernels/reproducible.hpp).

void random_unit(rng& r, float* out, std::uint32_t d) {
  double norm2 = 0;
  for (std::uint32_t i = 0; i < d; ++i) {
    out[i] = static_cast<float>(r.normal());
    norm2 += static_cast<double>(out[i]) * out[i];
  }
  const auto inv = static_cast<float>(1.0 / std::sqrt(norm2));
  for (std::uint32_t i = 0; i < d; ++i) out[i] *= inv;
}

// v -= (v . dir) dir for a unit dir.
void project_out(float* v, const float* dir, std::uint32_t d) {
  const double dot = kernels::reproducible_dot(v, dir, d);
  for (std::uint32_t i = 0; i < d; ++i) v[i] -= static_cast<float>(dot) * dir[i];
}

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

void normalize(float* v, std::uint32_t d, float target_norm) {
  const double norm2 = kernels::reproducible_dot(v, v, d);
  if (norm2 == 0) return;
  const auto f = static_cast<float>(target_norm / std::sqrt(norm2));
  for (std::uint32_t i = 0; i < d; ++i) v[i] *= f;
}

}  // namespace

synthetic_model::synthetic_model(model_profile profile, std::uint64_t seed)
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
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l) {
    std::uint32_t nth_retrieval = 0;
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
  // cos and sin of (k << 8 * level) * theta for k < 256, so that any position's phases
  // come from four table rows and three complex products instead of d / 2 calls to sincos.
  rotary_table_.resize(std::size_t{kRotaryLevels} * 256 * pairs * 2);
  for (std::uint32_t level = 0; level < kRotaryLevels; ++level)
    for (std::uint32_t k = 0; k < 256; ++k)
      for (std::uint32_t i = 0; i < pairs; ++i) {
        const double a = static_cast<double>(std::uint64_t{k} << (8 * level)) * thetas_[i];
        double* row = &rotary_table_[(std::size_t{level} * 256 + k) * pairs * 2];
        row[i] = std::cos(a);
        row[pairs + i] = std::sin(a);
      }
  for (const auto& w : profile_.aggregation_cues) cues_.push_back(vocabulary::standard().id(w));
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

void synthetic_model::rotary(const float* u, double position, float scale, float* dst) const {
  const std::uint32_t pairs = profile_.head_dim / 2;
  const auto p = static_cast<std::uint64_t>(position);
  const double* rows[kRotaryLevels];
  for (std::uint32_t level = 0; level < kRotaryLevels; ++level)
    rows[level] = &rotary_table_[(std::size_t{level} * 256 + ((p >> (8 * level)) & 255u)) * pairs * 2];
  rotate_pairs<kRotaryLevels>(pairs, rows, u, scale, dst);
}

bool synthetic_model::aggregation_cued(std::span<const token> tokens) const {
  const std::size_t n = std::min<std::size_t>(tokens.size(), profile_.aggregation_cue_window);
  for (std::size_t i = tokens.size() - n; i < tokens.size(); ++i)
    if (std::find(cues_.begin(), cues_.end(), tokens[i]) != cues_.end()) return true;
  return false;
}

const synthetic_model::transform& synthetic_model::key_transform(std::uint32_t layer, std::uint32_t kv_head,
                                                                 std::uint32_t slot) const {
  return key_transforms_[(static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head) * slots_ + slot];
}

const synthetic_model::transform& synthetic_model::value_transform(std::uint32_t layer, std::uint32_t kv_head) const {
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

void synthetic_model::apply(const transform& t, const float* row, float scale, float* dst) const {
  shifted_axpy(profile_.head_dim, t.shift, t.signs.data(), row, scale, dst);
}

void synthetic_model::assign(const transform& t, const float* row, float scale, float* dst) const {
  shifted_assign(profile_.head_dim, t.shift, t.signs.data(), row, scale, dst);
}

void synthetic_model::apply_inverse(const transform& t, const float* src, float scale, float* dst) const {
  shifted_axpy_inverse(profile_.head_dim, t.shift, t.signs.data(), src, scale, dst);
}

void synthetic_model::key_value(std::uint32_t layer, std::uint32_t kv_head, std::span<const token> tokens,
                                std::size_t p, std::uint32_t earlier, float* key, float* value) const {
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

bool synthetic_model::has_role(head_role role) const {
  for (const auto& layer : profile_.roles)
    if (std::find(layer.begin(), layer.end(), role) != layer.end()) return true;
  return false;
}

void synthetic_model::append_from(std::span<const token> tokens, std::size_t first, kernels::kv_cache& cache) const {
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

void synthetic_model::prefill(std::span<const token> tokens, kernels::kv_cache& cache) const {
  append_from(tokens, 0, cache);
}

void synthetic_model::append_last(std::span<const token> tokens, kernels::kv_cache& cache) const {
  append_from(tokens, tokens.size() - 1, cache);
}

void synthetic_model::queries(std::uint32_t layer, std::span<const token> tokens, float* out) const {
  const std::uint32_t d = profile_.head_dim;
  const std::uint32_t group = profile_.n_query_heads / profile_.n_kv_heads;
  const std::uint32_t slots = slots_;
  const std::size_t t = tokens.size();  // position being predicted
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

std::vector<synthetic_model::candidate> synthetic_model::readout_candidates(const float* outputs, std::size_t k) const {
  const std::uint32_t d = profile_.head_dim;
  const std::uint32_t group = profile_.n_query_heads / profile_.n_kv_heads;
  // Logits are value_table . sum_heads inverse_value_transform(output): each head's
  // output is read in its own value basis, then all heads vote.
  std::vector<float> residual(d, 0.0f);
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l)
    for (std::uint32_t q = 0; q < profile_.n_query_heads; ++q) {
      const float* o = outputs + (static_cast<std::size_t>(l) * profile_.n_query_heads + q) * d;
      apply_inverse(value_transform(l, q / group), o, 1.0f, residual.data());
    }
  const auto& vocab = vocabulary::standard();
  // Several answers superposed in one d-dimensional residual (a multi-value key, the ten
  // most common words) are separated by orthogonal matching pursuit: each round takes
  // the token whose value embedding best matches what is left, then refits all chosen
  // tokens' amplitudes by least squares, so that random overlaps between embeddings
  // (cosines of 0.3 to 0.4 among thousands of 128-dimensional vectors) neither pass for
  // answers nor hide them. A candidate's logit is its fitted amplitude; with k = 1 that is
  // the plain argmax logit. Ties go to the lower token id.
  std::vector<token> chosen;
  std::vector<double> amplitude;
  std::vector<float> left = residual;
  auto scan = [&](bool pick, double* sd) {
    token best = -1;
    float best_logit = -std::numeric_limits<float>::infinity();
    double sum = 0, sum2 = 0, n = 0;
    for (std::size_t t = 0; t < vocab.size(); ++t) {
      const float* row = value_row(static_cast<token>(t));
      float logit = 0;
      for (std::uint32_t j = 0; j < d; ++j) logit += row[j] * left[j];
      if (!vocab.is_special(static_cast<token>(t))) {
        sum += logit;
        sum2 += static_cast<double>(logit) * logit;
        n += 1;
      }
      // The first pick is the plain argmax over answers, as greedy decoding reads it.
      if (pick && logit > best_logit && !(chosen.empty() && vocab.is_special(static_cast<token>(t))) &&
          std::find(chosen.begin(), chosen.end(), static_cast<token>(t)) == chosen.end()) {
        best_logit = logit;
        best = static_cast<token>(t);
      }
    }
    const double mean = sum / n;
    *sd = std::sqrt(std::max(0.0, sum2 / n - mean * mean));
    return best;
  };
  // Special tokens take part in the fit (heads resting on <bos> leave its small value in
  // the readout, and only <bos> should explain it) but are never answers.
  std::size_t answers = 0;
  double sd = 0;  // of the latest scan
  while (answers < k) {
    const token best = scan(true, &sd);
    if (best < 0) break;
    chosen.push_back(best);
    if (!vocab.is_special(best)) ++answers;
    // Least squares over the chosen embeddings: solve G a = b by Gaussian elimination.
    const std::size_t m = chosen.size();
    std::vector<double> g(m * m), rhs(m);
    for (std::size_t x = 0; x < m; ++x) {
      const float* rx = value_row(chosen[x]);
      for (std::size_t y = 0; y < m; ++y) {
        const float* ry = value_row(chosen[y]);
        double dot = 0;
        for (std::uint32_t j = 0; j < d; ++j) dot += static_cast<double>(rx[j]) * ry[j];
        g[x * m + y] = dot;
      }
      double dot = 0;
      for (std::uint32_t j = 0; j < d; ++j) dot += static_cast<double>(rx[j]) * residual[j];
      rhs[x] = dot;
    }
    for (std::size_t c = 0; c < m; ++c) {
      std::size_t piv = c;
      for (std::size_t x = c + 1; x < m; ++x)
        if (std::abs(g[x * m + c]) > std::abs(g[piv * m + c])) piv = x;
      for (std::size_t y = 0; y < m; ++y) std::swap(g[c * m + y], g[piv * m + y]);
      std::swap(rhs[c], rhs[piv]);
      for (std::size_t x = c + 1; x < m; ++x) {
        const double f = g[x * m + c] / g[c * m + c];
        for (std::size_t y = c; y < m; ++y) g[x * m + y] -= f * g[c * m + y];
        rhs[x] -= f * rhs[c];
      }
    }
    amplitude.assign(m, 0.0);
    for (std::size_t c = m; c-- > 0;) {
      double v = rhs[c];
      for (std::size_t y = c + 1; y < m; ++y) v -= g[c * m + y] * amplitude[y];
      amplitude[c] = v / g[c * m + c];
    }
    left = residual;
    for (std::size_t x = 0; x < m; ++x) {
      const float* rx = value_row(chosen[x]);
      for (std::uint32_t j = 0; j < d; ++j) left[j] -= static_cast<float>(amplitude[x]) * rx[j];
    }
  }
  // The noise floor: what is left once every candidate is fitted. A greedy step (k = 1)
  // never compares against it, so it keeps the first scan's figure and skips a pass.
  if (k > 1) scan(false, &sd);
  std::vector<candidate> out;
  for (std::size_t x = 0; x < chosen.size(); ++x)
    if (!vocab.is_special(chosen[x])) out.push_back({chosen[x], static_cast<float>(amplitude[x]), static_cast<float>(sd)});
  return out;
}

token synthetic_model::readout(const float* outputs) const { return readout_candidates(outputs, 1).front().token; }

}  // namespace attnbench
