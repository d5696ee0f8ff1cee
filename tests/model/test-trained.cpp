// The trained model (model/include/attnbench/model/trained.hpp): its dense forward
// against the training script's own model (a committed PyTorch reference), its decode
// path through the model interface against the dense forward, and clear errors on a bad
// model folder.
#include "../test-helpers.hpp"

#include "safetensors.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/kernels/decode.hpp>
#include <attnbench/kernels/kv-cache.hpp>
#include <attnbench/model/trained.hpp>
#include <attnbench/tasks/vocabulary.hpp>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

using namespace attnbench;
using namespace attnbench::testing;

namespace {

const std::filesystem::path kModel = source_dir() / "models" / "niah-2x128";

struct reference {
  std::vector<tasks::token> tokens;
  std::map<std::string, detail::tensor_f32> tensors;
};

const reference& load_reference() {
  static const reference r = [] {
    reference out;
    out.tensors = detail::read_safetensors(source_dir() / "tests" / "data" / "trained-reference.safetensors");
    for (float t : out.tensors.at("tokens").data) out.tokens.push_back(static_cast<tasks::token>(t));
    return out;
  }();
  return r;
}

const trained_model& the_model() {
  static const trained_model m(kModel);
  return m;
}

double relative_l2(const float* got, const float* want, std::size_t n) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < n; ++i) {
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / norm);
}

// The ordinary tokens of one logits row, best first.
std::vector<tasks::token> ranked(const float* logits, std::size_t k) {
  const auto& vocab = tasks::vocabulary::standard();
  std::vector<tasks::token> order;
  for (std::size_t t = 0; t < vocab.size(); ++t)
    if (!vocab.is_special(static_cast<tasks::token>(t))) order.push_back(static_cast<tasks::token>(t));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](tasks::token a, tasks::token b) { return logits[a] > logits[b]; });
  order.resize(k);
  return order;
}

kernels::kv_cache make_cache(attnbench_dtype dtype = ATTNBENCH_DTYPE_FP32) {
  const auto& s = the_model().shape();
  return kernels::kv_cache(s.n_layers, s.n_kv_heads, s.head_dim, 64, dtype);
}

// One decode step as the run engine drives it, every layer attended densely.
std::vector<readout_candidate> dense_step(model_sequence& seq, kernels::kv_cache& cache, std::size_t k) {
  const auto& s = the_model().shape();
  std::vector<float> q(std::size_t{s.n_query_heads} * s.head_dim), out(q.size());
  std::vector<attnbench_plan_entry> all(s.n_kv_heads, attnbench_plan_entry{ATTNBENCH_PLAN_ALL, 0, nullptr, nullptr});
  std::vector<kernels::decode_counters> counters(s.n_kv_heads);
  for (std::uint32_t l = 0; l < s.n_layers; ++l) {
    seq.queries(l, q.data());
    const attnbench_plan plan{ATTNBENCH_PLAN_PER_KV_HEAD, s.n_kv_heads, all.data()};
    kernels::layer_decode_args a;
    a.queries = q.data();
    a.n_query_heads = s.n_query_heads;
    a.scale = the_model().scale();
    a.kv = &cache.layer_view(l);
    a.plan = &plan;
    a.out = out.data();
    EXPECT_EQ(kernels::decode_layer(a, counters.data()), ATTNBENCH_STATUS_OK);
    seq.fold(l, out.data());
  }
  return seq.read_out(k);
}

std::vector<tasks::token> tokens_of(const std::vector<readout_candidate>& c) {
  std::vector<tasks::token> out;
  for (const auto& x : c) out.push_back(x.token);
  return out;
}

}  // namespace

TEST(TrainedModel, ForwardMatchesThePyTorchReference) {
  const reference& ref = load_reference();
  const auto& a = the_model().architecture();
  std::vector<std::vector<float>> attention;
  std::vector<float> logits;
  the_model().forward(ref.tokens, nullptr, &attention, &logits);
  ASSERT_EQ(attention.size(), a.n_layers);
  const std::size_t n = ref.tokens.size(), width = std::size_t{a.n_heads} * a.head_dim;
  for (std::uint32_t l = 0; l < a.n_layers; ++l) {
    const auto& want = ref.tensors.at("attention." + std::to_string(l));
    ASSERT_EQ(want.data.size(), n * width);
    EXPECT_LT(relative_l2(attention[l].data(), want.data.data(), n * width), 1e-3) << "layer " << l;
  }
  const auto& want = ref.tensors.at("logits");
  const std::size_t rows = want.data.size() / a.vocab_size;
  EXPECT_LT(relative_l2(logits.data() + (n - rows) * a.vocab_size, want.data.data(), rows * a.vocab_size), 1e-3);
}

TEST(TrainedModel, DecodeStepsThroughTheInterfaceRankAsTheDenseForward) {
  // Teacher-forced over the reference's last positions: each step's best tokens are the
  // reference logits' best tokens.
  const reference& ref = load_reference();
  const auto& want = ref.tensors.at("logits");
  const std::size_t vocab = the_model().architecture().vocab_size, rows = want.data.size() / vocab, n = ref.tokens.size();
  auto cache = make_cache();
  std::span<const tasks::token> all(ref.tokens);
  const auto seq = the_model().start_sequence(all.first(n - rows + 1), cache);
  for (std::size_t r = 0; r < rows; ++r) {
    const auto got = tokens_of(dense_step(*seq, cache, 3));
    EXPECT_EQ(got, ranked(want.data.data() + r * vocab, 3)) << "position " << n - rows + r;
    if (r + 1 < rows) seq->append(all.subspan(n - rows + r + 1, 1));
  }
  EXPECT_EQ(cache.n_tokens(0, 0), n);
  EXPECT_EQ(cache.n_tokens(the_model().shape().n_layers - 1, 0), n);
}

