// Writing files safely where the harness is told to, and nowhere else: every file is
// written through a folder opened once, created exclusively (never through a planted
// symbolic link) and renamed into place, so a reader sees the old file or the new one
// and a crash leaves no half-written file. Results folders are locked by their run.
#pragma once

#include <attnbench/host/errors.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace attnbench {

// An open folder. Names given to its members are single path components.
class folder {
 public:
  enum class create { no, parents };
  // Opens (with create::parents, first makes) the folder. The last component must not
  // be a symbolic link. Throws output_error naming the folder.
  static folder open(const std::filesystem::path& path, create how);
  // Makes a new folder PARENT/STEM, or PARENT/STEM-2, -3 ... when that exists (two runs
  // started in the same second), and opens it.
  static folder create_unique(const std::filesystem::path& parent, const std::string& stem);
  folder(folder&& other) noexcept;
  folder& operator=(folder&& other) noexcept;
  ~folder();

  const std::filesystem::path& path() const { return path_; }
  int fd() const { return fd_; }
  // Whether NAME exists in the folder (a symbolic link counts; it is not followed).
  bool has(std::string_view name) const;
  // Writes NAME through a fresh temporary file in the folder, fsync and rename; throws
  // output_error.
  void write_atomically(std::string_view name, std::string_view text) const;
  // Appends to an existing regular file NAME (never through a link) and fsyncs it.
  void append(std::string_view name, std::string_view text) const;
  // The bytes of the regular file NAME (not through a link), at most max_bytes; throws
  // config_error when it is missing, a link, not regular or larger.
  std::string read(std::string_view name, std::uint64_t max_bytes) const;

 private:
  folder(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

// Reads an open regular file (fd) of at most max_bytes; `file` names it in config_error.
std::string read_open_file(int fd, const std::filesystem::path& file, std::uint64_t max_bytes);

// write_atomically through the file's folder (which must exist).
void write_atomically(const std::filesystem::path& file, std::string_view text);

// An exclusive advisory lock (flock) on FOLDER/.attnbench-lock, which holds the owner's
// pid. Released when destroyed or when the process ends, however it ends.
class folder_lock {
 public:
  // Throws output_error naming the folder and the holder's pid when another process
  // holds it.
  explicit folder_lock(const folder& dir);
  ~folder_lock();
  folder_lock(const folder_lock&) = delete;
  folder_lock& operator=(const folder_lock&) = delete;
  static constexpr const char* kFileName = ".attnbench-lock";

 private:
  int fd_ = -1;
};

// The pid holding DIR's lock, or 0 when none does (for report's "in progress").
long folder_lock_holder(const std::filesystem::path& dir);

// Output files of commands other than run must never replace a results folder's files:
// throws output_error (naming option) when file lies in a folder that holds a
// results.json and either exists already or is one of the names a run writes.
void refuse_results_folder_file(const std::filesystem::path& file, const std::string& option);
// Same for a whole output folder (dump-kv --out): refused when it holds results.json.
void refuse_results_folder(const std::filesystem::path& dir, const std::string& option);

// The running executable's folder (from /proc/self/exe); empty when /proc is not there.
std::filesystem::path executable_dir();

}  // namespace attnbench
