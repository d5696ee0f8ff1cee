// The plugin conformance suite: every policy plugin found in the build folder, with its
// default params and with each param set its folder lists in conformance.json
// ({"params": [{...}, ...]}), on seeded random caches at several lengths and GQA ratios:
//  - plans (and keep sets) pass the host's checks: entry count, kinds, indices in range,
//    no duplicates;
//  - a plan whose entries cover every cached token gives dense attention's output;
//  - the same inputs give the same plans and bit-identical outputs, from a fresh
//    instance and when scenarios run on several threads at once.
// New plugins are picked up without editing this file.
#include "conformance-cases.hpp"

#include <attnbench/host/plugin-loader.hpp>
#include <attnbench/host/policy-host.hpp>

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/random.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <set>
#include <thread>

using namespace attnbench;
using namespace attnbench::testing::conformance;
using attnbench::testing::build_dir;
using attnbench::testing::source_dir;

namespace {
struct shape {
  std::uint32_t group;   // query heads per KV head
  std::uint64_t length;  // prompt tokens
};


// What a scenario produced: every plan, flattened, and every layer output's bits.
struct trace {
  std::vector<std::uint32_t> plans;
  std::vector<float> outputs;
  std::string problem;  // the first failed check, "" when all held
};


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

// The relative L2 distance of out from dense attention over the same layer and queries.
double relative_error_to_dense(kernels::layer_decode_args a, const std::vector<float>& out) {
  std::vector<float> dense(out.size());
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
  return std::sqrt(num / den);
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
  std::vector<float> out(queries.size());
  for (std::uint64_t step = 0; step < kSteps; ++step) {
    append(1, s.length + step);
    for (std::uint32_t l = 0; l < kLayers; ++l) {
      fill_random(r, queries, 3.0);  // peaked attention, as in the model's heads
      const auto& kv = cache.layer_view(l);
      const attnbench_plan_request req{l, nq, step, s.length + step, queries.data(), scale, 0, &kv};
      const attnbench_plan plan = policy.plan(req);
      flatten(plan, t.plans);
      std::vector<kernels::decode_counters> counters(std::max(plan.n_entries, nq));
      kernels::layer_decode_args a;
      a.queries = queries.data();
      a.n_query_heads = nq;
      a.scale = scale;
      a.kv = &kv;
      a.plan = &plan;
      a.out = out.data();
      kernels::decode_error error;
      if (kernels::decode_layer(a, counters.data(), &error) != ATTNBENCH_STATUS_OK) {
        t.problem = "layer " + std::to_string(l) + ", step " + std::to_string(step) + ": " + error.message;
        return t;
      }
      t.outputs.insert(t.outputs.end(), out.begin(), out.end());
      if (covers_everything(plan, kv, s.group)) {
        const double error = relative_error_to_dense(a, out);
        if (error > 1e-5) {
          t.problem = "layer " + std::to_string(l) + ", step " + std::to_string(step) +
                      ": the plan covers every token but its output differs from dense (relative L2 error " +
                      std::to_string(error) + ")";
          return t;
        }
      }
    }
  }
  return t;
}

// Under the sanitizers, shorter prompts of the same group sizes.
const std::vector<shape> kShapes = attnbench::testing::kSanitized
                                       ? std::vector<shape>{{1, 1}, {1, 63}, {4, 300}, {1, 1000}, {8, 700}}
                                       : std::vector<shape>{{1, 1}, {1, 63}, {4, 300}, {1, 3000}, {4, 3000}, {8, 1500}};

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
  const shape s{4, attnbench::testing::kSanitized ? 1000ull : 3000ull};
  constexpr int kRuns = attnbench::testing::kSanitized ? 2 : 4;
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
