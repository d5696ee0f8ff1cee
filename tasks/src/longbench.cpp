// LongBench's six categories as generators for the synthetic model. Prompts follow
// LongBench's templates (config/dataset2prompt.json) where the model allows; the model
// copies forwards only (a retrieval head returns the token after a context it matches),
// so an answer prefix restates the frame that stands before the answer in the context,
// as in the RULER analogs. docs/tasks.md says, task by task, which heads answer and
// where the analog is easier or harder than its LongBench counterpart.
// The generators are in longbench-<category>.cpp; this file holds the spec table and the task.
#include "longbench.hpp"

#include "longbench-generators.hpp"

#include <attnbench/tasks/scoring.hpp>

#include <algorithm>

namespace attnbench::tasks {

const std::vector<longbench_spec>& longbench_specs() {
  using m = longbench_metric;
  using namespace longbench_detail;
  static const std::vector<longbench_spec> specs{
      {"narrativeqa", "single_doc_qa", m::qa_f1, 640, narrativeqa,
       "LongBench NarrativeQA: an attribute of one of six recurring characters in a story (qa_f1)"},
      {"multifieldqa_en", "single_doc_qa", m::qa_f1, 640, multifieldqa_en,
       "LongBench MultiFieldQA-en: one field of one entity in a document of prose and records (qa_f1)"},
      {"hotpotqa", "multi_doc_qa", m::qa_f1, 1024, hotpotqa,
       "LongBench HotpotQA: two hops through a bridge entity across passages with distractors (qa_f1)"},
      {"musique", "multi_doc_qa", m::qa_f1, 1024, musique,
       "LongBench MuSiQue: three hops across passages with distractors (qa_f1)"},
      {"gov_report", "summarization", m::rouge_l, 1024, gov_report,
       "LongBench GovReport: list the five topic words of a long report, most frequent first (rouge_l)"},
      {"multi_news", "summarization", m::rouge_l, 1024, multi_news,
       "LongBench Multi-News: list the five topic words of several articles (rouge_l)"},
      {"trec", "few_shot", m::classification, 1024, trec,
       "LongBench TREC: 50-class question typing from in-context examples (classification)"},
      {"lsht", "few_shot", m::classification, 1024, lsht,
       "LongBench LSHT: 24-class news classification from in-context examples (classification)"},
      {"passage_count", "synthetic", m::count, 1024, passage_count,
       "LongBench PassageCount: how many unique paragraphs among repeats (count)"},
      {"passage_retrieval_en", "synthetic", m::retrieval, 1024, passage_retrieval_en,
       "LongBench PassageRetrieval-en: which of 30 paragraphs an abstract comes from (retrieval)"},
      {"lcc", "code", m::code_similarity, 640, lcc,
       "LongBench LCC: the next line of a code block repeated from far back (code_sim)"},
      {"repobench-p", "code", m::code_similarity, 1024, repobench_p,
       "LongBench RepoBench-P: the arguments of a call to a function defined in another file (code_sim)"},
  };
  return specs;
}

std::string_view longbench_category(std::string_view task) {
  for (const auto& s : longbench_specs())
    if (s.name == task) return s.category;
  return {};
}

const std::vector<std::string>& longbench_classes(std::string_view task) {
  static const std::vector<std::string> none;
  if (task == "trec") return longbench_detail::trec_classes();
  if (task == "lsht") return longbench_detail::lsht_classes();
  return none;
}

longbench_task::longbench_task(const longbench_spec& spec, const nlohmann::json& params) : spec_(spec) {
  for (const auto& [key, value] : params.items())
    throw task_params_error("/" + key, "unknown parameter for " + std::string(spec.name) + " (it takes none)");
}

std::string_view longbench_task::metric() const {
  switch (spec_.metric) {
    case longbench_metric::qa_f1: return "qa_f1";
    case longbench_metric::rouge_l: return "rouge_l";
    case longbench_metric::classification: return "classification";
    case longbench_metric::count: return "count";
    case longbench_metric::retrieval: return "retrieval";
    case longbench_metric::code_similarity: return "code_sim";
  }
  return "";
}

sample longbench_task::make_sample(std::uint64_t seed, std::uint32_t context_length, sample_domain domain) const {
  if (context_length < spec_.min_context_length)
    throw task_error(std::string(spec_.name) + " needs a context of at least " +
                     std::to_string(spec_.min_context_length) + " tokens, got " + std::to_string(context_length));
  rng r(seed, static_cast<std::uint64_t>(domain));
  return spec_.generate(r, context_length);
}

double longbench_task::score(std::string_view prediction, const std::vector<std::string>& references) const {
  double best = 0.0;
  for (const auto& ref : references) {
    double x = 0.0;
    switch (spec_.metric) {
      case longbench_metric::qa_f1: x = longbench::qa_f1(prediction, ref); break;
      case longbench_metric::rouge_l: x = longbench::rouge_l(prediction, ref); break;
      case longbench_metric::classification:
        x = longbench::classification(prediction, ref, longbench_classes(spec_.name));
        break;
      case longbench_metric::count: x = longbench::count(prediction, ref); break;
      case longbench_metric::retrieval: x = longbench::retrieval(prediction, ref); break;
      case longbench_metric::code_similarity: x = longbench::code_similarity(prediction, ref); break;
    }
    best = std::max(best, x);
  }
  return 100.0 * best;
}

}  // namespace attnbench::tasks
