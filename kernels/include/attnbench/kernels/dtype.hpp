// Element types of the KV cache and their conversion to and from fp32.
// fp16 and bf16 round to nearest even on the way in; the way out is exact.
#pragma once

#include <attnbench/plugin.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace attnbench::kernels {

// Bytes per element of a dtype.
std::size_t dtype_size(attnbench_dtype dtype);
std::string_view dtype_name(attnbench_dtype dtype);
std::optional<attnbench_dtype> dtype_from_name(std::string_view name);

std::uint16_t fp32_to_fp16(float x);
float fp16_to_fp32(std::uint16_t h);
std::uint16_t fp32_to_bf16(float x);
inline float bf16_to_fp32(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

// Converts n elements of src (of dtype) to fp32 in dst.
void to_fp32(attnbench_dtype dtype, const void* src, float* dst, std::size_t n);
// Converts n fp32 elements to dtype in dst (rounding to nearest even).
void from_fp32(attnbench_dtype dtype, const float* src, void* dst, std::size_t n);
// from_fp32, then writes to `stored` the fp32 value of what was stored (to_fp32 of dst)
// without reading dst back. With streaming, dst is written around the caches where the
// CPU can (for bulk appends that the next reader will fetch from memory anyway).
void store_fp32(attnbench_dtype dtype, const float* src, void* dst, float* stored, std::size_t n, bool streaming);

}  // namespace attnbench::kernels
