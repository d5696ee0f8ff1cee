#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/random.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>

using namespace attnbench::kernels;

namespace {

// Recomputes a block's metadata from its stored tokens and compares.
void expect_metadata_matches(const attnbench_kv_head_view& v, std::uint32_t d, std::uint32_t block_size,
                             attnbench_dtype dtype) {
  std::vector<float> k(d), val(d);
  for (std::uint32_t b = 0; b < v.n_blocks; ++b) {
    const std::uint32_t n = static_cast<std::uint32_t>(std::min<std::uint64_t>(block_size, v.n_tokens - b * block_size));
    std::vector<double> mn(d, INFINITY), mx(d, -INFINITY), sum(d, 0);
    double vmax = 0;
    for (std::uint32_t t = 0; t < n; ++t) {
      to_fp32(dtype, static_cast<const std::uint8_t*>(v.key_blocks[b]) + t * d * dtype_size(dtype), k.data(), d);
      to_fp32(dtype, static_cast<const std::uint8_t*>(v.value_blocks[b]) + t * d * dtype_size(dtype), val.data(), d);
      double norm = 0;
      for (std::uint32_t i = 0; i < d; ++i) {
        mn[i] = std::min<double>(mn[i], k[i]);
        mx[i] = std::max<double>(mx[i], k[i]);
        sum[i] += k[i];
        norm += double(val[i]) * val[i];
      }
      vmax = std::max(vmax, std::sqrt(norm));
    }
    for (std::uint32_t i = 0; i < d; ++i) {
      ASSERT_EQ(v.key_min[b * d + i], static_cast<float>(mn[i]));
      ASSERT_EQ(v.key_max[b * d + i], static_cast<float>(mx[i]));
      ASSERT_NEAR(v.key_mean[b * d + i], sum[i] / n, 1e-5 * (1 + std::fabs(sum[i] / n)));
    }
    ASSERT_NEAR(v.value_norm_max[b], vmax, 1e-5 * (1 + vmax));
  }
}

}  // namespace

TEST(KvCache, MetadataMatchesRecomputationAfterAppendsAndCompaction) {
  const std::uint32_t d = 24, bs = 16;
  for (auto dtype : {ATTNBENCH_DTYPE_FP32, ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16}) {
    kv_cache cache(2, 3, d, bs, dtype);
    attnbench::rng r(11);
    std::vector<std::int64_t> pos;
    for (int round = 0; round < 5; ++round) {  // appends of uneven sizes
      const std::size_t n = 1 + r.below(40);
      std::vector<float> k(n * d), v(n * d);
      for (auto& x : k) x = static_cast<float>(r.normal());
      for (auto& x : v) x = static_cast<float>(r.normal() * 3);
      std::vector<std::int64_t> p(n);
      std::iota(p.begin(), p.end(), static_cast<std::int64_t>(pos.size()));
      pos.insert(pos.end(), p.begin(), p.end());
      cache.append(1, 2, n, p.data(), k.data(), v.data());
    }
    const auto& view = cache.layer_view(1).heads[2];
    ASSERT_EQ(view.n_tokens, pos.size());
    ASSERT_EQ(view.n_blocks, (pos.size() + bs - 1) / bs);
    expect_metadata_matches(view, d, bs, dtype);
    EXPECT_EQ(view.positions, nullptr);  // never compacted: position == index
    EXPECT_EQ(cache.layer_view(0).heads[0].n_tokens, 0u);

    std::vector<std::uint32_t> keep;
    for (std::uint32_t t = 0; t < view.n_tokens; ++t)
      if (t % 3 != 1) keep.push_back(t);
    std::vector<float> before(d), after(d);
    const std::uint32_t probe = keep[keep.size() / 2];
    to_fp32(dtype, static_cast<const std::uint8_t*>(view.key_blocks[probe / bs]) + (probe % bs) * d * dtype_size(dtype),
            before.data(), d);
    cache.compact(1, 2, keep.data(), keep.size());
    const auto& after_view = cache.layer_view(1).heads[2];
    ASSERT_EQ(after_view.n_tokens, keep.size());
    expect_metadata_matches(after_view, d, bs, dtype);
    const std::uint32_t moved = static_cast<std::uint32_t>(keep.size() / 2);
    ASSERT_NE(after_view.positions, nullptr);
    EXPECT_EQ(after_view.positions[moved], probe);
    to_fp32(dtype, static_cast<const std::uint8_t*>(after_view.key_blocks[moved / bs]) + (moved % bs) * d * dtype_size(dtype),
            after.data(), d);
    EXPECT_EQ(before, after);
  }
}

