// One folder per run: results.json (a meta block, one record per finished cell and one
// per failed cell, rewritten atomically after each cell) and samples.jsonl (one line per
// sample, appended when its cell finishes). The folder is locked by its run; files are
// never written through a symbolic link. A crash or Ctrl-C loses no finished cell;
// --resume checks the two files against each other and runs again what is incomplete.
#pragma once

#include <attnbench/host/files.hpp>
#include <attnbench/run/cells.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace attnbench {

// The results.json layout this attnbench writes and reads; another is refused.
inline constexpr int kResultsSchemaVersion = 1;

// Checks a parsed results document: the meta block (schema version, config), every cell
// and failure record with the fields and types that report, compare and merge read.
// Throws config_error(where, JSON pointer, ...).
void check_results_document(const nlohmann::ordered_json& doc, const std::string& where);

// Parses and checks results.json text; `where` names it in errors.
nlohmann::ordered_json parse_results_text(std::string_view text, const std::string& where);

// Reads DIR/results.json (not through a symbolic link) and checks it. Throws config_error
// naming the folder or file.
nlohmann::ordered_json read_results_file(const std::filesystem::path& dir);

// samples.jsonl's records in file order. A last line without its newline (torn by a
// crash while appending) is left out and counted in `torn`; with `lenient`, any other
// line that is not a sample record is left out and counted in `damaged`, else it is a
// config_error naming its line.
struct sample_records {
  std::vector<nlohmann::ordered_json> records;
  std::vector<std::string> lines;  // each record's line as written, without its newline
  std::size_t torn = 0, damaged = 0;
};
sample_records parse_sample_records(std::string_view text, const std::string& where, bool lenient);
// DIR/samples.jsonl, strict but for a torn last line; no file gives no records.
sample_records read_sample_records(const std::filesystem::path& dir);

// How many cells the run of this document was asked for: its shard of the config's grid.
std::size_t expected_cells(const nlohmann::ordered_json& doc);
// "" for a run that finished every cell; else one sentence: how many cells finished and
// failed of how many, and whether the run is still in progress (its lock is held).
std::string incompleteness(const nlohmann::ordered_json& doc, const std::filesystem::path& dir);

// A cell id (TASK-LABEL/LENGTH/POLICY/TERMINATOR/SEED) with its policy and terminator
// parts replaced: the id of the same task, length and seed under another policy, e.g.
// dense without a terminator. Empty for an id of another shape.
std::string cell_id_with(const std::string& id, const std::string& policy, const std::string& terminator);

class results_writer final : public cell_sink {
 public:
  // Takes the opened folder and locks it (output_error naming the holder's pid when
  // another run holds it). A fresh run needs a folder without results.json. With resume,
  // results.json must hold the same config and shard; samples.jsonl is checked against
  // it: a torn last line is cut, and cells whose sample records are not all there
  // exactly once are dropped, to run again (repaired_cells() names them).
  results_writer(folder dir, nlohmann::ordered_json meta, bool resume);

  const std::filesystem::path& dir() const { return dir_.path(); }
  bool has_cell(const std::string& id) const override { return finished_.count(id) != 0; }
  std::size_t finished_cells() const override { return finished_.size(); }
  std::size_t failed_cells() const { return doc_["failures"].size(); }
  std::string location() const override { return dir_.path().string(); }
  // Appends the cell's samples, then rewrites results.json with the cell added.
  void add_cell(const nlohmann::ordered_json& cell, const std::vector<nlohmann::ordered_json>& samples) override;
  // Records a failed cell (replacing an earlier record of the same id) in results.json.
  void add_failure(const nlohmann::ordered_json& failure) override;
  void set_read_bandwidth(double bytes_per_s, const std::string& method) override {
    set_meta("read_bandwidth_bytes_per_s", bytes_per_s);
    set_meta("read_ceiling_method", method);
  }
  const nlohmann::ordered_json& document() const { return doc_; }
  const std::vector<std::string>& repaired_cells() const { return repaired_; }
  // Sets one field of the meta block and rewrites results.json.
  void set_meta(const std::string& key, const nlohmann::ordered_json& value);
  // Sets one field of the summary block (suite scores) and rewrites results.json.
  void set_summary(const std::string& key, const nlohmann::ordered_json& value);

 private:
  void resume_from(const nlohmann::ordered_json& meta);
  void drop_failure(const nlohmann::ordered_json& id);  // the record of a cell, if any
  void write_results();

  folder dir_;
  folder_lock lock_;
  nlohmann::ordered_json doc_;
  std::set<std::string> finished_;
  std::vector<std::string> repaired_;
};

}  // namespace attnbench
