// The mechanistic model's readout: every head's output read in its own value basis, all
// heads summed, then the best next tokens by orthogonal matching pursuit.
#include <attnbench/model/mechanistic.hpp>

#include "least-squares.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace attnbench {

using tasks::token;
using tasks::vocabulary;

namespace {

// One pass over the vocabulary against what is left of the readout: the best token not
// chosen yet (the first pick never a special token, as greedy decoding reads it), and
// the standard deviation of the non-special tokens' logits.
struct scan_result {
  token best = -1;
  double sd = 0;
};

scan_result scan_vocabulary(const mechanistic_model& m, const std::vector<float>& left, const std::vector<token>& chosen,
                            bool pick) {
  const auto& vocab = vocabulary::standard();
  const std::uint32_t d = m.profile().head_dim;
  scan_result out;
  float best_logit = -std::numeric_limits<float>::infinity();
  double sum = 0, sum2 = 0, n = 0;
  for (std::size_t t = 0; t < vocab.size(); ++t) {
    const float* row = m.value_embedding(static_cast<token>(t));
    float logit = 0;
    for (std::uint32_t j = 0; j < d; ++j) logit += row[j] * left[j];
    if (!vocab.is_special(static_cast<token>(t))) {
      sum += logit;
      sum2 += static_cast<double>(logit) * logit;
      n += 1;
    }
    if (pick && logit > best_logit && !(chosen.empty() && vocab.is_special(static_cast<token>(t))) &&
        std::find(chosen.begin(), chosen.end(), static_cast<token>(t)) == chosen.end()) {
      best_logit = logit;
      out.best = static_cast<token>(t);
    }
  }
  const double mean = sum / n;
  out.sd = std::sqrt(std::max(0.0, sum2 / n - mean * mean));
  return out;
}

// Least squares over the chosen tokens' value embeddings: the amplitudes a that minimise
// |residual - sum a_x row_x|, from the normal equations G a = b.
std::vector<double> fit_amplitudes(const mechanistic_model& m, const std::vector<token>& chosen,
                                   const std::vector<float>& residual) {
  const std::uint32_t d = m.profile().head_dim;
  const std::size_t n = chosen.size();
  std::vector<double> g(n * n), rhs(n);
  for (std::size_t x = 0; x < n; ++x) {
    const float* rx = m.value_embedding(chosen[x]);
    for (std::size_t y = 0; y < n; ++y) {
      const float* ry = m.value_embedding(chosen[y]);
      double dot = 0;
      for (std::uint32_t j = 0; j < d; ++j) dot += static_cast<double>(rx[j]) * ry[j];
      g[x * n + y] = dot;
    }
    double dot = 0;
    for (std::uint32_t j = 0; j < d; ++j) dot += static_cast<double>(rx[j]) * residual[j];
    rhs[x] = dot;
  }
  return solve_linear_system(std::move(g), std::move(rhs));
}

}  // namespace

std::vector<readout_candidate> mechanistic_model::readout_candidates(const float* outputs, std::size_t k) const {
  const std::uint32_t d = profile_.head_dim;
  const std::uint32_t group = profile_.n_query_heads / profile_.n_kv_heads;
  // Logits are value_table . sum_heads inverse_value_transform(output): each head's
  // output is read in its own value basis, then all heads vote.
  std::vector<float> residual(d, 0.0f);
  for (std::uint32_t l = 0; l < profile_.n_layers; ++l)
    for (std::uint32_t q = 0; q < profile_.n_query_heads; ++q) {
      const float* o = outputs + (static_cast<std::size_t>(l) * profile_.n_query_heads + q) * d;
      apply_inverse(value_transform(l, q / group), o, output_gain(l, q), residual.data());
    }
  const auto& vocab = vocabulary::standard();
  // Several answers superposed in one d-dimensional residual (a multi-value key, the ten
  // most common words) are separated by orthogonal matching pursuit: each round takes
  // the token whose value embedding best matches what is left, then refits all chosen
  // tokens' amplitudes by least squares, so that random overlaps between embeddings
  // (cosines of 0.3 to 0.4 among thousands of 128-dimensional vectors) neither pass for
  // answers nor hide them. A candidate's logit is its fitted amplitude; with k = 1 that is
  // the plain argmax logit. Ties go to the lower token id.
  std::vector<token> chosen;
  std::vector<double> amplitude;
  std::vector<float> left = residual;
  // Special tokens take part in the fit (heads resting on <bos> leave its small value in
  // the readout, and only <bos> should explain it) but are never answers.
  std::size_t answers = 0;
  double sd = 0;  // of the latest scan
  while (answers < k) {
    const scan_result scan = scan_vocabulary(*this, left, chosen, /*pick=*/true);
    sd = scan.sd;
    if (scan.best < 0) break;
    chosen.push_back(scan.best);
    if (!vocab.is_special(scan.best)) ++answers;
    amplitude = fit_amplitudes(*this, chosen, residual);
    left = residual;
    for (std::size_t x = 0; x < chosen.size(); ++x) {
      const float* rx = value_row(chosen[x]);
      for (std::uint32_t j = 0; j < d; ++j) left[j] -= static_cast<float>(amplitude[x]) * rx[j];
    }
  }
  // The noise floor: what is left once every candidate is fitted. A greedy step (k = 1)
  // never compares against it, so it keeps the first scan's figure and skips a pass.
  if (k > 1) sd = scan_vocabulary(*this, left, chosen, /*pick=*/false).sd;
  std::vector<readout_candidate> out;
  for (std::size_t x = 0; x < chosen.size(); ++x)
    if (!vocab.is_special(chosen[x])) out.push_back({chosen[x], static_cast<float>(amplitude[x]), static_cast<float>(sd)});
  return out;
}


}  // namespace attnbench
