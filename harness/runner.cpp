#include "runner.hpp"

#include "machine.hpp"
#include "policy-host.hpp"

#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/random.hpp>
#include <attnbench/tasks/task.hpp>

#include <spdlog/spdlog.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <coroutine>
#include <map>
#include <exception>
#include <numeric>
#include <optional>
#include <span>
#include <utility>

#include <unistd.h>

namespace attnbench {

namespace fs = std::filesystem;
using nlohmann::json;
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

std::uint64_t string_hash(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

void check_interrupt(const results_writer& writer) {
  if (g_interrupt_requested.load())
    throw harness_error(exit_interrupted, "interrupted: " + std::to_string(writer.finished_cells()) +
                                              " finished cells are in " + writer.dir().string() +
                                              "; continue with --resume --out " + writer.dir().string());
}

}  // namespace

namespace {

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

// One sample of a batch: its tokens, cache, policy instance and per-step buffers.
struct sequence {
  const tasks::sample* smp = nullptr;
  kernels::kv_cache* cache = nullptr;
  policy_instance* policy = nullptr;
  std::vector<tasks::token> tokens;
  std::vector<float> queries;                      // [hq * d], the layer being planned
  std::vector<float> outputs;                      // [layers * hq * d], the last step's
  std::vector<kernels::decode_counters> counters;  // [hq]
  attnbench_plan plan{};
  seen_stamps seen;
  std::uint32_t step = 0;  // decode steps, over all continuations
  std::vector<std::string> texts;
  std::size_t final_generation = 0;  // index in texts of the last generation's first continuation
  double prefill_s = 0, decode_s = 0;
  double selection_s = 0;  // in the policy's plan calls
  double prepare_s = 0;    // faulting in the cache's pages
  attnbench_status status = ATTNBENCH_STATUS_OK;  // the last decode_layer's, and its message
  std::string error;
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

// Prefill: K/V in closed form, then the policy may evict.
void prefill_sequence(const run_inputs& in, sequence& s, cell_totals& t) {
  const model_profile& p = in.model.profile();
  const std::uint32_t hq = p.n_query_heads;
  kernels::kv_cache& cache = *s.cache;
  policy_instance& policy = *s.policy;
  const auto t_prefill = clock_type::now();
  in.model.prefill(s.tokens, cache);
  t.resident_before_eviction_bytes += static_cast<double>(cache.resident_bytes());
  if (policy.has_on_prefill()) {
    for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
      in.model.queries(layer, s.tokens, s.queries.data());
      const attnbench_prefill_request req{layer, hq, s.tokens.size(), s.queries.data(), in.model.scale(), 0,
                                          &cache.layer_view(layer)};
      const attnbench_plan keep = policy.on_prefill(req);
      apply_keep_set(policy, cache, layer, keep);
    }
  }
  s.prefill_s = seconds_since(t_prefill);
  t.prefill_s += s.prefill_s;
  t.resident_bytes += static_cast<double>(cache.resident_bytes());
}

// One decode step of every sequence in `batch`, for the token after its tokens: layer by
// layer, each sequence's policy plans, then all of the layer's traversals (sequences x
// KV heads) run in one parallel region, into each sequence's outputs.
void attend_batch(const run_inputs& in, std::span<sequence* const> batch, const terminator_instance* terminator,
                  cell_totals& t) {
  const synthetic_model& model = in.model;
  const model_profile& p = model.profile();
  const std::uint32_t d = p.head_dim, hq = p.n_query_heads, hkv = p.n_kv_heads, group = hq / hkv;
  const std::size_t elem = kernels::dtype_size(in.config.dtype);
  const std::size_t state_bytes = terminator ? terminator->state_size(group, d) : 0;
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
    // Queries and plans, sequences in parallel (each has its own policy instance).
    tbb::parallel_for(std::size_t{0}, batch.size(), [&](std::size_t i) {
      sequence& s = *batch[i];
      model.queries(layer, s.tokens, s.queries.data());
      const attnbench_kv_layer_view& kv = s.cache->layer_view(layer);
      const attnbench_plan_request req{layer, hq, s.step, s.tokens.size() - 1, s.queries.data(), model.scale(), 0, &kv};
      const auto t_sel = clock_type::now();
      s.plan = s.policy->plan(req);
      s.selection_s += seconds_since(t_sel);
      if (const std::string problem = check_plan(s.plan, kv, hq, s.seen); !problem.empty())
        throw plugin_error(s.policy->library().label() + ": invalid plan at layer " + std::to_string(layer) +
                           ", step " + std::to_string(s.step) + ": " + problem);
    });
    const auto t_att = clock_type::now();
    tbb::parallel_for(std::size_t{0}, batch.size(), [&](std::size_t i) {
      sequence& s = *batch[i];
      kernels::layer_decode_args la;
      la.queries = s.queries.data();
      la.n_query_heads = hq;
      la.scale = model.scale();
      la.kv = &s.cache->layer_view(layer);
      la.plan = &s.plan;
      la.out = s.outputs.data() + static_cast<std::size_t>(layer) * hq * d;
      if (terminator) {
        la.terminator = terminator->ops();
        la.terminator_instance = terminator->handle();
        la.terminator_state_size = state_bytes;
        la.terminator_last_error = terminator->library().descriptor().last_error;
      }
      s.status = kernels::decode_layer(la, s.counters.data(), &s.error);
    });
    t.attention_s += seconds_since(t_att);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      sequence& s = *batch[i];
      if (s.status != ATTNBENCH_STATUS_OK) {
        // Plans were checked above, so a failure here is the terminator's reset.
        if (terminator)
          throw plugin_error(terminator->library().label() + ": reset failed at layer " + std::to_string(layer) +
                             ": " + (s.error.empty() ? "(the plugin gave no message)" : s.error));
        throw plugin_error("decode kernel rejected the plan of " + s.policy->library().label());
      }
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
        t.context_token_heads += static_cast<double>(s.tokens.size()) * n_q;
      }
    }
  }
  for (sequence* s : batch) ++s->step;
  t.steps += batch.size();
}

