#include <attnbench/report/merge.hpp>

#include <attnbench/host/errors.hpp>
#include <attnbench/report/results.hpp>
#include <attnbench/report/summary.hpp>
#include <attnbench/run/grid.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>

namespace attnbench {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;


std::vector<std::string> config_cell_ids(const ojson& config) {
  auto labels = [&](const char* axis) {
    std::vector<std::string> out;
    for (const auto& e : config.value(axis, ojson::array()))
      out.push_back(e.is_object() ? e.value("label", e.value("name", "")) : e.dump());
    return out;
  };
  std::vector<std::string> ids;
  const auto tasks = labels("tasks"), policies = labels("policies"), terminators = labels("terminators");
  for (const auto& t : tasks)
    for (const auto& n : config.value("context_lengths", ojson::array()))
      for (const auto& p : policies)
        for (const auto& m : terminators)
          for (const auto& s : config.value("seeds", ojson::array()))
            ids.push_back(cell_id(t, n.get<std::uint64_t>(), p, m, s.get<std::uint64_t>()));
  return ids;
}

namespace {

// The ids of the grid that no folder finished; each a failure in some folder says so.
std::vector<std::string> missing_cells(const ojson& config, const std::map<std::string, std::size_t>& owner,
                                       const std::vector<ojson>& docs) {
  std::set<std::string> failed;
  for (const auto& d : docs)
    for (const auto& f : d.value("failures", ojson::array())) failed.insert(f.value("id", ""));
  std::vector<std::string> out;
  for (const auto& id : config_cell_ids(config))
    if (!owner.count(id)) out.push_back(failed.count(id) ? id + " (failed)" : id);
  return out;
}

[[noreturn]] void refuse_missing(const std::vector<std::string>& missing, std::size_t folders) {
  std::string names;
  for (std::size_t i = 0; i < missing.size() && i < 10; ++i) names += (i ? ", " : "") + missing[i];
  if (missing.size() > 10) names += ", and " + std::to_string(missing.size() - 10) + " more";
  throw harness_error(exit_incomplete, std::to_string(missing.size()) + " of the grid's cells are in none of the " +
                                           std::to_string(folders) + " folders: " + names +
                                           "; run the shards that hold them again with --resume (or merge with "
                                           "--allow-missing to write an incomplete run)");
}

// Each folder's estimated and measured seconds, when every folder is a cost-balanced shard.
void add_balance(const std::vector<ojson>& docs, merge_report& r) {
  for (const auto& d : docs) {
    const ojson shard = d["meta"].value("shard", ojson::object());
    if (!shard.contains("estimated_s")) {
      r.estimated_s.clear(), r.measured_s.clear();
      return;
    }
    double wall = 0;
    for (const auto& c : d["cells"]) wall += c.value("wall_s", 0.0);
    r.estimated_s.push_back(shard["estimated_s"].get<double>());
    r.measured_s.push_back(wall);
  }
}

}  // namespace

merge_report merge_runs(const std::vector<fs::path>& shards, const fs::path& out, bool allow_missing) {
  if (shards.empty()) throw usage_error("merge needs at least one results folder");
  std::vector<ojson> docs;
  for (const auto& dir : shards) docs.push_back(read_results_file(dir));
  const ojson& config = docs[0]["meta"]["config"];
  for (std::size_t i = 1; i < docs.size(); ++i)
    if (docs[i]["meta"]["config"] != config)
      throw config_error(shards[i].string(), "/meta/config",
                         "differs from " + shards[0].string() + "'s; merge only shards of one config (same --set)");

  // Cells by grid position; the same cell in two folders is an error.
  std::map<std::string, std::size_t> owner;
  std::vector<std::pair<std::size_t, ojson>> cells;
  for (std::size_t i = 0; i < docs.size(); ++i)
    for (const auto& c : docs[i]["cells"]) {
      const std::string id = c.value("id", "");
      if (const auto [it, fresh] = owner.emplace(id, i); !fresh)
        throw config_error(shards[i].string(), "",
                           "holds cell " + id + ", which " + shards[it->second].string() + " holds too");
      cells.emplace_back(c["grid_index"].get<std::size_t>(), c);
    }
  std::stable_sort(cells.begin(), cells.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  merge_report r;
  r.missing = missing_cells(config, owner, docs);
  if (!r.missing.empty() && !allow_missing) refuse_missing(r.missing, shards.size());

  // Sample lines of the merged cells, in the cells' order (a torn last line of an
  // interrupted shard belongs to no finished cell).
  std::map<std::string, std::string> lines;
  for (const auto& dir : shards) {
    const sample_records records = read_sample_records(dir);
    for (std::size_t i = 0; i < records.records.size(); ++i)
      if (const std::string cell = records.records[i]["cell"].get<std::string>(); owner.count(cell))
        lines[cell] += records.lines[i] + "\n";
  }
  std::string samples;
  ojson merged_cells = ojson::array();
  for (auto& [index, c] : cells) {
    samples += lines[c.value("id", "")];
    merged_cells.push_back(std::move(c));
  }

  ojson meta = docs[0]["meta"];
  meta.erase("shard");
  ojson from = ojson::array();
  ojson bandwidth = ojson::array();
  for (std::size_t i = 0; i < docs.size(); ++i) {
    from.push_back({{"folder", shards[i].string()}, {"shard", docs[i]["meta"].value("shard", ojson())},
                    {"cells", docs[i]["cells"].size()}});
    bandwidth.push_back(docs[i]["meta"].value("read_bandwidth_bytes_per_s", 0.0));
  }
  meta["merged_from"] = from;
  meta["read_bandwidth_bytes_per_s_by_folder"] = bandwidth;
  ojson failures = ojson::array();  // of cells no folder finished
  for (const auto& d : docs)
    for (const auto& f : d.value("failures", ojson::array()))
      if (!owner.count(f["id"].get<std::string>())) failures.push_back(f);
  ojson doc = {{"meta", meta}, {"cells", merged_cells}, {"failures", failures}};
  doc["meta"]["status"] = failures.empty() && merged_cells.size() == expected_cells(doc) ? "complete" : "incomplete";
  if (const auto ruler = ruler_summary(doc["cells"]); !ruler.empty()) doc["summary"]["ruler"] = ruler;
  if (const auto lb = longbench_summary(doc["cells"]); !lb.empty()) doc["summary"]["longbench"] = lb;

  const folder dir = folder::open(out, folder::create::parents);
  const folder_lock lock(dir);
  if (dir.has("results.json"))
    throw output_error("output folder " + out.string() + " already holds results.json; choose another --out");
  dir.write_atomically("samples.jsonl", samples);
  dir.write_atomically("results.json", doc.dump(2) + "\n");

  add_balance(docs, r);
  r.cells = merged_cells.size();
  std::size_t grid = 1;
  for (const char* key : {"tasks", "context_lengths", "policies", "terminators", "seeds"})
    grid *= config.contains(key) && config[key].is_array() ? config[key].size() : 1;
  r.grid_cells = grid;
  return r;
}

}  // namespace attnbench