// Block metadata does not depend on how the tokens arrived: one token per append (a
// decode), one bulk append (a prefill, with streaming stores) and uneven pieces give the
// same bits, for a head dim with and without a tail past the vector width.
TEST(KvCache, MetadataBitsDoNotDependOnHowAppendsAreSplit) {
  for (std::uint32_t d : {24u, 128u})
    for (auto dtype : {ATTNBENCH_DTYPE_FP32, ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16}) {
      const std::uint32_t bs = 64;
      const std::size_t n = 300;
      attnbench::rng r(12);
      std::vector<float> k(n * d), v(n * d);
      for (auto& x : k) x = static_cast<float>(r.normal());
      for (auto& x : v) x = static_cast<float>(r.normal() * 2);
      std::vector<std::int64_t> pos(n);
      std::iota(pos.begin(), pos.end(), 0);
      kv_cache one(1, 1, d, bs, dtype), bulk(1, 1, d, bs, dtype), pieces(1, 1, d, bs, dtype);
      for (std::size_t t = 0; t < n; ++t) one.append(0, 0, 1, &pos[t], &k[t * d], &v[t * d]);
      bulk.append(0, 0, n, pos.data(), k.data(), v.data());
      for (std::size_t t = 0, step = 1; t < n; t += step, step = step * 3 % 97 + 1) {
        const std::size_t m = std::min(step, n - t);
        pieces.append(0, 0, m, &pos[t], &k[t * d], &v[t * d]);
      }
      const auto& a = one.layer_view(0).heads[0];
      for (kv_cache* other : {&bulk, &pieces}) {
        const auto& b = other->layer_view(0).heads[0];
        ASSERT_EQ(a.n_blocks, b.n_blocks);
        const std::size_t floats = static_cast<std::size_t>(a.n_blocks) * d;
        EXPECT_EQ(std::memcmp(a.key_min, b.key_min, floats * sizeof(float)), 0) << dtype_name(dtype) << " d " << d;
        EXPECT_EQ(std::memcmp(a.key_max, b.key_max, floats * sizeof(float)), 0) << dtype_name(dtype) << " d " << d;
        EXPECT_EQ(std::memcmp(a.key_mean, b.key_mean, floats * sizeof(float)), 0) << dtype_name(dtype) << " d " << d;
        EXPECT_EQ(std::memcmp(a.value_norm_max, b.value_norm_max, a.n_blocks * sizeof(float)), 0)
            << dtype_name(dtype) << " d " << d;
        for (std::uint32_t blk = 0; blk < a.n_blocks; ++blk) {  // and the stored rows themselves
          const std::size_t rows = std::min<std::size_t>(bs, n - std::size_t{blk} * bs);
          EXPECT_EQ(std::memcmp(a.key_blocks[blk], b.key_blocks[blk], rows * d * dtype_size(dtype)), 0);
          EXPECT_EQ(std::memcmp(a.value_blocks[blk], b.value_blocks[blk], rows * d * dtype_size(dtype)), 0);
        }
      }
    }
}

