// APoT: additive powers-of-two quantization with weight normalization and the
// reparameterized clipping function (Li, Dong and Wang, Additive Powers-of-Two Quantization,
// ICLR 2020; the authors' code in docs/notes/apot.md §1). The level sets
// and the bit accounting are in quant/apot/levels.hpp; docs/apot.md walks through every equation.
//
// Weights (Algorithm 1, steps 1-2 and 8):
//   W~ = (W - mu) / (sigma + eps)                               WN, Eq. 9 (population sigma)
//   W^ = alpha * Pi_Q(1,b)( clip(W~ / alpha, -1, 1) )           RCF, Eq. 7
// Activations (step 3), unsigned levels, inputs are ReLU outputs:
//   X^ = alpha_x * Pi_Q(1,b)( min(X / alpha_x, 1) )
// Pi = projection to the nearest level of the (normalized) set: the level index of |r| is the
// number of midpoints (m_j + m_{j+1}) / 2 (computed in the quantizer's float type) strictly
// below |r|, so ties (a value exactly half way between two levels) go to the level of SMALLER
// magnitude (towards zero); the authors' argmin leaves ties to the order of a Python set, so
// no choice matches it. A count of comparisons has no branches: APoT's sets have <= 32 levels.
//
// Gradients (r = W~ / alpha, q = Pi(clip(r)); the STE replaces dPi/dr by 1, Sec. 2.5):
//   dW^/dW~    = 1                         |r| <= 1
//              = 1 (grad_outside = pass)   |r| > 1   the paper's Sec. 2.5 "dW^/dW~ = 1" and the
//                0 (grad_outside = zero)             CIFAR code ("weight grads will not be
//                                                    clipped"); zero = the ImageNet code's 3-5 bit
//                                                    autograd through clamp. DEFAULT: pass.
//   dW^/dalpha = sign(r)                   |r| > 1   Eq. 8 / appendix Eq. 13c
//              = q - r                     |r| <= 1  (the boundary |r| = 1 is inside: q = +-1,
//                                                    so it contributes 0)
//   A weight alpha < 0 acts as |alpha| and its gradient is the above times sign(alpha), as in
//   the authors' code (detail::checked_alpha says why).
//   PACT's clipping gradient (appendix Eq. 11, the "normal clipping function" RCF replaces):
//   dW^/dalpha = sign(r) for |r| > 1, 0 inside.  Selectable (rcf = pact) for comparison.
//   dX^/dX     = 1 for X / alpha_x <= 1, 0 above      (the CIFAR code, docs/notes/apot.md §1.3;
//                                                      negative inputs pass, they do not occur
//                                                      after ReLU)
//   dX^/dalpha_x = 1 for X / alpha_x > 1,  q - X / alpha_x otherwise    (Eq. 8, unsigned)
//   WN (Eq. 9), s = sigma + eps, y = W~, g = dL/dW~, I = numel:
//     dL/dW_j = (g_j - mean(g)) / s  -  y_j mean(g y) / sigma       (through mu and sigma,
//                                                                    Algorithm 1 step 8)
//     detached statistics (the CIFAR code): dL/dW_j = g_j / s
//   (at sigma = 0 every y_j = 0 and the second term is taken as 0.)
// alpha gradients are summed in double over fixed chunks of 4096 elements (in parallel), the
// chunk sums added in order and rounded once: the same bits for any number of threads.
//
// Options (config block "apot", ApotConfig::schema() has defaults and ranges):
//   levels        apot | uniform | pot                 the level set (quant/apot/levels.hpp)
//   wn            on | detached | off                  Eq. 9 with gradient / CIFAR code / none
//   rcf           on | pact | off                      on: learned alpha with Eq. 8;
//                 pact: learned alpha with Eq. 11 (no projection term);
//                 off: the paper's Table 3 "without RCF": weights are not clipped,
//                 alpha = max|W~| recomputed every forward and not learned (Sec. 4.3:
//                 "do not clip any weights (i.e. alpha = max|W|)"). Activations keep their
//                 learned alpha with Eq. 8 in every mode (the ablation is about weights).
//   grad_outside  pass | zero                          weight gradient for |r| > 1
//   w_alpha       initial weight alpha (3.0, CIFAR code). With wn = off it is in units of the
//                 initial weight's standard deviation (alpha = w_alpha * sigma(W_init)), so the
//                 same value clips the same fraction of weights; 3.0 on raw weights of std ~0.1
//                 would put every weight at level 0 for a 3-bit set.
//   a_alpha       initial activation alpha (8.0, CIFAR code)
//   w_alpha_lr, a_alpha_lr, alpha_weight_decay: the alphas' own parameter groups
//                 (quant/apot/method.hpp; docs/notes/apot.md §1.4); not used by the quantizers.
// First and last layers (spec policy 8bit): Uniform8Weight below, weight-only 8-bit as the
// authors' first_conv / last_fc (docs/notes/apot.md §1.5).
//
// Codes: weights have 2^b - 1 signed levels (quant/apot/levels.hpp); code c indexes the ascending
// signed set, the codebook has one more entry (the unused code 2^b - 1, level 0) so it
// holds 2^bits values; scales = {alpha}. weight() computes alpha * level[c] with the same
// float multiply, so codes().dequantize() equals weight() bit for bit.
//
// Rows in docs/gradients.md ("APoT"); tests in tests/test_apot.cpp.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../../autograd/grad_mode.hpp"
#include "../../io/options.hpp"
#include "../../kernels/parallel.hpp"
#include "../../ops/binary.hpp"
#include "levels.hpp"
#include "../quantizer.hpp"

