// `attnbench merge --out DIR SHARD...`: joins the results folders of one config's shards
// (`run --shard I/N`) into one run folder, cells in grid order, with the suites' tables.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace attnbench {

struct merge_report {
  std::size_t cells = 0, grid_cells = 0;  // merged, and in the config's grid
  std::vector<std::string> missing;       // ids of the grid's cells in no folder, in grid order
  // Per folder of a cost-balanced shard (meta.shard.estimated_s), in the folders' order:
  // the estimated seconds and the measured ones (its cells' wall_s); empty otherwise.
  std::vector<double> estimated_s, measured_s;
};

// The ids of a resolved config's grid (meta.config of a results file), in grid order.
std::vector<std::string> config_cell_ids(const nlohmann::ordered_json& config);

// Throws config_error naming the folder when a folder is not a results folder, when the
// folders come from different configs, or when two folders hold the same cell; throws
// harness_error(exit_incomplete) naming the missing cells when the grid has cells in no
// folder, unless allow_missing (the merged folder's status is then "incomplete"); throws
// output_error when OUT exists with results or cannot be written.
merge_report merge_runs(const std::vector<std::filesystem::path>& shards, const std::filesystem::path& out,
                        bool allow_missing = false);

}  // namespace attnbench
