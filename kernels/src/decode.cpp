#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace attnbench::kernels {
namespace {

// One step of a traversal: up to block_size tokens, either a contiguous run inside one
// cache block (ALL and BLOCKS plans) or a slice of a token list.
struct chunk {
  std::uint32_t block_id;         // ATTNBENCH_NO_BLOCK for token-list chunks
  std::uint64_t first;            // first cache token (contiguous chunks)
  const std::uint32_t* tokens;    // token indices (token-list chunks), else nullptr
  std::uint32_t count;
};

// Calls fn(chunk) for each chunk of the plan in order; fn returns false to stop.
// Returns false if an index is out of range.
template <class F>
bool for_each_chunk(const attnbench_plan_entry& entry, const attnbench_kv_head_view& kv,
                    std::uint32_t block_size, F&& fn) {
  auto block_chunk = [&](std::uint32_t b) {
    const std::uint64_t first = static_cast<std::uint64_t>(b) * block_size;
    const auto count = static_cast<std::uint32_t>(std::min<std::uint64_t>(block_size, kv.n_tokens - first));
    return chunk{b, first, nullptr, count};
  };
  switch (entry.kind) {
    case ATTNBENCH_PLAN_ALL:
      for (std::uint32_t b = 0; b < kv.n_blocks; ++b)
        if (!fn(block_chunk(b))) break;
      return true;
    case ATTNBENCH_PLAN_BLOCKS:
      for (std::uint32_t i = 0; i < entry.count; ++i)
        if (entry.indices[i] >= kv.n_blocks) return false;
      for (std::uint32_t i = 0; i < entry.count; ++i)
        if (!fn(block_chunk(entry.indices[i]))) break;
      return true;
    case ATTNBENCH_PLAN_TOKENS:
      for (std::uint32_t i = 0; i < entry.count; ++i)
        if (entry.indices[i] >= kv.n_tokens) return false;
      for (std::uint32_t i = 0; i < entry.count; i += block_size) {
        const auto count = std::min<std::uint32_t>(block_size, entry.count - i);
        if (!fn(chunk{ATTNBENCH_NO_BLOCK, 0, entry.indices + i, count})) break;
      }
      return true;
    default:
      return false;
  }
}

const void* row_ptr(const void* const* blocks, std::uint64_t token, std::uint32_t block_size, std::size_t row_bytes) {
  return static_cast<const std::byte*>(blocks[token / block_size]) + (token % block_size) * row_bytes;
}

// Converts the chunk's K or V rows to fp32, row-major [count * head_dim].
void gather_rows(const void* const* blocks, const chunk& c, std::uint32_t block_size, attnbench_dtype dtype,
                 std::uint32_t head_dim, float* dst) {
  const std::size_t row_bytes = head_dim * dtype_size(dtype);
  if (!c.tokens) {
    to_fp32(dtype, row_ptr(blocks, c.first, block_size, row_bytes), dst, static_cast<std::size_t>(c.count) * head_dim);
    return;
  }
  for (std::uint32_t j = 0; j < c.count; ++j)
    to_fp32(dtype, row_ptr(blocks, c.tokens[j], block_size, row_bytes), dst + static_cast<std::size_t>(j) * head_dim, head_dim);
}

// Dot product with independent partial sums so the compiler can vectorise it.
float dot(const float* a, const float* b, std::uint32_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::uint32_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
  float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) total += a[i] * b[i];
  return total;
}

}  // namespace

void plan_entry_size(const attnbench_plan_entry& entry, const attnbench_kv_head_view& kv,
                     std::uint32_t block_size, std::uint64_t* blocks, std::uint64_t* tokens) {
  std::uint64_t nb = 0, nt = 0;
  for_each_chunk(entry, kv, block_size, [&](const chunk& c) {
    ++nb;
    nt += c.count;
    return true;
  });
  if (blocks) *blocks = nb;
  if (tokens) *tokens = nt;
}

