#include <attnbench/tasks/suites.hpp>

#include <algorithm>
#include <map>

namespace attnbench::tasks {

const std::vector<std::string>& ruler_tasks() {
  static const std::vector<std::string> names{
      "niah_single_1", "niah_single_2",   "niah_single_3",   "niah_multikey_1", "niah_multikey_2",
      "niah_multikey_3", "niah_multivalue", "niah_multiquery", "vt",              "cwe",
      "fwe",           "qa_1",            "qa_2"};
  return names;
}

bool is_ruler_task(std::string_view name) {
  const auto& names = ruler_tasks();
  return std::find(names.begin(), names.end(), name) != names.end();
}

const std::vector<std::string>& longbench_categories() {
  static const std::vector<std::string> c{"single_doc_qa", "multi_doc_qa", "summarization",
                                          "few_shot",      "synthetic",    "code"};
  return c;
}

std::string longbench_short_name(std::string_view task) {
  static const std::map<std::string, std::string, std::less<>> names{
      {"narrativeqa", "NrtvQA"},       {"multifieldqa_en", "MF-en"}, {"hotpotqa", "HotpotQA"},
      {"musique", "MuSiQue"},          {"gov_report", "GovReport"},  {"multi_news", "MultiNews"},
      {"trec", "TREC"},                {"lsht", "LSHT"},             {"passage_count", "PCount"},
      {"passage_retrieval_en", "PRe"}, {"lcc", "LCC"},               {"repobench-p", "RB-P"}};
  const auto it = names.find(task);
  return it == names.end() ? std::string(task) : it->second;
}

}  // namespace attnbench::tasks
