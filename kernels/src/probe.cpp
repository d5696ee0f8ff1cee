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

double measure_read_bandwidth(std::size_t bytes, int repetitions, int threads) {
  const read_probe probe(bytes);
  probe.run_once(threads);  // warm-up: page faults, frequency
  std::vector<double> rates;
  for (int r = 0; r < repetitions; ++r) rates.push_back(static_cast<double>(probe.bytes()) / probe.run_once(threads));
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace attnbench::kernels
