// Kernel benchmarks, registered from tables. Names are hierarchical:
//   ceiling/threads:T                       the read ceiling: every read method's median
//                                           (counters named after the methods) and the
//                                           best, bytes_per_s (kernels/probe.hpp)
//   mac/threads:T                           fp32 multiply-adds per second (the arithmetic ceiling)
//   decode/DTYPE/gqaG/ctx:N/threads:T       one decode step of one layer, 8 KV heads x 128
//   decode-warm/DTYPE/gqaG/ctx:256/threads:T     the same, back to back from L2: what the
//                                           kernel's work allows (warm_ceiling_ratio)
//   decode-tokens/fp16/gqaG/ctx:N/keep:K/threads:T   the same over a token list of K tokens
//   decode-blocks/fp16/gqaG/ctx:N/keep:K/threads:T   ... over a block list of K tokens
//   score/DTYPE/gqaG/ctx:N/threads:1        q.k of one GQA group over N keys (one KV head)
//   topk/n:N/k:K                            top-k of N scores; fraction_of_score_pass is its
//                                           time over one head's scoring pass of N fp16 keys
//   hook/overhead/fp16/gqa4/ctx:N/threads:1 decode with a terminator that never stops,
//                                           alternating with no terminator: hook_overhead
// Each decode case pairs every step with one pass of the ceiling's best read method (same
// thread count) run just before it, outside the timing, and reports medians over steps of
// ceiling_ratio, roofline_ratio (the bar: 0.90 on an AVX-512 machine), same_memory_ratio,
// fma_busy and arith_ceiling; docs/kernels.md ("Benchmarks") says what each means. Score
// cases pair their passes the same way. Run with --benchmark_repetitions=5 and read the
// medians.
#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/probe.hpp>
#include <attnbench/kernels/random.hpp>
#include <attnbench/kernels/score.hpp>
#include <attnbench/kernels/simd.hpp>

#include <benchmark/benchmark.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <unistd.h>

using namespace attnbench;
using namespace attnbench::kernels;

