// The quantization spec and the LayerFactory it turns into. Model builders ask the factory
// for every conv and linear layer, naming its role (First, Middle, Last); the spec decides
// per role whether the layer is FP32 (nn::Conv2d / nn::Linear) or quantized (QConv2d /
// QLinear with the method's weight quantizer and activation quantizer). Models need no
// change: nn::resnet20(gen, sc, make_factory(spec)).
//
// Per-role policy:
//   fp32  weights and input in floating point (an ordinary nn::Conv2d / nn::Linear);
//   8bit  8-bit weights with the method's weight quantizer; the input is not quantized
//         (APoT's first_conv/last_fc, method-notes §1.5: weight-only 8 bit);
//   same  w_bits / a_bits like the middle layers.
// The first layer's input is the normalized image (negative values): it is never given an
// activation quantizer (DoReFa/PACT clip to [0, ...] would destroy it), whatever the policy.
// Defaults follow the DoReFa-style baselines in the papers (DoReFa-Net Sec. 4; LQ-Nets and
// SLB's VGG-Small; PACT): first conv and last FC full precision, everything else quantized.
//
// Bits: 32 means full precision. method "fp32" requires w_bits = a_bits = 32; method "ste"
// takes w_bits in {1..8, 32} (1 = BWN sign * mean|W|, 2..8 = DoReFa) and a_bits in {1..8, 32}
// with a_quant "dorefa" or "pact"; method "slb" (quant/slb.hpp) takes w_bits in {1..8}: the
// weights of quantized layers are searched over 2^w_bits values, activations as for "ste".
// Method "apot" (quant/apot.hpp) takes w_bits and a_bits in {2..5, 32}; its options (apot_*
// config keys) pick the level set, WN, RCF; its 8bit policy is the authors' 8-bit
// first/last-layer weight (Uniform8Weight); a_quant is not used.
// Method "alq" (quant/alq.hpp) takes w_bits = I_max, the most
// binary bases per group, and a_bits in {1..8, 32} ({-1,+1} activation bases, quant/alq_act.hpp);
// its layers follow the same first/last policies, whose defaults here are fp32: set first =
// last = Same for the paper's setting (every layer quantized; train_cifar does this through
// alq_first_layer / alq_last_layer, default "same").
//
// options: the method's own settings as a JSON object (e.g. SLB's temperature schedule);
// the method's header reads them with its defaults and rejects keys it does not know.
// make_hooks(spec) gives the method's per-step / per-epoch work (quant/method.hpp).
#pragma once
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../nn/factory.hpp"
#include "apot.hpp"
#include "apot_hooks.hpp"
#include "alq.hpp"
#include "alq_act.hpp"
#include "bwn.hpp"
#include "dorefa.hpp"
#include "layers.hpp"
#include "method.hpp"
#include "pact.hpp"
#include "slb_hooks.hpp"  // SLB (issue 6): SlbWeight + SlbHooks

namespace lowbit {
namespace quant {

enum class LayerPolicy { FP32, Bit8, Same };

inline LayerPolicy parse_policy(const std::string& s, const std::string& what) {
  if (s == "fp32") return LayerPolicy::FP32;
  if (s == "8bit") return LayerPolicy::Bit8;
  if (s == "same") return LayerPolicy::Same;
  lowbit::detail::fail(what, ": unknown layer policy '", s, "' (expected fp32, 8bit or same)");
}
inline const char* policy_name(LayerPolicy p) {
  return p == LayerPolicy::FP32 ? "fp32" : p == LayerPolicy::Bit8 ? "8bit" : "same";
}

struct QuantSpec {
  std::string method = "fp32";     // fp32 | ste | slb | apot
  int w_bits = 32, a_bits = 32;    // 32 = full precision
  std::string a_quant = "dorefa";  // dorefa | pact
  float pact_alpha = 10.f;         // PACT's initial clipping level
  LayerPolicy first = LayerPolicy::FP32;   // the first conv (role First)
  LayerPolicy middle = LayerPolicy::Same;  // every other conv/linear (role Middle)
  LayerPolicy last = LayerPolicy::FP32;    // the classifier (role Last)
  nlohmann::json options = nlohmann::json::object();  // method-specific settings

  // The methods make_factory knows.
  static const std::vector<std::string>& methods() {
    static const std::vector<std::string> m{"fp32", "ste", "slb", "apot", "alq"};
    return m;
  }

