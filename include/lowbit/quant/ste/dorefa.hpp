// DoReFa-Net weight and activation quantizers (Zhou et al. 2016, "DoReFa-Net: Training Low
// Bitwidth Convolutional Neural Networks with Low Bitwidth Gradients", arXiv:1606.06160).
//
// The k-bit uniform quantizer with a straight-through estimator (Eq. 5):
//   forward   quantize_k(r) = round((2^k - 1) r) / (2^k - 1),    r in [0, 1]
//   backward  dL/dr = dL/dq                                        (STE, identity)
// round() is round-half-to-even (std::rint; tf.round in the reference code does the same).
//
// Weights, k >= 2 bits (Eq. 9):
//   t = tanh(W)
//   v = t / max|t| * 1/2 + 1/2                 in [0, 1]
//   w = 2 quantize_k(v) - 1                    in {-1, -1 + 2/n, ..., 1},  n = 2^k - 1
// Pseudo-gradient: only quantize_k is replaced by the identity; tanh, the division and the
// max over |t| are differentiated exactly (the gradient flows through max|t| to the element
// that attains it), as autograd does in the DoReFa reference code (tensorpack
// dorefa.py, where only the rounding carries a custom gradient). The continuous part
// v(W) is dorefa_weight_normalize() and is gradchecked. 1-bit weights are quant/ste/bwn.hpp.
//
// Codes: c = round(n v) in [0, n]; levels[c] = 2 (c / n) - 1 in float; no scale.
// The forward computes w = 2 (c / n) - 1 with the same float operations (x2 is exact), so
// dequantization reproduces it bit for bit.
//
// Activations, k bits (Sec. 2.3, Eq. 11): y = quantize_k(clip(x, 0, 1)).
// Pseudo-gradient: dy/dx = 1 where 0 <= x <= 1 (both boundaries included, as TF's
// clip_by_value and PyTorch's clamp), 0 outside. Inside the models the input of a middle
// conv is a ReLU output, so exact zeros are common and get gradient 1 here (the ReLU
// before has already zeroed the gradient of its negative inputs).
//
// Rows in docs/gradients.md; tests in tests/test_quant_ops.cpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "../../autograd/grad_mode.hpp"
#include "../../ops/activation.hpp"
#include "../../ops/binary.hpp"
#include "../../ops/reduce.hpp"
#include "../../ops/unary.hpp"
#include "../quantizer.hpp"

