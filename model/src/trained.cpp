// The trained model: loading models/NAME/ and the dense forward (trained.hpp).
#include <attnbench/model/trained.hpp>

#include "dense-forward.hpp"
#include "safetensors.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>

namespace attnbench {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "attnbench-trained-1";

json read_config(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw config_error(file.string(), "", "cannot open the model's config (a trained model is a folder with config.json)");
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw config_error(file.string(), "", std::string("not JSON: ") + e.what());
  }
}

std::uint32_t positive(const json& a, const fs::path& file, const char* key) {
  const std::string at = std::string("/architecture/") + key;
  if (!a.contains(key) || !a[key].is_number_unsigned() || a[key].get<std::uint64_t>() == 0 ||
      a[key].get<std::uint64_t>() > (1u << 20))
    throw config_error(file.string(), at, "expected a positive integer");
  return a[key].get<std::uint32_t>();
}

trained_architecture parse_architecture(const json& c, const fs::path& file) {
  if (!c.is_object() || c.value("format", "") != kFormat)
    throw config_error(file.string(), "/format", std::string("expected \"") + kFormat + "\"");
  if (!c.contains("architecture") || !c["architecture"].is_object())
    throw config_error(file.string(), "/architecture", "expected an object");
  const json& a = c["architecture"];
  trained_architecture r;
  r.vocab_size = positive(a, file, "vocab_size");
  r.dim = positive(a, file, "dim");
  r.n_layers = positive(a, file, "n_layers");
  r.n_heads = positive(a, file, "n_heads");
  r.n_kv_heads = positive(a, file, "n_kv_heads");
  r.head_dim = positive(a, file, "head_dim");
  r.hidden = positive(a, file, "hidden");
  if (r.n_heads % r.n_kv_heads != 0)
    throw config_error(file.string(), "/architecture/n_heads", "must be a multiple of n_kv_heads");
  if (r.head_dim % 2 != 0) throw config_error(file.string(), "/architecture/head_dim", "must be even (rotary pairs)");
  for (const char* key : {"rope_base", "norm_eps"})
    if (!a.contains(key) || !a[key].is_number() || !(a[key].get<double>() > 0))
      throw config_error(file.string(), std::string("/architecture/") + key, "expected a positive number");
  r.rope_base = a["rope_base"];
  r.norm_eps = a["norm_eps"];
  if (r.vocab_size != tasks::vocabulary::standard().size())
    throw config_error(file.string(), "/architecture/vocab_size",
                       "the model has " + std::to_string(r.vocab_size) + " tokens, attnbench's vocabulary " +
                           std::to_string(tasks::vocabulary::standard().size()) + ": trained on another vocabulary");
  return r;
}

// Takes the named tensor out of `all`, checking its shape.
std::vector<float> take(std::map<std::string, detail::tensor_f32>& all, const std::string& name,
                        std::vector<std::int64_t> shape, const fs::path& folder) {
  const auto it = all.find(name);
  if (it == all.end()) throw config_error(folder.string(), "", "the weights lack the tensor " + name);
  if (it->second.shape != shape) {
    auto dims = [](const std::vector<std::int64_t>& s) {
      std::string o;
      for (auto x : s) o += (o.empty() ? "" : " x ") + std::to_string(x);
      return "[" + o + "]";
    };
    throw config_error(it->second.file.string(), "/" + name,
                       "has shape " + dims(it->second.shape) + ", the config's architecture needs " + dims(shape));
  }
  std::vector<float> out = std::move(it->second.data);
  all.erase(it);
  return out;
}

void rms_norm(const float* x, const float* w, std::size_t dim, float eps, float* out) {
  float ss = 0;
  for (std::size_t i = 0; i < dim; ++i) ss += x[i] * x[i];
  const float r = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
  for (std::size_t i = 0; i < dim; ++i) out[i] = x[i] * r * w[i];
}

// Scratch vectors of one token's decode pieces, kept per thread so that a decode step
// allocates nothing (a sequence runs on one thread at a time).
std::vector<float>& scratch(int which, std::size_t n) {
  thread_local std::vector<float> buffers[4];
  buffers[which].resize(n);
  return buffers[which];
}

}  // namespace