namespace lowbit {
namespace quant {

// ---------------------------------------------------------------------------------------
// Options

struct ApotConfig {
  enum class Wn { On, Detached, Off };
  enum class Clip { Rcf, Pact, Off };
  ApotLevelKind levels = ApotLevelKind::APoT;
  Wn wn = Wn::On;
  Clip rcf = Clip::Rcf;
  bool grad_outside_pass = true;
  float w_alpha = 3.f, a_alpha = 8.f;
  float eps = 1e-5f;  // Eq. 9 ("typically 1e-5")

  // The options of method apot (config block "apot"): the one place their defaults,
  // ranges and docs are written; the members above are the same defaults for code that
  // builds an ApotConfig directly.
  static io::OptionSchema schema() {
    const double inf = io::OptionSchema::kInf;
    io::OptionSchema s;
    s.choice("levels", "apot", {"apot", "uniform", "pot"}, "level set: apot (k = 2) | uniform | pot (quant/apot/levels.hpp)")
        .choice("wn", "on", {"on", "detached", "off"}, "weight normalization: on (Eq. 9) | detached (CIFAR code) | off")
        .choice("rcf", "on", {"on", "pact", "off"},
                "weight clipping: on (Eq. 8) | pact (Eq. 11 alpha gradient) | off (alpha = max|W|, Table 3)")
        .choice("grad_outside", "pass", {"pass", "zero"}, "weight gradient beyond alpha: pass (CIFAR code) | zero")
        .number("w_alpha", 3.0, "initial weight alpha (on normalized weights; CIFAR code)", 0.0, inf, true)
        .number("a_alpha", 8.0, "initial activation alpha (CIFAR code)", 0.0, inf, true)
        .number("w_alpha_lr", 0.02, "weight alphas' lr at the schedule's peak (docs/notes/apot.md §1.4)", 0.0)
        .number("a_alpha_lr", 0.1, "activation alphas' lr at the schedule's peak", 0.0)
        .number("alpha_weight_decay", 1e-4, "L2 decay of both alpha groups", 0.0);
    return s;
  }

