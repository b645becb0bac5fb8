// VGG-Small as in LQ-Nets (Zhang et al. 2018), the CIFAR-10 network of the SLB paper:
// 3x3 convs 128, 128, pool, 256, 256, pool, 512, 512, pool, then FC 8192 -> 10. No conv
// bias. Each max-pool sits between its conv and the BN (conv -> pool -> BN -> ReLU), which
// pools before normalizing and so halves the BN work at those layers. BN and ReLU run as one
// fused layer ("BatchNorm2d+ReLU").
#pragma once
#include <memory>

#include "factory.hpp"

namespace lowbit {
namespace nn {

// The convolutional body shared by VGG-Small and ALQ's VGG: six 3x3 convs with widths 128,
// 128, 256, 256, 512, 512, a 2x2 max-pool after every second conv (before its BN), fused
// BN+ReLU, then flatten to 512 x (H/8) x (W/8) features (8192 on 32 x 32 images).
inline std::shared_ptr<Sequential> vgg_small_features(const LayerFactory& f, Generator& gen, bool conv_bias,
                                                      int64_t in_channels = 3) {
  const int64_t widths[6] = {128, 128, 256, 256, 512, 512};
  auto body = std::make_shared<Sequential>();
  int64_t in = in_channels;
  for (int i = 0; i < 6; ++i) {
    body->push_back(f.conv({in, widths[i], 3, 1, 1, conv_bias, i == 0 ? LayerRole::First : LayerRole::Middle}, gen));
    if (i % 2 == 1) body->push_back(std::make_shared<MaxPool2d>(2));
    body->push_back(std::make_shared<BatchNorm>(widths[i], true, /*fuse_relu=*/true));
    in = widths[i];
  }
  body->push_back(std::make_shared<Flatten>());
  return body;
}

// The feature count vgg_small_features flattens to for H x W images (three 2x2 pools, each
// rounding down); an image smaller than 8 x 8 has none left.
inline int64_t vgg_feature_count(int64_t height, int64_t width) {
  LOWBIT_CHECK(height >= 8 && width >= 8, "VGG: input ", height, "x", width,
               " is too small for its three 2x2 max-pools, expected at least 8 x 8 pixels");
  return 512 * (height / 2 / 2 / 2) * (width / 2 / 2 / 2);
}

class VggSmall : public Module {
 public:
  VggSmall(int64_t num_classes, const LayerFactory& f, Generator& gen, int64_t in_channels = 3, int64_t height = 32,
           int64_t width = 32) {
    features = register_module("features", vgg_small_features(f, gen, /*conv_bias=*/false, in_channels));
    fc = register_module("fc", f.linear({vgg_feature_count(height, width), num_classes, true, LayerRole::Last}, gen));
  }
  Tensorf forward(const Tensorf& x) override { return (*fc)((*features)(x)); }
  std::string type_name() const override { return "VggSmall"; }

  std::shared_ptr<Sequential> features;
  std::shared_ptr<Module> fc;
};

// The BinaryConnect-style VGG that ALQ calls "VGG_small" (docs/notes/alq.md §4.2): VGG-Small's
// convs (with bias) and pooling placement, then two hidden FC layers with BN1d:
// 8192 -> 1024 -> BN -> ReLU -> 1024 -> BN -> ReLU -> 10 (BN+ReLU fused). 14.02M weights,
// most in the FCs.
class VggBinaryConnect : public Module {
 public:
  VggBinaryConnect(int64_t num_classes, const LayerFactory& f, Generator& gen, int64_t in_channels = 3,
                   int64_t height = 32, int64_t width = 32) {
    features = register_module("features", vgg_small_features(f, gen, /*conv_bias=*/true, in_channels));
    auto head = std::make_shared<Sequential>();
    head->push_back(f.linear({vgg_feature_count(height, width), 1024, true, LayerRole::Middle}, gen));
    head->push_back(std::make_shared<BatchNorm>(1024, /*two_d=*/false, /*fuse_relu=*/true));
    head->push_back(f.linear({1024, 1024, true, LayerRole::Middle}, gen));
    head->push_back(std::make_shared<BatchNorm>(1024, /*two_d=*/false, /*fuse_relu=*/true));
    head->push_back(f.linear({1024, num_classes, true, LayerRole::Last}, gen));
    classifier = register_module("classifier", head);
  }
  Tensorf forward(const Tensorf& x) override { return (*classifier)((*features)(x)); }
  std::string type_name() const override { return "VggBinaryConnect"; }

  std::shared_ptr<Sequential> features, classifier;
};

inline std::shared_ptr<VggBinaryConnect> vgg_bc(Generator& gen, const LayerFactory& f = LayerFactory::fp32(),
                                                int64_t num_classes = 10) {
  return std::make_shared<VggBinaryConnect>(num_classes, f, gen);
}

inline std::shared_ptr<VggSmall> vgg_small(Generator& gen, const LayerFactory& f = LayerFactory::fp32(),
                                           int64_t num_classes = 10) {
  return std::make_shared<VggSmall>(num_classes, f, gen);
}

}  // namespace nn
}  // namespace lowbit
