// Method "slb": Searching for Low-Bit weights (Yang et al., NeurIPS 2020). The weights of
// quantized layers are searched over 2^w_bits values (quant/slb/slb.hpp: the softmax
// expectation W_c in training, the argmax W_q in evaluation); activations are DoReFa or
// PACT (quant/ste/activation.hpp; the paper uses DoReFa, Sec. 4.1); the temperature,
// state batch-norm and the sharpness log are the hooks (quant/slb/hooks.hpp). docs/slb.md.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../method.hpp"
#include "../registry.hpp"
#include "../ste/activation.hpp"
#include "hooks.hpp"
#include "slb.hpp"

namespace lowbit {
namespace quant {
namespace slb {

class SlbMethod : public Method {
 public:
  std::string name() const override { return "slb"; }
  std::string doc() const override {
    return "SLB: weights searched over 2^w_bits values by a temperature-annealed softmax, DoReFa/PACT activations";
  }
  io::OptionSchema options() const override {
    io::OptionSchema s = slb_option_schema();
    s.include(ste::activation_options());
    return s;
  }
  void validate(const QuantSpec& s) const override {
    LOWBIT_CHECK(s.w_bits >= 1 && s.w_bits <= 8, "config key 'w_bits' = ", s.w_bits,
                 ": method slb expects 1..8 (the weights are searched over 2^w_bits values)");
    LOWBIT_CHECK((s.a_bits >= 1 && s.a_bits <= 8) || s.a_bits == 32, "config key 'a_bits' = ", s.a_bits,
                 ": method slb expects 1..8 or 32");
    SlbOptions::from_json(own(s.options));
  }
  std::shared_ptr<WeightQuantizer> make_weight(const Tensorf& init, int bits, nn::LayerRole,
                                               const QuantSpec& s) const override {
    const SlbOptions o = SlbOptions::from_json(own(s.options));
    return std::make_shared<SlbWeight>(init, bits, o.init, o.values);
  }
  std::shared_ptr<ActivationQuantizer> make_activation(int bits, nn::LayerRole, const QuantSpec& s) const override {
    return ste::make_activation(bits, s.options);
  }
  std::unique_ptr<MethodHooks> make_hooks(const QuantSpec& s) const override {
    return std::make_unique<SlbHooks>(own(s.options));
  }
  std::vector<ParamGroupRule> param_groups(const QuantSpec& s) const override { return {ste::pact_group(s.options)}; }
  std::vector<ReportPlot> report_plots() const override {
    return {{"Temperature tau = 1/T (SLB Alg. 1)", "tau", {"tau"}, true},
            {"Sharpness of P (SLB Eq. 5)", "probability / fraction", {"mean_max_p", "frac_max_p_gt_0999"}, false},
            {"Quantization gap ||W_q - W_c|| / ||W_c|| (SLB Eq. 9)", "relative gap", {"gap_rel"}, false}};
  }

 private:
  // The SLB options alone (without the shared activation options).
  static nlohmann::json own(const nlohmann::json& o) {
    nlohmann::json r = nlohmann::json::object();
    const io::OptionSchema schema = slb_option_schema();  // alive for the whole loop
    for (auto& spec : schema.specs())
      if (o.contains(spec.key)) r[spec.key] = o.at(spec.key);
    return r;
  }
};

inline const bool registered = register_method(std::make_shared<SlbMethod>());

}  // namespace slb
}  // namespace quant
}  // namespace lowbit
