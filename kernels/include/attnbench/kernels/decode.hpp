// Decode attention. decode_group: the query heads of one KV head (a GQA group) attend,
// in one pass over each K/V block, to what a plan entry lists (all blocks, a block list
// or a token list), with fp32 online softmax. A terminator hook, when given, is called
// after each block (a chunk of block_size tokens for token lists) and may stop the
// traversal. decode_partial and merge_partials split a traversal over the sequence
// (split-K) and merge the parts by log-sum-exp; decode_layer runs every traversal of a
// layer on oneTBB threads and splits when there are fewer traversals than threads.
//
// decode_reference computes the same attention in float64 from the same plan, for tests.
#pragma once

#include <attnbench/plugin.h>

#include <cstddef>
#include <cstdint>
#include <vector>
#include <string>

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

// The one check of a plan against a layer's cache, before any kernel reads it: the
// granularity and number of entries, and per entry its kind and indices (present, in
// range, none listed twice). Returns "" or the problem, naming the entry.
std::string check_plan(const attnbench_plan& plan, const attnbench_kv_layer_view& kv, std::uint32_t n_query_heads);
// The same check of one entry against one KV head.
std::string check_plan_entry(const attnbench_plan_entry& entry, const attnbench_kv_head_view& kv);

// Returns ATTNBENCH_STATUS_INVALID_ARGUMENT on a null pointer or an entry that
// check_plan_entry rejects. Adds to *counters when it is not null.
attnbench_status decode_group(const decode_args& args, decode_counters* counters);

// An unnormalised part of a traversal: per query head the max logit, the sum of
// exp(logit - max) and the output accumulator [n_query_heads * head_dim].
struct partial_state {
  float* max;
  float* sum;
  float* acc;
};

// Traverses chunks [first_chunk, end_chunk) of the plan (args.out is not used) into
// `part`, which it initialises. The hook, if any, sees this part only.
attnbench_status decode_partial(const decode_args& args, std::uint64_t first_chunk, std::uint64_t end_chunk,
                                partial_state part, decode_counters* counters);

// Merges n_parts partials laid out part-major ([part][head] and [part][head][dim]) into
// normalised outputs [n_query_heads * head_dim] and optional lse [n_query_heads].
void merge_partials(std::uint32_t n_parts, std::uint32_t n_query_heads, std::uint32_t head_dim, const float* max,
                    const float* sum, const float* acc, float* out, float* lse);

// Everything one layer's decode step needs.
struct layer_decode_args {
  const float* queries = nullptr;  // [n_query_heads * head_dim]
  std::uint32_t n_query_heads = 0;
  float scale = 1.0f;
  const attnbench_kv_layer_view* kv = nullptr;
  const attnbench_plan* plan = nullptr;
  // Optional terminator: a fresh state of state_size bytes is reset for every traversal.
  // With a terminator, traversals are never split, so it always sees a whole traversal.
  const attnbench_terminator_ops* terminator = nullptr;
  const void* terminator_instance = nullptr;
  std::size_t terminator_state_size = 0;
  // Optional: the terminator plugin's last_error, read on the worker thread that saw a
  // failed reset (the message is thread-local in the plugin).
  const char* (*terminator_last_error)(void) = nullptr;
  // Split-K: traversals are cut over the sequence until there are at least min_parts
  // parts (each at least 4 blocks). A fixed number, not the machine's thread count, so
  // results (to the last bit) do not depend on the machine. 1 disables splitting.
  std::uint32_t min_parts = 16;
  float* out = nullptr;  // [n_query_heads * head_dim]
  // Optional [n_query_heads]: log of each head's softmax denominator over the tokens it
  // visited (-inf when none). Two traversals over one cache compare by it: exp(lse of a
  // plan - lse of all tokens) is the share of dense attention mass the plan visited.
  float* lse = nullptr;
};

// Why decode_layer failed, so that the caller can name the culprit without guessing.
struct decode_error {
  enum class source {
    none,
    arguments,   // a null pointer or an impossible shape: the caller's bug
    plan,        // check_plan rejected the plan: the policy's
    terminator,  // the terminator's order or reset failed: the terminator's
  };
  source where = source::none;
  std::string message;  // check_plan's problem, or the terminator's last_error
};

// Checks the plan once (check_plan), then runs every traversal on oneTBB threads;
// counters has one slot per traversal (plan entry). Returns the first non-OK status and,
// when error is not null, what failed.
attnbench_status decode_layer(const layer_decode_args& args, decode_counters* counters, decode_error* error = nullptr);

// The entry visited in the chunk order `order` (a permutation of its chunks): the entry
// itself for the identity, else a BLOCKS entry for ALL and BLOCKS and a TOKENS entry for
// TOKENS (chunk i of the result need not be a whole chunk of the original), whose indices
// go to `indices`. Returns false if order is not a permutation of 0 .. plan_entry_chunks - 1.
bool reorder_entry(const attnbench_plan_entry& entry, const attnbench_kv_head_view& kv, std::uint32_t block_size,
                   const std::uint32_t* order, std::uint32_t n_chunks, std::vector<std::uint32_t>& indices,
                   attnbench_plan_entry& out);

// Number of chunks (kernel blocks) of a plan entry.
std::uint64_t plan_entry_chunks(const attnbench_plan_entry& entry, const attnbench_kv_head_view& kv,
                                std::uint32_t block_size);

// float64 reference over the first max_blocks chunks of the plan (all when max_blocks is
// UINT64_MAX). out is [n_query_heads * head_dim].
attnbench_status decode_reference(const decode_args& args, std::uint64_t max_blocks, double* out);

}  // namespace attnbench::kernels
