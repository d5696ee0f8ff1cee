// art: run-time termination inside the decode kernel (ART, arXiv 2606.00024; its method
// section is not public, so every choice is a parameter). After each block of the plan
// it compares the running normalised output of every query head of the traversal with
// the one after the previous block: a magnitude test (the relative change of its norm,
// or the block's share of the softmax sum, under tau_mag) and a direction test
// (1 - cosine under tau_dir). After `patience` consecutive blocks in which every head
// passes both, and never before `min_blocks` blocks, it stops.
// mode = certified stops only when, in addition, a bound on the output error from the
// plan's unvisited blocks is below epsilon: for each head, their softmax share is at most
// p = sum over unvisited chunks of tokens * exp(UB - running max) / running sum, with UB
// the chunk's upper bound of scale * q.k from block metadata (per channel
// max(q_i min_i, q_i max_i)), and the output moves by at most p * (largest unvisited
// value norm + norm of the current output). The bound is checked when the tests pass,
// then again after twice as many blocks, and so on, so it costs O(n log n) per traversal.
// enabled = false never stops: the output is then the inner policy's, bit for bit.
// Reports stops, the share of traversals stopped, and for certified mode the mean and
// largest bound at the stops.
#include <attnbench/kernels/reproducible.hpp>
#include <attnbench/kernels/score.hpp>
#include <attnbench/plugin-support.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace {

using attnbench::plugin::fail;
using attnbench::plugin::guard;

struct art_terminator {
  double tau_mag = 1e-7, tau_dir = 1e-3, epsilon = 1e-3;
  std::uint32_t patience = 5, min_blocks = 0;
  bool mass_test = false;  // magnitude: false = norm change, true = the block's share of the sum
  bool certified = false;
  bool enabled = true;
  bool bound_order = false;  // order = sinks_recent_then_bound
  attnbench_model_info model{};
  // Counters: the kernel's threads share the instance, so these are relaxed atomics
  // (written once per traversal at most, when it stops, and once per reset).
  mutable std::atomic<std::uint64_t> traversals{0}, stops{0}, bound_checks{0};
  mutable std::atomic<double> bound_sum{0.0}, bound_max{0.0};
  std::string stats;
};

// Per-traversal state: a header, then prev_out [nq * d], prev_norm [nq], prev_max [nq],
// prev_sum [nq].
struct header {
  attnbench_traversal_info info;
  std::uint32_t passes;      // consecutive blocks in which every head passed
  std::uint32_t next_check;  // certified: the bound is next checked at this many blocks
};

std::size_t art_state_size(const void*, std::uint32_t nq, std::uint32_t d) {
  return sizeof(header) + (static_cast<std::size_t>(nq) * d + 3 * nq) * sizeof(float);
}

float* tail(void* state) { return reinterpret_cast<float*>(static_cast<char*>(state) + sizeof(header)); }

attnbench_status art_reset(const void* instance, void* state, const attnbench_traversal_info* info) {
  const auto* t = static_cast<const art_terminator*>(instance);
  auto* h = static_cast<header*>(state);
  h->info = *info;
  h->passes = 0;
  h->next_check = 0;
  std::memset(tail(state), 0, (static_cast<std::size_t>(info->n_query_heads) * info->head_dim + 3 * info->n_query_heads) *
                                  sizeof(float));
  t->traversals.fetch_add(1, std::memory_order_relaxed);
  return ATTNBENCH_STATUS_OK;
}

void atomic_max(std::atomic<double>& a, double x) {
  double cur = a.load(std::memory_order_relaxed);
  while (x > cur && !a.compare_exchange_weak(cur, x, std::memory_order_relaxed)) {
  }
}

// Upper bound of scale * q.k over the tokens of cache block b, for query head q.
double block_upper_bound(const attnbench_traversal_info& info, std::uint32_t b, std::uint32_t q) {
  const std::uint32_t d = info.head_dim;
  const float* qv = info.queries + static_cast<std::size_t>(q) * d;
  const float* mn = info.kv->key_min + static_cast<std::size_t>(b) * d;
  const float* mx = info.kv->key_max + static_cast<std::size_t>(b) * d;
  double s = 0;
  for (std::uint32_t i = 0; i < d; ++i)
    s += std::max(static_cast<double>(qv[i]) * mn[i], static_cast<double>(qv[i]) * mx[i]);
  return s * info.scale;
}