TEST(TrainedModel, QueriesWithoutFoldsAndTruncationLeaveTheNextStepUnchanged) {
  const reference& ref = load_reference();
  std::span<const tasks::token> prompt(ref.tokens.data(), ref.tokens.size() - 8);
  auto cache_a = make_cache(), cache_b = make_cache();
  const auto a = the_model().start_sequence(prompt, cache_a);
  const auto b = the_model().start_sequence(prompt, cache_b);
  // As on_prefill and head statistics do: every layer's queries, no folds.
  std::vector<float> q(std::size_t{the_model().shape().n_query_heads} * the_model().shape().head_dim);
  for (std::uint32_t l = 0; l < the_model().shape().n_layers; ++l) a->queries(l, q.data());
  EXPECT_EQ(tokens_of(dense_step(*a, cache_a, 5)), tokens_of(dense_step(*b, cache_b, 5)));
  // Decode two tokens, then go back: the step after is the first one again.
  const auto first = tokens_of(dense_step(*a, cache_a, 5));
  a->append(std::span(ref.tokens).subspan(prompt.size(), 2));
  dense_step(*a, cache_a, 1);
  a->truncate(prompt.size());
  EXPECT_EQ(cache_a.n_tokens(1, 1), prompt.size());
  EXPECT_EQ(tokens_of(dense_step(*a, cache_a, 5)), first);
}

TEST(TrainedModel, AMultiTokenAppendEqualsOneTokenAtATime) {
  const reference& ref = load_reference();
  std::span<const tasks::token> all(ref.tokens);
  const std::size_t p = all.size() - 12;
  auto cache_a = make_cache(), cache_b = make_cache();
  const auto a = the_model().start_sequence(all.first(p), cache_a);
  const auto b = the_model().start_sequence(all.first(p), cache_b);
  a->append(all.subspan(p, 6));
  for (std::size_t i = 0; i < 6; ++i) b->append(all.subspan(p + i, 1));
  const auto ca = dense_step(*a, cache_a, 4), cb = dense_step(*b, cache_b, 4);
  EXPECT_EQ(tokens_of(ca), tokens_of(cb));
  EXPECT_EQ(cache_a.n_tokens(0, 0), p + 6);
}

TEST(TrainedModel, ABadModelFolderIsAConfigErrorNamingTheFile) {
  const auto dir = scratch("trained-bad");
  auto write_config = [&](const std::function<void(nlohmann::json&)>& edit) {
    std::ifstream in(kModel / "config.json");
    nlohmann::json c = nlohmann::json::parse(in);
    edit(c);
    std::ofstream(dir / "config.json") << c.dump();
  };
  auto expect_error = [&](const std::string& part) {
    try {
      trained_model m(dir);
      ADD_FAILURE() << "loaded";
    } catch (const config_error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
      EXPECT_EQ(e.code, exit_config);
    }
  };
  expect_error("config.json: cannot open");
  std::filesystem::copy_file(kModel / "weights.safetensors", dir / "weights.safetensors");
  write_config([](nlohmann::json& c) { c["architecture"]["dim"] = 64; });
  expect_error("/embed.weight: has shape [8395 x 128], the config's architecture needs [8395 x 64]");
  write_config([](nlohmann::json& c) { c["architecture"]["vocab_size"] = 100; });
  expect_error("/architecture/vocab_size: the model has 100 tokens");
  write_config([](nlohmann::json& c) { c["architecture"]["n_layers"] = 1; });
  expect_error("a tensor the architecture does not use: layers.1.");
  write_config([](nlohmann::json& c) { c["format"] = "other"; });
  expect_error("/format: expected \"attnbench-trained-1\"");
  write_config([](nlohmann::json& c) { c["weights"] = 5; });
  expect_error("config.json: /weights: expected a name");
  write_config([](nlohmann::json& c) { c["weights"] = "../weights"; });
  expect_error("config.json: /weights: expected a name");
  write_config([](nlohmann::json&) {});
  // Headers no file of ours would have: each a config error naming the file, never a crash.
  auto write_weights = [&](const std::string& header) {
    std::string text = header;
    const std::uint64_t n = text.size();
    std::ofstream out(dir / "weights.safetensors", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << text << std::string(64, '\0');
  };
  write_weights(R"({"x": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})");
  expect_error("weights.safetensors: /x/shape: more elements than the file holds bytes for");
  write_weights(R"({"x": {"dtype": )" + std::string(100000, '[') + std::string(100000, ']') + R"(, "shape": [], "data_offsets": [0, 4]}})");
  expect_error("weights.safetensors: ");  // too deep for the parser, or the dtype named by its type
  write_weights(R"({"x": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})");
  expect_error("weights.safetensors: /x/dtype: expected \"F32\", \"F16\" or \"BF16\", got \"F64\"");
  write_weights(R"({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})");
  expect_error("weights.safetensors: /x: holds 16 bytes, its shape and dtype need 12");
  std::filesystem::copy_file(kModel / "weights.safetensors", dir / "weights.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(dir / "weights.safetensors", 1000);
  expect_error("weights.safetensors: not a safetensors file: the header runs past the end");
}
