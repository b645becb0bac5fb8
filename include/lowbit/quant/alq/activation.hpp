// ALQ activation quantization (Sec. 4, Eqs. 24-26). Not in the authors' code (docs/notes/alq.md
// §2.10): this follows the paper's text.
//
//   x  ~  x_hat = x_ref + D gamma = D' gamma',   D in {-1,+1}^{N_x x I_x}, gamma >= 0     (Eq. 24)
//
// with a layer-wise reference x_ref (so that {-1,+1} bases can fit the non-negative range of
// a ReLU output), gamma' = [x_ref, gamma^T]^T and D' = [1, D]. Each element takes the sign
// pattern whose level x_ref + d^T gamma is nearest (the basis search of quant/alq/basis.hpp
// with target x - x_ref). In training, gamma' is refitted to the batch by least squares
// and smoothed by a running average:
//
//   gamma'_new = (D'^T D')^-1 D'^T x                                            (Eq. 25)
//   gamma'     = 0.9 gamma' + 0.1 gamma'_new                                     (Eq. 26)
//
// The batch is quantized with gamma' as it was before the update (the levels that chose D);
// a negative gamma_i after the update is flipped (its basis is negated, the levels do not
// change). Before the first training batch gamma' is set from the batch's statistics:
// x_ref = mean(x), gamma_i = std(x) 2^-i (a uniform staircase over about +-2 std), then
// refitted by Eq. 25 once.
//
// "A step activation in place of ReLU": the quantizer is the layer's INPUT quantizer
// (quant/layers.hpp), applied to the previous ReLU's output, so ReLU followed by it is a
// staircase function of the pre-activation. Its pseudo-gradient is the clipped STE of PACT
// (the paper follows [2]): dL/dx = dL/dx_hat where x_ref - sum gamma <= x <= x_ref + sum
// gamma, 0 outside; gamma' gets no gradient (it is fitted, not trained).
//
// Row in docs/gradients.md; tests in tests/test_alq.cpp.
#pragma once
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../../autograd/grad_mode.hpp"
#include "../../autograd/node.hpp"
#include "../../kernels/parallel.hpp"
#include "../../ops/binary.hpp"
#include "basis.hpp"
#include "../quantizer.hpp"

namespace lowbit {
namespace quant {
namespace alq {

// Eq. 25 from per-pattern sums: cnt[p] elements took pattern p (bit i set: d_i = +1) and
// their inputs sum to sx[p]; gamma'_new = (D'^T D')^-1 D'^T x with D' = [1, D]. A tiny ridge
// keeps it defined when a pattern column is constant over the batch.
inline std::vector<double> refit_from_sums(const std::vector<double>& cnt, const std::vector<double>& sx, int I) {
  Eigen::MatrixXd A = Eigen::MatrixXd::Identity(I + 1, I + 1) * kRidge;
  Eigen::VectorXd b = Eigen::VectorXd::Zero(I + 1);
  for (size_t p = 0; p < cnt.size(); ++p) {
    if (cnt[p] == 0) continue;
    std::vector<double> d(static_cast<size_t>(I + 1), 1.0);
    for (int i = 0; i < I; ++i) d[static_cast<size_t>(i + 1)] = (p >> i & 1u) ? 1.0 : -1.0;
    for (int a = 0; a <= I; ++a) {
      b(a) += d[static_cast<size_t>(a)] * sx[p];
      for (int c = 0; c <= I; ++c) A(a, c) += d[static_cast<size_t>(a)] * d[static_cast<size_t>(c)] * cnt[p];
    }
  }
  Eigen::VectorXd g = A.ldlt().solve(b);
  return std::vector<double>(g.data(), g.data() + I + 1);
}

// Eq. 25 for the patterns each element of x took.
inline std::vector<double> refit_activation(const std::vector<uint32_t>& patterns, const float* x, int I) {
  const size_t P = size_t(1) << I;
  std::vector<double> cnt(P, 0.0), sx(P, 0.0);
  for (size_t k = 0; k < patterns.size(); ++k) cnt[patterns[k]] += 1, sx[patterns[k]] += x[k];
  return refit_from_sums(cnt, sx, I);
}

class AlqActivation : public ActivationQuantizer {
 public:
  explicit AlqActivation(int bits, double momentum = 0.9) : bits_(bits), momentum_(momentum) {
    LOWBIT_CHECK(bits >= 1 && bits <= 8, "AlqActivation: bits = ", bits, ", expected 1..8");
    LOWBIT_CHECK(momentum >= 0 && momentum < 1, "AlqActivation: momentum = ", momentum, ", expected [0, 1)");
    gamma = register_buffer("gamma", Tensorf::zeros({static_cast<int64_t>(bits) + 1}));  // [x_ref, gamma_1..]
    initialized = register_buffer("initialized", Tensorf::zeros({1}));
  }