attnbench_status decode_group(const decode_args& a, decode_counters* counters) {
  if (!a.queries || !a.kv || !a.entry || !a.out || a.head_dim == 0 || a.n_query_heads == 0 || a.block_size == 0)
    return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  const std::uint32_t nq = a.n_query_heads, d = a.head_dim;
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();

  // Scratch reused across calls on the same thread: no allocation per step once warm.
  thread_local std::vector<float> m, s, acc, block_max, logits, kbuf, vbuf;
  m.assign(nq, neg_inf);
  s.assign(nq, 0.0f);
  acc.assign(static_cast<std::size_t>(nq) * d, 0.0f);
  block_max.resize(nq);
  logits.resize(a.block_size);
  kbuf.resize(static_cast<std::size_t>(a.block_size) * d);
  vbuf.resize(kbuf.size());

  attnbench_kernel_state ks{};
  ks.n_query_heads = nq;
  ks.head_dim = d;
  ks.running_max = m.data();
  ks.running_sum = s.data();
  ks.output_acc = acc.data();
  ks.block_max = block_max.data();

  std::uint64_t planned_blocks = 0, planned_tokens = 0, visited_blocks = 0, visited_tokens = 0;
  plan_entry_size(*a.entry, *a.kv, a.block_size, &planned_blocks, &planned_tokens);

  const bool ok = for_each_chunk(*a.entry, *a.kv, a.block_size, [&](const chunk& c) {
    gather_rows(a.kv->key_blocks, c, a.block_size, a.dtype, d, kbuf.data());
    gather_rows(a.kv->value_blocks, c, a.block_size, a.dtype, d, vbuf.data());
    for (std::uint32_t i = 0; i < nq; ++i) {
      const float* q = a.queries + static_cast<std::size_t>(i) * d;
      float bmax = neg_inf;
      for (std::uint32_t j = 0; j < c.count; ++j) {
        logits[j] = a.scale * dot(q, &kbuf[static_cast<std::size_t>(j) * d], d);
        bmax = std::max(bmax, logits[j]);
      }
      block_max[i] = bmax;
      const float new_max = std::max(m[i], bmax);
      const float alpha = m[i] == neg_inf ? 0.0f : std::exp(m[i] - new_max);
      float* o = &acc[static_cast<std::size_t>(i) * d];
      float sum = s[i] * alpha;
      for (std::uint32_t k = 0; k < d; ++k) o[k] *= alpha;
      for (std::uint32_t j = 0; j < c.count; ++j) {
        const float p = std::exp(logits[j] - new_max);
        sum += p;
        const float* v = &vbuf[static_cast<std::size_t>(j) * d];
        for (std::uint32_t k = 0; k < d; ++k) o[k] += p * v[k];
      }
      s[i] = sum;
      m[i] = new_max;
    }
    ++visited_blocks;
    visited_tokens += c.count;
    if (a.hook.ops) {
      ks.blocks_done = static_cast<std::uint32_t>(visited_blocks);
      ks.block_id = c.block_id;
      ks.tokens_in_block = c.count;
      if (a.hook.ops->check(a.hook.instance, a.hook.state, &ks) == ATTNBENCH_STOP) return false;
    }
    return true;
  });
  if (!ok) return ATTNBENCH_STATUS_INVALID_ARGUMENT;

  for (std::uint32_t i = 0; i < nq; ++i) {
    float* out = a.out + static_cast<std::size_t>(i) * d;
    const float* o = &acc[static_cast<std::size_t>(i) * d];
    const float inv = s[i] > 0.0f ? 1.0f / s[i] : 0.0f;
    for (std::uint32_t k = 0; k < d; ++k) out[k] = o[k] * inv;
    if (a.lse) a.lse[i] = s[i] > 0.0f ? m[i] + std::log(s[i]) : neg_inf;
  }
  if (counters) {
    counters->blocks_planned += planned_blocks;
    counters->tokens_planned += planned_tokens;
    counters->blocks_visited += visited_blocks;
    counters->tokens_visited += visited_tokens;
  }
  return ATTNBENCH_STATUS_OK;
}

attnbench_status decode_reference(const decode_args& a, std::uint64_t max_blocks, double* out) {
  if (!a.queries || !a.kv || !a.entry || !out || a.head_dim == 0) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  const std::uint32_t d = a.head_dim;
  std::vector<float> kbuf(static_cast<std::size_t>(a.block_size) * d), vbuf(kbuf.size());
  std::vector<std::vector<double>> keys, values;
  std::uint64_t done = 0;
  const bool ok = for_each_chunk(*a.entry, *a.kv, a.block_size, [&](const chunk& c) {
    if (done >= max_blocks) return false;
    gather_rows(a.kv->key_blocks, c, a.block_size, a.dtype, d, kbuf.data());
    gather_rows(a.kv->value_blocks, c, a.block_size, a.dtype, d, vbuf.data());
    for (std::uint32_t j = 0; j < c.count; ++j) {
      keys.emplace_back(kbuf.begin() + j * d, kbuf.begin() + (j + 1) * d);
      values.emplace_back(vbuf.begin() + j * d, vbuf.begin() + (j + 1) * d);
    }
    ++done;
    return true;
  });
  if (!ok) return ATTNBENCH_STATUS_INVALID_ARGUMENT;
  for (std::uint32_t i = 0; i < a.n_query_heads; ++i) {
    const float* q = a.queries + static_cast<std::size_t>(i) * d;
    std::vector<double> logit(keys.size());
    double mx = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < keys.size(); ++j) {
      double dp = 0;
      for (std::uint32_t k = 0; k < d; ++k) dp += static_cast<double>(q[k]) * keys[j][k];
      logit[j] = static_cast<double>(a.scale) * dp;
      mx = std::max(mx, logit[j]);
    }
    double sum = 0;
    std::vector<double> o(d, 0.0);
    for (std::size_t j = 0; j < keys.size(); ++j) {
      const double p = std::exp(logit[j] - mx);
      sum += p;
      for (std::uint32_t k = 0; k < d; ++k) o[k] += p * values[j][k];
    }
    for (std::uint32_t k = 0; k < d; ++k) out[static_cast<std::size_t>(i) * d + k] = sum > 0 ? o[k] / sum : 0.0;
  }
  return ATTNBENCH_STATUS_OK;
}

}  // namespace attnbench::kernels
