// The plugin conformance suite: every policy plugin found in the build folder, with its
// default params and with each param set its folder lists in conformance.json
// ({"params": [{...}, ...]}), on seeded random caches at several lengths and GQA ratios:
//  - plans (and keep sets) pass the host's checks: entry count, kinds, indices in range,
//    no duplicates;
//  - a plan whose entries cover every cached token gives dense attention's output;
//  - the same inputs give the same plans and bit-identical outputs, from a fresh
//    instance and when scenarios run on several threads at once.
// New plugins are picked up without editing this file.
#include "policy-host.hpp"
#include "test-helpers.hpp"

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/random.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <set>
#include <thread>

using namespace attnbench;
using attnbench::testing::build_dir;
using attnbench::testing::source_dir;

namespace {

struct policy_case {
  std::string plugin;
  nlohmann::json params;
  std::string name;  // for the test name
};

void PrintTo(const policy_case& c, std::ostream* os) { *os << c.plugin << " " << c.params.dump(); }

// Every plugin of the kind in the build folder (not the built-in "none"), with default
// params and each set in plugins/NAME/conformance.json: {"params": [...], "paths": [keys
// whose values are files in the plugin's folder], "defaults": false to skip defaults}.
std::vector<policy_case> discover(attnbench_plugin_kind kind) {
  std::vector<policy_case> cases;
  plugin_registry registry({build_dir()});
  for (const auto& entry : registry.scan()) {
    if (!entry.library || entry.library->descriptor().kind != kind) continue;
    const std::string name = entry.library->descriptor().name;
    const auto folder = source_dir() / "plugins" / name;
    nlohmann::json j = nlohmann::json::object();
    if (std::ifstream in(folder / "conformance.json"); in) j = nlohmann::json::parse(in);
    // "defaults": false for a plugin whose defaults cannot run (tca needs a budgets file).
    if (j.value("defaults", true)) cases.push_back({name, nlohmann::json::object(), name + "_defaults"});
    std::size_t i = 0;
    for (auto params : j.value("params", nlohmann::json::array())) {
      for (const auto& key : j.value("paths", nlohmann::json::array()))  // files in the plugin's folder
        if (params.contains(key.get<std::string>()))
          params[key.get<std::string>()] = (folder / params[key.get<std::string>()].get<std::string>()).string();
      cases.push_back({name, params, name + "_set" + std::to_string(i++)});
    }
  }
  return cases;
}
std::vector<policy_case> discover_policies() { return discover(ATTNBENCH_PLUGIN_POLICY); }
std::vector<policy_case> discover_terminators() { return discover(ATTNBENCH_PLUGIN_TERMINATOR); }

struct shape {
  std::uint32_t group;   // query heads per KV head
  std::uint64_t length;  // prompt tokens
};

constexpr std::uint32_t kLayers = 3, kKvHeads = 2, kDim = 64, kBlock = 16, kSteps = 4;

// What a scenario produced: every plan, flattened, and every layer output's bits.
struct trace {
  std::vector<std::uint32_t> plans;
  std::vector<float> outputs;
  std::string problem;  // the first failed check, "" when all held
};

void fill_random(attnbench::rng& r, std::vector<float>& v, double sd) {
  for (auto& x : v) x = static_cast<float>(r.normal() * sd);
}

void flatten(const attnbench_plan& plan, std::vector<std::uint32_t>& out) {
  out.push_back(plan.granularity);
  out.push_back(plan.n_entries);
  for (std::uint32_t e = 0; e < plan.n_entries; ++e) {
    out.push_back(plan.entries[e].kind);
    out.push_back(plan.entries[e].count);
    if (plan.entries[e].kind != ATTNBENCH_PLAN_ALL)
      out.insert(out.end(), plan.entries[e].indices, plan.entries[e].indices + plan.entries[e].count);
  }
}

bool covers_everything(const attnbench_plan& plan, const attnbench_kv_layer_view& kv, std::uint32_t group) {
  for (std::uint32_t e = 0; e < plan.n_entries; ++e) {
    const auto& entry = plan.entries[e];
    const auto& head = kv.heads[plan.granularity == ATTNBENCH_PLAN_PER_KV_HEAD ? e : e / group];
    if (entry.kind == ATTNBENCH_PLAN_ALL) continue;
    if (entry.kind == ATTNBENCH_PLAN_BLOCKS && entry.count == head.n_blocks) continue;
    if (entry.kind == ATTNBENCH_PLAN_TOKENS && entry.count == head.n_tokens) continue;
    return false;
  }
  return true;
}

// Prefill (with the policy's keep set) and kSteps decode steps over a seeded random cache.
trace run_scenario(const policy_case& c, shape s, std::uint64_t seed) {
  trace t;
  plugin_registry registry({build_dir()});
  const auto library = registry.find(c.plugin, ATTNBENCH_PLUGIN_POLICY);
  const std::uint32_t nq = kKvHeads * s.group;
  const attnbench_model_info info{kLayers, nq, kKvHeads, kDim, kBlock, ATTNBENCH_DTYPE_FP16};
  policy_instance policy(library, c.params, info);
  kernels::kv_cache cache(kLayers, kKvHeads, kDim, kBlock, ATTNBENCH_DTYPE_FP16);
  attnbench::rng r(seed);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
  auto append = [&](std::uint64_t n, std::uint64_t first) {
    std::vector<float> k(n * kDim), v(n * kDim);
    std::vector<std::int64_t> pos(n);
    for (std::uint64_t i = 0; i < n; ++i) pos[i] = static_cast<std::int64_t>(first + i);
    for (std::uint32_t l = 0; l < kLayers; ++l)
      for (std::uint32_t h = 0; h < kKvHeads; ++h) {
        fill_random(r, k, 1.0);
        fill_random(r, v, 1.0);
        cache.append(l, h, n, pos.data(), k.data(), v.data());
      }
  };
  append(s.length, 0);
  std::vector<float> queries(static_cast<std::size_t>(nq) * kDim);
  if (policy.has_on_prefill())
    for (std::uint32_t l = 0; l < kLayers; ++l) {
      fill_random(r, queries, 3.0);
      const attnbench_prefill_request req{l, nq, s.length, queries.data(), scale, 0, &cache.layer_view(l)};
      const attnbench_plan keep = policy.on_prefill(req);
      flatten(keep, t.plans);
      try {
        apply_keep_set(policy, cache, l, keep);
      } catch (const std::exception& e) {
        t.problem = std::string("keep set: ") + e.what();
        return t;
      }
    }
  seen_stamps seen;
  std::vector<float> out(queries.size()), dense(queries.size());
  for (std::uint64_t step = 0; step < kSteps; ++step) {
    append(1, s.length + step);
    for (std::uint32_t l = 0; l < kLayers; ++l) {
      fill_random(r, queries, 3.0);  // peaked attention, as in the model's heads
      const auto& kv = cache.layer_view(l);
      const attnbench_plan_request req{l, nq, step, s.length + step, queries.data(), scale, 0, &kv};
      const attnbench_plan plan = policy.plan(req);
      flatten(plan, t.plans);
      if (const std::string problem = check_plan(plan, kv, nq, seen); !problem.empty()) {
        t.problem = "layer " + std::to_string(l) + ", step " + std::to_string(step) + ": " + problem;
        return t;
      }
      std::vector<kernels::decode_counters> counters(plan.n_entries);
      kernels::layer_decode_args a;
      a.queries = queries.data();
      a.n_query_heads = nq;
      a.scale = scale;
      a.kv = &kv;
      a.plan = &plan;
      a.out = out.data();
      if (kernels::decode_layer(a, counters.data()) != ATTNBENCH_STATUS_OK) {
        t.problem = "layer " + std::to_string(l) + ", step " + std::to_string(step) + ": the kernel refused the plan";
        return t;
      }
      t.outputs.insert(t.outputs.end(), out.begin(), out.end());
      if (covers_everything(plan, kv, s.group)) {
        const std::vector<attnbench_plan_entry> all(kKvHeads, {ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
        const attnbench_plan dense_plan{ATTNBENCH_PLAN_PER_KV_HEAD, kKvHeads, all.data()};
        a.plan = &dense_plan;
        a.out = dense.data();
        std::vector<kernels::decode_counters> dense_counters(kKvHeads);
        kernels::decode_layer(a, dense_counters.data());
        double num = 0, den = 0;
        for (std::size_t i = 0; i < out.size(); ++i) {
          num += (static_cast<double>(out[i]) - dense[i]) * (static_cast<double>(out[i]) - dense[i]);
          den += static_cast<double>(dense[i]) * dense[i];
        }
        if (std::sqrt(num / den) > 1e-5) {
          t.problem = "layer " + std::to_string(l) + ", step " + std::to_string(step) +
                      ": the plan covers every token but its output differs from dense (relative L2 error " +
                      std::to_string(std::sqrt(num / den)) + ")";
          return t;
        }
      }
    }
  }
  return t;
}

const shape kShapes[] = {{1, 1}, {1, 63}, {4, 300}, {1, 3000}, {4, 3000}, {8, 1500}};

class PolicyConformance : public ::testing::TestWithParam<policy_case> {};

TEST_P(PolicyConformance, PlansAreValidAndFullCoverageEqualsDense) {
  for (const shape s : kShapes) {
    const trace t = run_scenario(GetParam(), s, 1000 + s.length);
    EXPECT_EQ(t.problem, "") << "GQA " << s.group << ", " << s.length << " tokens";
  }
}

TEST_P(PolicyConformance, SameInputsGiveTheSamePlansAndBits) {
  for (const shape s : kShapes) {
    const trace a = run_scenario(GetParam(), s, 7), b = run_scenario(GetParam(), s, 7);
    ASSERT_EQ(a.problem, "");
    EXPECT_EQ(a.plans, b.plans) << "GQA " << s.group << ", " << s.length << " tokens";
    ASSERT_EQ(a.outputs.size(), b.outputs.size());
    EXPECT_EQ(std::memcmp(a.outputs.data(), b.outputs.data(), a.outputs.size() * sizeof(float)), 0)
        << "GQA " << s.group << ", " << s.length << " tokens";
  }
}

TEST_P(PolicyConformance, ParallelRunsGiveWhatSerialRunsGive) {
  const shape s{4, 3000};
  constexpr int kRuns = 4;
  std::vector<trace> serial, parallel(kRuns);
  for (int i = 0; i < kRuns; ++i) serial.push_back(run_scenario(GetParam(), s, 50 + i));
  std::vector<std::thread> threads;
  for (int i = 0; i < kRuns; ++i)
    threads.emplace_back([&, i] { parallel[i] = run_scenario(GetParam(), s, 50 + i); });
  for (auto& th : threads) th.join();
  for (int i = 0; i < kRuns; ++i) {
    ASSERT_EQ(serial[i].problem, "");
    EXPECT_EQ(serial[i].plans, parallel[i].plans) << "run " << i;
    EXPECT_EQ(serial[i].outputs, parallel[i].outputs) << "run " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Plugins, PolicyConformance, ::testing::ValuesIn(discover_policies()),
                         [](const ::testing::TestParamInfo<policy_case>& info) { return info.param.name; });

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
        for (std::uint64_t seed = 0; seed < 2; ++seed) {
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

// The suite must see the plugins this tree builds, or it would pass by testing nothing.
TEST(Conformance, FindsTheTreesPolicies) {
  std::set<std::string> names;
  for (const auto& c : discover_policies()) names.insert(c.plugin);
  for (const char* expected : {"dense", "streaming", "quest", "tokenselect", "tca"}) EXPECT_TRUE(names.count(expected)) << expected;
  std::set<std::string> terminators;
  for (const auto& c : discover_terminators()) terminators.insert(c.plugin);
  EXPECT_TRUE(terminators.count("art"));
}

}  // namespace