// order = sinks_recent_then_bound: the first chunk, the last, then the others by their
// upper bound of q.k (the largest over the traversal's heads; a token chunk takes its
// tokens' blocks' largest), highest first, ties in plan order.
attnbench_status art_order(const void* instance, const attnbench_traversal_info* info, std::uint32_t n,
                           std::uint32_t* out) {
  const auto* t = static_cast<const art_terminator*>(instance);
  for (std::uint32_t i = 0; i < n; ++i) out[i] = i;
  if (!t->bound_order || n <= 2) return ATTNBENCH_STATUS_OK;
  const attnbench_plan_entry& e = *info->entry;
  const std::uint32_t bs = info->block_size;
  // Per call, not a thread_local: a plugin's thread_local sits in dynamic TLS, which
  // LeakSanitizer (clang 14, glibc 2.36) could not scan at exit (plugin-support.hpp).
  std::vector<double> ub(n, -std::numeric_limits<double>::infinity());
  for (std::uint32_t c = 1; c + 1 < n; ++c) {
    auto take_block = [&](std::uint32_t b) {
      const std::size_t d = info->head_dim;
      for (std::uint32_t q = 0; q < info->n_query_heads; ++q)
        ub[c] = std::max(ub[c], static_cast<double>(attnbench::kernels::key_range_bound(
                                    info->queries + q * d, info->kv->key_min + b * d, info->kv->key_max + b * d, d)));
    };
    if (e.kind == ATTNBENCH_PLAN_TOKENS) {
      std::uint32_t last = ATTNBENCH_NO_BLOCK;
      for (std::uint64_t i = std::uint64_t{c} * bs; i < std::min<std::uint64_t>(e.count, std::uint64_t{c + 1} * bs); ++i)
        if (e.indices[i] / bs != last) take_block(last = e.indices[i] / bs);
    } else {
      take_block(e.kind == ATTNBENCH_PLAN_ALL ? c : e.indices[c]);
    }
  }
  out[0] = 0;
  out[1] = n - 1;
  std::uint32_t k = 2;
  for (std::uint32_t c = 1; c + 1 < n; ++c) out[k++] = c;
  std::stable_sort(out + 2, out + n, [&](std::uint32_t a, std::uint32_t b) { return ub[a] > ub[b]; });
  return ATTNBENCH_STATUS_OK;
}

// The bound on how far the normalised output of any head can still move, over chunks
// [done, end) of the plan entry; see the file comment.
double remaining_bound(const attnbench_traversal_info& info, const attnbench_kernel_state& ks,
                       const float* out_norm) {
  const attnbench_plan_entry& e = *info.entry;
  const attnbench_kv_head_view& kv = *info.kv;
  const std::uint32_t bs = info.block_size, nq = info.n_query_heads;
  const std::uint64_t n_chunks = e.kind == ATTNBENCH_PLAN_ALL      ? kv.n_blocks
                                 : e.kind == ATTNBENCH_PLAN_BLOCKS ? e.count
                                                                   : (std::uint64_t{e.count} + bs - 1) / bs;
  auto block_ub = [&](std::uint32_t b, std::uint32_t q) { return block_upper_bound(info, b, q); };
  double worst = 0;
  for (std::uint32_t q = 0; q < nq; ++q) {
    double mass = 0, vmax = 0;
    for (std::uint64_t c = ks.blocks_done; c < n_chunks; ++c) {
      if (e.kind == ATTNBENCH_PLAN_TOKENS) {
        const std::uint64_t start = c * bs, end = std::min<std::uint64_t>(start + bs, e.count);
        for (std::uint64_t i = start; i < end; ++i) {  // each token bounded by its block
          const std::uint32_t b = e.indices[i] / bs;
          mass += std::exp(block_ub(b, q) - ks.running_max[q]);
          vmax = std::max(vmax, static_cast<double>(kv.value_norm_max[b]));
        }
      } else {
        const std::uint32_t b = e.kind == ATTNBENCH_PLAN_ALL ? static_cast<std::uint32_t>(c) : e.indices[c];
        const std::uint64_t first = static_cast<std::uint64_t>(b) * bs;
        const std::uint64_t count = std::min<std::uint64_t>(bs, kv.n_tokens - first);
        mass += static_cast<double>(count) * std::exp(block_ub(b, q) - ks.running_max[q]);
        vmax = std::max(vmax, static_cast<double>(kv.value_norm_max[b]));
      }
    }
    const double p = ks.running_sum[q] > 0 ? mass / ks.running_sum[q] : std::numeric_limits<double>::infinity();
    worst = std::max(worst, p * (vmax + out_norm[q]));
  }
  return worst;
}