  // Reads the options (a partial object is completed with the schema's defaults; unknown
  // keys and bad values are errors naming the key).
  static ApotConfig from_options(const nlohmann::json& given) {
    const nlohmann::json o = schema().resolve(given, "apot");
    ApotConfig c;
    c.levels = parse_apot_levels(o.at("levels").get<std::string>(), "config key 'apot.levels'");
    const std::string wn = o.at("wn"), rcf = o.at("rcf");
    c.wn = wn == "on" ? Wn::On : wn == "detached" ? Wn::Detached : Wn::Off;
    c.rcf = rcf == "on" ? Clip::Rcf : rcf == "pact" ? Clip::Pact : Clip::Off;
    c.grad_outside_pass = o.at("grad_outside") == "pass";
    c.w_alpha = static_cast<float>(o.at("w_alpha").get<double>());
    c.a_alpha = static_cast<float>(o.at("a_alpha").get<double>());
    return c;
  }
};

// ---------------------------------------------------------------------------------------
// Projection to the nearest level

namespace detail {
// The magnitude set M (ascending, M[0] = 0, M.back() = 1) in the quantizer's precision,
// with the midpoints between neighbours.
template <class T>
struct NearestLevel {
  static constexpr size_t kMaxMid = 31;  // up to 32 levels (M(5))
  std::vector<T> m;
  std::array<T, kMaxMid> mid;            // padded with +inf, so the count loop has a fixed length
  explicit NearestLevel(const std::vector<double>& mags) {
    LOWBIT_CHECK(!mags.empty() && mags.size() <= kMaxMid + 1 && mags.front() == 0.0 && mags.back() == 1.0,
                 "NearestLevel: a magnitude set must run from 0 to 1 with at most 32 levels");
    for (double v : mags) m.push_back(static_cast<T>(v));
    mid.fill(std::numeric_limits<T>::infinity());
    for (size_t j = 0; j + 1 < m.size(); ++j) mid[j] = (m[j] + m[j + 1]) / T(2);
  }
  // Index of the level nearest to a (a > 1 -> the top level, a <= 0 -> 0); ties -> the smaller.
  size_t index(T a) const {
    unsigned k = 0;
    for (size_t j = 0; j < kMaxMid; ++j) k += a > mid[j];
    return k;
  }
};

// The projection of kLanes values at once: v[e] = m[index(u[e])], computed as one select per
// midpoint (the midpoints ascend, so the last select that fires is mid[index - 1]); the
// fixed-length inner loops become vector compares and blends (AVX2 / AVX-512). Equal to
// index() for every input, NaN included (no select fires: level 0). Issue 35: the count loop
// with a table lookup per element ran scalar and cost 0.35x of a ResNet-20 FP32 step.
constexpr int64_t kLanes = 256;
template <class T>
void nearest_block(const T (&u)[kLanes], T (&v)[kLanes], const NearestLevel<T>& p) {
  for (int64_t e = 0; e < kLanes; ++e) v[e] = p.m[0];
  for (size_t j = 0; j + 1 < p.m.size(); ++j) {
    const T mid = p.mid[j], level = p.m[j + 1];
    for (int64_t e = 0; e < kLanes; ++e) v[e] = u[e] > mid ? level : v[e];
  }
}

// r = x[i0 .. i0 + len) / a into a block, the lanes past len zero.
template <class T>
void load_scaled(const T* x, int64_t len, T a, T (&r)[kLanes]) {
  for (int64_t e = 0; e < kLanes; ++e) r[e] = e < len ? x[e] / a : T(0);
}

// y_i = alpha * (+-) m[index(|x_i / alpha|)]: the forward of both RCF ops (signed: the sign
// of x; unsigned: negatives have index 0). Equal, bit for bit, to
// alpha * codebook[signed_code(x / alpha)] (codes()), since the codebook holds -m exactly.
template <class T>
Tensor<T> project_scaled(const Tensor<T>& x, T a, const NearestLevel<T>& p, bool is_signed) {
  Tensor<T> y = Tensor<T>::empty(x.shape());
  const T* px = x.data();
  T* py = y.data();
  const int64_t n = x.numel(), blocks = (n + kLanes - 1) / kLanes;
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i0 = b * kLanes, len = std::min(kLanes, n - i0);
    T r[kLanes], u[kLanes], v[kLanes];
    load_scaled(px + i0, len, a, r);
    for (int64_t e = 0; e < kLanes; ++e) u[e] = is_signed ? std::abs(r[e]) : r[e];
    nearest_block(u, v, p);
    for (int64_t e = 0; e < kLanes; ++e) v[e] = a * ((is_signed && r[e] < T(0)) ? -v[e] : v[e]);
    for (int64_t e = 0; e < len; ++e) py[i0 + e] = v[e];
  }
  return y;
}

// sum_i f(i) for i < n in double: fixed chunks summed in parallel, then in order (the
// result does not depend on the thread count, so resumed runs stay bit-exact).
constexpr int64_t kAlphaChunk = 4096;  // a multiple of kLanes
template <class F>
double chunked_sum(int64_t n, F f) {
  constexpr int64_t kChunk = kAlphaChunk;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    double s = 0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) s += f(i);
    part[static_cast<size_t>(c)] = s;
  }
  double s = 0;
  for (double v : part) s += v;
  return s;
}

