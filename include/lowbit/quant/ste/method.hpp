// Method "ste": the straight-through-estimator baselines. Weights: w_bits = 1 is BWN
// (sign(W) * mean|W|, quant/ste/bwn.hpp), 2..8 DoReFa (quant/ste/dorefa.hpp), 32 keeps
// them in floating point; activations (layer inputs): DoReFa or PACT at a_bits 1..8, or 32
// (quant/ste/activation.hpp). docs/quantization.md.
#pragma once
#include <memory>
#include <string>

#include "../method.hpp"
#include "../registry.hpp"
#include "activation.hpp"
#include "bwn.hpp"
#include "dorefa.hpp"

namespace lowbit {
namespace quant {
namespace ste {

inline bool bits_ok(int b) { return (b >= 1 && b <= 8) || b == 32; }

class SteMethod : public Method {
 public:
  std::string name() const override { return "ste"; }
  std::string doc() const override {
    return "straight-through baselines: BWN (w_bits 1) or DoReFa (2..8) weights, DoReFa or PACT activations";
  }
  io::OptionSchema options() const override { return activation_options(); }
  void validate(const QuantSpec& s) const override {
    LOWBIT_CHECK(bits_ok(s.w_bits), "config key 'w_bits' = ", s.w_bits, ": method ste expects 1..8 or 32");
    LOWBIT_CHECK(bits_ok(s.a_bits), "config key 'a_bits' = ", s.a_bits, ": method ste expects 1..8 or 32");
  }
  std::shared_ptr<WeightQuantizer> make_weight(const Tensorf& init, int bits, nn::LayerRole,
                                               const QuantSpec&) const override {
    if (bits == 1) return std::make_shared<BinaryWeight>(init);
    return std::make_shared<DoReFaWeight>(init, bits);
  }
  std::shared_ptr<ActivationQuantizer> make_activation(int bits, nn::LayerRole, const QuantSpec& s) const override {
    return ste::make_activation(bits, s.options);
  }
  std::vector<ParamGroupRule> param_groups(const QuantSpec& s) const override { return {pact_group(s.options)}; }
};

inline const bool registered = register_method(std::make_shared<SteMethod>());

}  // namespace ste
}  // namespace quant
}  // namespace lowbit
