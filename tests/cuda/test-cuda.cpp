// The CUDA kernels (kernels/cuda, issue 9) against float64 references on random paged
// caches, with outputs poisoned with NaN first; ART in the kernel against the CPU art
// plugin on the same data; TokenSelect's selection against the CPU top_k. Every test that
// needs a GPU skips without one; the argument checks run everywhere.
#include "../../harness/plugin-loader.hpp"

#include <attnbench/cuda.h>
#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/score.hpp>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kBlock = ATTNBENCH_CUDA_BLOCK;

#define REQUIRE_GPU() \
  if (attnbench_cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"

// A device copy of a host vector, freed at scope exit.
template <class T>
struct device_buffer {
  T* ptr = nullptr;
  std::size_t n = 0;
  explicit device_buffer(std::size_t count) : n(count) {
    if (cudaMalloc(&ptr, std::max<std::size_t>(1, n) * sizeof(T)) != cudaSuccess) throw std::runtime_error("cudaMalloc");
  }
  explicit device_buffer(const std::vector<T>& host) : device_buffer(host.size()) {
    cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice);
  }
  device_buffer(const device_buffer&) = delete;
  ~device_buffer() { cudaFree(ptr); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }
};

// A paged cache of B sequences: pools of blocks in random order, rounded to the dtype.
struct paged_cache {
  int batch, hq, hkv, d, max_blocks, max_len;
  attnbench_dtype dtype;
  std::vector<int32_t> lens, table;
  std::vector<std::uint16_t> k_raw, v_raw;  // the pools, as the dtype's bits
  std::vector<float> q;                      // scaled queries [b][hq][d]

  paged_cache(int B, int n_q, int n_kv, int dim, std::vector<int32_t> lengths, attnbench_dtype dt, unsigned seed)
      : batch(B), hq(n_q), hkv(n_kv), d(dim), dtype(dt), lens(std::move(lengths)) {
    max_len = *std::max_element(lens.begin(), lens.end());
    max_blocks = (max_len + kBlock - 1) / kBlock;
    const std::size_t blocks = static_cast<std::size_t>(batch) * hkv * max_blocks;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    std::vector<float> kf(blocks * kBlock * d), vf(kf.size());
    for (auto& x : kf) x = 0.3f * normal(rng);
    for (auto& x : vf) x = normal(rng);
    k_raw.resize(kf.size());
    v_raw.resize(vf.size());
    attnbench::kernels::from_fp32(dtype, kf.data(), k_raw.data(), kf.size());
    attnbench::kernels::from_fp32(dtype, vf.data(), v_raw.data(), vf.size());
    table.resize(blocks);
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);
    q.resize(static_cast<std::size_t>(batch) * hq * d);
    for (auto& x : q) x = normal(rng) / std::sqrt(static_cast<float>(d));
  }
  int group() const { return hq / hkv; }
  // Pool row of token t of sequence b, KV head h.
  std::size_t row(int b, int h, int t) const {
    return static_cast<std::size_t>(table[(static_cast<std::size_t>(b) * hkv + h) * max_blocks + t / kBlock]) * kBlock +
           t % kBlock;
  }
  const float* group_queries(int b, int h) const { return &q[(static_cast<std::size_t>(b) * hq + h * group()) * d]; }
};

// The CPU kernels' view of one (sequence, KV head) of a paged_cache: its blocks in sequence
// order (no block metadata), so that the kernels' float64 references read the same bits.
struct head_view {
  std::vector<const void*> keys, values;
  attnbench_kv_head_view view{};
  head_view(const paged_cache& c, int b, int h) {
    for (int i = 0; i < (c.lens[b] + kBlock - 1) / kBlock; ++i) {
      keys.push_back(&c.k_raw[c.row(b, h, i * kBlock) * c.d]);
      values.push_back(&c.v_raw[c.row(b, h, i * kBlock) * c.d]);
    }
    view.n_tokens = c.lens[b];
    view.n_blocks = static_cast<std::uint32_t>(keys.size());
    view.key_blocks = keys.data();
    view.value_blocks = values.data();
  }
  head_view(const head_view&) = delete;
};

