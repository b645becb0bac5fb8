// From a QuantSpec to layers and hooks, through the method registry (quant/registry.hpp):
//   make_factory(spec)    the training LayerFactory: FP32 layers where the spec's policy
//                         says fp32, otherwise QConv2d / QLinear with the method's weight and
//                         activation quantizers (Method::make_weight / make_activation);
//   frozen_factory(spec)  the same layers for inference from an export: quantized weights
//                         are FrozenWeight placeholders that load_quantized_into()
//                         (quant/export.hpp) fills with the stored codes;
//   make_hooks(spec)      the method's training-loop hooks (quant/method.hpp).
#pragma once
#include <memory>

#include "../nn/factory.hpp"
#include "../nn/layers.hpp"
#include "layers.hpp"
#include "method.hpp"
#include "registry.hpp"
#include "spec.hpp"

namespace lowbit {
namespace quant {

namespace detail {
inline nn::LayerFactory make_factory(const QuantSpec& given, bool frozen) {
  const QuantSpec spec = resolve(given);
  const std::shared_ptr<const Method> method = find_method_ptr(spec.method);  // owned by the factory too
  auto make_wq = [method, spec, frozen](int bits, nn::LayerRole role) -> WeightQuantizerMaker {
    return [method, spec, frozen, bits, role](const Tensorf& init) -> std::shared_ptr<WeightQuantizer> {
      if (bits == 32) return std::make_shared<FullPrecisionWeight>(init);
      if (frozen) return std::make_shared<FrozenWeight>(init.shape(), bits);
      return method->make_weight(init, bits, role, spec);
    };
  };
  auto make_aq = [method, spec](int bits, nn::LayerRole role) -> std::shared_ptr<ActivationQuantizer> {
    return bits == 32 ? nullptr : method->make_activation(bits, role, spec);
  };
  nn::LayerFactory f;
  f.conv = [spec, make_wq, make_aq](const nn::ConvSpec& s, Generator& g) -> std::shared_ptr<nn::Module> {
    const QuantSpec::Bits b = spec.bits_for(s.role);
    if (b.w == 32 && b.a == 32) return std::make_shared<nn::Conv2d>(s.in, s.out, s.kernel, s.stride, s.pad, s.bias, g);
    return std::make_shared<QConv2d>(s, make_wq(b.w, s.role), make_aq(b.a, s.role), g);
  };
  f.linear = [spec, make_wq, make_aq](const nn::LinearSpec& s, Generator& g) -> std::shared_ptr<nn::Module> {
    const QuantSpec::Bits b = spec.bits_for(s.role);
    if (b.w == 32 && b.a == 32) return std::make_shared<nn::Linear>(s.in, s.out, s.bias, g);
    return std::make_shared<QLinear>(s, make_wq(b.w, s.role), make_aq(b.a, s.role), g);
  };
  return f;
}
}  // namespace detail

inline nn::LayerFactory make_factory(const QuantSpec& spec) { return detail::make_factory(spec, false); }
inline nn::LayerFactory frozen_factory(const QuantSpec& spec) { return detail::make_factory(spec, true); }

inline std::unique_ptr<MethodHooks> make_hooks(const QuantSpec& spec) {
  const QuantSpec s = resolve(spec);
  return find_method(s.method).make_hooks(s);
}

}  // namespace quant
}  // namespace lowbit