namespace lowbit {
namespace quant {

namespace detail {
inline int64_t levels_minus_one(int bits, const char* who) {
  LOWBIT_CHECK(bits >= 1 && bits <= 16, who, ": bits = ", bits, ", expected 1..16");
  return (int64_t(1) << bits) - 1;
}
// round(n * clip(v, 0, 1)) as an integer code: the rounding of quantize_k, shared by the
// forward op and codes() so both pick the same level.
template <class T>
T uniform_code(T v, T n) {
  return std::rint(std::min(std::max(v, T(0)), T(1)) * n);
}
}  // namespace detail

// quantize_k with the identity STE: y = round(n clip(x, 0, 1)) / n, dL/dx = dL/dy.
// (Inputs outside [0, 1] are clipped in the forward only to keep codes in range; the
// weight path never produces them.)
template <class T>
Tensor<T> quantize_uniform_ste(const Tensor<T>& x, int bits) {
  const T n = static_cast<T>(detail::levels_minus_one(bits, "quantize_uniform_ste"));
  Tensor<T> y = lowbit::detail::map(x, [n](T v) { return detail::uniform_code(v, n) / n; });
  if (autograd::needs_grad({&x}))
    autograd::record(y, "quantize_uniform_ste", {&x},
                     [](const Tensor<T>& g) { return std::vector<Tensor<T>>{g.clone()}; });
  return y;
}

// v = tanh(W) / max|tanh(W)| * 1/2 + 1/2, differentiable (DoReFa Eq. 9 before quantize_k).
template <class T>
Tensor<T> dorefa_weight_normalize(const Tensor<T>& w) {
  Tensor<T> t = tanh(w);
  Tensor<T> m = max(abs(t));
  LOWBIT_CHECK(m.item() > T(0), "dorefa_weight_normalize: max|tanh(W)| = ", m.item(),
               " for a weight of shape ", shape_str(w.shape()), "; expected > 0 (all weights are zero)");
  return div(t, m) * T(0.5) + T(0.5);
}

// w = 2 quantize_k(v(W)) - 1 (DoReFa Eq. 9), k >= 2.
template <class T>
Tensor<T> dorefa_weight(const Tensor<T>& w, int bits) {
  LOWBIT_CHECK(bits >= 2 && bits <= 16, "dorefa_weight: bits = ", bits, ", expected 2..16 (1 bit: bwn_weight)");
  return quantize_uniform_ste(dorefa_weight_normalize(w), bits) * T(2) - T(1);
}

// y = quantize_k(clip(x, 0, 1)) (DoReFa Eq. 11); dy/dx = 1 on [0, 1], 0 outside.
template <class T>
Tensor<T> dorefa_activation(const Tensor<T>& x, int bits) {
  const T n = static_cast<T>(detail::levels_minus_one(bits, "dorefa_activation"));
  Tensor<T> y = lowbit::detail::map(x, [n](T v) { return detail::uniform_code(v, n) / n; });
  if (autograd::needs_grad({&x}))
    autograd::record(y, "dorefa_activation", {&x}, [xd = x.detach()](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{
          lowbit::detail::zip(g, xd, [](T gv, T xv) { return (xv >= T(0) && xv <= T(1)) ? gv : T(0); })};
    });
  return y;
}

// The DoReFa k-bit weight quantizer (k = 2..8); latent = the real-valued weight W.
class DoReFaWeight : public WeightQuantizer {
 public:
  DoReFaWeight(const Tensorf& init, int bits) : WeightQuantizer(init.shape()), bits_(bits) {
    LOWBIT_CHECK(bits >= 2 && bits <= 8, "DoReFaWeight: bits = ", bits, ", expected 2..8 (1 bit: BinaryWeight)");
    latent = register_parameter("latent", init);
  }
  Tensorf weight() override { return dorefa_weight(latent, bits_); }
  QuantCodes codes() const override {
    NoGradGuard no_grad;
    const Tensorf v = dorefa_weight_normalize(latent);
    const float n = static_cast<float>((1 << bits_) - 1);
    QuantCodes c;
    c.shape = shape_;
    c.bits = bits_;
    c.group_size = latent.numel();
    c.codes.resize(static_cast<size_t>(latent.numel()));
    for (int64_t i = 0; i < latent.numel(); ++i)
      c.codes[static_cast<size_t>(i)] = static_cast<uint32_t>(detail::uniform_code(v.data()[i], n));
    for (int k = 0; k <= (1 << bits_) - 1; ++k) c.levels.push_back(2.f * (static_cast<float>(k) / n) - 1.f);
    return c;
  }
  int bits() const override { return bits_; }
  std::string type_name() const override { return "DoReFa"; }

  Tensorf latent;

 private:
  int bits_;
};

// The DoReFa k-bit activation quantizer (k = 1..8), no parameters.
class DoReFaActivation : public ActivationQuantizer {
 public:
  explicit DoReFaActivation(int bits) : bits_(bits) {
    LOWBIT_CHECK(bits >= 1 && bits <= 8, "DoReFaActivation: bits = ", bits, ", expected 1..8");
  }
  Tensorf forward(const Tensorf& x) override { return dorefa_activation(x, bits_); }
  int bits() const override { return bits_; }
  bool pure() const override { return true; }
  int uniform_levels() const override { return (1 << bits_) - 1; }  // Eq. 11 is exactly that form
  std::string type_name() const override { return "DoReFa"; }

 private:
  int bits_;
};

}  // namespace quant
}  // namespace lowbit
