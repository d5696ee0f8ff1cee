#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/reproducible.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

namespace attnbench::kernels {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;


std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}
std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }
}  // namespace

kv_cache::region::~region() {
  if (base) munmap(base, reserved);
}

void kv_cache::region::ensure(std::size_t bytes) {
  if (bytes <= reserved) return;
  // Reserve generously (address space is cheap; pages cost memory only when written).
  const std::size_t want = round_up(std::max(bytes, reserved * 2), kHugePage);
  void* p;
  if (!base) {
    p = mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  } else {
    p = mremap(base, reserved, want, MREMAP_MAYMOVE);
  }
  if (p == MAP_FAILED) throw std::bad_alloc();
  madvise(p, want, MADV_HUGEPAGE);  // a hint; harmless where huge pages are off
  base = static_cast<std::byte*>(p);
  reserved = want;
}

void kv_cache::region::release_from(std::size_t offset) {
  const std::size_t start = round_up(offset, page_size());
  if (base && start < reserved) madvise(base + start, reserved - start, MADV_DONTNEED);
}

kv_cache::kv_cache(std::uint32_t n_layers, std::uint32_t n_kv_heads, std::uint32_t head_dim,
                   std::uint32_t block_size, attnbench_dtype dtype, std::uint64_t capacity_tokens)
    : n_layers_(n_layers),
      n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      block_size_(block_size),
      dtype_(dtype),
      row_bytes_(head_dim * dtype_size(dtype)),
      block_bytes_(static_cast<std::size_t>(block_size) * head_dim * dtype_size(dtype)),
      block_pitch_(block_bytes_),
      capacity_tokens_(capacity_tokens),
      heads_(static_cast<std::size_t>(n_layers) * n_kv_heads),
      head_views_(static_cast<std::size_t>(n_layers) * n_kv_heads),
      layer_views_(n_layers) {
  if (n_layers == 0 || n_kv_heads == 0 || head_dim == 0 || block_size == 0)
    throw std::invalid_argument("kv_cache: every dimension must be positive");
  for (std::uint32_t l = 0; l < n_layers; ++l) init_layer_view(l);
}

kv_cache::~kv_cache() = default;

std::byte* kv_cache::value_block(head_store& h, std::size_t b) const {
  return h.keys.base + (2 * b + 1) * block_pitch_;
}

kv_cache::head_store& kv_cache::head(std::uint32_t layer, std::uint32_t kv_head) {
  return heads_[static_cast<std::size_t>(layer) * n_kv_heads_ + kv_head];
}
const kv_cache::head_store& kv_cache::head(std::uint32_t layer, std::uint32_t kv_head) const {
  return heads_[static_cast<std::size_t>(layer) * n_kv_heads_ + kv_head];
}

// Makes room for `blocks` blocks in the head's regions and rebuilds its block tables.
void kv_cache::grow_blocks(head_store& h, std::uint32_t blocks) {
  const std::size_t capacity_blocks = (capacity_tokens_ + block_size_ - 1) / block_size_;
  const std::size_t need = std::max<std::size_t>(blocks, std::min<std::size_t>(capacity_blocks, blocks + 64));
  const std::byte* old_base = h.keys.base;
  h.keys.ensure(2 * need * block_pitch_);
  const std::size_t d = head_dim_;
  // Extend the block tables; rebuild them whole only when the region moved.
  const std::size_t from = h.keys.base == old_base ? h.key_ptrs.size() : 0;
  h.key_ptrs.resize(blocks);
  h.value_ptrs.resize(blocks);
  for (std::size_t b = from; b < blocks; ++b) {
    h.key_ptrs[b] = key_block(h, b);
    h.value_ptrs[b] = value_block(h, b);
  }
  h.key_min.resize(blocks * d, std::numeric_limits<float>::infinity());
  h.key_max.resize(blocks * d, -std::numeric_limits<float>::infinity());
  h.key_mean.resize(blocks * d, 0.0f);
  h.value_norm_max.resize(blocks, 0.0f);
}

