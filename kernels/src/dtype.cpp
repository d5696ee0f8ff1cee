#include <attnbench/kernels/dtype.hpp>

#include <array>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#include <cstring>

namespace attnbench::kernels {

std::size_t dtype_size(attnbench_dtype dtype) {
  return dtype == ATTNBENCH_DTYPE_FP32 ? 4 : 2;
}

std::string_view dtype_name(attnbench_dtype dtype) {
  switch (dtype) {
    case ATTNBENCH_DTYPE_FP32: return "fp32";
    case ATTNBENCH_DTYPE_FP16: return "fp16";
    case ATTNBENCH_DTYPE_BF16: return "bf16";
  }
  return "unknown";
}

std::optional<attnbench_dtype> dtype_from_name(std::string_view name) {
  if (name == "fp32") return ATTNBENCH_DTYPE_FP32;
  if (name == "fp16") return ATTNBENCH_DTYPE_FP16;
  if (name == "bf16") return ATTNBENCH_DTYPE_BF16;
  return std::nullopt;
}

static std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
static float float_of(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

std::uint16_t fp32_to_fp16(float x) {
  const std::uint32_t u = bits_of(x);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan
    return static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // overflow
  if (abs < 0x38800000u) {  // subnormal or zero in fp16
    // Add 0.5 (as a float) so the FPU does the rounding to nearest even for us.
    const float f = float_of(abs) + 0.5f;
    return static_cast<std::uint16_t>(sign | (bits_of(f) - 0x3f000000u));
  }
  const std::uint32_t mant_odd = (abs >> 13) & 1u;
  const std::uint32_t rounded = abs + 0xc8000fffu + mant_odd;  // rebias (-112 << 23) and round
  return static_cast<std::uint16_t>(sign | (rounded >> 13));
}

static std::array<float, 65536> make_fp16_table() {
  std::array<float, 65536> t{};
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const std::uint32_t sign = (h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    const std::uint32_t mant = h & 0x3ffu;
    float v;
    if (exp == 0) {
      v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // 2^-24
      v = float_of(bits_of(v) | sign);
    } else if (exp == 31) {
      v = float_of(sign | 0x7f800000u | (mant << 13));
    } else {
      v = float_of(sign | ((exp + 112u) << 23) | (mant << 13));
    }
    t[h] = v;
  }
  return t;
}

static const std::array<float, 65536>& fp16_table() {
  static const auto table = make_fp16_table();
  return table;
}

float fp16_to_fp32(std::uint16_t h) { return fp16_table()[h]; }

std::uint16_t fp32_to_bf16(float x) {
  const std::uint32_t u = bits_of(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);  // quiet nan
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + rounding) >> 16);
}

#if defined(__x86_64__)
namespace {

// CPUID leaf 1, ECX: bit 29 F16C, bit 28 AVX, bit 27 OSXSAVE (the OS saves the YMM
// registers; clang 14's __builtin_cpu_supports knows no "f16c").
bool has_f16c() {
  static const bool yes = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    const unsigned need = (1u << 29) | (1u << 28) | (1u << 27);
    if ((ecx & need) != need) return false;
    unsigned lo = 0, hi = 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0x6u) == 0x6u;  // XMM and YMM state enabled
  }();
  return yes;
}

// Converts the first multiple of 8 of n values; returns how many.
__attribute__((target("avx,f16c"))) std::size_t fp32_to_fp16_f16c(const float* src, std::uint16_t* dst,
                                                                  std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  return i;
}

__attribute__((target("avx,f16c"))) std::size_t fp16_to_fp32_f16c(const std::uint16_t* src, float* dst,
                                                                  std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  return i;
}

// fp32 -> fp16 -> fp32 in registers: dst gets the fp16 values, stored their fp32 values.
// Streaming stores need dst 16-byte aligned; the caller fences.
__attribute__((target("avx,f16c"))) std::size_t store_fp16_f16c(const float* src, std::uint16_t* dst, float* stored,
                                                                std::size_t n, bool stream) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    if (stream)
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), h);
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
    _mm256_storeu_ps(stored + i, _mm256_cvtph_ps(h));
  }
  return i;
}

}  // namespace
#endif

void store_fp32(attnbench_dtype dtype, const float* src, void* dst, float* stored, std::size_t n, bool streaming) {
#if defined(__x86_64__)
  if (dtype == ATTNBENCH_DTYPE_FP16 && has_f16c()) {
    auto* d = static_cast<std::uint16_t*>(dst);
    const bool stream = streaming && reinterpret_cast<std::uintptr_t>(d) % 16 == 0;
    const std::size_t i = store_fp16_f16c(src, d, stored, n, stream);
    if (stream) _mm_sfence();  // streaming stores are weakly ordered: publish them before returning
    from_fp32(dtype, src + i, d + i, n - i);
    to_fp32(dtype, d + i, stored + i, n - i);
    return;
  }
#endif
  from_fp32(dtype, src, dst, n);
  to_fp32(dtype, dst, stored, n);
}

void to_fp32(attnbench_dtype dtype, const void* src, float* dst, std::size_t n) {
  switch (dtype) {
    case ATTNBENCH_DTYPE_FP32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case ATTNBENCH_DTYPE_FP16: {
      const auto* s = static_cast<const std::uint16_t*>(src);
      const float* table = fp16_table().data();
      std::size_t i = 0;
#if defined(__x86_64__)
      if (has_f16c()) i = fp16_to_fp32_f16c(s, dst, n);
#endif
      for (; i < n; ++i) dst[i] = table[s[i]];
      return;
    }
    case ATTNBENCH_DTYPE_BF16: {
      const auto* s = static_cast<const std::uint16_t*>(src);
      for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
      return;
    }
  }
}


void from_fp32(attnbench_dtype dtype, const float* src, void* dst, std::size_t n) {
  switch (dtype) {
    case ATTNBENCH_DTYPE_FP32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case ATTNBENCH_DTYPE_FP16: {
      auto* d = static_cast<std::uint16_t*>(dst);
      std::size_t i = 0;
#if defined(__x86_64__)
      // Prefill writes gigabytes of K/V: use the CPU's converter (F16C, round to nearest
      // even, as fp32_to_fp16) where it has one.
      if (has_f16c()) i = fp32_to_fp16_f16c(src, d, n);
#endif
      for (; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
      return;
    }
    case ATTNBENCH_DTYPE_BF16: {
      auto* d = static_cast<std::uint16_t*>(dst);
      for (std::size_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
      return;
    }
  }
}

}  // namespace attnbench::kernels