// After eviction a head holds fewer tokens than the sequence: truncating at a sequence
// position cuts each head at its own count (what continuations after tca or streaming
// eviction need).
TEST(KvCache, TruncateCutsCompactedHeadsBySequencePosition) {
  const std::uint32_t d = 24, bs = 16;
  kv_cache cache(1, 2, d, bs, ATTNBENCH_DTYPE_FP16);
  attnbench::rng r(21);
  auto append = [&](std::uint32_t h, std::int64_t first, std::size_t n) {
    std::vector<float> k(n * d), v(n * d);
    for (auto& x : k) x = static_cast<float>(r.normal());
    for (auto& x : v) x = static_cast<float>(r.normal());
    std::vector<std::int64_t> pos(n);
    std::iota(pos.begin(), pos.end(), first);
    cache.append(0, h, n, pos.data(), k.data(), v.data());
  };
  append(0, 0, 100);
  append(1, 0, 100);
  std::vector<std::uint32_t> keep;
  for (std::uint32_t t = 0; t < 100; t += 3) keep.push_back(t);  // 34 tokens, positions 0, 3, ..., 99
  cache.compact(0, 0, keep.data(), keep.size());
  append(0, 100, 5);  // a continuation: positions 100-104
  append(1, 100, 5);
  ASSERT_EQ(cache.layer_view(0).heads[0].n_tokens, 39u);
  cache.truncate(100);  // back to the generation's start
  const auto& a = cache.layer_view(0).heads[0];
  const auto& b = cache.layer_view(0).heads[1];
  ASSERT_EQ(a.n_tokens, 34u);
  ASSERT_NE(a.positions, nullptr);
  EXPECT_EQ(a.positions[33], 99);
  EXPECT_EQ(b.n_tokens, 100u);
  expect_metadata_matches(a, d, bs, ATTNBENCH_DTYPE_FP16);
  expect_metadata_matches(b, d, bs, ATTNBENCH_DTYPE_FP16);
  cache.truncate(0);  // a new sample: both empty, positions back to identity
  EXPECT_EQ(cache.layer_view(0).heads[0].n_tokens, 0u);
  EXPECT_EQ(cache.layer_view(0).heads[0].positions, nullptr);
}

// Truncation (decoding several continuations of one prefix): tokens past the cut are
// gone, the last block's metadata is rebuilt, and appends after it behave as if the cut
// tokens had never been there.
TEST(KvCache, TruncateKeepsThePrefixAndItsMetadata) {
  const std::uint32_t d = 16, bs = 8;
  for (auto dtype : {ATTNBENCH_DTYPE_FP32, ATTNBENCH_DTYPE_FP16}) {
    attnbench::rng r(5);
    std::vector<float> k(50 * d), v(50 * d), k2(7 * d), v2(7 * d);
    for (auto* vec : {&k, &v, &k2, &v2})
      for (auto& x : *vec) x = static_cast<float>(r.normal());
    std::vector<std::int64_t> pos(57);
    std::iota(pos.begin(), pos.end(), 0);
    kv_cache cut(1, 2, d, bs, dtype), fresh(1, 2, d, bs, dtype);
    for (std::uint32_t h = 0; h < 2; ++h) {
      cut.append(0, h, 50, pos.data(), k.data(), v.data());
      fresh.append(0, h, 21, pos.data(), k.data(), v.data());
    }
    cut.truncate(21);  // mid-block: 21 = 2 * 8 + 5
    for (std::uint32_t h = 0; h < 2; ++h) {
      EXPECT_EQ(cut.n_tokens(0, h), 21u);
      expect_metadata_matches(cut.layer_view(0).heads[h], d, bs, dtype);
      cut.append(0, h, 7, pos.data() + 21, k2.data(), v2.data());
      fresh.append(0, h, 7, pos.data() + 21, k2.data(), v2.data());
      const auto &a = cut.layer_view(0).heads[h], &b = fresh.layer_view(0).heads[h];
      ASSERT_EQ(a.n_blocks, b.n_blocks);
      for (std::uint32_t blk = 0; blk < a.n_blocks; ++blk) {
        const std::uint64_t rows = std::min<std::uint64_t>(bs, a.n_tokens - blk * bs);  // stale rows past the end
        EXPECT_EQ(0, std::memcmp(a.key_blocks[blk], b.key_blocks[blk], rows * d * dtype_size(dtype)));
        for (std::uint32_t i = 0; i < d; ++i) EXPECT_EQ(a.key_min[blk * d + i], b.key_min[blk * d + i]);
      }
      expect_metadata_matches(a, d, bs, dtype);
    }
    cut.truncate(100);  // longer than the cache: nothing changes
    EXPECT_EQ(cut.n_tokens(0, 0), 28u);
  }
}

