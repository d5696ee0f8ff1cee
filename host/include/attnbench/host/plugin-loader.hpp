// Finds, loads and checks attnbench plugins, and wraps their instances in C++.
//
// Search path, in order: --plugin-path options, ATTNBENCH_PLUGIN_PATH (colon-separated
// absolute folders), the executable's folder, then <executable>/../lib/attnbench/plugins
// (the install layout); never the current directory. A plugin named NAME lives in a file
// attnbench-plugin-NAME.so. Every file is checked before dlopen (host/plugin-file.hpp).
//
// Lifetime: every library loaded stays loaded until the registry is destroyed, and each
// instance also holds its library, so no plugin code is unloaded while anything it made
// is alive or a worker thread may still run it.
#pragma once

#include <attnbench/host/errors.hpp>

#include <attnbench/plugin.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attnbench {

const char* plugin_kind_name(attnbench_plugin_kind kind);

class plugin_library {
 public:
  plugin_library(std::filesystem::path file, void* handle, const attnbench_plugin_descriptor* descriptor);
  // The label of the library with this index(), for a process that reads the call board
  // of a worker it forked; "" for an unknown index.
  static std::string label_of(int index);
  ~plugin_library();
  plugin_library(const plugin_library&) = delete;
  plugin_library& operator=(const plugin_library&) = delete;

  const std::filesystem::path& file() const { return file_; }
  int index() const { return index_; }  // on the plugin call board (host/plugin-calls.hpp)
  const attnbench_plugin_descriptor& descriptor() const { return *descriptor_; }
  std::string name() const { return descriptor_->name; }
  attnbench_plugin_kind kind() const { return static_cast<attnbench_plugin_kind>(descriptor_->kind); }
  // "plugin 'dense' (path/to/file.so)", for messages.
  std::string label() const;
  // The plugin's last error message on this thread, never null.
  std::string last_error() const;
  nlohmann::json info_json() const;

 private:
  std::filesystem::path file_;
  int index_;
  void* handle_;
  const attnbench_plugin_descriptor* descriptor_;
};

class plugin_registry {
 public:
  explicit plugin_registry(std::vector<std::filesystem::path> search_path);
  // --plugin-path entries, then the environment, then the executable's folders. Throws
  // plugin_error for a relative ATTNBENCH_PLUGIN_PATH entry.
  static std::vector<std::filesystem::path> default_search_path(const std::vector<std::string>& cli_paths);

  const std::vector<std::filesystem::path>& search_path() const { return search_path_; }

  // Loads and checks one file. Throws plugin_error naming the file and what is wrong.
  std::shared_ptr<plugin_library> load_file(const std::filesystem::path& file);
  // Finds NAME of the given kind on the search path. Throws plugin_error listing the
  // plugins of that kind that do exist.
  std::shared_ptr<plugin_library> find(std::string_view name, attnbench_plugin_kind kind);

  struct scan_entry {
    std::filesystem::path file;
    std::shared_ptr<plugin_library> library;  // null when loading failed
    std::string error;
  };
  // Every attnbench-plugin-*.so on the search path (first of each file name wins).
  std::vector<scan_entry> scan();

 private:
  std::vector<std::filesystem::path> search_path_;
  std::map<std::filesystem::path, std::shared_ptr<plugin_library>> loaded_;
};

// An instance of a policy plugin; one thread at a time.
class policy_instance {
 public:
  policy_instance(std::shared_ptr<plugin_library> library, const nlohmann::json& params,
                  const attnbench_model_info& model);
  ~policy_instance();
  policy_instance(const policy_instance&) = delete;
  policy_instance& operator=(const policy_instance&) = delete;

  const plugin_library& library() const { return *library_; }
  // Throws plugin_error naming the plugin and the operation on failure.
  attnbench_plan plan(const attnbench_plan_request& request);
  bool has_on_prefill() const { return library_->descriptor().policy->on_prefill != nullptr; }
  attnbench_plan on_prefill(const attnbench_prefill_request& request);
  nlohmann::json stats() const;

 private:
  std::shared_ptr<plugin_library> library_;
  const attnbench_policy_ops* ops_;
  void* instance_ = nullptr;
};

// An instance of a terminator plugin. The kernels call its reset and check directly
// (through ops() and handle()), on many threads, each traversal with its own state.
class terminator_instance {
 public:
  terminator_instance(std::shared_ptr<plugin_library> library, const nlohmann::json& params,
                      const attnbench_model_info& model);
  ~terminator_instance();
  terminator_instance(const terminator_instance&) = delete;
  terminator_instance& operator=(const terminator_instance&) = delete;

  const plugin_library& library() const { return *library_; }
  const attnbench_terminator_ops* ops() const { return ops_; }
  const void* handle() const { return instance_; }
  std::size_t state_size(std::uint32_t n_query_heads, std::uint32_t head_dim) const;
  nlohmann::json stats() const;

 private:
  std::shared_ptr<plugin_library> library_;
  const attnbench_terminator_ops* ops_;
  void* instance_ = nullptr;
};

}  // namespace attnbench