namespace {

// The metadata fold of `count` consecutive tokens of one block (rows of d floats, the
// first at slot `first_slot`), compiled for AVX-512, AVX2 and baseline x86-64 and picked
// at load time. Per coordinate it folds the tokens in order, sixteen coordinates at a
// time held in registers (GCC vector types); value norms are reproducible_dot; CMake
// turns FMA contraction off for this file. So every version, and any split of a block's
// tokens into calls, gives the same bits.
ATTNBENCH_REPRODUCIBLE_CLONES void fold_rows(std::size_t d, std::size_t count, std::uint32_t first_slot,
                                const float* __restrict keys, const float* __restrict values,
                                float* __restrict kmin, float* __restrict kmax, float* __restrict kmean,
                                float* __restrict value_norm_max) {
  using f16 = float __attribute__((vector_size(64)));
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    f16 lo, hi, mean;
    std::memcpy(&lo, kmin + i, sizeof lo);
    std::memcpy(&hi, kmax + i, sizeof hi);
    std::memcpy(&mean, kmean + i, sizeof mean);
    for (std::size_t t = 0; t < count; ++t) {
      f16 k;
      std::memcpy(&k, keys + t * d + i, sizeof k);
      lo = k < lo ? k : lo;  // std::min(lo, k)
      hi = hi < k ? k : hi;  // std::max(hi, k)
      mean += (k - mean) * (1.0f / static_cast<float>(first_slot + t + 1));
    }
    std::memcpy(kmin + i, &lo, sizeof lo);
    std::memcpy(kmax + i, &hi, sizeof hi);
    std::memcpy(kmean + i, &mean, sizeof mean);
  }
  for (; i < d; ++i)
    for (std::size_t t = 0; t < count; ++t) {
      const float k = keys[t * d + i];
      kmin[i] = std::min(kmin[i], k);
      kmax[i] = std::max(kmax[i], k);
      kmean[i] += (k - kmean[i]) * (1.0f / static_cast<float>(first_slot + t + 1));
    }
  for (std::size_t t = 0; t < count; ++t) {
    const float* value = values + t * d;
    *value_norm_max = std::max(*value_norm_max, static_cast<float>(std::sqrt(reproducible_dot(value, value, d))));
  }
}

}  // namespace

// Folds stored tokens into their block's metadata. The mean is a running mean, so a
// recomputation from the tokens matches it to rounding.
void kv_cache::update_metadata(head_store& h, std::uint32_t block, std::uint32_t first_slot, std::size_t count,
                               const float* keys, const float* values) {
  const std::size_t d = head_dim_;
  fold_rows(d, count, first_slot, keys, values, &h.key_min[block * d], &h.key_max[block * d], &h.key_mean[block * d],
            &h.value_norm_max[block]);
}

void kv_cache::append(std::uint32_t layer, std::uint32_t kv_head, std::size_t n, const std::int64_t* positions,
                      const float* keys, const float* values) {
  head_store& h = head(layer, kv_head);
  const std::size_t d = head_dim_;
  const auto blocks_after = static_cast<std::uint32_t>((h.n_tokens + n + block_size_ - 1) / block_size_);
  if (blocks_after > h.key_ptrs.size()) grow_blocks(h, blocks_after);
  // Rows of one block are contiguous: convert a block's share of the new tokens in one
  // call, keeping the fp32 value of what was stored (metadata comes from what is stored,
  // so it matches a recomputation from the cache), and fold them together.
  thread_local std::vector<float> k, v;
  if (k.size() < static_cast<std::size_t>(block_size_) * d) {
    k.resize(static_cast<std::size_t>(block_size_) * d);
    v.resize(static_cast<std::size_t>(block_size_) * d);
  }
  // A bulk append (a prefill) writes far more than the caches hold: stream it past them.
  const bool streaming = n >= block_size_;
  for (std::size_t t = 0; t < n;) {
    const auto block = static_cast<std::uint32_t>(h.n_tokens / block_size_);
    const auto slot = static_cast<std::uint32_t>(h.n_tokens % block_size_);
    const std::size_t m = std::min<std::size_t>(n - t, block_size_ - slot);
    std::byte* kdst = key_block(h, block) + slot * row_bytes_;
    std::byte* vdst = value_block(h, block) + slot * row_bytes_;
    store_fp32(dtype_, keys + t * d, kdst, k.data(), m * d, streaming);
    store_fp32(dtype_, values + t * d, vdst, v.data(), m * d, streaming);
    update_metadata(h, block, slot, m, k.data(), v.data());
    for (std::size_t i = t; i < t + m; ++i) {
      const bool identity = h.positions.empty() && positions[i] == static_cast<std::int64_t>(h.n_tokens);
      if (!identity) {
        if (h.positions.empty())  // first token out of order: materialise the positions
          for (std::uint64_t j = 0; j < h.n_tokens; ++j) h.positions.push_back(static_cast<std::int64_t>(j));
        h.positions.push_back(positions[i]);
      }
      ++h.n_tokens;
    }
    t += m;
  }
  refresh_head_view(layer, kv_head);
}

