// The CUDA kernels (kernels/cuda, issue 9) against float64 references on random paged
// caches, with outputs poisoned with NaN first; ART in the kernel against the CPU art
// plugin on the same data; TokenSelect's selection against the CPU top_k. Every test that
// needs a GPU skips without one; the argument checks run everywhere.
#include "cuda-helpers.hpp"

using namespace attnbench::testing::cuda;

namespace {

TEST(CudaArgs, BadShapesAreRejectedWithAMessage) {
  attnbench_cuda_decode_args a{};
  a.dtype = 7;
  EXPECT_EQ(attnbench_cuda_decode(&a, 0, nullptr), ATTNBENCH_CUDA_BAD_ARGUMENT);
  EXPECT_NE(std::string(attnbench_cuda_last_error()).find("dtype"), std::string::npos);
  a.dtype = ATTNBENCH_CUDA_FP16;
  a.batch = 1;
  a.n_query_heads = 12;
  a.n_kv_heads = 4;  // GQA 3
  a.head_dim = 128;
  a.max_len = 64;
  a.max_blocks = 1;
  EXPECT_EQ(attnbench_cuda_decode(&a, 0, nullptr), ATTNBENCH_CUDA_BAD_ARGUMENT);
  EXPECT_NE(std::string(attnbench_cuda_last_error()).find("GQA ratio"), std::string::npos);
  EXPECT_EQ(attnbench_cuda_decode(nullptr, 0, nullptr), ATTNBENCH_CUDA_BAD_ARGUMENT);
  attnbench_cuda_select_args s{};
  s.dtype = ATTNBENCH_CUDA_FP16;
  s.batch = 1;
  s.n_query_heads = s.n_kv_heads = 1;
  s.head_dim = 128;
  s.max_len = 100;
  s.max_blocks = 2;
  s.top_k = 0;
  EXPECT_EQ(attnbench_cuda_select(&s, 0, nullptr, nullptr), ATTNBENCH_CUDA_BAD_ARGUMENT);
  EXPECT_NE(std::string(attnbench_cuda_last_error()).find("top_k"), std::string::npos);
  // The read probe: a served shape, but no pools, then an unknown method and head dim 64.
  a.n_query_heads = 32;
  a.n_kv_heads = 8;
  EXPECT_EQ(attnbench_cuda_read_probe(&a, ATTNBENCH_PROBE_WARP_LOADS, 12, 0, 0, nullptr),
            ATTNBENCH_CUDA_BAD_ARGUMENT);
  EXPECT_NE(std::string(attnbench_cuda_last_error()).find("null"), std::string::npos);
  int dummy = 0;
  a.k_pool = a.v_pool = &dummy;
  a.block_table = &dummy;
  EXPECT_EQ(attnbench_cuda_read_probe(&a, 9, 12, 2, 0, nullptr), ATTNBENCH_CUDA_BAD_ARGUMENT);
  EXPECT_NE(std::string(attnbench_cuda_last_error()).find("method"), std::string::npos);
  EXPECT_EQ(attnbench_cuda_read_probe(&a, ATTNBENCH_PROBE_CTA_BULK, 2, 0, 0, nullptr), ATTNBENCH_CUDA_BAD_ARGUMENT);
  EXPECT_NE(std::string(attnbench_cuda_last_error()).find("stages"), std::string::npos);
  a.head_dim = 64;
  EXPECT_EQ(attnbench_cuda_read_probe(&a, ATTNBENCH_PROBE_WARP_LOADS, 12, 0, 0, nullptr),
            ATTNBENCH_CUDA_BAD_ARGUMENT);
  EXPECT_NE(std::string(attnbench_cuda_last_error()).find("head dim 128"), std::string::npos);
}

struct dense_case {
  int d, G;
  attnbench_dtype dtype;
};

class CudaDense : public ::testing::TestWithParam<dense_case> {};

TEST_P(CudaDense, MatchesFloat64AtEveryLengthAndSplit) {
  REQUIRE_GPU();
  const auto [d, G, dtype] = GetParam();
  for (const std::vector<int32_t>& lens : {std::vector<int32_t>{1}, {63}, {64}, {65}, {4097}, {5000, 1, 300}}) {
    const int hkv = 2;
    paged_cache c(static_cast<int>(lens.size()), hkv * G, hkv, d, lens, dtype, d * 100 + G * 10 + lens.size());
    device_cache dc(c);
    std::vector<double> want(c.q.size());
    for (int b = 0; b < c.batch; ++b)
      for (int h = 0; h < hkv; ++h) reference(c, b, h, kAll, kEveryChunk, want);
    for (int splits : {0, 1, 3}) {
      auto a = decode_args(c, dc, nullptr);
      a.splits = splits;
      const auto got = run_decode(a, c.q.size());
      EXPECT_TRUE(all_finite(got)) << "lens[0] " << lens[0] << " splits " << splits;
      EXPECT_LT(rel_l2(got, want), 5e-3) << "lens[0] " << lens[0] << " splits " << splits;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaDense,
                         ::testing::Values(dense_case{128, 1, ATTNBENCH_DTYPE_FP16}, dense_case{128, 2, ATTNBENCH_DTYPE_FP16},
                                           dense_case{128, 4, ATTNBENCH_DTYPE_FP16}, dense_case{128, 8, ATTNBENCH_DTYPE_FP16},
                                           dense_case{64, 1, ATTNBENCH_DTYPE_FP16}, dense_case{64, 4, ATTNBENCH_DTYPE_FP16},
                                           dense_case{64, 8, ATTNBENCH_DTYPE_FP16}, dense_case{128, 1, ATTNBENCH_DTYPE_BF16},
                                           dense_case{128, 4, ATTNBENCH_DTYPE_BF16}, dense_case{128, 8, ATTNBENCH_DTYPE_BF16},
                                           dense_case{64, 2, ATTNBENCH_DTYPE_BF16}),
                         [](const ::testing::TestParamInfo<dense_case>& info) {
                           std::ostringstream name;
                           name << "d" << info.param.d << "_gqa" << info.param.G
                                << (info.param.dtype == ATTNBENCH_DTYPE_BF16 ? "_bf16" : "_fp16");
                           return name.str();
                         });

// Block and token lists: per (sequence, KV head) its own list, the last block partial.
TEST(CudaSparse, BlockAndTokenListsMatchFloat64) {
  REQUIRE_GPU();
  for (attnbench_dtype dtype : {ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16}) {
    const std::vector<int32_t> lens{3000, 700};
    paged_cache c(2, 8, 2, 128, lens, dtype, 11);
    device_cache dc(c);
    std::mt19937 rng(5);
    const int max_list = 40;
    for (int kind : {ATTNBENCH_CUDA_BLOCKS, ATTNBENCH_CUDA_TOKENS}) {
      std::vector<int32_t> list(static_cast<std::size_t>(c.batch) * c.hkv * max_list, -7), counts(c.batch * c.hkv);
      std::vector<double> want(c.q.size());
      for (int b = 0; b < c.batch; ++b)
        for (int h = 0; h < c.hkv; ++h) {
          const int bh = b * c.hkv + h;
          const int n_blocks = (lens[b] + kBlock - 1) / kBlock;
          // Blocks (the last, partial one always among them) or tokens, in random order.
          std::vector<std::uint32_t> all(kind == ATTNBENCH_CUDA_BLOCKS ? n_blocks : lens[b]);
          std::iota(all.begin(), all.end(), 0u);
          std::shuffle(all.begin(), all.end(), rng);
          if (kind == ATTNBENCH_CUDA_BLOCKS) {
            all.resize(std::min(n_blocks, 5 + bh * 3));
            if (std::find(all.begin(), all.end(), n_blocks - 1u) == all.end()) all.back() = n_blocks - 1;
          } else {
            all.resize(std::min<int>(max_list, 13 + 9 * bh));  // not a multiple of 64 ... nor of anything
          }
          counts[bh] = static_cast<int>(all.size());
          std::copy(all.begin(), all.end(), list.begin() + static_cast<std::ptrdiff_t>(bh) * max_list);
          const attnbench_plan_entry entry{
              kind == ATTNBENCH_CUDA_BLOCKS ? ATTNBENCH_PLAN_BLOCKS : ATTNBENCH_PLAN_TOKENS,
              static_cast<std::uint32_t>(all.size()), all.data(), nullptr};
          reference(c, b, h, entry, kEveryChunk, want);
        }
      device_buffer<int32_t> dl(list), dn(counts);
      for (int splits : {0, 1, 2}) {
        auto a = decode_args(c, dc, nullptr);
        a.list_kind = kind;
        a.list = dl.ptr;
        a.list_counts = dn.ptr;
        a.max_list = max_list;
        a.splits = splits;
        const auto got = run_decode(a, c.q.size());
        EXPECT_TRUE(all_finite(got));
        EXPECT_LT(rel_l2(got, want), 5e-3) << "kind " << kind << " splits " << splits;
      }
    }
  }
}

}  // namespace
