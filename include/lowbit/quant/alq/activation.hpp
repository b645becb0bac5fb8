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
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../../autograd/grad_mode.hpp"
#include "../../autograd/node.hpp"
#include "basis.hpp"
#include "../quantizer.hpp"

namespace lowbit {
namespace quant {
namespace alq {

// Eq. 25: gamma'_new = (D'^T D')^-1 D'^T x, with D' = [1, D] given by each element's pattern
// (bit i set: d_i = +1). Accumulated per pattern; a tiny ridge keeps it defined when a
// pattern column is constant over the batch.
inline std::vector<double> refit_activation(const std::vector<uint32_t>& patterns, const float* x, int I) {
  const size_t P = size_t(1) << I;
  std::vector<double> cnt(P, 0.0), sx(P, 0.0);
  for (size_t k = 0; k < patterns.size(); ++k) cnt[patterns[k]] += 1, sx[patterns[k]] += x[k];
  Eigen::MatrixXd A = Eigen::MatrixXd::Identity(I + 1, I + 1) * kRidge;
  Eigen::VectorXd b = Eigen::VectorXd::Zero(I + 1);
  for (size_t p = 0; p < P; ++p) {
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

class AlqActivation : public ActivationQuantizer {
 public:
  explicit AlqActivation(int bits, double momentum = 0.9) : bits_(bits), momentum_(momentum) {
    LOWBIT_CHECK(bits >= 1 && bits <= 8, "AlqActivation: bits = ", bits, ", expected 1..8");
    LOWBIT_CHECK(momentum >= 0 && momentum < 1, "AlqActivation: momentum = ", momentum, ", expected [0, 1)");
    gamma = register_buffer("gamma", Tensorf::zeros({static_cast<int64_t>(bits) + 1}));  // [x_ref, gamma_1..]
    initialized = register_buffer("initialized", Tensorf::zeros({1}));
  }

  Tensorf forward(const Tensorf& x) override {
    if (is_training() && initialized.data()[0] == 0.f) init_from(x);
    std::vector<float> g(gamma.data() + 1, gamma.data() + 1 + bits_);
    const float xref = gamma.data()[0];
    std::vector<float> target(static_cast<size_t>(x.numel()));
    for (int64_t k = 0; k < x.numel(); ++k) target[static_cast<size_t>(k)] = x.data()[k] - xref;
    const std::vector<uint32_t> pat = search_bases(g, target);
    const std::vector<float> levels = pattern_values(g);
    Tensorf y = Tensorf::empty(x.shape());
    for (int64_t k = 0; k < x.numel(); ++k) y.data()[k] = xref + levels[pat[static_cast<size_t>(k)]];
    if (is_training()) update(pat, x);
    float span = 0.f;
    for (float v : g) span += v;
    const float lo = xref - span, hi = xref + span;
    if (autograd::needs_grad({&x})) {
      Tensorf xs = x;
      autograd::record(y, "alq_activation", {&x}, [xs, lo, hi](const Tensorf& gy) {
        Tensorf gx = Tensorf::empty(gy.shape());
        for (int64_t k = 0; k < gy.numel(); ++k) {
          const float v = xs.data()[k];
          gx.data()[k] = (v >= lo && v <= hi) ? gy.data()[k] : 0.f;  // clipped STE
        }
        return std::vector<Tensorf>{gx};
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
  void update(const std::vector<uint32_t>& pat, const Tensorf& x) {
    const std::vector<double> fresh = refit_activation(pat, x.data(), bits_);  // Eq. 25
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
