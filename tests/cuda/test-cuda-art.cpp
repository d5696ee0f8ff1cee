// ART in the CUDA decode kernel: never firing is dense, always passing stops on time,
// and it stops where the CPU art plugin stops on the same data.
#include "cuda-helpers.hpp"

using namespace attnbench::testing::cuda;

namespace {

struct art_counters {
  device_buffer<uint32_t> planned, visited, stops;
  explicit art_counters(int n) : planned(n), visited(n), stops(n) {}
  void attach(attnbench_cuda_decode_args& a) {
    a.chunks_planned = planned.ptr;
    a.chunks_visited = visited.ptr;
    a.stops = stops.ptr;
  }
};

// ART that never fires (tau 0) leaves the output and the counts of dense decode; ART that
// always passes stops each split after max(patience + 1, min_blocks) chunks, and the
// output is attention over exactly those chunks.
TEST(CudaArt, NeverFiringIsDenseAndAlwaysPassingStopsOnTime) {
  REQUIRE_GPU();
  const std::vector<int32_t> lens{64 * 40 + 17, 64 * 9};
  paged_cache c(2, 8, 2, 128, lens, ATTNBENCH_DTYPE_FP16, 3);
  device_cache dc(c);
  art_counters cnt(c.batch * c.hkv);
  auto a = decode_args(c, dc, nullptr);
  a.splits = 1;
  cnt.attach(a);
  const auto dense = run_decode(a, c.q.size());
  a.art = 1;
  a.tau_mag = 0;
  a.tau_dir = 0;
  a.patience = 1;
  const auto never = run_decode(a, c.q.size());
  std::vector<double> dense64(dense.begin(), dense.end());
  EXPECT_LT(rel_l2(never, dense64), 1e-6);
  for (int bh = 0; bh < c.batch * c.hkv; ++bh) {
    EXPECT_EQ(cnt.visited.get()[bh], cnt.planned.get()[bh]);
    EXPECT_EQ(cnt.stops.get()[bh], 0u);
  }
  for (auto [patience, min_blocks] : {std::pair{1, 0}, {5, 0}, {2, 12}}) {
    a.tau_mag = 1.0;  // the norm's relative change is always under 1 ...
    a.tau_dir = 2.5;  // ... and 1 - cosine under 2
    a.patience = patience;
    a.min_blocks = min_blocks;
    const auto got = run_decode(a, c.q.size());
    const auto visited = cnt.visited.get(), stops = cnt.stops.get();
    std::vector<double> want(c.q.size());
    for (int b = 0; b < c.batch; ++b)
      for (int h = 0; h < c.hkv; ++h) {
        const int n_chunks = (lens[b] + kBlock - 1) / kBlock;
        const int expect = std::min(n_chunks, std::max(patience + 1, min_blocks));
        EXPECT_EQ(static_cast<int>(visited[b * c.hkv + h]), expect) << "patience " << patience;
        EXPECT_EQ(stops[b * c.hkv + h], expect < n_chunks ? 1u : 0u);
        reference(c, b, h, kAll, expect, want);
      }
    EXPECT_LT(rel_l2(got, want), 5e-3) << "patience " << patience;
  }
}

// The CPU art plugin (heuristic, same parameters) and the kernel with one split per
// traversal stop at the same chunk: on traversals whose late chunks carry no attention
// (their keys point away from the query) both stop `patience` chunks after the last
// chunk that moved the output, and never on plain random ones.
TEST(CudaArt, StopsWhereTheCpuTerminatorStops) {
  REQUIRE_GPU();
  using namespace attnbench;
  plugin_registry registry(plugin_registry::default_search_path({}));
  std::shared_ptr<plugin_library> lib;
  try {
    lib = registry.find("art", ATTNBENCH_PLUGIN_TERMINATOR);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "art plugin not found next to the test: " << e.what();
  }
  for (const char* magnitude : {"norm", "mass"}) {
    const nlohmann::json params = {{"tau_mag", 1e-5}, {"tau_dir", 1e-4}, {"patience", 3}, {"magnitude", magnitude}};
    attnbench_model_info model{};
    terminator_instance term(lib, params, model);
    const int G = 4, d = 128, hkv = 4;
    const std::vector<int32_t> lens{64 * 60};
    paged_cache c(1, G * hkv, hkv, d, lens, ATTNBENCH_DTYPE_FP16, 17);
    // Heads 0 and 1: every key from chunk 10 (head 0) or 25 (head 1) on points away from
    // all of the head's queries, so those chunks add nothing; heads 2 and 3 stay random.
    const int quiet_from[4] = {10, 25, 1 << 30, 1 << 30};
    for (int h = 0; h < 2; ++h) {
      std::vector<float> mean(d, 0.0f);
      for (int g = 0; g < G; ++g)
        for (int x = 0; x < d; ++x) mean[x] += c.q[(h * G + g) * d + x];
      for (int t = quiet_from[h] * kBlock; t < lens[0]; ++t) {
        std::vector<float> key(d);
        for (int x = 0; x < d; ++x) key[x] = -40.0f * mean[x];
        const std::size_t r = c.row(0, h, t);
        attnbench::kernels::from_fp32(c.dtype, key.data(), &c.k_raw[r * d], d);
      }
    }
    device_cache dc(c);
    art_counters cnt(hkv);
    auto a = decode_args(c, dc, nullptr);
    a.splits = 1;
    a.art = 1;
    a.tau_mag = 1e-5;
    a.tau_dir = 1e-4;
    a.patience = 3;
    a.art_mass = std::string(magnitude) == "mass";
    cnt.attach(a);
    run_decode(a, c.q.size());
    const auto visited = cnt.visited.get();

    // The CPU: decode_group over the same fp16 blocks with the plugin as its hook.
    for (int h = 0; h < hkv; ++h) {
      const head_view hv(c, 0, h);
      const std::uint32_t n_blocks = hv.view.n_blocks;
      std::vector<std::byte> state(term.state_size(G, d));
      const attnbench_traversal_info info{0, static_cast<std::uint32_t>(h), G, d, n_blocks, 0,
                                          static_cast<std::uint64_t>(lens[0]), c.group_queries(0, h), 1.0f, kBlock,
                                          &hv.view, &kAll};
      ASSERT_EQ(term.ops()->reset(term.handle(), state.data(), &info), ATTNBENCH_STATUS_OK);
      auto da = cpu_args(c, 0, h, hv, kAll);
      da.hook = {term.ops(), term.handle(), state.data()};
      std::vector<float> out(G * d);
      da.out = out.data();
      kernels::decode_counters counters;
      ASSERT_EQ(kernels::decode_group(da, &counters), ATTNBENCH_STATUS_OK);
      EXPECT_EQ(visited[h], counters.blocks_visited) << "head " << h << ", magnitude " << magnitude;
      if (h < 2)
        EXPECT_LT(counters.blocks_visited, static_cast<std::uint64_t>(n_blocks)) << "head " << h;
      else
        EXPECT_EQ(counters.blocks_visited, static_cast<std::uint64_t>(n_blocks)) << "head " << h;
    }
  }
}

}  // namespace
