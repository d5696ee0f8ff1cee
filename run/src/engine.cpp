#include <attnbench/run/engine.hpp>

#include "fidelity.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/host/plugin-calls.hpp>
#include <attnbench/host/policy-host.hpp>

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/tasks/task.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <exception>
#include <optional>
#include <span>
#include <utility>

namespace attnbench {

using ojson = nlohmann::ordered_json;
using clock_type = std::chrono::steady_clock;

std::atomic<bool> g_interrupt_requested{false};

namespace {

// Multi-answer steps: a runner-up whose logit is at least the sample's branch_ratio of the
// best and kBranchNoiseSd standard deviations of the logits left in its round (random
// embeddings put the largest of ~11000 noise logits near 4.1) starts another continuation
// (see tasks::sample).
constexpr float kBranchNoiseSd = 4.5f;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// A sequence's decode as a coroutine: it suspends at every decode step, so that the
// steps of a batch's sequences run together (attend_batch) while each keeps its own
// control flow (continuations, follow-ups, stop tokens).
class sequence_task {
 public:
  struct promise_type {
    std::exception_ptr error;
    sequence_task get_return_object() {
      return sequence_task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { error = std::current_exception(); }
  };
  explicit sequence_task(std::coroutine_handle<promise_type> h) : h_(h) {}
  sequence_task(sequence_task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  sequence_task& operator=(sequence_task&&) = delete;
  ~sequence_task() {
    if (h_) h_.destroy();
  }
  bool done() const { return h_.done(); }
  // Runs to the next decode step or to the end; rethrows what the body threw.
  void resume() {
    h_.resume();
    if (h_.promise().error) std::rethrow_exception(std::exchange(h_.promise().error, nullptr));
  }

 private:
  std::coroutine_handle<promise_type> h_;
};

// One sample of a batch: its model sequence (tokens and K/V), cache, policy instance and
// per-step buffers.
struct sequence {
  const tasks::sample* smp = nullptr;
  kernels::kv_cache* cache = nullptr;
  policy_instance* policy = nullptr;
  std::unique_ptr<model_sequence> model_seq;
  std::vector<float> queries;                      // [hq * d], the layer being planned
  std::vector<float> outputs;                      // [hq * d], the layer being attended
  std::vector<kernels::decode_counters> counters;  // [hq]
  attnbench_plan plan{};
  std::uint32_t step = 0;  // decode steps, over all continuations
  std::vector<std::string> texts;
  std::size_t final_generation = 0;  // index in texts of the last generation's first continuation
  double prefill_s = 0, decode_s = 0;
  double selection_s = 0;  // in the policy's plan calls
  double prepare_s = 0;    // faulting in the cache's pages
  attnbench_status status = ATTNBENCH_STATUS_OK;  // the last decode_layer's, and what failed
  kernels::decode_error error;
  std::unique_ptr<fidelity_probe> fidelity;  // metrics.fidelity only
};

// The most tokens a sample's sequence can hold: its prompt, every follow-up (a restated
// answer counts max_new_tokens) and max_new_tokens per generation (a generation's
// continuations each start again from its first token, so they do not add up).
std::uint64_t max_tokens(const tasks::sample& smp) {
  std::uint64_t n = smp.prompt.size();
  for (const auto& f : smp.follow_ups)
    for (tasks::token x : f) n += x == tasks::kLastAnswer ? smp.max_new_tokens : 1;
  return n + (smp.follow_ups.size() + 1) * static_cast<std::uint64_t>(smp.max_new_tokens);
}

// Prefill: the model writes the prompt's K/V, then the policy may evict.
void prefill_sequence(const run_inputs& in, sequence& s, cell_totals& t) {
  const model_shape& p = in.model.shape();
  const std::uint32_t hq = p.n_query_heads;
  kernels::kv_cache& cache = *s.cache;
  policy_instance& policy = *s.policy;
  const auto t_prefill = clock_type::now();
  s.model_seq = in.model.start_sequence(s.smp->prompt, cache);
  t.resident_before_eviction_bytes += static_cast<double>(cache.resident_bytes());
  if (policy.has_on_prefill()) {
    for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
      s.model_seq->queries(layer, s.queries.data());
      const attnbench_prefill_request req{layer, hq, s.model_seq->tokens().size(), s.queries.data(), in.model.scale(),
                                          0, &cache.layer_view(layer)};
      const attnbench_plan keep = policy.on_prefill(req);
      apply_keep_set(policy, cache, layer, keep);
    }
  }
  s.prefill_s = seconds_since(t_prefill);
  if (in.config.fidelity) {
    bool evicted = false;  // any KV head holding fewer tokens than the sequence
    for (std::uint32_t layer = 0; layer < p.n_layers; ++layer)
      for (std::uint32_t h = 0; h < p.n_kv_heads; ++h)
        evicted = evicted || cache.n_tokens(layer, h) != s.model_seq->tokens().size();
    s.fidelity = std::make_unique<fidelity_probe>(in.model, s.smp->prompt, cache, evicted);
  }
  t.prefill_s += s.prefill_s;
  t.resident_bytes += static_cast<double>(cache.resident_bytes());
}

// The plugin error for a failed decode_layer: the policy's plan or the terminator, named
// with the layer and step (decode_layer says which; nothing is guessed here).
plugin_error decode_failure(const sequence& s, const terminator_instance* terminator, std::uint32_t layer) {
  const std::string where = " at layer " + std::to_string(layer) + ", step " + std::to_string(s.step) + ": ";
  const std::string& message = s.error.message;
  switch (s.error.where) {
    case kernels::decode_error::source::plan:
      return plugin_error(s.policy->library().label() + ": invalid plan" + where + message, s.policy->library().label(),
                          "plan");
    case kernels::decode_error::source::terminator:
      if (terminator)
        return plugin_error(terminator->library().label() + ": traversal setup failed" + where +
                                (message.empty() ? "(the plugin gave no message)" : message),
                            terminator->library().label(), "reset/check");
      break;
    default: break;
  }
  return plugin_error("decode kernel failed" + where + (message.empty() ? "(no message)" : message));
}

// The decode_layer arguments of one sequence at one layer.
kernels::layer_decode_args layer_args(const run_inputs& in, sequence& s, std::uint32_t layer,
                                      const terminator_instance* terminator, std::size_t state_bytes) {
  kernels::layer_decode_args la;
  la.queries = s.queries.data();
  la.n_query_heads = in.model.shape().n_query_heads;
  la.scale = in.model.scale();
  la.kv = &s.cache->layer_view(layer);
  la.plan = &s.plan;
  la.out = s.outputs.data();
  if (s.fidelity) la.lse = s.fidelity->lse();
  if (terminator) {
    la.terminator = terminator->ops();
    la.terminator_instance = terminator->handle();
    la.terminator_state_size = state_bytes;
    la.terminator_last_error = terminator->library().descriptor().last_error;
  }
  return la;
}

// Adds one sequence's traversal counters of one layer to the cell's totals.
void count_layer(const run_inputs& in, const sequence& s, std::uint32_t layer, cell_totals& t) {
  const model_shape& p = in.model.shape();
  const std::uint32_t d = p.head_dim, hq = p.n_query_heads, hkv = p.n_kv_heads, group = hq / hkv;
  const std::size_t elem = kernels::dtype_size(in.config.dtype);
  const bool per_query = s.plan.granularity == ATTNBENCH_PLAN_PER_QUERY_HEAD;
  const std::uint32_t traversals = per_query ? hq : hkv;
  const std::uint32_t n_q = per_query ? 1 : group;
  if (t.layer_blocks_planned.size() < p.n_layers) {
    t.layer_blocks_planned.resize(p.n_layers, 0);
    t.layer_blocks_visited.resize(p.n_layers, 0);
  }
  for (std::uint32_t j = 0; j < traversals; ++j) {
    const auto& c = s.counters[j];
    t.blocks_planned += c.blocks_planned;
    t.blocks_visited += c.blocks_visited;
    t.layer_blocks_planned[layer] += c.blocks_planned;
    t.layer_blocks_visited[layer] += c.blocks_visited;
    const auto role = static_cast<std::size_t>(p.roles[layer][per_query ? j / group : j]);
    t.role_blocks_planned[role] += c.blocks_planned;
    t.role_blocks_visited[role] += c.blocks_visited;
    t.k_bytes += c.tokens_visited * d * elem;
    t.v_bytes += c.tokens_visited * d * elem;
    t.attended_token_heads += static_cast<double>(c.tokens_visited) * n_q;
    t.context_token_heads += static_cast<double>(s.model_seq->tokens().size()) * n_q;
  }
}

// One decode step of every sequence in `batch`, for the token after its tokens: layer by
// layer, each sequence's policy plans, then all of the layer's traversals (sequences x
// KV heads) run in one parallel region, and each sequence's model folds its outputs.
void attend_batch(const run_inputs& in, std::span<sequence* const> batch, const terminator_instance* terminator,
                  cell_totals& t) {
  const model_shape& p = in.model.shape();
  const std::uint32_t hq = p.n_query_heads;
  // Asked once per step, on this thread: plugin.h promises concurrency for reset and check only.
  const std::size_t state_bytes = terminator ? terminator->state_size(hq / p.n_kv_heads, p.head_dim) : 0;
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
    // Queries and plans, sequences in parallel (each has its own policy instance).
    tbb::parallel_for(std::size_t{0}, batch.size(), [&](std::size_t i) {
      sequence& s = *batch[i];
      s.model_seq->queries(layer, s.queries.data());
      const attnbench_plan_request req{layer, hq, s.step, s.model_seq->tokens().size() - 1, s.queries.data(),
                                       in.model.scale(), 0, &s.cache->layer_view(layer)};
      const auto t_sel = clock_type::now();
      s.plan = s.policy->plan(req);
      s.selection_s += seconds_since(t_sel);
    });
    const auto t_att = clock_type::now();
    tbb::parallel_for(std::size_t{0}, batch.size(), [&](std::size_t i) {
      sequence& s = *batch[i];
      const kernels::layer_decode_args la = layer_args(in, s, layer, terminator, state_bytes);
      std::optional<plugin_call> call;  // the terminator's reset and check run inside the kernel
      if (terminator) call.emplace(terminator->library().index(), plugin_op::terminator_check, layer, s.step);
      s.status = kernels::decode_layer(la, s.counters.data(), &s.error);
    });
    t.attention_s += seconds_since(t_att);
    for (sequence* s : batch)
      if (s->status != ATTNBENCH_STATUS_OK) throw decode_failure(*s, terminator, layer);
    if (in.config.fidelity)
      tbb::parallel_for(std::size_t{0}, batch.size(), [&](std::size_t i) {
        sequence& s = *batch[i];
        s.fidelity->measure(layer, s.queries.data(), s.outputs.data());
      });
    for (sequence* s : batch) {
      if (s->fidelity) s->fidelity->add_to(layer, t.fidelity);
      s->model_seq->fold(layer, s->outputs.data());
      count_layer(in, *s, layer, t);
    }
  }
  for (sequence* s : batch) ++s->step;
  t.steps += batch.size();
}

// A sample's generations: the prompt's, then one after each follow-up. Each decodes one
// or more continuations; a continuation is greedy after the tokens it was forked with.
// Suspends before every decode step; attend_batch folds the step's outputs meanwhile.
sequence_task decode_sequence(sequence& s) {
  const tasks::sample& smp = *s.smp;
  const auto& vocab = tasks::vocabulary::standard();
  model_sequence& seq = *s.model_seq;
  auto is_stop = [&](tasks::token x) {
    return std::find(smp.stop_tokens.begin(), smp.stop_tokens.end(), x) != smp.stop_tokens.end();
  };
  // Appends and truncations reach the fidelity probe's cache too.
  auto append = [&](std::span<const tasks::token> x) {
    seq.append(x);
    if (s.fidelity) s.fidelity->append(x);
  };
  auto push = [&](tasks::token x) { append(std::span(&x, 1)); };
  std::vector<tasks::token> last_answer;  // the previous generation's first continuation
  for (std::size_t gen = 0; gen <= smp.follow_ups.size() && !g_interrupt_requested.load(); ++gen) {
    if (gen > 0) {
      std::vector<tasks::token> follow_up;
      for (tasks::token x : smp.follow_ups[gen - 1]) {
        if (x == tasks::kLastAnswer) follow_up.insert(follow_up.end(), last_answer.begin(), last_answer.end());
        else follow_up.push_back(x);
      }
      append(follow_up);
    }
    const std::size_t base = seq.tokens().size();
    s.final_generation = s.texts.size();
    std::vector<std::vector<tasks::token>> pending{{}};  // forced starts of continuations to decode
    for (std::size_t c = 0; c < pending.size() && !g_interrupt_requested.load(); ++c) {
      if (seq.tokens().size() != base) {  // back to the generation's start
        seq.truncate(base);
        if (s.fidelity) s.fidelity->truncate(base);
      }
      std::vector<tasks::token> out = pending[c];
      for (tasks::token x : out) push(x);
      while (out.size() < smp.max_new_tokens && !g_interrupt_requested.load()) {
        co_await std::suspend_always{};  // the batch's decode step
        // One candidate more than branches, in case one of them is a stop token.
        const auto candidates = seq.read_out(smp.branches > 1 ? smp.branches + 1 : 1);
        const tasks::token next = candidates.front().token;
        // Runners-up close to the best and clear of the noise floor start continuations.
        for (std::size_t i = 1; i < candidates.size() && pending.size() < smp.branches; ++i) {
          const float logit = candidates[i].logit;
          if (logit < smp.branch_ratio * candidates.front().logit || logit < kBranchNoiseSd * candidates[i].noise_sd)
            break;
          if (is_stop(candidates[i].token)) continue;
          auto fork = out;
          fork.push_back(candidates[i].token);
          pending.push_back(std::move(fork));
        }
        if (is_stop(next)) break;
        out.push_back(next);
        push(next);
      }
      s.texts.push_back(vocab.detokenize(out));
      if (c == 0) last_answer = out;
    }
  }
}

// A sample's row for samples.jsonl: the prediction (every continuation of the scored
// generations), its score, and the transcript when it differs.
ojson sample_row(const tasks::task& task, const sequence& s, cell_totals& t) {
  std::string prediction, transcript;
  const std::string& sep = s.smp->branch_separator;
  for (std::size_t i = 0; i < s.texts.size(); ++i) {
    transcript += (transcript.empty() ? "" : sep) + s.texts[i];
    if (!s.smp->score_final_generation || i >= s.final_generation)
      prediction += (prediction.empty() ? "" : sep) + s.texts[i];
  }
  const double score = task.score(prediction, s.smp->references);
  t.scores.push_back(score);
  ojson row{{"prediction", prediction},
            {"references", s.smp->references},
            {"score", score},
            {"generated_tokens", s.step},
            {"prepare_ms", 1e3 * s.prepare_s},
            {"prefill_ms", 1e3 * s.prefill_s},
            {"decode_ms", 1e3 * s.decode_s},
            {"prompt_hash", prompt_hash(s.smp->prompt)},
            {"info", s.smp->info}};
  if (transcript != prediction) row["transcript"] = transcript;
  return row;
}

// Decode: every sequence runs to its first step; then each round is one batched step of
// the sequences still decoding. A sequence's decode_s is the time until it ended.
void decode_batch(const run_inputs& in, std::vector<sequence>& seqs, const terminator_instance* terminator,
                  cell_totals& t) {
  const std::size_t n = seqs.size();
  const auto t_decode = clock_type::now();
  std::vector<sequence_task> bodies;
  bodies.reserve(n);
  std::vector<sequence*> stepping;
  for (std::size_t i = 0; i < n; ++i) {
    bodies.push_back(decode_sequence(seqs[i]));
    bodies[i].resume();
    if (bodies[i].done()) seqs[i].decode_s = seconds_since(t_decode);
  }
  for (;;) {
    stepping.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (!bodies[i].done()) stepping.push_back(&seqs[i]);
    if (stepping.empty()) break;
    attend_batch(in, stepping, terminator, t);
    // Readouts and appends, sequences in parallel (the model is read-only).
    tbb::parallel_for(std::size_t{0}, n, [&](std::size_t i) {
      if (bodies[i].done()) return;
      bodies[i].resume();
      if (bodies[i].done()) seqs[i].decode_s = seconds_since(t_decode);
    });
  }
  t.decode_s += seconds_since(t_decode);
}

}  // namespace

std::vector<ojson> run_batch(const run_inputs& in, const tasks::task& task, std::span<const tasks::sample> samples,
                             std::span<policy_instance* const> policies, const terminator_instance* terminator,
                             cell_totals& t, std::span<kernels::kv_cache* const> caches) {
  const model_shape& p = in.model.shape();
  const std::uint32_t d = p.head_dim, hq = p.n_query_heads;
  const std::size_t n = samples.size();
  if (policies.size() != n || caches.size() != n)
    throw std::invalid_argument("run_batch: one policy instance and one cache per sample");
  std::vector<sequence> seqs(n);
  for (std::size_t i = 0; i < n; ++i) {
    sequence& s = seqs[i];
    s.smp = &samples[i];
    s.cache = caches[i];
    s.cache->truncate(0);
    s.policy = policies[i];
    s.queries.resize(static_cast<std::size_t>(hq) * d);
    s.outputs.resize(static_cast<std::size_t>(hq) * d);
    s.counters.resize(hq);
    // Fault in the pages this sample's K/V can reach before anything is timed: on a VM a
    // fresh huge page takes about a millisecond to zero, which belongs to neither K/V
    // generation nor decoding (a reused cache has its pages already).
    const auto t_prepare = clock_type::now();
    s.cache->prefault(max_tokens(samples[i]));
    s.prepare_s = seconds_since(t_prepare);
    prefill_sequence(in, s, t);
  }
  decode_batch(in, seqs, terminator, t);
  for (const sequence& s : seqs) t.selection_s += s.selection_s;
  std::vector<ojson> rows;
  for (const sequence& s : seqs) rows.push_back(sample_row(task, s, t));
  return rows;
}

ojson run_sample(const run_inputs& in, const tasks::task& task, const tasks::sample& smp, policy_instance& policy,
                 const terminator_instance* terminator, cell_totals& t, kernels::kv_cache* reuse) {
  const model_shape& p = in.model.shape();
  std::optional<kernels::kv_cache> own;
  if (!reuse) own.emplace(p.n_layers, p.n_kv_heads, p.head_dim, in.config.block_size, in.config.dtype);
  kernels::kv_cache* cache = reuse ? reuse : &*own;
  policy_instance* policies[] = {&policy};
  kernels::kv_cache* caches[] = {cache};
  return std::move(run_batch(in, task, std::span(&smp, 1), policies, terminator, t, caches).front());
}

}  // namespace attnbench
