#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/probe.hpp>

#include "read-internal.hpp"

#include <sys/mman.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <new>
#include <numeric>
#include <vector>

namespace attnbench::kernels {

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kPiece = std::size_t{1} << 20;  // threads take the buffer 1 MiB at a time
constexpr std::size_t kPrefetchDistance = 1024;

// An anonymous mapping of `bytes`, 2 MiB aligned, with transparent huge pages asked for
// or refused, written once so every page is present.
class mapping {
 public:
  mapping(std::size_t bytes, bool huge) : size_(bytes + kHugePage) {
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    raw_ = static_cast<std::byte*>(p);
    data_ = raw_ + (kHugePage - reinterpret_cast<std::uintptr_t>(raw_) % kHugePage) % kHugePage;
    madvise(data_, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);  // hints
    auto* w = reinterpret_cast<std::uint64_t*>(data_);
    for (std::size_t i = 0; i < bytes / 8; ++i) w[i] = i;
  }
  ~mapping() { munmap(raw_, size_); }
  mapping(const mapping&) = delete;
  mapping& operator=(const mapping&) = delete;
  const std::byte* data() const { return data_; }

 private:
  std::size_t size_;
  std::byte* raw_;
  std::byte* data_;
};

// The old probe's loop: four 64-bit accumulators, baseline code.
std::uint64_t sum_words_scalar(const void* p, std::size_t bytes) {
  const auto* w = static_cast<const std::uint64_t*>(p);
  const std::size_t n = bytes / 8;
  std::uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += w[i];
    a1 += w[i + 1];
    a2 += w[i + 2];
    a3 += w[i + 3];
  }
  for (; i < n; ++i) a0 += w[i];
  return a0 + a1 + a2 + a3;
}

// Reads `pieces` (pointer, length) with `threads` threads; returns seconds.
std::uint64_t sum_words_simd(const void* p, std::size_t bytes) { return detail::sum_words_best(p, bytes, 0); }
std::uint64_t sum_words_simd_prefetch(const void* p, std::size_t bytes) {
  return detail::sum_words_best(p, bytes, kPrefetchDistance);
}

// A reader by name, resolved once per pass rather than once per piece.
using word_reader = std::uint64_t (*)(const void*, std::size_t);
word_reader reader_of(const std::string& name) {
  return name == "scalar" ? sum_words_scalar : name == "simd-prefetch" ? sum_words_simd_prefetch : sum_words_simd;
}

