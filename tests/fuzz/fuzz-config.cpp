// libFuzzer target: the config parser with --set overrides. Input: a config's text, then
// optionally a NUL byte and --set specs, one per line. Any input must end in a resolved
// config or a harness_error (exit codes 2 and 3); anything else (a crash, another
// exception, a sanitizer report) is a finding.
#include <attnbench/host/config.hpp>
#include <attnbench/host/errors.hpp>
#include <attnbench/run/plugins.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const attnbench::task_rules rules = attnbench::config_task_rules();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view text = input.substr(0, nul);
  std::vector<std::string> sets;
  if (nul != std::string_view::npos) {
    std::string_view rest = input.substr(nul + 1);
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      sets.emplace_back(rest.substr(0, nl));
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  try {
    const attnbench::run_config c = attnbench::load_config_text(text, "fuzz.json", rules, sets);
    if (c.tasks.empty() || c.policies.empty() || c.context_lengths.empty()) __builtin_trap();  // resolve must fill them
  } catch (const attnbench::harness_error& e) {
    if (e.code != attnbench::exit_config && e.code != attnbench::exit_usage) __builtin_trap();
  }
  return 0;
}