// For one head: sums of acc.acc, acc.prev and prev.prev (sixteen partial sums each, held
// in SIMD registers), then prev = acc * inv (the normalised output, for the next block).
ATTNBENCH_REPRODUCIBLE_CLONES void compare_and_store(const float* __restrict acc, float inv, float* __restrict prev,
                                                     std::uint32_t d, double* sums) {
  using f16 = float __attribute__((vector_size(64)));  // GCC vector type: lanes are the partial sums
  f16 nn = {}, dot = {}, pp = {};
  const f16 vinv = f16{} + inv;
  std::uint32_t i = 0;
  for (; i + 16 <= d; i += 16) {
    f16 a, p;
    std::memcpy(&a, acc + i, sizeof a);
    std::memcpy(&p, prev + i, sizeof p);
    nn += a * a;
    dot += a * p;
    pp += p * p;
    const f16 out = a * vinv;
    std::memcpy(prev + i, &out, sizeof out);
  }
  double s0 = 0, s1 = 0, s2 = 0;
  for (; i < d; ++i) {
    const float a = acc[i], p = prev[i];
    s0 += static_cast<double>(a) * a;
    s1 += static_cast<double>(a) * p;
    s2 += static_cast<double>(p) * p;
    prev[i] = a * inv;
  }
  for (std::uint32_t j = 0; j < 16; ++j) {
    s0 += nn[j];
    s1 += dot[j];
    s2 += pp[j];
  }
  sums[0] = s0;
  sums[1] = s1;
  sums[2] = s2;
}

attnbench_decision art_check(const void* instance, void* state, const attnbench_kernel_state* ks) {
  const auto* t = static_cast<const art_terminator*>(instance);
  auto* h = static_cast<header*>(state);
  const std::uint32_t nq = ks->n_query_heads, d = ks->head_dim;
  float* prev = tail(state);
  float* prev_norm = prev + static_cast<std::size_t>(nq) * d;
  float* prev_max = prev_norm + nq;
  float* prev_sum = prev_max + nq;
  bool all_pass = ks->blocks_done >= 2;
  for (std::uint32_t q = 0; q < nq; ++q) {
    const float* acc = ks->output_acc + static_cast<std::size_t>(q) * d;
    const float inv = ks->running_sum[q] > 0 ? 1.0f / ks->running_sum[q] : 0.0f;
    double sums[3];  // acc.acc, acc.prev, prev.prev
    compare_and_store(acc, inv, prev + static_cast<std::size_t>(q) * d, d, sums);
    const double norm = std::sqrt(sums[0]) * inv;
    if (all_pass) {
      double mag;
      if (t->mass_test) {  // this block's share of the running sum
        const double carried = prev_sum[q] * std::exp(static_cast<double>(prev_max[q]) - ks->running_max[q]);
        mag = ks->running_sum[q] > 0 ? 1.0 - carried / ks->running_sum[q] : 1.0;
      } else {
        mag = prev_norm[q] > 0 ? std::fabs(norm - prev_norm[q]) / prev_norm[q] : (norm > 0 ? 1.0 : 0.0);
      }
      const double cos = sums[0] > 0 && sums[2] > 0 ? sums[1] / std::sqrt(sums[0] * sums[2]) : 1.0;
      if (!(mag < t->tau_mag && 1.0 - cos < t->tau_dir)) all_pass = false;
    }
    prev_norm[q] = static_cast<float>(norm);
    prev_max[q] = ks->running_max[q];
    prev_sum[q] = ks->running_sum[q];
  }
  h->passes = all_pass ? h->passes + 1 : 0;
  if (!t->enabled || ks->blocks_done < t->min_blocks || h->passes < t->patience) return ATTNBENCH_CONTINUE;
  if (t->certified) {
    if (ks->blocks_done < h->next_check) return ATTNBENCH_CONTINUE;
    t->bound_checks.fetch_add(1, std::memory_order_relaxed);
    const double bound = remaining_bound(h->info, *ks, prev_norm);  // prev_norm now holds this block's norms
    if (!(bound < t->epsilon)) {
      h->next_check = ks->blocks_done * 2;
      return ATTNBENCH_CONTINUE;
    }
    t->bound_sum.fetch_add(bound, std::memory_order_relaxed);
    atomic_max(t->bound_max, bound);
  }
  t->stops.fetch_add(1, std::memory_order_relaxed);
  return ATTNBENCH_STOP;
}

