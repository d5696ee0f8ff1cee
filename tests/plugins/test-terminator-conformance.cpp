// The terminator conformance suite: every terminator plugin in the build folder (see
// conformance-cases.hpp), on one layer of a seeded random cache: its output is the
// attention over the blocks it visited, and art's settings keep their promises.
#include "conformance-cases.hpp"

using namespace attnbench;
using namespace attnbench::testing::conformance;
using attnbench::testing::build_dir;
using attnbench::testing::source_dir;

namespace {

// --- Terminators ---------------------------------------------------------------------

// One layer of a seeded random cache and queries; plan entries of every kind.
struct layer_setup {
  std::uint32_t group;
  std::unique_ptr<kernels::kv_cache> cache;
  std::vector<float> queries;
  std::vector<std::uint32_t> blocks, tokens;  // a shuffled subset of blocks, a sorted subset of tokens
  float scale = 1.0f / std::sqrt(static_cast<float>(kDim));

  // needle: 0 none; 1 in the first token; 2 in the last token (adversarial: a late
  // needle whose value is 100 times the others' norm). A needle's key is aligned with its
  // group's queries. key_sd scales the other keys.
  layer_setup(std::uint32_t g, std::uint64_t n, std::uint64_t seed, int needle, double key_sd = 1.0) : group(g) {
    attnbench::rng r(seed);
    cache = std::make_unique<kernels::kv_cache>(1, kKvHeads, kDim, kBlock, ATTNBENCH_DTYPE_FP16);
    queries.resize(static_cast<std::size_t>(kKvHeads) * g * kDim);
    fill_random(r, queries, 3.0);
    std::vector<float> k(n * kDim), v(n * kDim);
    std::vector<std::int64_t> pos(n);
    for (std::uint64_t i = 0; i < n; ++i) pos[i] = static_cast<std::int64_t>(i);
    for (std::uint32_t h = 0; h < kKvHeads; ++h) {
      fill_random(r, k, key_sd);
      fill_random(r, v, 1.0);
      if (needle != 0) {
        const std::uint64_t at = needle == 1 ? 0 : n - 1;
        float* key = &k[at * kDim];
        for (std::uint32_t i = 0; i < kDim; ++i) {  // the group's mean query, scaled up
          key[i] = 0;
          for (std::uint32_t q = 0; q < g; ++q) key[i] += queries[(static_cast<std::size_t>(h) * g + q) * kDim + i];
          key[i] *= 0.5f / g;
        }
        if (needle == 2)
          for (std::uint32_t i = 0; i < kDim; ++i) v[at * kDim + i] *= 100.0f;
      }
      cache->append(0, h, n, pos.data(), k.data(), v.data());
    }
    const std::uint32_t n_blocks = cache->layer_view(0).heads[0].n_blocks;
    for (std::uint32_t b = 0; b < n_blocks; b += 2) blocks.push_back(n_blocks - 1 - b);  // every other, backwards
    for (std::uint64_t t = 0; t < n; t += 3) tokens.push_back(static_cast<std::uint32_t>(t));
  }

  attnbench_plan_entry entry(attnbench_plan_kind kind) const {
    if (kind == ATTNBENCH_PLAN_BLOCKS)
      return {kind, static_cast<std::uint32_t>(blocks.size()), blocks.data(), nullptr};
    if (kind == ATTNBENCH_PLAN_TOKENS)
      return {kind, static_cast<std::uint32_t>(tokens.size()), tokens.data(), nullptr};
    return {ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr};
  }

  // Runs the layer with the plan kind for every KV head, through the terminator (or none),
  // without split-K; fills out and counters.
  void run(attnbench_plan_kind kind, const terminator_instance* term, std::vector<float>& out,
           std::vector<kernels::decode_counters>& counters) {
    const std::vector<attnbench_plan_entry> entries(kKvHeads, entry(kind));
    const attnbench_plan plan{ATTNBENCH_PLAN_PER_KV_HEAD, kKvHeads, entries.data()};
    kernels::layer_decode_args a;
    a.queries = queries.data();
    a.n_query_heads = kKvHeads * group;
    a.scale = scale;
    a.kv = &cache->layer_view(0);
    a.plan = &plan;
    a.min_parts = 1;
    out.assign(queries.size(), 0.0f);
    a.out = out.data();
    if (term) {
      a.terminator = term->ops();
      a.terminator_instance = term->handle();
      a.terminator_state_size = term->state_size(group, kDim);
    }
    counters.assign(kKvHeads, {});
    ASSERT_EQ(kernels::decode_layer(a, counters.data()), ATTNBENCH_STATUS_OK);
  }