TEST(KvCache, PrefaultKeepsTokensAndLaterAppendsMatchAFreshCache) {
  // Prefaulting far past the tokens in use (enough to move the region) must not touch
  // them, and appends after it must give what a cache without it gives.
  const std::uint32_t d = 16, bs = 8;
  attnbench::rng r(6);
  std::vector<float> k(40 * d), v(40 * d);
  for (auto* vec : {&k, &v})
    for (auto& x : *vec) x = static_cast<float>(r.normal());
  std::vector<std::int64_t> pos(40);
  std::iota(pos.begin(), pos.end(), 0);
  kv_cache a(2, 2, d, bs, ATTNBENCH_DTYPE_FP16), b(2, 2, d, bs, ATTNBENCH_DTYPE_FP16);
  for (std::uint32_t l = 0; l < 2; ++l)
    for (std::uint32_t h = 0; h < 2; ++h) {
      a.append(l, h, 21, pos.data(), k.data(), v.data());
      b.append(l, h, 21, pos.data(), k.data(), v.data());
    }
  a.prefault(1 << 20);
  a.prefault(10);  // fewer than in use: nothing to do
  for (std::uint32_t l = 0; l < 2; ++l)
    for (std::uint32_t h = 0; h < 2; ++h) {
      a.append(l, h, 19, pos.data() + 21, k.data() + 21 * d, v.data() + 21 * d);
      b.append(l, h, 19, pos.data() + 21, k.data() + 21 * d, v.data() + 21 * d);
      const auto &x = a.layer_view(l).heads[h], &y = b.layer_view(l).heads[h];
      ASSERT_EQ(x.n_tokens, 40u);
      ASSERT_EQ(x.n_blocks, y.n_blocks);
      for (std::uint32_t blk = 0; blk < x.n_blocks; ++blk) {
        EXPECT_EQ(0, std::memcmp(x.key_blocks[blk], y.key_blocks[blk], bs * d * 2));
        EXPECT_EQ(0, std::memcmp(x.value_blocks[blk], y.value_blocks[blk], bs * d * 2));
      }
      expect_metadata_matches(x, d, bs, ATTNBENCH_DTYPE_FP16);
    }
}

TEST(KvCache, CompactionRejectsUnsortedOrOutOfRangeLists) {
  kv_cache cache(1, 1, 8, 4, ATTNBENCH_DTYPE_FP32);
  std::vector<float> k(10 * 8, 1.0f);
  std::vector<std::int64_t> p(10);
  std::iota(p.begin(), p.end(), 0);
  cache.append(0, 0, 10, p.data(), k.data(), k.data());
  const std::uint32_t unsorted[] = {3, 2};
  const std::uint32_t out_of_range[] = {1, 10};
  EXPECT_THROW(cache.compact(0, 0, unsorted, 2), std::invalid_argument);
  EXPECT_THROW(cache.compact(0, 0, out_of_range, 2), std::invalid_argument);
}

TEST(KvCache, MetadataCostsAtMostFivePercentAt128K) {
  // The figure: 128K tokens x 8 KV heads x 128 dims x fp16, block 64.
  kv_cache cache(1, 8, 128, 64, ATTNBENCH_DTYPE_FP16, 131072);
  std::vector<float> k(4096 * 128, 0.25f);
  std::vector<std::int64_t> p(4096);
  for (std::uint32_t h = 0; h < 8; ++h)
    for (std::int64_t start = 0; start < 131072; start += 4096) {
      std::iota(p.begin(), p.end(), start);
      cache.append(0, h, 4096, p.data(), k.data(), k.data());
    }
  const double kv = 131072.0 * 8 * 128 * 2 * 2;
  EXPECT_EQ(static_cast<double>(cache.token_bytes()), kv);
  const double overhead = static_cast<double>(cache.resident_bytes()) / kv - 1.0;
  EXPECT_LE(overhead, 0.05);
  RecordProperty("metadata_overhead", std::to_string(overhead));
}

TEST(KvCache, ResidentBytesCountTokensAndMetadata) {
  kv_cache cache(1, 2, 128, 64, ATTNBENCH_DTYPE_FP16);
  std::vector<float> k(100 * 128, 0.5f);
  std::vector<std::int64_t> p(100);
  std::iota(p.begin(), p.end(), 0);
  cache.append(0, 0, 100, p.data(), k.data(), k.data());
  EXPECT_EQ(cache.token_bytes(), 2ull * 2 * 64 * 128 * 2);  // two blocks of K and V
  EXPECT_GT(cache.resident_bytes(), cache.token_bytes());
}
