// realism's tables: each statistic reduced over heads (overall and per head role), its
// row beside the published range, and the markdown.
#include "realism-internal.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <string>

namespace attnbench::realism_detail {

namespace {

// The thresholds of the definitions (docs/model.md, "Realism", says where each comes from).
constexpr double kRetrievalScore = 0.1;      // Wu et al.'s retrieval-head threshold
constexpr double kFullContextChange = 0.1;   // a tenth of the layer's mean head output
constexpr double kLongTail = 0.8;            // MagicPIG: the top 20% "often" hold only 70-80%
constexpr double kSinkShare = 0.3;           // Gu et al.'s threshold for a sink head
constexpr std::uint32_t kFirstLayers = 2;    // StreamingLLM: sinks beyond the first two layers

double median(const std::vector<double>& values) {
  if (values.empty()) return 0;
  std::vector<double> v(values);
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double x = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<std::size_t>(x);
  return i + 1 < v.size() ? v[i] + (x - static_cast<double>(i)) * (v[i + 1] - v[i]) : v.back();
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double share(const std::vector<double>& v, double above) {
  if (v.empty()) return 0;
  return static_cast<double>(std::count_if(v.begin(), v.end(), [&](double x) { return x > above; })) /
         static_cast<double>(v.size());
}

// One statistic: its value over all heads and the same reduction per head role.
nlohmann::ordered_json statistic(const std::map<std::string, std::vector<double>>& by_role,
                                 const std::vector<double>& all, double (*reduce)(const std::vector<double>&)) {
  nlohmann::ordered_json roles = nlohmann::ordered_json::object();
  for (const auto& [role, values] : by_role) roles[role] = reduce(values);
  return {{"value", reduce(all)}, {"by_role", roles}};
}

}  // namespace

nlohmann::ordered_json summarize(const length_state& ls) {
  const model_shape& p = ls.m.shape();
  const std::uint32_t hq = p.n_query_heads, hkv = p.n_kv_heads, group = hq / hkv;
  struct per_head {
    std::vector<double> all;
    std::map<std::string, std::vector<double>> by_role;
    void add(const std::string& role, double x) {
      all.push_back(x);
      by_role[role].push_back(x);
    }
  };
  per_head cosine, retrieval, full_context, first_mass, late_first_mass, top_mass, l1, pages, neighbour, tokens_90;
  nlohmann::ordered_json heads = nlohmann::ordered_json::array();
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer)
    for (std::uint32_t qh = 0; qh < hq; ++qh) {
      const head_sums& hs = ls.heads[static_cast<std::size_t>(layer) * hq + qh];
      if (hs.n == 0) continue;
      const double n = static_cast<double>(hs.n);
      const std::string role = head_role_name(p.roles[layer][qh / group]);
      const double cos = hs.n_cosine ? hs.cosine / static_cast<double>(hs.n_cosine) : 0.0;
      const double score = ls.copy_chances ? static_cast<double>(hs.copies) / static_cast<double>(ls.copy_chances) : 0.0;
      cosine.add(role, cos);
      retrieval.add(role, score);
      full_context.add(role, hs.stream_change / n);
      first_mass.add(role, hs.first_mass / n);
      if (layer >= kFirstLayers) late_first_mass.add(role, hs.first_mass / n);
      top_mass.add(role, hs.top_mass / n);
      tokens_90.add(role, hs.tokens_90 / n);
      l1.add(role, hs.l1 / n);
      pages.add(role, hs.pages_open / n);
      heads.push_back({{"layer", layer}, {"query_head", qh}, {"kv_head", qh / group}, {"role", role},
                       {"query_cosine", cos}, {"retrieval_score", score}, {"streaming_change", hs.stream_change / n},
                       {"first4_mass", hs.first_mass / n}, {"top20_mass", hs.top_mass / n},
                       {"tokens_for_90pct", hs.tokens_90 / n}, {"logit_l1", hs.l1 / n},
                       {"pages_open", hs.pages_open / n}});
    }
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer)
    for (std::uint32_t h = 0; h < hkv; ++h)
      if (ls.neighbour_n)
        neighbour.add(head_role_name(p.roles[layer][h]),
                      ls.neighbour[static_cast<std::size_t>(layer) * hkv + h] / static_cast<double>(ls.neighbour_n));

