// The tables people read, each built in one place from a run's cells or summaries, and
// printed the same way by the console (run, merge) and by `report` (markdown, CSV).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace attnbench {

struct table {
  std::string title;  // printed above the console text; empty: none
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;  // per row, may be empty: printed after the row ("(not all 13 tasks)")
  std::string footnote;            // printed below the table; empty: none
  std::size_t label_columns = 2;   // leading columns that are labels (left-aligned on the console)

  void add(std::vector<std::string> row, std::string note = "");
  std::string markdown() const;
  std::string csv() const;
  // Aligned columns for a terminal: labels left, numbers right.
  std::string text() const;
};

// printf-style formatting of one number ("%.1f").
std::string format_number(const char* format, double x);

// One row per cell: policy, terminator, task, context, accuracy, skipped, decode tok/s.
table cells_table(const nlohmann::ordered_json& cells);
// RULER's score per policy and terminator: per length the mean over tasks, then the mean
// over lengths (from ruler_summary).
table ruler_score_table(const nlohmann::ordered_json& ruler);
// RULER per task and length, with each policy's mean row (from ruler_summary).
table ruler_task_table(const nlohmann::ordered_json& ruler);
// LongBench per task (short names), mean over lengths and seeds (from longbench_summary).
table longbench_task_table(const nlohmann::ordered_json& longbench);
// LongBench per category, overall, and overall per length bucket (from longbench_summary).
table longbench_category_table(const nlohmann::ordered_json& longbench);

// What the console prints after a run or a merge: the cells, then the suites' tables.
std::string console_tables(const nlohmann::ordered_json& results);

}  // namespace attnbench
