// The KV cache: per layer and KV head, K and V in blocks of block_size tokens of one
// dtype, with per-block metadata kept up to date on every append (per-channel key min
// and max, mean key, largest value norm), all computed from the stored (rounded) values.
// views() exposes it through the plugin ABI's read-only view structs.
#pragma once

#include <attnbench/plugin.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace attnbench::kernels {

class kv_cache {
 public:
  kv_cache(std::uint32_t n_layers, std::uint32_t n_kv_heads, std::uint32_t head_dim,
           std::uint32_t block_size, attnbench_dtype dtype);

  kv_cache(const kv_cache&) = delete;
  kv_cache& operator=(const kv_cache&) = delete;

  // Appends n tokens to one head: keys and values are [n * head_dim] fp32, converted to
  // the cache dtype; positions are the tokens' sequence positions.
  void append(std::uint32_t layer, std::uint32_t kv_head, std::size_t n, const std::int64_t* positions,
              const float* keys, const float* values);

  // Keeps only the listed cache tokens of one head (strictly increasing indices), moving
  // them to the front and recomputing the metadata of every block.
  void compact(std::uint32_t layer, std::uint32_t kv_head, const std::uint32_t* keep, std::size_t n_keep);

  // The view of one layer; its contents are valid until the next append or compact on
  // that layer. Appends to different heads may run concurrently.
  const attnbench_kv_layer_view& layer_view(std::uint32_t layer);

  std::uint64_t n_tokens(std::uint32_t layer, std::uint32_t kv_head) const;
  // Bytes held: K and V token storage of allocated blocks, plus metadata and positions.
  std::uint64_t resident_bytes() const;
  std::uint64_t token_bytes() const;  // K and V storage only

  std::uint32_t n_layers() const { return n_layers_; }
  std::uint32_t n_kv_heads() const { return n_kv_heads_; }
  std::uint32_t head_dim() const { return head_dim_; }
  std::uint32_t block_size() const { return block_size_; }
  attnbench_dtype dtype() const { return dtype_; }

 private:
  struct head_store {
    std::vector<std::unique_ptr<std::byte[]>> key_storage, value_storage;
    std::vector<const void*> key_ptrs, value_ptrs;
    std::vector<float> key_min, key_max, key_mean, key_sum, value_norm_max;
    std::vector<std::int64_t> positions;
    std::uint64_t n_tokens = 0;
  };
  head_store& head(std::uint32_t layer, std::uint32_t kv_head);
  const head_store& head(std::uint32_t layer, std::uint32_t kv_head) const;
  void add_block(head_store& h);
  void update_metadata(head_store& h, std::uint32_t block, std::uint32_t slot);
  void refresh_head_view(std::uint32_t layer, std::uint32_t kv_head);
  void init_layer_view(std::uint32_t layer);

  std::uint32_t n_layers_, n_kv_heads_, head_dim_, block_size_;
  attnbench_dtype dtype_;
  std::size_t row_bytes_;
  std::vector<head_store> heads_;
  std::vector<attnbench_kv_head_view> head_views_;
  std::vector<attnbench_kv_layer_view> layer_views_;
};

}  // namespace attnbench::kernels
