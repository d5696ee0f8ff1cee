#include "model.hpp"

#include "json-util.hpp"

#include <attnbench/kernels/random.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace attnbench {

using tasks::token;
using tasks::vocabulary;

const char* head_role_name(head_role role) {
  switch (role) {
    case head_role::retrieval: return "retrieval";
    case head_role::sink: return "sink";
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
          {"query_jitter", query_jitter}};
}

model_profile load_profile(const std::filesystem::path& file) {
  const nlohmann::json j = read_json_file(file);
  const json_reader r(file.string());
  r.expect_object(j, "");
  r.reject_unknown_keys(j, "", {"name", "description", "n_layers", "n_query_heads", "n_kv_heads", "head_dim", "roles",
                                "retrieval_windows", "retrieval_sharpness", "sink_sharpness", "sink_value_scale",
                                "query_jitter"});
  auto required = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) r.fail("/" + std::string(key), "required field is missing");
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
      else r.fail(ptr + "/" + std::to_string(i), "unknown head role \"" + name + "\" (known: retrieval, sink)");
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

void random_unit(rng& r, float* out, std::uint32_t d) {
  double norm2 = 0;
  for (std::uint32_t i = 0; i < d; ++i) {
    out[i] = static_cast<float>(r.normal());
    norm2 += static_cast<double>(out[i]) * out[i];
  }
  const auto inv = static_cast<float>(1.0 / std::sqrt(norm2));
  for (std::uint32_t i = 0; i < d; ++i) out[i] *= inv;
}

void normalize(float* v, std::uint32_t d, float target_norm) {
  double norm2 = 0;
  for (std::uint32_t i = 0; i < d; ++i) norm2 += static_cast<double>(v[i]) * v[i];
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
  key_table_.resize(vocab * d);
  value_table_.resize(vocab * d);
  for (std::size_t t = 0; t < vocab; ++t) random_unit(r, &key_table_[t * d], d);
  for (std::size_t t = 0; t < vocab; ++t) random_unit(r, &value_table_[t * d], d);

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
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l)
    for (std::uint32_t q = 0; q < profile_.n_query_heads; ++q)
      for (std::uint32_t s = 0; s < slots; ++s)
        query_weights_.push_back(static_cast<float>(1.0 + profile_.query_jitter * (2.0 * r.uniform() - 1.0)));
}

const synthetic_model::transform& synthetic_model::key_transform(std::uint32_t layer, std::uint32_t kv_head,
                                                                 std::uint32_t slot) const {
  return key_transforms_[(static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head) * slots_ + slot];
}

const synthetic_model::transform& synthetic_model::value_transform(std::uint32_t layer, std::uint32_t kv_head) const {
  return value_transforms_[static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head];
}

void synthetic_model::apply(const transform& t, const float* src, float scale, float* dst) const {
  const std::uint32_t d = profile_.head_dim;
  for (std::uint32_t i = 0; i < d; ++i) {
    std::uint32_t j = i + t.shift;
    if (j >= d) j -= d;
    dst[i] += scale * t.signs[i] * src[j];
  }
}

void synthetic_model::apply_inverse(const transform& t, const float* src, float scale, float* dst) const {
  const std::uint32_t d = profile_.head_dim;
  for (std::uint32_t i = 0; i < d; ++i) {
    std::uint32_t j = i + t.shift;
    if (j >= d) j -= d;
    dst[j] += scale * t.signs[i] * src[i];
  }
}

void synthetic_model::key_value(std::uint32_t layer, std::uint32_t kv_head, std::span<const token> tokens,
                                std::size_t p, float* key, float* value) const {
  const std::uint32_t d = profile_.head_dim;
  std::fill(key, key + d, 0.0f);
  std::fill(value, value + d, 0.0f);
  const transform& vt = value_transform(layer, kv_head);
  switch (profile_.roles[layer][kv_head]) {
    case head_role::retrieval: {
      // key(p) encodes tokens p-1 ... p-window, each through its own slot transform.
      for (std::uint32_t j = 1; j <= window(layer, kv_head) && j <= p; ++j)
        apply(key_transform(layer, kv_head, j), key_row(tokens[p - j]), 1.0f, key);
      if (p == 0) apply(key_transform(layer, kv_head, 0), key_row(tokens[0]), 1.0f, key);
      normalize(key, d, 1.0f);
      apply(vt, value_row(tokens[p]), 1.0f, value);
      break;
    }
    case head_role::sink: {
      const float* dir = &sink_directions_[(static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head) * d];
      if (p == 0) {
        std::copy(dir, dir + d, key);
        apply(vt, value_row(tokens[p]), static_cast<float>(profile_.sink_value_scale), value);
      } else {
        apply(key_transform(layer, kv_head, 0), key_row(tokens[p]), 1.0f, key);
        apply(vt, value_row(tokens[p]), 1.0f, value);
      }
      break;
    }
  }
}

