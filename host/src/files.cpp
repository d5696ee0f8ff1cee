#include <attnbench/host/files.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

namespace attnbench {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string byte_count(std::uint64_t n) {
  if (n >= (1ull << 20)) return std::to_string(n >> 20) + " MiB";
  return std::to_string(n) + " bytes";
}

void write_all(int fd, std::string_view text, const fs::path& what) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw output_error(what.string() + ": write failed: " + errno_text(errno));
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

void check_name(std::string_view name, const fs::path& dir) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
    throw output_error(dir.string() + ": '" + std::string(name) + "' is not a file name");
}

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0) ::close(fd);
  }
};

std::string symlink_hint(const fs::path& path) {
  std::error_code ec;
  return fs::is_symlink(path, ec) ? "is a symbolic link; give the folder it points to" : "";
}

}  // namespace

std::string read_open_file(int fd, const fs::path& file, std::uint64_t max_bytes) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw config_error(file.string(), "", "cannot be read: " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) throw config_error(file.string(), "", "is a folder, not a file");
  if (!S_ISREG(st.st_mode))
    throw config_error(file.string(), "", "is not a regular file (a device, FIFO or socket); give a JSON file");
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
    throw config_error(file.string(), "", "is " + byte_count(static_cast<std::uint64_t>(st.st_size)) +
                                              ", more than the limit of " + byte_count(max_bytes));
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t have = 0;
  for (;;) {
    if (have == text.size()) {
      if (have > max_bytes) break;
      text.resize(std::max<std::size_t>(4096, text.size() * 2));  // the file grew while read
    }
    const ssize_t got = ::read(fd, text.data() + have, text.size() - have);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw config_error(file.string(), "", "cannot be read: " + errno_text(errno));
    if (got == 0) break;
    have += static_cast<std::size_t>(got);
  }
  if (have > max_bytes)
    throw config_error(file.string(), "", "grew past the limit of " + byte_count(max_bytes) + " while it was read");
  text.resize(have);
  return text;
}

folder folder::open(const fs::path& path, create how) {
  if (how == create::parents) {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec && !fs::is_directory(path)) throw output_error("output folder " + path.string() + ": cannot create: " + ec.message());
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string hint = symlink_hint(path);
    throw output_error("output folder " + path.string() + ": " + (hint.empty() ? "cannot open: " + errno_text(err) : hint));
  }
  return folder(path, fd);
}

folder folder::create_unique(const fs::path& parent, const std::string& stem) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec && !fs::is_directory(parent)) throw output_error("output folder " + parent.string() + ": cannot create: " + ec.message());
  for (int i = 1; i < 1000; ++i) {
    const fs::path path = parent / (i == 1 ? stem : stem + "-" + std::to_string(i));
    if (::mkdir(path.c_str(), 0755) == 0) return open(path, create::no);
    if (errno != EEXIST) throw output_error("output folder " + path.string() + ": cannot create: " + errno_text(errno));
  }
  throw output_error("output folder " + (parent / stem).string() + ": 999 folders of that name exist already");
}

folder::folder(folder&& other) noexcept : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

folder& folder::operator=(folder&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

folder::~folder() {
  if (fd_ >= 0) ::close(fd_);
}

bool folder::has(std::string_view name) const {
  struct stat st {};
  return ::fstatat(fd_, std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

void folder::write_atomically(std::string_view name, std::string_view text) const {
  check_name(name, path_);
  const fs::path target = path_ / name;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    tmp.assign(1, '.');
    tmp.append(name).append(".tmp-").append(std::to_string(rng() % 1000000000));
    fd = ::openat(fd_, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) throw output_error(target.string() + ": cannot write: " + errno_text(errno));
  }
  if (fd < 0) throw output_error(target.string() + ": cannot create a temporary file next to it");
  try {
    fd_closer closer{fd};
    write_all(fd, text, target);
    if (::fsync(fd) != 0) throw output_error(target.string() + ": fsync failed: " + errno_text(errno));
  } catch (...) {
    ::unlinkat(fd_, tmp.c_str(), 0);
    throw;
  }
  // rename replaces NAME itself, also when NAME is a symbolic link: its target is untouched.
  if (::renameat(fd_, tmp.c_str(), fd_, std::string(name).c_str()) != 0) {
    const int err = errno;
    ::unlinkat(fd_, tmp.c_str(), 0);
    throw output_error(target.string() + ": cannot replace: " + errno_text(err));
  }
  ::fsync(fd_);
}

void folder::append(std::string_view name, std::string_view text) const {
  check_name(name, path_);
  const fs::path target = path_ / name;
  const int fd = ::openat(fd_, std::string(name).c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    throw output_error(target.string() + ": cannot append: " +
                       (errno == ELOOP ? "it is a symbolic link, which attnbench does not follow" : errno_text(errno)));
  fd_closer closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw output_error(target.string() + ": not a regular file");
  write_all(fd, text, target);
  if (::fsync(fd) != 0) throw output_error(target.string() + ": fsync failed: " + errno_text(errno));
}

std::string folder::read(std::string_view name, std::uint64_t max_bytes) const {
  check_name(name, path_);
  const fs::path target = path_ / name;
  const int fd = ::openat(fd_, std::string(name).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    throw config_error(target.string(), "", err == ENOENT ? "no such file"
                                            : err == ELOOP ? "is a symbolic link, which attnbench does not follow"
                                                           : "cannot be read: " + errno_text(err));
  }
  fd_closer closer{fd};
  return read_open_file(fd, target, max_bytes);
}

void write_atomically(const fs::path& file, std::string_view text) {
  const fs::path parent = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  folder::open(parent, folder::create::no).write_atomically(file.filename().string(), text);
}

folder_lock::folder_lock(const folder& dir) {
  fd_ = ::openat(dir.fd(), kFileName, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd_ < 0) throw output_error(dir.path().string() + ": cannot create its lock file: " + errno_text(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    const long pid = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
    if (err != EWOULDBLOCK) throw output_error(dir.path().string() + ": cannot lock: " + errno_text(err));
    throw output_error("results folder " + dir.path().string() + " is in use by another attnbench run (pid " +
                       (pid > 0 ? std::to_string(pid) : "unknown") +
                       "); wait for it to end, or choose another --out");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    throw output_error(dir.path().string() + ": cannot write its lock file: " + errno_text(errno));
}

folder_lock::~folder_lock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the lock
}

long folder_lock_holder(const fs::path& dir) {
  const int fd = ::open((dir / folder_lock::kFileName).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  fd_closer closer{fd};
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
    return 0;
  }
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  const long pid = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
  return pid > 0 ? pid : -1;
}

namespace {
bool holds_results(const fs::path& dir) {
  struct stat st {};
  return ::lstat((dir / "results.json").c_str(), &st) == 0;
}
}  // namespace

void refuse_results_folder_file(const fs::path& file, const std::string& option) {
  const fs::path parent = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  if (!holds_results(parent)) return;
  const std::string name = file.filename().string();
  struct stat st {};
  const bool exists = ::lstat(file.c_str(), &st) == 0;
  if (exists || name == "results.json" || name == "samples.jsonl" || name == folder_lock::kFileName)
    throw output_error(option + " " + file.string() + ": would write over a file of the results folder " +
                       parent.string() + "; give a path outside it, or a new file name");
}

void refuse_results_folder(const fs::path& dir, const std::string& option) {
  if (holds_results(dir))
    throw output_error(option + " " + dir.string() + ": is a results folder (it holds results.json); give another folder");
}

std::filesystem::path executable_dir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

}  // namespace attnbench
