// Decode attention for one GQA group: the query heads of one KV head attend, in one pass
// over each K/V block, to what a plan entry lists (all blocks, a block list or a token
// list), with fp32 online softmax. A terminator hook, when given, is called after each
// block (a chunk of block_size tokens for token lists) and may stop the traversal.
//
// decode_reference computes the same attention in float64 from the same plan, for tests.
#pragma once

#include <attnbench/plugin.h>

#include <cstdint>

namespace attnbench::kernels {

struct terminator_hook {
  const attnbench_terminator_ops* ops = nullptr;  // nullptr: no terminator
  const void* instance = nullptr;
  void* state = nullptr;  // per-traversal state, already reset by the caller
};

struct decode_counters {
  std::uint64_t blocks_planned = 0;
  std::uint64_t blocks_visited = 0;
  std::uint64_t tokens_planned = 0;
  std::uint64_t tokens_visited = 0;
};

struct decode_args {
  const float* queries = nullptr;  // [n_query_heads * head_dim]
  std::uint32_t n_query_heads = 1;
  std::uint32_t head_dim = 0;
  float scale = 1.0f;  // logits are scale * q.k
  const attnbench_kv_head_view* kv = nullptr;
  std::uint32_t block_size = 64;  // tokens
  attnbench_dtype dtype = ATTNBENCH_DTYPE_FP32;
  const attnbench_plan_entry* entry = nullptr;
  terminator_hook hook{};
  float* out = nullptr;  // [n_query_heads * head_dim], normalised; zeros when nothing attended
  float* lse = nullptr;  // optional [n_query_heads]: log of the softmax denominator
};

// Number of blocks (chunks) and tokens a plan entry makes the kernel visit.
void plan_entry_size(const attnbench_plan_entry& entry, const attnbench_kv_head_view& kv,
                     std::uint32_t block_size, std::uint64_t* blocks, std::uint64_t* tokens);

// Returns ATTNBENCH_STATUS_INVALID_ARGUMENT on a null pointer or an index out of range.
// Adds to *counters when it is not null.
attnbench_status decode_group(const decode_args& args, decode_counters* counters);

// float64 reference over the first max_blocks chunks of the plan (all when max_blocks is
// UINT64_MAX). out is [n_query_heads * head_dim].
attnbench_status decode_reference(const decode_args& args, std::uint64_t max_blocks, double* out);

}  // namespace attnbench::kernels
