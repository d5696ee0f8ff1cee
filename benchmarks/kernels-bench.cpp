// Kernel benchmarks, registered from tables. Names are hierarchical:
//   probe/threads:T                         read bandwidth of a buffer larger than the caches
//   decode/DTYPE/gqaG/ctx:N/threads:T       one decode step of one layer, 8 KV heads x 128
//   hook/never|none/...                     the same with a terminator that never stops, and without
// Each decode case reports kv_bytes_per_s and probe_ratio: its KV bytes per second over
// the probe measured in this process with the same thread count. Run with
// --benchmark_repetitions=5 and read the medians.
#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/probe.hpp>
#include <attnbench/kernels/random.hpp>
#include <attnbench/kernels/simd.hpp>

#include <benchmark/benchmark.h>
#include <tbb/task_arena.h>

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
constexpr std::size_t kProbeBytes = std::size_t{1} << 30;

// Probe bandwidth per thread count, measured once at start (median of 7 passes).
std::map<int, double>& probe_rates() {
  static std::map<int, double> rates;
  return rates;
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
const attnbench_terminator_ops kNever = {nullptr, nullptr, nullptr, never_reset, never_check, nullptr};

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
  la.threads = static_cast<std::uint32_t>(threads);
  la.out = out.data();
  if (hook) {
    la.terminator = &kNever;
    la.terminator_state_size = sizeof(never_state);
  }
  tbb::task_arena arena(threads);
  for (auto _ : state) {
    arena.execute([&] {
      if (decode_layer(la, counters.data()) != ATTNBENCH_STATUS_OK) state.SkipWithError("decode failed");
    });
    benchmark::DoNotOptimize(out.data());
  }
  const double bytes = 2.0 * ctx * kKvHeads * kHeadDim * (dtype == ATTNBENCH_DTYPE_FP32 ? 4 : 2);
  state.counters["kv_bytes_per_s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["probe_ratio"] =
      benchmark::Counter(bytes / probe_rates()[threads], benchmark::Counter::kIsIterationInvariantRate);
}

void probe_case(benchmark::State& state, int threads) {
  static const read_probe probe(kProbeBytes);
  for (auto _ : state) {
    const double s = probe.run_once(threads);
    state.SetIterationTime(s);
  }
  state.counters["bytes_per_s"] =
      benchmark::Counter(static_cast<double>(probe.bytes()), benchmark::Counter::kIsIterationInvariantRate);
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
  {
    const read_probe probe(kProbeBytes);
    for (int threads : {1, 2}) {
      probe.run_once(threads);
      std::vector<double> rates;
      for (int i = 0; i < 7; ++i) rates.push_back(static_cast<double>(probe.bytes()) / probe.run_once(threads));
      std::sort(rates.begin(), rates.end());
      probe_rates()[threads] = rates[3];
      std::fprintf(stderr, "probe: %d thread(s): %.2f GB/s (median of 7); kernel target %s\n", threads,
                   rates[3] / 1e9, current_target().c_str());
    }
  }
  for (int threads : {1, 2})
    benchmark::RegisterBenchmark(("probe/threads:" + std::to_string(threads)).c_str(), probe_case, threads)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
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
  for (bool hook : {false, true})
    benchmark::RegisterBenchmark((std::string("hook/") + (hook ? "never" : "none") + "/fp16/gqa4/ctx:32768/threads:1").c_str(),
                                 decode_case, ATTNBENCH_DTYPE_FP16, 4u, 32768u, 1, hook)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