  // float64 attention of KV head h's group over the first `chunks` chunks of the plan, in
  // the order the terminator (if it orders chunks) asks for.
  std::vector<double> reference(attnbench_plan_kind kind, std::uint32_t h, std::uint64_t chunks,
                                const terminator_instance* term = nullptr) {
    attnbench_plan_entry e = entry(kind);
    const attnbench_plan_entry planned = e;
    std::vector<std::uint32_t> order, indices;
    const auto& head = cache->layer_view(0).heads[h];
    if (term && term->ops()->order) {
      const auto n = static_cast<std::uint32_t>(kernels::plan_entry_chunks(planned, head, kBlock));
      const float* q = queries.data() + static_cast<std::size_t>(h) * group * kDim;
      const attnbench_traversal_info info{0, h, group, kDim, n, 0, 0, q, scale, kBlock, &head, &planned};
      order.resize(n);
      EXPECT_EQ(term->ops()->order(term->handle(), &info, n, order.data()), ATTNBENCH_STATUS_OK);
      EXPECT_TRUE(kernels::reorder_entry(planned, head, kBlock, order.data(), n, indices, e));
    }
    kernels::decode_args a;
    a.queries = queries.data() + static_cast<std::size_t>(h) * group * kDim;
    a.n_query_heads = group;
    a.head_dim = kDim;
    a.scale = scale;
    a.kv = &cache->layer_view(0).heads[h];
    a.block_size = kBlock;
    a.dtype = ATTNBENCH_DTYPE_FP16;
    a.entry = &e;
    std::vector<double> out(static_cast<std::size_t>(group) * kDim);
    EXPECT_EQ(kernels::decode_reference(a, chunks, out.data()), ATTNBENCH_STATUS_OK);
    return out;
  }
};

double relative_error(const float* got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

class TerminatorConformance : public ::testing::TestWithParam<policy_case> {};

// Whatever a terminator decides, the output is the attention over the chunks visited, and
// the same inputs give the same decisions and bits.
TEST_P(TerminatorConformance, OutputIsTheAttentionOverWhatWasVisitedAndDeterministic) {
  plugin_registry registry({build_dir()});
  const auto library = registry.find(GetParam().plugin, ATTNBENCH_PLUGIN_TERMINATOR);
  for (std::uint32_t group : {1u, 4u})
    for (std::uint64_t n : {63u, 3000u})
      for (bool adversarial : {false, true})
        for (auto kind : {ATTNBENCH_PLAN_ALL, ATTNBENCH_PLAN_BLOCKS, ATTNBENCH_PLAN_TOKENS}) {
          layer_setup s(group, n, 77 + n, adversarial ? 2 : 0);
          const attnbench_model_info info{1, kKvHeads * group, kKvHeads, kDim, kBlock, ATTNBENCH_DTYPE_FP16};
          terminator_instance term(library, GetParam().params, info);
          std::vector<float> out, again;
          std::vector<kernels::decode_counters> counters, counters_again;
          s.run(kind, &term, out, counters);
          s.run(kind, &term, again, counters_again);
          EXPECT_EQ(std::memcmp(out.data(), again.data(), out.size() * sizeof(float)), 0);
          for (std::uint32_t h = 0; h < kKvHeads; ++h) {
            EXPECT_EQ(counters[h].blocks_visited, counters_again[h].blocks_visited);
            const auto want = s.reference(kind, h, counters[h].blocks_visited, &term);
            EXPECT_LT(relative_error(out.data() + static_cast<std::size_t>(h) * group * kDim, want), 1e-4)
                << "GQA " << group << ", " << n << " tokens, plan kind " << kind << ", head " << h
                << (adversarial ? ", adversarial" : "");
          }
        }
}

INSTANTIATE_TEST_SUITE_P(Plugins, TerminatorConformance, ::testing::ValuesIn(discover_terminators()),
                         [](const ::testing::TestParamInfo<policy_case>& info) { return info.param.name; });

// ART with termination disabled runs the same traversal as no terminator: bit for bit.
TEST(ArtConformance, DisabledEqualsNoTerminatorBitForBit) {
  plugin_registry registry({build_dir()});
  const auto library = registry.find("art", ATTNBENCH_PLUGIN_TERMINATOR);
  for (std::uint32_t group : {1u, 4u})
    for (auto kind : {ATTNBENCH_PLAN_ALL, ATTNBENCH_PLAN_BLOCKS, ATTNBENCH_PLAN_TOKENS}) {
      layer_setup s(group, 3000, 5, 0);
      const attnbench_model_info info{1, kKvHeads * group, kKvHeads, kDim, kBlock, ATTNBENCH_DTYPE_FP16};
      terminator_instance term(library, {{"enabled", false}, {"tau_mag", 1.0}, {"tau_dir", 2.0}, {"patience", 1}},
                               info);
      std::vector<float> with, without;
      std::vector<kernels::decode_counters> c1, c2;
      s.run(kind, &term, with, c1);
      s.run(kind, nullptr, without, c2);
      EXPECT_EQ(std::memcmp(with.data(), without.data(), with.size() * sizeof(float)), 0) << "plan kind " << kind;
      for (std::uint32_t h = 0; h < kKvHeads; ++h) EXPECT_EQ(c1[h].blocks_visited, c1[h].blocks_planned);
    }
}

// Certified ART: wherever it stops, the output is within epsilon (L2, per head) of the
// whole traversal's: on random caches, on caches with an early needle among small keys
// (where the bound can certify, so it does stop early) and on caches whose last token is
// a needle with a large value (where stopping early would be wrong).
TEST(ArtConformance, CertifiedBoundHolds) {
  plugin_registry registry({build_dir()});
  const auto library = registry.find("art", ATTNBENCH_PLUGIN_TERMINATOR);
  const double epsilon = 0.05;
  std::uint64_t stopped_early = 0, stopped_on_late_needle = 0;
  struct input {
    int needle;
    double key_sd;
  };
  for (const char* order : {"as_planned", "sinks_recent_then_bound"})
  for (std::uint32_t group : {1u, 4u})
    for (const input in : {input{0, 1.0}, input{1, 0.05}, input{2, 0.05}, input{2, 1.0}})
      for (auto kind : {ATTNBENCH_PLAN_ALL, ATTNBENCH_PLAN_BLOCKS, ATTNBENCH_PLAN_TOKENS})
        for (std::uint64_t seed = 0; seed < (attnbench::testing::kSanitized ? 1u : 2u); ++seed) {
          layer_setup s(group, 3000, 300 + seed, in.needle, in.key_sd);
          const attnbench_model_info info{1, kKvHeads * group, kKvHeads, kDim, kBlock, ATTNBENCH_DTYPE_FP16};
          terminator_instance term(library,
                                   {{"mode", "certified"}, {"epsilon", epsilon}, {"tau_mag", 1.0}, {"tau_dir", 2.0},
                                    {"patience", 1}, {"order", order}},
                                   info);
          std::vector<float> out, full;
          std::vector<kernels::decode_counters> c1, c2;
          s.run(kind, &term, out, c1);
          s.run(kind, nullptr, full, c2);
          for (std::uint32_t hq = 0; hq < kKvHeads * group; ++hq) {
            double err = 0;
            for (std::uint32_t i = 0; i < kDim; ++i) {
              const double diff = static_cast<double>(out[hq * kDim + i]) - full[hq * kDim + i];
              err += diff * diff;
            }
            EXPECT_LE(std::sqrt(err), epsilon) << "GQA " << group << ", plan kind " << kind << ", head " << hq
                                               << ", needle " << in.needle << ", key sd " << in.key_sd << ", "
                                               << order;
          }
          for (std::uint32_t h = 0; h < kKvHeads; ++h) {
            const bool early = c1[h].blocks_visited < c1[h].blocks_planned;
            if (early && in.needle == 1) ++stopped_early;
            if (early && in.needle == 2) ++stopped_on_late_needle;
          }
        }
  EXPECT_GT(stopped_early, 0u) << "certified mode never stopped: the test would not see a wrong bound";
  // As planned, the needle is in the last chunk of ALL and TOKENS plans, so those cannot
  // stop early; the bound order visits the last chunk second and can.
  EXPECT_GT(stopped_on_late_needle, 0u) << "the bound order never stopped before the end";
}

}  // namespace
