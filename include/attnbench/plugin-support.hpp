// Helpers for writing attnbench plugins in C++: a thread-local error message, a guard
// that turns any exception into a status (so none crosses the C boundary), and strict
// parsing of the params JSON that rejects unknown keys and names the offending one.
//
// Header-only; compile the plugin with hidden visibility (attnbench_add_plugin does) so
// each plugin keeps its own copy of the error slot.
#pragma once

#include <attnbench/plugin.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

namespace attnbench::plugin {

// Thrown by params parsing; guard() maps it to ATTNBENCH_STATUS_INVALID_PARAMS.
struct params_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The calling thread's last error message. Not a thread_local: a plugin is dlopen'ed, so
// a thread_local of its own lives in dynamic TLS, and with clang 14's LeakSanitizer on
// glibc 2.36 a process whose plugin had written one crashed at exit in the leak checker
// (measured: 10 of 10 exits with the message in dynamic TLS, none of 10 with it in
// static TLS, same executable). One string per thread that ever failed, kept for the
// process's life; a node-based map keeps each reference valid while others are added.
inline std::string& error_slot() {
  static std::mutex lock;
  static auto* slots = new std::unordered_map<std::thread::id, std::string>();  // never freed: outlives exit
  const std::lock_guard<std::mutex> hold(lock);
  return (*slots)[std::this_thread::get_id()];
}

inline const char* last_error() { return error_slot().c_str(); }

inline attnbench_status fail(attnbench_status status, std::string message) {
  error_slot() = std::move(message);
  return status;
}

// Runs fn (which returns attnbench_status) and converts exceptions into statuses.
template <class F>
attnbench_status guard(F&& fn) noexcept {
  try {
    return fn();
  } catch (const params_error& e) {
    return fail(ATTNBENCH_STATUS_INVALID_PARAMS, e.what());
  } catch (const std::bad_alloc&) {
    return fail(ATTNBENCH_STATUS_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(ATTNBENCH_STATUS_INTERNAL, e.what());
  } catch (...) {
    return fail(ATTNBENCH_STATUS_INTERNAL, "unknown exception");
  }
}

// A descriptor for this header's error slot and the current ABI:
//   constexpr auto kDescriptor = attnbench::plugin::policy_descriptor("name", "1.0.0", "one line", &kOps);
//   ATTNBENCH_PLUGIN_ENTRY(kDescriptor)
constexpr attnbench_plugin_descriptor policy_descriptor(const char* name, const char* version, const char* description,
                                                        const attnbench_policy_ops* ops) {
  return {ATTNBENCH_ABI_VERSION, sizeof(attnbench_plugin_descriptor), ATTNBENCH_PLUGIN_POLICY, 0, name, version,
          description, last_error, ops, nullptr};
}
constexpr attnbench_plugin_descriptor terminator_descriptor(const char* name, const char* version,
                                                            const char* description,
                                                            const attnbench_terminator_ops* ops) {
  return {ATTNBENCH_ABI_VERSION, sizeof(attnbench_plugin_descriptor), ATTNBENCH_PLUGIN_TERMINATOR, 0, name, version,
          description, last_error, nullptr, ops};
}

// Reads a params object; every key must be consumed, so typos are errors.
class params {
 public:
  explicit params(const char* json_text) {
    try {
      json_ = nlohmann::json::parse(json_text ? json_text : "{}");
    } catch (const nlohmann::json::exception& e) {
      throw params_error(std::string("params are not valid JSON: ") + e.what());
    }
    if (json_.is_null()) json_ = nlohmann::json::object();
    if (!json_.is_object()) throw params_error("params must be a JSON object, got " + type_of(json_));
  }

  std::int64_t integer(const std::string& key, std::int64_t fallback,
                       std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t max = std::numeric_limits<std::int64_t>::max()) {
    const auto* v = take(key);
    if (!v) return fallback;
    if (!v->is_number_integer())
      throw params_error(key + ": expected an integer, got " + describe(*v));
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max))
      throw params_error(key + ": expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                         "], got " + v->dump());
    const auto x = v->get<std::int64_t>();
    if (x < min || x > max)
      throw params_error(key + ": expected an integer in [" + std::to_string(min) + ", " +
                         std::to_string(max) + "], got " + std::to_string(x));
    return x;
  }

  double number(const std::string& key, double fallback,
                double min = -std::numeric_limits<double>::infinity(),
                double max = std::numeric_limits<double>::infinity()) {
    const auto* v = take(key);
    if (!v) return fallback;
    if (!v->is_number()) throw params_error(key + ": expected a number, got " + describe(*v));
    const auto x = v->get<double>();
    if (!(x >= min && x <= max))
      throw params_error(key + ": expected a number in [" + std::to_string(min) + ", " +
                         std::to_string(max) + "], got " + v->dump());
    return x;
  }

  // A number, or the given word (e.g. "off") for none: returns nullopt for the word.
  std::optional<double> number_or(const std::string& key, double fallback, const std::string& word,
                                  double min = -std::numeric_limits<double>::infinity(),
                                  double max = std::numeric_limits<double>::infinity()) {
    const auto* v = peek(key);
    if (v && v->is_string()) {
      taken_.insert(key);
      if (v->get<std::string>() == word) return std::nullopt;
      throw params_error(key + ": expected a number or \"" + word + "\", got " + describe(*v));
    }
    return number(key, fallback, min, max);
  }

  bool boolean(const std::string& key, bool fallback) {
    const auto* v = take(key);
    if (!v) return fallback;
    if (!v->is_boolean()) throw params_error(key + ": expected true or false, got " + describe(*v));
    return v->get<bool>();
  }

  std::string string(const std::string& key, const std::string& fallback) {
    const auto* v = take(key);
    if (!v) return fallback;
    if (!v->is_string()) throw params_error(key + ": expected a string, got " + describe(*v));
    return v->get<std::string>();
  }

  // Call after reading every known key: any key left over is an error naming it.
  void finish(const std::string& plugin_name) const {
    for (const auto& [key, value] : json_.items()) {
      if (!taken_.count(key))
        throw params_error("unknown parameter '" + key + "' for " + plugin_name +
                           (taken_.empty() ? " (it takes no parameters)" : ""));
    }
  }

 private:
  const nlohmann::json* take(const std::string& key) {
    taken_.insert(key);
    auto it = json_.find(key);
    return it == json_.end() ? nullptr : &*it;
  }
  const nlohmann::json* peek(const std::string& key) const {
    auto it = json_.find(key);
    return it == json_.end() ? nullptr : &*it;
  }
  static std::string type_of(const nlohmann::json& v) { return v.type_name(); }
  static std::string describe(const nlohmann::json& v) { return v.type_name() + std::string(" ") + v.dump(); }

  nlohmann::json json_;
  std::set<std::string> taken_;
};

}  // namespace attnbench::plugin

// Defines the plugin's one exported function, returning the given descriptor.
#define ATTNBENCH_PLUGIN_ENTRY(descriptor)                                                       \
  extern "C" ATTNBENCH_PLUGIN_EXPORT const attnbench_plugin_descriptor* attnbench_plugin_entry(void) { \
    return &(descriptor);                                                                        \
  }
