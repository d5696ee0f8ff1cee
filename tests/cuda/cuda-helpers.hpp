// Shared by the CUDA tests: device buffers, random paged caches, their float64 references
// and a decode call. Every test that needs a GPU skips without one (REQUIRE_GPU).
#pragma once

#include <attnbench/host/plugin-loader.hpp>

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

namespace attnbench::testing::cuda {


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
inline attnbench::kernels::decode_args cpu_args(const paged_cache& c, int b, int h, const head_view& hv,
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
inline void reference(const paged_cache& c, int b, int h, const attnbench_plan_entry& entry, std::uint64_t max_chunks,
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

inline attnbench_cuda_decode_args decode_args(const paged_cache& c, const device_cache& dc, float* out) {
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

inline double rel_l2(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

inline bool all_finite(const std::vector<float>& x) {
  return std::all_of(x.begin(), x.end(), [](float f) { return std::isfinite(f); });
}

inline std::vector<float> run_decode(attnbench_cuda_decode_args a, std::size_t n_out) {
  device_buffer<float> out(std::vector<float>(n_out, NAN));  // poisoned: every element must be written
  a.out = out.ptr;
  const int rc = attnbench_cuda_decode(&a, 0, nullptr);
  EXPECT_EQ(rc, ATTNBENCH_CUDA_OK) << attnbench_cuda_last_error();
  return out.get();
}

}  // namespace attnbench::testing::cuda
