#include <attnbench/report/tables.hpp>

#include <attnbench/report/summary.hpp>
#include <attnbench/tasks/suites.hpp>

#include <algorithm>
#include <cstdio>
#include <set>

namespace attnbench {

using ojson = nlohmann::ordered_json;

std::string format_number(const char* format, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, x);
  return buf;
}

void table::add(std::vector<std::string> row, std::string note) {
  rows.push_back(std::move(row));
  notes.push_back(std::move(note));
}

std::string table::markdown() const {
  const bool any_note = std::any_of(notes.begin(), notes.end(), [](const std::string& n) { return !n.empty(); });
  std::string out = "|";
  for (const auto& h : header) out += " " + h + " |";
  if (any_note) out += " note |";
  out += "\n|";
  for (std::size_t i = 0; i < header.size() + any_note; ++i) out += "---|";
  out += "\n";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    out += "|";
    for (const auto& c : rows[r]) out += " " + c + " |";
    if (any_note) out += " " + (r < notes.size() ? notes[r] : std::string()) + " |";
    out += "\n";
  }
  if (!footnote.empty()) out += "\n" + footnote + "\n";
  return out;
}

std::string table::csv() const {
  auto line = [](const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::string c = v[i];
      if (c.find_first_of(",\"") != std::string::npos) {
        std::string q = "\"";
        for (char ch : c) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        c = q + "\"";
      }
      out += (i ? "," : "") + c;
    }
    return out + "\n";
  };
  const bool any_note = std::any_of(notes.begin(), notes.end(), [](const std::string& n) { return !n.empty(); });
  auto with_note = [&](std::vector<std::string> v, const std::string& note) {
    if (any_note) v.push_back(note);
    return v;
  };
  std::string out = line(with_note(header, "note"));
  for (std::size_t r = 0; r < rows.size(); ++r) out += line(with_note(rows[r], r < notes.size() ? notes[r] : ""));
  return out;
}

std::string table::text() const {
  std::vector<std::size_t> width(header.size(), 0);
  for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto line = [&](const std::vector<std::string>& cells, const std::string& note) {
    std::string out;
    for (std::size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      const std::string pad(width[i] - cells[i].size(), ' ');
      if (i) out += ' ';
      out += i < label_columns ? cells[i] + pad : pad + cells[i];
    }
    if (!note.empty()) out += "  (" + note + ")";
    return out + "\n";
  };
  std::string out = title.empty() ? "" : "\n" + title + "\n";
  out += line(header, "");
  for (std::size_t r = 0; r < rows.size(); ++r) out += line(rows[r], r < notes.size() ? notes[r] : "");
  if (!footnote.empty()) out += footnote + "\n";
  return out;
}

table cells_table(const ojson& cells) {
  table t;
  t.header = {"policy", "terminator", "task", "context", "accuracy", "skipped", "decode tok/s"};
  t.label_columns = 3;
  for (const auto& c : cells) {
    const auto& m = c["metrics"];
    t.add({c["policy"].get<std::string>(), c["terminator"].get<std::string>(), c["task"].get<std::string>(),
           std::to_string(c["context_length"].get<unsigned>()), format_number("%.1f", m["accuracy"].get<double>()),
           format_number("%.1f%%", 100.0 * m["blocks_skipped_frac"].get<double>()),
           format_number("%.2f", m["decode_tokens_per_s"].get<double>())});
  }
  return t;
}

namespace {

// Every context length of a RULER summary, ascending.
std::vector<unsigned> ruler_lengths(const ojson& ruler) {
  std::set<unsigned> lengths;
  for (const auto& r : ruler)
    for (const auto& l : r["lengths"]) lengths.insert(l["context_length"].get<unsigned>());
  return {lengths.begin(), lengths.end()};
}

// obj[key] as "%.1f", or "-" when obj has no such key.
std::string score_or_dash(const ojson& obj, const std::string& key) {
  return obj.contains(key) ? format_number("%.1f", obj[key].get<double>()) : "-";
}

const ojson* length_entry(const ojson& row, unsigned length) {
  for (const auto& l : row["lengths"])
    if (l["context_length"].get<unsigned>() == length) return &l;
  return nullptr;
}

}  // namespace

