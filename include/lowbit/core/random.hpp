// Seeded random numbers with a state that can be saved and restored (checkpoints need it
// for bit-exact resume). We implement the generator and the distributions ourselves so that
// the same seed gives the same numbers with every compiler and standard library
// (std::normal_distribution is implementation-defined).
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "error.hpp"

namespace lowbit {

// xoshiro256** (Blackman & Vigna), seeded through splitmix64. Box-Muller normals cache
// their second value; the cache is part of the state.
class Generator {
 public:
  struct State {
    std::array<uint64_t, 4> s{};
    bool has_spare = false;
    double spare = 0.0;
    bool operator==(const State& o) const {
      return s == o.s && has_spare == o.has_spare && spare == o.spare;
    }
  };

  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }

  void manual_seed(uint64_t seed) {
    uint64_t x = seed;
    for (auto& w : st_.s) w = splitmix64(x);
    st_.has_spare = false;
    st_.spare = 0.0;
  }

  uint64_t next_u64() {
    auto& s = st_.s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  // Uniform integer in [0, n), rejection-sampled so that it is unbiased.
  uint64_t randint(uint64_t n) {
    LOWBIT_CHECK(n > 0, "Generator::randint: n must be positive, got ", n);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = next_u64();
    while (r >= limit);
    return r % n;
  }

  // Standard normal via Box-Muller.
  double normal() {
    if (st_.has_spare) {
      st_.has_spare = false;
      return st_.spare;
    }
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 6.283185307179586 * u2;
    st_.spare = r * std::sin(theta);
    st_.has_spare = true;
    return r * std::cos(theta);
  }
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  const State& state() const { return st_; }
  void set_state(const State& s) { st_ = s; }

  // Text form for checkpoints and config files: five hex words and the spare as a
  // hex-float, so the round-trip is exact.
  std::string state_string() const {
    std::ostringstream os;
    os << std::hex;
    for (uint64_t w : st_.s) os << w << ' ';
    os << (st_.has_spare ? 1 : 0) << ' ' << std::hexfloat << st_.spare;
    return os.str();
  }
  void set_state_string(const std::string& text) {
    std::istringstream is(text);
    State s;
    int spare_flag = 0;
    is >> std::hex;
    for (auto& w : s.s) is >> w;
    is >> spare_flag;
    std::string spare_text;
    is >> spare_text;
    LOWBIT_CHECK(!is.fail() && (spare_flag == 0 || spare_flag == 1),
                 "Generator::set_state_string: cannot parse generator state '", text,
                 "' (expected 4 hex words, a 0/1 flag and a hex-float)");
    s.has_spare = spare_flag == 1;
    s.spare = std::strtod(spare_text.c_str(), nullptr);
    st_ = s;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  State st_;
};

}  // namespace lowbit
