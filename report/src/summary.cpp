#include <attnbench/report/summary.hpp>

#include <attnbench/tasks/suites.hpp>
#include <attnbench/tasks/task.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace attnbench {

namespace {

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
    if (!tasks::is_ruler_task(task)) continue;
    const key k{c["policy"].get<std::string>(), c["terminator"].get<std::string>()};
    if (!acc.count(k)) order.push_back(k);
    acc[k][c["context_length"].get<unsigned>()][task].add(c["metrics"]["accuracy"].get<double>());
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& k : order) {
    nlohmann::ordered_json lengths = nlohmann::ordered_json::array();
    mean over_lengths;
    std::size_t fewest = tasks::ruler_tasks().size();
    for (const auto& [length, by_task] : acc[k]) {
      mean over_tasks;
      nlohmann::ordered_json task_scores = nlohmann::ordered_json::object();
      for (const auto& [task, m] : by_task) {
        over_tasks.add(m.value());
        task_scores[task] = m.value();
      }
      lengths.push_back({{"context_length", length},
                         {"score", over_tasks.value()},
                         {"tasks", by_task.size()},
                         {"task_scores", task_scores}});
      over_lengths.add(over_tasks.value());
      fewest = std::min(fewest, by_task.size());
    }
    out.push_back({{"policy", k.first},
                   {"terminator", k.second},
                   {"lengths", lengths},
                   {"mean", over_lengths.value()},
                   {"complete", fewest == tasks::ruler_tasks().size()}});
  }
  return out;
}

namespace {

std::string length_bucket(unsigned context_length) {
  return context_length <= 4096 ? "0-4K" : context_length <= 8192 ? "4-8K" : "8K+";
}

// task -> mean score; then categories and overall, in LongBench's way.
nlohmann::ordered_json longbench_scores(const std::map<std::string, mean>& task_scores) {
  std::map<std::string, mean> categories;
  nlohmann::ordered_json per_task = nlohmann::ordered_json::object();
  for (const auto& info : tasks::task_catalogue())  // LongBench's order
    if (const auto it = task_scores.find(info.name); it != task_scores.end()) {
      per_task[info.name] = it->second.value();
      categories[std::string(tasks::longbench_category(info.name))].add(it->second.value());
    }
  nlohmann::ordered_json per_category = nlohmann::ordered_json::object();
  mean overall;
  for (const auto& c : tasks::longbench_categories())
    if (const auto it = categories.find(c); it != categories.end()) {
      per_category[c] = it->second.value();
      overall.add(it->second.value());
    }
  return {{"tasks", per_task},
          {"categories", per_category},
          {"overall", overall.value()},
          {"complete", categories.size() == tasks::longbench_categories().size()}};
}

}  // namespace

nlohmann::ordered_json longbench_summary(const nlohmann::ordered_json& cells) {
  using key = std::pair<std::string, std::string>;  // policy, terminator
  std::map<key, std::map<std::string, mean>> all;
  std::map<key, std::map<std::string, std::map<std::string, mean>>> by_bucket;
  std::vector<key> order;
  for (const auto& c : cells) {
    const std::string task = c["task"].get<std::string>();
    if (tasks::longbench_category(task).empty()) continue;
    const key k{c["policy"].get<std::string>(), c["terminator"].get<std::string>()};
    if (!all.count(k)) order.push_back(k);
    const double score = c["metrics"]["accuracy"].get<double>();
    all[k][task].add(score);
    by_bucket[k][length_bucket(c["context_length"].get<unsigned>())][task].add(score);
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& k : order) {
    nlohmann::ordered_json row = {{"policy", k.first}, {"terminator", k.second}};
    row.update(longbench_scores(all[k]));
    nlohmann::ordered_json buckets = nlohmann::ordered_json::object();
    for (const char* b : {"0-4K", "4-8K", "8K+"})
      if (const auto it = by_bucket[k].find(b); it != by_bucket[k].end()) buckets[b] = longbench_scores(it->second);
    row["buckets"] = buckets;
    out.push_back(row);
  }
  return out;
}

}  // namespace attnbench
