#include <attnbench/report/results.hpp>

#include <attnbench/host/errors.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace attnbench {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

// Writes text to path through a temporary file and rename, so readers never see a
// half-written file.
void fsync_path(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

void write_atomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw output_error(tmp.string() + ": cannot write: " + std::strerror(errno));
    out << text;
    out.flush();
    if (!out) throw output_error(tmp.string() + ": write failed: " + std::strerror(errno));
  }
  fsync_path(tmp, O_RDONLY);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw output_error(path.string() + ": cannot replace: " + ec.message());
  fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path(), O_RDONLY | O_DIRECTORY);
}

results_writer::results_writer(fs::path dir, json meta, bool resume) : dir_(std::move(dir)) {
  std::error_code ec;
  const fs::path results = dir_ / "results.json";
  const fs::path samples = dir_ / "samples.jsonl";
  if (resume) {
    if (!fs::exists(results, ec))
      throw output_error("--resume: " + results.string() + " does not exist; nothing to resume");
    json old;
    try {
      std::ifstream in(results);
      old = json::parse(in);
    } catch (const std::exception& e) {
      throw output_error("--resume: " + results.string() + " is not readable JSON: " + e.what());
    }
    if (!old.contains("meta") || !old["meta"].contains("config") || !old.contains("cells"))
      throw output_error("--resume: " + results.string() + " is not an attnbench results file");
    if (old["meta"]["config"] != meta["config"])
      throw output_error("--resume: " + results.string() +
                         " was written by a different config; resume with the same config and --set options, "
                         "or choose another --out folder");
    if (old["meta"].value("shard", json()) != meta.value("shard", json()))
      throw output_error("--resume: " + results.string() + " holds shard " + old["meta"].value("shard", json()).dump() +
                         ", not " + meta.value("shard", json()).dump() + "; resume with the same --shard");
    doc_ = json{{"meta", meta}, {"cells", old["cells"]}};
    for (const auto& c : doc_["cells"]) finished_.insert(c["id"].get<std::string>());
    // Drop sample lines of cells that never finished (a crash between the two writes).
    std::vector<std::string> kept;
    {
      std::ifstream in(samples);
      for (std::string line; std::getline(in, line);) {
        try {
          if (finished_.count(json::parse(line).at("cell").get<std::string>())) kept.push_back(line);
        } catch (const std::exception&) {
          // a torn last line: drop it
        }
      }
    }
    std::string text;
    for (const auto& l : kept) text += l + "\n";
    write_atomically(samples, text);
  } else {
    fs::create_directories(dir_, ec);
    if (ec) throw output_error("output folder " + dir_.string() + ": cannot create: " + ec.message());
    if (fs::exists(results, ec))
      throw output_error("output folder " + dir_.string() +
                         " already holds results.json; use --resume to continue it or choose another --out");
    doc_ = json{{"meta", meta}, {"cells", json::array()}};
    write_atomically(samples, "");
  }
  write_results();  // also proves the folder is writable before any work starts
}

void results_writer::write_results() { write_atomically(dir_ / "results.json", doc_.dump(2) + "\n"); }

void results_writer::set_meta(const std::string& key, const json& value) {
  doc_["meta"][key] = value;
  write_results();
}

void results_writer::set_summary(const std::string& key, const json& value) {
  doc_["summary"][key] = value;
  write_results();
}

void results_writer::add_cell(const json& cell, const std::vector<json>& samples) {
  const fs::path path = dir_ / "samples.jsonl";
  {
    std::ofstream out(path, std::ios::app | std::ios::binary);
    if (!out) throw output_error(path.string() + ": cannot append: " + std::strerror(errno));
    for (const auto& s : samples) out << s.dump() << "\n";
    out.flush();
    if (!out) throw output_error(path.string() + ": write failed: " + std::strerror(errno));
  }
  fsync_path(path, O_RDONLY);
  doc_["cells"].push_back(cell);
  finished_.insert(cell["id"].get<std::string>());
  write_results();
}

nlohmann::ordered_json read_results_file(const fs::path& dir) {
  const fs::path file = dir / "results.json";
  if (!fs::exists(file)) throw config_error(dir.string(), "", "not a results folder (no results.json)");
  nlohmann::ordered_json doc;
  try {
    std::ifstream in(file);
    doc = nlohmann::ordered_json::parse(in);
  } catch (const std::exception& e) {
    throw config_error(file.string(), "", std::string("not readable JSON: ") + e.what());
  }
  if (!doc.contains("meta") || !doc["meta"].contains("config") || !doc.contains("cells") || !doc["cells"].is_array())
    throw config_error(file.string(), "", "not an attnbench results file (no meta.config or cells)");
  return doc;
}

std::string cell_id_with(const std::string& id, const std::string& policy, const std::string& terminator) {
  const auto a = id.find('/'), b = a == std::string::npos ? a : id.find('/', a + 1), end = id.rfind('/');
  if (b == std::string::npos || end <= b) return "";
  const auto c = id.find('/', b + 1);
  if (c == std::string::npos || c >= end) return "";
  return id.substr(0, b + 1) + policy + "/" + terminator + id.substr(end);
}

}  // namespace attnbench
