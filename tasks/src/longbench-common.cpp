// Helpers shared by the LongBench generators of several categories (longbench-common.hpp).
#include "longbench-common.hpp"

namespace attnbench::tasks::longbench_detail {

tokens operator+(tokens a, std::span<const token> b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
tokens operator+(tokens a, token b) {
  a.push_back(b);
  return a;
}
void append(tokens& out, std::span<const token> x) { out.insert(out.end(), x.begin(), x.end()); }

std::string text_of(std::span<const token> x) { return V().detokenize(x); }

sample assemble(std::uint32_t n, std::span<const token> intro, std::span<const token> body,
                std::span<const token> question, std::string_view task) {
  const std::size_t used = 1 + intro.size() + body.size() + question.size();
  if (used > n)
    throw task_error(std::string(task) + ": the context needs " + std::to_string(used) + " tokens, more than " +
                     std::to_string(n));
  sample s;
  s.prompt.reserve(n);
  s.prompt.push_back(V().bos());
  append(s.prompt, intro);
  append(s.prompt, body);
  s.prompt.insert(s.prompt.end(), n - used, V().newline());
  append(s.prompt, question);
  s.stop_tokens = {V().id("."), V().newline(), V().eos()};
  return s;
}

std::size_t budget_of(std::uint32_t n, std::span<const token> intro, std::span<const token> question,
                      std::string_view task) {
  const std::size_t fixed = 1 + intro.size() + question.size();
  if (fixed + 64 > n)
    throw task_error(std::string(task) + ": " + std::to_string(n) + " tokens leave no room for the context");
  return n - fixed;
}

std::vector<token> fresh_words(rng& r, std::size_t n, std::set<std::string>& taken) {
  std::vector<token> out;
  for (const auto& it : distinct_items(item_kind::words, r, 0, n, taken)) out.push_back(it.tokens[0]);
  return out;
}

tokens answer_words(rng& r, std::set<std::string>& taken, std::size_t most) {
  return fresh_words(r, 1 + r.below(most), taken);
}

}  // namespace attnbench::tasks::longbench_detail
