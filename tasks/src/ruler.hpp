// RULER's other five tasks: variable tracking (vt), common and frequent words extraction
// (cwe, fwe), and question answering over documents (qa_1 single-hop, qa_2 two-hop).
// Templates and parameters follow NVIDIA/RULER (scripts/data/synthetic/*.py and
// synthetic.yaml); what the analogs change, and which heads answer each task, is in
// docs/tasks.md.
#pragma once

#include "text.hpp"

#include <attnbench/tasks/task.hpp>

namespace attnbench::tasks {

// Helpers shared by ruler.cpp and ruler-qa.cpp.
namespace ruler_detail {

// The standard vocabulary's tokens of `text`.
std::vector<token> T(std::string_view text);
// a followed by b.
std::vector<token> operator+(std::vector<token> a, std::span<const token> b);
std::vector<token> operator+(std::vector<token> a, token b);
// The standard vocabulary's text of `tokens`.
std::string text_of(std::span<const token> tokens);
// A sample whose prompt holds <bos> (with room reserved for the context), with RULER's stop tokens.
sample start_sample(std::uint32_t context_length);

}  // namespace ruler_detail

// Shared by the five: a name, a metric and a `depths` parameter where needles have depths.
class ruler_task : public task {
 public:
  std::string_view name() const override { return name_; }
  std::string_view metric() const override { return metric_; }
  double score(std::string_view prediction, const std::vector<std::string>& references) const override;

 protected:
  ruler_task(std::string_view name, std::string_view metric) : name_(name), metric_(metric) {}
  // Throws task_error when the context cannot hold what the task needs.
  void require_length(std::uint32_t context_length) const;
  [[noreturn]] void unknown_param(const std::string& key, std::string_view known) const;
  std::string name_, metric_;
};

// vt: a chain of num_hops assignments from a 5-digit value through num_hops + 1
// variables, scattered in the noise haystack; all variables must be named.
class vt_task final : public ruler_task {
 public:
  explicit vt_task(const nlohmann::json& params);
  std::uint32_t min_context_length() const override;
  sample make_sample(std::uint64_t seed, std::uint32_t context_length,
                     sample_domain domain = sample_domain::evaluation) const override;

 private:
  std::vector<double> depths_;
  std::uint32_t num_chains_ = 1, num_hops_ = 4;
};

// cwe: a numbered list in which num_cw words appear freq_cw times each and the others
// freq_ucw times; the num_cw common words must be named.
class cwe_task final : public ruler_task {
 public:
  explicit cwe_task(const nlohmann::json& params);
  std::uint32_t min_context_length() const override;
  sample make_sample(std::uint64_t seed, std::uint32_t context_length,
                     sample_domain domain = sample_domain::evaluation) const override;

 private:
  std::uint32_t num_cw_ = 10, freq_cw_ = 30, freq_ucw_ = 3;
};

// fwe: coded words with Zipf(alpha) counts, the most frequent one replaced by dots; the
// three most frequent words must be named.
class fwe_task final : public ruler_task {
 public:
  explicit fwe_task(const nlohmann::json& params);
  std::uint32_t min_context_length() const override;
  sample make_sample(std::uint64_t seed, std::uint32_t context_length,
                     sample_domain domain = sample_domain::evaluation) const override;

 private:
  double alpha_ = 2.0;
  std::uint32_t vocab_size_ = 2000;
};

// qa_1 / qa_2: documents of essay text, each with one fact; one question about a gold
// document (qa_1) or a question that needs two (qa_2: a person found in one document,
// their city in another).
class qa_task final : public ruler_task {
 public:
  qa_task(bool two_hop, const nlohmann::json& params);
  std::uint32_t min_context_length() const override;
  sample make_sample(std::uint64_t seed, std::uint32_t context_length,
                     sample_domain domain = sample_domain::evaluation) const override;

 private:
  bool two_hop_;
  std::vector<double> depths_;
};

}  // namespace attnbench::tasks
