// Reading results folders for resume, report, compare and merge: results.json checked
// field by field (what those commands read, with the types they read it as), and
// samples.jsonl line by line.
#include <attnbench/report/results.hpp>

#include <attnbench/host/errors.hpp>
#include <attnbench/host/files.hpp>
#include <attnbench/host/json.hpp>

#include <cmath>
#include <unordered_set>

namespace attnbench {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// Checked access to a results document; every failure names the file and JSON pointer.
struct checker {
  std::string where;
  [[noreturn]] void fail(const std::string& pointer, const std::string& message) const {
    throw config_error(where, pointer.empty() ? "/" : pointer, message);
  }
  const ojson& field(const ojson& obj, const std::string& pointer, const char* key) const {
    if (!obj.contains(key)) fail(pointer + "/" + key, "required field is missing");
    return obj[key];
  }
  void object(const ojson& v, const std::string& pointer) const {
    if (!v.is_object()) fail(pointer, std::string("expected an object, got ") + v.type_name());
  }
  void array(const ojson& v, const std::string& pointer) const {
    if (!v.is_array()) fail(pointer, std::string("expected an array, got ") + v.type_name());
  }
  void string(const ojson& v, const std::string& pointer) const {
    if (!v.is_string()) fail(pointer, std::string("expected a string, got ") + v.type_name());
  }
  void count(const ojson& v, const std::string& pointer) const {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
      fail(pointer, std::string("expected a non-negative integer, got ") + v.type_name() + " " + v.dump());
  }
  void number(const ojson& v, const std::string& pointer) const {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      fail(pointer, std::string("expected a finite number, got ") + v.type_name());
  }
  // Optional fields: checked only when present.
  template <class F>
  void optional(const ojson& obj, const std::string& pointer, const char* key, F check) const {
    if (obj.contains(key)) (this->*check)(obj[key], pointer + "/" + key);
  }
};

// Plugin entries of a resolved config: {name, label, params, plugin}.
void check_plugin_list(const checker& k, const ojson& list, const std::string& p) {
  k.array(list, p);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string e = p + "/" + std::to_string(i);
    k.object(list[i], e);
    k.string(k.field(list[i], e, "name"), e + "/name");
    k.string(k.field(list[i], e, "label"), e + "/label");
    k.object(k.field(list[i], e, "params"), e + "/params");
    k.optional(list[i], e, "plugin", &checker::string);
  }
}

void check_config(const checker& k, const ojson& config) {
  const std::string p = "/meta/config";
  k.object(config, p);
  k.string(k.field(config, p, "name"), p + "/name");
  k.object(k.field(config, p, "model"), p + "/model");
  const ojson& tasks = k.field(config, p, "tasks");
  k.array(tasks, p + "/tasks");
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const std::string e = p + "/tasks/" + std::to_string(i);
    k.object(tasks[i], e);
    k.string(k.field(tasks[i], e, "name"), e + "/name");
    k.string(k.field(tasks[i], e, "label"), e + "/label");
    k.object(k.field(tasks[i], e, "params"), e + "/params");
  }
  for (const char* axis : {"context_lengths", "seeds"}) {
    const ojson& list = k.field(config, p, axis);
    k.array(list, p + "/" + axis);
    for (std::size_t i = 0; i < list.size(); ++i) k.count(list[i], p + "/" + axis + "/" + std::to_string(i));
  }
  check_plugin_list(k, k.field(config, p, "policies"), p + "/policies");
  check_plugin_list(k, k.field(config, p, "terminators"), p + "/terminators");
  k.count(k.field(config, p, "samples"), p + "/samples");
}

