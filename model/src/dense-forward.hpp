// The dense pieces of a transformer's forward pass over many tokens at once, in fp32: the
// matrix products (through BLAS, rows split over oneTBB threads) and causal grouped-query
// attention (causal-attention-simd.cpp: register-tiled Highway kernels, an online softmax,
// a KV head's whole group of query heads per task).
// The trained model's prefill and its dense extension of appended tokens use them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnbench::detail {

// Opens OpenBLAS (dense-forward.cpp says why it is opened, not linked); throws
// harness_error naming the package when it is missing. The functions below call it too;
// calling it first, on the thread that builds a model, keeps its setenv off worker threads.
void load_blas();

// y[n x m] = x[n x k] . w^T, where w is [m x k] row-major (a linear layer's weight as
// PyTorch stores it); with accumulate, y += instead. Row blocks run in parallel, each a
// single-threaded BLAS call, so the result does not depend on the thread count.
void matmul_nt(const float* x, std::size_t n, std::size_t k, const float* w, std::size_t m, float* y,
               bool accumulate = false);

// Causal attention of n tokens: q is [n x hq*d], k and v are [n x hkv*d] (rotary already
// applied), query head h reads KV head h / (hq / hkv); out[n x hq*d] = softmax(scale q.k^T
// over keys 0..i) v for each row i. Any n, head counts and d (fastest for d a multiple of
// the vector width). Blocks of queries x KV heads run in parallel, the longest first.
void causal_attention(const float* q, const float* k, const float* v, std::size_t n, std::uint32_t hq,
                      std::uint32_t hkv, std::uint32_t d, float scale, float* out);

// gate[i] = silu(gate[i]) * up[i] for i < count (SwiGLU), in SIMD.
void silu_mul(float* gate, const float* up, std::size_t count);

// Multiply-adds the two functions above perform, for throughput figures.
inline double matmul_macs(std::size_t n, std::size_t k, std::size_t m) { return double(n) * double(k) * double(m); }
// QK^T and PV over the causal triangle (each row i reads i + 1 keys).
inline double attention_macs(std::size_t n, std::uint32_t hq, std::uint32_t d) {
  return 2.0 * double(hq) * double(d) * double(n) * double(n + 1) / 2.0;
}

}  // namespace attnbench::detail