void synthetic_model::append_from(std::span<const token> tokens, std::size_t first, kernels::kv_cache& cache) const {
  const std::uint32_t d = profile_.head_dim;
  const std::size_t n = tokens.size() - first;
  const std::size_t pairs = static_cast<std::size_t>(profile_.n_layers) * profile_.n_kv_heads;
  tbb::parallel_for(std::size_t{0}, pairs, [&](std::size_t idx) {
    const auto layer = static_cast<std::uint32_t>(idx / profile_.n_kv_heads);
    const auto kv_head = static_cast<std::uint32_t>(idx % profile_.n_kv_heads);
    // Sized to the work: a decode step appends one token and allocates one row, not a
    // prefill chunk.
    const std::size_t chunk = std::min<std::size_t>(1024, n);
    std::vector<float> keys(chunk * d), values(chunk * d);
    std::vector<std::int64_t> positions(chunk);
    for (std::size_t start = 0; start < n; start += chunk) {
      const std::size_t count = std::min(chunk, n - start);
      for (std::size_t i = 0; i < count; ++i) {
        const std::size_t p = first + start + i;
        positions[i] = static_cast<std::int64_t>(p);
        key_value(layer, kv_head, tokens, p, &keys[i * d], &values[i * d]);
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
    // Queries carry sharpness * sqrt(d) in their norm so that scale * q.k = sharpness * cos.
    switch (profile_.roles[layer][kv_head]) {
      case head_role::retrieval:
        for (std::uint32_t j = 1; j <= window(layer, kv_head) && j <= t; ++j)
          apply(key_transform(layer, kv_head, j), key_row(tokens[t - j]), w[j], o);
        // Every mismatched context token costs sharpness / 3 of logit, whatever the window.
        normalize(o, d, static_cast<float>(profile_.retrieval_sharpness * window(layer, kv_head) / 3.0 * std::sqrt(d)));
        break;
      case head_role::sink: {
        const float* dir = &sink_directions_[(static_cast<std::size_t>(layer) * profile_.n_kv_heads + kv_head) * d];
        for (std::uint32_t i = 0; i < d; ++i) o[i] = dir[i];
        // A little dependence on the last token, different for each head of the group.
        apply(key_transform(layer, kv_head, 1), key_row(tokens[t - 1]), 0.2f * w[1], o);
        normalize(o, d, static_cast<float>(profile_.sink_sharpness * std::sqrt(d)));
        break;
      }
    }
  }
}

std::vector<std::pair<token, float>> synthetic_model::readout_candidates(const float* outputs, std::size_t k,
                                                                         float* logit_sd) const {
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
  auto logit_of = [&](std::size_t t) {
    const float* row = value_row(static_cast<token>(t));
    float logit = 0;
    for (std::uint32_t i = 0; i < d; ++i) logit += row[i] * residual[i];
    return logit;
  };
  std::vector<std::pair<token, float>> out;
  double sum = 0, sum2 = 0, n = 0;
  // Candidate i is the best token of what candidates 0 .. i-1 leave of the residual (their
  // unit value vectors projected out), so a token that merely resembles a better one by
  // chance does not pass for an answer of its own. Ties go to the lower token id.
  for (std::size_t i = 0; i < k; ++i) {
    token best = -1;
    float best_logit = -std::numeric_limits<float>::infinity();
    for (std::size_t t = 0; t < vocab.size(); ++t) {
      if (vocab.is_special(static_cast<token>(t))) continue;  // special tokens are never predicted
      const float logit = logit_of(t);
      if (i == 0) {
        sum += logit;
        sum2 += static_cast<double>(logit) * logit;
        n += 1;
      }
      if (logit > best_logit) {
        best_logit = logit;
        best = static_cast<token>(t);
      }
    }
    if (best < 0) break;
    out.emplace_back(best, best_logit);
    const float* row = value_row(best);
    for (std::uint32_t j = 0; j < d; ++j) residual[j] -= best_logit * row[j];
  }
  if (logit_sd) *logit_sd = n > 0 ? static_cast<float>(std::sqrt(std::max(0.0, sum2 / n - (sum / n) * (sum / n)))) : 0;
  return out;
}

token synthetic_model::readout(const float* outputs) const { return readout_candidates(outputs, 1).front().first; }

}  // namespace attnbench
