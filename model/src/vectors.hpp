// Small vector helpers of the mechanistic model's construction (mechanistic.cpp and
// mechanistic-realistic.cpp): random unit vectors, projection and normalisation, reproducible on
// every machine (their dot products are kernels::reproducible_dot).
#pragma once

#include <attnbench/kernels/random.hpp>
#include <attnbench/kernels/reproducible.hpp>

#include <cmath>
#include <cstdint>

namespace attnbench::model_detail {

inline void random_unit(rng& r, float* out, std::uint32_t d) {
  double norm2 = 0;
  for (std::uint32_t i = 0; i < d; ++i) {
    out[i] = static_cast<float>(r.normal());
    norm2 += static_cast<double>(out[i]) * out[i];
  }
  const auto inv = static_cast<float>(1.0 / std::sqrt(norm2));
  for (std::uint32_t i = 0; i < d; ++i) out[i] *= inv;
}

// v -= (v . dir) dir for a unit dir.
inline void project_out(float* v, const float* dir, std::uint32_t d) {
  const double dot = kernels::reproducible_dot(v, dir, d);
  for (std::uint32_t i = 0; i < d; ++i) v[i] -= static_cast<float>(dot) * dir[i];
}

// v *= target_norm / |v| (v left as it is when zero).
inline void normalize(float* v, std::uint32_t d, float target_norm) {
  const double norm2 = kernels::reproducible_dot(v, v, d);
  if (norm2 == 0) return;
  const auto f = static_cast<float>(target_norm / std::sqrt(norm2));
  for (std::uint32_t i = 0; i < d; ++i) v[i] *= f;
}

}  // namespace attnbench::model_detail