// Signed code of r = x / alpha: (|M| - 1) + sign(r) * j, j = nearest magnitude of |r|; the
// signed set is ascending with 0 at index |M| - 1 (apot_level_set).
template <class T>
uint32_t signed_code(T r, const NearestLevel<T>& p) {
  const size_t j = p.index(std::abs(r));
  const size_t zero = p.m.size() - 1;
  return static_cast<uint32_t>(r < T(0) ? zero - j : zero + j);
}

// The signed codebook in T: -M reversed, M, then the unused pad entry (0) up to 2^bits.
template <class T>
std::vector<T> signed_codebook(const NearestLevel<T>& p) {
  std::vector<T> s;
  for (size_t i = p.m.size() - 1; i >= 1; --i) s.push_back(-p.m[i]);
  s.insert(s.end(), p.m.begin(), p.m.end());
  s.push_back(T(0));
  return s;
}

// alpha's one value: finite and > 0, or, with any_sign, finite and nonzero. Why weights allow
// a negative alpha: the weight quantizer is odd in alpha, alpha * Pi(clip(x / alpha)) =
// |alpha| * Pi(clip(x / |alpha|)), because the signed set is symmetric, so the authors' code
// keeps training when SGD pushes a weight alpha below 0 (it happens at 2 bits: from a 3-bit
// alpha of ~2.5 the ternary set zeroes ~80% of W~ and Eq. 8's q - r terms add up to a step
// past 0). lowbit does the same (code, not paper): the forward uses |alpha|, the gradient is
// Eq. 8 at |alpha| times sign(alpha). The unsigned activation quantizer is not odd in alpha.
template <class T>
T checked_alpha(const Tensor<T>& alpha, const char* op, bool any_sign) {
  LOWBIT_CHECK(alpha.numel() == 1, op, ": alpha must hold one value, got shape ", shape_str(alpha.shape()));
  const T a = alpha.data()[0];
  LOWBIT_CHECK((any_sign ? a != T(0) : a > T(0)) && std::isfinite(static_cast<double>(a)), op, ": alpha = ", a,
               ", expected a finite ", any_sign ? "nonzero value" : "value > 0",
               " (lower alpha's learning rate or weight decay)");
  return a;
}
}  // namespace detail

// ---------------------------------------------------------------------------------------
// Weight normalization (Eq. 9)

// W~ = (W - mu) / (sigma + eps) over the whole tensor, sigma the population standard
// deviation. detached = true: mu and sigma are constants in backward (the CIFAR code).
template <class T>
Tensor<T> apot_weight_normalize(const Tensor<T>& w, T eps = T(1e-5), bool detached = false) {
  LOWBIT_CHECK(w.numel() > 0, "apot_weight_normalize: empty weight");
  LOWBIT_CHECK(eps >= T(0), "apot_weight_normalize: eps = ", eps, ", expected >= 0");
  const int64_t n = w.numel();
  double s1 = 0;
  for (int64_t i = 0; i < n; ++i) s1 += static_cast<double>(w.data()[i]);
  const double mu = s1 / static_cast<double>(n);
  double s2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(w.data()[i]) - mu;
    s2 += d * d;
  }
  const double sigma = std::sqrt(s2 / static_cast<double>(n));
  const double s = sigma + static_cast<double>(eps);
  LOWBIT_CHECK(s > 0, "apot_weight_normalize: sigma + eps = 0 (all ", n, " weights are equal and eps = 0)");
  const T mu_t = static_cast<T>(mu), inv_s = static_cast<T>(1.0 / s);
  Tensor<T> y = lowbit::detail::map(w, [mu_t, inv_s](T v) { return (v - mu_t) * inv_s; });
  if (autograd::needs_grad({&w}))
    autograd::record(y, "apot_weight_normalize", {&w},
                     [yd = y.detach(), s, sigma, detached](const Tensor<T>& g) {
                       const int64_t m = g.numel();
                       Tensor<T> dw = Tensor<T>::empty(g.shape());
                       if (detached) {  // dL/dW_j = g_j / s
                         for (int64_t j = 0; j < m; ++j) dw.data()[j] = static_cast<T>(g.data()[j] / s);
                         return std::vector<Tensor<T>>{dw};
                       }
                       // dL/dW_j = (g_j - mean(g)) / s - y_j mean(g y) / sigma
                       double gs = 0, gy = 0;
                       for (int64_t j = 0; j < m; ++j) {
                         gs += static_cast<double>(g.data()[j]);
                         gy += static_cast<double>(g.data()[j]) * static_cast<double>(yd.data()[j]);
                       }
                       const double gmean = gs / static_cast<double>(m);
                       const double c = sigma > 0 ? gy / static_cast<double>(m) / sigma : 0.0;
                       for (int64_t j = 0; j < m; ++j)
                         dw.data()[j] = static_cast<T>((static_cast<double>(g.data()[j]) - gmean) / s -
                                                       static_cast<double>(yd.data()[j]) * c);
                       return std::vector<Tensor<T>>{dw};
                     });
  return y;
}

