#include <attnbench/host/plugin-file.hpp>

#include <attnbench/host/errors.hpp>
#include <attnbench/host/files.hpp>

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace attnbench {

namespace fs = std::filesystem;

namespace {

#if defined(__x86_64__)
constexpr std::uint16_t kMachine = EM_X86_64;
constexpr const char* kMachineName = "x86-64";
#elif defined(__aarch64__)
constexpr std::uint16_t kMachine = EM_AARCH64;
constexpr const char* kMachineName = "AArch64";
#else
#error "attnbench's plugin check knows x86-64 and AArch64"
#endif

// Whether [offset, offset + count * size) lies inside an image of `total` bytes.
bool inside(std::uint64_t offset, std::uint64_t count, std::uint64_t size, std::uint64_t total) {
  if (offset > total) return false;
  if (size != 0 && count > (total - offset) / size) return false;
  return true;
}

template <class T>
T read_at(std::string_view image, std::uint64_t offset) {
  T value;
  std::memcpy(&value, image.data() + offset, sizeof value);
  return value;
}

std::string machine_problem(const Elf64_Ehdr& h) {
  if (h.e_ident[EI_CLASS] != ELFCLASS64) return "it is a 32-bit ELF file; this attnbench needs a 64-bit plugin";
  if (h.e_ident[EI_DATA] != ELFDATA2LSB) return "it is a big-endian ELF file; this machine is little-endian";
  if (h.e_type != ET_DYN) return "it is an ELF file but not a shared object (link it with -shared)";
  if (h.e_machine != kMachine)
    return "it was built for another architecture (ELF machine " + std::to_string(h.e_machine) + "), this is " +
           kMachineName;
  return "";
}

}  // namespace

std::string elf_image_problem(std::string_view image) {
  const std::uint64_t size = image.size();
  if (size < sizeof(Elf64_Ehdr) || std::memcmp(image.data(), ELFMAG, SELFMAG) != 0)
    return "it is not an ELF shared object (no ELF header)";
  const auto h = read_at<Elf64_Ehdr>(image, 0);
  if (std::string problem = machine_problem(h); !problem.empty()) return problem;
  if (h.e_phentsize != sizeof(Elf64_Phdr) || h.e_phnum == 0 || !inside(h.e_phoff, h.e_phnum, sizeof(Elf64_Phdr), size))
    return "its program headers lie outside the file (truncated or damaged)";
  bool dynamic = false;
  for (std::uint16_t i = 0; i < h.e_phnum; ++i) {
    const auto ph = read_at<Elf64_Phdr>(image, h.e_phoff + std::uint64_t{i} * sizeof(Elf64_Phdr));
    if (!inside(ph.p_offset, 1, ph.p_filesz, size))
      return "segment " + std::to_string(i) + " lies outside the file (truncated: the file has " + std::to_string(size) +
             " bytes)";
    if (ph.p_type == PT_LOAD && ph.p_filesz > ph.p_memsz) return "segment " + std::to_string(i) + " is malformed";
    dynamic |= ph.p_type == PT_DYNAMIC;
  }
  if (!dynamic) return "it has no dynamic section (not a shared object)";
  if (h.e_shoff != 0) {
    if (h.e_shentsize != sizeof(Elf64_Shdr) || !inside(h.e_shoff, h.e_shnum, sizeof(Elf64_Shdr), size))
      return "its section headers lie outside the file (truncated or damaged)";
    for (std::uint16_t i = 0; i < h.e_shnum; ++i) {
      const auto sh = read_at<Elf64_Shdr>(image, h.e_shoff + std::uint64_t{i} * sizeof(Elf64_Shdr));
      if (sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL && !inside(sh.sh_offset, 1, sh.sh_size, size))
        return "section " + std::to_string(i) + " lies outside the file (truncated or damaged)";
    }
  }
  return "";
}

void check_plugin_file(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) throw plugin_error("plugin file " + file.string() + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw plugin_error("plugin file " + file.string() + ": not a regular file");
  if (st.st_mode & S_IWOTH)
    throw plugin_error("plugin file " + file.string() +
                       " is writable by every user, so anyone could replace the code attnbench would run; "
                       "it was not loaded (fix: chmod o-w " + file.string() + ")");
  const fs::path absolute = fs::absolute(file).lexically_normal();
  bool first = true;
  for (fs::path dir = absolute.parent_path();; dir = dir.parent_path()) {
    struct stat ds {};
    if (::stat(dir.c_str(), &ds) == 0 && (ds.st_mode & S_IWOTH) && (first || !(ds.st_mode & S_ISVTX)))
      throw plugin_error("plugin file " + file.string() + ": the folder " + dir.string() +
                         " is writable by every user, so anyone could put code there; it was not loaded (fix: move "
                         "the plugin to a folder only you can write, or chmod o-w " + dir.string() + ")");
    first = false;
    if (dir == dir.parent_path()) break;
  }
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw plugin_error("plugin file " + file.string() + ": " + std::strerror(errno));
  std::string image;
  try {
    image = read_open_file(fd, file, 1ull << 30);
  } catch (const harness_error& e) {
    ::close(fd);
    throw plugin_error(std::string("plugin ") + e.what());
  }
  ::close(fd);
  if (const std::string problem = elf_image_problem(image); !problem.empty())
    throw plugin_error("plugin file " + file.string() + " cannot be loaded: " + problem);
}

}  // namespace attnbench
