#include <attnbench/host/config.hpp>

#include <attnbench/host/files.hpp>
#include <attnbench/host/json.hpp>
#include <attnbench/host/spelling.hpp>

#include <attnbench/kernels/dtype.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <unordered_map>

#ifndef ATTNBENCH_SOURCE_DIR
#define ATTNBENCH_SOURCE_DIR ""
#endif
#ifndef ATTNBENCH_INSTALL_DATADIR
#define ATTNBENCH_INSTALL_DATADIR ""
#endif

namespace attnbench {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string ptr(const std::string& base, const std::string& key) { return base + "/" + key; }
std::string ptr(const std::string& base, std::size_t index) { return base + "/" + std::to_string(index); }

// Plugin entries: a name string, or {name, label, params, plugin}.
json resolve_plugin_list(const json_reader& r, const json& list, const std::string& pointer) {
  r.expect_array(list, pointer, true);
  json out = json::array();
  std::set<std::string> labels;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string p = ptr(pointer, i);
    json e = list[i].is_string() ? json{{"name", list[i]}} : list[i];
    r.expect_object(e, p);
    r.reject_unknown_keys(e, p, {"name", "label", "params", "plugin"});
    if (!e.contains("name")) r.fail(ptr(p, "name"), "required field is missing");
    const std::string name = r.string(e["name"], ptr(p, "name"));
    if (name.empty()) r.fail(ptr(p, "name"), "must not be empty");
    const std::string label = e.contains("label") ? r.string(e["label"], ptr(p, "label")) : name;
    if (label.empty()) r.fail(ptr(p, "label"), "must not be empty");
    if (!labels.insert(label).second)
      r.fail(ptr(p, "label"), "label \"" + label + "\" is used twice; give each entry a distinct label");
    json params = e.value("params", json::object());
    if (!params.is_object()) r.fail(ptr(p, "params"), "expected an object, got " + describe_json(params));
    const std::string plugin = e.contains("plugin") ? r.string(e["plugin"], ptr(p, "plugin")) : "";
    out.push_back({{"name", name}, {"label", label}, {"params", params}, {"plugin", plugin}});
  }
  return out;
}

json resolve_model(const json& raw, const json_reader& r) {
  const json model = raw.value("model", json::object());
  r.expect_object(model, "/model");
  r.reject_unknown_keys(model, "/model", {"kind", "profile", "weights", "dtype", "block_size", "seed"});
  json m = json::object();
  m["kind"] = model.contains("kind") ? r.string(model["kind"], "/model/kind") : "mechanistic";
  if (m["kind"] == "mechanistic") {
    if (model.contains("weights")) r.fail("/model/weights", "only a trained model has weights (add \"kind\": \"trained\")");
    m["profile"] = model.contains("profile") ? r.string(model["profile"], "/model/profile") : "default";
  } else if (m["kind"] == "trained") {
    if (model.contains("profile")) r.fail("/model/profile", "a trained model has no profile: its folder is \"weights\"");
    if (!model.contains("weights")) r.fail("/model/weights", "a trained model needs \"weights\": its folder, e.g. \"models/NAME\"");
    m["weights"] = r.string(model["weights"], "/model/weights");
  } else {
    r.fail("/model/kind", "expected \"mechanistic\" or \"trained\", got \"" + m["kind"].get<std::string>() + "\"");
  }
  const std::string dtype = model.contains("dtype") ? r.string(model["dtype"], "/model/dtype") : "fp16";
  if (!kernels::dtype_from_name(dtype))
    r.fail("/model/dtype", "expected one of \"fp16\", \"bf16\", \"fp32\", got \"" + dtype + "\"");
  m["dtype"] = dtype;
  m["block_size"] = model.contains("block_size") ? r.integer(model["block_size"], "/model/block_size", 1, 4096) : 64;
  m["seed"] = model.contains("seed") ? r.integer(model["seed"], "/model/seed", 0, INT64_MAX) : 1;
  return m;
}

