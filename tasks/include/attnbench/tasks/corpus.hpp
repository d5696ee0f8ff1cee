// Training text for a model whose attention is learned (issue 24): samples of the
// project's own tasks drawn in the training domain (sample_domain::training, so none is an
// evaluation sample), written out with their answers, and plain essay text.
#pragma once

#include <attnbench/tasks/task.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace attnbench::tasks {

// The pseudo-task of plain text: essay-like sentences, no question and no answer.
inline constexpr const char* kHaystackTask = "haystack";

struct corpus_spec {
  std::vector<std::pair<std::string, nlohmann::json>> tasks;  // name and params, or kHaystackTask
  std::vector<std::uint32_t> lengths;                         // context lengths drawn from
  std::vector<double> length_weights;                         // one per length, > 0
  std::uint64_t seed = 0;
};

// One training sequence: the prompt, then each generation's answer followed by the
// task's stop token (and for multi-hop samples the follow-up that restates it, whose
// leading stop token, if it has one, is the stop). answers are the [begin, end) spans of
// answer and stop tokens, where a loss on answers is taken.
struct corpus_sequence {
  std::vector<token> tokens;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> answers;
  std::uint32_t task = 0;  // index into corpus_spec::tasks
  std::uint32_t context_length = 0;
  std::uint64_t sample_seed = 0;
};

// A spec that cannot be written: pointer is a JSON pointer into the corpus config
// ("/tasks/2", "/context_lengths/1").
struct corpus_error : task_error {
  corpus_error(std::string json_pointer, const std::string& message)
      : task_error(message), pointer(std::move(json_pointer)) {}
  std::string pointer;
};

// A spec's tasks, built once. Every task is written once at every length of the spec it
// fits, so a task that cannot be written there fails here, before anything is written
// (corpus_error).
class corpus_writer {
 public:
  explicit corpus_writer(corpus_spec spec);
  const corpus_spec& spec() const { return spec_; }
  // Sequence i: its length drawn by weight and its task uniformly among those that fit
  // that length, both from the corpus seed; the sample from sample_seed(seed, task,
  // length, i) in the training domain. The same spec and i give the same sequence on
  // every machine.
  corpus_sequence sequence(std::uint64_t i) const;

 private:
  corpus_spec spec_;
  std::vector<std::unique_ptr<task>> tasks_;  // null for kHaystackTask
};

// A sample written as training text (see corpus_sequence). Where the readout branches
// into several answers (multivalue, cwe, fwe), one of them, references[choice % n], is
// written. A sample whose follow-ups restate answers needs one reference per generation;
// otherwise task_error.
corpus_sequence write_sample(const sample& s, std::string_view task_name, std::uint64_t choice = 0);

}  // namespace attnbench::tasks
