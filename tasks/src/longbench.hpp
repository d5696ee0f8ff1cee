// LongBench-style tasks (THUDM/LongBench): two per category, each named after the
// LongBench dataset it imitates and scored with that dataset's metric. What each analog
// keeps and changes, and which heads answer it, is in docs/tasks.md.
#pragma once

#include "text.hpp"

#include <attnbench/tasks/task.hpp>

namespace attnbench::tasks {

enum class longbench_metric { qa_f1, rouge_l, classification, count, retrieval, code_similarity };

struct longbench_spec {
  std::string_view name;
  std::string_view category;  // single_doc_qa, multi_doc_qa, summarization, few_shot, synthetic, code
  longbench_metric metric;
  std::uint32_t min_context_length;
  sample (*generate)(rng& r, std::uint32_t context_length);
  std::string_view description;
};

const std::vector<longbench_spec>& longbench_specs();
// The fixed class names of the few-shot classification tasks (trec: 50, lsht: 24).
const std::vector<std::string>& longbench_classes(std::string_view task);

class longbench_task final : public task {
 public:
  longbench_task(const longbench_spec& spec, const nlohmann::json& params);
  std::string_view name() const override { return spec_.name; }
  std::string_view metric() const override;
  std::uint32_t min_context_length() const override { return spec_.min_context_length; }
  sample make_sample(std::uint64_t seed, std::uint32_t context_length,
                     sample_domain domain = sample_domain::evaluation) const override;
  // LongBench's rule: the best score over the references, times 100.
  double score(std::string_view prediction, const std::vector<std::string>& references) const override;

 private:
  longbench_spec spec_;
};

}  // namespace attnbench::tasks
