// Reading JSON files with errors a user can act on: the file, line and column of a
// syntax error; the JSON pointer, expected and actual value of a wrong one.
#pragma once

#include <attnbench/host/errors.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace attnbench {

// Parses a JSON file (comments not allowed). Throws config_error.
nlohmann::json read_json_file(const std::filesystem::path& file);

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