// kernels::decode_args for the GQA group of (b, h) over `entry`, scale 1 (queries are scaled).
attnbench::kernels::decode_args cpu_args(const paged_cache& c, int b, int h, const head_view& hv,
                                         const attnbench_plan_entry& entry) {
  attnbench::kernels::decode_args a;
  a.queries = c.group_queries(b, h);
  a.n_query_heads = c.group();
  a.head_dim = c.d;
  a.scale = 1.0f;
  a.kv = &hv.view;
  a.block_size = kBlock;
  a.dtype = c.dtype;
  a.entry = &entry;
  return a;
}

// float64 attention (kernels::decode_reference) of every query head of (b, h) over the
// first max_chunks chunks of entry, into out [b][hq][d].
void reference(const paged_cache& c, int b, int h, const attnbench_plan_entry& entry, std::uint64_t max_chunks,
               std::vector<double>& out) {
  const head_view hv(c, b, h);
  const auto a = cpu_args(c, b, h, hv, entry);
  ASSERT_EQ(attnbench::kernels::decode_reference(a, max_chunks, &out[(static_cast<std::size_t>(b) * c.hq + h * c.group()) * c.d]),
            ATTNBENCH_STATUS_OK);
}

constexpr attnbench_plan_entry kAll{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr};
constexpr std::uint64_t kEveryChunk = UINT64_MAX;

// The kernel's inputs on the device.
struct device_cache {
  device_buffer<float> q;
  device_buffer<std::uint16_t> k, v;
  device_buffer<int32_t> table, lens;
  explicit device_cache(const paged_cache& c) : q(c.q), k(c.k_raw), v(c.v_raw), table(c.table), lens(c.lens) {}
};

attnbench_cuda_decode_args decode_args(const paged_cache& c, const device_cache& dc, float* out) {
  attnbench_cuda_decode_args a{};
  a.dtype = c.dtype == ATTNBENCH_DTYPE_BF16 ? ATTNBENCH_CUDA_BF16 : ATTNBENCH_CUDA_FP16;
  a.batch = c.batch;
  a.n_query_heads = c.hq;
  a.n_kv_heads = c.hkv;
  a.head_dim = c.d;
  a.queries = dc.q.ptr;
  a.k_pool = dc.k.ptr;
  a.v_pool = dc.v.ptr;
  a.block_table = dc.table.ptr;
  a.max_blocks = c.max_blocks;
  a.lens = dc.lens.ptr;
  a.max_len = c.max_len;
  a.out = out;
  return a;
}

