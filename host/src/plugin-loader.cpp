#include <attnbench/host/plugin-loader.hpp>

#include <attnbench/host/plugin-calls.hpp>
#include <attnbench/host/files.hpp>
#include <attnbench/host/plugin-file.hpp>
#include <attnbench/host/spelling.hpp>

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <cstring>
#include <set>
#include <sstream>

namespace attnbench {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kFilePrefix = "attnbench-plugin-";
constexpr std::string_view kFileSuffix = ".so";

std::string status_name(attnbench_status s) {
  switch (s) {
    case ATTNBENCH_STATUS_OK: return "ok";
    case ATTNBENCH_STATUS_INVALID_PARAMS: return "invalid params";
    case ATTNBENCH_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case ATTNBENCH_STATUS_OUT_OF_MEMORY: return "out of memory";
    case ATTNBENCH_STATUS_INTERNAL: return "internal error";
  }
  return "status " + std::to_string(static_cast<int>(s));
}

// Labels of loaded libraries by index, for the call board's readers.
std::mutex g_labels_mutex;
std::vector<std::string> g_labels;

int register_label(const std::string& label) {
  const std::lock_guard lock(g_labels_mutex);
  g_labels.push_back(label);
  return static_cast<int>(g_labels.size()) - 1;
}

// Calls a plugin's create with params as JSON text; throws plugin_error with the plugin's
// own message when it refuses.
void* create_instance(const plugin_library& library,
                      attnbench_status (*create)(const char*, const attnbench_model_info*, void**),
                      const nlohmann::json& params, const attnbench_model_info& model) {
  const std::string text = params.is_null() ? "{}" : params.dump();
  void* instance = nullptr;
  attnbench_status s;
  {
    const plugin_call call(library.index(), plugin_op::create);
    s = create(text.c_str(), &model, &instance);
  }
  if (s != ATTNBENCH_STATUS_OK) {
    const std::string what = s == ATTNBENCH_STATUS_INVALID_PARAMS ? "rejected its params " + text : "create failed";
    throw plugin_error(library.label() + ": " + what + ": " + library.last_error(), library.label(), "create");
  }
  return instance;
}

// The search path as a message shows it: a folder that does not exist says so.
std::string describe_path(const std::vector<fs::path>& path) {
  std::string out;
  for (const auto& p : path) {
    std::error_code ec;
    out += (out.empty() ? "" : ":") + p.string() + (fs::is_directory(p, ec) ? "" : " (does not exist)");
  }
  return out.empty() ? "(empty)" : out;
}

}  // namespace

const char* plugin_kind_name(attnbench_plugin_kind kind) {
  switch (kind) {
    case ATTNBENCH_PLUGIN_POLICY: return "policy";
    case ATTNBENCH_PLUGIN_TERMINATOR: return "terminator";
  }
  return "unknown";
}

plugin_library::plugin_library(fs::path file, void* handle, const attnbench_plugin_descriptor* descriptor)
    : file_(std::move(file)), index_(0), handle_(handle), descriptor_(descriptor) {
  index_ = register_label(label());
}

std::string plugin_library::label_of(int index) {
  const std::lock_guard lock(g_labels_mutex);
  return index >= 0 && static_cast<std::size_t>(index) < g_labels.size() ? g_labels[static_cast<std::size_t>(index)] : "";
}

plugin_library::~plugin_library() {
  if (handle_) dlclose(handle_);
}

std::string plugin_library::label() const {
  return std::string(plugin_kind_name(kind())) + " plugin '" + name() + "' (" + file_.string() + ")";
}

std::string plugin_library::last_error() const {
  const char* msg = descriptor_->last_error ? descriptor_->last_error() : nullptr;
  return msg && *msg ? msg : "(the plugin gave no message)";
}

nlohmann::json plugin_library::info_json() const {
  return {{"name", name()},
          {"kind", plugin_kind_name(kind())},
          {"version", descriptor_->version ? descriptor_->version : ""},
          {"abi_version", descriptor_->abi_version},
          {"file", file_.string()}};
}

plugin_registry::plugin_registry(std::vector<fs::path> search_path) : search_path_(std::move(search_path)) {}