// ---------------------------------------------------------------------------------------
// The reparameterized clipping function (Eqs. 7-8)

enum class ApotAlphaGrad { Rcf, Pact };

// W^ = alpha * Pi(clip(x / alpha, -1, 1)) onto the signed set {-M} u M (M = `mags`, the
// magnitude set of quant/apot/levels.hpp). Gradients in the file comment.
template <class T>
Tensor<T> apot_weight_rcf(const Tensor<T>& x, const Tensor<T>& alpha, const std::vector<double>& mags,
                          bool grad_outside_pass = true, ApotAlphaGrad alpha_grad = ApotAlphaGrad::Rcf) {
  const T a_signed = detail::checked_alpha(alpha, "apot_weight_rcf", /*any_sign=*/true);
  const T a = std::abs(a_signed);
  const double alpha_sign = a_signed > T(0) ? 1.0 : -1.0;  // d|alpha|/dalpha
  const detail::NearestLevel<T> p(mags);
  const std::vector<T> book = detail::signed_codebook(p);
  // forward: r = x / alpha, code, alpha * level (the export's dequantization, bit for bit)
  Tensor<T> y = detail::project_scaled(x, a, p, /*is_signed=*/true);
  if (autograd::needs_grad({&x, &alpha}))
    autograd::record(y, "apot_weight_rcf", {&x, &alpha},
                     [xd = x.detach(), a, alpha_sign, book, p, ashape = alpha.shape(), gx = x.requires_grad(),
                      ga = alpha.requires_grad(), grad_outside_pass, alpha_grad](const Tensor<T>& g) {
                       Tensor<T> dx, da;
                       if (gx)  // STE inside; outside: pass (default) or zero
                         dx = lowbit::detail::zip(g, xd, [a, grad_outside_pass](T gv, T xv) {
                           return (grad_outside_pass || std::abs(xv / a) <= T(1)) ? gv : T(0);
                         });
                       if (ga) {  // Eq. 8: sign(r) outside, q - r inside (Eq. 11: 0 inside)
                         const T* px = xd.data();
                         const T* pg = g.data();
                         const double s = detail::chunked_sum(xd.numel(), [&](int64_t i) {
                           const T r = px[i] / a;
                           double d;
                           if (std::abs(r) > T(1)) d = r > T(0) ? 1.0 : -1.0;
                           else if (alpha_grad == ApotAlphaGrad::Pact) d = 0.0;
                           else d = static_cast<double>(book[detail::signed_code(r, p)]) - static_cast<double>(r);
                           return static_cast<double>(pg[i]) * d;
                         });
                         da = Tensor<T>::full(ashape, static_cast<T>(alpha_sign * s));
                       }
                       return std::vector<Tensor<T>>{dx, da};
                     });
  return y;
}

