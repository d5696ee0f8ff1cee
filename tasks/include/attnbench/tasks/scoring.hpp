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
