#include <attnbench/tasks/scoring.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <string>

namespace attnbench::tasks {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

double string_match_all(std::string_view prediction, const std::vector<std::string>& references) {
  if (references.empty()) return 0.0;
  const std::string pred = lower(prediction);
  std::size_t found = 0;
  for (const auto& r : references) found += pred.find(lower(r)) != std::string::npos;
  return 100.0 * static_cast<double>(found) / static_cast<double>(references.size());
}

double string_match_part(std::string_view prediction, const std::vector<std::string>& references) {
  const std::string pred = lower(prediction);
  for (const auto& r : references)
    if (pred.find(lower(r)) != std::string::npos) return 100.0;
  return 0.0;
}

}  // namespace attnbench::tasks

namespace attnbench::tasks::longbench {
namespace {

bool is_punct(char c) { return std::ispunct(static_cast<unsigned char>(c)) != 0; }

std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  std::string w;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!w.empty()) out.push_back(std::move(w)), w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) out.push_back(std::move(w));
  return out;
}

// Digit runs, as re.findall(r"\d+", s).
std::vector<std::string> numbers(std::string_view s) {
  std::vector<std::string> out;
  std::string run;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) run += c;
    else if (!run.empty()) out.push_back(std::move(run)), run.clear();
  }
  if (!run.empty()) out.push_back(std::move(run));
  return out;
}

double share_equal(const std::vector<std::string>& found, std::string_view want) {
  if (found.empty()) return 0.0;
  std::size_t right = 0;
  for (const auto& n : found) right += n == want;
  return static_cast<double>(right) / static_cast<double>(found.size());
}

// The words of one LCS of x and y, reconstructed from the end as the rouge package does
// (on a tie, step along y), as a set.
std::set<std::string> lcs_words(const std::vector<std::string>& x, const std::vector<std::string>& y) {
  const std::size_t n = x.size(), m = y.size();
  std::vector<std::vector<std::uint32_t>> t(n + 1, std::vector<std::uint32_t>(m + 1, 0));
  for (std::size_t i = 1; i <= n; ++i)
    for (std::size_t j = 1; j <= m; ++j)
      t[i][j] = x[i - 1] == y[j - 1] ? t[i - 1][j - 1] + 1 : std::max(t[i - 1][j], t[i][j - 1]);
  std::set<std::string> out;
  std::size_t i = n, j = m;
  while (i > 0 && j > 0) {
    if (x[i - 1] == y[j - 1]) out.insert(x[i - 1]), --i, --j;
    else if (t[i - 1][j] > t[i][j - 1]) --i;
    else --j;
  }
  return out;
}

// Sentences as the rouge package makes them: split at '.', pieces that are not empty,
// whitespace collapsed; words split at single spaces (a blank piece gives one "" word).
std::vector<std::vector<std::string>> rouge_sentences(std::string_view text) {
  std::vector<std::vector<std::string>> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t dot = std::min(text.find('.', start), text.size());
    const std::string_view piece = text.substr(start, dot - start);
    if (!piece.empty()) {
      auto words = split_ws(piece);
      if (words.empty()) words.emplace_back();
      out.push_back(std::move(words));
    }
    start = dot + 1;
  }
  return out;
}

}  // namespace

std::string normalize_answer(std::string_view text) {
  std::string s;
  for (char c : text)
    if (!is_punct(c)) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string out;
  for (const auto& w : split_ws(s)) {
    if (w == "a" || w == "an" || w == "the") continue;
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

double qa_f1(std::string_view prediction, std::string_view reference) {
  const auto p = split_ws(normalize_answer(prediction)), r = split_ws(normalize_answer(reference));
  std::map<std::string, int> counts;
  for (const auto& w : r) ++counts[w];
  std::size_t same = 0;
  for (const auto& w : p)
    if (auto it = counts.find(w); it != counts.end() && it->second > 0) --it->second, ++same;
  if (same == 0) return 0.0;
  const double precision = static_cast<double>(same) / static_cast<double>(p.size());
  const double recall = static_cast<double>(same) / static_cast<double>(r.size());
  return 2 * precision * recall / (precision + recall);
}

double rouge_l(std::string_view prediction, std::string_view reference) {
  const auto hyp = rouge_sentences(prediction), ref = rouge_sentences(reference);
  if (hyp.empty() || ref.empty()) return 0.0;  // the package raises; LongBench scores 0
  auto distinct = [](const std::vector<std::vector<std::string>>& sentences) {
    std::set<std::string> words;
    for (const auto& s : sentences) words.insert(s.begin(), s.end());
    return words.size();
  };
  const double m = static_cast<double>(distinct(ref)), n = static_cast<double>(distinct(hyp));
  std::set<std::string> united;
  for (const auto& r : ref)
    for (const auto& h : hyp)
      for (auto& w : lcs_words(r, h)) united.insert(w);
  const double lcs = static_cast<double>(united.size());
  const double recall = lcs / m, precision = lcs / n;
  return 2.0 * precision * recall / (precision + recall + 1e-8);
}

double classification(std::string_view prediction, std::string_view reference,
                      const std::vector<std::string>& all_classes) {
  std::vector<std::string> named;
  for (const auto& c : all_classes)
    if (prediction.find(c) != std::string_view::npos) named.push_back(c);
  // metrics.py removes from the list while iterating over it, which skips the entry after
  // each removal; the same here, so scores match LongBench's.
  for (std::size_t i = 0; i < named.size(); ++i)
    if (named[i] != reference && reference.find(named[i]) != std::string_view::npos)
      named.erase(named.begin() + static_cast<std::ptrdiff_t>(i));
  if (std::find(named.begin(), named.end(), reference) == named.end()) return 0.0;
  return 1.0 / static_cast<double>(named.size());
}

double count(std::string_view prediction, std::string_view reference) {
  return share_equal(numbers(prediction), reference);
}

double retrieval(std::string_view prediction, std::string_view reference) {
  // re.findall(r"Paragraph (\d+)", reference)[0], case-insensitive here.
  const std::string ref = lower(reference);
  for (auto at = ref.find("paragraph "); at != std::string::npos; at = ref.find("paragraph ", at + 1)) {
    const auto digits = std::string_view(ref).substr(at + 10);
    if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits.front()))) continue;
    return share_equal(numbers(prediction), numbers(digits).front());
  }
  return 0.0;
}

double code_similarity(std::string_view prediction, std::string_view reference) {
  std::string_view rest = prediction.substr(std::min(prediction.find_first_not_of('\n'), prediction.size()));
  std::string_view line;
  while (true) {
    const auto nl = rest.find('\n');
    const std::string_view l = rest.substr(0, nl);
    if (l.find('`') == std::string_view::npos && l.find('#') == std::string_view::npos &&
        l.find("//") == std::string_view::npos) {
      line = l;
      break;
    }
    if (nl == std::string_view::npos) break;
    rest = rest.substr(nl + 1);
  }
  if (line == reference) return 1.0;
  if (line.empty() || reference.empty()) return 0.0;
  // LCS of characters; ratio = 2 LCS / (|a| + |b|).
  std::vector<std::uint32_t> prev(reference.size() + 1, 0), cur(reference.size() + 1, 0);
  for (char a : line) {
    for (std::size_t j = 1; j <= reference.size(); ++j)
      cur[j] = a == reference[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  const double ratio = 2.0 * prev[reference.size()] / static_cast<double>(line.size() + reference.size());
  return std::nearbyint(100.0 * ratio) / 100.0;  // Python's round: ties to even
}

}  // namespace attnbench::tasks::longbench
