// Reading JSON files with errors a user can act on: the file, line and column of a
// syntax error; the JSON pointer, expected and actual value of a wrong one. Every file
// is read under limits (a regular file, a size, a nesting depth) checked in linear time
// before parsing, so no input can exhaust memory or the stack.
#pragma once

#include <attnbench/host/errors.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace attnbench {

struct json_limits {
  std::uint64_t max_bytes;
  std::uint32_t max_depth;  // nested arrays and objects
};
// Configs, profiles, TCA budgets, --set values: hand-written files.
inline constexpr json_limits kConfigLimits{16ull << 20, 64};
// results.json, samples.jsonl, benchmark JSON: written by programs, possibly large.
inline constexpr json_limits kResultsLimits{4ull << 30, 64};

// The bytes of a regular file of at most max_bytes. Throws config_error naming the file
// when it is missing, unreadable, not a regular file (a folder, device, FIFO) or larger.
std::string read_text_file(const std::filesystem::path& file, std::uint64_t max_bytes);

// Throws config_error(where:LINE, ...) when text nests arrays and objects deeper than
// max_depth. One pass; strings are skipped.
void check_json_depth(std::string_view text, std::uint32_t max_depth, const std::string& where);

// Parses JSON text (comments not allowed) after the depth check. `where` names the
// source in messages ("FILE" gives "FILE:LINE:COLUMN: malformed JSON: ..."). Throws
// config_error.
template <class Json>
Json parse_json_text(std::string_view text, const std::string& where, const json_limits& limits);

// read_text_file, then parse_json_text.
nlohmann::json read_json_file(const std::filesystem::path& file, const json_limits& limits = kConfigLimits);
nlohmann::ordered_json read_ordered_json_file(const std::filesystem::path& file, const json_limits& limits);

// Equal values, objects compared regardless of their keys' order (two resolved configs
// written by different versions, a config read back from a results file).
bool same_json(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b);

// Short description of a JSON value for messages: `string "abc"`, `number -5`.
std::string describe_json(const nlohmann::json& value);

// Checked accessors for validators: each throws config_error(file, pointer, ...).
class json_reader {
 public:
  json_reader(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }
  [[noreturn]] void fail(const std::string& pointer, const std::string& message) const;
  void expect_object(const nlohmann::json& v, const std::string& pointer) const;
  void expect_array(const nlohmann::json& v, const std::string& pointer, bool non_empty) const;
  std::string string(const nlohmann::json& v, const std::string& pointer) const;
  std::int64_t integer(const nlohmann::json& v, const std::string& pointer, std::int64_t min, std::int64_t max) const;
  double number(const nlohmann::json& v, const std::string& pointer, double min, double max) const;
  // Fails on keys of obj not in known, listing the known ones.
  void reject_unknown_keys(const nlohmann::json& obj, const std::string& pointer,
                           std::initializer_list<const char*> known) const;

 private:
  std::string file_;
};

}  // namespace attnbench
