// Words in messages: the name a user probably meant (for an unknown subcommand, config
// field, --set path, task or plugin, the error names the closest known one), and counts
// with their nouns ("1 seed", "2 seeds").
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace attnbench {

// Edits (insert, delete, substitute, swap two neighbours) that turn a into b.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to word when it is near enough to be a typing mistake (at most a
// third of the word's letters edited, at least one), else empty. The word itself is never
// offered. Ties: the first.
std::string closest_word(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean 'X'?)" for the closest candidate, or empty.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// "1 seed", "3 seeds"; plural defaults to singular + "s".
std::string count_of(std::size_t n, std::string_view singular, std::string_view plural = {});

}  // namespace attnbench
