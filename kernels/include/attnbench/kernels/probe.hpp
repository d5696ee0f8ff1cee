// The read ceiling every speed figure is measured against: the best read bandwidth this
// machine delivers, found by running several read methods over buffers larger than the
// caches, with the same number of threads as the kernel compared with. Decode attention
// is memory-bound, so bytes read over the ceiling is its floor.
//
// A method is a reader and a kind of memory:
//   readers  scalar          64-bit integer sum, baseline x86-64 code, 4 accumulators
//                            (the probe every ratio used before the ceiling)
//            simd            Highway's best target for this CPU, 8 vector accumulators
//            simd-prefetch   the same, each line also requested 1 KiB ahead
//   memory   4k              anonymous mapping with huge pages refused (4 KiB pages)
//            huge            anonymous mapping, 2 MiB aligned, transparent huge pages asked
//            kv              the blocks of a KV cache layer (the decode kernels' memory,
//                            through the cache's own allocator), read block by block
// The ceiling is the method with the best median; every method's figures are kept.
#pragma once

#include <attnbench/plugin.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace attnbench::kernels {

struct read_method {
  std::string reader;  // "scalar", "simd", "simd-prefetch"
  std::string memory;  // "4k", "huge", "kv"
  std::string name() const { return reader + "/" + memory; }
};

// Every method, in the order they are run and reported.
const std::vector<read_method>& read_methods();

struct read_method_result {
  read_method method;
  std::vector<double> rates;  // bytes/s of each pass
  double median() const;
  double min() const;
  double max() const;
};

struct read_ceiling {
  int threads = 0;
  std::string simd_target;  // the target of the simd readers, e.g. "AVX3"
  std::vector<read_method_result> methods;
  std::size_t best = 0;  // index into methods
  double bytes_per_s() const { return methods.empty() ? 0.0 : methods[best].median(); }
  const read_method& best_method() const { return methods[best].method; }
};

// The buffers of every memory kind (each `bytes` long, written once), to run methods over
// repeatedly. Holds about 3 x bytes of memory.
class read_ceiling_probe {
 public:
  explicit read_ceiling_probe(std::size_t bytes);
  ~read_ceiling_probe();
  read_ceiling_probe(const read_ceiling_probe&) = delete;
  read_ceiling_probe& operator=(const read_ceiling_probe&) = delete;

  // One pass of method `m` (an index into read_methods()) with `threads` threads (0: all);
  // returns seconds.
  double run_once(std::size_t m, int threads) const;
  // Every method, `repetitions` interleaved rounds after one warm-up round: drift in the
  // machine's load falls on every method alike.
  read_ceiling measure(int threads, int repetitions) const;
  std::size_t bytes() const { return bytes_; }

 private:
  struct buffers;
  std::size_t bytes_;
  std::unique_ptr<buffers> buffers_;
};

// The read ceiling in bytes/s with `threads` threads: read_ceiling_probe(bytes).measure().
read_ceiling measure_read_ceiling(std::size_t bytes, int repetitions, int threads);

// The sum of the 64-bit words of [p, p + bytes) by one reader ("scalar", "simd" or
// "simd-prefetch"): what a method's pass computes over each piece of its memory.
std::uint64_t read_words(const std::string& reader, const void* p, std::size_t bytes);
// The SIMD target of the simd readers: the best this CPU supports, whatever target the
// kernels are pinned to (set_target), so that a pinned run is still measured against the
// machine's best.
std::string read_simd_target();

// Reads every K and V block of one cache layer once with the ceiling's simd reader and
// `threads` threads (0: all); returns seconds and sets *bytes. The yardstick of the very
// memory a decode step reads (same_memory_ratio in the benchmarks).
double read_layer_once(const attnbench_kv_layer_view& layer, int threads, std::size_t* bytes);

// fp32 multiply-adds per second that `threads` threads (0: all) retire with the kernels'
// SIMD target (16 independent chains, registers only): the arithmetic ceiling. Median of
// `repetitions` passes of about 10 ms after one warm-up pass. Decode with G query heads
// per KV head costs 2 G head_dim multiply-adds per token, against 2 head_dim x dtype
// bytes read, so bytes/s can never exceed rate x dtype_bytes / G.
double measure_mac_rate(int threads, int repetitions);

// The roofline time of work that reads `bytes` and performs `macs` multiply-adds: the
// larger of bytes over the read ceiling and multiply-adds over the measured rate.
inline double roofline_seconds(double bytes, double ceiling_bytes_per_s, double macs, double macs_per_s) {
  const double read_s = ceiling_bytes_per_s > 0 ? bytes / ceiling_bytes_per_s : 0.0;
  const double arith_s = macs_per_s > 0 ? macs / macs_per_s : 0.0;
  return read_s > arith_s ? read_s : arith_s;
}

}  // namespace attnbench::kernels