// Task entries: a name string, or {name, label, params}; each checked by the rules.
// min_lengths receives each task's smallest context length.
json resolve_tasks(const json& raw, const json_reader& r, const task_rules& rules,
                   std::vector<std::pair<std::string, std::uint32_t>>& min_lengths) {
  if (!raw.contains("tasks")) r.fail("/tasks", "required field is missing");
  r.expect_array(raw["tasks"], "/tasks", true);
  json tasks_out = json::array();
  std::set<std::string> task_labels;
  std::string known;
  for (const auto& name : rules.names) known += (known.empty() ? "" : ", ") + name;
  for (std::size_t i = 0; i < raw["tasks"].size(); ++i) {
    const std::string p = ptr("/tasks", i);
    json e = raw["tasks"][i].is_string() ? json{{"name", raw["tasks"][i]}} : raw["tasks"][i];
    r.expect_object(e, p);
    r.reject_unknown_keys(e, p, {"name", "label", "params"});
    if (!e.contains("name")) r.fail(ptr(p, "name"), "required field is missing");
    const std::string name = r.string(e["name"], ptr(p, "name"));
    const std::string label = e.contains("label") ? r.string(e["label"], ptr(p, "label")) : name;
    if (label.empty()) r.fail(ptr(p, "label"), "must not be empty");
    if (!task_labels.insert(label).second)
      r.fail(ptr(p, "label"), "label \"" + label + "\" is used twice; give each entry of a task a distinct label");
    json params = e.value("params", json::object());
    if (!params.is_object()) r.fail(ptr(p, "params"), "expected an object, got " + describe_json(params));
    const task_rules::verdict v = rules.check(name, params);
    if (!v.known)
      r.fail(ptr(p, "name"), "unknown task \"" + name + "\"" + did_you_mean(name, rules.names) + " (known: " + known + ")");
    if (!v.problem.empty()) r.fail(ptr(p, "params") + v.params_pointer, v.problem);
    min_lengths.emplace_back(name, v.min_context_length);
    tasks_out.push_back({{"name", name}, {"label", label}, {"params", params}});
  }
  return tasks_out;
}

json resolve_lengths(const json& raw, const json_reader& r,
                     const std::vector<std::pair<std::string, std::uint32_t>>& min_lengths) {
  if (!raw.contains("context_lengths")) r.fail("/context_lengths", "required field is missing");
  r.expect_array(raw["context_lengths"], "/context_lengths", true);
  json lengths = json::array();
  std::unordered_map<std::int64_t, std::size_t> seen;  // length -> index
  for (std::size_t i = 0; i < raw["context_lengths"].size(); ++i) {
    const auto n = r.integer(raw["context_lengths"][i], ptr("/context_lengths", i), 1, 1 << 24);
    for (const auto& [name, min_length] : min_lengths)
      if (n < min_length)
        r.fail(ptr("/context_lengths", i), "task " + name + " needs at least " + std::to_string(min_length) +
                                               " tokens, got " + std::to_string(n));
    if (const auto [it, fresh] = seen.emplace(n, i); !fresh)
      r.fail(ptr("/context_lengths", i), "context length " + std::to_string(n) + " is listed twice (also at index " +
                                             std::to_string(it->second) + ")");
    lengths.push_back(n);
  }
  return lengths;
}

json resolve_seeds(const json& raw, const json_reader& r) {
  const json seeds = raw.value("seeds", json::array({0}));
  r.expect_array(seeds, "/seeds", true);
  json seeds_out = json::array();
  std::unordered_map<std::int64_t, std::size_t> seen;  // seed -> index: linear in the list
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    const auto seed = r.integer(seeds[i], ptr("/seeds", i), 0, INT64_MAX);
    if (const auto [it, fresh] = seen.emplace(seed, i); !fresh)
      r.fail(ptr("/seeds", i), "seed " + std::to_string(seed) + " is listed twice (also at index " +
                                   std::to_string(it->second) + ")");
    seeds_out.push_back(seed);
  }
  return seeds_out;
}

