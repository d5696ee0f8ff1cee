#include <attnbench/tasks/scoring.hpp>

#include <algorithm>
#include <cctype>

namespace attnbench::tasks {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

double string_match_all(std::string_view prediction, const std::vector<std::string>& references) {
  if (references.empty()) return 0.0;
  const std::string pred = lower(prediction);
  std::size_t found = 0;
  for (const auto& r : references) found += pred.find(lower(r)) != std::string::npos;
  return 100.0 * static_cast<double>(found) / static_cast<double>(references.size());
}

double string_match_part(std::string_view prediction, const std::vector<std::string>& references) {
  const std::string pred = lower(prediction);
  for (const auto& r : references)
    if (pred.find(lower(r)) != std::string::npos) return 100.0;
  return 0.0;
}

}  // namespace attnbench::tasks
