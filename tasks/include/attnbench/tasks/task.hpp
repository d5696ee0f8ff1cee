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

struct sample {
  std::vector<token> prompt;  // starts with <bos>; exactly the requested context length
  std::vector<std::string> references;
  std::uint32_t max_new_tokens = 16;
  std::vector<token> stop_tokens;  // generation ends after emitting one of these
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

class task {
 public:
  virtual ~task() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view metric() const = 0;  // e.g. "string_match_all"
  // Smallest context length (tokens) the task can build.
  virtual std::uint32_t min_context_length() const = 0;
  // Same seed and length give the same sample on every machine.
  virtual sample make_sample(std::uint64_t seed, std::uint32_t context_length) const = 0;
  // Score in [0, 100].
  virtual double score(std::string_view prediction, const std::vector<std::string>& references) const = 0;
};

struct task_info {
  std::string name;
  std::string description;
};

const std::vector<task_info>& task_catalogue();
// Throws std::out_of_range for an unknown name and task_params_error for bad params.
std::unique_ptr<task> make_task(std::string_view name, const nlohmann::json& params);

}  // namespace attnbench::tasks
