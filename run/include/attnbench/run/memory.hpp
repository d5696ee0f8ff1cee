// The memory check before a run: the largest cell must fit in the configured limit or in
// the memory available now.
#pragma once

#include <attnbench/host/config.hpp>
#include <attnbench/model/model.hpp>

#include <cstdint>

namespace attnbench {

// Bytes a cell needs at most: K/V and metadata of the full context for each sequence of
// a batch (two with metrics.fidelity, which gives a policy that evicts a second cache),
// with headroom.
std::uint64_t estimate_cell_bytes(const run_config& config, const model_shape& shape, std::uint32_t context_length);
// Throws resource_error naming the config, length, profile and figures when the longest
// context length's cell does not fit.
void check_memory(const run_config& config, const model_shape& shape);

}  // namespace attnbench
