// Method "fp32": no quantization. Every conv and linear layer is an ordinary nn::Conv2d /
// nn::Linear (the spec's bits_for gives 32/32 for every role); w_bits and a_bits must be 32.
#pragma once
#include <memory>
#include <string>

#include "../method.hpp"
#include "../registry.hpp"

namespace lowbit {
namespace quant {
namespace fp32 {

class Fp32Method : public Method {
 public:
  std::string name() const override { return kFullPrecision; }
  std::string doc() const override { return "full precision: no layer is quantized"; }
  void validate(const QuantSpec& s) const override {
    LOWBIT_CHECK(s.w_bits == 32 && s.a_bits == 32, "config keys 'w_bits'/'a_bits' must be 32 for method fp32, got ",
                 s.w_bits, "/", s.a_bits, " (use --set method=ste for quantized training)");
  }
  std::shared_ptr<WeightQuantizer> make_weight(const Tensorf&, int bits, nn::LayerRole, const QuantSpec&) const override {
    lowbit::detail::fail("method fp32 has no weight quantizer (asked for ", bits, " bits)");
  }
  std::shared_ptr<ActivationQuantizer> make_activation(int bits, nn::LayerRole, const QuantSpec&) const override {
    lowbit::detail::fail("method fp32 has no activation quantizer (asked for ", bits, " bits)");
  }
};

inline const bool registered = register_method(std::make_shared<Fp32Method>());

}  // namespace fp32
}  // namespace quant
}  // namespace lowbit
