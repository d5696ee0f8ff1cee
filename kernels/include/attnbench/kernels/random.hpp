// Deterministic pseudo-random numbers that give the same sequence on every machine and
// standard library (std:: distributions do not): SplitMix64 for seeding and hashing,
// xoshiro256** for streams, and distributions built from integer arithmetic, + and *,
// and sqrt only (all correctly rounded in IEEE 754).
#pragma once

#include <cstdint>

namespace attnbench {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Combines values into one seed; order matters.
inline std::uint64_t hash_combine(std::uint64_t seed, std::uint64_t value) {
  return splitmix64(seed ^ (value + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2)));
}

class rng {
 public:
  explicit rng(std::uint64_t seed) : rng(seed, 0) {}
  // A stream of one of several families: the state is the SplitMix64 chain of the seed,
  // (a, sm(a), sm(sm(a)), sm(sm(sm(a)))), with `domain` XORed into its second word (the
  // one the first output comes from); domain 0 is rng(seed). A start of domain d has
  // second word sm(first) ^ d, so no seed of another domain gives the same start: the
  // families of starting states are disjoint (tests/tasks/test-sample-domains.cpp checks
  // the streams' first outputs and the samples drawn from them).
  rng(std::uint64_t seed, std::uint64_t domain) {
    std::uint64_t x = seed;
    for (auto& s : s_) s = x = splitmix64(x);
    s_[1] ^= domain;
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias below 2^-32 for n < 2^32).
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Approximately standard normal: the sum of 12 uniforms minus 6 (Irwin-Hall).
  double normal() {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += uniform();
    return s - 6.0;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace attnbench