void kv_cache::compact(std::uint32_t layer, std::uint32_t kv_head, const std::uint32_t* keep, std::size_t n_keep) {
  head_store& h = head(layer, kv_head);
  for (std::size_t i = 0; i < n_keep; ++i) {
    if (keep[i] >= h.n_tokens || (i > 0 && keep[i] <= keep[i - 1]))
      throw std::invalid_argument("kv_cache::compact: keep list must be strictly increasing cache indices");
  }
  // Kept rows move forward in place (keep[i] >= i), then metadata is rebuilt.
  auto key_row = [&](std::size_t t) { return key_block(h, t / block_size_) + (t % block_size_) * row_bytes_; };
  auto value_row = [&](std::size_t t) { return value_block(h, t / block_size_) + (t % block_size_) * row_bytes_; };
  std::vector<std::int64_t> positions(n_keep);
  for (std::size_t i = 0; i < n_keep; ++i) {
    positions[i] = h.positions.empty() ? static_cast<std::int64_t>(keep[i]) : h.positions[keep[i]];
    if (keep[i] != i) {
      std::memmove(key_row(i), key_row(keep[i]), row_bytes_);
      std::memmove(value_row(i), value_row(keep[i]), row_bytes_);
    }
  }
  const auto blocks = static_cast<std::uint32_t>((n_keep + block_size_ - 1) / block_size_);
  const std::size_t d = head_dim_;
  h.key_ptrs.resize(blocks);
  h.value_ptrs.resize(blocks);
  h.key_min.assign(blocks * d, std::numeric_limits<float>::infinity());
  h.key_max.assign(blocks * d, -std::numeric_limits<float>::infinity());
  h.key_mean.assign(blocks * d, 0.0f);
  h.value_norm_max.assign(blocks, 0.0f);
  std::vector<float> k(d), v(d);
  for (std::size_t i = 0; i < n_keep; ++i) {
    to_fp32(dtype_, key_row(i), k.data(), d);
    to_fp32(dtype_, value_row(i), v.data(), d);
    update_metadata(h, static_cast<std::uint32_t>(i / block_size_), static_cast<std::uint32_t>(i % block_size_), 1,
                    k.data(), v.data());
  }
  h.keys.release_from(2 * blocks * block_pitch_);
  for (auto* v : {&h.key_min, &h.key_max, &h.key_mean, &h.value_norm_max}) v->shrink_to_fit();
  h.key_ptrs.shrink_to_fit();
  h.value_ptrs.shrink_to_fit();
  h.n_tokens = n_keep;
  h.positions = std::move(positions);
  refresh_head_view(layer, kv_head);
}

void kv_cache::truncate(std::uint64_t position) {
  const std::size_t d = head_dim_;
  std::vector<float> k(d), v(d);
  for (std::uint32_t layer = 0; layer < n_layers_; ++layer)
    for (std::uint32_t kvh = 0; kvh < n_kv_heads_; ++kvh) {
      head_store& h = head(layer, kvh);
      // Tokens are in position order: keep those before `position` (after eviction a
      // head holds fewer tokens than the sequence, and heads differ).
      const std::uint64_t n_keep =
          h.positions.empty() ? position
                              : static_cast<std::uint64_t>(
                                    std::lower_bound(h.positions.begin(), h.positions.end(),
                                                     static_cast<std::int64_t>(position)) -
                                    h.positions.begin());
      if (h.n_tokens <= n_keep) continue;
      const auto blocks = static_cast<std::uint32_t>((n_keep + block_size_ - 1) / block_size_);
      h.key_ptrs.resize(blocks);
      h.value_ptrs.resize(blocks);
      h.key_min.resize(blocks * d);
      h.key_max.resize(blocks * d);
      h.key_mean.resize(blocks * d);
      h.value_norm_max.resize(blocks);
      if (!h.positions.empty()) h.positions.resize(n_keep);
      h.n_tokens = n_keep;
      const auto in_last = static_cast<std::uint32_t>(n_keep % block_size_);
      if (in_last != 0) {  // the last block lost tokens: refold the ones it keeps
        const std::uint32_t b = blocks - 1;
        std::fill_n(&h.key_min[b * d], d, std::numeric_limits<float>::infinity());
        std::fill_n(&h.key_max[b * d], d, -std::numeric_limits<float>::infinity());
        std::fill_n(&h.key_mean[b * d], d, 0.0f);
        h.value_norm_max[b] = 0.0f;
        for (std::uint32_t slot = 0; slot < in_last; ++slot) {
          to_fp32(dtype_, key_block(h, b) + slot * row_bytes_, k.data(), d);
          to_fp32(dtype_, value_block(h, b) + slot * row_bytes_, v.data(), d);
          update_metadata(h, b, slot, 1, k.data(), v.data());
        }
      }
      refresh_head_view(layer, kvh);  // pages stay mapped: the next continuation reuses them
    }
}

