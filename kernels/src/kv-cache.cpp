#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/kv-cache.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace attnbench::kernels {

kv_cache::kv_cache(std::uint32_t n_layers, std::uint32_t n_kv_heads, std::uint32_t head_dim,
                   std::uint32_t block_size, attnbench_dtype dtype)
    : n_layers_(n_layers),
      n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      block_size_(block_size),
      dtype_(dtype),
      row_bytes_(head_dim * dtype_size(dtype)),
      heads_(static_cast<std::size_t>(n_layers) * n_kv_heads),
      head_views_(static_cast<std::size_t>(n_layers) * n_kv_heads),
      layer_views_(n_layers) {
  if (n_layers == 0 || n_kv_heads == 0 || head_dim == 0 || block_size == 0)
    throw std::invalid_argument("kv_cache: every dimension must be positive");
  for (std::uint32_t l = 0; l < n_layers; ++l) init_layer_view(l);
}

kv_cache::head_store& kv_cache::head(std::uint32_t layer, std::uint32_t kv_head) {
  return heads_[static_cast<std::size_t>(layer) * n_kv_heads_ + kv_head];
}
const kv_cache::head_store& kv_cache::head(std::uint32_t layer, std::uint32_t kv_head) const {
  return heads_[static_cast<std::size_t>(layer) * n_kv_heads_ + kv_head];
}

void kv_cache::add_block(head_store& h) {
  const std::size_t bytes = block_size_ * row_bytes_;
  h.key_storage.emplace_back(new std::byte[bytes]);
  h.value_storage.emplace_back(new std::byte[bytes]);
  h.key_ptrs.push_back(h.key_storage.back().get());
  h.value_ptrs.push_back(h.value_storage.back().get());
  h.key_min.insert(h.key_min.end(), head_dim_, std::numeric_limits<float>::infinity());
  h.key_max.insert(h.key_max.end(), head_dim_, -std::numeric_limits<float>::infinity());
  h.key_mean.insert(h.key_mean.end(), head_dim_, 0.0f);
  h.key_sum.insert(h.key_sum.end(), head_dim_, 0.0f);
  h.value_norm_max.push_back(0.0f);
}

// Folds the token in (block, slot) into the block's metadata, from the stored values.
void kv_cache::update_metadata(head_store& h, std::uint32_t block, std::uint32_t slot) {
  const std::size_t d = head_dim_;
  thread_local std::vector<float> k, v;
  k.resize(d);
  v.resize(d);
  to_fp32(dtype_, static_cast<const std::byte*>(h.key_ptrs[block]) + slot * row_bytes_, k.data(), d);
  to_fp32(dtype_, static_cast<const std::byte*>(h.value_ptrs[block]) + slot * row_bytes_, v.data(), d);
  float* kmin = &h.key_min[block * d];
  float* kmax = &h.key_max[block * d];
  float* kmean = &h.key_mean[block * d];
  float* ksum = &h.key_sum[block * d];
  double norm2 = 0.0;
  const float count = static_cast<float>(slot + 1);
  for (std::size_t i = 0; i < d; ++i) {
    kmin[i] = std::min(kmin[i], k[i]);
    kmax[i] = std::max(kmax[i], k[i]);
    ksum[i] += k[i];
    kmean[i] = ksum[i] / count;
    norm2 += static_cast<double>(v[i]) * v[i];
  }
  h.value_norm_max[block] = std::max(h.value_norm_max[block], static_cast<float>(std::sqrt(norm2)));
}

void kv_cache::append(std::uint32_t layer, std::uint32_t kv_head, std::size_t n,
                      const std::int64_t* positions, const float* keys, const float* values) {
  head_store& h = head(layer, kv_head);
  for (std::size_t t = 0; t < n; ++t) {
    const auto block = static_cast<std::uint32_t>(h.n_tokens / block_size_);
    const auto slot = static_cast<std::uint32_t>(h.n_tokens % block_size_);
    if (slot == 0) add_block(h);
    auto* kdst = static_cast<std::byte*>(h.key_storage[block].get()) + slot * row_bytes_;
    auto* vdst = static_cast<std::byte*>(h.value_storage[block].get()) + slot * row_bytes_;
    from_fp32(dtype_, keys + t * head_dim_, kdst, head_dim_);
    from_fp32(dtype_, values + t * head_dim_, vdst, head_dim_);
    h.positions.push_back(positions[t]);
    ++h.n_tokens;
    update_metadata(h, block, slot);
  }
  refresh_head_view(layer, kv_head);
}