// A config's name becomes the default results folder's name (results/NAME-TIME), so it
// must be one plain path component: no separator, not "." or "..", no control character.
std::string resolve_name(const json& raw, const json_reader& r, const fs::path& file) {
  const std::string name = raw.contains("name") ? r.string(raw["name"], "/name") : file.stem().string();
  const char* problem = nullptr;
  if (name.empty()) problem = "must not be empty";
  else if (name.size() > 100) problem = "is longer than 100 characters";
  else if (name.front() == '.') problem = "must not start with '.' (it names the results folder)";
  else if (name.find_first_of("/\\") != std::string::npos) problem = "must not contain '/' or '\\' (it names the results folder)";
  else if (std::any_of(name.begin(), name.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
    problem = "must not contain control characters";
  if (problem) r.fail("/name", "\"" + name.substr(0, 100) + "\" " + problem);
  return name;
}

// Metrics computed only when asked: {"fidelity": true} runs dense attention beside the
// policy's at every step (docs/config.md, "Fidelity").
json resolve_metrics(const json& raw, const json_reader& r) {
  const json metrics = raw.value("metrics", json::object());
  r.expect_object(metrics, "/metrics");
  r.reject_unknown_keys(metrics, "/metrics", {"fidelity"});
  const json fidelity = metrics.value("fidelity", json(false));
  if (!fidelity.is_boolean()) r.fail("/metrics/fidelity", "expected true or false, got " + describe_json(fidelity));
  return json{{"fidelity", fidelity}};
}

// The grid's size, checked before any cell list is built.
void check_grid_size(const json& out, const json_reader& r) {
  std::uint64_t cells = 1;
  for (const char* axis : {"tasks", "context_lengths", "policies", "terminators", "seeds"}) {
    cells *= out[axis].size();
    if (cells > kMaxGridCells) break;
  }
  if (cells > kMaxGridCells)
    r.fail("", "the grid (tasks x context_lengths x policies x terminators x seeds) has more than " +
                   std::to_string(kMaxGridCells) + " cells; split the config");
}

// Validates raw (or already resolved) JSON and returns it with every default filled in.
json resolve(const json& raw, const json_reader& r, const fs::path& file, const task_rules& rules) {
  r.expect_object(raw, "");
  r.reject_unknown_keys(raw, "", {"name", "description", "model", "tasks", "context_lengths", "policies",
                                  "terminators", "seeds", "samples", "batch", "threads", "memory_limit_gib", "metrics"});
  json out = json::object();
  out["name"] = resolve_name(raw, r, file);
  out["description"] = raw.contains("description") ? r.string(raw["description"], "/description") : "";
  out["model"] = resolve_model(raw, r);
  std::vector<std::pair<std::string, std::uint32_t>> min_lengths;
  out["tasks"] = resolve_tasks(raw, r, rules, min_lengths);
  out["context_lengths"] = resolve_lengths(raw, r, min_lengths);
  if (!raw.contains("policies")) r.fail("/policies", "required field is missing");
  out["policies"] = resolve_plugin_list(r, raw["policies"], "/policies");
  out["terminators"] = resolve_plugin_list(r, raw.value("terminators", json::array({"none"})), "/terminators");
  out["seeds"] = resolve_seeds(raw, r);
  check_grid_size(out, r);
  out["samples"] = raw.contains("samples") ? r.integer(raw["samples"], "/samples", 1, 1000000) : 10;
  out["batch"] = raw.contains("batch") ? r.integer(raw["batch"], "/batch", 1, 256) : 1;
  out["threads"] = raw.contains("threads") ? r.integer(raw["threads"], "/threads", 0, 1024) : 0;
  out["memory_limit_gib"] =
      raw.contains("memory_limit_gib") ? r.number(raw["memory_limit_gib"], "/memory_limit_gib", 0.0, 1e6) : 0.0;
  out["metrics"] = resolve_metrics(raw, r);
  return out;
}

// Applies one "a.b.0.c=value" override to resolved JSON. The path must exist, except
// for new keys inside a "params" object (plugins and tasks check their own params).
void apply_override(json& config, const std::string& spec) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw usage_error("--set " + spec + ": expected PATH=VALUE, e.g. --set samples=20");
  const std::string path = spec.substr(0, eq);
  const std::string text = spec.substr(eq + 1);
  try {  // a path or bare word becomes a JSON key or string, which must be UTF-8
    (void)json(spec).dump();
  } catch (const json::exception&) {
    throw usage_error("--set " + path + ": not valid UTF-8");
  }
  json value;
  try {
    check_json_depth(text, kConfigLimits.max_depth, "--set " + path);
  } catch (const config_error& e) {
    throw usage_error(e.what());
  }
  try {
    value = json::parse(text);
  } catch (const json::out_of_range&) {
    throw usage_error("--set " + spec + ": the number " + text + " is out of range");
  } catch (const json::exception&) {
    value = text;  // a bare word is a string
  }
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  json* node = &config;
  std::string pointer;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& key = parts[i];
    const bool last = i + 1 == parts.size();
    const bool in_params = !pointer.empty() && pointer.size() >= 7 && pointer.ends_with("/params");
    pointer += "/" + key;
    if (node->is_array()) {
      std::size_t index = 0;
      try {
        std::size_t used = 0;
        index = std::stoul(key, &used);
        if (used != key.size()) throw std::invalid_argument(key);
      } catch (const std::exception&) {
        throw usage_error("--set " + spec + ": " + pointer + ": expected an array index");
      }
      if (index >= node->size())
        throw usage_error("--set " + spec + ": unknown path " + pointer + " (the array has " +
                          std::to_string(node->size()) + " entries)");
      node = &(*node)[index];
    } else if (node->is_object()) {
      // A plugin's params take new keys; so does the model, for the key of a kind that
      // --set model.kind switches to.
      const bool model_key = last && (pointer == "/model/weights" || pointer == "/model/profile");
      if (!node->contains(key) && !(in_params && last) && !model_key) {
        std::vector<std::string> keys;
        for (const auto& [k, v] : node->items()) keys.push_back(k);
        throw usage_error("--set " + spec + ": unknown path " + pointer + did_you_mean(key, keys));
      }
      node = &(*node)[key];
    } else {
      throw usage_error("--set " + spec + ": unknown path " + pointer + " (" +
                        pointer.substr(0, pointer.rfind('/')) + " is not an object or array)");
    }
  }
  *node = value;
}

}  // namespace

