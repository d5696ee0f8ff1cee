#include "summary.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace attnbench {

namespace {

constexpr std::string_view kRulerTasks[] = {"niah_single_1",   "niah_single_2",   "niah_single_3", "niah_multikey_1",
                                            "niah_multikey_2", "niah_multikey_3", "niah_multivalue",
                                            "niah_multiquery", "vt",              "cwe",
                                            "fwe",             "qa_1",            "qa_2"};

bool is_ruler_task(const std::string& name) {
  return std::find(std::begin(kRulerTasks), std::end(kRulerTasks), name) != std::end(kRulerTasks);
}

struct mean {
  double sum = 0;
  int n = 0;
  void add(double x) { sum += x, ++n; }
  double value() const { return n ? sum / n : 0.0; }
};

}  // namespace

nlohmann::ordered_json ruler_summary(const nlohmann::ordered_json& cells) {
  using key = std::pair<std::string, std::string>;  // policy, terminator
  // [policy, terminator][length][task] -> accuracy over seeds
  std::map<key, std::map<unsigned, std::map<std::string, mean>>> acc;
  std::vector<key> order;
  for (const auto& c : cells) {
    const std::string task = c["task"].get<std::string>();
    if (!is_ruler_task(task)) continue;
    const key k{c["policy"].get<std::string>(), c["terminator"].get<std::string>()};
    if (!acc.count(k)) order.push_back(k);
    acc[k][c["context_length"].get<unsigned>()][task].add(c["metrics"]["accuracy"].get<double>());
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& k : order) {
    nlohmann::ordered_json lengths = nlohmann::ordered_json::array();
    mean over_lengths;
    std::size_t fewest = std::size(kRulerTasks);
    for (const auto& [length, tasks] : acc[k]) {
      mean over_tasks;
      for (const auto& [task, m] : tasks) over_tasks.add(m.value());
      lengths.push_back({{"context_length", length}, {"score", over_tasks.value()}, {"tasks", tasks.size()}});
      over_lengths.add(over_tasks.value());
      fewest = std::min(fewest, tasks.size());
    }
    out.push_back({{"policy", k.first},
                   {"terminator", k.second},
                   {"lengths", lengths},
                   {"mean", over_lengths.value()},
                   {"complete", fewest == std::size(kRulerTasks)}});
  }
  return out;
}

}  // namespace attnbench