void check_meta(const checker& k, const ojson& meta) {
  k.object(meta, "/meta");
  const ojson& version = k.field(meta, "/meta", "schema_version");
  if (!version.is_number_integer() || version.get<std::int64_t>() != kResultsSchemaVersion)
    k.fail("/meta/schema_version", "results schema version " + version.dump() + " is not one this attnbench reads (it reads version " +
                                       std::to_string(kResultsSchemaVersion) + ")");
  check_config(k, k.field(meta, "/meta", "config"));
  k.optional(meta, "/meta", "read_bandwidth_bytes_per_s", &checker::number);
  k.optional(meta, "/meta", "read_ceiling_method", &checker::string);
  k.optional(meta, "/meta", "created", &checker::string);
  k.optional(meta, "/meta", "config_file", &checker::string);
  k.optional(meta, "/meta", "status", &checker::string);
  if (meta.contains("git") && !meta["git"].is_null()) {
    const ojson& git = meta["git"];
    k.object(git, "/meta/git");
    k.optional(git, "/meta/git", "commit", &checker::string);
    if (git.contains("dirty") && !git["dirty"].is_boolean()) k.fail("/meta/git/dirty", "expected true or false");
  }
  if (meta.contains("shard")) {
    const ojson& s = meta["shard"];
    k.object(s, "/meta/shard");
    k.count(k.field(s, "/meta/shard", "index"), "/meta/shard/index");
    k.count(k.field(s, "/meta/shard", "count"), "/meta/shard/count");
    if (s["index"].get<std::uint64_t>() >= s["count"].get<std::uint64_t>())
      k.fail("/meta/shard", "index must be less than count");
    if (s.contains("cells")) k.count(s["cells"], "/meta/shard/cells");
    if (s.contains("estimated_s")) k.number(s["estimated_s"], "/meta/shard/estimated_s");
    k.optional(s, "/meta/shard", "assignment", &checker::string);
  }
}

// Metrics report, compare and the tables read as numbers.
constexpr const char* kRequiredMetrics[] = {"accuracy", "blocks_skipped_frac", "decode_tokens_per_s"};
constexpr const char* kNumericMetrics[] = {
    "tokens_attended_frac", "kv_bytes_read_per_step", "kv_bytes_resident", "kv_bytes_resident_before_eviction",
    "selection_us_per_step", "attention_us_per_step", "prefill_ms", "attention_bytes_per_s", "bandwidth_ratio",
    "samples", "decode_steps", "blocks_planned", "blocks_visited", "kv_bytes_read_k", "kv_bytes_read_v"};

void check_cell(const checker& k, const ojson& c, const std::string& p) {
  k.object(c, p);
  k.string(k.field(c, p, "id"), p + "/id");
  if (c["id"].get_ref<const std::string&>().empty()) k.fail(p + "/id", "must not be empty");
  for (const char* key : {"task", "policy", "terminator"}) k.string(k.field(c, p, key), p + "/" + key);
  for (const char* key : {"grid_index", "context_length", "seed"}) k.count(k.field(c, p, key), p + "/" + key);
  k.optional(c, p, "metric", &checker::string);
  k.optional(c, p, "wall_s", &checker::number);
  const ojson& m = k.field(c, p, "metrics");
  k.object(m, p + "/metrics");
  for (const char* key : kRequiredMetrics) k.number(k.field(m, p + "/metrics", key), p + "/metrics/" + key);
  for (const char* key : kNumericMetrics) k.optional(m, p + "/metrics", key, &checker::number);
  k.optional(m, p + "/metrics", "policy_stats", &checker::object);
  k.optional(m, p + "/metrics", "terminator_stats", &checker::object);
}

void check_failure(const checker& k, const ojson& f, const std::string& p) {
  k.object(f, p);
  k.string(k.field(f, p, "id"), p + "/id");
  k.count(k.field(f, p, "grid_index"), p + "/grid_index");
  for (const char* key : {"reason", "message"}) k.string(k.field(f, p, key), p + "/" + key);
}

}  // namespace

