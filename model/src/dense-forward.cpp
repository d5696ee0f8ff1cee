#include "dense-forward.hpp"

#include <attnbench/kernels/score.hpp>

#include <attnbench/host/errors.hpp>

#include <dlfcn.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

namespace attnbench::detail {

namespace {

// BLAS: OpenBLAS, opened at first use rather than linked.
//  - Its threaded build starts a thread per core when it loads unless OPENBLAS_NUM_THREADS
//    is set by then; we split the work over oneTBB ourselves and want one thread per call,
//    and a run must not hold stray threads when it forks its worker (run/src/worker.cpp).
//    Opening it here, after setting the variable, gives both.
//  - Its single-threaded build is not safe to call from several threads at once (Debian
//    builds it without USE_LOCKING), and its OpenMP build sizes each call by OpenMP's own
//    thread count: with either of those, calls take turns (OMP_NUM_THREADS is set to 1
//    too, for the OpenMP build).
//  - A binary that never runs the trained model (corpus writing on the GPU machine) does
//    not need the library at all.
// The CBLAS constants are the standard's (cblas.h): row-major 101, no transpose 111,
// transpose 112.
using sgemm_fn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                          int);
struct blas_library {
  sgemm_fn sgemm = nullptr;
  bool serialize = false;
  std::mutex turn;
};

blas_library& blas() {
  // Opened once; load_blas() calls this on the thread that builds the model, before any
  // worker thread can read the environment it changes.
  static blas_library* lib = [] {
    ::setenv("OPENBLAS_NUM_THREADS", "1", 1);
    ::setenv("OMP_NUM_THREADS", "1", 0);
    std::string tried;
    void* handle = nullptr;
    for (const char* name : {"/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0", "libopenblas.so.0"}) {
      handle = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (handle) break;
      tried += std::string(tried.empty() ? "" : "; ") + ::dlerror();
    }
    if (!handle)
      throw harness_error(exit_failure, "the trained model needs OpenBLAS (Debian: apt install libopenblas0-pthread, "
                                        "or run scripts/setup.sh): " + tried);
    auto* out = new blas_library;
    out->sgemm = reinterpret_cast<sgemm_fn>(::dlsym(handle, "cblas_sgemm"));
    if (!out->sgemm) throw harness_error(exit_failure, "OpenBLAS lacks cblas_sgemm: " + std::string(::dlerror()));
    using config_fn = const char* (*)();
    const auto config = reinterpret_cast<config_fn>(::dlsym(handle, "openblas_get_config"));
    out->serialize = !config || std::strstr(config(), "SINGLE_THREADED") != nullptr ||
                     std::strstr(config(), "USE_OPENMP") != nullptr;
    return out;
  }();
  return *lib;
}

// C[m x n] = alpha A[m x k] B'[k x n] + beta C, row-major; B' is B transposed when b_trans.
void sgemm(bool b_trans, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, std::size_t lda,
           const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  blas_library& lib = blas();
  auto call = [&] {
    lib.sgemm(101, 111, b_trans ? 112 : 111, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
  };
  if (!lib.serialize) return call();
  std::lock_guard lock(lib.turn);
  call();
}

constexpr std::size_t kRowBlock = 128;  // rows of a matrix product per task
constexpr std::size_t kQueryBlock = 64;  // query rows of an attention task
constexpr std::size_t kKeyBlock = 256;   // keys scored at once

}  // namespace

void load_blas() { blas(); }

void matmul_nt(const float* x, std::size_t n, std::size_t k, const float* w, std::size_t m, float* y,
               bool accumulate) {
  const std::size_t blocks = (n + kRowBlock - 1) / kRowBlock;
  tbb::parallel_for(std::size_t{0}, blocks, [&](std::size_t b) {
    const std::size_t r0 = b * kRowBlock, rows = std::min(kRowBlock, n - r0);
    sgemm(true, rows, m, k, 1.0f, x + r0 * k, k, w, k, accumulate ? 1.0f : 0.0f, y + r0 * m, m);
  });
}

void causal_attention(const float* q, const float* k, const float* v, std::size_t n, std::uint32_t hq,
                      std::uint32_t hkv, std::uint32_t d, float scale, float* out) {
  const std::size_t q_stride = std::size_t{hq} * d, kv_stride = std::size_t{hkv} * d;
  const std::uint32_t group = hq / hkv;
  const std::size_t q_blocks = (n + kQueryBlock - 1) / kQueryBlock;
  // Longest tasks (the last query blocks) first, for balance.
  tbb::parallel_for(std::size_t{0}, q_blocks * hq, [&](std::size_t task) {
    const std::size_t qb = q_blocks - 1 - task / hq;
    const std::uint32_t h = static_cast<std::uint32_t>(task % hq), kh = h / group;
    const std::size_t i0 = qb * kQueryBlock, rows = std::min(kQueryBlock, n - i0);
    const float* qh = q + i0 * q_stride + std::size_t{h} * d;
    const float* kh_base = k + std::size_t{kh} * d;
    const float* vh_base = v + std::size_t{kh} * d;
    thread_local std::vector<float> scores, acc, row_max, row_sum;
    scores.resize(kQueryBlock * kKeyBlock);
    acc.assign(rows * d, 0.0f);
    row_max.assign(rows, -std::numeric_limits<float>::infinity());
    row_sum.assign(rows, 0.0f);
    const std::size_t end = i0 + rows;  // keys 0 .. end - 1 are visible to some row
    for (std::size_t j0 = 0; j0 < end; j0 += kKeyBlock) {
      const std::size_t cols = std::min(kKeyBlock, end - j0);
      sgemm(true, rows, cols, d, scale, qh, q_stride, kh_base + j0 * kv_stride, kv_stride, 0.0f, scores.data(),
            kKeyBlock);
      for (std::size_t r = 0; r < rows; ++r) {
        float* s = scores.data() + r * kKeyBlock;
        const std::size_t i = i0 + r;
        const std::size_t valid = i < j0 ? 0 : std::min(cols, i - j0 + 1);
        if (valid == 0) {
          std::fill(s, s + cols, 0.0f);
          continue;
        }
        const float block_max = *std::max_element(s, s + valid);
        const float m = std::max(row_max[r], block_max);
        const float rescale = std::exp(row_max[r] - m);  // 0 on the first block (-inf)
        row_sum[r] = row_sum[r] * rescale + kernels::exp_shift(s, valid, m);
        std::fill(s + valid, s + cols, 0.0f);
        row_max[r] = m;
        if (rescale != 1.0f)
          for (std::uint32_t c = 0; c < d; ++c) acc[r * d + c] *= rescale;
      }
      sgemm(false, rows, d, cols, 1.0f, scores.data(), kKeyBlock, vh_base + j0 * kv_stride, kv_stride, 1.0f,
            acc.data(), d);
    }
    for (std::size_t r = 0; r < rows; ++r) {
      const float inv = 1.0f / row_sum[r];
      float* o = out + (i0 + r) * q_stride + std::size_t{h} * d;
      for (std::uint32_t c = 0; c < d; ++c) o[c] = acc[r * d + c] * inv;
    }
  });
}

}  // namespace attnbench::detail