run_config load_config(const fs::path& file, const task_rules& rules, const std::vector<std::string>& overrides) {
  return load_config_text(read_text_file(file, kConfigLimits.max_bytes), file, rules, overrides);
}

run_config load_config_text(std::string_view text, const fs::path& file, const task_rules& rules,
                            const std::vector<std::string>& overrides) {
  const json raw = parse_json_text<json>(text, file.string(), kConfigLimits);
  const json_reader r(file.string());
  json resolved = resolve(raw, r, file, rules);
  if (!overrides.empty()) {
    for (const auto& o : overrides) apply_override(resolved, o);
    // --set model.kind=... switches the model: the other kind's key, left by resolving the
    // file, goes, unless an override set it too (then resolving names the clash).
    auto overridden = [&](const std::string& path) {
      return std::any_of(overrides.begin(), overrides.end(), [&](const std::string& o) { return o.starts_with(path + "="); });
    };
    json& model = resolved["model"];
    // A whole new model object (--set model={...}) keeps only its own keys; one without
    // "kind" is the mechanistic model's.
    if (!overridden("model") && model.is_object()) {
      const std::string kind = model.contains("kind") && model["kind"].is_string() ? model["kind"].get<std::string>()
                                                                                   : "mechanistic";
      if (kind == "trained" && !overridden("model.profile")) model.erase("profile");
      if (kind == "mechanistic" && !overridden("model.weights")) model.erase("weights");
    }
    const json_reader after(file.string() + " (after --set)");
    resolved = resolve(resolved, after, file, rules);
  }

  run_config c;
  c.file = file;
  c.resolved = resolved;
  c.name = resolved["name"];
  c.model_kind = resolved["model"]["kind"];
  c.profile = resolved["model"].value("profile", "");
  c.weights = resolved["model"].value("weights", "");
  c.dtype = *kernels::dtype_from_name(resolved["model"]["dtype"].get<std::string>());
  c.block_size = resolved["model"]["block_size"];
  c.model_seed = resolved["model"]["seed"];
  for (const auto& t : resolved["tasks"]) c.tasks.push_back({t["name"], t["label"], t["params"]});
  for (const auto& n : resolved["context_lengths"]) c.context_lengths.push_back(n);
  auto plugins = [](const json& list) {
    std::vector<plugin_spec> out;
    for (const auto& e : list) out.push_back({e["name"], e["label"], e["params"], e["plugin"]});
    return out;
  };
  c.policies = plugins(resolved["policies"]);
  c.terminators = plugins(resolved["terminators"]);
  for (const auto& s : resolved["seeds"]) c.seeds.push_back(s);
  c.samples = resolved["samples"];
  c.batch = resolved["batch"];
  c.threads = resolved["threads"];
  c.memory_limit_gib = resolved["memory_limit_gib"];
  c.fidelity = resolved["metrics"]["fidelity"];
  return c;
}

