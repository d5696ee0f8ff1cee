#include <attnbench/kernels/probe.hpp>

#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <new>
#include <vector>

namespace attnbench::kernels {

read_probe::read_probe(std::size_t bytes) : n_(bytes / sizeof(unsigned long long)) {
  data_ = static_cast<unsigned long long*>(::operator new(n_ * sizeof(unsigned long long), std::align_val_t{64}));
  for (std::size_t i = 0; i < n_; ++i) data_[i] = i;
}

read_probe::~read_probe() { ::operator delete(data_, std::align_val_t{64}); }

double read_probe::run_once(int threads) const {
  tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
  volatile unsigned long long sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const unsigned long long sum = arena.execute([&] {
    return tbb::parallel_reduce(
        tbb::blocked_range<std::size_t>(0, n_, 1 << 16), 0ull,
        [&](const tbb::blocked_range<std::size_t>& range, unsigned long long acc) {
          unsigned long long a0 = 0, a1 = 0, a2 = 0, a3 = 0;
          std::size_t i = range.begin();
          for (; i + 4 <= range.end(); i += 4) {
            a0 += data_[i];
            a1 += data_[i + 1];
            a2 += data_[i + 2];
            a3 += data_[i + 3];
          }
          for (; i < range.end(); ++i) a0 += data_[i];
          return acc + a0 + a1 + a2 + a3;
        },
        [](unsigned long long a, unsigned long long b) { return a + b; });
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sink = sink + sum;
  return s;
}

double read_layer_once(const attnbench_kv_layer_view& layer, int threads, std::size_t* bytes) {
  const std::size_t elem = layer.dtype == ATTNBENCH_DTYPE_FP32 ? 4 : 2;
  const std::size_t block_bytes = static_cast<std::size_t>(layer.block_size) * layer.head_dim * elem;
  std::size_t total = 0;
  for (std::uint32_t h = 0; h < layer.n_kv_heads; ++h) total += 2 * layer.heads[h].n_blocks * block_bytes;
  if (bytes) *bytes = total;
  tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
  volatile unsigned long long sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const unsigned long long sum = arena.execute([&] {
    return tbb::parallel_reduce(
        tbb::blocked_range<std::uint32_t>(0, layer.n_kv_heads), 0ull,
        [&](const tbb::blocked_range<std::uint32_t>& range, unsigned long long acc) {
          for (std::uint32_t h = range.begin(); h < range.end(); ++h) {
            const attnbench_kv_head_view& v = layer.heads[h];
            for (std::uint32_t b = 0; b < v.n_blocks; ++b)
              for (const void* block : {v.key_blocks[b], v.value_blocks[b]}) {
                const auto* w = static_cast<const unsigned long long*>(block);
                unsigned long long a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (std::size_t i = 0; i + 4 <= block_bytes / 8; i += 4) {
                  a0 += w[i];
                  a1 += w[i + 1];
                  a2 += w[i + 2];
                  a3 += w[i + 3];
                }
                acc += a0 + a1 + a2 + a3;
              }
          }
          return acc;
        },
        [](unsigned long long a, unsigned long long b) { return a + b; });
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sink = sink + sum;
  return s;
}

double measure_read_bandwidth(std::size_t bytes, int repetitions, int threads) {
  const read_probe probe(bytes);
  probe.run_once(threads);  // warm-up: page faults, frequency
  std::vector<double> rates;
  for (int r = 0; r < repetitions; ++r) rates.push_back(static_cast<double>(probe.bytes()) / probe.run_once(threads));
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace attnbench::kernels
