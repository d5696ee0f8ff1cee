#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/random.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace attnbench::kernels;

// fp16 rounding must pick the nearer of the two neighbouring fp16 values (ties to even).
TEST(Dtype, Fp16RoundsToNearest) {
  attnbench::rng r(7);
  for (int i = 0; i < 200000; ++i) {
    const float x = static_cast<float>((r.uniform() * 2 - 1) * std::pow(2.0, static_cast<int>(r.below(40)) - 24));
    const std::uint16_t h = fp32_to_fp16(x);
    const float y = fp16_to_fp32(h);
    const float up = fp16_to_fp32(static_cast<std::uint16_t>(h + 1));
    const float down = fp16_to_fp32(static_cast<std::uint16_t>(h - 1));
    if ((h & 0x7fff) != 0 && (h & 0x7fff) < 0x7bff) {
      EXPECT_LE(std::fabs(y - x), std::fabs(up - x)) << x;
      EXPECT_LE(std::fabs(y - x), std::fabs(down - x)) << x;
    }
  }
  EXPECT_EQ(fp16_to_fp32(fp32_to_fp16(1.0f)), 1.0f);
  EXPECT_EQ(fp16_to_fp32(fp32_to_fp16(-65504.0f)), -65504.0f);
  EXPECT_TRUE(std::isinf(fp16_to_fp32(fp32_to_fp16(1e6f))));
  EXPECT_EQ(fp16_to_fp32(fp32_to_fp16(5.9604644775390625e-8f)), 5.9604644775390625e-8f);  // smallest subnormal
}

TEST(Dtype, Bf16RoundsToNearest) {
  attnbench::rng r(8);
  for (int i = 0; i < 100000; ++i) {
    const float x = static_cast<float>((r.uniform() * 2 - 1) * 1000);
    const float y = bf16_to_fp32(fp32_to_bf16(x));
    EXPECT_LE(std::fabs(y - x), std::fabs(x) * (1.0f / 256.0f)) << x;
  }
  EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(1.0f)), 1.0f);
}

TEST(Dtype, BulkConversionMatchesScalar) {
  attnbench::rng r(9);
  std::vector<float> src(1000), back(1000);
  for (auto& x : src) x = static_cast<float>(r.normal());
  // Edges of fp16 (overflow, subnormals, exact ties) for the hardware converter.
  const float edges[] = {65504.0f, 65519.0f, 65520.0f, -1e6f, 1e-8f, 6e-8f, 2.9802322e-8f, 3e-5f,
                         1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, -0.0f, 0.0f};
  std::copy(std::begin(edges), std::end(edges), src.begin() + 3);
  for (auto dtype : {ATTNBENCH_DTYPE_FP32, ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16}) {
    std::vector<std::uint8_t> buf(src.size() * dtype_size(dtype));
    from_fp32(dtype, src.data(), buf.data(), src.size());
    to_fp32(dtype, buf.data(), back.data(), src.size());
    for (std::size_t i = 0; i < src.size(); ++i) {
      const float expect = dtype == ATTNBENCH_DTYPE_FP32   ? src[i]
                           : dtype == ATTNBENCH_DTYPE_FP16 ? fp16_to_fp32(fp32_to_fp16(src[i]))
                                                           : bf16_to_fp32(fp32_to_bf16(src[i]));
      ASSERT_EQ(back[i], expect) << dtype_name(dtype) << " at " << i;
    }
  }
}

// store_fp32 writes what from_fp32 writes and hands back what to_fp32 would read, with and
// without streaming stores, at an aligned and a misaligned destination, with a tail that
// is not a multiple of the vector width.
TEST(Dtype, StoreFp32MatchesFromThenTo) {
  attnbench::rng r(10);
  std::vector<float> src(1003);
  for (auto& x : src) x = static_cast<float>(r.normal());
  src[5] = 65520.0f;  // overflows fp16
  src[6] = 2.9802322e-8f;
  for (auto dtype : {ATTNBENCH_DTYPE_FP32, ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16})
    for (bool streaming : {false, true})
      for (std::size_t offset : {0u, 1u}) {  // elements: 2 bytes off 16-byte alignment for fp16
        const std::size_t size = dtype_size(dtype);
        alignas(64) static std::uint8_t want_buf[4096 * 4], got_buf[4096 * 4];
        std::vector<float> want(src.size()), got(src.size(), -1.0f);
        from_fp32(dtype, src.data(), want_buf + offset * size, src.size());
        to_fp32(dtype, want_buf + offset * size, want.data(), src.size());
        store_fp32(dtype, src.data(), got_buf + offset * size, got.data(), src.size(), streaming);
        EXPECT_EQ(std::memcmp(want_buf + offset * size, got_buf + offset * size, src.size() * size), 0)
            << dtype_name(dtype) << " streaming " << streaming << " offset " << offset;
        EXPECT_EQ(std::memcmp(want.data(), got.data(), src.size() * sizeof(float)), 0)
            << dtype_name(dtype) << " streaming " << streaming << " offset " << offset;
      }
}