// The folders that hold attnbench's data (configs/, models/), in the order they are
// searched: beside the executable (a binary copied with its data), the source tree it
// was built from, the share folder of an install moved to another prefix
// (EXE/../share/attnbench), and the share folder it was installed to.
std::vector<fs::path> data_dirs() {
  std::vector<fs::path> dirs;
  const fs::path exe = executable_dir();
  if (!exe.empty()) dirs.push_back(exe);
  if (*ATTNBENCH_SOURCE_DIR) dirs.emplace_back(ATTNBENCH_SOURCE_DIR);
  if (!exe.empty()) dirs.push_back(exe.parent_path() / "share" / "attnbench");
  if (*ATTNBENCH_INSTALL_DATADIR) dirs.push_back(fs::path(ATTNBENCH_INSTALL_DATADIR) / "attnbench");
  std::vector<fs::path> out;
  for (const auto& d : dirs)
    if (std::find(out.begin(), out.end(), d.lexically_normal()) == out.end()) out.push_back(d.lexically_normal());
  return out;
}

std::vector<fs::path> profile_dirs() {
  std::vector<fs::path> dirs;
  for (const auto& d : data_dirs()) dirs.push_back(d / "configs" / "profiles");
  return dirs;
}

fs::path resolve_profile_path(const run_config& config) {
  const std::string& p = config.profile;
  if (p.find('/') != std::string::npos || p.ends_with(".json")) {
    fs::path path(p);
    return path.is_absolute() ? path : config.file.parent_path() / path;
  }
  const std::string name = p + ".json";
  std::vector<fs::path> candidates = {config.file.parent_path() / "profiles" / name};
  for (const auto& dir : profile_dirs()) candidates.push_back(dir / name);
  std::string tried;
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::exists(c, ec)) return c;
    tried += (tried.empty() ? "" : ", ") + c.string();
  }
  throw config_error(config.file.string(), "/model/profile", "no profile named \"" + p + "\" (looked in " + tried + ")");
}

fs::path resolve_weights_path(const run_config& config) {
  const fs::path p(config.weights);
  std::vector<fs::path> candidates;
  if (p.is_absolute()) {
    candidates.push_back(p);
  } else {
    candidates = {config.file.parent_path() / p, fs::current_path() / p};
    for (const auto& d : data_dirs()) candidates.push_back(d / p);
  }
  std::string tried;
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::exists(c / "config.json", ec)) return c;
    tried += (tried.empty() ? "" : ", ") + c.string();
  }
  throw config_error(config.file.string(), "/model/weights",
                     "no trained model folder \"" + config.weights + "\" (a folder with config.json; looked in " + tried + ")");
}

}  // namespace attnbench