trained_model::trained_model(const fs::path& folder) : folder_(folder) {
  detail::load_blas();
  const fs::path config_file = folder / "config.json";
  config_ = read_config(config_file);
  arch_ = parse_architecture(config_, config_file);
  for (const char* key : {"name", "weights"})
    if (config_.contains(key) && (!config_[key].is_string() || config_[key].get<std::string>().empty() ||
                                  config_[key].get<std::string>().find('/') != std::string::npos))
      throw config_error(config_file.string(), std::string("/") + key, "expected a name (a non-empty string without '/')");
  const std::string stem = config_.value("weights", "weights");
  auto all = detail::read_safetensors_folder(folder, stem);
  const auto& a = arch_;
  const std::int64_t d = a.dim, q = std::int64_t{a.n_heads} * a.head_dim, kv = std::int64_t{a.n_kv_heads} * a.head_dim;
  embed_ = take(all, "embed.weight", {a.vocab_size, d}, folder);
  norm_ = take(all, "norm.weight", {d}, folder);
  for (std::uint32_t l = 0; l < a.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    trained_layer_weights w;
    w.attn_norm = take(all, p + "attn_norm.weight", {d}, folder);
    w.mlp_norm = take(all, p + "mlp_norm.weight", {d}, folder);
    w.wq = take(all, p + "wq.weight", {q, d}, folder);
    w.wk = take(all, p + "wk.weight", {kv, d}, folder);
    w.wv = take(all, p + "wv.weight", {kv, d}, folder);
    w.wo = take(all, p + "wo.weight", {d, q}, folder);
    w.w_gate = take(all, p + "w_gate.weight", {a.hidden, d}, folder);
    w.w_up = take(all, p + "w_up.weight", {a.hidden, d}, folder);
    w.w_down = take(all, p + "w_down.weight", {d, a.hidden}, folder);
    layers_.push_back(std::move(w));
  }
  if (!all.empty()) throw config_error(folder.string(), "", "the weights hold a tensor the architecture does not use: " + all.begin()->first);
  shape_.name = config_.value("name", folder.filename().string());
  shape_.n_layers = a.n_layers;
  shape_.n_query_heads = a.n_heads;
  shape_.n_kv_heads = a.n_kv_heads;
  shape_.head_dim = a.head_dim;
  // A trained model's heads have no designed roles; they are reported as retrieval heads
  // until measured (docs/trained-model.md).
  shape_.roles.assign(a.n_layers, std::vector<head_role>(a.n_kv_heads, head_role::retrieval));
  scale_ = 1.0f / std::sqrt(static_cast<float>(a.head_dim));
  for (std::uint32_t i = 0; i < a.head_dim / 2; ++i)
    inv_freq_.push_back(std::pow(a.rope_base, -static_cast<double>(2 * i) / a.head_dim));
}

json trained_model::describe() const {
  return {{"kind", "trained"}, {"name", shape_.name}, {"folder", folder_.string()}, {"architecture", config_["architecture"]},
          {"training", config_.value("training", json::object())}};
}

double trained_model::prefill_macs(std::uint64_t tokens) const {
  const trained_architecture& a = arch_;
  const double n = static_cast<double>(tokens);
  const double q = double(a.n_heads) * a.head_dim, kv = double(a.n_kv_heads) * a.head_dim;
  const double per_token = a.dim * (2 * q + 2 * kv) + 3.0 * a.dim * a.hidden;
  const double attention = n * (n + 1) / 2 * 2 * q;  // q.k and p.v over each token's prefix
  return a.n_layers * (n * per_token + attention) + double(a.dim) * a.vocab_size;
}

void trained_model::rotation(std::int64_t position, float* cs) const {
  for (std::uint32_t i = 0; i < arch_.head_dim / 2; ++i) {
    const double angle = static_cast<double>(position) * inv_freq_[i];
    cs[2 * i] = static_cast<float>(std::cos(angle));
    cs[2 * i + 1] = static_cast<float>(std::sin(angle));
  }
}

void trained_model::rotate(float* heads, std::uint32_t n_heads, const float* cs) const {
  const std::uint32_t d = arch_.head_dim;
  for (std::uint32_t h = 0; h < n_heads; ++h) {
    float* x = heads + std::size_t{h} * d;
    for (std::uint32_t i = 0; i < d; i += 2) {
      const float c = cs[i], s = cs[i + 1], x0 = x[i], x1 = x[i + 1];
      x[i] = x0 * c - x1 * s;
      x[i + 1] = x0 * s + x1 * c;
    }
  }
}

void trained_model::embed(tasks::token t, float* x) const {
  const auto row = static_cast<std::size_t>(t);
  std::copy_n(embed_.data() + row * arch_.dim, arch_.dim, x);
}

void trained_model::project(std::uint32_t layer, const float* x, std::int64_t position, float* q, float* k,
                            float* v) const {
  const auto& w = layers_[layer];
  std::vector<float>& h = scratch(0, arch_.dim);
  rms_norm(x, w.attn_norm.data(), arch_.dim, arch_.norm_eps, h.data());
  const std::size_t nq = std::size_t{arch_.n_heads} * arch_.head_dim, nkv = std::size_t{arch_.n_kv_heads} * arch_.head_dim;
  detail::matmul_nt(h.data(), 1, arch_.dim, w.wq.data(), nq, q);
  detail::matmul_nt(h.data(), 1, arch_.dim, w.wk.data(), nkv, k);
  detail::matmul_nt(h.data(), 1, arch_.dim, w.wv.data(), nkv, v);
  std::vector<float>& cs = scratch(3, arch_.head_dim);
  rotation(position, cs.data());
  rotate(q, arch_.n_heads, cs.data());
  rotate(k, arch_.n_kv_heads, cs.data());
}

