#include <attnbench/host/json.hpp>
#include <attnbench/host/spelling.hpp>

#include <attnbench/host/files.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

namespace attnbench {

namespace {

// 1-based line and column of a byte offset.
std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset) {
  std::size_t line = 1, column = 1;
  const std::size_t end = std::min(offset, text.size());
  for (std::size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

}  // namespace

std::string read_text_file(const std::filesystem::path& file, std::uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; read_open_file refuses it.
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    throw config_error(file.string(), "", err == ENOENT ? "no such file" : std::string("cannot be read: ") + std::strerror(err));
  }
  try {
    std::string text = read_open_file(fd, file, max_bytes);
    ::close(fd);
    return text;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

void check_json_depth(std::string_view text, std::uint32_t max_depth, const std::string& where) {
  std::uint32_t depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        const auto [line, column] = line_column(text, i);
        throw config_error(where + ":" + std::to_string(line) + ":" + std::to_string(column), "",
                           "nested deeper than " + std::to_string(max_depth) + " arrays and objects");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

template <class Json>
Json parse_json_text(std::string_view text, const std::string& where, const json_limits& limits) {
  check_json_depth(text, limits.max_depth, where);
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    const auto [line, column] = line_column(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..."
    const auto colon = what.find(": ", what.find("parse error"));
    const std::string detail = colon == std::string::npos ? what : what.substr(colon + 2);
    throw config_error(where + ":" + std::to_string(line) + ":" + std::to_string(column), "",
                       "malformed JSON: " + detail);
  } catch (const nlohmann::json::exception& e) {
    // e.g. a number too large for a double (out_of_range.406)
    std::string what = e.what();
    const auto bracket = what.find("] ");
    throw config_error(where, "", "invalid JSON: " + (bracket == std::string::npos ? what : what.substr(bracket + 2)));
  }
}

template nlohmann::json parse_json_text<nlohmann::json>(std::string_view, const std::string&, const json_limits&);
template nlohmann::ordered_json parse_json_text<nlohmann::ordered_json>(std::string_view, const std::string&,
                                                                        const json_limits&);

nlohmann::json read_json_file(const std::filesystem::path& file, const json_limits& limits) {
  return parse_json_text<nlohmann::json>(read_text_file(file, limits.max_bytes), file.string(), limits);
}

nlohmann::ordered_json read_ordered_json_file(const std::filesystem::path& file, const json_limits& limits) {
  return parse_json_text<nlohmann::ordered_json>(read_text_file(file, limits.max_bytes), file.string(), limits);
}

bool same_json(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b) {
  return nlohmann::json::parse(a.dump()) == nlohmann::json::parse(b.dump());
}

std::string describe_json(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return std::string(value.type_name()) + " " + text;
}

void json_reader::fail(const std::string& pointer, const std::string& message) const {
  throw config_error(file_, pointer.empty() ? "/" : pointer, message);
}

void json_reader::expect_object(const nlohmann::json& v, const std::string& pointer) const {
  if (!v.is_object()) fail(pointer, "expected an object, got " + describe_json(v));
}

void json_reader::expect_array(const nlohmann::json& v, const std::string& pointer, bool non_empty) const {
  if (!v.is_array()) fail(pointer, "expected an array, got " + describe_json(v));
  if (non_empty && v.empty()) fail(pointer, "expected a non-empty array");
}

std::string json_reader::string(const nlohmann::json& v, const std::string& pointer) const {
  if (!v.is_string()) fail(pointer, "expected a string, got " + describe_json(v));
  return v.get<std::string>();
}

std::int64_t json_reader::integer(const nlohmann::json& v, const std::string& pointer, std::int64_t min,
                                  std::int64_t max) const {
  if (!v.is_number_integer()) fail(pointer, "expected an integer, got " + describe_json(v));
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(max))
    fail(pointer, "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + v.dump());
  const auto x = v.get<std::int64_t>();
  if (x < min || x > max)
    fail(pointer, "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + v.dump());
  return x;
}

double json_reader::number(const nlohmann::json& v, const std::string& pointer, double min, double max) const {
  if (!v.is_number()) fail(pointer, "expected a number, got " + describe_json(v));
  const auto x = v.get<double>();
  if (!(x >= min && x <= max)) {
    std::ostringstream os;
    os << "expected a number in [" << min << ", " << max << "], got " << v.dump();
    fail(pointer, os.str());
  }
  return x;
}

void json_reader::reject_unknown_keys(const nlohmann::json& obj, const std::string& pointer,
                                      std::initializer_list<const char*> known) const {
  for (const auto& [key, value] : obj.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      fail(pointer + "/" + key,
           "unknown field" + did_you_mean(key, std::vector<std::string>(known.begin(), known.end())) + " (known: " + list + ")");
    }
  }
}

}  // namespace attnbench
