// RULER's scoring rules, 0 to 100 (RULER, eval/synthetic/constants.py):
// string_match_all: the share of references found in the prediction;
// string_match_part: 100 if any reference is found. Both case-insensitive.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace attnbench::tasks {

double string_match_all(std::string_view prediction, const std::vector<std::string>& references);
double string_match_part(std::string_view prediction, const std::vector<std::string>& references);

}  // namespace attnbench::tasks

// LongBench's metrics (THUDM/LongBench, metrics.py), 0 to 1 per reference; a LongBench
// task scores a prediction by the best reference, times 100.
namespace attnbench::tasks::longbench {

// Lowercase, drop ASCII punctuation, drop the articles a, an, the, collapse whitespace.
std::string normalize_answer(std::string_view text);
// Token F1 of the normalised texts (multiset overlap).
double qa_f1(std::string_view prediction, std::string_view reference);
// ROUGE-L F as the `rouge` package (pltrdy) computes it: sentences split at '.', words at
// single spaces, case kept; summary-level union LCS over distinct words.
double rouge_l(std::string_view prediction, std::string_view reference);
// Credit 1/k when the reference class is among the k classes named in the prediction;
// named classes that are proper substrings of the reference are dropped as metrics.py
// drops them (removing while iterating, so the entry after each removal stays).
double classification(std::string_view prediction, std::string_view reference,
                      const std::vector<std::string>& all_classes);
// The share of the prediction's numbers (digit runs) that equal the reference count.
double count(std::string_view prediction, std::string_view reference);
// The share of the prediction's numbers that equal the reference's "paragraph N" number.
double retrieval(std::string_view prediction, std::string_view reference);
// fuzz.ratio of the prediction's first line without '`', '#' or "//" and the reference:
// round(100 * 2 * LCS / (|a| + |b|)) over characters (python-Levenshtein's ratio), / 100.
double code_similarity(std::string_view prediction, std::string_view reference);

}  // namespace attnbench::tasks::longbench
