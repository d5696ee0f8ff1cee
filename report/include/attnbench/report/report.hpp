// `attnbench report RUN_DIR... [--out DIR]`: the tables people read (RULER, LongBench,
// efficiency) as markdown and CSV, the data of the plots, the plots themselves through
// scripts/plots.py (Debian's python3-matplotlib), and a report.md that links them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace attnbench {

struct report_options {
  std::filesystem::path out;     // default: RUN_DIR/report for one run; required for several
  std::filesystem::path plots_script;  // empty: no plots
};

struct report_result {
  std::filesystem::path dir;
  std::vector<std::string> files;  // written, relative to dir
  bool plotted = false;
  std::string plot_message;  // why plots are missing, when they are
  std::vector<std::string> warnings;  // e.g. a run that is incomplete
  std::string headline;  // the RULER score, LongBench and efficiency tables as terminal text
};

// scripts/plots.py of the source tree this binary was built from, or the installed copy.
std::filesystem::path default_plots_script();

// Throws config_error naming the folder for a folder that is not a results folder or
// when two folders hold the same cell; output_error when OUT cannot be written.
report_result write_report(const std::vector<std::filesystem::path>& runs, const report_options& options);

}  // namespace attnbench