// X^ = alpha * Pi(min(x / alpha, 1)) onto the unsigned set M (negative inputs -> 0).
template <class T>
Tensor<T> apot_activation_rcf(const Tensor<T>& x, const Tensor<T>& alpha, const std::vector<double>& mags) {
  const T a = detail::checked_alpha(alpha, "apot_activation_rcf", /*any_sign=*/false);
  const detail::NearestLevel<T> p(mags);
  Tensor<T> y = detail::project_scaled(x, a, p, /*is_signed=*/false);  // r <= 0 -> level 0
  if (autograd::needs_grad({&x, &alpha}))
    autograd::record(y, "apot_activation_rcf", {&x, &alpha},
                     [xd = x.detach(), a, p, ashape = alpha.shape(), gx = x.requires_grad(),
                      ga = alpha.requires_grad()](const Tensor<T>& g) {
                       Tensor<T> dx, da;
                       // One pass for both (issue 35): dx zero above the top only (CIFAR
                       // code); the alpha term 1 above the top, q - r below, summed in double
                       // in chunked_sum's chunks, within a chunk in vector lanes (`omp simd`),
                       // so it does not depend on the thread count; it differs from an
                       // element-by-element sum by double rounding (~1e-16 relative).
                       if (gx) dx = Tensor<T>::empty(g.shape());
                       const T* px = xd.data();
                       const T* pg = g.data();
                       T* pdx = gx ? dx.data() : nullptr;
                       constexpr int64_t L = detail::kLanes, C = detail::kAlphaChunk;
                       const int64_t n = xd.numel(), chunks = (n + C - 1) / C;
                       std::vector<double> part(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for if (chunks > 1)
                       for (int64_t c = 0; c < chunks; ++c) {
                         double sum = 0;
                         for (int64_t i0 = c * C; i0 < std::min(n, (c + 1) * C); i0 += L) {
                           const int64_t len = std::min(L, n - i0);
                           T r[L], q[L];
                           detail::load_scaled(px + i0, len, a, r);
                           if (gx)
                             for (int64_t e = 0; e < len; ++e) pdx[i0 + e] = r[e] > T(1) ? T(0) : pg[i0 + e];
                           if (!ga) continue;
                           detail::nearest_block(r, q, p);
                           T gl[L];
                           for (int64_t e = 0; e < L; ++e) gl[e] = e < len ? pg[i0 + e] : T(0);
#pragma omp simd reduction(+ : sum)
                           for (int64_t e = 0; e < L; ++e)
                             sum += static_cast<double>(gl[e]) *
                                    (r[e] > T(1) ? 1.0 : static_cast<double>(q[e]) - static_cast<double>(r[e]));
                         }
                         part[static_cast<size_t>(c)] = sum;
                       }
                       if (ga) {
                         double s = 0;
                         for (double v : part) s += v;
                         da = Tensor<T>::full(ashape, static_cast<T>(s));
                       }
                       return std::vector<Tensor<T>>{dx, da};
                     });
  return y;
}

// ---------------------------------------------------------------------------------------
// Quantization error split (appendix Eq. 14)

struct ApotErrorSplit {
  double clip = 0;  // (1/I) sum_{|w| > alpha} (|w| - alpha)^2
  double proj = 0;  // (1/I) sum_{|w| <= alpha} (w - w^)^2
  double total() const { return clip + proj; }
};

// Delta = Delta_clip + Delta_proj of quantizing w (already normalized if WN is used) with
// clipping threshold alpha onto the signed set of `mags` (the weight forward of
// apot_weight_rcf). Since the top level is 1, a clipped weight lands on +-alpha, so the
// total equals mean((w - W^)^2).
template <class T>
ApotErrorSplit apot_quantization_error(const Tensor<T>& w, T alpha, const std::vector<double>& mags) {
  LOWBIT_CHECK(w.numel() > 0, "apot_quantization_error: empty tensor");
  LOWBIT_CHECK(alpha > T(0), "apot_quantization_error: alpha = ", alpha, ", expected > 0");
  const detail::NearestLevel<T> p(mags);
  const std::vector<T> book = detail::signed_codebook(p);
  ApotErrorSplit e;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const T v = w.data()[i];
    if (std::abs(v) > alpha) {
      const double d = std::abs(static_cast<double>(v)) - static_cast<double>(alpha);
      e.clip += d * d;
    } else {
      const double d = static_cast<double>(v) - static_cast<double>(alpha * book[detail::signed_code(v / alpha, p)]);
      e.proj += d * d;
    }
  }
  e.clip /= static_cast<double>(w.numel());
  e.proj /= static_cast<double>(w.numel());
  return e;
}

// ---------------------------------------------------------------------------------------
// Quantizers

