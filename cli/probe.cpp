// probe: the read ceiling and the multiply-add rate speed ratios are measured against,
// with every read method's figures.
#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/kernels/probe.hpp>
#include <attnbench/kernels/simd.hpp>

#include <cstdio>
#include <iostream>
#include <thread>

namespace attnbench::cli {

using nlohmann::json;

namespace {

struct probe_options {
  std::vector<int> threads;
  unsigned mib = 512;
  int repetitions = 5;
  bool json = false;
  bool macs = true;
};

json measure_ceilings(const probe_options& o) {
  const kernels::read_ceiling_probe probe(std::size_t{o.mib} << 20);
  json out = {{"buffer_bytes", probe.bytes()}, {"repetitions", o.repetitions}, {"ceilings", json::array()}};
  for (int t : o.threads) {
    const kernels::read_ceiling c = probe.measure(t, o.repetitions);
    json methods = json::array();
    for (const auto& m : c.methods)
      methods.push_back({{"method", m.method.name()}, {"reader", m.method.reader}, {"memory", m.method.memory},
                         {"median_bytes_per_s", m.median()}, {"min_bytes_per_s", m.min()}, {"max_bytes_per_s", m.max()}});
    json row = {{"threads", t}, {"simd_target", c.simd_target}, {"best_method", c.best_method().name()},
                {"ceiling_bytes_per_s", c.bytes_per_s()}, {"methods", methods}};
    if (o.macs) row["macs_per_s"] = kernels::measure_mac_rate(t, o.repetitions);
    out["ceilings"].push_back(row);
  }
  out["kernel_target"] = kernels::current_target();
  return out;
}

void print_ceilings(const json& out) {
  std::printf("read ceiling: %.0f MiB buffers, %d rounds of every method; kernels use %s\n",
              out["buffer_bytes"].get<double>() / (1 << 20), out["repetitions"].get<int>(),
              out["kernel_target"].get<std::string>().c_str());
  for (const auto& c : out["ceilings"]) {
    std::printf("\n%d thread%s (simd target %s)\n  %-20s %12s %9s %9s\n", c["threads"].get<int>(),
                c["threads"].get<int>() == 1 ? "" : "s", c["simd_target"].get<std::string>().c_str(), "method",
                "median GB/s", "min", "max");
    for (const auto& m : c["methods"])
      std::printf("  %-20s %12.2f %9.2f %9.2f%s\n", m["method"].get<std::string>().c_str(),
                  m["median_bytes_per_s"].get<double>() / 1e9, m["min_bytes_per_s"].get<double>() / 1e9,
                  m["max_bytes_per_s"].get<double>() / 1e9, m["method"] == c["best_method"] ? "  <- ceiling" : "");
    std::printf("  ceiling %.2f GB/s (%s)", c["ceiling_bytes_per_s"].get<double>() / 1e9,
                c["best_method"].get<std::string>().c_str());
    if (c.contains("macs_per_s")) std::printf("; fp32 multiply-adds %.1f G/s", c["macs_per_s"].get<double>() / 1e9);
    std::printf("\n");
  }
}

}  // namespace

void add_probe_command(CLI::App& app, std::vector<registered_command>& commands) {
  auto o = std::make_shared<probe_options>();
  auto* sub = app.add_subcommand("probe",
                                 "Measure the read ceiling (every read method, 4 KiB and huge pages, the KV cache's "
                                 "own memory) and the multiply-add rate that speed ratios are measured against");
  sub->add_option("--threads", o->threads, "Thread counts to measure (repeatable; default 1 and every core)")
      ->check(CLI::Range(1, 4096))
      ->type_name("N");
  sub->add_option("--mib", o->mib, "Size of each buffer in MiB (default 512; three are held)")
      ->check(CLI::Range(16u, 65536u))
      ->type_name("MIB");
  sub->add_option("--repetitions", o->repetitions, "Interleaved rounds of every method (default 5)")
      ->check(CLI::Range(1, 1000))
      ->type_name("N");
  sub->add_flag("--no-macs", [o](std::int64_t) { o->macs = false; }, "Skip the multiply-add rate");
  sub->add_flag("--json", o->json, "Print JSON instead of a table");
  sub->footer(kExitCodes);
  commands.push_back({sub, [o](const global_options&) {
                        if (o->threads.empty()) {
                          o->threads.push_back(1);
                          const int cores = static_cast<int>(std::thread::hardware_concurrency());
                          if (cores > 1) o->threads.push_back(cores);
                        }
                        const json out = measure_ceilings(*o);
                        if (o->json) std::cout << out.dump(2) << "\n";
                        else print_ceilings(out);
                        return static_cast<int>(exit_ok);
                      }});
}

}  // namespace attnbench::cli