std::vector<fs::path> plugin_registry::default_search_path(const std::vector<std::string>& cli_paths) {
  std::vector<fs::path> out;
  for (const auto& p : cli_paths) out.emplace_back(p);
  if (const char* env = std::getenv("ATTNBENCH_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string part;
    while (std::getline(ss, part, ':')) {
      if (part.empty()) continue;  // an empty entry would mean the current directory
      if (fs::path(part).is_relative())
        throw plugin_error("ATTNBENCH_PLUGIN_PATH: '" + part +
                           "' is a relative folder; give absolute folders (the current directory is never searched)");
      out.emplace_back(part);
    }
  }
  if (const fs::path exe = executable_dir(); !exe.empty()) {  // without /proc: never the current directory
    out.push_back(exe);
    out.push_back(exe.parent_path() / "lib" / "attnbench" / "plugins");
  }
  return out;
}

std::shared_ptr<plugin_library> plugin_registry::load_file(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) throw plugin_error("plugin file " + file.string() + ": no such file");
  const fs::path canonical = fs::weakly_canonical(file, ec);
  if (auto it = loaded_.find(canonical); it != loaded_.end()) return it->second;
  check_plugin_file(canonical);

  // RTLD_NODELETE: a plugin stays mapped until exit once loaded. Its thread_local data
  // (the plugin SDK's last error) outlives a dlclose in the threads that touched it, and
  // LeakSanitizer's exit scan crashed reading the TLS of an unloaded plugin.
  void* handle = dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!handle) {
    const char* err = dlerror();
    throw plugin_error("plugin file " + file.string() + ": cannot be loaded: " + (err ? err : "unknown dlopen error"));
  }
  auto close_and_throw = [&](const std::string& message) {
    dlclose(handle);
    throw plugin_error(message);
  };
  dlerror();
  void* sym = dlsym(handle, ATTNBENCH_PLUGIN_ENTRY_SYMBOL);
  if (!sym)
    close_and_throw(file.string() + " is not an attnbench plugin: it does not export " ATTNBENCH_PLUGIN_ENTRY_SYMBOL);
  attnbench_plugin_entry_fn entry;
  std::memcpy(&entry, &sym, sizeof entry);
  const attnbench_plugin_descriptor* d = entry();
  if (!d) close_and_throw(file.string() + ": " ATTNBENCH_PLUGIN_ENTRY_SYMBOL " returned NULL");
  // abi_version and struct_size are first in every ABI version; read nothing else before
  // they are checked.
  if (d->abi_version != ATTNBENCH_ABI_VERSION)
    close_and_throw("plugin file " + file.string() + " was built for plugin ABI version " +
                    std::to_string(d->abi_version) + ", this attnbench needs ABI version " +
                    std::to_string(ATTNBENCH_ABI_VERSION) + "; rebuild it against this attnbench's headers");
  if (d->struct_size < sizeof(attnbench_plugin_descriptor))
    close_and_throw("plugin file " + file.string() + ": descriptor is " + std::to_string(d->struct_size) +
                    " bytes, ABI version " + std::to_string(ATTNBENCH_ABI_VERSION) + " needs " +
                    std::to_string(sizeof(attnbench_plugin_descriptor)));
  if (!d->name || !*d->name) close_and_throw("plugin file " + file.string() + ": descriptor has no name");
  const std::string who = "plugin '" + std::string(d->name) + "' (" + file.string() + ")";
  if (!d->last_error) close_and_throw(who + ": required function last_error is NULL");
  if (d->kind == ATTNBENCH_PLUGIN_POLICY) {
    const auto* ops = d->policy;
    if (!ops) close_and_throw(who + ": kind is policy but the policy operations are NULL");
    if (!ops->create) close_and_throw(who + ": required function policy.create is NULL");
    if (!ops->destroy) close_and_throw(who + ": required function policy.destroy is NULL");
    if (!ops->plan) close_and_throw(who + ": required function policy.plan is NULL");
  } else if (d->kind == ATTNBENCH_PLUGIN_TERMINATOR) {
    const auto* ops = d->terminator;
    if (!ops) close_and_throw(who + ": kind is terminator but the terminator operations are NULL");
    if (!ops->create) close_and_throw(who + ": required function terminator.create is NULL");
    if (!ops->destroy) close_and_throw(who + ": required function terminator.destroy is NULL");
    if (!ops->state_size) close_and_throw(who + ": required function terminator.state_size is NULL");
    if (!ops->reset) close_and_throw(who + ": required function terminator.reset is NULL");
    if (!ops->check) close_and_throw(who + ": required function terminator.check is NULL");
  } else {
    close_and_throw(who + ": unknown plugin kind " + std::to_string(d->kind) + " (1 = policy, 2 = terminator)");
  }
  auto lib = std::make_shared<plugin_library>(file, handle, d);
  loaded_.emplace(canonical, lib);
  return lib;
}