// APoT weights, b = 2..5 bits. Parameters "latent" (W) and, unless rcf = off, "alpha".
class ApotWeight : public WeightQuantizer {
 public:
  ApotWeight(const Tensorf& init, int bits, const ApotConfig& cfg = {})
      : WeightQuantizer(init.shape()), bits_(bits), cfg_(cfg) {
    LOWBIT_CHECK(bits >= 2 && bits <= 5, "ApotWeight: bits = ", bits, ", expected 2..5 (the authors' level sets)");
    mags_ = apot_magnitude_levels(cfg.levels, bits - 1);
    latent = register_parameter("latent", init);
    if (cfg.rcf != ApotConfig::Clip::Off) {
      float a0 = cfg.w_alpha;
      if (cfg.wn == ApotConfig::Wn::Off) {  // in units of the initial weight's std (see the file comment)
        double s1 = 0, s2 = 0;
        for (int64_t i = 0; i < init.numel(); ++i) s1 += init.data()[i];
        const double mu = s1 / static_cast<double>(init.numel());
        for (int64_t i = 0; i < init.numel(); ++i) s2 += (init.data()[i] - mu) * (init.data()[i] - mu);
        a0 = static_cast<float>(cfg.w_alpha * std::sqrt(s2 / static_cast<double>(init.numel())));
        LOWBIT_CHECK(a0 > 0.f, "ApotWeight: the initial weight has zero spread; cannot set alpha without WN");
      }
      alpha = register_parameter("alpha", Tensorf::full({1}, a0));
      tag_parameter("alpha", "apot_w_alpha");  // its own lr and decay (quant/apot/method.hpp)
    }
  }

  // W~ (Eq. 9, or W itself with wn = off).
  Tensorf normalized() const {
    if (cfg_.wn == ApotConfig::Wn::Off) return latent;
    return apot_weight_normalize(latent, cfg_.eps, cfg_.wn == ApotConfig::Wn::Detached);
  }
  // The clipping threshold in use: the learned alpha, or max|W~| (rcf = off; no gradient).
  Tensorf clip_alpha(const Tensorf& wt) const {
    if (cfg_.rcf != ApotConfig::Clip::Off) return alpha;
    float m = 0.f;
    for (int64_t i = 0; i < wt.numel(); ++i) m = std::max(m, std::abs(wt.data()[i]));
    LOWBIT_CHECK(m > 0.f, "ApotWeight: every weight is 0, max|W| = 0 cannot be the clipping threshold");
    return Tensorf::full({1}, m);
  }
  Tensorf weight() override {
    const Tensorf wt = normalized();
    return apot_weight_rcf(wt, clip_alpha(wt), mags_, cfg_.grad_outside_pass,
                           cfg_.rcf == ApotConfig::Clip::Pact ? ApotAlphaGrad::Pact : ApotAlphaGrad::Rcf);
  }
  QuantCodes codes() const override {
    NoGradGuard no_grad;
    const Tensorf wt = normalized();
    const float a = std::abs(detail::checked_alpha(clip_alpha(wt), "ApotWeight::codes", /*any_sign=*/true));
    const detail::NearestLevel<float> p(mags_);
    QuantCodes c;
    c.shape = shape_;
    c.bits = bits_;
    c.group_size = wt.numel();
    c.levels = detail::signed_codebook(p);
    c.scales = {a};
    c.codes.resize(static_cast<size_t>(wt.numel()));
    for (int64_t i = 0; i < wt.numel(); ++i) c.codes[static_cast<size_t>(i)] = detail::signed_code(wt.data()[i] / a, p);
    return c;
  }
  int bits() const override { return bits_; }
  std::string type_name() const override {
    return cfg_.levels == ApotLevelKind::APoT ? "APoT" : cfg_.levels == ApotLevelKind::PoT ? "PoT" : "Uniform";
  }
  // Additive PoT terms per weight (Sec. 2.2 "Computation"); 0 for the uniform set, whose
  // cost is the ordinary b x m bit-ops.
  int pot_terms() const override {
    return cfg_.levels == ApotLevelKind::Uniform ? 0 : apot_pot_terms(cfg_.levels, bits_ - 1);
  }
  const ApotConfig& config() const { return cfg_; }
  const std::vector<double>& magnitudes() const { return mags_; }

  // The report's picture of APoT Figs. 1-2: the normalized weights W~ (every k-th of them,
  // at most ~20,000 values, so the page stays small) with the levels alpha * {+-M} they are
  // projected onto, and the learned alpha.
  nlohmann::json histogram() const override {
    NoGradGuard no_grad;
    const Tensorf wt = normalized();
    const double a = std::abs(clip_alpha(wt).item());  // < 0 acts as |alpha|
    std::vector<double> values, levels;
    const int64_t stride = std::max<int64_t>(1, wt.numel() / 20000);
    for (int64_t i = 0; i < wt.numel(); i += stride) values.push_back(wt.data()[i]);
    for (double m : mags_) {
      levels.push_back(a * m);
      if (m > 0) levels.push_back(-a * m);
    }
    std::sort(levels.begin(), levels.end());
    return {{"values", values}, {"levels", levels}, {"alpha", a}, {"xlabel", "normalized weight W~ (APoT Eq. 9)"}};
  }

