// Method "apot": Additive Powers-of-Two quantization (Li, Dong and Wang, ICLR 2020) with
// reparameterized clipping (RCF) and weight normalization, as the authors' CIFAR code runs
// it (docs/apot.md, docs/notes/apot.md). w_bits and a_bits 2..5 (the authors' level sets)
// or 32; an 8bit-policy layer gets the authors' weight-only 8-bit quantizer
// (Uniform8Weight, their first_conv / last_fc). The alphas train in their own parameter
// groups (tags apot_w_alpha, apot_a_alpha; docs/notes/apot.md §1.4).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../method.hpp"
#include "../registry.hpp"
#include "apot.hpp"
#include "hooks.hpp"

namespace lowbit {
namespace quant {
namespace apot {

inline bool bits_ok(int b) { return (b >= 2 && b <= 5) || b == 32; }

class ApotMethod : public Method {
 public:
  std::string name() const override { return "apot"; }
  std::string doc() const override {
    return "APoT: additive powers-of-two levels with learned clipping (RCF) and weight normalization, 2..5 bits";
  }
  io::OptionSchema options() const override { return ApotConfig::schema(); }
  void validate(const QuantSpec& s) const override {
    LOWBIT_CHECK(bits_ok(s.w_bits), "config key 'w_bits' = ", s.w_bits, ": method apot expects 2..5 or 32");
    LOWBIT_CHECK(bits_ok(s.a_bits), "config key 'a_bits' = ", s.a_bits, ": method apot expects 2..5 or 32");
  }
  std::shared_ptr<WeightQuantizer> make_weight(const Tensorf& init, int bits, nn::LayerRole,
                                               const QuantSpec& s) const override {
    if (bits == 8) return std::make_shared<Uniform8Weight>(init);  // the 8bit policy (first / last layer)
    return std::make_shared<ApotWeight>(init, bits, ApotConfig::from_options(s.options));
  }
  std::shared_ptr<ActivationQuantizer> make_activation(int bits, nn::LayerRole, const QuantSpec& s) const override {
    return std::make_shared<ApotActivation>(bits, ApotConfig::from_options(s.options));
  }
  std::unique_ptr<MethodHooks> make_hooks(const QuantSpec&) const override { return std::make_unique<ApotHooks>(); }
  std::vector<ParamGroupRule> param_groups(const QuantSpec& s) const override {
    const double wd = s.options.at("alpha_weight_decay").get<double>();
    return {{"apot_w_alpha", s.options.at("w_alpha_lr").get<double>(), wd},
            {"apot_a_alpha", s.options.at("a_alpha_lr").get<double>(), wd}};
  }
};

inline const bool registered = register_method(std::make_shared<ApotMethod>());

}  // namespace apot
}  // namespace quant
}  // namespace lowbit