table ruler_score_table(const ojson& ruler) {
  table t;
  t.title = "RULER score (per length: mean over tasks; then mean over lengths)";
  t.header = {"policy", "terminator"};
  const auto lengths = ruler_lengths(ruler);
  for (unsigned l : lengths) t.header.push_back(std::to_string(l));
  t.header.push_back("mean");
  for (const auto& r : ruler) {
    std::vector<std::string> row{r["policy"].get<std::string>(), r["terminator"].get<std::string>()};
    for (unsigned l : lengths) {
      const ojson* e = length_entry(r, l);
      row.push_back(e ? format_number("%.1f", (*e)["score"].get<double>()) : "-");
    }
    row.push_back(format_number("%.1f", r["mean"].get<double>()));
    t.add(std::move(row), r["complete"].get<bool>() ? "" : "not all 13 tasks");
  }
  // When no row has all of RULER's tasks, one line below the table says so instead of
  // the same note on every row.
  if (std::none_of(ruler.begin(), ruler.end(), [](const ojson& r) { return r["complete"].get<bool>(); })) {
    t.notes.assign(t.rows.size(), "");
    t.footnote = "Means over the config's RULER tasks, not all 13 of RULER's: not comparable with a paper's RULER score.";
  }
  return t;
}

table ruler_task_table(const ojson& ruler) {
  table t;
  t.title = "RULER per task (mean over seeds)";
  t.header = {"policy", "terminator", "task"};
  t.label_columns = 3;
  const auto lengths = ruler_lengths(ruler);
  for (unsigned l : lengths) t.header.push_back(std::to_string(l));
  t.header.push_back("mean");
  for (const auto& r : ruler) {
    std::set<std::string> names;
    for (const auto& l : r["lengths"])
      for (const auto& [task, score] : l["task_scores"].items()) names.insert(task);
    for (const auto& task : names) {
      std::vector<std::string> row{r["policy"].get<std::string>(), r["terminator"].get<std::string>(), task};
      double sum = 0;
      int n = 0;
      for (unsigned l : lengths) {
        const ojson* e = length_entry(r, l);
        if (!e || !(*e)["task_scores"].contains(task)) {
          row.push_back("-");
          continue;
        }
        const double score = (*e)["task_scores"][task].get<double>();
        row.push_back(format_number("%.1f", score));
        sum += score, ++n;
      }
      row.push_back(format_number("%.1f", n ? sum / n : 0.0));
      t.add(std::move(row));
    }
    std::vector<std::string> mean_row{r["policy"].get<std::string>(), r["terminator"].get<std::string>(), "**mean**"};
    for (unsigned l : lengths) {
      const ojson* e = length_entry(r, l);
      mean_row.push_back(e ? format_number("%.1f", (*e)["score"].get<double>()) : "-");
    }
    mean_row.push_back(format_number("%.1f", r["mean"].get<double>()));
    t.add(std::move(mean_row));
  }
  return t;
}

table longbench_task_table(const ojson& lb) {
  table t;
  t.title = "LongBench tasks (mean over lengths and seeds)";
  t.header = {"policy", "terminator"};
  std::vector<std::string> names;
  for (const auto& r : lb)
    for (const auto& [task, score] : r["tasks"].items())
      if (std::find(names.begin(), names.end(), task) == names.end()) names.push_back(task);
  for (const auto& n : names) t.header.push_back(tasks::longbench_short_name(n));
  for (const auto& r : lb) {
    std::vector<std::string> row{r["policy"].get<std::string>(), r["terminator"].get<std::string>()};
    for (const auto& n : names) row.push_back(score_or_dash(r["tasks"], n));
    t.add(std::move(row));
  }
  return t;
}

table longbench_category_table(const ojson& lb) {
  table t;
  t.title = "LongBench categories (mean of their tasks) and overall (mean of the categories)";
  t.header = {"policy", "terminator"};
  for (const auto& c : tasks::longbench_categories()) t.header.push_back(c);
  for (const char* h : {"overall", "0-4K", "4-8K", "8K+"}) t.header.push_back(h);
  for (const auto& r : lb) {
    std::vector<std::string> row{r["policy"].get<std::string>(), r["terminator"].get<std::string>()};
    for (const auto& c : tasks::longbench_categories()) row.push_back(score_or_dash(r["categories"], c));
    row.push_back(format_number("%.1f", r["overall"].get<double>()));
    for (const char* b : {"0-4K", "4-8K", "8K+"})
      row.push_back(r["buckets"].contains(b) ? score_or_dash(r["buckets"][b], "overall") : "-");
    t.add(std::move(row), r["complete"].get<bool>() ? "" : "not all 6 categories");
  }
  return t;
}

std::string console_tables(const ojson& results) {
  std::string out = cells_table(results["cells"]).text();
  if (const auto ruler = ruler_summary(results["cells"]); !ruler.empty()) out += ruler_score_table(ruler).text();
  if (const auto lb = longbench_summary(results["cells"]); !lb.empty())
    out += longbench_task_table(lb).text() + longbench_category_table(lb).text();
  return out;
}

}  // namespace attnbench
