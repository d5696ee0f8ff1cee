#include <attnbench/report/results.hpp>

#include <attnbench/host/clock.hpp>
#include <attnbench/host/errors.hpp>
#include <attnbench/host/json.hpp>
#include <attnbench/run/grid.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

namespace attnbench {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// Whether each of a cell's sample records 0 .. samples-1 is there exactly once.
bool records_complete(const std::vector<std::uint64_t>& indices, std::uint64_t samples) {
  if (indices.size() != samples) return false;
  std::vector<bool> seen(samples, false);
  for (const auto i : indices) {
    if (i >= samples || seen[i]) return false;
    seen[i] = true;
  }
  return true;
}

}  // namespace

results_writer::results_writer(folder dir, ojson meta, bool resume) : dir_(std::move(dir)), lock_(dir_) {
  if (resume) {
    resume_from(meta);
  } else {
    if (dir_.has("results.json"))
      throw output_error("output folder " + dir_.path().string() +
                         " already holds results.json; use --resume to continue it or choose another --out");
    meta["status"] = "running";
    doc_ = ojson{{"meta", meta}, {"cells", ojson::array()}, {"failures", ojson::array()}};
    dir_.write_atomically("samples.jsonl", "");
  }
  write_results();  // also proves the folder is writable before any work starts
}

void results_writer::resume_from(const ojson& meta) {
  const fs::path results = dir_.path() / "results.json";
  if (!dir_.has("results.json"))
    throw output_error("--resume: " + results.string() + " does not exist; nothing to resume");
  const ojson old = parse_results_text(dir_.read("results.json", kResultsLimits.max_bytes), results.string());
  if (old["meta"]["config"] != meta["config"])
    throw output_error("--resume: " + results.string() +
                       " was written by a different config; resume with the same config and --set options, "
                       "or choose another --out folder");
  if (old["meta"].value("shard", ojson()) != meta.value("shard", ojson()))
    throw output_error("--resume: " + results.string() + " holds shard " + old["meta"].value("shard", ojson()).dump() +
                       ", not " + meta.value("shard", ojson()).dump() + "; resume with the same --shard");
  // samples.jsonl against results.json: a cell stays finished only when each of its
  // sample records is there exactly once; lines of other cells go.
  const std::string text = dir_.has("samples.jsonl") ? dir_.read("samples.jsonl", kResultsLimits.max_bytes) : "";
  const sample_records records =
      parse_sample_records(text, (dir_.path() / "samples.jsonl").string(), /*lenient=*/true);
  std::map<std::string, std::vector<std::uint64_t>> indices;
  for (const auto& r : records.records) indices[r["cell"].get<std::string>()].push_back(r["sample"].get<std::uint64_t>());
  const std::uint64_t samples = meta["config"]["samples"].get<std::uint64_t>();
  ojson cells = ojson::array();
  for (const auto& c : old["cells"]) {
    const std::string id = c["id"].get<std::string>();
    if (records_complete(indices[id], samples)) {
      cells.push_back(c);
      finished_.insert(id);
    } else {
      repaired_.push_back(id);
      spdlog::warn("--resume: cell {} has {} of its {} sample records in samples.jsonl; it runs again", id,
                   indices[id].size(), samples);
    }
  }
  std::string kept;
  std::size_t dropped = records.damaged;
  for (std::size_t i = 0; i < records.records.size(); ++i) {
    if (finished_.count(records.records[i]["cell"].get<std::string>())) kept += records.lines[i] + "\n";
    else ++dropped;
  }
  if (records.torn) spdlog::warn("--resume: samples.jsonl ended in a torn line (a crash while writing); it was cut");
  if (records.damaged) spdlog::warn("--resume: {} lines of samples.jsonl were not sample records; they were dropped", records.damaged);
  const std::size_t retried = old.contains("failures") ? old["failures"].size() : 0;
  if (retried) spdlog::info("--resume: {} failed cells run again", retried);
  dir_.write_atomically("samples.jsonl", kept);

  ojson m = meta;
  ojson resumes = old["meta"].value("resumes", ojson::array());
  resumes.push_back({{"at", time_text()},
                     {"repaired_cells", repaired_},
                     {"torn_line_cut", records.torn > 0},
                     {"sample_lines_dropped", dropped},
                     {"failed_cells_retried", retried}});
  m["resumes"] = resumes;
  m["status"] = "running";
  doc_ = ojson{{"meta", m}, {"cells", cells}, {"failures", ojson::array()}};
}

void results_writer::write_results() { dir_.write_atomically("results.json", doc_.dump(2) + "\n"); }

void results_writer::set_meta(const std::string& key, const ojson& value) {
  doc_["meta"][key] = value;
  write_results();
}

void results_writer::set_summary(const std::string& key, const ojson& value) {
  doc_["summary"][key] = value;
  write_results();
}

void results_writer::add_cell(const ojson& cell, const std::vector<ojson>& samples) {
  std::string text;
  for (const auto& s : samples) text += s.dump() + "\n";
  dir_.append("samples.jsonl", text);  // one write: a crash tears at most the last line
  // Cells stay in grid order, also when a resumed run fills a gap.
  ojson& cells = doc_["cells"];
  const auto at = std::find_if(cells.begin(), cells.end(), [&](const ojson& c) {
    return c["grid_index"].get<std::uint64_t>() > cell["grid_index"].get<std::uint64_t>();
  });
  cells.insert(at, cell);
  finished_.insert(cell["id"].get<std::string>());
  drop_failure(cell["id"]);
  write_results();
}

void results_writer::add_failure(const ojson& failure) {
  drop_failure(failure["id"]);
  doc_["failures"].push_back(failure);
  write_results();
}

void results_writer::drop_failure(const ojson& id) {
  ojson& failures = doc_["failures"];
  failures.erase(std::remove_if(failures.begin(), failures.end(), [&](const ojson& f) { return f["id"] == id; }),
                 failures.end());
}

std::string cell_id_with(const std::string& id, const std::string& policy, const std::string& terminator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t slash; (slash = id.find('/', start)) != std::string::npos; start = slash + 1)
    parts.push_back(id.substr(start, slash - start));
  parts.push_back(id.substr(start));
  if (parts.size() != 5) return "";
  return parts[0] + "/" + parts[1] + "/" + cell_id_part(policy) + "/" + cell_id_part(terminator) + "/" + parts[4];
}

}  // namespace attnbench
