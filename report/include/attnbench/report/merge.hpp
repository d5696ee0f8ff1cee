// `attnbench merge --out DIR SHARD...`: joins the results folders of one config's shards
// (`run --shard I/N`) into one run folder, cells in grid order, with the suites' tables.
#pragma once

#include <filesystem>
#include <vector>

namespace attnbench {

struct merge_report {
  std::size_t cells = 0, grid_cells = 0;  // merged, and in the config's grid
};

// Throws config_error naming the folder when a folder is not a results folder, when the
// folders come from different configs, or when two folders hold the same cell; throws
// output_error when OUT exists with results or cannot be written.
merge_report merge_runs(const std::vector<std::filesystem::path>& shards, const std::filesystem::path& out);

}  // namespace attnbench
