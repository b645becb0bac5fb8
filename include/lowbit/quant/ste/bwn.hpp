// 1-bit weights with a mean-|W| scale: BWN / XNOR-Net (Rastegari et al. 2016, Eq. 4:
// B = sign(W), alpha = ||W||_1 / n) as DoReFa-Net uses it for 1-bit weights (Zhou et al.
// 2016, Sec. 2.2: "E(|r_i|) sign(r_i)", one scale per layer).
//
//   forward   w = E sign(W),  E = mean |W| over the whole tensor,  sign(0) = +1
//   backward  dL/dW = dL/dw   (STE, identity), E treated as a constant
// The identity STE and the constant E follow the DoReFa reference code (tensorpack
// dorefa.py: E = stop_gradient(reduce_mean(abs(x))); sign with an "Identity" gradient
// override). sign(0) = +1 so every weight has one of the two codes.
//
// E is accumulated in double in a fixed serial order and rounded to float once, so the
// forward and codes() agree. Codes: c = 1 where W >= 0 else 0; levels = {-1, +1};
// scales = {E}; dequantization E * levels[c] is exact (+-E), equal to the forward.
//
// Row in docs/gradients.md; tests in tests/test_quant_ops.cpp.
#pragma once
#include <cmath>
#include <memory>
#include <string>

#include "../../ops/binary.hpp"
#include "../quantizer.hpp"

namespace lowbit {
namespace quant {

namespace detail {
template <class T>
T mean_abs(const Tensor<T>& w) {
  double s = 0;
  for (int64_t i = 0; i < w.numel(); ++i) s += std::abs(static_cast<double>(w.data()[i]));
  return static_cast<T>(w.numel() ? s / static_cast<double>(w.numel()) : 0.0);
}
}  // namespace detail

// w = mean|W| sign(W), sign(0) = +1; dL/dW = dL/dw.
template <class T>
Tensor<T> bwn_weight(const Tensor<T>& w) {
  const T e = detail::mean_abs(w);
  Tensor<T> y = lowbit::detail::map(w, [e](T v) { return v >= T(0) ? e : -e; });
  if (autograd::needs_grad({&w}))
    autograd::record(y, "bwn_weight", {&w}, [](const Tensor<T>& g) { return std::vector<Tensor<T>>{g.clone()}; });
  return y;
}

class BinaryWeight : public WeightQuantizer {
 public:
  explicit BinaryWeight(const Tensorf& init) : WeightQuantizer(init.shape()) {
    latent = register_parameter("latent", init);
  }
  Tensorf weight() override { return bwn_weight(latent); }
  QuantCodes codes() const override {
    QuantCodes c;
    c.shape = shape_;
    c.bits = 1;
    c.group_size = latent.numel();
    c.levels = {-1.f, 1.f};
    c.scales = {detail::mean_abs(latent)};
    c.codes.resize(static_cast<size_t>(latent.numel()));
    for (int64_t i = 0; i < latent.numel(); ++i) c.codes[static_cast<size_t>(i)] = latent.data()[i] >= 0.f ? 1u : 0u;
    return c;
  }
  int bits() const override { return 1; }
  std::string type_name() const override { return "BWN"; }

  Tensorf latent;
};

}  // namespace quant
}  // namespace lowbit
