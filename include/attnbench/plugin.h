/* attnbench plugin ABI: the plain-C boundary between the attnbench host and the
 * attention-policy and terminator plugins it loads at run time.
 *
 * A plugin is a shared library that exports exactly one function,
 *
 *     const attnbench_plugin_descriptor* attnbench_plugin_entry(void);
 *
 * which returns a pointer to a constant descriptor that lives as long as the library is
 * loaded. The descriptor names the plugin, says its kind (policy or terminator) and
 * carries the function pointers of that kind.
 *
 * Versioning. ATTNBENCH_ABI_VERSION is bumped by any change to this file that a compiled
 * plugin could notice: a field added, removed, reordered or retyped, a function pointer's
 * signature, or the meaning of a value. The loader reads abi_version and struct_size
 * first and refuses a plugin whose abi_version differs, naming both numbers.
 *   1: first version.
 *   2: attnbench_kv_head_view.positions may be NULL (identity), so uncompacted caches
 *      carry no per-token positions.
 *   3: attnbench_traversal_info carries the plan entry being traversed and the cache's
 *      block size, so a terminator can bound what the rest of the traversal could add;
 *      terminators may reorder a traversal's chunks (attnbench_terminator_ops.order).
 *
 * Errors. No C++ exception (or longjmp) crosses this boundary. Every operation that can
 * fail returns an attnbench_status; when it is not ATTNBENCH_STATUS_OK, the plugin's
 * last_error() returns a message for the last failed call made on the calling thread,
 * valid until that thread's next call into the plugin. The host prefixes it with the
 * plugin and operation names.
 *
 * Ownership. The host owns every input (queries, cache views); they are valid only for
 * the duration of the call. The plugin owns what it returns in a plan or keep set; that
 * memory stays valid until the next call of the same operation on the same instance, or
 * until destroy. The host never frees plugin memory and the plugin never frees host
 * memory.
 *
 * Threads. A policy instance is used by one thread at a time (the host makes one
 * instance per worker). A terminator instance is shared: reset and check only read the
 * instance and write the per-traversal state buffer the host passes, so they may run on
 * many threads at once, each with its own state.
 *
 * Lifetime. The host keeps a plugin's library loaded while any instance it created is
 * alive and never unloads it while worker threads may still run its code.
 */
#ifndef ATTNBENCH_PLUGIN_H
#define ATTNBENCH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTNBENCH_ABI_VERSION 3u

#if defined(_WIN32)
#define ATTNBENCH_PLUGIN_EXPORT __declspec(dllexport)
#else
#define ATTNBENCH_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* Name of the one exported entry point, for dlsym. */
#define ATTNBENCH_PLUGIN_ENTRY_SYMBOL "attnbench_plugin_entry"

typedef enum attnbench_status {
  ATTNBENCH_STATUS_OK = 0,
  ATTNBENCH_STATUS_INVALID_PARAMS = 1,   /* create: the params JSON was rejected */
  ATTNBENCH_STATUS_INVALID_ARGUMENT = 2, /* an input the operation cannot handle */
  ATTNBENCH_STATUS_OUT_OF_MEMORY = 3,
  ATTNBENCH_STATUS_INTERNAL = 4
} attnbench_status;

typedef enum attnbench_plugin_kind {
  ATTNBENCH_PLUGIN_POLICY = 1,
  ATTNBENCH_PLUGIN_TERMINATOR = 2
} attnbench_plugin_kind;

typedef enum attnbench_dtype {
  ATTNBENCH_DTYPE_FP32 = 0,
  ATTNBENCH_DTYPE_FP16 = 1,
  ATTNBENCH_DTYPE_BF16 = 2
} attnbench_dtype;

/* Shape of the model a plugin instance serves; passed to create. */
typedef struct attnbench_model_info {
  uint32_t n_layers;
  uint32_t n_query_heads; /* per layer */
  uint32_t n_kv_heads;    /* per layer; n_query_heads is a multiple of it */
  uint32_t head_dim;      /* elements */
  uint32_t block_size;    /* tokens per KV block */
  uint32_t dtype;         /* attnbench_dtype of the cached K and V */
} attnbench_model_info;

/* Read-only view of one KV head's cache in one layer.
 * Tokens are stored in blocks of block_size tokens; block b holds cache tokens
 * [b * block_size, min((b + 1) * block_size, n_tokens)). Each block is row-major,
 * token x head_dim, of the layer's dtype. Metadata is per block, in fp32. */
