// VGG-Small as in LQ-Nets (Zhang et al. 2018), the CIFAR-10 network of the SLB paper:
// 3x3 convs 128, 128, pool, 256, 256, pool, 512, 512, pool, then FC 8192 -> 10. No conv
// bias. Each max-pool sits between its conv and the BN (conv -> pool -> BN -> ReLU), which
// pools before normalizing and so halves the BN work at those layers.
#pragma once
#include <memory>

#include "factory.hpp"

namespace lowbit {
namespace nn {

class VggSmall : public Module {
 public:
  VggSmall(int64_t num_classes, const LayerFactory& f, Generator& gen) {
    const int64_t widths[6] = {128, 128, 256, 256, 512, 512};
    auto body = std::make_shared<Sequential>();
    int64_t in = 3;
    for (int i = 0; i < 6; ++i) {
      body->push_back(f.conv({in, widths[i], 3, 1, 1, false, i == 0 ? LayerRole::First : LayerRole::Middle}, gen));
      if (i % 2 == 1) body->push_back(std::make_shared<MaxPool2d>(2));
      body->push_back(std::make_shared<BatchNorm>(widths[i]));
      body->push_back(std::make_shared<ReLU>());
      in = widths[i];
    }
    body->push_back(std::make_shared<Flatten>());
    features = register_module("features", body);
    fc = register_module("fc", f.linear({512 * 4 * 4, num_classes, true, LayerRole::Last}, gen));
  }
  Tensorf forward(const Tensorf& x) override { return (*fc)((*features)(x)); }
  std::string type_name() const override { return "VggSmall"; }

  std::shared_ptr<Sequential> features;
  std::shared_ptr<Module> fc;
};

inline std::shared_ptr<VggSmall> vgg_small(Generator& gen, const LayerFactory& f = LayerFactory::fp32(),
                                           int64_t num_classes = 10) {
  return std::make_shared<VggSmall>(num_classes, f, gen);
}

}  // namespace nn
}  // namespace lowbit
