// The read ceiling: every method runs and is reported, the ceiling is the best median,
// the SIMD reader sums every word (tails included) whatever target is pinned, and a
// layer read counts the bytes of its blocks.
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/probe.hpp>
#include <attnbench/kernels/simd.hpp>

#include <gtest/gtest.h>

#include <numeric>
#include <set>
#include <vector>

using namespace attnbench::kernels;

TEST(ReadCeiling, EveryMethodIsMeasuredAndTheBestMedianIsTheCeiling) {
  const read_ceiling c = measure_read_ceiling(std::size_t{16} << 20, 3, 1);
  ASSERT_EQ(c.methods.size(), read_methods().size());
  std::set<std::string> names;
  for (const auto& m : c.methods) {
    names.insert(m.method.name());
    ASSERT_EQ(m.rates.size(), 3u) << m.method.name();
    for (double r : m.rates) EXPECT_GT(r, 0.0) << m.method.name();
    EXPECT_LE(m.min(), m.median());
    EXPECT_LE(m.median(), m.max());
    EXPECT_LE(m.median(), c.bytes_per_s()) << m.method.name();
  }
  EXPECT_EQ(names.size(), read_methods().size());
  EXPECT_TRUE(names.count("scalar/4k") && names.count("simd/huge") && names.count("simd/kv"));
  EXPECT_EQ(c.bytes_per_s(), c.methods[c.best].median());
  EXPECT_FALSE(c.simd_target.empty());
}

TEST(ReadCeiling, SimdReaderSumsEveryWordWhateverTargetIsPinned) {
  std::vector<std::uint64_t> words(10007);
  std::iota(words.begin(), words.end(), std::uint64_t{1} << 40);
  const std::string best = read_simd_target();
  for (const std::string target : {"auto", "scalar"}) {
    ASSERT_TRUE(set_target(target));
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{1000},
                          words.size()}) {
      const std::uint64_t want = std::accumulate(words.begin(), words.begin() + static_cast<std::ptrdiff_t>(n),
                                                 std::uint64_t{0});
      for (const char* reader : {"scalar", "simd", "simd-prefetch"})
        EXPECT_EQ(read_words(reader, words.data(), n * 8), want) << reader << ", " << target << ", " << n << " words";
    }
    EXPECT_EQ(read_simd_target(), best) << "pinning " << target << " changed the ceiling's reader";
  }
  ASSERT_TRUE(set_target("auto"));
}

TEST(ReadCeiling, LayerReadCountsTheBytesOfEveryBlock) {
  kv_cache cache(1, 2, 64, 16, ATTNBENCH_DTYPE_FP16);
  std::vector<float> kv(100 * 64, 0.5f);
  std::vector<std::int64_t> pos(100);
  std::iota(pos.begin(), pos.end(), 0);
  cache.append(0, 0, 100, pos.data(), kv.data(), kv.data());
  cache.append(0, 1, 40, pos.data(), kv.data(), kv.data());
  std::size_t bytes = 0;
  EXPECT_GE(read_layer_once(cache.layer_view(0), 1, &bytes), 0.0);
  EXPECT_EQ(bytes, std::size_t{(7 + 3) * 2 * 16 * 64 * 2});  // blocks of 16 tokens: 7 and 3, K and V
}

TEST(ReadCeiling, RooflineIsTheSlowerOfReadingAndArithmetic) {
  EXPECT_DOUBLE_EQ(roofline_seconds(1e9, 1e10, 1e9, 1e11), 0.1);   // memory-bound
  EXPECT_DOUBLE_EQ(roofline_seconds(1e9, 1e10, 1e11, 1e11), 1.0);  // arithmetic-bound
}
