// libFuzzer target: the results loader that resume, report, compare and merge share, and
// what they compute from a loaded document (summaries, tables, expected cells, cell ids).
// Input: results.json text, then optionally a NUL byte and samples.jsonl text. A loaded
// document must never make those functions throw or crash: the loader's checks are what
// stands between a damaged file and them.
#include <attnbench/host/errors.hpp>
#include <attnbench/report/results.hpp>
#include <attnbench/report/summary.hpp>
#include <attnbench/report/tables.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  try {
    const auto doc = attnbench::parse_results_text(input.substr(0, nul), "results.json");
    (void)attnbench::expected_cells(doc);
    (void)attnbench::console_tables(doc);
    (void)attnbench::ruler_summary(doc["cells"]);
    (void)attnbench::longbench_summary(doc["cells"]);
    for (const auto& c : doc["cells"]) (void)attnbench::cell_id_with(c["id"].get<std::string>(), "dense", "none");
  } catch (const attnbench::config_error&) {
  }
  if (nul != std::string_view::npos) {
    for (const bool lenient : {false, true}) {
      try {
        const auto records = attnbench::parse_sample_records(input.substr(nul + 1), "samples.jsonl", lenient);
        if (records.records.size() != records.lines.size()) __builtin_trap();
      } catch (const attnbench::config_error&) {
        if (lenient) __builtin_trap();  // lenient parsing drops what it cannot read
      }
    }
  }
  return 0;
}