double rel_l2(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

bool all_finite(const std::vector<float>& x) {
  return std::all_of(x.begin(), x.end(), [](float f) { return std::isfinite(f); });
}

std::vector<float> run_decode(attnbench_cuda_decode_args a, std::size_t n_out) {
  device_buffer<float> out(std::vector<float>(n_out, NAN));  // poisoned: every element must be written
  a.out = out.ptr;
  const int rc = attnbench_cuda_decode(&a, 0, nullptr);
  EXPECT_EQ(rc, ATTNBENCH_CUDA_OK) << attnbench_cuda_last_error();
  return out.get();
}

// ---------------------------------------------------------------------------------------

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

// TokenSelect's selection: the summed soft vote against float64, and the selected set
// against the CPU top_k of the same scores (so ties and order are checked exactly).
TEST(CudaSelect, SoftVoteAndTopKMatchTheCpu) {
  REQUIRE_GPU();
  for (attnbench_dtype dtype : {ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16}) {
    const std::vector<int32_t> lens{9000, 700, 2700};
    paged_cache c(3, 8, 2, 128, lens, dtype, 23);
    // Sequence 2: equal keys over a stretch, for ties at the threshold.
    for (int h = 0; h < c.hkv; ++h)
      for (int t = 1000; t < 1400; ++t) {
        const std::size_t r = c.row(2, h, t), r0 = c.row(2, h, 999);
        std::copy_n(&c.k_raw[r0 * c.d], c.d, &c.k_raw[r * c.d]);
      }
    device_cache dc(c);
    const int n_init = 100, n_local = 200;
    for (int top_k : {1, 300, 2048, 100000}) {
      device_buffer<float> scores(std::vector<float>(static_cast<std::size_t>(c.batch) * c.max_len, NAN));
      device_buffer<int32_t> selected(static_cast<std::size_t>(c.batch) * top_k), n_sel(c.batch);
      attnbench_cuda_select_args s{};
      s.dtype = dtype == ATTNBENCH_DTYPE_BF16 ? ATTNBENCH_CUDA_BF16 : ATTNBENCH_CUDA_FP16;
      s.batch = c.batch;
      s.n_query_heads = c.hq;
      s.n_kv_heads = c.hkv;
      s.head_dim = c.d;
      s.queries = dc.q.ptr;
      s.k_pool = dc.k.ptr;
      s.block_table = dc.table.ptr;
      s.max_blocks = c.max_blocks;
      s.lens = dc.lens.ptr;
      s.max_len = c.max_len;
      s.n_init = n_init;
      s.n_local = n_local;
      s.top_k = top_k;
      s.scores = scores.ptr;
      s.selected = selected.ptr;
      s.n_selected = n_sel.ptr;
      ASSERT_EQ(attnbench_cuda_select(&s, 0, nullptr, nullptr), ATTNBENCH_CUDA_OK) << attnbench_cuda_last_error();
      const auto got_scores = scores.get();
      const auto got_sel = selected.get();
      const auto got_n = n_sel.get();
      const int max_cand = c.max_len - n_local - n_init;
      for (int b = 0; b < c.batch; ++b) {
        const int n = lens[b] - n_local - n_init;
        // float64 soft vote, from kernels::score_reference's logits.
        std::vector<double> vote(n, 0.0), lg(static_cast<std::size_t>(c.group()) * n);
        for (int h = 0; h < c.hkv; ++h) {
          const head_view hv(c, b, h);
          attnbench::kernels::score_args sa;
          sa.queries = c.group_queries(b, h);
          sa.n_query_heads = c.group();
          sa.head_dim = c.d;
          sa.kv = &hv.view;
          sa.block_size = kBlock;
          sa.dtype = c.dtype;
          sa.first = n_init;
          sa.count = n;
          ASSERT_EQ(attnbench::kernels::score_reference(sa, lg.data()), ATTNBENCH_STATUS_OK);
          for (int g = 0; g < c.group(); ++g) {
            const double* row = &lg[static_cast<std::size_t>(g) * n];
            const double mx = *std::max_element(row, row + n);
            double sum = 0;
            for (int j = 0; j < n; ++j) sum += std::exp(row[j] - mx);
            for (int j = 0; j < n; ++j) vote[j] += std::exp(row[j] - mx) / sum;
          }
        }
        double err = 0, norm = 0;
        for (int j = 0; j < n; ++j) {
          const double g = got_scores[static_cast<std::size_t>(b) * max_cand + j];
          err += (g - vote[j]) * (g - vote[j]);
          norm += vote[j] * vote[j];
        }
        EXPECT_LT(std::sqrt(err / norm), 5e-3) << "sequence " << b;
        // The selection: the CPU top_k of the kernel's own scores, as positions, ascending.
        const int k = std::min(top_k, n);
        ASSERT_EQ(got_n[b], k);
        std::vector<std::uint32_t> idx(k);
        attnbench::kernels::top_k(&got_scores[static_cast<std::size_t>(b) * max_cand], n, k, idx.data());
        std::vector<int32_t> want(k);
        for (int i = 0; i < k; ++i) want[i] = n_init + static_cast<int32_t>(idx[i]);
        std::sort(want.begin(), want.end());
        const std::vector<int32_t> got(got_sel.begin() + static_cast<std::ptrdiff_t>(b) * top_k,
                                       got_sel.begin() + static_cast<std::ptrdiff_t>(b) * top_k + k);
        EXPECT_EQ(got, want) << "sequence " << b << ", top_k " << top_k;
      }
    }
  }
}

}  // namespace
