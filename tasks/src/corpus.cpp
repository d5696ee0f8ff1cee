#include <attnbench/tasks/corpus.hpp>

#include <attnbench/kernels/random.hpp>

#include "text.hpp"

#include <algorithm>
#include <cctype>
#include <numeric>

namespace attnbench::tasks {

namespace {

std::string joined(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? separator : "") + parts[i];
  return out;
}

// A repeat sequence of context n: <bos>, then 2m segments (m first copies, then the m
// repeats in a shuffled order), each after a stretch of essay text, where m is as many
// as leave half the context to the essay (at least one).
corpus_sequence repeat_sequence(const repeat_params& p, rng& r, std::uint32_t n) {
  const auto& v = vocabulary::standard();
  const std::uint32_t seg = p.segment_tokens;
  const std::uint32_t m = std::max<std::uint32_t>(1, (n - 1) / (4 * seg));
  std::vector<std::vector<token>> segments(m);
  for (auto& s : segments) {
    if (p.digits) {
      for (std::uint32_t j = 0; j < seg; ++j) s.push_back(v.digits()[r.below(v.digits().size())]);
    } else {
      s = draw_words(r, seg);
    }
  }
  std::vector<std::uint32_t> order(m);
  std::iota(order.begin(), order.end(), 0u);
  shuffle(order, r);
  const std::uint32_t filler = n - 1 - 2 * m * seg;  // essay tokens, spread over 2m stretches
  corpus_sequence out;
  out.tokens.push_back(v.bos());
  for (std::uint32_t i = 0; i < 2 * m; ++i) {
    const std::uint32_t stretch = filler / (2 * m) + (i < filler % (2 * m) ? 1 : 0);
    const auto text = essay(r, stretch);
    out.tokens.insert(out.tokens.end(), text.begin(), text.end());
    const auto& s = segments[i < m ? i : order[i - m]];
    const auto begin = static_cast<std::uint32_t>(out.tokens.size());
    out.tokens.insert(out.tokens.end(), s.begin(), s.end());
    if (i >= m && seg > 1) out.answers.emplace_back(begin + 1, begin + seg);
  }
  return out;
}

}  // namespace

repeat_params parse_repeat_params(const nlohmann::json& params) {
  repeat_params p;
  for (const auto& [key, value] : params.items()) {
    if (key == "alphabet") {
      if (!value.is_string() || (value != "digits" && value != "words"))
        throw task_params_error("/alphabet", "expected \"digits\" or \"words\", got " + value.dump());
      p.digits = value == "digits";
    } else if (key == "segment_tokens") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 4 || value.get<std::int64_t>() > 256)
        throw task_params_error("/segment_tokens", "expected an integer in [4, 256], got " + value.dump());
      p.segment_tokens = value.get<std::uint32_t>();
    } else {
      throw task_params_error("/" + key, "unknown parameter for repeat (known: alphabet, segment_tokens)");
    }
  }
  return p;
}

namespace {

// One character per token, as the tasks write uuids into prompts.
std::vector<token> character_tokens(std::string_view text, std::string_view task_name) {
  const auto& v = vocabulary::standard();
  std::vector<token> out;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const std::string one(1, static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (!v.contains(one)) throw task_error(std::string(task_name) + ": the answer \"" + std::string(text) + "\" has no tokens");
    out.push_back(v.id(one));
  }
  return out;
}

// An answer's tokens, as the prompt spells the same text: its words, but a run of letters
// and digits (a uuid) one token per character. The tokenizer would split such a run at
// its digits and keep letter pairs that happen to be words ("be", "a") whole, which the
// prompt's uuids never do.
std::vector<token> answer_tokens(const std::string& text, std::string_view task_name) {
  const auto& v = vocabulary::standard();
  std::vector<token> out;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t end = std::min(text.find_first_of(" \t\n", i), text.size());
    const std::string_view piece(text.data() + i, end - i);
    const bool digit = piece.find_first_of("0123456789") != std::string_view::npos;
    const bool letter = std::any_of(piece.begin(), piece.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; });
    std::vector<token> part;
    if (digit && letter) {
      part = character_tokens(piece, task_name);
    } else {
      try {
        part = v.tokenize(piece);
      } catch (const std::out_of_range&) {
        part = character_tokens(piece, task_name);
      }
    }
    out.insert(out.end(), part.begin(), part.end());
    if (end < text.size() && text[end] == '\n') out.push_back(v.newline());
    i = end + 1;
  }
  return out;
}

}  // namespace

