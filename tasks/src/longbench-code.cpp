// LongBench code completion: lcc (the next line of a repeated block) and repobench_p (the
// arguments of a call to a function defined in another file).
#include "longbench-common.hpp"
#include "longbench-generators.hpp"

#include <algorithm>

namespace attnbench::tasks::longbench_detail {
namespace {

// A statement of code-like tokens over the identifiers in `names`, without its ";".
tokens code_line(rng& r, const std::vector<token>& names) {
  auto id = [&] { return names[r.below(names.size())]; };
  const token eq = V().id("="), dot = V().id("."), open = V().id("("), close = V().id(")"), comma = V().id(",");
  switch (r.below(6)) {
    case 0: return {id(), eq, id(), dot, id(), open, id(), comma, id(), close};
    case 1: return {V().id("self"), dot, id(), eq, id(), V().id("["), id(), V().id("]")};
    case 2: return {V().id("if"), open, id(), V().id("<"), id(), close, V().id("return"), id()};
    case 3: return {V().id("return"), id(), V().id("+"), id(), V().id("*"), id()};
    case 4: return {V().id("def"), id(), open, id(), comma, id(), close};
    default: return {id(), eq, id(), open, id(), close};
  }
}

// A statement as a line: its tokens, ";", a line end.
tokens as_line(std::span<const token> statement) {
  return tokens(statement.begin(), statement.end()) + V().id(";") + V().newline();
}

tokens code_lines(rng& r, std::size_t n, const std::vector<token>& names) {
  tokens out;
  while (true) {
    const tokens line = as_line(code_line(r, names));
    if (out.size() + line.size() > n) break;
    append(out, line);
  }
  out.insert(out.end(), n - out.size(), V().newline());
  return out;
}

sample code_sample(std::uint32_t n, std::span<const token> intro, std::span<const token> body,
                   std::span<const token> ending, std::string reference, std::string_view name) {
  sample s = assemble(n, intro, body, ending, name);
  s.stop_tokens = {V().id(";"), V().eos()};  // a statement ends at ";" (the readout never emits a line end)
  s.references = {std::move(reference)};
  s.max_new_tokens = 24;
  return s;
}

}  // namespace

// lcc: a file of code-like lines; a block of lines far back is repeated near the end and
// the next line of the block is to be written.
sample lcc(rng& r, std::uint32_t n) {
  std::set<std::string> taken;
  const auto names = fresh_words(r, 400, taken);
  const tokens intro = T("please complete the code given below .\n");
  std::vector<tokens> block;
  const std::size_t lines = 4 + r.below(4), shown = 2 + r.below(lines - 2);
  for (std::size_t i = 0; i < lines; ++i) block.push_back(code_line(r, names));
  tokens repeat;
  for (std::size_t i = 0; i < shown; ++i) append(repeat, as_line(block[i]));
  const std::size_t budget = budget_of(n, intro, repeat, "lcc");
  tokens far;
  for (const auto& l : block) append(far, as_line(l));
  if (far.size() + 16 > budget) throw task_error("lcc: " + std::to_string(n) + " tokens are too few");
  tokens body = code_lines(r, budget - far.size(), names);
  // The block goes after a line end at a random depth of the file's first 90%.
  std::size_t at = r.below(body.size() * 9 / 10 + 1);
  while (at > 0 && body[at - 1] != V().newline()) --at;
  body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), far.begin(), far.end());
  sample s = code_sample(n, intro, body, repeat, text_of(block[shown]), "lcc");
  s.info = {{"block_position", 1 + intro.size() + at}, {"line", shown}};
  return s;
}

// repobench-p: files of a repository; one defines a function and another calls it; the
// current file ends in a call of it, whose arguments are to be written.
sample repobench_p(rng& r, std::uint32_t n) {
  std::set<std::string> taken;
  const auto names = fresh_words(r, 400, taken);
  const auto functions = fresh_words(r, 6, taken);  // the first is asked about
  const tokens intro = T("please complete the code given below .\n");
  const token eq = V().id("="), open = V().id("("), close = V().id(")"), comma = V().id(",");
  auto args = [&] { return tokens{names[r.below(names.size())], comma, names[r.below(names.size())], close}; };
  std::vector<tokens> arg(functions.size());
  for (auto& a : arg) a = args();
  const tokens ending = T("file : main . py\n") + tokens{names[r.below(names.size())], eq, functions[0], open};
  const std::size_t budget = budget_of(n, intro, ending, "repobench-p");
  const std::size_t files = std::clamp<std::size_t>(budget / 400, 3, 24);
  const std::size_t per = budget / files;
  // Each function is defined in one file and called in another.
  std::vector<std::vector<tokens>> planted(files);
  for (std::size_t f = 0; f < functions.size(); ++f) {
    const std::size_t def = r.below(files);
    std::size_t use = r.below(files);
    if (use == def) use = (use + 1) % files;
    planted[def].push_back(tokens{V().id("def"), functions[f], open} + arg[f]);
    planted[use].push_back(tokens{names[r.below(names.size())], eq, functions[f], open} + arg[f]);
  }
  tokens body;
  for (std::size_t f = 0; f < files; ++f) {
    const tokens h = T("file :") + names[r.below(names.size())] + T(". py\n");
    std::size_t fixed = h.size();
    for (const auto& p : planted[f]) fixed += p.size() + 2;
    if (fixed + 8 > per) throw task_error("repobench-p: " + std::to_string(n) + " tokens are too few");
    tokens code = code_lines(r, per - fixed, names);
    for (const auto& p : planted[f]) {
      std::size_t at = r.below(code.size() + 1);
      while (at > 0 && code[at - 1] != V().newline()) --at;
      const tokens line = as_line(p);
      code.insert(code.begin() + static_cast<std::ptrdiff_t>(at), line.begin(), line.end());
    }
    append(body, h);
    append(body, code);
  }
  sample s = code_sample(n, intro, body, ending, text_of(arg[0]), "repobench-p");
  s.info = {{"function", V().text(functions[0])}};
  return s;
}

}  // namespace attnbench::tasks::longbench_detail
