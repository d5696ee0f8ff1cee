// The printable vocabulary shared by the tasks and the synthetic model: special tokens,
// punctuation, digits, letters, the English words of haystacks and templates, and
// seeded pseudo-words used as keys. The same on every machine.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace attnbench::tasks {

using token = std::int32_t;

enum class token_class : std::uint8_t { special, punctuation, digit, letter, word, pseudo_word };

class vocabulary {
 public:
  // The one vocabulary attnbench uses; built once, deterministic.
  static const vocabulary& standard();

  std::size_t size() const { return strings_.size(); }
  const std::string& text(token t) const { return strings_.at(static_cast<std::size_t>(t)); }
  token_class kind(token t) const { return kinds_.at(static_cast<std::size_t>(t)); }
  bool is_special(token t) const { return kind(t) == token_class::special; }
  // Throws std::out_of_range naming the word when it is not in the vocabulary.
  token id(std::string_view word) const;
  bool contains(std::string_view word) const { return ids_.count(std::string(word)) != 0; }

  // Splits text into tokens: words by whitespace, each punctuation mark and each digit
  // its own token, "\n" as <nl>. Case-insensitive.
  std::vector<token> tokenize(std::string_view text) const;
  // Joins tokens into text: no space before closing punctuation or around '-', none
  // between digits and single letters (numbers and uuids read as one run).
  std::string detokenize(std::span<const token> tokens) const;

  const std::vector<token>& pseudo_words() const { return pseudo_words_; }
  const std::vector<token>& words() const { return words_; }  // English words of haystacks and older templates
  const std::vector<token>& digits() const { return digits_; }

  token bos() const { return bos_; }
  token eos() const { return eos_; }
  token newline() const { return newline_; }

 private:
  vocabulary();
  token add(std::string text, token_class kind);

  std::vector<std::string> strings_;
  std::vector<token_class> kinds_;
  std::unordered_map<std::string, token> ids_;
  std::vector<token> pseudo_words_, digits_, words_;
  token bos_ = 0, eos_ = 0, newline_ = 0;
};

}  // namespace attnbench::tasks
