#include <attnbench/host/clock.hpp>

#include <ctime>

namespace attnbench {

std::string time_text(bool utc) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (utc) gmtime_r(&now, &tm);
  else localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y%m%d-%H%M%S", &tm);
  return buf;
}

}  // namespace attnbench