corpus_sequence write_sample(const sample& s, std::string_view task_name, std::uint64_t choice) {
  const auto& v = vocabulary::standard();
  const std::size_t generations = 1 + s.follow_ups.size();
  std::vector<std::string> answers;
  if (s.follow_ups.empty() && s.branches > 1 && !s.references.empty()) {
    // Several answers read as continuations of one step (the readout branches): one of
    // them, chosen by `choice`, not in the order they were drawn, which the prompt does
    // not reveal. Across samples the model learns each value as a likely continuation.
    answers.push_back(s.references[choice % s.references.size()]);
  } else if (s.follow_ups.empty()) {
    answers.push_back(joined(s.references, s.branch_separator));
  } else if (s.references.size() == generations && s.branches == 1) {
    answers = s.references;  // one answer per generation, in order
  } else {
    throw task_error(std::string(task_name) + ": its samples ask " + std::to_string(generations) +
                     " questions in turn but give " + std::to_string(s.references.size()) +
                     " reference(s), so the intermediate answers are unknown and the sample cannot be written as "
                     "training text");
  }
  const token stop = s.stop_tokens.empty() ? v.eos() : s.stop_tokens.front();
  corpus_sequence out;
  out.tokens = s.prompt;
  std::vector<token> previous;
  for (std::size_t g = 0; g < generations; ++g) {
    if (g > 0)
      for (token t : s.follow_ups[g - 1]) {
        if (t == kLastAnswer) out.tokens.insert(out.tokens.end(), previous.begin(), previous.end());
        else out.tokens.push_back(t);
      }
    std::vector<token> answer = answer_tokens(answers[g], task_name);
    const auto begin = static_cast<std::uint32_t>(out.tokens.size());
    out.tokens.insert(out.tokens.end(), answer.begin(), answer.end());
    // The generation ends at a stop token. Where the next follow-up starts with one (". var
    // X ..."), that token is the stop, as the harness appends the follow-up right after
    // the answer; otherwise the stop token is written here.
    const bool follow_up_stops = g + 1 < generations && !s.follow_ups[g].empty() && s.follow_ups[g].front() == stop;
    if (!follow_up_stops) out.tokens.push_back(stop);
    out.answers.emplace_back(begin, static_cast<std::uint32_t>(out.tokens.size()) + (follow_up_stops ? 1 : 0));
    previous = std::move(answer);
  }
  return out;
}