// A sample's generations: the prompt's, then one after each follow-up. Each decodes one
// or more continuations; a continuation is greedy after the tokens it was forked with.
// Suspends before every decode step; attend_batch fills s.outputs meanwhile.
sequence_task decode_sequence(const run_inputs& in, sequence& s) {
  const synthetic_model& model = in.model;
  const tasks::sample& smp = *s.smp;
  const auto& vocab = tasks::vocabulary::standard();
  std::vector<tasks::token>& tokens = s.tokens;
  kernels::kv_cache& cache = *s.cache;
  auto is_stop = [&](tasks::token x) {
    return std::find(smp.stop_tokens.begin(), smp.stop_tokens.end(), x) != smp.stop_tokens.end();
  };
  auto push = [&](tasks::token x) {
    tokens.push_back(x);
    model.append_last(tokens, cache);
  };
  std::vector<tasks::token> last_answer;  // the previous generation's first continuation
  for (std::size_t gen = 0; gen <= smp.follow_ups.size() && !g_interrupt_requested.load(); ++gen) {
    if (gen > 0) {
      const std::size_t first = tokens.size();
      for (tasks::token x : smp.follow_ups[gen - 1]) {
        if (x == tasks::kLastAnswer) tokens.insert(tokens.end(), last_answer.begin(), last_answer.end());
        else tokens.push_back(x);
      }
      model.append_from(tokens, first, cache);
    }
    const std::size_t base = tokens.size();
    s.final_generation = s.texts.size();
    std::vector<std::vector<tasks::token>> pending{{}};  // forced starts of continuations to decode
    for (std::size_t c = 0; c < pending.size() && !g_interrupt_requested.load(); ++c) {
      if (tokens.size() != base) {  // back to the generation's start
        cache.truncate(base);
        tokens.resize(base);
      }
      std::vector<tasks::token> out = pending[c];
      for (tasks::token x : out) push(x);
      while (out.size() < smp.max_new_tokens && !g_interrupt_requested.load()) {
        co_await std::suspend_always{};  // the batch's decode step
        // One candidate more than branches, in case one of them is a stop token.
        const auto candidates = model.readout_candidates(s.outputs.data(), smp.branches > 1 ? smp.branches + 1 : 1);
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

}  // namespace

std::vector<ojson> run_batch(const run_inputs& in, const tasks::task& task, std::span<const tasks::sample> samples,
                             std::span<policy_instance* const> policies, const terminator_instance* terminator,
                             cell_totals& t, std::span<kernels::kv_cache* const> caches) {
  const model_profile& p = in.model.profile();
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
    s.tokens = samples[i].prompt;
    s.queries.resize(static_cast<std::size_t>(hq) * d);
    s.outputs.resize(static_cast<std::size_t>(p.n_layers) * hq * d);
    s.counters.resize(hq);
    // Fault in the pages this sample's K/V can reach before anything is timed: on a VM a
    // fresh huge page takes about a millisecond to zero, which belongs to neither K/V
    // generation nor decoding (a reused cache has its pages already).
    const auto t_prepare = clock_type::now();
    s.cache->prefault(max_tokens(samples[i]));
    s.prepare_s = seconds_since(t_prepare);
    prefill_sequence(in, s, t);
  }

  // Decode: every sequence runs to its first step; then each round is one batched step
  // of the sequences still decoding. A sequence's decode_ms is the time until it ended.
  const auto t_decode = clock_type::now();
  std::vector<sequence_task> bodies;
  bodies.reserve(n);
  std::vector<sequence*> stepping;
  for (std::size_t i = 0; i < n; ++i) {
    bodies.push_back(decode_sequence(in, seqs[i]));
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
  for (const sequence& s : seqs) t.selection_s += s.selection_s;

  std::vector<ojson> rows;
  for (const sequence& s : seqs) {
    std::string prediction, transcript;
    const std::string& sep = s.smp->branch_separator;
    for (std::size_t i = 0; i < s.texts.size(); ++i) {
      transcript += (transcript.empty() ? "" : sep) + s.texts[i];
      if (!s.smp->score_final_generation || i >= s.final_generation)
        prediction += (prediction.empty() ? "" : sep) + s.texts[i];
    }
    const double score = task.score(prediction, s.smp->references);
    t.scores.push_back(score);
    rows.push_back(ojson{{"prediction", prediction},
                         {"references", s.smp->references},
                         {"score", score},
                         {"generated_tokens", s.step},
                         {"prepare_ms", 1e3 * s.prepare_s},
                         {"prefill_ms", 1e3 * s.prefill_s},
                         {"decode_ms", 1e3 * s.decode_s},
                         {"info", s.smp->info}});
    if (transcript != prediction) rows.back()["transcript"] = transcript;
  }
  return rows;
}

ojson run_sample(const run_inputs& in, const tasks::task& task, const tasks::sample& smp, policy_instance& policy,
                 const terminator_instance* terminator, cell_totals& t, kernels::kv_cache* reuse) {
  const model_profile& p = in.model.profile();
  std::optional<kernels::kv_cache> own;
  if (!reuse) own.emplace(p.n_layers, p.n_kv_heads, p.head_dim, in.config.block_size, in.config.dtype);
  kernels::kv_cache* cache = reuse ? reuse : &*own;
  policy_instance* policies[] = {&policy};
  kernels::kv_cache* caches[] = {cache};
  return std::move(run_batch(in, task, std::span(&smp, 1), policies, terminator, t, caches).front());
}

namespace {

// A policy's stats over a batch's instances: per key, the mean of the instances' numbers
// (with batch 1, the instance's stats as they are). Non-numbers come from the first
// instance that reports the key.
nlohmann::json mean_stats(const std::vector<std::unique_ptr<policy_instance>>& policies) {
  if (policies.size() == 1) return policies.front()->stats();
  nlohmann::json out = nlohmann::json::object();
  std::map<std::string, std::pair<double, int>> sums;
  for (const auto& policy : policies) {
    const nlohmann::json stats = policy->stats();
    if (!stats.is_object()) continue;
    for (const auto& [k, v] : stats.items()) {
      if (v.is_number()) {
        auto& [sum, count] = sums[k];
        sum += v.get<double>();
        ++count;
      } else if (!out.contains(k)) {
        out[k] = v;
      }
    }
  }
  for (const auto& [k, sc] : sums) out[k] = sc.first / sc.second;
  return out;
}

ojson cell_metrics(const cell_totals& t, double probe) {
  const double n = static_cast<double>(t.scores.size());
  const double mean = std::accumulate(t.scores.begin(), t.scores.end(), 0.0) / n;
  double var = 0;
  for (double s : t.scores) var += (s - mean) * (s - mean);
  const double sd = t.scores.size() > 1 ? std::sqrt(var / (n - 1)) : 0.0;
  const double half = 1.96 * sd / std::sqrt(n);
  const double steps = static_cast<double>(std::max<std::uint64_t>(t.steps, 1));
  const double bytes = static_cast<double>(t.k_bytes + t.v_bytes);
  const double effective_bw = t.attention_s > 0 ? bytes / t.attention_s : 0.0;
  auto skipped = [](std::uint64_t planned, std::uint64_t visited) {
    return planned ? 1.0 - static_cast<double>(visited) / static_cast<double>(planned) : 0.0;
  };
  ojson skipped_by_layer = ojson::array(), skipped_by_role = ojson::object();
  for (std::size_t l = 0; l < t.layer_blocks_planned.size(); ++l)
    skipped_by_layer.push_back(skipped(t.layer_blocks_planned[l], t.layer_blocks_visited[l]));
  for (std::size_t r = 0; r < 4; ++r)
    if (t.role_blocks_planned[r] > 0)
      skipped_by_role[head_role_name(static_cast<head_role>(r))] =
          skipped(t.role_blocks_planned[r], t.role_blocks_visited[r]);
  return ojson{{"accuracy", mean},
          {"accuracy_ci95", {std::max(0.0, mean - half), std::min(100.0, mean + half)}},
          {"samples", t.scores.size()},
          {"decode_steps", t.steps},
          {"blocks_planned", t.blocks_planned},
          {"blocks_visited", t.blocks_visited},
          {"blocks_skipped_frac",
           t.blocks_planned ? 1.0 - static_cast<double>(t.blocks_visited) / static_cast<double>(t.blocks_planned) : 0.0},
          {"blocks_skipped_frac_by_layer", skipped_by_layer},
          {"blocks_skipped_frac_by_role", skipped_by_role},
          {"tokens_attended_frac", t.context_token_heads > 0 ? t.attended_token_heads / t.context_token_heads : 0.0},
          {"kv_bytes_read_k", t.k_bytes},
          {"kv_bytes_read_v", t.v_bytes},
          {"kv_bytes_read_per_step", bytes / steps},
          {"kv_bytes_resident_before_eviction", t.resident_before_eviction_bytes / n},
          {"kv_bytes_resident", t.resident_bytes / n},
          {"selection_us_per_step", 1e6 * t.selection_s / steps},
          {"attention_us_per_step", 1e6 * t.attention_s / steps},
          {"decode_tokens_per_s", t.decode_s > 0 ? static_cast<double>(t.steps) / t.decode_s : 0.0},
          {"prefill_ms", 1e3 * t.prefill_s / n},
          {"attention_bytes_per_s", effective_bw},
          {"bandwidth_ratio", probe > 0 ? effective_bw / probe : 0.0}};
}

}  // namespace

json resolved_plugins::info() const {
  json out = json::array();
  for (const auto& l : policies) out.push_back(l->info_json());
  for (const auto& l : terminators)
    if (l) out.push_back(l->info_json());
  return out;
}

attnbench_model_info model_info(const run_config& config, const model_profile& p) {
  return {p.n_layers, p.n_query_heads, p.n_kv_heads, p.head_dim, config.block_size,
          static_cast<std::uint32_t>(config.dtype)};
}

resolved_plugins resolve_plugins(const run_config& config, const model_profile& profile, plugin_registry& registry) {
  resolved_plugins out;
  const attnbench_model_info info = model_info(config, profile);
  auto load = [&](const plugin_spec& spec, attnbench_plugin_kind kind, const std::string& pointer) {
    const std::string where = config.file.string() + ": " + pointer + ": ";
    std::shared_ptr<plugin_library> lib;
    try {
      if (spec.plugin_file.empty()) {
        lib = registry.find(spec.name, kind);
      } else {
        fs::path file(spec.plugin_file);
        if (file.is_relative()) file = config.file.parent_path() / file;
        lib = registry.load_file(file);
        if (lib->name() != spec.name)
          throw plugin_error(lib->label() + " is named '" + lib->name() + "', the config asks for '" + spec.name + "'");
        if (lib->kind() != kind)
          throw plugin_error(lib->label() + " is a " + plugin_kind_name(lib->kind()) + ", not a " +
                             plugin_kind_name(kind));
      }
      // Create once now so that rejected params fail before any cell runs.
      if (kind == ATTNBENCH_PLUGIN_POLICY) policy_instance check(lib, spec.params, info);
      else terminator_instance check(lib, spec.params, info);
    } catch (const plugin_error& e) {
      throw plugin_error(where + e.what());
    }
    return lib;
  };
  for (std::size_t i = 0; i < config.policies.size(); ++i)
    out.policies.push_back(load(config.policies[i], ATTNBENCH_PLUGIN_POLICY, "/policies/" + std::to_string(i)));
  for (std::size_t i = 0; i < config.terminators.size(); ++i) {
    const auto& spec = config.terminators[i];
    if (spec.name == "none" && spec.plugin_file.empty()) {
      if (!spec.params.empty())
        throw config_error(config.file.string(), "/terminators/" + std::to_string(i) + "/params",
                           "the built-in terminator 'none' takes no parameters");
      out.terminators.push_back(nullptr);
    } else {
      out.terminators.push_back(load(spec, ATTNBENCH_PLUGIN_TERMINATOR, "/terminators/" + std::to_string(i)));
    }
  }
  return out;
}

std::vector<cell_key> expand_grid(const run_config& c) {
  std::vector<cell_key> cells;
  for (std::size_t t = 0; t < c.tasks.size(); ++t)
    for (std::size_t l = 0; l < c.context_lengths.size(); ++l)
      for (std::size_t p = 0; p < c.policies.size(); ++p)
        for (std::size_t m = 0; m < c.terminators.size(); ++m)
          for (std::size_t s = 0; s < c.seeds.size(); ++s) cells.push_back({t, l, p, m, s});
  return cells;
}

std::string cell_id(const run_config& c, const cell_key& k) {
  return c.tasks[k.task].label + "/" + std::to_string(c.context_lengths[k.length]) + "/" + c.policies[k.policy].label +
         "/" + c.terminators[k.terminator].label + "/" + std::to_string(c.seeds[k.seed]);
}

std::uint64_t estimate_cell_bytes(const run_config& c, const model_profile& p, std::uint32_t context_length) {
  const std::uint64_t tokens = context_length + 64;  // generated tokens
  const std::uint64_t per_token = 2ull * p.head_dim * kernels::dtype_size(c.dtype) + sizeof(std::int64_t);
  const std::uint64_t blocks = (tokens + c.block_size - 1) / c.block_size;
  const std::uint64_t per_head = tokens * per_token + blocks * (5ull * p.head_dim * sizeof(float) + 64);
  // The prompt and scratch are small next to the cache; 10% headroom covers them. A
  // batch holds one cache per sequence.
  const std::uint64_t sequences = std::max<std::uint32_t>(1, std::min(c.batch, c.samples));
  return static_cast<std::uint64_t>(static_cast<double>(per_head * p.n_layers * p.n_kv_heads) * 1.1) * sequences +
         (64ull << 20);
}

void check_memory(const run_config& c, const model_profile& p) {
  const std::uint32_t longest = *std::max_element(c.context_lengths.begin(), c.context_lengths.end());
  const std::uint64_t need = estimate_cell_bytes(c, p, longest);
  const bool configured = c.memory_limit_gib > 0;
  const double limit = configured ? c.memory_limit_gib * double(1ull << 30) : 0.9 * double(available_memory_bytes());
  if (static_cast<double>(need) > limit) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s: a cell at context length %u on profile '%s' (batch %u) needs about %.2f GiB, more than %s (%.2f GiB); "
                  "use shorter context_lengths, a smaller profile, dtype or batch, or raise memory_limit_gib",
                  c.file.string().c_str(), longest, p.name.c_str(), std::min(c.batch, c.samples), double(need) / double(1ull << 30),
                  configured ? "memory_limit_gib" : "90% of the memory available now", limit / double(1ull << 30));
    throw resource_error(buf);
  }
}

namespace {

std::string duration_text(double s) {
  char buf[32];
  const auto t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

// Elapsed and remaining time of the cells this process runs; on a terminal, a line at
// the bottom of stderr that says which cell runs now.
class progress_line {
 public:
  progress_line(std::size_t total, std::size_t to_run)
      : total_(total), to_run_(to_run), t0_(clock_type::now()), tty_(::isatty(STDERR_FILENO) == 1) {}
  void start(std::size_t position, const std::string& id) {
    if (!tty_) return;
    std::fprintf(stderr, "\r\033[K[%zu/%zu] running %s (%s)", position, total_, id.c_str(), times().c_str());
    std::fflush(stderr);
  }
  void finish() {
    ++finished_;
    clear();
  }
  void clear() const {
    if (tty_) std::fprintf(stderr, "\r\033[K");
  }
  // "elapsed 1m20s, about 3m05s left" (the cells run so far set the pace).
  std::string times() const {
    const double elapsed = seconds_since(t0_);
    std::string out = "elapsed " + duration_text(elapsed);
    if (finished_ > 0 && finished_ < to_run_)
      out += ", about " + duration_text(elapsed / finished_ * (to_run_ - finished_)) + " left";
    return out;
  }

 private:
  std::size_t total_, to_run_, finished_ = 0;
  clock_type::time_point t0_;
  bool tty_;
};

}  // namespace

void run_cells(const run_inputs& in, results_writer& writer) {
  const run_config& c = in.config;
  const model_profile& p = in.model.profile();
  const attnbench_model_info info = model_info(c, p);
  const auto grid = expand_grid(c);
  std::vector<std::size_t> mine;  // grid indices of this shard's cells
  for (std::size_t i = in.shard_index; i < grid.size(); i += std::max<std::size_t>(in.shard_count, 1)) mine.push_back(i);
  std::size_t to_run = 0;
  for (std::size_t i : mine) to_run += !writer.has_cell(cell_id(c, grid[i]));
  progress_line progress(mine.size(), to_run);
  std::size_t done = 0;
  for (std::size_t grid_index : mine) {
    const cell_key& key = grid[grid_index];
    const std::string id = cell_id(c, key);
    ++done;
    if (writer.has_cell(id)) {
      spdlog::info("[{}/{}] {}: already in results, skipped", done, mine.size(), id);
      continue;
    }
    check_interrupt(writer);
    progress.start(done, id);
    const auto& task_spec = c.tasks[key.task];
    const auto task = tasks::make_task(task_spec.name, task_spec.params);
    const std::uint32_t length = c.context_lengths[key.length];
    const std::uint64_t seed = c.seeds[key.seed];
    // One policy instance and one cache per sequence of a batch, reused by the cell's
    // batches; the terminator instance is shared (its per-traversal state is not).
    const std::uint32_t batch = std::min(c.batch, c.samples);
    std::vector<std::unique_ptr<policy_instance>> policies;
    std::vector<std::unique_ptr<kernels::kv_cache>> caches;
    for (std::uint32_t i = 0; i < batch; ++i) {
      policies.push_back(
          std::make_unique<policy_instance>(in.plugins.policies[key.policy], c.policies[key.policy].params, info));
      caches.push_back(std::make_unique<kernels::kv_cache>(p.n_layers, p.n_kv_heads, p.head_dim, c.block_size, c.dtype));
    }
    std::unique_ptr<terminator_instance> terminator;
    if (in.plugins.terminators[key.terminator])
      terminator = std::make_unique<terminator_instance>(in.plugins.terminators[key.terminator],
                                                         c.terminators[key.terminator].params, info);
    const auto t0 = clock_type::now();
    cell_totals totals;
    std::vector<ojson> rows;
    for (std::uint32_t first = 0; first < c.samples; first += batch) {
      check_interrupt(writer);
      const std::uint32_t n = std::min(batch, c.samples - first);
      // A sample depends on the task, length, seed and index only: every policy and
      // every batch size sees the same samples.
      std::vector<tasks::sample> samples;
      for (std::uint32_t s = first; s < first + n; ++s) {
        const std::uint64_t sample_seed =
            hash_combine(hash_combine(hash_combine(seed, string_hash(task_spec.name)), length), s);
        samples.push_back(task->make_sample(sample_seed, length));
      }
      std::vector<policy_instance*> policy_ptrs;
      std::vector<kernels::kv_cache*> cache_ptrs;
      for (std::uint32_t i = 0; i < n; ++i) {
        policy_ptrs.push_back(policies[i].get());
        cache_ptrs.push_back(caches[i].get());
      }
      std::vector<ojson> batch_rows = run_batch(in, *task, samples, policy_ptrs, terminator.get(), totals, cache_ptrs);
      check_interrupt(writer);  // a batch cut short by Ctrl-C is not recorded
      for (std::uint32_t i = 0; i < n; ++i) {
        ojson line = {{"cell", id},
                      {"task", task_spec.label},
                      {"context_length", length},
                      {"policy", c.policies[key.policy].label},
                      {"terminator", c.terminators[key.terminator].label},
                      {"seed", seed},
                      {"sample", first + i}};
        line.update(batch_rows[i]);
        rows.push_back(std::move(line));
      }
    }
    ojson metrics = cell_metrics(totals, in.read_bandwidth_bytes_per_s);
    metrics["policy_stats"] = mean_stats(policies);
    metrics["terminator_stats"] = terminator ? ojson(terminator->stats()) : ojson::object();
    const ojson cell = {{"id", id},
                       {"grid_index", grid_index},
                       {"task", task_spec.name},
                       {"metric", std::string(task->metric())},
                       {"context_length", length},
                       {"policy", c.policies[key.policy].label},
                       {"terminator", c.terminators[key.terminator].label},
                       {"seed", seed},
                       {"wall_s", seconds_since(t0)},
                       {"metrics", metrics}};
    writer.add_cell(cell, rows);
    progress.finish();
    spdlog::info("[{}/{}] {}: accuracy {:.1f}, blocks skipped {:.1f}%, {:.1f} tokens/s ({})", done, mine.size(), id,
                 metrics["accuracy"].get<double>(), 100.0 * metrics["blocks_skipped_frac"].get<double>(),
                 metrics["decode_tokens_per_s"].get<double>(), progress.times());
  }
  progress.clear();
}

}  // namespace attnbench