  Tensorf latent, alpha;  // alpha undefined when rcf = off

 private:
  int bits_;
  ApotConfig cfg_;
  std::vector<double> mags_;
};

// APoT activations, b = 2..5 bits (unsigned levels M(b)), parameter "alpha".
class ApotActivation : public ActivationQuantizer {
 public:
  explicit ApotActivation(int bits, const ApotConfig& cfg = {}) : bits_(bits), kind_(cfg.levels) {
    LOWBIT_CHECK(bits >= 2 && bits <= 5, "ApotActivation: bits = ", bits, ", expected 2..5 (the authors' level sets)");
    mags_ = apot_magnitude_levels(cfg.levels, bits);
    alpha = register_parameter("alpha", Tensorf::full({1}, cfg.a_alpha));
    tag_parameter("alpha", "apot_a_alpha");  // its own lr and decay (quant/apot/method.hpp)
  }
  Tensorf forward(const Tensorf& x) override { return apot_activation_rcf(x, alpha, mags_); }
  bool pure() const override { return true; }
  int bits() const override { return bits_; }
  std::string type_name() const override {
    return kind_ == ApotLevelKind::APoT ? "APoT" : kind_ == ApotLevelKind::PoT ? "PoT" : "Uniform";
  }

  Tensorf alpha;

 private:
  int bits_;
  ApotLevelKind kind_;
  std::vector<double> mags_;
};

// The authors' 8-bit first / last layer weights (first_conv, last_fc; docs/notes/apot.md §1.5):
//   w^ = s * round(W / s * 127) / 127,  s = max|W|;   dL/dW = dL/dw^ (STE, s a constant).
// Deviation: the code takes s = max(W) (the signed maximum, no clamp), which puts weights
// below -max(W) outside the 8-bit grid; lowbit uses max|W| so every weight has a code.
// Codes: c = round(W / s * 127) + 127 in 0..254, levels[c] = (c - 127) / 127 (code 255 unused,
// level 0), scales = {s}; the forward computes s * ((k) / 127) with the same float ops.
class Uniform8Weight : public WeightQuantizer {
 public:
  explicit Uniform8Weight(const Tensorf& init) : WeightQuantizer(init.shape()) {
    latent = register_parameter("latent", init);
  }
  Tensorf weight() override {
    const float s = scale();
    Tensorf y = lowbit::detail::map(latent, [s](float v) { return s * level(code(v, s)); });
    if (autograd::needs_grad({&latent}))
      autograd::record(y, "uniform8_weight", {&latent}, [](const Tensorf& g) { return std::vector<Tensorf>{g.clone()}; });
    return y;
  }
  QuantCodes codes() const override {
    const float s = scale();
    QuantCodes c;
    c.shape = shape_;
    c.bits = 8;
    c.group_size = latent.numel();
    for (uint32_t k = 0; k < 256; ++k) c.levels.push_back(k < 255 ? level(k) : 0.f);
    c.scales = {s};
    c.codes.resize(static_cast<size_t>(latent.numel()));
    for (int64_t i = 0; i < latent.numel(); ++i) c.codes[static_cast<size_t>(i)] = code(latent.data()[i], s);
    return c;
  }
  int bits() const override { return 8; }
  std::string type_name() const override { return "Uniform8"; }

  Tensorf latent;

 private:
  float scale() const {
    float m = 0.f;
    for (int64_t i = 0; i < latent.numel(); ++i) m = std::max(m, std::abs(latent.data()[i]));
    LOWBIT_CHECK(m > 0.f, "Uniform8Weight: every weight is 0 (max|W| = 0)");
    return m;
  }
  static uint32_t code(float v, float s) {
    const float k = std::rint(std::min(std::max(v / s, -1.f), 1.f) * 127.f);
    return static_cast<uint32_t>(static_cast<int>(k) + 127);
  }
  static float level(uint32_t c) { return static_cast<float>(static_cast<int>(c) - 127) / 127.f; }
};

}  // namespace quant
}  // namespace lowbit
