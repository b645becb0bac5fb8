// The DoReFa / PACT activation quantizers as options, shared by the methods that quantize
// activations this way (ste, and slb: the SLB paper uses DoReFa activations, Sec. 4.1):
//   a_quant            dorefa (clip to [0, 1], DoReFa-Net Eq. 9) | pact (learned clip alpha)
//   pact_alpha         PACT's initial clipping level
//   pact_weight_decay  L2 decay on PACT's alpha (PACT regularizes alpha, Sec. 3.1)
#pragma once
#include <memory>
#include <nlohmann/json.hpp>

#include "../../io/options.hpp"
#include "../method.hpp"
#include "dorefa.hpp"
#include "pact.hpp"

namespace lowbit {
namespace quant {
namespace ste {

inline io::OptionSchema activation_options() {
  io::OptionSchema s;
  s.choice("a_quant", "dorefa", {"dorefa", "pact"}, "activation quantizer: dorefa (clip [0,1]) | pact (learned clip alpha)")
      .number("pact_alpha", 10.0, "PACT's initial clipping level", 0.0, io::OptionSchema::kInf, /*open_lo=*/true)
      .number("pact_weight_decay", 5e-4, "L2 weight decay on PACT's alpha", 0.0);
  return s;
}

inline std::shared_ptr<ActivationQuantizer> make_activation(int bits, const nlohmann::json& options) {
  if (options.at("a_quant") == "pact")
    return std::make_shared<PactActivation>(bits, options.at("pact_alpha").get<float>());
  return std::make_shared<DoReFaActivation>(bits);
}

// PACT's alphas (tagged "pact_alpha" by PactActivation): their own weight decay.
inline ParamGroupRule pact_group(const nlohmann::json& options) {
  return {"pact_alpha", -1, options.at("pact_weight_decay").get<double>()};
}

}  // namespace ste
}  // namespace quant
}  // namespace lowbit