  // One pass over x (issue 35), in blocks of L elements whose loops are vector loops: each
  // element's nearest level (search_bases' rule: the first level >= t or the one below it,
  // the lower on a tie), the output, and in training Eq. 25's per-level count and input sum,
  // per chunk, the chunks added up in a fixed order (the same bits for any thread count; not
  // the order of refit_activation's serial sum, so gamma' may differ in its last bits).
  Tensorf forward(const Tensorf& x) override {
    if (is_training() && initialized.data()[0] == 0.f) init_from(x);
    const SortedPatterns sp(std::vector<float>(gamma.data() + 1, gamma.data() + 1 + bits_));
    const float xref = gamma.data()[0];
    float span = 0.f;  // the clip range of the STE, from the gamma' that quantizes this batch
    for (int i = 1; i <= bits_; ++i) span += gamma.data()[i];
    const bool fit = is_training();
    const int64_t n = x.numel(), P = static_cast<int64_t>(sp.sorted.size());
    constexpr int64_t kChunk = 1 << 14, L = 256;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> cnt(fit ? static_cast<size_t>(chunks * P) : 0), sx(cnt.size());
    Tensorf y = Tensorf::empty(x.shape());
    const float* px = x.data();
    float* py = y.data();
    const float* lv = sp.sorted.data();
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t c = 0; c < chunks; ++c) {
      for (int64_t k = c * kChunk; k < std::min(n, (c + 1) * kChunk); k += L) {
        const int64_t len = std::min(L, n - k);
        float t[L], lo[L], hi[L], xv[L];
        int32_t below[L], best[L];
        for (int64_t e = 0; e < L; ++e) {
          xv[e] = e < len ? px[k + e] : 0.f;
          t[e] = xv[e] - xref, below[e] = 0, lo[e] = lv[0], hi[e] = lv[P - 1];
        }
        for (int64_t j = 0; j < P; ++j)  // below = std::lower_bound's position; lo = the last level < t
          for (int64_t e = 0; e < L; ++e) below[e] += lv[j] < t[e], lo[e] = lv[j] < t[e] ? lv[j] : lo[e];
        for (int64_t j = P - 1; j >= 0; --j)  // hi = the first level >= t
          for (int64_t e = 0; e < L; ++e) hi[e] = lv[j] >= t[e] ? lv[j] : hi[e];
        for (int64_t e = 0; e < L; ++e) {  // SortedPatterns::nearest (NaN: below = 0, the first level)
          const bool up = below[e] == 0 || (below[e] < P && std::abs(hi[e] - t[e]) < std::abs(lo[e] - t[e]));
          best[e] = up ? below[e] : below[e] - 1;
          t[e] = xref + (below[e] == 0 ? lv[0] : up ? hi[e] : lo[e]);
        }
        for (int64_t e = 0; e < len; ++e) py[k + e] = t[e];
        if (!fit) continue;
        for (int64_t e = len; e < L; ++e) best[e] = -1;
        for (int64_t b = 0; b < P; ++b) {  // Eq. 25's statistics of level b (`omp simd`: vector partial sums)
          double hn = 0, hx = 0;
          const int32_t bb = static_cast<int32_t>(b);
#pragma omp simd reduction(+ : hn, hx)
          for (int64_t e = 0; e < L; ++e) {  // the lanes past len hold best = -1
            // A multiply, not a select (GCC vectorizes this one): a non-finite x reaches every
            // level's sum, where one level's alone would already make Eq. 25's solve non-finite.
            const double in = best[e] == bb ? 1.0 : 0.0;
            hn += in;
            hx += in * static_cast<double>(xv[e]);
          }
          cnt[static_cast<size_t>(c * P + b)] += hn;
          sx[static_cast<size_t>(c * P + b)] += hx;
        }
      }
    }
    if (fit) {  // chunk sums in order, by pattern; then Eqs. 25-26
      std::vector<double> pc(static_cast<size_t>(P), 0.0), ps(pc.size(), 0.0);
      for (int64_t c = 0; c < chunks; ++c)
        for (int64_t b = 0; b < P; ++b) {
          pc[sp.order[static_cast<size_t>(b)]] += cnt[static_cast<size_t>(c * P + b)];
          ps[sp.order[static_cast<size_t>(b)]] += sx[static_cast<size_t>(c * P + b)];
        }
      update(refit_from_sums(pc, ps, bits_));
    }
    const float lo = xref - span, hi = xref + span;
    if (autograd::needs_grad({&x})) {
      autograd::record(y, "alq_activation", {&x}, [xs = x.detach(), lo, hi](const Tensorf& gy) {
        return std::vector<Tensorf>{  // clipped STE
            lowbit::detail::zip(gy, xs, [lo, hi](float gv, float v) { return (v >= lo && v <= hi) ? gv : 0.f; })};
      });
    }
    return y;
  }
  int bits() const override { return bits_; }
  std::string type_name() const override { return "ALQ-act"; }

