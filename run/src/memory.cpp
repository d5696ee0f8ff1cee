#include <attnbench/run/memory.hpp>

#include <attnbench/host/errors.hpp>
#include <attnbench/host/machine.hpp>

#include <attnbench/kernels/dtype.hpp>

#include <algorithm>
#include <cstdio>

namespace attnbench {

std::uint64_t estimate_cell_bytes(const run_config& c, const model_shape& p, std::uint32_t context_length) {
  const std::uint64_t tokens = context_length + 64;  // generated tokens
  const std::uint64_t per_token = 2ull * p.head_dim * kernels::dtype_size(c.dtype) + sizeof(std::int64_t);
  const std::uint64_t blocks = (tokens + c.block_size - 1) / c.block_size;
  const std::uint64_t per_head = tokens * per_token + blocks * (5ull * p.head_dim * sizeof(float) + 64);
  // The prompt and scratch are small next to the cache; 10% headroom covers them. A
  // batch holds one cache per sequence; with fidelity counted twice, since a policy that
  // evicts gets a second, whole cache (which policies evict is not known here).
  const std::uint64_t sequences = std::max<std::uint32_t>(1, std::min(c.batch, c.samples)) * (c.fidelity ? 2 : 1);
  return static_cast<std::uint64_t>(static_cast<double>(per_head * p.n_layers * p.n_kv_heads) * 1.1) * sequences +
         (64ull << 20);
}

void check_memory(const run_config& c, const model_shape& p) {
  const std::uint32_t longest = *std::max_element(c.context_lengths.begin(), c.context_lengths.end());
  const std::uint64_t need = estimate_cell_bytes(c, p, longest);
  const bool configured = c.memory_limit_gib > 0;
  const memory_budget budget = configured ? memory_budget{} : available_memory();
  const double limit = configured ? c.memory_limit_gib * double(1ull << 30) : 0.9 * double(budget.bytes);
  if (static_cast<double>(need) > limit) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s: a cell at context length %u on profile '%s' (batch %u) needs about %.2f GiB, more than %s (%.2f GiB); "
                  "use shorter context_lengths, a smaller profile, dtype or batch, or raise memory_limit_gib",
                  c.file.string().c_str(), longest, p.name.c_str(), std::min(c.batch, c.samples), double(need) / double(1ull << 30),
                  configured ? "memory_limit_gib" : ("90% of " + budget.source).c_str(), limit / double(1ull << 30));
    throw resource_error(buf);
  }
}

}  // namespace attnbench