typedef struct attnbench_kv_head_view {
  uint64_t n_tokens;              /* tokens held; fewer than the sequence after eviction */
  uint32_t n_blocks;              /* ceil(n_tokens / block_size) */
  uint32_t reserved;
  const void* const* key_blocks;   /* [n_blocks] */
  const void* const* value_blocks; /* [n_blocks] */
  const float* key_min;            /* [n_blocks * head_dim] per-channel key minimum */
  const float* key_max;            /* [n_blocks * head_dim] per-channel key maximum */
  const float* key_mean;           /* [n_blocks * head_dim] mean key */
  const float* value_norm_max;     /* [n_blocks] largest L2 norm of a value in the block */
  const int64_t* positions;        /* [n_tokens] sequence position of each cache token, or
                                      NULL when position == cache index (never compacted) */
} attnbench_kv_head_view;

/* Read-only view of one layer's cache: one head view per KV head. */
typedef struct attnbench_kv_layer_view {
  uint32_t layer;
  uint32_t n_kv_heads;
  uint32_t head_dim;
  uint32_t block_size;
  uint32_t dtype; /* attnbench_dtype */
  uint32_t reserved;
  const attnbench_kv_head_view* heads; /* [n_kv_heads] */
} attnbench_kv_layer_view;

/* What a policy is asked to plan: one decode step of one layer. Query head h belongs to
 * KV head h / (n_query_heads / n_kv_heads). */
typedef struct attnbench_plan_request {
  uint32_t layer;
  uint32_t n_query_heads;
  uint64_t step;     /* 0 for the first generated token */
  uint64_t position; /* sequence position of the query token */
  const float* queries; /* [n_query_heads * head_dim], fp32 */
  float scale;          /* logits are scale * q.k */
  uint32_t reserved;
  const attnbench_kv_layer_view* kv;
} attnbench_plan_request;

typedef enum attnbench_plan_kind {
  ATTNBENCH_PLAN_ALL = 0,    /* every cache block, in order; indices unused */
  ATTNBENCH_PLAN_BLOCKS = 1, /* the listed block indices, in traversal order */
  ATTNBENCH_PLAN_TOKENS = 2  /* the listed cache token indices, in traversal order */
} attnbench_plan_kind;

typedef enum attnbench_plan_granularity {
  ATTNBENCH_PLAN_PER_KV_HEAD = 0,   /* one entry per KV head, shared by its query heads */
  ATTNBENCH_PLAN_PER_QUERY_HEAD = 1 /* one entry per query head */
} attnbench_plan_granularity;

/* One head's part of a plan. Indices must be in range and free of duplicates. */
typedef struct attnbench_plan_entry {
  uint32_t kind;   /* attnbench_plan_kind */
  uint32_t count;  /* number of indices; ignored for ATTNBENCH_PLAN_ALL */
  const uint32_t* indices; /* [count] */
  const float* scores;     /* optional [count]: importance, most important first */
} attnbench_plan_entry;

/* A policy's answer: which KV each head visits, in which order. */
typedef struct attnbench_plan {
  uint32_t granularity; /* attnbench_plan_granularity */
  uint32_t n_entries;   /* n_kv_heads or n_query_heads, per granularity */
  const attnbench_plan_entry* entries;
} attnbench_plan;

/* After prefill: the prompt's cache and the queries of the prompt's last token. */
typedef struct attnbench_prefill_request {
  uint32_t layer;
  uint32_t n_query_heads;
  uint64_t n_prompt_tokens;
  const float* last_queries; /* [n_query_heads * head_dim] */
  float scale;
  uint32_t reserved;
  const attnbench_kv_layer_view* kv;
} attnbench_prefill_request;

typedef struct attnbench_policy_ops {
  /* (required) Make an instance from a JSON object of parameters (never NULL; "{}" when
   * the config gives none). Unknown or invalid parameters: return
   * ATTNBENCH_STATUS_INVALID_PARAMS with a message naming the parameter. */
  attnbench_status (*create)(const char* params_json, const attnbench_model_info* model,
                             void** out_instance);
  /* (required) Free an instance and everything it returned. */
  void (*destroy)(void* instance);
  /* (required) Plan one decode step of one layer into *out_plan. */
  attnbench_status (*plan)(void* instance, const attnbench_plan_request* request,
                           attnbench_plan* out_plan);
  /* (optional) Called once per layer after the prompt's K/V is written. May return a keep
   * set (one entry per KV head, kind TOKENS with sorted indices or ALL) in *out_keep; the
   * host then compacts the cache to the kept tokens. NULL: keep everything. */
  attnbench_status (*on_prefill)(void* instance, const attnbench_prefill_request* request,
                                 attnbench_plan* out_keep);
  /* (optional) Counters the policy wants in the results, as a JSON object of numbers,
   * e.g. {"reselection_rate": 0.12}. The string stays valid until the next call on the
   * instance. NULL: none. */
  const char* (*stats_json)(void* instance);
} attnbench_policy_ops;