std::shared_ptr<plugin_library> plugin_registry::find(std::string_view name, attnbench_plugin_kind kind) {
  const std::string file_name = std::string(kFilePrefix) + std::string(name) + std::string(kFileSuffix);
  for (const auto& dir : search_path_) {
    std::error_code ec;
    const fs::path candidate = dir / file_name;
    if (!fs::exists(candidate, ec)) continue;
    auto lib = load_file(candidate);
    if (lib->name() != name)
      throw plugin_error(candidate.string() + " holds plugin '" + lib->name() + "', expected '" + std::string(name) + "'");
    if (lib->kind() != kind)
      throw plugin_error(lib->label() + " is a " + plugin_kind_name(lib->kind()) + ", not a " + plugin_kind_name(kind));
    return lib;
  }
  std::set<std::string> found;
  for (const auto& e : scan())
    if (e.library && e.library->kind() == kind) found.insert(e.library->name());
  if (kind == ATTNBENCH_PLUGIN_TERMINATOR) found.insert("none");
  std::string list;
  for (const auto& f : found) list += (list.empty() ? "" : ", ") + f;
  const std::string kind_name = plugin_kind_name(kind);
  throw plugin_error("unknown " + kind_name + " '" + std::string(name) + "'" +
                     did_you_mean(name, std::vector<std::string>(found.begin(), found.end())) + ": no " + file_name +
                     " on the plugin search path (" + describe_path(search_path_) + "); " +
                     (kind == ATTNBENCH_PLUGIN_POLICY ? "policies" : "terminators") +
                     " found: " + (list.empty() ? "none" : list));
}

std::vector<plugin_registry::scan_entry> plugin_registry::scan() {
  std::vector<scan_entry> out;
  std::set<std::string> seen;
  for (const auto& dir : search_path_) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string fname = e.path().filename().string();
      if (fname.starts_with(kFilePrefix) && fname.ends_with(kFileSuffix)) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (!seen.insert(f.filename().string()).second) continue;
      scan_entry entry{f, nullptr, ""};
      try {
        entry.library = load_file(f);
      } catch (const plugin_error& e) {
        entry.error = e.what();
      }
      out.push_back(std::move(entry));
    }
  }
  return out;
}

// ---- instances ----

policy_instance::policy_instance(std::shared_ptr<plugin_library> library, const nlohmann::json& params,
                                 const attnbench_model_info& model)
    : library_(std::move(library)), ops_(library_->descriptor().policy) {
  instance_ = create_instance(*library_, ops_->create, params, model);
}

policy_instance::~policy_instance() {
  if (!instance_) return;
  const plugin_call call(library_->index(), plugin_op::destroy);
  ops_->destroy(instance_);
}

attnbench_plan policy_instance::plan(const attnbench_plan_request& request) {
  attnbench_plan plan{};
  attnbench_status s;
  {
    const plugin_call call(library_->index(), plugin_op::plan, request.layer, request.step);
    s = ops_->plan(instance_, &request, &plan);
  }
  if (s != ATTNBENCH_STATUS_OK)
    throw plugin_error(library_->label() + ": plan failed (" + status_name(s) + ", layer " +
                           std::to_string(request.layer) + ", step " + std::to_string(request.step) +
                           "): " + library_->last_error(),
                       library_->label(), "plan");
  return plan;
}

attnbench_plan policy_instance::on_prefill(const attnbench_prefill_request& request) {
  attnbench_plan keep{};
  keep.granularity = ATTNBENCH_PLAN_PER_KV_HEAD;
  if (!ops_->on_prefill) return keep;
  attnbench_status s;
  {
    const plugin_call call(library_->index(), plugin_op::on_prefill, request.layer);
    s = ops_->on_prefill(instance_, &request, &keep);
  }
  if (s != ATTNBENCH_STATUS_OK)
    throw plugin_error(library_->label() + ": on_prefill failed (" + status_name(s) + ", layer " +
                           std::to_string(request.layer) + "): " + library_->last_error(),
                       library_->label(), "on_prefill");
  return keep;
}

namespace {
nlohmann::json parse_stats(const plugin_library& lib, const char* text) {
  if (!text || !*text) return nlohmann::json::object();
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_object()) throw std::runtime_error("not an object");
    return j;
  } catch (const std::exception&) {
    throw plugin_error(lib.label() + ": stats_json returned something that is not a JSON object: " + text, lib.label(),
                       "stats_json");
  }
}
}  // namespace

nlohmann::json policy_instance::stats() const {
  if (!ops_->stats_json) return nlohmann::json::object();
  const plugin_call call(library_->index(), plugin_op::stats);
  return parse_stats(*library_, ops_->stats_json(instance_));
}

terminator_instance::terminator_instance(std::shared_ptr<plugin_library> library, const nlohmann::json& params,
                                         const attnbench_model_info& model)
    : library_(std::move(library)), ops_(library_->descriptor().terminator) {
  instance_ = create_instance(*library_, ops_->create, params, model);
}

terminator_instance::~terminator_instance() {
  if (!instance_) return;
  const plugin_call call(library_->index(), plugin_op::destroy);
  ops_->destroy(instance_);
}

std::size_t terminator_instance::state_size(std::uint32_t n_query_heads, std::uint32_t head_dim) const {
  const plugin_call call(library_->index(), plugin_op::state_size);
  return ops_->state_size(instance_, n_query_heads, head_dim);
}

nlohmann::json terminator_instance::stats() const {
  if (!ops_->stats_json) return nlohmann::json::object();
  const plugin_call call(library_->index(), plugin_op::stats);
  return parse_stats(*library_, ops_->stats_json(instance_));
}

}  // namespace attnbench