void kv_cache::prefault(std::uint64_t tokens) {
  const std::size_t need = (tokens + block_size_ - 1) / block_size_;
  const std::size_t d = head_dim_;
  for (std::uint32_t layer = 0; layer < n_layers_; ++layer)
    for (std::uint32_t kvh = 0; kvh < n_kv_heads_; ++kvh) {
      head_store& h = head(layer, kvh);
      // The block tables and metadata too: grown during a prefill they would be copied
      // at each doubling and fault fresh pages (a tenth of a second at 128K tokens).
      auto touch = [](auto& v, std::size_t n) {
        if (v.capacity() >= n) return;
        const std::size_t size = v.size();
        v.resize(n);  // writes every element, so every page is faulted in now
        v.resize(size);
      };
      touch(h.key_ptrs, need);
      touch(h.value_ptrs, need);
      touch(h.key_min, need * d);
      touch(h.key_max, need * d);
      touch(h.key_mean, need * d);
      touch(h.value_norm_max, need);
      const std::size_t used = h.key_ptrs.size();  // blocks whose pages may hold tokens
      if (need <= used) continue;
      const std::byte* old_base = h.keys.base;
      h.keys.ensure(2 * need * block_pitch_);
      if (h.keys.base != old_base) {  // the region moved: re-point the blocks in use
        for (std::size_t b = 0; b < used; ++b) {
          h.key_ptrs[b] = key_block(h, b);
          h.value_ptrs[b] = value_block(h, b);
        }
        refresh_head_view(layer, kvh);
      }
      volatile std::byte* base = h.keys.base;
      for (std::size_t off = 2 * used * block_pitch_; off < 2 * need * block_pitch_; off += page_size())
        base[off] = std::byte{0};
    }
}

// Each head's view is refreshed on its own, so appends to different heads of one layer
// may run on different threads.
void kv_cache::refresh_head_view(std::uint32_t layer, std::uint32_t kvh) {
  head_store& h = head(layer, kvh);
  attnbench_kv_head_view& v = head_views_[static_cast<std::size_t>(layer) * n_kv_heads_ + kvh];
  v.n_tokens = h.n_tokens;
  v.n_blocks = static_cast<std::uint32_t>((h.n_tokens + block_size_ - 1) / block_size_);
  v.reserved = 0;
  v.key_blocks = h.key_ptrs.data();
  v.value_blocks = h.value_ptrs.data();
  v.key_min = h.key_min.data();
  v.key_max = h.key_max.data();
  v.key_mean = h.key_mean.data();
  v.value_norm_max = h.value_norm_max.data();
  v.positions = h.positions.empty() ? nullptr : h.positions.data();
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
  for (const auto& h : heads_) bytes += 2ull * ((h.n_tokens + block_size_ - 1) / block_size_) * block_bytes_;
  return bytes;
}

std::uint64_t kv_cache::resident_bytes() const {
  std::uint64_t bytes = token_bytes();
  for (const auto& h : heads_) {
    // Allocated capacity, not just the part in use: what the process really holds.
    bytes += (h.key_min.capacity() + h.key_max.capacity() + h.key_mean.capacity() + h.value_norm_max.capacity()) *
             sizeof(float);
    bytes += h.positions.capacity() * sizeof(std::int64_t);
    bytes += (h.key_ptrs.capacity() + h.value_ptrs.capacity()) * sizeof(void*);
  }
  return bytes;
}

}  // namespace attnbench::kernels
