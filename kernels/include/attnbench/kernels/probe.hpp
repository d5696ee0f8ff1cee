// The read-bandwidth probe every speed figure is measured against: the sum of a buffer
// larger than the caches, read with the same number of threads as the kernel it is
// compared with. Decode attention is memory-bound, so bytes read over this bandwidth is
// its floor.
#pragma once

#include <attnbench/plugin.h>

#include <cstddef>

namespace attnbench::kernels {

// A buffer of `bytes`, filled once, that probes can be run over repeatedly.
class read_probe {
 public:
  explicit read_probe(std::size_t bytes);
  ~read_probe();
  read_probe(const read_probe&) = delete;
  read_probe& operator=(const read_probe&) = delete;
  // Reads the whole buffer once with `threads` threads (0: all); returns seconds.
  double run_once(int threads) const;
  std::size_t bytes() const { return n_ * sizeof(unsigned long long); }

 private:
  unsigned long long* data_;
  std::size_t n_;
};

// Reads every K and V block of one cache layer once, with `threads` threads (0: all), the
// way a probe reads its buffer; returns seconds and sets *bytes. On machines where
// memory bandwidth depends on where an allocation landed, this is the fair yardstick
// for a decode step over the same layer.
double read_layer_once(const attnbench_kv_layer_view& layer, int threads, std::size_t* bytes);

// Read bandwidth in bytes/s: the median of `repetitions` passes after one warm-up pass.
double measure_read_bandwidth(std::size_t bytes, int repetitions, int threads);

// fp32 multiply-adds per second that `threads` threads (0: all) retire with the kernels'
// SIMD target (16 independent chains, registers only): the arithmetic ceiling. Median of
// `repetitions` passes of about 10 ms after one warm-up pass. Decode with G query heads
// per KV head costs 2 G head_dim multiply-adds per token, against 2 head_dim x dtype
// bytes read, so bytes/s can never exceed rate x dtype_bytes / G.
double measure_mac_rate(int threads, int repetitions);

}  // namespace attnbench::kernels
