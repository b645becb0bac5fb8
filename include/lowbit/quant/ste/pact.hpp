// PACT: parameterized clipping activation (Choi et al. 2018, "PACT: Parameterized Clipping
// Activation for Quantized Neural Networks", arXiv:1805.06085).
//
//   forward   y   = clip(x, 0, alpha) = 0.5 (|x| - |x - alpha| + alpha)        (Eq. 1)
//             y_q = round(y n / alpha) alpha / n,  n = 2^k - 1               (Eq. 2)
//             (computed as s = alpha / n, y_q = round(y / s) s; round half to even)
//   backward  dy_q/dx     = 1 for 0 <= x < alpha, 0 otherwise    (STE through round)
//             dy_q/dalpha = 1 for x >= alpha,     0 otherwise    (Eq. 3, STE)
// At x = alpha the gradient goes to alpha, not to x (Eq. 3's [alpha, inf) interval);
// at x = 0 it goes to x (the lower clip is inclusive, as DoReFa's activation clip).
// The alpha gradient is summed over every element in double (fixed chunks, each in vector
// lanes, then in order: the same bits for any thread count) and rounded once.
//
// pact_clip(x, alpha) is the same op without the rounding (y = clip(x, 0, alpha)); its
// gradient is exact away from x = 0 and x = alpha, so it is gradchecked, and the quantized
// op is tested to have exactly the same gradient (the STE claim).
//
// PACT regularizes alpha with an L2 penalty so the clipping level does not only grow; the
// trainer applies weight decay `pact_weight_decay` to every alpha (examples/train_cifar.cpp).
// alpha must stay > 0: a non-positive alpha is an error (lower the alpha learning rate or
// its decay), not a NaN.
//
// Rows in docs/gradients.md; tests in tests/test_quant_ops.cpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../../ops/binary.hpp"
#include "../quantizer.hpp"

namespace lowbit {
namespace quant {

namespace detail {
// bits = 0: clip only (pact_clip).
template <class T>
Tensor<T> pact_impl(const Tensor<T>& x, const Tensor<T>& alpha, int bits, const char* op) {
  LOWBIT_CHECK(alpha.numel() == 1, op, ": alpha must hold one value, got shape ", shape_str(alpha.shape()));
  LOWBIT_CHECK(bits >= 0 && bits <= 16, op, ": bits = ", bits, ", expected 1..16");
  const T a = alpha.data()[0];
  LOWBIT_CHECK(a > T(0), op, ": alpha = ", a, ", expected > 0 (lower the alpha learning rate or its weight decay)");
  Tensor<T> y;
  if (bits == 0) {
    y = lowbit::detail::map(x, [a](T v) { return std::min(std::max(v, T(0)), a); });
  } else {
    const T s = a / static_cast<T>((int64_t(1) << bits) - 1);
    y = lowbit::detail::map(x, [a, s](T v) { return std::rint(std::min(std::max(v, T(0)), a) / s) * s; });
  }
  if (autograd::needs_grad({&x, &alpha}))
    autograd::record(y, op, {&x, &alpha},
                     [xd = x.detach(), a, ashape = alpha.shape(), gx = x.requires_grad(),
                      ga = alpha.requires_grad()](const Tensor<T>& g) {
                       Tensor<T> dx, da;
                       if (gx)
                         dx = lowbit::detail::zip(g, xd, [a](T gv, T xv) { return (xv >= T(0) && xv < a) ? gv : T(0); });
                       if (ga) {  // in fixed chunks across threads, each in vector lanes, added in order
                         constexpr int64_t kChunk = 1 << 14;  // (issue 35: the serial loop was 0.1x of a step)
                         const int64_t n = xd.numel(), chunks = (n + kChunk - 1) / kChunk;
                         std::vector<double> part(static_cast<size_t>(chunks), 0.0);
                         const T* px = xd.data();
                         const T* pg = g.data();
#pragma omp parallel for if (chunks > 1)
                         for (int64_t c = 0; c < chunks; ++c) {
                           double sc = 0;
                           const int64_t end = std::min(n, (c + 1) * kChunk);
#pragma omp simd reduction(+ : sc)
                           for (int64_t i = c * kChunk; i < end; ++i) sc += px[i] >= a ? static_cast<double>(pg[i]) : 0.0;
                           part[static_cast<size_t>(c)] = sc;
                         }
                         double s = 0;
                         for (double v : part) s += v;
                         da = Tensor<T>::full(ashape, static_cast<T>(s));
                       }
                       return std::vector<Tensor<T>>{dx, da};
                     });
  return y;
}
}  // namespace detail

// PACT k-bit activation (Eqs. 1-3); alpha: one element (a learned parameter).
template <class T>
Tensor<T> pact_quantize(const Tensor<T>& x, const Tensor<T>& alpha, int bits) {
  LOWBIT_CHECK(bits >= 1, "pact_quantize: bits = ", bits, ", expected 1..16");
  return detail::pact_impl(x, alpha, bits, "pact_quantize");
}
// PACT's clipping without rounding: y = clip(x, 0, alpha), same gradient rule.
template <class T>
Tensor<T> pact_clip(const Tensor<T>& x, const Tensor<T>& alpha) {
  return detail::pact_impl(x, alpha, 0, "pact_clip");
}

class PactActivation : public ActivationQuantizer {
 public:
  // Default alpha = 10: far above typical BN+ReLU outputs, so training starts close to an
  // unclipped ReLU and alpha shrinks under its gradient and decay (config key ste.pact_alpha or slb.pact_alpha).
  explicit PactActivation(int bits, float alpha_init = 10.f) : bits_(bits) {
    LOWBIT_CHECK(bits >= 1 && bits <= 8, "PactActivation: bits = ", bits, ", expected 1..8");
    LOWBIT_CHECK(alpha_init > 0.f, "PactActivation: alpha_init = ", alpha_init, ", expected > 0");
    alpha = register_parameter("alpha", Tensorf::full({1}, alpha_init));
    tag_parameter("alpha", "pact_alpha");  // its own weight decay (PACT Sec. 3.1; quant/ste/method.hpp)
  }
  Tensorf forward(const Tensorf& x) override { return pact_quantize(x, alpha, bits_); }
  bool pure() const override { return true; }
  int bits() const override { return bits_; }
  std::string type_name() const override { return "PACT"; }

  Tensorf alpha;

 private:
  int bits_;
};

}  // namespace quant
}  // namespace lowbit
