// A task makes seeded samples (a prompt of tokens, reference answers, how many tokens
// to generate) and scores a decoded prediction against the references. It never sees
// the model, the cache or a plan: the answer has to come out of attention.
#pragma once

#include <attnbench/tasks/vocabulary.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace attnbench::tasks {

// How a sample is decoded: the prompt, then a generation; then for each follow-up, its
// tokens and another generation. A generation emits up to max_new_tokens tokens and ends
// at a stop token, which is not kept. With branches > 1 a generation reads the top
// candidates of its steps: where the readout's runner-up is close to the best, the
// runner-up starts another continuation, until `branches` continuations exist (several
// values for one key). "Close" means a logit of at least branch_ratio of the best (0 for
// questions that name how many answers they want) and clear of the noise floor. The
// prediction is every continuation's text, joined by ", ".
// In a follow-up, stands for the tokens the previous generation produced (its first
// continuation): a prompt that restates the model's own answer, right or wrong.
inline constexpr token kLastAnswer = -1;

struct sample {
  std::vector<token> prompt;  // starts with <bos>; exactly the requested context length
  std::vector<std::vector<token>> follow_ups;
  std::uint32_t branches = 1;
  float branch_ratio = 0.3f;
  std::vector<std::string> references;
  std::uint32_t max_new_tokens = 16;  // per continuation
  std::vector<token> stop_tokens;
  // Score only the last generation (multi-hop questions whose follow-ups restate the
  // intermediate answers); the whole transcript is still recorded.
  bool score_final_generation = false;
  // Joins the continuations (and generations) into the prediction.
  std::string branch_separator = ", ";
  nlohmann::json info = nlohmann::json::object();  // needle depth and position, key, ...
};

// A bad task parameter: pointer is a JSON pointer inside the task's params object.
struct task_params_error : std::runtime_error {
  task_params_error(std::string pointer_in_params, const std::string& message)
      : std::runtime_error(message), pointer(std::move(pointer_in_params)) {}
  std::string pointer;
};

// A request the task cannot satisfy, e.g. a context too short for its template.
struct task_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The family a sample's random stream comes from (rng's domain). Every command that
// evaluates (run, stats, calibrate, dump-kv) draws evaluation samples; training corpora
// draw training samples, whose streams never coincide with an evaluation sample's for
// any seed.
enum class sample_domain : std::uint8_t { evaluation = 0, training = 1 };

class task {
 public:
  virtual ~task() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view metric() const = 0;  // e.g. "string_match_all"
  // Smallest context length (tokens) the task can build.
  virtual std::uint32_t min_context_length() const = 0;
  // Same seed, length and domain give the same sample on every machine.
  virtual sample make_sample(std::uint64_t seed, std::uint32_t context_length,
                             sample_domain domain = sample_domain::evaluation) const = 0;
  // Sample `index` of a cell, from its seed (what make_indexed_sample calls). A task
  // whose samples can be spread over a cell (the needle tasks' depth_spread) uses the
  // index; the others make the seed's sample.
  virtual sample make_sample_at(std::uint64_t seed, std::uint32_t context_length, std::uint32_t index,
                                sample_domain domain) const {
    return make_sample(seed, context_length, domain);
  }
  // Score in [0, 100].
  virtual double score(std::string_view prediction, const std::vector<std::string>& references) const = 0;
};

struct task_info {
  std::string name;
  std::string description;
};

const std::vector<task_info>& task_catalogue();
// The LongBench category of a task (single_doc_qa, multi_doc_qa, summarization,
// few_shot, synthetic, code), or "" for a task outside the LongBench-style suite.
std::string_view longbench_category(std::string_view task);
// Throws std::out_of_range for an unknown name and task_params_error for bad params.
std::unique_ptr<task> make_task(std::string_view name, const nlohmann::json& params);

// The seed of sample `index` of a task at a context length under a run seed. Every
// command that makes samples (run, stats, calibrate, dump-kv) derives them through
// make_indexed_sample, so each sees the same tokens for the same (task, length, seed,
// sample): a sample depends on these four only, never on the policy or the batch.
std::uint64_t sample_seed(std::uint64_t seed, std::string_view task_name, std::uint32_t context_length,
                          std::uint32_t index);
sample make_indexed_sample(const task& t, std::uint64_t seed, std::uint32_t context_length, std::uint32_t index,
                           sample_domain domain = sample_domain::evaluation);

}  // namespace attnbench::tasks
