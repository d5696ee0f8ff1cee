// list: the plugins found, the tasks, the model profiles and the kernels' SIMD targets.
#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/model/profile.hpp>

#include <attnbench/kernels/simd.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <set>

namespace attnbench::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Every profile in the profile folders (the first of each name), or why it is broken.
void list_profiles(json& out) {
  std::set<std::string> seen;
  for (const auto& dir : profile_dirs()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (!seen.insert(f.stem().string()).second) continue;
      try {
        const model_profile p = load_profile(f);
        out["profiles"].push_back({{"name", f.stem().string()}, {"n_layers", p.n_layers},
                                   {"n_query_heads", p.n_query_heads}, {"n_kv_heads", p.n_kv_heads},
                                   {"head_dim", p.head_dim}, {"file", f.string()}});
      } catch (const config_error& e) {
        out["broken"].push_back({{"file", f.string()}, {"error", e.what()}});
      }
    }
  }
}

json gather(plugin_registry& registry) {
  json out = {{"plugins", json::array()}, {"broken", json::array()}, {"tasks", json::array()},
              {"search_path", json::array()}, {"profiles", json::array()}, {"profile_path", json::array()}};
  for (const auto& p : registry.search_path()) out["search_path"].push_back(p.string());
  for (const auto& p : profile_dirs()) out["profile_path"].push_back(p.string());
  for (const auto& e : registry.scan()) {
    if (e.library) {
      json info = e.library->info_json();
      info["description"] = e.library->descriptor().description ? e.library->descriptor().description : "";
      out["plugins"].push_back(info);
    } else {
      out["broken"].push_back({{"file", e.file.string()}, {"error", e.error}});
    }
  }
  out["plugins"].push_back({{"name", "none"}, {"kind", "terminator"}, {"version", ATTNBENCH_VERSION},
                            {"abi_version", ATTNBENCH_ABI_VERSION}, {"file", "(built in)"},
                            {"description", "no terminator: every planned block is visited"}});
  for (const auto& t : tasks::task_catalogue())
    out["tasks"].push_back({{"name", t.name}, {"description", t.description}});
  list_profiles(out);
  return out;
}

// A folder of a search path, marked when it is not there.
std::string folder_line(const std::string& dir) {
  std::error_code ec;
  return "  " + dir + (fs::is_directory(dir, ec) ? "" : "  (does not exist)") + "\n";
}

void print(const json& out) {
  std::printf("plugins:\n  %-14s %-11s %-9s %-4s %s\n", "name", "kind", "version", "abi", "file");
  for (const auto& p : out["plugins"])
    std::printf("  %-14s %-11s %-9s %-4u %s\n", p["name"].get<std::string>().c_str(),
                p["kind"].get<std::string>().c_str(), p["version"].get<std::string>().c_str(),
                p["abi_version"].get<unsigned>(), p["file"].get<std::string>().c_str());
  for (const auto& b : out["broken"]) std::printf("  not loaded: %s\n", b["error"].get<std::string>().c_str());
  int name_width = 0;
  for (const auto& t : out["tasks"]) name_width = std::max(name_width, static_cast<int>(t["name"].get<std::string>().size()));
  std::printf("tasks:\n");
  for (const auto& t : out["tasks"])
    std::printf("  %-*s  %s\n", name_width, t["name"].get<std::string>().c_str(), t["description"].get<std::string>().c_str());
  std::printf("model profiles:\n");
  for (const auto& p : out["profiles"])
    std::printf("  %-14s %u layers, %u query heads, %u KV heads, head dim %u  %s\n",
                p["name"].get<std::string>().c_str(), p["n_layers"].get<unsigned>(), p["n_query_heads"].get<unsigned>(),
                p["n_kv_heads"].get<unsigned>(), p["head_dim"].get<unsigned>(), p["file"].get<std::string>().c_str());
  // Highway's portable targets (SCALAR or EMU128, by compiler) and attnbench's own scalar
  // loops are different code paths, two of them with one word for a name: each portable
  // one is listed with what it is.
  std::printf("kernel targets (best first):\n");
  for (const auto& t : kernels::available_targets()) {
    const char* what = t == "SCALAR"   ? "Highway's portable one-lane code"
                       : t == "EMU128" ? "Highway's portable 128-bit emulation"
                       : t == "scalar" ? "plain C++ loops, no Highway"
                                       : "";
    std::string line = "  " + t;
    if (*what) line += std::string(t.size() < 9 ? 9 - t.size() : 1, ' ') + what;
    if (t == kernels::current_target()) line += "  (in use)";
    std::printf("%s\n", line.c_str());
  }
  std::printf("plugin search path:\n");
  for (const auto& p : out["search_path"]) std::printf("%s", folder_line(p.get<std::string>()).c_str());
  std::printf("profile search path (after a config's own profiles/ folder):\n");
  for (const auto& p : out["profile_path"]) std::printf("%s", folder_line(p.get<std::string>()).c_str());
}

}  // namespace

void add_list_command(CLI::App& app, std::vector<registered_command>& commands) {
  auto as_json = std::make_shared<bool>(false);
  auto* list = app.add_subcommand("list", "List the plugins found, the tasks and the model profiles");
  list->add_flag("--json", *as_json, "Print JSON instead of a table");
  list->footer(kExitCodes);
  commands.push_back({list, [as_json](const global_options& g) {
                        plugin_registry registry(plugin_registry::default_search_path(g.plugin_paths));
                        const json out = gather(registry);
                        if (*as_json) std::cout << out.dump(2) << "\n";
                        else print(out);
                        return static_cast<int>(exit_ok);
                      }});
}

}  // namespace attnbench::cli
