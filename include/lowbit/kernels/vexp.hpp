// exp(x) for float arrays, 8 lanes at a time with AVX2 + FMA.
//
// Why: SLB's softmax (quant/slb/slb.hpp) evaluates one exp per logit, 2^q logits per weight,
// twice a step (the forward, and its recomputation in the backward): 8.6 million exps per
// ResNet-20 step at 4 bits. std::exp stays a scalar libm call (GCC vectorizes it only with
// -ffast-math), about 4 ns each, 9% of the FP32 step; this kernel is several times faster.
//
// Method (Cephes expf): x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2 (ln2 split
// into a high part exact in float and a low correction, so r is nearly exact);
// e^r = 1 + r + r^2 p(r) with Cephes' degree-5 minimax polynomial p; e^x = 2^n e^r, 2^n
// built in the exponent bits. Relative error within 2 ulp of the true value on the range
// used (tests/test_slb.cpp checks against std::exp in double). exp(0) = 1 exactly.
// Inputs below -87.3 give 0 (the true value is below FLT_MIN; the softmax normalises by a
// sum >= 1, so a flushed subnormal changes nothing that float can show); above 88 give
// +inf (exp(88) is within 2^0.7 of FLT_MAX); NaN gives NaN.
//
// exp_poly is the same computation for one float, with std::fma where the vector code
// uses an FMA, so both give the same bits: the tail of an array and the reference twin
// (vexp_reference) use it; a test compares vexp with vexp_reference bit for bit.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace lowbit {
namespace kernels {

namespace vexp_detail {
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;       // exact in float (few mantissa bits)
constexpr float kLn2Lo = -2.12194440e-4f;    // ln 2 - kLn2Hi
constexpr float kLo = -87.3365448f;          // below: the result would be subnormal
constexpr float kHi = 88.0f;                 // above: +inf (keeps n <= 127)
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;
}  // namespace vexp_detail

// exp(x) for one float, by the same steps as the vector path (see the file comment).
inline float exp_poly(float x) {
  using namespace vexp_detail;
  if (std::isnan(x)) return x;
  if (x < kLo) return 0.f;
  if (x > kHi) return HUGE_VALF;
  const float n = std::nearbyint(x * kLog2e);
  float r = std::fma(-n, kLn2Hi, x);
  r = std::fma(-n, kLn2Lo, r);
  float p = kP0;
  p = std::fma(p, r, kP1);
  p = std::fma(p, r, kP2);
  p = std::fma(p, r, kP3);
  p = std::fma(p, r, kP4);
  p = std::fma(p, r, kP5);
  const float e = std::fma(p, r * r, r) + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 127]
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}

// y[i] = exp_poly(x[i]), the plain loop (reference twin of vexp).
inline void vexp_reference(const float* x, float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] = exp_poly(x[i]);
}

// y[i] = exp(x[i]); x and y may be the same array.
inline void vexp(const float* x, float* y, int64_t count) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  using namespace vexp_detail;
  const __m256 lo = _mm256_set1_ps(kLo), hi = _mm256_set1_ps(kHi), log2e = _mm256_set1_ps(kLog2e);
  const __m256 ln2hi = _mm256_set1_ps(kLn2Hi), ln2lo = _mm256_set1_ps(kLn2Lo), one = _mm256_set1_ps(1.f);
  const __m256 inf = _mm256_set1_ps(HUGE_VALF);
  for (; i + 8 <= count; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    // Lanes outside [kLo, kHi] (and NaN) are computed on a clamped value and fixed below.
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(xv, lo), hi);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, ln2hi, xc);
    r = _mm256_fnmadd_ps(n, ln2lo, r);
    __m256 p = _mm256_set1_ps(kP0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
    const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), one);
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y8 = _mm256_mul_ps(e, _mm256_castsi256_ps(bits));
    y8 = _mm256_blendv_ps(y8, _mm256_setzero_ps(), _mm256_cmp_ps(xv, lo, _CMP_LT_OQ));
    y8 = _mm256_blendv_ps(y8, inf, _mm256_cmp_ps(xv, hi, _CMP_GT_OQ));
    y8 = _mm256_blendv_ps(y8, xv, _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q));
    _mm256_storeu_ps(y + i, y8);
  }
#endif
  vexp_reference(x + i, y + i, count - i);
}

}  // namespace kernels
}  // namespace lowbit