attnbench_status art_create(const char* params_json, const attnbench_model_info* model, void** out) {
  return guard([&] {
    attnbench::plugin::params params(params_json);
    auto p = std::make_unique<art_terminator>();
    p->tau_mag = params.number("tau_mag", 1e-7, 0.0, 1.0);
    p->tau_dir = params.number("tau_dir", 1e-3, 0.0, 2.0);
    p->patience = static_cast<std::uint32_t>(params.integer("patience", 5, 1, 1 << 20));
    p->min_blocks = static_cast<std::uint32_t>(params.integer("min_blocks", 0, 0, 1 << 30));
    const std::string magnitude = params.string("magnitude", "norm");
    if (magnitude != "norm" && magnitude != "mass")
      throw attnbench::plugin::params_error("magnitude: expected \"norm\" or \"mass\", got \"" + magnitude + "\"");
    p->mass_test = magnitude == "mass";
    const std::string mode = params.string("mode", "heuristic");
    if (mode != "heuristic" && mode != "certified")
      throw attnbench::plugin::params_error("mode: expected \"heuristic\" or \"certified\", got \"" + mode + "\"");
    p->certified = mode == "certified";
    p->epsilon = params.number("epsilon", 1e-3, 0.0, 1e30);
    p->enabled = params.boolean("enabled", true);
    const std::string order = params.string("order", "as_planned");
    if (order != "as_planned" && order != "sinks_recent_then_bound")
      throw attnbench::plugin::params_error("order: expected \"as_planned\" or \"sinks_recent_then_bound\", got \"" +
                                            order + "\"");
    p->bound_order = order == "sinks_recent_then_bound";
    params.finish("art");
    p->model = *model;
    *out = p.release();
    return ATTNBENCH_STATUS_OK;
  });
}

void art_destroy(void* instance) { delete static_cast<art_terminator*>(instance); }

const char* art_stats(void* instance) {
  auto* p = static_cast<art_terminator*>(instance);
  const auto traversals = p->traversals.load(), stops = p->stops.load();
  nlohmann::json j = {{"stops", stops},
                      {"stopped_share", traversals ? static_cast<double>(stops) / traversals : 0.0}};
  if (p->certified) {
    j["bound_checks"] = p->bound_checks.load();
    j["bound_mean_at_stop"] = stops ? p->bound_sum.load() / stops : 0.0;
    j["bound_max_at_stop"] = p->bound_max.load();
  }
  p->stats = j.dump();
  return p->stats.c_str();
}

constexpr attnbench_terminator_ops kOps = {
    /*create=*/art_create,
    /*destroy=*/art_destroy,
    /*state_size=*/art_state_size,
    /*reset=*/art_reset,
    /*check=*/art_check,
    /*stats_json=*/art_stats,
    /*order=*/art_order,
};

constexpr auto kDescriptor = attnbench::plugin::terminator_descriptor(
    "art", "1.0.0", "ART: stop a traversal once the running output stops changing (or, certified, provably)", &kOps);

}  // namespace

ATTNBENCH_PLUGIN_ENTRY(kDescriptor)