  // Throws naming the field, the value and what is allowed.
  void validate() const {
    auto bits_ok = [](int b) { return (b >= 1 && b <= 8) || b == 32; };
    const auto& ms = methods();
    if (std::find(ms.begin(), ms.end(), method) == ms.end()) {
      std::string list;
      for (auto& m : ms) list += (list.empty() ? "" : ", ") + m;
      lowbit::detail::fail("QuantSpec: method '", method, "' is unknown (expected one of ", list, ")");
    }
    LOWBIT_CHECK(options.is_object(), "QuantSpec: options must be a JSON object, got ", options.dump());
    LOWBIT_CHECK(bits_ok(w_bits), "QuantSpec: w_bits = ", w_bits, ", expected 1..8 or 32");
    LOWBIT_CHECK(bits_ok(a_bits), "QuantSpec: a_bits = ", a_bits, ", expected 1..8 or 32");
    LOWBIT_CHECK(method != "fp32" || (w_bits == 32 && a_bits == 32), "QuantSpec: method fp32 needs w_bits = a_bits = 32, got ",
                 w_bits, "/", a_bits);
    // SLB (issue 6): the weights of quantized layers are searched over 2^w_bits values.
    LOWBIT_CHECK(method != "slb" || (w_bits >= 1 && w_bits <= 8), "QuantSpec: method slb needs w_bits 1..8, got ",
                 w_bits);
    if (method == "slb") SlbOptions::from_json(options);  // throws naming a bad option
    LOWBIT_CHECK(a_quant == "dorefa" || a_quant == "pact", "QuantSpec: a_quant '", a_quant,
                 "' is unknown (expected dorefa or pact)");
    LOWBIT_CHECK(pact_alpha > 0.f, "QuantSpec: pact_alpha = ", pact_alpha, ", expected > 0");
    if (method == "apot") {  // APoT (quant/apot.hpp): the authors' level sets exist for 2..5 bits
      auto apot_ok = [](int b) { return (b >= 2 && b <= 5) || b == 32; };
      LOWBIT_CHECK(apot_ok(w_bits), "QuantSpec: method apot needs w_bits 2..5 or 32, got ", w_bits);
      LOWBIT_CHECK(apot_ok(a_bits), "QuantSpec: method apot needs a_bits 2..5 or 32, got ", a_bits);
      ApotConfig::from_options(options);  // rejects unknown keys and values
    }
    // ALQ (quant/alq.hpp): w_bits is I_max, the most binary bases a group may hold; a_bits
    // (< 32) quantizes layer inputs with {-1,+1} bases (quant/alq_act.hpp).
    if (method == "alq") {
      LOWBIT_CHECK(w_bits != 32, "QuantSpec: method alq needs w_bits = I_max, the most bases per group (6 for the "
                   "CIFAR VGG, 8 for ResNets), got 32");
      alq::Options::from_json(options);
    }
  }

  struct Bits {
    int w, a;
  };
  // Weight and input-activation bits of a layer with this role (32 = not quantized).
  Bits bits_for(nn::LayerRole role) const {
    if (method == "fp32") return {32, 32};
    const LayerPolicy p = role == nn::LayerRole::First ? first : role == nn::LayerRole::Last ? last : middle;
    Bits b = p == LayerPolicy::FP32 ? Bits{32, 32} : p == LayerPolicy::Bit8 ? Bits{8, 32} : Bits{w_bits, a_bits};
    if (role == nn::LayerRole::First) b.a = 32;  // the image is never activation-quantized
    return b;
  }

