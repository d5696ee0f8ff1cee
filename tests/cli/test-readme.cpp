// The README's examples against what the code does: the default config it shows is
// configs/default.json, every option of its command synopsis is in that command's --help,
// and its excerpt of the main job's output has the lines the main job prints.
#include "cli-helpers.hpp"

#include <regex>

using namespace attnbench;
using namespace attnbench::testing;
using namespace attnbench::testing::cli;
namespace fs = std::filesystem;

namespace {

const fs::path kSource = ATTNBENCH_TEST_SOURCE_DIR;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The README's lines after the first that contains `from`, up to, not including, the
// first after it that starts with `to`.
std::vector<std::string> readme_section(const std::string& from, const std::string& to) {
  const auto all = lines_of(read_file(kSource / "README.md"));
  std::vector<std::string> out;
  bool in = false;
  for (const auto& l : all) {
    if (!in && l.find(from) != std::string::npos) {
      in = true;
      continue;
    }
    if (in && l.rfind(to, 0) == 0) break;
    if (in) out.push_back(l);
  }
  return out;
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The indented block (four spaces) that follows the README line containing `after`.
std::vector<std::string> indented_block_after(const std::string& after) {
  std::vector<std::string> out;
  bool started = false;
  for (const auto& l : readme_section(after, "## ")) {
    const bool indented = l.rfind("    ", 0) == 0;
    if (indented) {
      started = true;
      out.push_back(l.substr(4));
    } else if (started && !l.empty()) {
      break;
    }
  }
  return out;
}

}  // namespace

TEST(Readme, TheDefaultConfigShownIsConfigsDefaultJson) {
  std::string block;
  bool in = false;
  for (const auto& l : readme_section("## Configs", "## ")) {
    if (l == "```json") in = true;
    else if (in && l == "```") break;
    else if (in) block += l + "\n";
  }
  ASSERT_FALSE(block.empty()) << "no ```json block under ## Configs in README.md";
  EXPECT_EQ(nlohmann::json::parse(block), nlohmann::json::parse(read_file(kSource / "configs/default.json")));
}

// Each `attnbench ... SUBCOMMAND ...` entry of the synopsis: the subcommand exists, and
// every --option the README gives it is in its --help (or the top level's).
TEST(Readme, EveryOptionOfTheCommandSynopsisIsInTheHelp) {
  const auto block = indented_block_after("## Commands");
  ASSERT_FALSE(block.empty());
  const auto top = run_cli("--help");
  ASSERT_EQ(top.code, 0);
  std::map<std::string, std::string> options;  // subcommand -> its synopsis text
  std::string current;
  const std::regex entry(R"(^attnbench (?:\[[^\]]*\]\s*)*(?:\[--plugin-path DIR\]\.\.\.\s*)?([a-z-]+))");
  for (const auto& l : block) {
    std::smatch m;
    if (std::regex_search(l, m, entry)) current = m[1];
    ASSERT_FALSE(current.empty()) << l;
    options[current] += " " + l;
  }
  EXPECT_GE(options.size(), 13u);
  const std::regex option(R"(--[a-z][a-z-]*)");
  // An option of a --help text: the whole word, not a prefix of a longer option.
  auto lists = [&](const std::string& help, const std::string& o) {
    return std::regex_search(help, std::regex("(^|[ ,])" + o + "($|[ ,=\\n])"));
  };
  for (const auto& [sub, text] : options) {
    const auto help = run_cli(sub + " --help");
    ASSERT_EQ(help.code, 0) << "README names a subcommand 'attnbench " << sub << "' that --help does not know";
    for (auto it = std::sregex_iterator(text.begin(), text.end(), option); it != std::sregex_iterator(); ++it) {
      const std::string o = it->str();
      EXPECT_TRUE(lists(help.out, o) || lists(top.out, o))
          << "README gives 'attnbench " << sub << "' the option " << o << ", which its --help does not list";
    }
  }
  EXPECT_FALSE(lists("  --threads N  the threads", "--thread"));  // a prefix is not the option
}

// The excerpt of the main job's output: its table headers are the printed ones word for
// word, each row names a cell the main job has (same policy, terminator, task and
// length), the RULER rows are the printed rows, and the last line is the results line.
// One sample per cell (the rows' words, not their numbers, are checked), in Release only.
TEST(Readme, TheMainJobExcerptIsWhatTheMainJobPrints) {
#ifdef ATTNBENCH_SANITIZED
  GTEST_SKIP() << "24 cells at 4K-16K on the default profile: run in the Release preset";
#endif
  const auto excerpt = indented_block_after("an excerpt:");
  ASSERT_GE(excerpt.size(), 10u);
  const auto d = scratch("readme-main-job");
  // The excerpt's rows are vt's: the main job on vt alone prints them, and every table
  // header and note the main job prints (a third of its time).
  const auto r = run_cli("run " + (kSource / "configs/default.json").string() +
                         " --set samples=1 --set 'tasks=[\"vt\"]' --out " + (d / "run").string());
  ASSERT_EQ(r.code, 0) << r.err;
  // A figure has a decimal point or a percent sign; every other word (names, lengths,
  // header words) is a label.
  const std::regex figure(R"(-?[0-9]*\.[0-9]+%?|[0-9]+%)");
  auto labels = [&](const std::string& line) {
    std::vector<std::string> out;
    for (const auto& x : words(line))
      if (!std::regex_match(x, figure)) out.push_back(x);
    return out;
  };
  std::set<std::vector<std::string>> printed;
  for (const auto& l : lines_of(r.out)) printed.insert(labels(l));
  std::size_t checked = 0;
  for (const auto& l : excerpt) {
    if (l == "..." || l.empty()) continue;
    if (l.rfind("results: ", 0) == 0) {
      EXPECT_EQ(l, "results: results/default-<date>-<time>");
      EXPECT_NE(r.out.find("results: "), std::string::npos);
      continue;
    }
    EXPECT_TRUE(printed.count(labels(l))) << "the main job prints no line like this README line: " << l;
    ++checked;
  }
  EXPECT_GE(checked, 10u);
}