/* Identifies a traversal: one KV head's group of query heads at one decode step. */
typedef struct attnbench_traversal_info {
  uint32_t layer;
  uint32_t kv_head;
  uint32_t n_query_heads; /* query heads traversing together (the GQA group, or 1) */
  uint32_t head_dim;
  uint32_t n_planned_blocks;
  uint32_t reserved;
  uint64_t n_planned_tokens;
  const float* queries; /* [n_query_heads * head_dim] */
  float scale;
  uint32_t block_size; /* tokens per cache block */
  const attnbench_kv_head_view* kv;
  /* The plan entry traversed, in its traversal order: ALL (block i at step i), BLOCKS
   * (indices[i] at step i) or TOKENS (step i visits indices[i * block_size ...], up to
   * block_size tokens). Step i is the kernel state's blocks_done == i + 1. */
  const attnbench_plan_entry* entry;
} attnbench_traversal_info;

#define ATTNBENCH_NO_BLOCK 0xffffffffu

/* The kernel's running state after a block, shown to the terminator. Logits are
 * scale * q.k. For query head i: running_max[i] is the largest logit seen,
 * running_sum[i] = sum exp(logit - running_max[i]), and output_acc[i * head_dim + d] =
 * sum exp(logit - running_max[i]) * v[d]; the normalised output is acc / sum. */
typedef struct attnbench_kernel_state {
  uint32_t blocks_done;     /* blocks of the plan visited so far, this one included */
  uint32_t block_id;        /* cache block just visited, or ATTNBENCH_NO_BLOCK for a
                               chunk of a token list */
  uint32_t tokens_in_block; /* tokens the kernel attended in this block */
  uint32_t n_query_heads;
  uint32_t head_dim;
  uint32_t reserved;
  const float* running_max;  /* [n_query_heads] */
  const float* running_sum;  /* [n_query_heads] */
  const float* output_acc;   /* [n_query_heads * head_dim] */
  const float* block_max;    /* [n_query_heads] largest logit inside this block */
} attnbench_kernel_state;

typedef enum attnbench_decision {
  ATTNBENCH_CONTINUE = 0,
  ATTNBENCH_STOP = 1
} attnbench_decision;

typedef struct attnbench_terminator_ops {
  /* (required) As for policies. */
  attnbench_status (*create)(const char* params_json, const attnbench_model_info* model,
                             void** out_instance);
  /* (required) */
  void (*destroy)(void* instance);
  /* (required) Bytes of per-traversal state the terminator needs; the host provides a
   * buffer of that size, aligned to 64 bytes, for each traversal. */
  size_t (*state_size)(const void* instance, uint32_t n_query_heads, uint32_t head_dim);
  /* (required) Start a traversal: initialise *state. */
  attnbench_status (*reset)(const void* instance, void* state,
                            const attnbench_traversal_info* info);
  /* (required) Called by the kernel after each block of the plan. Must be fast and may
   * not fail: it returns ATTNBENCH_CONTINUE or ATTNBENCH_STOP. After STOP the kernel
   * visits no further block of this traversal. */
  attnbench_decision (*check)(const void* instance, void* state,
                              const attnbench_kernel_state* kernel_state);
  /* (optional) As for policies. */
  const char* (*stats_json)(void* instance);
  /* (optional) Before reset: the order in which to visit the traversal's n_chunks chunks
   * (info->entry as planned), a permutation of 0 .. n_chunks - 1 written to out_order.
   * The host then traverses the entry reordered so, and reset and check see that
   * reordered entry. Same threading rules as reset. NULL: as planned. */
  attnbench_status (*order)(const void* instance, const attnbench_traversal_info* info, uint32_t n_chunks,
                            uint32_t* out_order);
} attnbench_terminator_ops;

/* The descriptor. abi_version and struct_size come first and never move. */
typedef struct attnbench_plugin_descriptor {
  uint32_t abi_version; /* ATTNBENCH_ABI_VERSION the plugin was built against */
  uint32_t struct_size; /* sizeof(attnbench_plugin_descriptor) as the plugin saw it */
  uint32_t kind;        /* attnbench_plugin_kind */
  uint32_t reserved;
  const char* name;        /* short identifier used in configs, e.g. "dense" */
  const char* version;     /* the plugin's own version, e.g. "1.0.0" */
  const char* description; /* one line */
  /* (required) Message of the last failed call on the calling thread. */
  const char* (*last_error)(void);
  const attnbench_policy_ops* policy;         /* non-NULL iff kind is POLICY */
  const attnbench_terminator_ops* terminator; /* non-NULL iff kind is TERMINATOR */
} attnbench_plugin_descriptor;

typedef const attnbench_plugin_descriptor* (*attnbench_plugin_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATTNBENCH_PLUGIN_H */
