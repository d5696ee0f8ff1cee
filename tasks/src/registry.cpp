#include "longbench.hpp"
#include "niah.hpp"
#include "ruler.hpp"

#include <attnbench/tasks/task.hpp>

namespace attnbench::tasks {

const std::vector<task_info>& task_catalogue() {
  static const std::vector<task_info> catalogue = [] {
    std::vector<task_info> out;
    for (const auto& spec : niah_specs())
      out.push_back({std::string(spec.name), std::string(spec.description) + " (string_match_all)"});
    out.push_back({"vt", "RULER variable tracking: a chain of 4 hops from a 5-digit value, all 5 variables named "
                         "(string_match_all)"});
    out.push_back({"cwe", "RULER common words: a numbered list, 10 words 30 times each, the others 3 times; name the "
                          "10 (string_match_all)"});
    out.push_back({"fwe", "RULER frequent words: coded words with Zipf(2) counts; name the 3 most frequent "
                          "(string_match_all)"});
    out.push_back({"qa_1", "RULER QA (SQuAD analog): documents with one fact each, a question about one of them "
                           "(string_match_part)"});
    out.push_back({"qa_2", "RULER QA (HotpotQA analog): a two-hop question over two documents (string_match_part)"});
    for (const auto& spec : longbench_specs())
      out.push_back({std::string(spec.name), std::string(spec.description)});
    return out;
  }();
  return catalogue;
}

std::unique_ptr<task> make_task(std::string_view name, const nlohmann::json& params) {
  for (const auto& spec : niah_specs())
    if (spec.name == name) return std::make_unique<niah_task>(spec, params);
  if (name == "vt") return std::make_unique<vt_task>(params);
  if (name == "cwe") return std::make_unique<cwe_task>(params);
  if (name == "fwe") return std::make_unique<fwe_task>(params);
  if (name == "qa_1") return std::make_unique<qa_task>(false, params);
  if (name == "qa_2") return std::make_unique<qa_task>(true, params);
  for (const auto& spec : longbench_specs())
    if (spec.name == name) return std::make_unique<longbench_task>(spec, params);
  throw std::out_of_range("unknown task '" + std::string(name) + "'");
}

}  // namespace attnbench::tasks
