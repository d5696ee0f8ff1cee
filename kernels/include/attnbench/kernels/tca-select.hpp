// TCA-Attention's selection (arXiv 2512.09238; no public code, so every guess is a
// parameter): shared by the tca plugin (online) and `attnbench calibrate` (offline), so
// both keep exactly the same tokens. Header-only, plain C++.
//
// Importance s of every token (a probability vector over a head's tokens). Blocks of
// `block` tokens; a block's score h = (1 - alpha) * sum(s) + alpha * (1 - sum(s^2) /
// sum(s)^2). Blocks are ranked by h; a profile of width w keeps, in the block of rank r
// (0-based), ceil(block * min(1, w / (r + 1))) tokens: its top tokens by s. The last
// `window` tokens are always kept.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace attnbench::tca {

struct selection_params {
  std::uint32_t block = 128;
  double alpha = 0.5;
  std::uint64_t window = 4096;
};

// The candidate profile widths: the log-normal's quantiles at (i + 0.5) / n, so
// calibration is deterministic (the inverse normal CDF by bisection on erfc).
inline std::vector<double> profile_widths(std::uint32_t n, double mu, double sigma) {
  std::vector<double> w;
  for (std::uint32_t i = 0; i < n; ++i) {
    const double p = (i + 0.5) / n;
    double lo = -10, hi = 10;
    for (int it = 0; it < 100; ++it) {
      const double mid = 0.5 * (lo + hi);
      (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
    }
    w.push_back(std::exp(mu + sigma * 0.5 * (lo + hi)));
  }
  return w;
}

// Tokens kept (sorted ascending) for importance s over n tokens with profile width w.
inline std::vector<std::uint32_t> select(const float* s, std::uint64_t n, double w, const selection_params& p) {
  std::vector<std::uint32_t> keep;
  const std::uint64_t old_end = n > p.window ? n - p.window : 0;  // tokens before the window
  const std::uint64_t n_blocks = (old_end + p.block - 1) / p.block;
  std::vector<double> h(n_blocks);
  for (std::uint64_t b = 0; b < n_blocks; ++b) {
    double sum = 0, sq = 0;
    for (std::uint64_t t = b * p.block; t < std::min<std::uint64_t>(old_end, (b + 1) * p.block); ++t) {
      sum += s[t];
      sq += static_cast<double>(s[t]) * s[t];
    }
    h[b] = (1 - p.alpha) * sum + p.alpha * (sum > 0 ? 1 - sq / (sum * sum) : 0.0);
  }
  std::vector<std::uint32_t> order(n_blocks);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return h[a] > h[b]; });
  std::vector<std::uint32_t> tokens;
  for (std::uint64_t r = 0; r < n_blocks; ++r) {
    const std::uint64_t b = order[r];
    const std::uint64_t first = b * p.block, last = std::min<std::uint64_t>(old_end, first + p.block);
    const auto budget = static_cast<std::uint64_t>(std::ceil(p.block * std::min(1.0, w / static_cast<double>(r + 1))));
    tokens.resize(last - first);
    std::iota(tokens.begin(), tokens.end(), static_cast<std::uint32_t>(first));
    const std::uint64_t k = std::min<std::uint64_t>(budget, tokens.size());
    std::partial_sort(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(k), tokens.end(),
                      [&](std::uint32_t a, std::uint32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
    keep.insert(keep.end(), tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(k));
  }
  for (std::uint64_t t = old_end; t < n; ++t) keep.push_back(static_cast<std::uint32_t>(t));
  std::sort(keep.begin(), keep.end());
  return keep;
}

}  // namespace attnbench::tca
