#include <attnbench/model/model.hpp>

#include <cstdio>

namespace attnbench {

const char* head_role_name(head_role role) {
  switch (role) {
    case head_role::retrieval: return "retrieval";
    case head_role::sink: return "sink";
    case head_role::local: return "local";
    case head_role::aggregation: return "aggregation";
  }
  return "unknown";
}

std::string prompt_hash(std::span<const tasks::token> tokens) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the ids' four bytes, low first
  for (const tasks::token t : tokens)
    for (int byte = 0; byte < 4; ++byte) h = (h ^ ((static_cast<std::uint32_t>(t) >> (8 * byte)) & 0xffu)) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace attnbench
