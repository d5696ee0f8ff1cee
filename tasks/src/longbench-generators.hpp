// The LongBench generators, one per dataset, defined in longbench-<category>.cpp and
// listed in the spec table of longbench.cpp.
#pragma once

#include <attnbench/kernels/random.hpp>
#include <attnbench/tasks/task.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace attnbench::tasks::longbench_detail {

// Single-document QA (longbench-single-doc.cpp).
sample narrativeqa(rng& r, std::uint32_t n);
sample multifieldqa_en(rng& r, std::uint32_t n);

// Multi-document QA (longbench-multi-doc.cpp).
sample hotpotqa(rng& r, std::uint32_t n);
sample musique(rng& r, std::uint32_t n);

// Summarisation (longbench-summarization.cpp).
sample gov_report(rng& r, std::uint32_t n);
sample multi_news(rng& r, std::uint32_t n);

// Few-shot classification (longbench-few-shot.cpp), and the tasks' fixed class names.
sample trec(rng& r, std::uint32_t n);
sample lsht(rng& r, std::uint32_t n);
const std::vector<std::string>& trec_classes();
const std::vector<std::string>& lsht_classes();

// Synthetic (longbench-synthetic.cpp).
sample passage_count(rng& r, std::uint32_t n);
sample passage_retrieval_en(rng& r, std::uint32_t n);

// Code (longbench-code.cpp).
sample lcc(rng& r, std::uint32_t n);
sample repobench_p(rng& r, std::uint32_t n);

}  // namespace attnbench::tasks::longbench_detail