void check_results_document(const ojson& doc, const std::string& where) {
  const checker k{where};
  k.object(doc, "");
  check_meta(k, k.field(doc, "", "meta"));
  const ojson& cells = k.field(doc, "", "cells");
  k.array(cells, "/cells");
  std::unordered_set<std::string> ids;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const std::string p = "/cells/" + std::to_string(i);
    check_cell(k, cells[i], p);
    if (!ids.insert(cells[i]["id"].get<std::string>()).second)
      k.fail(p + "/id", "cell '" + cells[i]["id"].get<std::string>() + "' is listed twice");
  }
  if (doc.contains("failures")) {
    k.array(doc["failures"], "/failures");
    for (std::size_t i = 0; i < doc["failures"].size(); ++i)
      check_failure(k, doc["failures"][i], "/failures/" + std::to_string(i));
  }
  k.optional(doc, "", "summary", &checker::object);
}

ojson parse_results_text(std::string_view text, const std::string& where) {
  ojson doc = parse_json_text<ojson>(text, where, kResultsLimits);
  check_results_document(doc, where);
  return doc;
}

ojson read_results_file(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw config_error(dir.string(), "", fs::exists(dir, ec) ? "not a results folder (not a folder)"
                                                             : "not a results folder (no such folder)");
  const fs::path file = dir / "results.json";
  if (!fs::exists(fs::symlink_status(file, ec)))
    throw config_error(dir.string(), "", "not a results folder (no results.json)");
  const folder f = folder::open(dir, folder::create::no);
  return parse_results_text(f.read("results.json", kResultsLimits.max_bytes), file.string());
}

sample_records parse_sample_records(std::string_view text, const std::string& where, bool lenient) {
  sample_records out;
  std::size_t line_no = 0;
  for (std::size_t start = 0; start < text.size();) {
    ++line_no;
    const std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {  // a torn last line
      ++out.torn;
      break;
    }
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    const std::string here = where + ":" + std::to_string(line_no);
    try {
      ojson r = parse_json_text<ojson>(line, here, kResultsLimits);
      const checker k{here};
      k.object(r, "");
      k.string(k.field(r, "", "cell"), "/cell");
      k.count(k.field(r, "", "sample"), "/sample");
      for (const char* key : {"score", "decode_ms", "generated_tokens", "prefill_ms", "prepare_ms"})
        k.optional(r, "", key, &checker::number);
      out.records.push_back(std::move(r));
      out.lines.emplace_back(line);
    } catch (const config_error&) {
      if (!lenient) throw;
      ++out.damaged;
    }
  }
  return out;
}

sample_records read_sample_records(const fs::path& dir) {
  const folder f = folder::open(dir, folder::create::no);
  if (!f.has("samples.jsonl")) return {};
  return parse_sample_records(f.read("samples.jsonl", kResultsLimits.max_bytes), (dir / "samples.jsonl").string(),
                              /*lenient=*/false);
}

std::size_t expected_cells(const ojson& doc) {
  const ojson& config = doc["meta"]["config"];
  std::size_t grid = 1;
  for (const char* axis : {"tasks", "context_lengths", "policies", "terminators", "seeds"}) grid *= config[axis].size();
  if (!doc["meta"].contains("shard")) return grid;
  const ojson& shard = doc["meta"]["shard"];
  if (shard.contains("cells")) return shard["cells"].get<std::size_t>();
  // Written before shards were balanced by cost: every count-th cell from index.
  const std::size_t index = shard["index"], count = shard["count"];
  return grid > index ? (grid - index + count - 1) / count : 0;
}

std::string incompleteness(const ojson& doc, const fs::path& dir) {
  const std::size_t expected = expected_cells(doc), finished = doc["cells"].size();
  const std::size_t failed = doc.contains("failures") ? doc["failures"].size() : 0;
  if (finished >= expected && failed == 0) return "";
  std::string text = "incomplete run: " + std::to_string(finished) + " of " + std::to_string(expected) + " cells finished";
  if (failed) text += ", " + std::to_string(failed) + " failed (see failures in results.json)";
  const long holder = folder_lock_holder(dir);
  if (holder != 0)
    text += "; the run is still in progress" + (holder > 0 ? " (pid " + std::to_string(holder) + ")" : std::string());
  else
    text += "; continue it with attnbench run CONFIG --resume --out " + dir.string();
  return text;
}

}  // namespace attnbench