corpus_writer::corpus_writer(corpus_spec spec) : spec_(std::move(spec)) {
  if (spec_.tasks.empty()) throw corpus_error("/tasks", "a corpus needs at least one task");
  if (spec_.lengths.empty() || spec_.lengths.size() != spec_.length_weights.size())
    throw corpus_error("/length_weights", "a corpus needs context lengths and one weight for each");
  for (std::size_t i = 0; i < spec_.length_weights.size(); ++i)
    if (!(spec_.length_weights[i] > 0) || spec_.length_weights[i] > 1e12)
      throw corpus_error("/length_weights/" + std::to_string(i), "length weights must be positive");
  for (std::size_t k = 0; k < spec_.tasks.size(); ++k) try {
      const auto& [name, params] = spec_.tasks[k];
      repeats_.push_back(name == kRepeatTask ? parse_repeat_params(params) : repeat_params{});
      const bool pseudo = name == kHaystackTask || name == kRepeatTask;
      tasks_.push_back(pseudo ? nullptr : make_task(name, params));
    } catch (const task_params_error& e) {
      throw corpus_error("/tasks/" + std::to_string(k) + "/params" + e.pointer, e.what());
    } catch (const std::exception& e) {
      throw corpus_error("/tasks/" + std::to_string(k), e.what());
    }
  for (std::size_t i = 0; i < spec_.lengths.size(); ++i) {
    const std::uint32_t n = spec_.lengths[i];
    std::string minimums;
    for (std::size_t k = 0; k < tasks_.size(); ++k)
      minimums += (k ? ", " : "") + spec_.tasks[k].first + " " + std::to_string(min_length(k));
    bool any = false;
    for (std::size_t k = 0; k < tasks_.size(); ++k) any = any || min_length(k) <= n;
    if (!any)
      throw corpus_error("/context_lengths/" + std::to_string(i),
                         "no task of the corpus fits " + std::to_string(n) + " tokens (minimums: " + minimums + ")");
  }
  // Every task once at every length it fits: one that cannot be written, or cannot make
  // a sample of that length, fails here.
  for (std::size_t k = 0; k < tasks_.size(); ++k) {
    if (!tasks_[k]) continue;
    bool fits = false;
    for (std::size_t i = 0; i < spec_.lengths.size(); ++i) {
      const std::uint32_t n = spec_.lengths[i];
      if (n < tasks_[k]->min_context_length()) continue;
      fits = true;
      sample one;
      try {
        one = tasks_[k]->make_sample(spec_.seed, n, sample_domain::training);
      } catch (const std::exception& e) {
        throw corpus_error("/context_lengths/" + std::to_string(i),
                           spec_.tasks[k].first + " cannot make a sample of " + std::to_string(n) + " tokens: " + e.what());
      }
      try {
        write_sample(one, spec_.tasks[k].first, 0);
      } catch (const task_error& e) {
        throw corpus_error("/tasks/" + std::to_string(k), e.what());
      }
    }
    if (!fits)
      throw corpus_error("/tasks/" + std::to_string(k),
                         spec_.tasks[k].first + " needs " + std::to_string(tasks_[k]->min_context_length()) +
                             " tokens, more than every context length of the corpus");
  }
}

std::uint32_t corpus_writer::min_length(std::size_t k) const {
  if (tasks_[k]) return tasks_[k]->min_context_length();
  return spec_.tasks[k].first == kRepeatTask ? 2 * repeats_[k].segment_tokens + 16 : 2;
}

corpus_sequence corpus_writer::sequence(std::uint64_t i) const {
  rng r(hash_combine(spec_.seed, i), static_cast<std::uint64_t>(sample_domain::training));
  const double total = std::accumulate(spec_.length_weights.begin(), spec_.length_weights.end(), 0.0);
  double u = r.uniform() * total;
  std::size_t pick = 0;
  while (pick + 1 < spec_.lengths.size() && u >= spec_.length_weights[pick]) u -= spec_.length_weights[pick++];
  const std::uint32_t n = spec_.lengths[pick];
  std::vector<std::uint32_t> fit;
  for (std::uint32_t k = 0; k < tasks_.size(); ++k)
    if (min_length(k) <= n) fit.push_back(k);
  const std::uint32_t k = fit[r.below(fit.size())];
  const std::string& name = spec_.tasks[k].first;
  const std::uint64_t seed = sample_seed(spec_.seed, name, n, static_cast<std::uint32_t>(i));
  corpus_sequence out;
  if (tasks_[k]) {
    out = write_sample(tasks_[k]->make_sample(seed, n, sample_domain::training), name, r.next());
  } else if (name == kRepeatTask) {
    rng text(seed, static_cast<std::uint64_t>(sample_domain::training));
    out = repeat_sequence(repeats_[k], text, n);
  } else {
    rng text(seed, static_cast<std::uint64_t>(sample_domain::training));
    out.tokens.push_back(vocabulary::standard().bos());
    const auto body = essay(text, n - 1);
    out.tokens.insert(out.tokens.end(), body.begin(), body.end());
  }
  out.task = k;
  out.context_length = n;
  out.sample_seed = seed;
  return out;
}

}  // namespace attnbench::tasks