  nlohmann::ordered_json stats = nlohmann::ordered_json::object();
  double layer_cos = 0;
  for (double c : ls.layer_cosine) layer_cos += ls.layer_cosine_n ? c / static_cast<double>(ls.layer_cosine_n) : 0.0;
  layer_cos /= p.n_layers;
  stats["query_cosine"] = {{"value", layer_cos}, {"by_role", statistic(cosine.by_role, cosine.all, mean)["by_role"]},
                           {"note", "value: a layer's flattened query; by role: the mean per query head"}};
  auto above_retrieval = [](const std::vector<double>& v) { return share(v, kRetrievalScore); };
  auto above_full = [](const std::vector<double>& v) { return share(v, kFullContextChange); };
  auto above_sink = [](const std::vector<double>& v) { return share(v, kSinkShare); };
  stats["retrieval_heads"] = statistic(retrieval.by_role, retrieval.all, +above_retrieval);
  stats["retrieval_heads"]["copy_steps"] = ls.copy_chances;
  stats["full_context_heads"] = statistic(full_context.by_role, full_context.all, +above_full);
  stats["sink_heads"] = statistic(late_first_mass.by_role, late_first_mass.all, +above_sink);
  stats["sink_heads"]["share_over_half"] = share(late_first_mass.all, 0.5);
  stats["sink_heads"]["first4_mass_quartiles"] = {quantile(late_first_mass.all, 0), quantile(late_first_mass.all, 0.25),
                                                  quantile(late_first_mass.all, 0.5), quantile(late_first_mass.all, 0.75),
                                                  quantile(late_first_mass.all, 1)};
  auto at_most_tail = [](const std::vector<double>& v) { return 1.0 - share(v, kLongTail); };
  stats["top20_mass"] = statistic(top_mass.by_role, top_mass.all, +at_most_tail);
  stats["top20_mass"]["median"] = median(top_mass.all);
  stats["top20_mass"]["tokens_for_90pct_median"] = median(tokens_90.all);
  if (ls.scored) {
    const double dense = ls.dense_score / ls.scored, oracle = ls.oracle_score / ls.scored;
    stats["top2pct_quality"] = {{"value", dense > 0 ? oracle / dense : 0.0}, {"dense_score", dense},
                                {"oracle_score", oracle}, {"samples", ls.scored}};
  }
  const auto [lo, hi] = std::minmax_element(l1.all.begin(), l1.all.end());
  stats["logit_l1_spread"] = {{"value", l1.all.empty() || *lo <= 0 ? 0.0 : *hi / *lo},
                              {"min", l1.all.empty() ? 0.0 : *lo},
                              {"max", l1.all.empty() ? 0.0 : *hi},
                              {"by_role", statistic(l1.by_role, l1.all, median)["by_role"]},
                              {"note", "by role: the median L1 norm"}};
  stats["neighbour_keys"] = statistic(neighbour.by_role, neighbour.all, mean);
  stats["neighbour_keys"]["pages_open"] = statistic(pages.by_role, pages.all, mean);
  return {{"context_length", ls.context_length}, {"statistics", stats}, {"heads", heads}};
}

