// corpus: training sequences for the trained model (issue 24), from the tasks' samples
// in the training domain and plain text, as a token file and meta.json.
#include "cli.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/host/files.hpp>
#include <attnbench/host/json.hpp>
#include <attnbench/run/engine.hpp>
#include <attnbench/run/plugins.hpp>
#include <attnbench/tasks/corpus.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>

namespace attnbench::cli {

using nlohmann::json;

namespace {

constexpr std::uint64_t kMaxSequences = 4'000'000;

struct corpus_options {
  std::string config;
  std::string out;
  std::uint64_t tokens = 0;
};

// The corpus config: tasks (names or {"name", "params"}, "haystack" for plain text or
// "repeat" for repeated segments),
// context_lengths, length_weights (default: equal), seed (default 0).
tasks::corpus_spec read_spec(const std::string& file, json& config) {
  config = read_json_file(file);
  const json_reader in(file);
  in.expect_object(config, "");
  in.reject_unknown_keys(config, "", {"name", "description", "tasks", "context_lengths", "length_weights", "seed"});
  for (const char* key : {"name", "description"})
    if (config.contains(key)) in.string(config[key], std::string("/") + key);
  tasks::corpus_spec spec;
  const task_rules rules = config_task_rules();
  in.expect_array(config.value("tasks", json()), "/tasks", true);
  for (std::size_t i = 0; i < config["tasks"].size(); ++i) {
    const json& t = config["tasks"][i];
    const std::string at = "/tasks/" + std::to_string(i);
    std::string name;
    json params = json::object();
    if (t.is_string()) {
      name = t.get<std::string>();
    } else {
      in.expect_object(t, at);
      in.reject_unknown_keys(t, at, {"name", "params"});
      name = in.string(t.value("name", json()), at + "/name");
      if (t.contains("params")) in.expect_object(params = t["params"], at + "/params");
    }
    if (name == tasks::kHaystackTask && !params.empty()) in.fail(at + "/params", "haystack takes no params");
    if (name == tasks::kRepeatTask) try {
        tasks::parse_repeat_params(params);
      } catch (const tasks::task_params_error& e) {
        in.fail(at + "/params" + e.pointer, e.what());
      }
    if (name != tasks::kHaystackTask && name != tasks::kRepeatTask) {
      const task_rules::verdict v = rules.check(name, params);  // the run config's task check
      if (!v.known) in.fail(at, "unknown task \"" + name + "\" (attnbench list names them; \"haystack\" is plain text, \"repeat\" repeated segments)");
      if (!v.problem.empty()) in.fail(at + "/params" + v.params_pointer, v.problem);
    }
    spec.tasks.emplace_back(name, params);
  }
  in.expect_array(config.value("context_lengths", json()), "/context_lengths", true);
  for (std::size_t i = 0; i < config["context_lengths"].size(); ++i)
    spec.lengths.push_back(static_cast<std::uint32_t>(
        in.integer(config["context_lengths"][i], "/context_lengths/" + std::to_string(i), 16, 1 << 20)));
  if (config.contains("length_weights")) {
    in.expect_array(config["length_weights"], "/length_weights", true);
    if (config["length_weights"].size() != spec.lengths.size())
      in.fail("/length_weights", "needs one weight per context length (" + std::to_string(spec.lengths.size()) + ")");
    for (std::size_t i = 0; i < spec.lengths.size(); ++i)
      spec.length_weights.push_back(in.number(config["length_weights"][i], "/length_weights/" + std::to_string(i),
                                              1e-12, 1e12));
  } else {
    spec.length_weights.assign(spec.lengths.size(), 1.0);
  }
  if (config.contains("seed"))
    spec.seed = static_cast<std::uint64_t>(in.integer(config["seed"], "/seed", 0, std::numeric_limits<std::int64_t>::max()));
  return spec;
}

// The corpus's files: tokens.bin, appended batch by batch (so memory holds one batch
// and the index, whatever --tokens asks), then meta.json, whose presence marks a
// finished corpus.
int run_corpus(const corpus_options& o) {
  json config;
  const tasks::corpus_spec spec = read_spec(o.config, config);
  if (o.out.empty()) throw usage_error("--out: an empty path");
  // The index is held in memory until meta.json is written (about 100 bytes a sequence).
  const std::uint32_t shortest = *std::min_element(spec.lengths.begin(), spec.lengths.end());
  if (o.tokens / shortest > kMaxSequences)
    throw usage_error("--tokens " + std::to_string(o.tokens) + " would index up to " +
                      std::to_string(o.tokens / shortest) + " sequences of " + std::to_string(shortest) +
                      " tokens, more than " + std::to_string(kMaxSequences) + "; write several corpora");
  std::unique_ptr<tasks::corpus_writer> writer;
  try {
    writer = std::make_unique<tasks::corpus_writer>(spec);
  } catch (const tasks::corpus_error& e) {
    throw config_error(o.config, e.pointer, e.what());
  }
  const std::size_t vocab = tasks::vocabulary::standard().size();
  if (vocab > 65536) throw harness_error(exit_failure, "the vocabulary outgrew 16-bit token ids");
  refuse_results_folder(o.out, "--out");
  const folder dir = folder::open(o.out, folder::create::parents);
  const folder_lock lock(dir);
  if (dir.has("meta.json")) throw output_error("--out " + o.out + " already holds a corpus (meta.json); give a new folder");
  if (dir.has("tokens.bin"))
    throw output_error("--out " + o.out + " holds an unfinished corpus (tokens.bin without meta.json); give a new folder");
  dir.write_atomically("tokens.bin", "");
  json index = {{"offset", json::array()}, {"length", json::array()}, {"task", json::array()},
                {"context_length", json::array()}, {"sample_seed", json::array()}, {"answers", json::array()}};
  std::uint64_t total = 0, next = 0;
  constexpr std::size_t kBatch = 64;
  while (total < o.tokens) {
    if (g_interrupt_requested.load()) {
      std::filesystem::remove(dir.path() / "tokens.bin");  // this call's own, unfinished
      throw harness_error(exit_interrupted, "interrupted; the unfinished corpus in " + o.out + " was removed");
    }
    std::vector<tasks::corpus_sequence> batch(kBatch);
    tbb::parallel_for(std::size_t{0}, kBatch, [&](std::size_t k) { batch[k] = writer->sequence(next + k); });
    next += kBatch;
    std::string bytes;
    for (const auto& s : batch) {
      if (total >= o.tokens) break;
      for (tasks::token t : s.tokens) {
        if (t < 0 || static_cast<std::size_t>(t) >= vocab)
          throw harness_error(exit_failure, "corpus: token " + std::to_string(t) + " outside the vocabulary");
        const auto u = static_cast<std::uint16_t>(t);
        bytes.push_back(static_cast<char>(u & 0xff));
        bytes.push_back(static_cast<char>(u >> 8));
      }
      json spans = json::array();
      for (const auto& [b, e] : s.answers) spans.push_back({b, e});
      index["offset"].push_back(total);
      index["length"].push_back(s.tokens.size());
      index["task"].push_back(s.task);
      index["context_length"].push_back(s.context_length);
      index["sample_seed"].push_back(s.sample_seed);
      index["answers"].push_back(std::move(spans));
      total += s.tokens.size();
    }
    dir.append("tokens.bin", bytes);
  }
  json task_names = json::array();
  for (const auto& t : spec.tasks) task_names.push_back(t.first);
  const std::size_t count = index["offset"].size();
  const json meta = {{"format", "attnbench-corpus"}, {"version", 1}, {"attnbench_version", ATTNBENCH_VERSION},
                     {"config_file", o.config}, {"config", config}, {"domain", "training"},
                     {"vocab_size", vocab}, {"tokens_file", "tokens.bin"}, {"token_dtype", "uint16le"},
                     {"total_tokens", total}, {"sequences", count}, {"tasks", task_names}, {"index", index}};
  dir.write_atomically("meta.json", meta.dump() + "\n");
  std::printf("wrote %zu sequences, %llu tokens (mean %.0f) to %s\n", count, static_cast<unsigned long long>(total),
              static_cast<double>(total) / static_cast<double>(count), o.out.c_str());
  return exit_ok;
}

}  // namespace

void add_corpus_command(CLI::App& app, std::vector<registered_command>& commands) {
  auto o = std::make_shared<corpus_options>();
  auto* sub = app.add_subcommand(
      "corpus",
      "Write training sequences for a trained model: the tasks' samples drawn in the training domain (never an "
      "evaluation sample) with their answers, and plain text; tokens.bin (16-bit ids) and meta.json");
  sub->add_option("config", o->config, "Corpus config (configs/corpus/default.json)")->required()->type_name("CONFIG");
  sub->add_option("--out", o->out, "Folder to write (created; refused when it holds a corpus or results)")
      ->required()
      ->type_name("DIR");
  sub->add_option("--tokens", o->tokens, "Write sequences until this many tokens")
      ->required()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 32))
      ->type_name("N");
  sub->footer(kExitCodes);
  commands.push_back({sub, [o](const global_options&) { return run_corpus(*o); }});
}

}  // namespace attnbench::cli