void trained_model::fold(std::uint32_t layer, const float* attention, float* x) const {
  const auto& w = layers_[layer];
  const std::size_t nq = std::size_t{arch_.n_heads} * arch_.head_dim;
  detail::matmul_nt(attention, 1, nq, w.wo.data(), arch_.dim, x, true);
  std::vector<float>& h = scratch(0, arch_.dim);
  std::vector<float>& gate = scratch(1, arch_.hidden);
  std::vector<float>& up = scratch(2, arch_.hidden);
  rms_norm(x, w.mlp_norm.data(), arch_.dim, arch_.norm_eps, h.data());
  detail::matmul_nt(h.data(), 1, arch_.dim, w.w_gate.data(), arch_.hidden, gate.data());
  detail::matmul_nt(h.data(), 1, arch_.dim, w.w_up.data(), arch_.hidden, up.data());
  detail::silu_mul(gate.data(), up.data(), arch_.hidden);
  detail::matmul_nt(gate.data(), 1, arch_.hidden, w.w_down.data(), arch_.dim, x, true);
}

void trained_model::logits(const float* x, float* out) const {
  std::vector<float>& h = scratch(0, arch_.dim);
  rms_norm(x, norm_.data(), arch_.dim, arch_.norm_eps, h.data());
  detail::matmul_nt(h.data(), 1, arch_.dim, embed_.data(), arch_.vocab_size, out);
}

void trained_model::forward(std::span<const tasks::token> tokens, kernels::kv_cache* cache,
                            std::vector<std::vector<float>>* attention_outputs, std::vector<float>* logits) const {
  const std::size_t n = tokens.size(), d = arch_.dim, hd = arch_.head_dim;
  const std::size_t nq = std::size_t{arch_.n_heads} * hd, nkv = std::size_t{arch_.n_kv_heads} * hd, hidden = arch_.hidden;
  // Every element is written before it is read: no zeroing.
  const auto buffer = [](std::size_t size) { return std::make_unique_for_overwrite<float[]>(size); };
  const auto x = buffer(n * d), h = buffer(n * d), q = buffer(n * nq), k = buffer(n * nkv), v = buffer(n * nkv),
             gate = buffer(n * hidden), up = buffer(n * hidden), cs = buffer(n * hd), a = buffer(n * nq);
  auto rows = [n](auto&& f) { tbb::parallel_for(std::size_t{0}, n, f); };
  rows([&](std::size_t i) {
    embed(tokens[i], x.get() + i * d);
    rotation(static_cast<std::int64_t>(i), cs.get() + i * hd);
  });
  std::vector<std::int64_t> positions(n);
  for (std::size_t i = 0; i < n; ++i) positions[i] = static_cast<std::int64_t>(i);
  std::vector<float> head_k(cache ? n * hd : 0), head_v(cache ? n * hd : 0);
  for (std::uint32_t l = 0; l < arch_.n_layers; ++l) {
    const auto& w = layers_[l];
    rows([&](std::size_t i) { rms_norm(x.get() + i * d, w.attn_norm.data(), d, arch_.norm_eps, h.get() + i * d); });
    detail::matmul_nt(h.get(), n, d, w.wq.data(), nq, q.get());
    detail::matmul_nt(h.get(), n, d, w.wk.data(), nkv, k.get());
    detail::matmul_nt(h.get(), n, d, w.wv.data(), nkv, v.get());
    rows([&](std::size_t i) {
      rotate(q.get() + i * nq, arch_.n_heads, cs.get() + i * hd);
      rotate(k.get() + i * nkv, arch_.n_kv_heads, cs.get() + i * hd);
    });
    if (cache)
      for (std::uint32_t kh = 0; kh < arch_.n_kv_heads; ++kh) {
        for (std::size_t i = 0; i < n; ++i) {
          std::copy_n(k.get() + i * nkv + kh * hd, hd, head_k.data() + i * hd);
          std::copy_n(v.get() + i * nkv + kh * hd, hd, head_v.data() + i * hd);
        }
        cache->append(l, kh, n, positions.data(), head_k.data(), head_v.data());
      }
    detail::causal_attention(q.get(), k.get(), v.get(), n, arch_.n_heads, arch_.n_kv_heads, arch_.head_dim, scale_,
                             a.get());
    if (attention_outputs) attention_outputs->emplace_back(a.get(), a.get() + n * nq);
    detail::matmul_nt(a.get(), n, nq, w.wo.data(), d, x.get(), true);
    rows([&](std::size_t i) { rms_norm(x.get() + i * d, w.mlp_norm.data(), d, arch_.norm_eps, h.get() + i * d); });
    detail::matmul_nt(h.get(), n, d, w.w_gate.data(), hidden, gate.get());
    detail::matmul_nt(h.get(), n, d, w.w_up.data(), hidden, up.get());
    rows([&](std::size_t i) { detail::silu_mul(gate.get() + i * hidden, up.get() + i * hidden, hidden); });
    detail::matmul_nt(gate.get(), n, hidden, w.w_down.data(), d, x.get(), true);
  }
  if (logits) {
    rows([&](std::size_t i) { rms_norm(x.get() + i * d, norm_.data(), d, arch_.norm_eps, h.get() + i * d); });
    logits->resize(n * arch_.vocab_size);
    detail::matmul_nt(h.get(), n, d, embed_.data(), arch_.vocab_size, logits->data());
  }
}

}  // namespace attnbench