double read_pieces(const std::vector<std::pair<const std::byte*, std::size_t>>& pieces, word_reader reader,
                   int threads) {
  tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
  volatile std::uint64_t sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t sum = arena.execute([&] {
    return tbb::parallel_reduce(
        tbb::blocked_range<std::size_t>(0, pieces.size()), std::uint64_t{0},
        [&](const tbb::blocked_range<std::size_t>& range, std::uint64_t acc) {
          for (std::size_t i = range.begin(); i < range.end(); ++i)
            acc += reader(pieces[i].first, pieces[i].second);
          return acc;
        },
        [](std::uint64_t a, std::uint64_t b) { return a + b; });
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sink = sink + sum;
  return s;
}

// A layer's K and V blocks as pieces, in the order a decode step reads them.
std::vector<std::pair<const std::byte*, std::size_t>> layer_pieces(const attnbench_kv_layer_view& layer,
                                                                   std::size_t* bytes) {
  const std::size_t elem = layer.dtype == ATTNBENCH_DTYPE_FP32 ? 4 : 2;
  const std::size_t block_bytes = static_cast<std::size_t>(layer.block_size) * layer.head_dim * elem;
  std::vector<std::pair<const std::byte*, std::size_t>> pieces;
  for (std::uint32_t h = 0; h < layer.n_kv_heads; ++h)
    for (std::uint32_t b = 0; b < layer.heads[h].n_blocks; ++b) {
      pieces.emplace_back(static_cast<const std::byte*>(layer.heads[h].key_blocks[b]), block_bytes);
      pieces.emplace_back(static_cast<const std::byte*>(layer.heads[h].value_blocks[b]), block_bytes);
    }
  if (bytes) *bytes = pieces.size() * block_bytes;
  return pieces;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

std::uint64_t read_words(const std::string& reader, const void* p, std::size_t bytes) {
  return reader_of(reader)(p, bytes);
}

std::string read_simd_target() { return detail::best_read_target(); }

const std::vector<read_method>& read_methods() {
  static const std::vector<read_method> methods{{"scalar", "4k"},        {"scalar", "huge"}, {"simd", "4k"},
                                                {"simd", "huge"},        {"simd-prefetch", "huge"},
                                                {"simd", "kv"}};
  return methods;
}

double read_method_result::median() const { return median_of(rates); }
double read_method_result::min() const { return rates.empty() ? 0.0 : *std::min_element(rates.begin(), rates.end()); }
double read_method_result::max() const { return rates.empty() ? 0.0 : *std::max_element(rates.begin(), rates.end()); }

// The buffers: one mapping per page kind, and a KV cache layer of 8 heads x 128 fp16
// dimensions in blocks of 64 tokens (the benchmarks' shape) holding as many bytes.
struct read_ceiling_probe::buffers {
  mapping small, huge;
  kv_cache cache;
  std::vector<std::pair<const std::byte*, std::size_t>> small_pieces, huge_pieces, kv_pieces;
  std::size_t kv_bytes = 0;

  static constexpr std::uint32_t kHeads = 8, kDim = 128, kBlock = 64;
  explicit buffers(std::size_t bytes)
      : small(bytes, false), huge(bytes, true), cache(1, kHeads, kDim, kBlock, ATTNBENCH_DTYPE_FP16) {
    for (std::size_t off = 0; off < bytes; off += kPiece) {
      small_pieces.emplace_back(small.data() + off, std::min(kPiece, bytes - off));
      huge_pieces.emplace_back(huge.data() + off, std::min(kPiece, bytes - off));
    }
    const std::size_t per_head = std::max<std::size_t>(kBlock, bytes / (kHeads * 2 * kDim * 2) / kBlock * kBlock);
    constexpr std::size_t chunk = 4096;
    std::vector<float> kv(chunk * kDim);
    std::iota(kv.begin(), kv.end(), 0.0f);
    std::vector<std::int64_t> pos(chunk);
    for (std::uint32_t h = 0; h < kHeads; ++h)
      for (std::size_t start = 0; start < per_head; start += chunk) {
        const std::size_t n = std::min(chunk, per_head - start);
        std::iota(pos.begin(), pos.begin() + static_cast<std::ptrdiff_t>(n), static_cast<std::int64_t>(start));
        cache.append(0, h, n, pos.data(), kv.data(), kv.data());
      }
    kv_pieces = layer_pieces(cache.layer_view(0), &kv_bytes);
  }
};

read_ceiling_probe::read_ceiling_probe(std::size_t bytes)
    : bytes_(bytes / 4096 * 4096), buffers_(std::make_unique<buffers>(bytes_)) {}

read_ceiling_probe::~read_ceiling_probe() = default;

double read_ceiling_probe::run_once(std::size_t m, int threads) const {
  const read_method& method = read_methods().at(m);
  const auto& pieces = method.memory == "4k"     ? buffers_->small_pieces
                       : method.memory == "huge" ? buffers_->huge_pieces
                                                 : buffers_->kv_pieces;
  const double s = read_pieces(pieces, reader_of(method.reader), threads);
  // Seconds for bytes_ (the kv layer holds a whole number of blocks, a little less).
  return method.memory == "kv" ? s * static_cast<double>(bytes_) / static_cast<double>(buffers_->kv_bytes) : s;
}

read_ceiling read_ceiling_probe::measure(int threads, int repetitions) const {
  read_ceiling out;
  out.threads = threads;
  out.simd_target = read_simd_target();
  for (const read_method& m : read_methods()) out.methods.push_back({m, {}});
  for (int r = 0; r <= repetitions; ++r)  // round 0 warms up pages, clocks and threads
    for (std::size_t m = 0; m < out.methods.size(); ++m) {
      const double s = run_once(m, threads);
      if (r > 0) out.methods[m].rates.push_back(static_cast<double>(bytes_) / s);
    }
  for (std::size_t m = 1; m < out.methods.size(); ++m)
    if (out.methods[m].median() > out.methods[out.best].median()) out.best = m;
  return out;
}

read_ceiling measure_read_ceiling(std::size_t bytes, int repetitions, int threads) {
  return read_ceiling_probe(bytes).measure(threads, repetitions);
}

double read_layer_once(const attnbench_kv_layer_view& layer, int threads, std::size_t* bytes) {
  return read_pieces(layer_pieces(layer, bytes), sum_words_simd, threads);
}

}  // namespace attnbench::kernels
