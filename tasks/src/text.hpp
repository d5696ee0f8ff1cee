// Building blocks shared by the task generators: items (pseudo-words, numbers, uuids),
// haystacks, needle depths and the interleaving of pieces into a haystack.
#pragma once

#include <attnbench/kernels/random.hpp>
#include <attnbench/tasks/task.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <cstdint>
#include <initializer_list>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace attnbench::tasks {

enum class haystack_kind { noise, essay, needles };
enum class item_kind { words, numbers, uuids };

// RULER's noise haystack, repeated.
inline constexpr std::string_view kNoise =
    "the grass is green . the sky is blue . the sun is yellow . here we go . there and back again . ";

std::string replace_all(std::string s, std::string_view from, std::string_view to);
std::string_view type_name(item_kind k);  // "words", "numbers", "uuids"

// A key or value as text and as tokens.
struct item {
  std::string text;
  std::vector<token> tokens;
};

// A pseudo-word, a number of `digits` digits without a leading zero, or a uuid
// (8-4-4-4-12 hex characters).
item make_item(item_kind kind, rng& r, std::uint32_t digits);
// Items of one kind that differ from each other and from `taken` (which gets them).
std::vector<item> distinct_items(item_kind kind, rng& r, std::uint32_t digits, std::size_t n,
                                 std::set<std::string>& taken);

std::vector<token> concat(std::initializer_list<std::span<const token>> parts);

// numpy.linspace(0, 100, 40): RULER's needle depths.
std::vector<double> default_depths();
// The `depths` task parameter: a non-empty array of percentages; task_params_error otherwise.
std::vector<double> parse_depths(const nlohmann::json& value);
// n depths drawn from `points` without replacement (refilled when used up).
std::vector<double> draw_depths(rng& r, const std::vector<double>& points, std::size_t n);

// Fisher-Yates with our generator (std::shuffle's output differs between libraries).
template <class V>
void shuffle(V& v, rng& r) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[r.below(i)]);
}

// n distinct pseudo-words in seeded order; once the vocabulary's are used up they repeat.
std::vector<token> draw_words(rng& r, std::size_t n);

// n tokens of RULER's noise haystack.
std::vector<token> noise(std::size_t n);
// n tokens of essay-like text: sentences of 6 to 18 English words with Zipf-like
// frequencies, commas, periods.
std::vector<token> essay(rng& r, std::size_t n);

// Puts pieces into a haystack, piece i just after the `boundary` token (or at the start)
// nearest depth_percent[i] of the haystack, and appends the result to out. Returns each
// piece's position in out, in piece order.
std::vector<std::size_t> interleave(std::vector<token>& out, const std::vector<token>& haystack,
                                    const std::vector<std::vector<token>>& pieces,
                                    const std::vector<double>& depth_percent, token boundary);

}  // namespace attnbench::tasks
