#include <attnbench/kernels/random.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <cctype>
#include <stdexcept>

namespace attnbench::tasks {
namespace {

// English words of the haystacks and prompt templates (RULER's noise haystack and
// needle templates, lowercased).
constexpr std::string_view kWords[] = {
    "the", "grass", "is", "green", "sky", "blue", "sun", "yellow", "here", "we", "go", "there",
    "and", "back", "again", "one", "of", "special", "magic", "numbers", "number", "for", "what",
    "mentioned", "in", "provided", "text", "some", "are", "hidden", "within", "following",
    "make", "sure", "to", "memorize", "it", "i", "will", "quiz", "you", "about", "afterwards",
    "answer", "words", "word", "uuids", "uuid", "value", "values", "key", "keys", "all", "a",
    "list", "most", "common", "frequent", "variable", "assigned", "question", "document",
    "based", "on", "only", "give", "me", "find",
    // Essay-like haystacks (RULER uses Paul Graham's essays): common English words.
    "people", "time", "work", "startup", "startups", "idea", "ideas", "good", "great", "new",
    "way", "thing", "things", "made", "know", "think", "want", "like", "more", "less", "than",
    "that", "this", "they", "them", "their", "when", "why", "how", "if", "or", "but", "not",
    "no", "so", "as", "at", "by", "with", "from", "be", "been", "was", "were", "has", "have",
    "had", "do", "does", "did", "can", "could", "would", "should", "may", "might", "must",
    "just", "also", "even", "very", "much", "many", "few", "other", "any", "each", "every",
    "first", "last", "long", "short", "hard", "easy", "right", "wrong", "old", "young", "big",
    "small", "best", "better", "worse", "money", "company", "companies", "founder", "founders",
    "investor", "investors", "product", "users", "user", "market", "school", "program",
    "programs", "language", "languages", "write", "writing", "writer", "essay", "essays",
    "read", "reading", "learn", "learned", "problem", "problems", "answers", "world", "life",
    "year", "years", "day", "days", "part", "place", "case", "point", "fact", "reason", "kind",
    "sort", "lot", "end", "start", "look", "seem", "seems", "turn", "turns", "out", "up",
    "down", "into", "over", "after", "before", "because", "though", "while", "where", "who",
    "which", "those", "these", "then", "now", "still", "never", "always", "often", "usually",
    "probably", "actually", "really", "rather", "enough", "together", "someone", "something",
    "nothing", "everyone", "anything", "working", "build", "building", "grow", "growth", "fast",
    "slow", "change", "changes", "questions", "city", "lives", "live", "works", "born",
    "capital", "color", "favorite", "partner", "friend", "owns", "owner", "variables", "var",
    "count", "total", "passage", "passages", "summary", "said",
};

// Words added after the pseudo-words, so that the ids (and the model's embeddings) of
// everything before them stayed as they were: the templates of vt, cwe, fwe and qa.
constexpr std::string_view kLaterWords[] = {
    "above", "according", "chain", "chains", "assignment", "track", "below", "numbered",
    "appear", "others", "ones", "appearing", "top", "coded", "frequency", "three",
    "frequently", "appeared", "provide", "explanation", "please", "ignore", "dots", "given",
    "documents", "output", "director", "film", "founded", "birthplace", "anthem", "mayor",
    "river", "live", "does", "where", "following", "then",
};

// Added for the LongBench-style suite, again after everything else: its templates, and
// the symbols of its code-like tasks (each symbol a token of the punctuation class).
constexpr std::string_view kLongBenchWords[] = {
    "story", "concisely", "character", "records", "record", "passage", "maker", "year",
    "born", "who", "film", "report", "topic", "main", "news", "summary", "type", "category",
    "examples", "example", "paragraph", "paragraphs", "abstract", "unique", "duplicates",
    "removing", "enter", "def", "self", "return", "import", "file", "py", "code", "next",
    "line", "complete", "mayor", "works", "school", "classify", "label", "repeat", "sentence",
    "carefully", "determine", "final", "several", "articles", "below", "an", "its", "briefly",
};
constexpr std::string_view kCodeSymbols = "=+*[]<>";

constexpr std::string_view kPunctuation = ".,:;?!'\"()-";
constexpr std::size_t kPseudoWords = 8000;
constexpr std::uint64_t kPseudoWordSeed = 0x61747462656e6368ull;  // "attbench"

bool attaches_left(std::string_view s) {
  return s == "." || s == "," || s == ":" || s == ";" || s == "?" || s == "!" || s == ")" || s == "-" || s == "]";
}

// Digits and single letters glue into one run ("4", "f", "2" -> "4f2"): numbers and the
// hex characters of uuids.
bool is_char_token(token_class k) { return k == token_class::digit || k == token_class::letter; }

}  // namespace

const vocabulary& vocabulary::standard() {
  static const vocabulary v;
  return v;
}

token vocabulary::add(std::string text, token_class kind) {
  const auto id = static_cast<token>(strings_.size());
  ids_.emplace(text, id);
  strings_.push_back(std::move(text));
  kinds_.push_back(kind);
  return id;
}

vocabulary::vocabulary() {
  bos_ = add("<bos>", token_class::special);
  eos_ = add("<eos>", token_class::special);
  newline_ = add("<nl>", token_class::special);
  for (char c : kPunctuation) add(std::string(1, c), token_class::punctuation);
  for (char c = '0'; c <= '9'; ++c) digits_.push_back(add(std::string(1, c), token_class::digit));
  for (char c = 'a'; c <= 'z'; ++c)
    if (!ids_.count(std::string(1, c))) add(std::string(1, c), token_class::letter);
  for (auto w : kWords)
    if (!ids_.count(std::string(w))) words_.push_back(add(std::string(w), token_class::word));

  // Pseudo-words: 2 to 4 consonant-vowel syllables, deduplicated against everything.
  constexpr std::string_view consonants = "bdfgklmnprstvz";
  constexpr std::string_view vowels = "aeiou";
  rng r(kPseudoWordSeed);
  while (pseudo_words_.size() < kPseudoWords) {
    const auto syllables = 2 + r.below(3);
    std::string w;
    for (std::uint64_t i = 0; i < syllables; ++i) {
      w += consonants[r.below(consonants.size())];
      w += vowels[r.below(vowels.size())];
    }
    if (!ids_.count(w)) pseudo_words_.push_back(add(std::move(w), token_class::pseudo_word));
  }
  for (auto w : kLaterWords)
    if (!ids_.count(std::string(w))) words_.push_back(add(std::string(w), token_class::word));
  // Not in words(): essays (which draw from it) stay as they were.
  for (auto w : kLongBenchWords)
    if (!ids_.count(std::string(w))) add(std::string(w), token_class::word);
  for (char c : kCodeSymbols) add(std::string(1, c), token_class::punctuation);
}

token vocabulary::id(std::string_view word) const {
  auto it = ids_.find(std::string(word));
  if (it == ids_.end()) throw std::out_of_range("word not in the vocabulary: '" + std::string(word) + "'");
  return it->second;
}

std::vector<token> vocabulary::tokenize(std::string_view text) const {
  std::vector<token> out;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) out.push_back(id(word));
    word.clear();
  };
  for (char raw : text) {
    const auto c = static_cast<unsigned char>(raw);
    if (raw == '\n') {
      flush();
      out.push_back(newline_);
    } else if (std::isspace(c)) {
      flush();
    } else if (std::isdigit(c) || kPunctuation.find(raw) != std::string_view::npos ||
               kCodeSymbols.find(raw) != std::string_view::npos) {
      flush();
      out.push_back(id(std::string(1, raw)));
    } else {
      word += static_cast<char>(std::tolower(c));
    }
  }
  flush();
  return out;
}

std::string vocabulary::detokenize(std::span<const token> tokens) const {
  std::string out;
  token prev = -1;
  for (token t : tokens) {
    if (t == bos_ || t == eos_) continue;
    if (t == newline_) {
      out += '\n';
      prev = t;
      continue;
    }
    const std::string& s = text(t);
    const bool glue = out.empty() || out.back() == '\n' || attaches_left(s) ||
                      (prev >= 0 && (text(prev) == "(" || text(prev) == "[")) ||
                      (prev >= 0 && text(prev) == "-") ||
                      (prev >= 0 && is_char_token(kind(prev)) && is_char_token(kind(t)));
    if (!glue) out += ' ';
    out += s;
    prev = t;
  }
  return out;
}

}  // namespace attnbench::tasks
