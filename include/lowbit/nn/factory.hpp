// How model builders create their conv and linear layers. A model never constructs
// Conv2d/Linear directly: it asks the factory, naming the layer's role, so a quantization
// method can substitute its own layer type (and keep the first or last layer in full
// precision) without the model knowing.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "layers.hpp"

namespace lowbit {
namespace nn {

enum class LayerRole { First, Middle, Last };

struct ConvSpec {
  int64_t in, out, kernel, stride, pad;
  bool bias;
  LayerRole role;
};
struct LinearSpec {
  int64_t in, out;
  bool bias;
  LayerRole role;
};

struct LayerFactory {
  std::function<std::shared_ptr<Module>(const ConvSpec&, Generator&)> conv;
  std::function<std::shared_ptr<Module>(const LinearSpec&, Generator&)> linear;

  // Full-precision Conv2d and Linear everywhere.
  static LayerFactory fp32() {
    LayerFactory f;
    f.conv = [](const ConvSpec& s, Generator& g) {
      return std::make_shared<Conv2d>(s.in, s.out, s.kernel, s.stride, s.pad, s.bias, g);
    };
    f.linear = [](const LinearSpec& s, Generator& g) { return std::make_shared<Linear>(s.in, s.out, s.bias, g); };
    return f;
  }
};

}  // namespace nn
}  // namespace lowbit
