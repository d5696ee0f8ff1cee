#include "text.hpp"

#include <algorithm>
#include <cmath>

namespace attnbench::tasks {

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string_view type_name(item_kind k) {
  switch (k) {
    case item_kind::words: return "words";
    case item_kind::numbers: return "numbers";
    case item_kind::uuids: return "uuids";
  }
  return "";
}

item make_item(item_kind kind, rng& r, std::uint32_t digits) {
  const auto& v = vocabulary::standard();
  item out;
  switch (kind) {
    case item_kind::words: {
      const token t = v.pseudo_words()[r.below(v.pseudo_words().size())];
      out.text = v.text(t);
      out.tokens = {t};
      break;
    }
    case item_kind::numbers: {
      out.text = std::to_string(1 + r.below(9));
      for (std::uint32_t i = 1; i < digits; ++i) out.text += std::to_string(r.below(10));
      for (char c : out.text) out.tokens.push_back(v.id(std::string(1, c)));
      break;
    }
    case item_kind::uuids: {
      constexpr std::string_view hex = "0123456789abcdef";
      for (int group : {8, 4, 4, 4, 12}) {
        if (!out.text.empty()) out.text += '-';
        for (int i = 0; i < group; ++i) out.text += hex[r.below(16)];
      }
      for (char c : out.text) out.tokens.push_back(v.id(std::string(1, c)));
      break;
    }
  }
  return out;
}

std::vector<item> distinct_items(item_kind kind, rng& r, std::uint32_t digits, std::size_t n,
                                 std::set<std::string>& taken) {
  std::vector<item> out;
  // Pseudo-words are 8000; a request that would exhaust them is an error, not a hang.
  std::size_t misses = 0;
  while (out.size() < n) {
    item it = make_item(kind, r, digits);
    if (taken.insert(it.text).second) {
      out.push_back(std::move(it));
      misses = 0;
    } else if (++misses > 100000) {
      throw task_error("ran out of distinct " + std::string(type_name(kind)) + " after " + std::to_string(taken.size()) +
                       "; the context asks for more distinct items than the vocabulary has");
    }
  }
  return out;
}

std::vector<token> concat(std::initializer_list<std::span<const token>> parts) {
  std::vector<token> out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<token> draw_words(rng& r, std::size_t n) {
  std::vector<token> pool = vocabulary::standard().pseudo_words();
  std::vector<token> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = i % pool.size();
    if (k == 0 && i > 0) pool = vocabulary::standard().pseudo_words();
    std::swap(pool[k], pool[k + r.below(pool.size() - k)]);
    out.push_back(pool[k]);
  }
  return out;
}

std::vector<double> default_depths() {
  std::vector<double> d(40);
  for (int i = 0; i < 40; ++i) d[i] = 100.0 * i / 39.0;  // numpy.linspace(0, 100, 40)
  return d;
}

std::vector<token> essay(rng& r, std::size_t n) {
  const auto& v = vocabulary::standard();
  const auto& words = v.words();
  const token period = v.id(".");
  const token comma = v.id(",");
  std::vector<token> out;
  out.reserve(n + 20);
  while (out.size() < n) {
    const auto len = 6 + r.below(13);
    for (std::uint64_t i = 0; i < len; ++i) {
      // Zipf-like: index = floor(N^u) - 1 favours the first (common) words.
      const double u = r.uniform();
      const auto idx = static_cast<std::size_t>(std::pow(static_cast<double>(words.size()), u)) - 1;
      out.push_back(words[std::min(idx, words.size() - 1)]);
      if (i + 2 < len && r.below(9) == 0) out.push_back(comma);
    }
    out.push_back(period);
  }
  out.resize(n);
  return out;
}


std::vector<double> parse_depths(const nlohmann::json& value) {
  if (!value.is_array() || value.empty())
    throw task_params_error("/depths", "expected a non-empty array of percentages, got " + value.dump());
  std::vector<double> out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_number() || value[i].get<double>() < 0 || value[i].get<double>() > 100)
      throw task_params_error("/depths/" + std::to_string(i), "expected a number in [0, 100], got " + value[i].dump());
    out.push_back(value[i].get<double>());
  }
  return out;
}

std::vector<double> draw_depths(rng& r, const std::vector<double>& points, std::size_t n) {
  std::vector<double> pool = points, out(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (pool.empty()) pool = points;
    const auto at = r.below(pool.size());
    out[i] = pool[at];
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(at));
  }
  return out;
}

std::vector<token> noise(std::size_t n) {
  const auto pattern = vocabulary::standard().tokenize(kNoise);
  std::vector<token> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = pattern[i % pattern.size()];
  return out;
}

std::vector<std::size_t> interleave(std::vector<token>& out, const std::vector<token>& haystack,
                                    const std::vector<std::vector<token>>& pieces,
                                    const std::vector<double>& depth_percent, token boundary) {
  const std::size_t n = haystack.size();
  std::vector<std::size_t> boundaries{0};
  for (std::size_t i = 0; i < n; ++i)
    if (haystack[i] == boundary) boundaries.push_back(i + 1);
  auto distance = [](std::size_t a, std::size_t b) { return a > b ? a - b : b - a; };
  auto nearest = [&](double d) {
    const auto target = static_cast<std::size_t>(std::llround(d / 100.0 * static_cast<double>(n)));
    // boundaries is sorted: the nearest is the first at or after target, or the one before.
    const auto it = std::lower_bound(boundaries.begin(), boundaries.end(), target);
    if (it == boundaries.end()) return boundaries.back();
    if (it == boundaries.begin() || distance(*it, target) < distance(*(it - 1), target)) return *it;
    return *(it - 1);
  };
  std::vector<std::pair<std::size_t, std::size_t>> inserts;  // (haystack offset, piece index)
  for (std::size_t i = 0; i < pieces.size(); ++i) inserts.emplace_back(nearest(depth_percent[i]), i);
  std::stable_sort(inserts.begin(), inserts.end());
  std::vector<std::size_t> positions(pieces.size());
  std::size_t from = 0;
  for (const auto& [offset, i] : inserts) {
    out.insert(out.end(), haystack.begin() + static_cast<std::ptrdiff_t>(from),
               haystack.begin() + static_cast<std::ptrdiff_t>(offset));
    from = offset;
    positions[i] = out.size();
    out.insert(out.end(), pieces[i].begin(), pieces[i].end());
  }
  out.insert(out.end(), haystack.begin() + static_cast<std::ptrdiff_t>(from), haystack.end());
  return positions;
}

}  // namespace attnbench::tasks