void kv_cache::compact(std::uint32_t layer, std::uint32_t kv_head, const std::uint32_t* keep, std::size_t n_keep) {
  head_store& h = head(layer, kv_head);
  for (std::size_t i = 0; i < n_keep; ++i) {
    if (keep[i] >= h.n_tokens || (i > 0 && keep[i] <= keep[i - 1]))
      throw std::invalid_argument("kv_cache::compact: keep list must be strictly increasing cache indices");
  }
  // Copy the kept rows out, then rebuild the head from them (keeps the code obviously
  // right; compaction happens once per prefill, not per step).
  const std::size_t d = head_dim_;
  std::vector<float> keys(n_keep * d), values(n_keep * d);
  std::vector<std::int64_t> positions(n_keep);
  for (std::size_t i = 0; i < n_keep; ++i) {
    const std::uint32_t block = keep[i] / block_size_, slot = keep[i] % block_size_;
    to_fp32(dtype_, static_cast<const std::byte*>(h.key_ptrs[block]) + slot * row_bytes_, &keys[i * d], d);
    to_fp32(dtype_, static_cast<const std::byte*>(h.value_ptrs[block]) + slot * row_bytes_, &values[i * d], d);
    positions[i] = h.positions[keep[i]];
  }
  h = head_store{};
  append(layer, kv_head, n_keep, positions.data(), keys.data(), values.data());
}

// Each head's view is refreshed on its own, so appends to different heads of one layer
// may run on different threads.
void kv_cache::refresh_head_view(std::uint32_t layer, std::uint32_t kvh) {
  {
    head_store& h = head(layer, kvh);
    attnbench_kv_head_view& v = head_views_[static_cast<std::size_t>(layer) * n_kv_heads_ + kvh];
    v.n_tokens = h.n_tokens;
    v.n_blocks = static_cast<std::uint32_t>(h.key_ptrs.size());
    v.reserved = 0;
    v.key_blocks = h.key_ptrs.data();
    v.value_blocks = h.value_ptrs.data();
    v.key_min = h.key_min.data();
    v.key_max = h.key_max.data();
    v.key_mean = h.key_mean.data();
    v.value_norm_max = h.value_norm_max.data();
    v.positions = h.positions.data();
  }
}

void kv_cache::init_layer_view(std::uint32_t layer) {
  for (std::uint32_t kvh = 0; kvh < n_kv_heads_; ++kvh) refresh_head_view(layer, kvh);
  attnbench_kv_layer_view& lv = layer_views_[layer];
  lv.layer = layer;
  lv.n_kv_heads = n_kv_heads_;
  lv.head_dim = head_dim_;
  lv.block_size = block_size_;
  lv.dtype = dtype_;
  lv.reserved = 0;
  lv.heads = &head_views_[static_cast<std::size_t>(layer) * n_kv_heads_];
}

const attnbench_kv_layer_view& kv_cache::layer_view(std::uint32_t layer) { return layer_views_.at(layer); }

std::uint64_t kv_cache::n_tokens(std::uint32_t layer, std::uint32_t kv_head) const {
  return head(layer, kv_head).n_tokens;
}

std::uint64_t kv_cache::token_bytes() const {
  std::uint64_t bytes = 0;
  for (const auto& h : heads_) bytes += 2ull * h.key_storage.size() * block_size_ * row_bytes_;
  return bytes;
}

std::uint64_t kv_cache::resident_bytes() const {
  std::uint64_t bytes = token_bytes();
  for (const auto& h : heads_) {
    // key_sum is bookkeeping for the running mean and counts as metadata too.
    bytes += (h.key_min.size() + h.key_max.size() + h.key_mean.size() + h.key_sum.size() +
              h.value_norm_max.size()) * sizeof(float);
    bytes += h.positions.size() * sizeof(std::int64_t);
    bytes += 2 * h.key_ptrs.size() * sizeof(void*);
  }
  return bytes;
}

}  // namespace attnbench::kernels
