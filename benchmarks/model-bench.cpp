// Mechanistic-model benchmarks: how long K/V generation takes, the cost that issue 4's bar
// puts against dense decoding of a 128K-token sample.
//   model/kv/PROFILE/niah_single_1/ctx:N   prefill of one niah_single_1 prompt of N tokens
//                                          into a cache whose pages are faulted in first
// Each case reports ns_per_token_head: wall time of the prefill alone over
// N x layers x KV heads, with the threads oneTBB gives it (the run's own setting).
// The trained model's prefill (issue 24's bar: at least half the machine's fp32
// multiply-add rate):
//   model/trained/MODEL/prefill/ctx:N      the dense forward of one niah_single_1 prompt
// reports macs_per_s (the forward's multiply-adds: projections, attention over the causal
// triangle, MLP) and mac_ratio, that rate over measure_mac_rate with all threads,
// measured in the same process.
#include <attnbench/model/mechanistic.hpp>
#include <attnbench/model/profile.hpp>
#include <attnbench/model/trained.hpp>

#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/kernels/probe.hpp>
#include <attnbench/tasks/task.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

using namespace attnbench;

namespace {

void kv_case(benchmark::State& state, const std::string& profile_name, std::uint32_t ctx) {
  const model_profile profile =
      load_profile(std::string(ATTNBENCH_SOURCE_DIR) + "/configs/profiles/" + profile_name + ".json");
  const mechanistic_model model(profile, 1);
  const auto task = tasks::make_task("niah_single_1", nlohmann::json::object());
  const tasks::sample s = task->make_sample(0, ctx);
  kernels::kv_cache cache(profile.n_layers, profile.n_kv_heads, profile.head_dim, 64, ATTNBENCH_DTYPE_FP16);
  cache.prefault(ctx);
  double seconds = 0;
  for (auto _ : state) {
    cache.truncate(0);  // keeps the pages: only the writing is timed, not their zeroing
    const auto start = std::chrono::steady_clock::now();
    model.prefill(s.prompt, cache);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double pairs = static_cast<double>(ctx) * profile.n_layers * profile.n_kv_heads;
  state.counters["ns_per_token_head"] = seconds * 1e9 / (pairs * static_cast<double>(state.iterations()));
}

void trained_case(benchmark::State& state, const std::string& name, std::uint32_t ctx) {
  static const double mac_rate = kernels::measure_mac_rate(0, 5);
  const trained_model model(std::string(ATTNBENCH_SOURCE_DIR) + "/models/" + name);
  const auto task = tasks::make_task("niah_single_1", nlohmann::json::object());
  const tasks::sample s = task->make_sample(0, ctx);
  const auto& shape = model.shape();
  kernels::kv_cache cache(shape.n_layers, shape.n_kv_heads, shape.head_dim, 64, ATTNBENCH_DTYPE_FP16);
  cache.prefault(ctx);
  double seconds = 0;
  for (auto _ : state) {
    cache.truncate(0);
    const auto start = std::chrono::steady_clock::now();
    model.forward(s.prompt, &cache);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double rate = model.prefill_macs(s.prompt.size()) *
                      static_cast<double>(state.iterations()) / seconds;
  state.counters["macs_per_s"] = rate;
  state.counters["mac_ratio"] = rate / mac_rate;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (const char* profile : {"default", "sharp"})
    for (std::uint32_t ctx : {16384u, 131072u})
      benchmark::RegisterBenchmark(
          ("model/kv/" + std::string(profile) + "/niah_single_1/ctx:" + std::to_string(ctx)).c_str(), kv_case,
          std::string(profile), ctx)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  for (const char* name : {"niah-2x128", "needle-4x128"})
    for (std::uint32_t ctx : {4096u, 16384u, 32768u})
      benchmark::RegisterBenchmark(
          ("model/trained/" + std::string(name) + "/prefill/ctx:" + std::to_string(ctx)).c_str(), trained_case,
          std::string(name), ctx)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