  nlohmann::json to_json() const {
    return {{"method", method}, {"w_bits", w_bits}, {"a_bits", a_bits}, {"a_quant", a_quant},
            {"pact_alpha", pact_alpha}, {"first", policy_name(first)}, {"middle", policy_name(middle)},
            {"last", policy_name(last)}, {"options", options}};
  }
  static QuantSpec from_json(const nlohmann::json& j) {
    QuantSpec s;
    try {
      s.method = j.at("method").get<std::string>();
      s.w_bits = j.at("w_bits").get<int>();
      s.a_bits = j.at("a_bits").get<int>();
      s.a_quant = j.at("a_quant").get<std::string>();
      s.pact_alpha = j.at("pact_alpha").get<float>();
      s.first = parse_policy(j.at("first").get<std::string>(), "QuantSpec.first");
      s.middle = parse_policy(j.at("middle").get<std::string>(), "QuantSpec.middle");
      s.last = parse_policy(j.at("last").get<std::string>(), "QuantSpec.last");
      if (j.contains("options")) s.options = j.at("options");
    } catch (const nlohmann::json::exception& e) {
      lowbit::detail::fail("QuantSpec::from_json: ", e.what(), " in ", j.dump());
    }
    s.validate();
    return s;
  }
};

namespace detail {
// frozen: inference layers whose quantized weights are FrozenWeight (codes loaded later).
inline nn::LayerFactory make_factory(const QuantSpec& spec, bool frozen) {
  spec.validate();
  // SLB (issue 6): how its logits are initialised.
  const SlbInit slb_init = spec.method == "slb" ? SlbOptions::from_json(spec.options).init : SlbInit::Kaiming;
  // APoT: 8 bits only comes from the 8bit policy (its bits are 2..5): the authors'
  // first_conv / last_fc weights (Uniform8Weight, method-notes §1.5).
  const bool apot = spec.method == "apot";
  const ApotConfig apot_cfg = apot ? ApotConfig::from_options(spec.options) : ApotConfig{};
  // ALQ: the group layout depends on the layer's role (channel-wise for the first conv).
  auto make_wq = [frozen, spec, slb_init, apot, apot_cfg](int bits, nn::LayerRole role) -> WeightQuantizerMaker {
    return [frozen, spec, bits, role, slb_init, apot, apot_cfg](const Tensorf& init) -> std::shared_ptr<WeightQuantizer> {
      if (bits == 32) return std::make_shared<FullPrecisionWeight>(init);
      if (frozen) return std::make_shared<FrozenWeight>(init.shape(), bits);
      if (spec.method == "slb") return std::make_shared<SlbWeight>(init, bits, slb_init);
      if (apot) {
        if (bits == 8) return std::make_shared<Uniform8Weight>(init);
        return std::make_shared<ApotWeight>(init, bits, apot_cfg);
      }
      if (spec.method == "alq") return alq::make_weight(init, role, spec.options, bits);  // w_bits = I_max
      if (bits == 1) return std::make_shared<BinaryWeight>(init);
      return std::make_shared<DoReFaWeight>(init, bits);
    };
  };
  auto make_aq = [spec, apot, apot_cfg](int bits) -> std::shared_ptr<ActivationQuantizer> {
    if (bits == 32) return nullptr;
    if (apot) return std::make_shared<ApotActivation>(bits, apot_cfg);
    if (spec.method == "alq") return std::make_shared<alq::AlqActivation>(bits);
    if (spec.a_quant == "pact") return std::make_shared<PactActivation>(bits, spec.pact_alpha);
    return std::make_shared<DoReFaActivation>(bits);
  };
  nn::LayerFactory f;
  f.conv = [spec, make_wq, make_aq](const nn::ConvSpec& s, Generator& g) -> std::shared_ptr<nn::Module> {
    const QuantSpec::Bits b = spec.bits_for(s.role);
    if (b.w == 32 && b.a == 32) return std::make_shared<nn::Conv2d>(s.in, s.out, s.kernel, s.stride, s.pad, s.bias, g);
    return std::make_shared<QConv2d>(s, make_wq(b.w, s.role), make_aq(b.a), g);
  };
  f.linear = [spec, make_wq, make_aq](const nn::LinearSpec& s, Generator& g) -> std::shared_ptr<nn::Module> {
    const QuantSpec::Bits b = spec.bits_for(s.role);
    if (b.w == 32 && b.a == 32) return std::make_shared<nn::Linear>(s.in, s.out, s.bias, g);
    return std::make_shared<QLinear>(s, make_wq(b.w, s.role), make_aq(b.a), g);
  };
  return f;
}
}  // namespace detail

// The training factory of a spec.
inline nn::LayerFactory make_factory(const QuantSpec& spec) { return detail::make_factory(spec, false); }
// The inference factory: same layers, but quantized weights are FrozenWeight placeholders
// that load_quantized_into() (quant/export.hpp) fills with the exported codes.
inline nn::LayerFactory frozen_factory(const QuantSpec& spec) { return detail::make_factory(spec, true); }

// The method's training-loop hooks (quant/method.hpp); fp32 and ste need none.
inline std::unique_ptr<MethodHooks> make_hooks(const QuantSpec& spec) {
  spec.validate();
  if (spec.method == "slb") return std::make_unique<SlbHooks>(spec.options);  // SLB (issue 6)
  if (spec.method == "apot") return std::make_unique<ApotHooks>();  // logs the alphas per epoch
  if (spec.method == "alq") return std::make_unique<alq::AlqHooks>(spec.options);  // its optimizer and phases
  return std::make_unique<MethodHooks>();
}

}  // namespace quant
}  // namespace lowbit