  Tensorf gamma;        // [x_ref, gamma_1 .. gamma_I]
  Tensorf initialized;  // 1 after the first training batch

 private:
  void init_from(const Tensorf& x) {
    double m = 0, s = 0;
    for (int64_t k = 0; k < x.numel(); ++k) m += x.data()[k];
    m /= static_cast<double>(std::max<int64_t>(1, x.numel()));
    for (int64_t k = 0; k < x.numel(); ++k) s += (x.data()[k] - m) * (x.data()[k] - m);
    s = std::sqrt(s / static_cast<double>(std::max<int64_t>(1, x.numel())));
    if (s == 0) s = 1;
    gamma.data()[0] = static_cast<float>(m);
    for (int i = 0; i < bits_; ++i) gamma.data()[i + 1] = static_cast<float>(s * std::pow(0.5, i));
    std::vector<float> g(gamma.data() + 1, gamma.data() + 1 + bits_), t(static_cast<size_t>(x.numel()));
    for (int64_t k = 0; k < x.numel(); ++k) t[static_cast<size_t>(k)] = x.data()[k] - gamma.data()[0];
    set_gamma(refit_activation(search_bases(g, t), x.data(), bits_));
    initialized.data()[0] = 1.f;
  }
  void update(const std::vector<double>& fresh) {  // Eq. 25's fit, smoothed by Eq. 26
    std::vector<double> avg(fresh.size());
    for (size_t i = 0; i < fresh.size(); ++i)
      avg[i] = momentum_ * gamma.data()[i] + (1 - momentum_) * fresh[i];  // Eq. 26
    set_gamma(avg);
  }
  void set_gamma(const std::vector<double>& gp) {
    gamma.data()[0] = static_cast<float>(gp[0]);
    for (int i = 0; i < bits_; ++i) gamma.data()[i + 1] = static_cast<float>(std::abs(gp[static_cast<size_t>(i + 1)]));
  }

  int bits_;
  double momentum_;
};

}  // namespace alq
}  // namespace quant
}  // namespace lowbit