namespace {

constexpr std::uint32_t kKvHeads = 8, kHeadDim = 128, kBlock = 64;
// Each ceiling buffer: 512 MiB, or 4 times the last-level cache where that is larger.
// A step is paired with one pass over the best method's buffer, and little else may be
// read between two passes (10 MiB for a sparse step): on an Intel Xeon whose 16 cores
// share a 300 MB L3, passes over 512 MiB then ran at 21-22 GB/s against the probe's
// 18.9 (which interleaves three buffers), so part of the buffer stayed in L3.
std::size_t probe_bytes() {
  std::size_t bytes = std::size_t{512} << 20;
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (l3 > 0) bytes = std::max(bytes, std::min<std::size_t>(4 * static_cast<std::size_t>(l3), std::size_t{2} << 30));
  return bytes;
}

// The ceiling's buffers, shared by every case.
const read_ceiling_probe& ceiling_probe() {
  static const read_ceiling_probe probe(probe_bytes());
  return probe;
}

// The read ceiling with `threads` threads, measured once per thread count (every method,
// 5 interleaved rounds); cases pair their steps with passes of its best method.
const read_ceiling& ceiling(int threads) {
  static std::map<int, read_ceiling> ceilings;
  auto [it, fresh] = ceilings.try_emplace(threads);
  if (fresh) it->second = ceiling_probe().measure(threads, 5);
  return it->second;
}

// One pass of the ceiling's best method, in bytes per second.
double ceiling_pass(int threads) {
  const read_ceiling& c = ceiling(threads);
  return static_cast<double>(ceiling_probe().bytes()) / ceiling_probe().run_once(c.best, threads);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// fp32 multiply-adds per second with `threads` threads, measured once per thread count.
double mac_rate(int threads) {
  static std::map<int, double> rates;
  auto [it, fresh] = rates.try_emplace(threads, 0.0);
  if (fresh) it->second = measure_mac_rate(threads, 5);
  return it->second;
}

// Caches are built once per (dtype, context) and shared by the cases that read them.
kv_cache& cache_for(attnbench_dtype dtype, std::uint32_t ctx) {
  static std::map<std::pair<int, std::uint32_t>, std::unique_ptr<kv_cache>> caches;
  auto& slot = caches[{dtype, ctx}];
  if (!slot) {
    slot = std::make_unique<kv_cache>(1, kKvHeads, kHeadDim, kBlock, dtype);
    rng r(ctx * 7 + dtype);
    constexpr std::size_t chunk = 4096;
    std::vector<float> k(chunk * kHeadDim), v(k.size());
    std::vector<std::int64_t> pos(chunk);
    for (std::uint32_t h = 0; h < kKvHeads; ++h)
      for (std::uint32_t start = 0; start < ctx; start += chunk) {
        const std::size_t n = std::min<std::size_t>(chunk, ctx - start);
        for (std::size_t i = 0; i < n * kHeadDim; ++i) {
          k[i] = static_cast<float>(r.uniform() * 2 - 1) * 0.3f;
          v[i] = static_cast<float>(r.uniform() * 2 - 1);
        }
        std::iota(pos.begin(), pos.begin() + n, start);
        slot->append(0, h, n, pos.data(), k.data(), v.data());
      }
  }
  return *slot;
}

// A terminator that never stops, as cheap as a real check can be: it reads the state.
struct never_state {
  float last;
};
attnbench_status never_reset(const void*, void* state, const attnbench_traversal_info*) {
  static_cast<never_state*>(state)->last = 0;
  return ATTNBENCH_STATUS_OK;
}
attnbench_decision never_check(const void*, void* state, const attnbench_kernel_state* ks) {
  static_cast<never_state*>(state)->last = ks->running_sum[0];
  return ATTNBENCH_CONTINUE;
}
const attnbench_terminator_ops kNever = {nullptr, nullptr, nullptr, never_reset, never_check, nullptr, nullptr};

// The plan a decode case runs: every token, or `keep` tokens of each KV head as a token
// list (the last 512 and the rest spread at random over the earlier ones, as a top-k plus
// window selection looks) or as the block list that holds as many tokens.
struct case_plan {
  attnbench_plan_kind kind = ATTNBENCH_PLAN_ALL;
  std::uint32_t keep = 0;
};

struct built_plan {
  std::vector<std::vector<std::uint32_t>> indices;
  std::vector<attnbench_plan_entry> entries;
  attnbench_plan plan{};
  std::uint64_t tokens = 0;  // per KV head
};

void build_plan(const case_plan& cp, std::uint32_t ctx, built_plan& out) {
  out.indices.assign(kKvHeads, {});
  out.entries.assign(kKvHeads, {ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
  out.tokens = ctx;
  if (cp.kind != ATTNBENCH_PLAN_ALL) {
    const std::uint32_t unit = cp.kind == ATTNBENCH_PLAN_TOKENS ? 1 : kBlock;
    const std::uint32_t n = ctx / unit, want = cp.keep / unit, window = 512 / unit;
    for (std::uint32_t h = 0; h < kKvHeads; ++h) {
      rng r(h + 7);
      std::vector<char> chosen(n, 0);
      for (std::uint32_t i = n - window; i < n; ++i) chosen[i] = 1;
      for (std::uint32_t picked = window; picked < want;) {
        const auto i = static_cast<std::uint32_t>(r.uniform() * (n - window));
        if (!chosen[i]) chosen[i] = 1, ++picked;
      }
      for (std::uint32_t i = 0; i < n; ++i)
        if (chosen[i]) out.indices[h].push_back(i);
      out.entries[h] = {static_cast<std::uint32_t>(cp.kind), want, out.indices[h].data(), nullptr};
    }
    out.tokens = static_cast<std::uint64_t>(want) * unit;
  }
  out.plan = {ATTNBENCH_PLAN_PER_KV_HEAD, kKvHeads, out.entries.data()};
}

// What a decode case runs: the queries, the plan and the layer's arguments.
struct decode_setup {
  std::vector<float> q, out;
  built_plan plan;
  std::vector<decode_counters> counters = std::vector<decode_counters>(kKvHeads);
  layer_decode_args la;
  double bytes = 0, macs = 0;  // per step

  decode_setup(attnbench_dtype dtype, std::uint32_t group, std::uint32_t ctx, const case_plan& cp) {
    kv_cache& cache = cache_for(dtype, ctx);
    const std::uint32_t hq = kKvHeads * group;
    rng r(group);
    q.resize(static_cast<std::size_t>(hq) * kHeadDim);
    out.resize(q.size());
    for (auto& x : q) x = static_cast<float>(r.normal());
    build_plan(cp, ctx, plan);
    la.queries = q.data();
    la.n_query_heads = hq;
    la.scale = 1.0f / 11.3f;
    la.kv = &cache.layer_view(0);
    la.plan = &plan.plan;
    la.out = out.data();
    bytes = 2.0 * static_cast<double>(plan.tokens) * kKvHeads * kHeadDim * (dtype == ATTNBENCH_DTYPE_FP32 ? 4 : 2);
    // The arithmetic side: 2 x group x head_dim multiply-adds per token and KV head.
    macs = 2.0 * group * kHeadDim * static_cast<double>(plan.tokens) * kKvHeads;
  }
  decode_setup(const decode_setup&) = delete;
  decode_setup& operator=(const decode_setup&) = delete;
};

void decode_case(benchmark::State& state, attnbench_dtype dtype, std::uint32_t group, std::uint32_t ctx, int threads,
                 bool hook, case_plan cp) {
  decode_setup ds(dtype, group, ctx, cp);
  layer_decode_args& la = ds.la;
  if (hook) {
    la.terminator = &kNever;
    la.terminator_state_size = sizeof(never_state);
  }
  tbb::task_arena arena(threads);
  using clock = std::chrono::steady_clock;
  double with_hook = 0, without_hook = 0;
  const attnbench_terminator_ops* terminator = la.terminator;
  const double bytes = ds.bytes, macs = ds.macs;
  const double mac_per_s = mac_rate(threads);
  ceiling(threads);  // measured before the first step
  std::vector<double> ratios, roofline, ceiling_rates, same_memory_ratios;
  std::int64_t n = 0;
  for (auto _ : state) {
    // Each step is paired with a ceiling pass just before it (outside the timing), and the
    // ratio is taken per pair: load that drifts during the case cancels out. The plain
    // read of the same blocks comes first, so that the ceiling pass flushes them from the
    // last-level cache (docs/kernels.md, "Benchmarks").
    state.PauseTiming();
    double layer_s = 0;
    if (cp.kind == ATTNBENCH_PLAN_ALL) {
      std::size_t layer_bytes = 0;
      layer_s = read_layer_once(*la.kv, threads, &layer_bytes);
    }
    const double rate = ceiling_pass(threads);
    state.ResumeTiming();
    // With a hook, iterations alternate between hook and no hook, so that both see the
    // same machine state and their ratio is robust to drift.
    la.terminator = hook && n % 2 == 0 ? terminator : nullptr;
    const auto t0 = clock::now();
    arena.execute([&] {
      if (decode_layer(la, ds.counters.data()) != ATTNBENCH_STATUS_OK) state.SkipWithError("decode failed");
    });
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    (la.terminator ? with_hook : without_hook) += s;
    ratios.push_back(bytes / s / rate);
    roofline.push_back(roofline_seconds(bytes, rate, macs, mac_per_s) / s);
    if (layer_s > 0) same_memory_ratios.push_back(layer_s / s);  // same bytes: a plain read's time over the step's
    ceiling_rates.push_back(rate);
    benchmark::DoNotOptimize(ds.out.data());
    ++n;
  }
  const double per_step = (with_hook + without_hook) / static_cast<double>(n);
  state.counters["kv_bytes_per_s"] = bytes / per_step;
  state.counters["ceiling_bytes_per_s"] = median(ceiling_rates);
  state.counters["ceiling_ratio"] = median(ratios);
  state.counters["roofline_ratio"] = median(roofline);
  if (!same_memory_ratios.empty()) state.counters["same_memory_ratio"] = median(same_memory_ratios);
  // fma_busy: the multiply-adds' share of a step; arith_ceiling: the ceiling_ratio a step
  // limited by arithmetic alone would reach.
  const double arith_s = macs / mac_per_s;
  state.counters["fma_busy"] = arith_s / per_step;
  state.counters["arith_ceiling"] = bytes / arith_s / median(ceiling_rates);
  state.SetLabel("ceiling " + ceiling(threads).best_method().name() + " (" + ceiling(threads).simd_target + ")");
  if (hook && n >= 2) {
    const double a = with_hook / static_cast<double>((n + 1) / 2), b = without_hook / static_cast<double>(n / 2);
    state.counters["hook_overhead"] = a / b - 1.0;
  }
}

// Decode steps back to back on a small cache that stays in L2 (no ceiling pass between
// steps): what the kernel's own work allows. warm_ceiling_ratio is the steps' bytes per
// second over the read ceiling; below the 0.90 bar, the kernel's instructions, not the
// memory, keep the shape from it.
void warm_case(benchmark::State& state, attnbench_dtype dtype, std::uint32_t group, std::uint32_t ctx, int threads) {
  decode_setup ds(dtype, group, ctx, case_plan{});
  tbb::task_arena arena(threads);
  const double mac_per_s = mac_rate(threads);
  const double ceiling_rate = ceiling(threads).bytes_per_s();
  std::vector<double> steps;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    arena.execute([&] {
      if (decode_layer(ds.la, ds.counters.data()) != ATTNBENCH_STATUS_OK) state.SkipWithError("decode failed");
    });
    steps.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    benchmark::DoNotOptimize(ds.out.data());
  }
  const double s = median(steps);
  state.counters["warm_bytes_per_s"] = ds.bytes / s;
  state.counters["warm_ceiling_ratio"] = ds.bytes / s / ceiling_rate;
  state.counters["fma_busy"] = ds.macs / mac_per_s / s;
}

// One scoring pass: q.k of `group` query heads over every key of one KV head.
double score_pass(attnbench_dtype dtype, std::uint32_t group, std::uint32_t ctx, std::vector<float>& out) {
  kv_cache& cache = cache_for(dtype, ctx);
  rng r(group + 100);
  std::vector<float> q(static_cast<std::size_t>(group) * kHeadDim);
  for (auto& x : q) x = static_cast<float>(r.normal());
  out.resize(static_cast<std::size_t>(group) * ctx);
  score_args a;
  a.queries = q.data();
  a.n_query_heads = group;
  a.head_dim = kHeadDim;
  a.scale = 1.0f / 11.3f;
  a.kv = &cache.layer_view(0).heads[0];
  a.block_size = kBlock;
  a.dtype = dtype;
  a.count = ctx;
  a.out = out.data();
  const auto t0 = std::chrono::steady_clock::now();
  if (score_keys(a) != ATTNBENCH_STATUS_OK) return -1;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void score_case(benchmark::State& state, attnbench_dtype dtype, std::uint32_t group, std::uint32_t ctx) {
  std::vector<float> out;
  cache_for(dtype, ctx);  // build outside the timed loop
  ceiling(1);
  const double bytes = static_cast<double>(ctx) * kHeadDim * (dtype == ATTNBENCH_DTYPE_FP32 ? 4 : 2);
  const double macs = static_cast<double>(group) * kHeadDim * ctx;
  std::vector<double> ratios, roofline, rates;
  double total = 0;
  std::int64_t n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const double rate = ceiling_pass(1);
    state.ResumeTiming();
    const double s = score_pass(dtype, group, ctx, out);
    if (s < 0) state.SkipWithError("score failed");
    total += s;
    ++n;
    ratios.push_back(bytes / s / rate);
    roofline.push_back(roofline_seconds(bytes, rate, macs, mac_rate(1)) / s);
    rates.push_back(rate);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["kv_bytes_per_s"] = bytes * static_cast<double>(n) / total;
  state.counters["ceiling_bytes_per_s"] = median(rates);
  state.counters["ceiling_ratio"] = median(ratios);
  state.counters["roofline_ratio"] = median(roofline);
}

void topk_case(benchmark::State& state, std::uint32_t n, std::uint32_t k) {
  // The scores are a real scoring pass's output; the pass is also the yardstick.
  std::vector<float> scores;
  std::vector<double> passes;
  for (int i = 0; i < 5; ++i) passes.push_back(score_pass(ATTNBENCH_DTYPE_FP16, 1, n, scores));
  std::sort(passes.begin(), passes.end());
  std::vector<std::uint32_t> out(k);
  double total = 0;
  std::int64_t iterations = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    top_k(scores.data(), n, k, out.data());
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++iterations;
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["fraction_of_score_pass"] = total / static_cast<double>(iterations) / passes[2];
  state.counters["score_pass_us"] = passes[2] * 1e6;
}

// Every read method, 5 interleaved rounds: one counter per method (its median) and the
// ceiling, bytes_per_s; the label names the best method and the SIMD target.
void ceiling_case(benchmark::State& state, int threads) {
  read_ceiling c;
  for (auto _ : state) {
    c = ceiling_probe().measure(threads, 5);
    state.SetIterationTime(1);
  }
  for (const auto& m : c.methods) state.counters[m.method.name()] = m.median();
  state.counters["bytes_per_s"] = c.bytes_per_s();
  state.SetLabel("best " + c.best_method().name() + ", simd target " + c.simd_target);
}

void mac_case(benchmark::State& state, int threads) {
  double rate = 0;
  for (auto _ : state) rate = measure_mac_rate(threads, 1);
  state.counters["macs_per_s"] = rate;
}

const char* dtype_label(attnbench_dtype d) { return d == ATTNBENCH_DTYPE_FP16 ? "fp16" : d == ATTNBENCH_DTYPE_BF16 ? "bf16" : "fp32"; }

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // --target=NAME pins a SIMD target (see `attnbench list`); the default is the best.
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--target=", 0) == 0 && !set_target(arg.substr(9))) {
      std::fprintf(stderr, "unknown target %s\n", arg.c_str() + 9);
      return 2;
    }
  }
  std::fprintf(stderr, "kernel target %s\n", current_target().c_str());
  for (int threads : {1, 2})
    benchmark::RegisterBenchmark(("ceiling/threads:" + std::to_string(threads)).c_str(), ceiling_case, threads)
        ->UseManualTime()
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  for (int threads : {1, 2})
    benchmark::RegisterBenchmark(("mac/threads:" + std::to_string(threads)).c_str(), mac_case, threads)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  for (auto dtype : {ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16})
    for (std::uint32_t group : {1u, 4u, 8u})
      for (std::uint32_t ctx : {4096u, 16384u, 32768u, 65536u, 131072u})
        for (int threads : {1, 2}) {
          const std::string name = std::string("decode/") + dtype_label(dtype) + "/gqa" + std::to_string(group) +
                                   "/ctx:" + std::to_string(ctx) + "/threads:" + std::to_string(threads);
          benchmark::RegisterBenchmark(name.c_str(), decode_case, dtype, group, ctx, threads, false, case_plan{})
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
        }
  // The same steps from L2: 8 KV heads x 256 tokens (1 MiB in fp16).
  for (auto dtype : {ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16})
    for (std::uint32_t group : {1u, 4u, 8u})
      for (int threads : {1, 2}) {
        const std::string name = std::string("decode-warm/") + dtype_label(dtype) + "/gqa" + std::to_string(group) +
                                 "/ctx:256/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), warm_case, dtype, group, 256u, threads)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      }
  // The sparse paths: 2K + 512 tokens of 128K, as a token list and as a block list.
  for (auto kind : {ATTNBENCH_PLAN_TOKENS, ATTNBENCH_PLAN_BLOCKS})
    for (std::uint32_t group : {1u, 4u})
      for (int threads : {1, 2}) {
        const std::string name = std::string(kind == ATTNBENCH_PLAN_TOKENS ? "decode-tokens" : "decode-blocks") +
                                 "/fp16/gqa" + std::to_string(group) + "/ctx:131072/keep:2560/threads:" +
                                 std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), decode_case, ATTNBENCH_DTYPE_FP16, group, 131072u, threads, false,
                                     case_plan{kind, 2560})
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
  for (std::uint32_t group : {1u, 4u})
    benchmark::RegisterBenchmark(("score/fp16/gqa" + std::to_string(group) + "/ctx:131072/threads:1").c_str(), score_case,
                                 ATTNBENCH_DTYPE_FP16, group, 131072u)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  benchmark::RegisterBenchmark("topk/n:131072/k:2048", topk_case, 131072u, 2048u)->Unit(benchmark::kMicrosecond);
  for (std::uint32_t ctx : {32768u, 131072u})
    benchmark::RegisterBenchmark(("hook/overhead/fp16/gqa4/ctx:" + std::to_string(ctx) + "/threads:1").c_str(),
                                 decode_case, ATTNBENCH_DTYPE_FP16, 4u, ctx, 1, true, case_plan{})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(2.0);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