namespace {

struct row_spec {
  const char* statistic;
  const char* published;
  const char* source;
  double low, high;  // the range; NaN: no range, reported as is
};

const row_spec kRows[] = {
    {"query_cosine", "0.9-0.975 between consecutive decode queries; retrieval-like heads less predictable",
     "TokenSelect (arXiv 2411.02886); TAPPA (arXiv 2601.21709)", 0.9, 0.975},
    {"retrieval_heads", "under 5% of heads score above 0.1 as retrieval heads (and some do)",
     "Wu et al. (arXiv 2404.15574)", 1e-9, 0.05},
    {"full_context_heads",
     "25% (MHA) to 50% (GQA) of heads need the full context (judged by a trained gate; see docs/model.md)",
     "DuoAttention (arXiv 2410.10819)", std::numeric_limits<double>::quiet_NaN(),
     std::numeric_limits<double>::quiet_NaN()},
    {"sink_heads",
     "beyond the first two layers most heads put a large share, often over half, on the first tokens (a sink head: "
     "over 0.3)",
     "StreamingLLM (arXiv 2309.17453); massive activations (arXiv 2402.17762); Gu et al. (arXiv 2410.10781)", 0.5, 1.0},
    {"top20_mass", "the top 20% of tokens often hold only 70-80% of a head's mass (\"often\": a quarter to three quarters "
     "of heads at 0.8 or less)",
     "MagicPIG (arXiv 2410.16179)", 0.25, 0.75},
    {"top2pct_quality", "under 2% of tokens keeps over 95% of task quality", "arXiv 2502.06766", 0.95,
     std::numeric_limits<double>::infinity()},
    {"logit_l1_spread", "per-head L1 norms of logits span about 3e3 to 1e6 (about 300x)",
     "TokenSelect (arXiv 2411.02886)", 100, 1000},
    {"neighbour_keys", "neighbouring keys are similar, so block-level bounds are informative", "Quest (arXiv 2406.10774)",
     std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()},
};

// Three significant digits, in plain notation from 0.001 to 9999.
std::string number(double x) {
  char buf[32];
  const double a = std::fabs(x);
  if (x != 0 && (a >= 1e4 || a < 1e-3))
    std::snprintf(buf, sizeof buf, "%.3g", x);
  else if (a >= 100)
    std::snprintf(buf, sizeof buf, "%.0f", x);
  else
    std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

std::string range_text(double low, double high) {
  if (std::isnan(low)) return "none";
  if (std::isinf(high)) return "at least " + number(low);
  if (low < 1e-6) return "above 0, at most " + number(high);
  return number(low) + "-" + number(high);
}

}  // namespace

nlohmann::ordered_json realism_rows(const nlohmann::ordered_json& lengths) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const row_spec& r : kRows) {
    nlohmann::ordered_json values = nlohmann::ordered_json::object(), verdicts = nlohmann::ordered_json::object();
    for (const auto& l : lengths) {
      const auto& stats = l["statistics"];
      if (!stats.contains(r.statistic)) continue;
      const std::string key = std::to_string(l["context_length"].get<std::uint32_t>());
      const double v = stats[r.statistic]["value"].get<double>();
      values[key] = v;
      verdicts[key] = realism_verdict(v, r.low, r.high);
    }
    nlohmann::ordered_json range = nlohmann::ordered_json::array();
    if (!std::isnan(r.low)) range = {r.low, std::isinf(r.high) ? nlohmann::ordered_json() : nlohmann::ordered_json(r.high)};
    rows.push_back({{"statistic", r.statistic}, {"published", r.published}, {"source", r.source}, {"range", range},
                    {"values", values}, {"verdicts", verdicts}});
  }
  return rows;
}

}  // namespace attnbench::realism_detail

namespace attnbench {

using realism_detail::kRows;
using realism_detail::number;
using realism_detail::range_text;
using realism_detail::row_spec;

std::string realism_verdict(double value, double low, double high) {
  if (std::isnan(low)) return "reported";
  if (value >= low && value <= high) return "inside";
  const double margin = 0.1 * (value < low ? std::fabs(low) : std::fabs(high));
  if ((value < low && value >= low - margin) || (value > high && value <= high + margin)) return "near";
  return "outside";
}

std::string realism_markdown(const nlohmann::ordered_json& r) {
  std::string out = "| statistic | published (source) | range | length | this model | by head role | verdict |\n"
                    "|---|---|---|---|---|---|---|\n";
  for (const row_spec& spec : kRows)
    for (const auto& l : r["lengths"]) {
      const auto& stats = l["statistics"];
      if (!stats.contains(spec.statistic)) continue;
      const auto& s = stats[spec.statistic];
      const double v = s["value"].get<double>();
      std::string roles;
      if (s.contains("by_role"))
        for (const auto& [role, x] : s["by_role"].items())
          roles += (roles.empty() ? "" : ", ") + role + " " + number(x.get<double>());
      std::string value = number(v);
      if (std::string(spec.statistic) == "neighbour_keys")
        value = "cosine " + number(v) + "; pages open " + number(s["pages_open"]["value"].get<double>());
      else if (std::string(spec.statistic) == "top2pct_quality")
        value = number(v) + " (" + number(s["oracle_score"].get<double>()) + " of " +
                number(s["dense_score"].get<double>()) + ")";
      else if (std::string(spec.statistic) == "top20_mass")
        value = number(v) + " (median head " + number(s["median"].get<double>()) + ")";
      else if (std::string(spec.statistic) == "sink_heads")
        value = number(v) + " (over half: " + number(s["share_over_half"].get<double>()) + ")";
      else if (std::string(spec.statistic) == "logit_l1_spread")
        value = number(v) + "x (" + number(s["min"].get<double>()) + " to " + number(s["max"].get<double>()) + ")";
      out += std::string("| ") + spec.statistic + " | " + spec.published + " (" + spec.source + ") | " +
             range_text(spec.low, spec.high) + " | " + std::to_string(l["context_length"].get<std::uint32_t>()) + " | " +
             value + " | " + roles + " | " + realism_verdict(v, spec.low, spec.high) + " |\n";
    }
  return out;
}

}  // namespace attnbench
