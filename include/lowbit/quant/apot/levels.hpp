// APoT level sets (Li, Dong & Wang, ICLR 2020, "Additive Powers-of-Two Quantization",
// Sec. 2.1-2.2): uniform (Eq. 2), powers-of-two (Eq. 3) and additive powers-of-two with base
// bit-width k = 2 (Eq. 5, and Eq. 6 for an odd number of bits), all normalized so that the
// largest level is 1 (the quantizer multiplies by the clipping threshold alpha afterwards,
// RCF Eq. 7). docs/apot.md prints the sets (the paper's Fig. 2).
//
// Bit accounting (docs/notes/apot.md §1.1, the authors' build_power_value and the paper's Sec. 4.1
// "one bit is used for the sign of the weights but not for activations"):
//   * unsigned activations with b bits use the b-bit magnitude set M(b): 2^b levels;
//   * signed weights with b bits use the (b-1)-bit magnitude set plus a sign:
//     {-m : m in M(b-1)} u M(b-1), i.e. 2^b - 1 levels (one code of 2^b is unused);
//   * 2-bit weights are therefore ternary {-1, 0, 1} for every kind, since M(1) = {0, 1}
//     for uniform, PoT and APoT alike (paper Sec. 4.1: "Q(alpha, 2) can only be {+-alpha, 0}";
//     the CIFAR code forces the uniform ternary quantizer for 2-bit weights).
//
// The B-bit magnitude sets M(B) (unsigned, 2^B values in [0, 1], ascending):
//   uniform  {k / (2^B - 1) : k = 0 .. 2^B - 1}                              (Eq. 2, k >= 0 half)
//   PoT      {0} u {2^-j : j = 0 .. 2^B - 2}                                  (Eq. 3, see below)
//   APoT     B = 2n:     {sum_{i<n} p_i},        p_i in {0, 2^-i, 2^-(i+n), 2^-(i+2n)}     (Eq. 5, k = 2)
//            B = 2n + 1: {sum_{i<n} p_i + p~},   p_i in {0, 2^-i, 2^-(i+n), 2^-(i+2n+1)},
//                                                p~  in {0, 2^-2n}                        (Eq. 6)
//            then divided by the largest sum (the paper's gamma).
// Where the paper is loose, lowbit follows the authors' code (docs/notes/apot.md §1.1):
//   * Eq. 3 as printed has 2^(b-1) + 1 magnitudes, one too many for b bits; the code's
//     non-additive set {0, 2^-1, ..., 2^-(2^B-1)} / max, i.e. {0} u {2^0 .. 2^-(2^B-2)}, has
//     exactly 2^B and is what apot_magnitude_levels(ApotLevelKind::PoT, B) returns.
//   * Eq. 6 writes p~ in {0, 2^-(i+2n)} with a free i; i = 0 reproduces both the paper's
//     3-bit example (p0 in {0, 1/2, 1/4, 1/16}, p~ in {0, 1/8}, up to a factor 2 that the
//     normalization removes) and the code's 5-bit bases.
//   * The code's bases are the paper's halved (an issue in the authors' tracker, docs/notes/apot.md §1.1);
//     normalization makes them equal.
// Consequence worth knowing: M(2) is the same set {0, 1/4, 1/2, 1} for PoT and APoT, so
// 3-bit APoT and PoT *weights* coincide; they differ in activations and from 4 bits on.
//
// Levels are computed in double (sums of powers of two and one division, exact enough that
// every listed value of docs/notes/apot.md §1.1 is matched to 1e-15) and stored as float by the
// quantizers.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../../core/error.hpp"

