// Kernel benchmarks, registered from tables. Names are hierarchical:
//   probe/threads:T                         read bandwidth of a buffer larger than the caches
//   mac/threads:T                           fp32 multiply-adds per second (the arithmetic ceiling)
//   decode/DTYPE/gqaG/ctx:N/threads:T       one decode step of one layer, 8 KV heads x 128
//   score/DTYPE/gqaG/ctx:N/threads:1        q.k of one GQA group over N keys (one KV head)
//   topk/n:N/k:K                            top-k of N scores; fraction_of_score_pass is its
//                                           time over one head's scoring pass of N fp16 keys
//   hook/overhead/fp16/gqa4/ctx:N/threads:1 decode with a terminator that never stops,
//                                           alternating with no terminator: hook_overhead
// Each decode case reports kv_bytes_per_s and probe_ratio: the median over its steps of
// the step's bytes per second over a probe pass (same thread count) run just before that
// step; and same_memory_ratio: the same against a plain read of the very K/V blocks the
// step reads (on this VM a buffer's bandwidth depends on where it was allocated, so this
// is the ratio that compares like with like); fma_busy: the share of the step the
// multiply-adds alone would take at the rate mac/threads:T measures; arith_ceiling: the
// probe_ratio that arithmetic alone would allow. Score cases use three probe passes before and three after their loop. Run with
// --benchmark_repetitions=5 and read the medians.
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

using namespace attnbench;
using namespace attnbench::kernels;

namespace {

constexpr std::uint32_t kKvHeads = 8, kHeadDim = 128, kBlock = 64;
constexpr std::size_t kProbeBytes = std::size_t{512} << 20;  // larger than any cache here

// The probe buffer shared by every case (larger than the caches).
const read_probe& probe_buffer() {
  static const read_probe probe(kProbeBytes);
  return probe;
}

// Bandwidth of `passes` probe passes with `threads` threads, median. Cases measure it
// right before and after their own loop, so the ratio compares like with like on a
// machine whose load changes over minutes.
std::vector<double> probe_passes(int threads, int passes) {
  std::vector<double> rates;
  for (int i = 0; i < passes; ++i)
    rates.push_back(static_cast<double>(probe_buffer().bytes()) / probe_buffer().run_once(threads));
  return rates;
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

void decode_case(benchmark::State& state, attnbench_dtype dtype, std::uint32_t group, std::uint32_t ctx, int threads,
                 bool hook) {
  kv_cache& cache = cache_for(dtype, ctx);
  const std::uint32_t hq = kKvHeads * group;
  rng r(group);
  std::vector<float> q(static_cast<std::size_t>(hq) * kHeadDim), out(q.size());
  for (auto& x : q) x = static_cast<float>(r.normal());
  std::vector<attnbench_plan_entry> entries(kKvHeads, {ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
  const attnbench_plan plan{ATTNBENCH_PLAN_PER_KV_HEAD, kKvHeads, entries.data()};
  std::vector<decode_counters> counters(kKvHeads);
  layer_decode_args la;
  la.queries = q.data();
  la.n_query_heads = hq;
  la.scale = 1.0f / 11.3f;
  la.kv = &cache.layer_view(0);
  la.plan = &plan;
  la.out = out.data();
  if (hook) {
    la.terminator = &kNever;
    la.terminator_state_size = sizeof(never_state);
  }
  tbb::task_arena arena(threads);
  using clock = std::chrono::steady_clock;
  double with_hook = 0, without_hook = 0;
  const attnbench_terminator_ops* terminator = la.terminator;
  const double bytes = 2.0 * ctx * kKvHeads * kHeadDim * (dtype == ATTNBENCH_DTYPE_FP32 ? 4 : 2);
  std::vector<double> ratios, probe_rates, same_memory_ratios;
  std::int64_t n = 0;
  for (auto _ : state) {
    // Each step is paired with a probe pass just before it (outside the timing), and the
    // ratio is taken per pair: load that drifts during the case cancels out.
    state.PauseTiming();
    const double probe_rate = static_cast<double>(probe_buffer().bytes()) / probe_buffer().run_once(threads);
    std::size_t layer_bytes = 0;
    const double layer_s = read_layer_once(*la.kv, threads, &layer_bytes);
    state.ResumeTiming();
    // With a hook, iterations alternate between hook and no hook, so that both see the
    // same machine state and their ratio is robust to drift.
    la.terminator = hook && n % 2 == 0 ? terminator : nullptr;
    const auto t0 = clock::now();
    arena.execute([&] {
      if (decode_layer(la, counters.data()) != ATTNBENCH_STATUS_OK) state.SkipWithError("decode failed");
    });
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    (la.terminator ? with_hook : without_hook) += s;
    ratios.push_back(bytes / s / probe_rate);
    same_memory_ratios.push_back(layer_s / s);  // same bytes: time of a plain read over time of the step
    probe_rates.push_back(probe_rate);
    benchmark::DoNotOptimize(out.data());
    ++n;
  }
  const double per_step = (with_hook + without_hook) / static_cast<double>(n);
  state.counters["kv_bytes_per_s"] = bytes / per_step;
  state.counters["probe_bytes_per_s"] = median(probe_rates);
  state.counters["probe_ratio"] = median(ratios);
  state.counters["same_memory_ratio"] = median(same_memory_ratios);
  // The arithmetic side: 2 x group x head_dim multiply-adds per token and KV head. At
  // the machine's multiply-add rate they take arith_s; fma_busy is that share of a step,
  // and arith_ceiling the probe_ratio a step limited by arithmetic alone would reach.
  const double macs = 2.0 * group * kHeadDim * static_cast<double>(ctx) * kKvHeads;
  const double arith_s = macs / mac_rate(threads);
  state.counters["fma_busy"] = arith_s / per_step;
  state.counters["arith_ceiling"] = bytes / arith_s / median(probe_rates);
  if (hook && n >= 2) {
    const double a = with_hook / static_cast<double>((n + 1) / 2), b = without_hook / static_cast<double>(n / 2);
    state.counters["hook_overhead"] = a / b - 1.0;
  }
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
  std::vector<double> probe = probe_passes(1, 3);
  double total = 0;
  std::int64_t n = 0;
  for (auto _ : state) {
    const double s = score_pass(dtype, group, ctx, out);
    if (s < 0) state.SkipWithError("score failed");
    total += s;
    ++n;
    benchmark::DoNotOptimize(out.data());
  }
  const double bytes = static_cast<double>(ctx) * kHeadDim * (dtype == ATTNBENCH_DTYPE_FP32 ? 4 : 2);
  state.counters["kv_bytes_per_s"] = bytes * static_cast<double>(n) / total;
  for (double r : probe_passes(1, 3)) probe.push_back(r);
  state.counters["probe_bytes_per_s"] = median(probe);
  state.counters["probe_ratio"] = bytes * static_cast<double>(n) / total / median(probe);
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

void probe_case(benchmark::State& state, int threads) {
  for (auto _ : state) state.SetIterationTime(probe_buffer().run_once(threads));
  state.counters["bytes_per_s"] =
      benchmark::Counter(static_cast<double>(probe_buffer().bytes()), benchmark::Counter::kIsIterationInvariantRate);
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
    benchmark::RegisterBenchmark(("probe/threads:" + std::to_string(threads)).c_str(), probe_case, threads)
        ->UseManualTime()
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
          benchmark::RegisterBenchmark(name.c_str(), decode_case, dtype, group, ctx, threads, false)
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
                                 decode_case, ATTNBENCH_DTYPE_FP16, 4u, ctx, 1, true)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(2.0);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
