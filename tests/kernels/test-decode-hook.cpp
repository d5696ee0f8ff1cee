// The terminator hook's view of the block just folded.
#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/random.hpp>
#include <attnbench/kernels/simd.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

using namespace attnbench::kernels;

namespace {
// The hook's block_max is the largest logit of the block just folded, per query head,
// for one head (which the SIMD path folds in pieces of a chunk) and for a group, with
// block sizes smaller and larger than a piece.
struct max_log {
  std::vector<std::vector<float>> per_block;
};
attnbench_decision log_max(const void*, void* state, const attnbench_kernel_state* ks) {
  auto* log = static_cast<max_log*>(state);
  log->per_block.emplace_back(ks->block_max, ks->block_max + ks->n_query_heads);
  return ATTNBENCH_CONTINUE;
}

}  // namespace

TEST(DecodeTerminator, BlockMaxIsTheLargestLogitOfTheBlock) {
  const std::uint32_t d = 64, n = 300;
  for (const std::string target : {"auto", "scalar"})
    for (std::uint32_t bs : {16u, 64u})
      for (std::uint32_t group : {1u, 4u}) {
        ASSERT_TRUE(set_target(target));
        kv_cache cache(1, 1, d, bs, ATTNBENCH_DTYPE_FP16);
        attnbench::rng r(5 + bs + group);
        std::vector<float> k(std::size_t{n} * d), v(k.size()), queries(std::size_t{group} * d);
        for (auto& x : k) x = static_cast<float>(r.normal());
        for (auto& x : v) x = static_cast<float>(r.normal());
        for (auto& x : queries) x = static_cast<float>(2.0 * r.normal());
        std::vector<std::int64_t> p(n);
        std::iota(p.begin(), p.end(), 0);
        cache.append(0, 0, n, p.data(), k.data(), v.data());
        const auto& view = cache.layer_view(0).heads[0];
        const attnbench_plan_entry entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr};
        attnbench_terminator_ops ops{};
        ops.check = log_max;
        max_log log;
        std::vector<float> out(group * d);
        decode_args a;
        a.queries = queries.data();
        a.n_query_heads = group;
        a.head_dim = d;
        a.scale = 0.2f;
        a.kv = &view;
        a.block_size = bs;
        a.dtype = ATTNBENCH_DTYPE_FP16;
        a.entry = &entry;
        a.out = out.data();
        a.hook = {&ops, nullptr, &log};
        decode_counters c;
        ASSERT_EQ(decode_group(a, &c), ATTNBENCH_STATUS_OK);
        ASSERT_EQ(log.per_block.size(), (n + bs - 1) / bs);
        std::vector<float> key(d);
        for (std::uint32_t b = 0; b < log.per_block.size(); ++b)
          for (std::uint32_t g = 0; g < group; ++g) {
            double want = -INFINITY;
            for (std::uint32_t t = b * bs; t < std::min(n, (b + 1) * bs); ++t) {
              to_fp32(ATTNBENCH_DTYPE_FP16,
                      static_cast<const std::uint8_t*>(view.key_blocks[t / bs]) + (t % bs) * d * 2, key.data(), d);
              double dot = 0;
              for (std::uint32_t i = 0; i < d; ++i) dot += static_cast<double>(queries[g * d + i]) * key[i];
              want = std::max(want, 0.2 * dot);
            }
            EXPECT_NEAR(log.per_block[b][g], want, 1e-4 * std::max(1.0, std::abs(want)))
                << target << ", block size " << bs << ", group " << group << ", block " << b << ", head " << g;
          }
      }
  ASSERT_TRUE(set_target("auto"));
}