namespace lowbit {
namespace quant {

enum class ApotLevelKind { Uniform, PoT, APoT };

inline ApotLevelKind parse_apot_levels(const std::string& s, const std::string& what) {
  if (s == "apot") return ApotLevelKind::APoT;
  if (s == "uniform") return ApotLevelKind::Uniform;
  if (s == "pot") return ApotLevelKind::PoT;
  lowbit::detail::fail(what, ": unknown level set '", s, "' (expected apot, uniform or pot)");
}
inline const char* apot_levels_name(ApotLevelKind k) {
  return k == ApotLevelKind::APoT ? "apot" : k == ApotLevelKind::PoT ? "pot" : "uniform";
}

namespace detail {
// All sums a + b + ... with one term from each base, deduplicated, ascending.
inline std::vector<double> additive_sums(const std::vector<std::vector<double>>& bases) {
  std::vector<double> sums{0.0};
  for (auto& base : bases) {
    std::vector<double> next;
    for (double s : sums)
      for (double t : base) next.push_back(s + t);
    sums = std::move(next);
  }
  std::sort(sums.begin(), sums.end());
  sums.erase(std::unique(sums.begin(), sums.end()), sums.end());
  return sums;
}
}  // namespace detail

// The B-bit unsigned magnitude set M(B): 2^B ascending values, M[0] = 0, M.back() = 1.
inline std::vector<double> apot_magnitude_levels(ApotLevelKind kind, int B) {
  std::vector<double> m;
  if (kind == ApotLevelKind::Uniform) {
    LOWBIT_CHECK(B >= 1 && B <= 16, "apot_magnitude_levels: uniform with B = ", B, " bits, expected 1..16");
    const double n = std::ldexp(1.0, B) - 1;
    for (int k = 0; k <= static_cast<int>(n); ++k) m.push_back(k / n);
    return m;
  }
  if (kind == ApotLevelKind::PoT) {
    // 2^-(2^B - 2) must stay a normal float: B <= 6 (2^-62).
    LOWBIT_CHECK(B >= 1 && B <= 6, "apot_magnitude_levels: PoT with B = ", B, " bits, expected 1..6");
    m.push_back(0.0);
    for (int j = (1 << B) - 2; j >= 0; --j) m.push_back(std::ldexp(1.0, -j));
    return m;
  }
  // APoT, k = 2 (Eqs. 5-6). B = 1 is Eq. 6 with n = 0: p~ in {0, 1}.
  LOWBIT_CHECK(B >= 1 && B <= 6, "apot_magnitude_levels: APoT with B = ", B,
               " bits, expected 1..6 (the authors' code has level sets up to 5 only)");
  const int n = B / 2;
  const bool odd = B % 2 == 1;
  std::vector<std::vector<double>> bases;
  for (int i = 0; i < n; ++i)  // Eq. 5: {0, 2^-i, 2^-(i+n), 2^-(i+2n)}; Eq. 6: last exponent i+2n+1
    bases.push_back({0.0, std::ldexp(1.0, -i), std::ldexp(1.0, -(i + n)), std::ldexp(1.0, -(i + 2 * n + (odd ? 1 : 0)))});
  if (odd) bases.push_back({0.0, std::ldexp(1.0, -2 * n)});  // Eq. 6's p~ (i = 0, see the file comment)
  m = detail::additive_sums(bases);
  LOWBIT_CHECK(static_cast<int64_t>(m.size()) == (int64_t(1) << B), "apot_magnitude_levels: APoT B = ", B, " gave ",
               m.size(), " distinct levels, expected 2^B");
  const double top = m.back();  // the paper's gamma = 1 / top
  for (double& v : m) v /= top;
  return m;
}

// Number of additive PoT terms of a B-bit magnitude level (Sec. 2.2 "Computation": a weight
// with n terms costs n shift-adds): APoT n = ceil(B / 2) (Eq. 5: B / 2; Eq. 6: n + 1),
// PoT 1, uniform B (k = 1: one term per bit).
inline int apot_pot_terms(ApotLevelKind kind, int B) {
  LOWBIT_CHECK(B >= 1, "apot_pot_terms: B = ", B, ", expected >= 1");
  return kind == ApotLevelKind::APoT ? (B + 1) / 2 : kind == ApotLevelKind::PoT ? 1 : B;
}

// THE level set of a b-bit quantizer (the bit accounting of the file comment), ascending:
//   is_signed (weights):       {-M(b-1)} u M(b-1), 2^b - 1 values, b = 2..8
//   unsigned  (activations):   M(b),               2^b values,     b = 1..8
inline std::vector<double> apot_level_set(ApotLevelKind kind, int bits, bool is_signed) {
  if (!is_signed) {
    LOWBIT_CHECK(bits >= 1 && bits <= 8, "apot_level_set: unsigned bits = ", bits, ", expected 1..8");
    return apot_magnitude_levels(kind, bits);
  }
  LOWBIT_CHECK(bits >= 2 && bits <= 8, "apot_level_set: signed bits = ", bits,
               ", expected 2..8 (one bit is the sign)");
  const std::vector<double> m = apot_magnitude_levels(kind, bits - 1);
  std::vector<double> s;
  for (size_t i = m.size() - 1; i >= 1; --i) s.push_back(-m[i]);
  s.insert(s.end(), m.begin(), m.end());
  return s;
}

}  // namespace quant
}  // namespace lowbit
