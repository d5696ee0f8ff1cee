// The paged KV cache: per layer and KV head, K and V in blocks of block_size tokens of
// one dtype. Each head's K blocks (and its V blocks) are pages of one contiguous reserved
// region of virtual memory (mmap, grown with mremap, huge pages where the system allows),
// K and V blocks interleaved, so a head's blocks are adjacent: one stream for the
// prefetchers and the TLB.
// Per-block metadata is kept up to date on every append (per-channel key min and max,
// mean key, largest value norm), computed from the stored (rounded) values. Positions
// are stored only once a head has been compacted; until then position == cache index.
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
  // capacity_tokens: tokens per head to reserve address space for up front (the cache
  // grows past it when needed); only pages that are written cost memory.
  kv_cache(std::uint32_t n_layers, std::uint32_t n_kv_heads, std::uint32_t head_dim, std::uint32_t block_size,
           attnbench_dtype dtype, std::uint64_t capacity_tokens = 0);
  ~kv_cache();

  kv_cache(const kv_cache&) = delete;
  kv_cache& operator=(const kv_cache&) = delete;

  // Appends n tokens to one head: keys and values are [n * head_dim] fp32, converted to
  // the cache dtype; positions are the tokens' sequence positions. Appends to different
  // heads may run concurrently. Throws std::bad_alloc when memory runs out.
  void append(std::uint32_t layer, std::uint32_t kv_head, std::size_t n, const std::int64_t* positions,
              const float* keys, const float* values);

  // Keeps only the listed cache tokens of one head (strictly increasing indices), moving
  // them to the front, recomputing every block's metadata and returning freed pages.
  void compact(std::uint32_t layer, std::uint32_t kv_head, const std::uint32_t* keep, std::size_t n_keep);

  // Drops every token at sequence position `position` or later, in every head: for
  // decoding several continuations of one prefix. A head never compacted keeps its first
  // `position` tokens; a compacted one (after eviction) keeps those whose recorded
  // position is earlier. Rebuilds the last block's metadata; pages stay mapped for the
  // tokens appended next.
  void truncate(std::uint64_t position);

  // Makes room for `tokens` tokens per head and writes the pages beyond the blocks in use
  // up to there, block tables and metadata included, so that appends up to that count
  // never fault a fresh page (on a VM a huge page takes about a millisecond to zero).
  // Contents and views are unchanged.
  // Throws std::bad_alloc when the address space cannot be reserved.
  void prefault(std::uint64_t tokens);

  // The view of one layer; its contents are valid until the next append or compact on
  // that layer.
  const attnbench_kv_layer_view& layer_view(std::uint32_t layer);

  std::uint64_t n_tokens(std::uint32_t layer, std::uint32_t kv_head) const;
  // Bytes held: K and V of the blocks in use, plus the allocated metadata, positions
  // and block tables.
  std::uint64_t resident_bytes() const;
  std::uint64_t token_bytes() const;  // K and V pages of the blocks in use only

  std::uint32_t n_layers() const { return n_layers_; }
  std::uint32_t n_kv_heads() const { return n_kv_heads_; }
  std::uint32_t head_dim() const { return head_dim_; }
  std::uint32_t block_size() const { return block_size_; }
  attnbench_dtype dtype() const { return dtype_; }

 private:
  // A contiguous reservation of address space holding one head's K (or V) blocks.
  struct region {
    std::byte* base = nullptr;
    std::size_t reserved = 0;  // bytes of address space
    ~region();
    void ensure(std::size_t bytes);  // grows (and may move) the reservation
    void release_from(std::size_t offset);  // returns pages past offset to the system
  };
  struct head_store {
    region keys, values;
    std::vector<const void*> key_ptrs, value_ptrs;  // block tables
    std::vector<float> key_min, key_max, key_mean, value_norm_max;
    std::vector<std::int64_t> positions;  // empty while position == cache index
    std::uint64_t n_tokens = 0;
  };
  head_store& head(std::uint32_t layer, std::uint32_t kv_head);
  const head_store& head(std::uint32_t layer, std::uint32_t kv_head) const;
  void grow_blocks(head_store& h, std::uint32_t blocks);
  std::byte* key_block(head_store& h, std::size_t b) const { return h.keys.base + 2 * b * block_pitch_; }
  std::byte* value_block(head_store& h, std::size_t b) const;
  // Folds `count` stored tokens (fp32 rows), the first at first_slot of block, into its metadata.
  void update_metadata(head_store& h, std::uint32_t block, std::uint32_t first_slot, std::size_t count,
                       const float* keys, const float* values);
  void refresh_head_view(std::uint32_t layer, std::uint32_t kv_head);
  void init_layer_view(std::uint32_t layer);

  std::uint32_t n_layers_, n_kv_heads_, head_dim_, block_size_;
  attnbench_dtype dtype_;
  std::size_t row_bytes_, block_bytes_, block_pitch_;
  std::uint64_t capacity_tokens_;
  std::vector<head_store> heads_;
  std::vector<attnbench_kv_head_view> head_views_;
  std::vector<attnbench_kv_layer_view> layer_views_;
};

}  // namespace attnbench::kernels
