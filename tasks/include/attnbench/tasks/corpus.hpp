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
// The pseudo-task of repeated segments: random segments of `segment_tokens` tokens (digits
// or pseudo-words, param `alphabet`) in essay text, then each again in another order;
// every token of a repeat after its first is an answer. It teaches copying from context
// by content (induction), which retrieval builds on; with digits a segment's tokens recur
// inside it, so a copy must match several tokens back, as a needle's value must be found
// by the key three tokens before it.
inline constexpr const char* kRepeatTask = "repeat";

// A repeat task's params: {"alphabet": "digits" | "words", "segment_tokens": 4-256}.
struct repeat_params {
  bool digits = true;
  std::uint32_t segment_tokens = 24;
};
// task_params_error (naming the param's JSON pointer) for unknown or invalid params.
repeat_params parse_repeat_params(const nlohmann::json& params);

struct corpus_spec {
  std::vector<std::pair<std::string, nlohmann::json>> tasks;  // name and params, kHaystackTask or kRepeatTask
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
  // The shortest context task k fits: the task's own minimum; two tokens for plain text;
  // a segment and its repeat with room for text for a repeat task.
  std::uint32_t min_length(std::size_t k) const;

  corpus_spec spec_;
  std::vector<std::unique_ptr<task>> tasks_;  // null for kHaystackTask and kRepeatTask
  std::vector<repeat_params> repeats_;        // per task; used for kRepeatTask
};

// A sample written as training text (see corpus_sequence). Where the readout branches
// into several answers (multivalue, cwe, fwe), one of them, references[choice % n], is
// written. A sample whose follow-ups restate answers needs one reference per generation;
// otherwise task_error.
corpus_sequence write_sample(const sample& s, std::string_view task_name, std::uint64_t choice = 0);

}  // namespace attnbench::tasks
