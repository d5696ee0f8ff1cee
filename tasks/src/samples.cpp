#include <attnbench/tasks/task.hpp>

#include <attnbench/kernels/random.hpp>

namespace attnbench::tasks {

namespace {

std::uint64_t name_hash(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

std::uint64_t sample_seed(std::uint64_t seed, std::string_view task_name, std::uint32_t context_length,
                          std::uint32_t index) {
  return hash_combine(hash_combine(hash_combine(seed, name_hash(task_name)), context_length), index);
}

sample make_indexed_sample(const task& t, std::uint64_t seed, std::uint32_t context_length, std::uint32_t index,
                           sample_domain domain) {
  return t.make_sample_at(sample_seed(seed, t.name(), context_length, index), context_length, index, domain);
}

}  // namespace attnbench::tasks
