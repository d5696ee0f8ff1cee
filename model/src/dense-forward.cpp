#include "dense-forward.hpp"

#include <attnbench/host/errors.hpp>

#include <dlfcn.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

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
//  - Its dynamic-architecture build picks its kernels from the CPU's model number, and
//    0.3.21 (Debian 12) falls back to Prescott (SSE3) for a model it does not know, such
//    as a Sapphire Rapids that a hypervisor names "Intel Xeon Processor": matrix products
//    at a third of the speed. Unless OPENBLAS_CORETYPE is set already, we name the core
//    by the instruction sets the CPU has (AVX-512: SkylakeX, AVX2 with FMA: Haswell),
//    which gives the fastest fp32 kernels of newer cores too.
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

// OpenBLAS's name for the cores whose kernels this CPU runs best, or null to leave the
// choice to it.
const char* blas_core_type() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

blas_library& blas() {
  // Opened once; load_blas() calls this on the thread that builds the model, before any
  // worker thread can read the environment it changes.
  static blas_library* lib = [] {
    ::setenv("OPENBLAS_NUM_THREADS", "1", 1);
    ::setenv("OMP_NUM_THREADS", "1", 0);
    if (const char* core = blas_core_type()) ::setenv("OPENBLAS_CORETYPE", core, 0);
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

// causal_attention: causal-attention-simd.cpp.

}  // namespace attnbench::detail
