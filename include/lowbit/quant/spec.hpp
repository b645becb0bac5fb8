// QuantSpec: which method quantizes a model, at which bits, and what each layer role gets.
// Model builders ask a LayerFactory (quant/factory.hpp) for every conv and linear layer,
// naming its role (First, Middle, Last); the spec decides per role whether the layer stays
// FP32 (nn::Conv2d / nn::Linear) or becomes a QConv2d / QLinear with the method's weight and
// activation quantizers. Models need no change: nn::resnet20(gen, sc, make_factory(spec)).
//
// Per-role policy:
//   fp32  weights and input in floating point (an ordinary nn::Conv2d / nn::Linear);
//   8bit  8-bit weights with the method's weight quantizer; the input is not quantized
//         (APoT's first_conv / last_fc: weight-only 8 bit, docs/notes/apot.md §1.5);
//   same  w_bits / a_bits like the middle layers.
// The first layer's input is the normalized image (negative values): it is never given an
// activation quantizer (DoReFa/PACT clip to [0, ...] would destroy it), whatever the policy.
// A method states its default policies (Method::default_policy, quant/method.hpp): the
// DoReFa-style baselines keep the first conv and the last FC in full precision (DoReFa-Net
// Sec. 4, LQ-Nets, PACT); ALQ quantizes every layer, as its paper does.
//
// Bits: 32 means full precision; which bits a method accepts is the method's business
// (Method::validate). options: the method's own settings, resolved against its option
// schema (quant/registry.hpp: every key present and checked).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "../core/error.hpp"
#include "../io/json_int.hpp"
#include "../nn/factory.hpp"

namespace lowbit {
namespace quant {

// The method name that means "no quantization" (quant/fp32/method.hpp registers it).
inline constexpr const char* kFullPrecision = "fp32";

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
  std::string method = kFullPrecision;  // a registered method (quant/registry.hpp)
  int w_bits = 32, a_bits = 32;    // 32 = full precision
  LayerPolicy first = LayerPolicy::FP32;   // the first conv (role First)
  LayerPolicy middle = LayerPolicy::Same;  // every other conv/linear (role Middle)
  LayerPolicy last = LayerPolicy::FP32;    // the classifier (role Last)
  nlohmann::json options = nlohmann::json::object();  // the method's options

  struct Bits {
    int w, a;
  };
  // Weight and input-activation bits of a layer with this role (32 = not quantized).
  Bits bits_for(nn::LayerRole role) const {
    if (method == kFullPrecision) return {32, 32};
    const LayerPolicy p = role == nn::LayerRole::First ? first : role == nn::LayerRole::Last ? last : middle;
    Bits b = p == LayerPolicy::FP32 ? Bits{32, 32} : p == LayerPolicy::Bit8 ? Bits{8, 32} : Bits{w_bits, a_bits};
    if (role == nn::LayerRole::First) b.a = 32;  // the image is never activation-quantized
    return b;
  }

  nlohmann::json to_json() const {
    return {{"method", method}, {"w_bits", w_bits},
            {"a_bits", a_bits}, {"first", policy_name(first)},
            {"middle", policy_name(middle)}, {"last", policy_name(last)},
            {"options", options}};
  }
  // Fields only; quant/registry.hpp's resolve() checks them against the method.
  static QuantSpec from_json(const nlohmann::json& j) {
    QuantSpec s;
    try {
      s.method = j.at("method").get<std::string>();
      s.w_bits = static_cast<int>(io::json_int(j.at("w_bits"), "QuantSpec.w_bits", 1, 32));
      s.a_bits = static_cast<int>(io::json_int(j.at("a_bits"), "QuantSpec.a_bits", 1, 32));
      s.first = parse_policy(j.at("first").get<std::string>(), "QuantSpec.first");
      s.middle = parse_policy(j.at("middle").get<std::string>(), "QuantSpec.middle");
      s.last = parse_policy(j.at("last").get<std::string>(), "QuantSpec.last");
      if (j.contains("options")) s.options = j.at("options");
    } catch (const nlohmann::json::exception& e) {
      lowbit::detail::fail("QuantSpec::from_json: ", e.what(), " in ", j.dump());
    }
    return s;
  }
};

}  // namespace quant
}  // namespace lowbit
