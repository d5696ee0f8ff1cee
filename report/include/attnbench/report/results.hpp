// One folder per run: results.json (a meta block, then one record per finished cell,
// rewritten atomically after each cell) and samples.jsonl (one line per sample, appended
// when its cell finishes). A crash or Ctrl-C loses no finished cell; resume skips them.
#pragma once

#include <attnbench/run/cells.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace attnbench {

inline constexpr int kResultsSchemaVersion = 1;

// Writes text to path through a temporary file, fsync and rename, so readers (and a
// resumed run after a crash or power loss) never see a half-written file. Throws
// output_error.
void write_atomically(const std::filesystem::path& path, const std::string& text);

// Reads DIR/results.json of a finished or interrupted run. Throws config_error naming
// the folder or file when it is missing, not JSON, or has no meta.config and cells.
nlohmann::ordered_json read_results_file(const std::filesystem::path& dir);

// A cell id (TASK-LABEL/LENGTH/POLICY/TERMINATOR/SEED) with its policy and terminator
// parts replaced: the id of the same task, length and seed under another policy, e.g.
// dense without a terminator. Empty for an id of another shape.
std::string cell_id_with(const std::string& id, const std::string& policy, const std::string& terminator);

class results_writer final : public cell_sink {
 public:
  // Creates (or, with resume, reopens) the folder. Throws output_error when it is not
  // writable, when it already holds results and resume is off, or when resume finds
  // results of another config.
  results_writer(std::filesystem::path dir, nlohmann::ordered_json meta, bool resume);

  const std::filesystem::path& dir() const { return dir_; }
  bool has_cell(const std::string& id) const override { return finished_.count(id) != 0; }
  std::size_t finished_cells() const override { return finished_.size(); }
  std::string location() const override { return dir_.string(); }
  // Appends the cell's samples, then rewrites results.json with the cell added.
  void add_cell(const nlohmann::ordered_json& cell, const std::vector<nlohmann::ordered_json>& samples) override;
  const nlohmann::ordered_json& document() const { return doc_; }
  // Sets one field of the meta block and rewrites results.json.
  void set_meta(const std::string& key, const nlohmann::ordered_json& value);
  // Sets one field of the summary block (suite scores) and rewrites results.json.
  void set_summary(const std::string& key, const nlohmann::ordered_json& value);

 private:
  void write_results();

  std::filesystem::path dir_;
  nlohmann::ordered_json doc_;
  std::set<std::string> finished_;
};

}  // namespace attnbench
