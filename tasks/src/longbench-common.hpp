// Helpers shared by the LongBench generators of several categories: token concatenation,
// prompt assembly, the body's budget, fresh pseudo-words and multi-word answers.
#pragma once

#include "text.hpp"

#include <attnbench/tasks/task.hpp>

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace attnbench::tasks::longbench_detail {

using tokens = std::vector<token>;

inline const vocabulary& V() { return vocabulary::standard(); }
inline tokens T(std::string_view text) { return V().tokenize(text); }

tokens operator+(tokens a, std::span<const token> b);
tokens operator+(tokens a, token b);
void append(tokens& out, std::span<const token> x);

std::string text_of(std::span<const token> x);

// A prompt: <bos>, the intro, the body, newlines up to the length, the question.
sample assemble(std::uint32_t n, std::span<const token> intro, std::span<const token> body,
                std::span<const token> question, std::string_view task);

// The tokens left for the body besides <bos>, the intro and the question (task_error when
// fewer than 64).
std::size_t budget_of(std::uint32_t n, std::span<const token> intro, std::span<const token> question,
                      std::string_view task);

// Pseudo-words not in `taken` (which gets them).
std::vector<token> fresh_words(rng& r, std::size_t n, std::set<std::string>& taken);

// One to `most` fresh pseudo-words: a multi-token answer.
tokens answer_words(rng& r, std::set<std::string>& taken, std::size_t most);

}  // namespace attnbench::tasks::longbench_detail
