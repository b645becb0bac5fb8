// The CIFAR ResNets (He et al. 2016, Sec. 4.2), ResNet-20/32/44/56/...: a 3x3 conv with 16
// channels, three stages of n BasicBlocks (depth = 6n + 2) with 16, 32, 64 channels (stride 2
// at the start of stages 2 and 3), global average pooling and a linear layer with one output
// per class. The input may have any number of channels and any size (the pooling is global). Shortcuts that change shape use
// option A (zero-padded identity, no parameters; the paper's CIFAR choice) or option B
// (1x1 conv + BN, as the APoT code uses).
#pragma once
#include <memory>

#include "../ops/activation.hpp"
#include "../ops/binary.hpp"
#include "../ops/shortcut.hpp"
#include "factory.hpp"

namespace lowbit {
namespace nn {

enum class Shortcut { A, B };

class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride, Shortcut sc, const LayerFactory& f, Generator& gen)
      : in_(in), out_(out), stride_(stride) {
    conv1 = register_module("conv1", f.conv({in, out, 3, stride, 1, false, LayerRole::Middle}, gen));
    bn1 = register_module("bn1", std::make_shared<BatchNorm>(out, true, /*fuse_relu=*/true));
    conv2 = register_module("conv2", f.conv({out, out, 3, 1, 1, false, LayerRole::Middle}, gen));
    bn2 = register_module("bn2", std::make_shared<BatchNorm>(out));
    if ((stride != 1 || in != out) && sc == Shortcut::B) {
      auto seq = std::make_shared<Sequential>();
      seq->push_back(f.conv({in, out, 1, stride, 0, false, LayerRole::Middle}, gen));
      seq->push_back(std::make_shared<BatchNorm>(out));
      shortcut = register_module("shortcut", seq);
    }
  }
  Tensorf forward(const Tensorf& x) override {
    Tensorf h = (*bn1)((*conv1)(x));  // BN + ReLU fused
    h = (*bn2)((*conv2)(h));
    Tensorf s = x;
    if (shortcut) s = (*shortcut)(x);
    else if (stride_ != 1 || in_ != out_) s = shortcut_pad(x, out_, stride_);
    return add_relu(h, s);
  }
  std::string type_name() const override { return "BasicBlock"; }

  std::shared_ptr<Module> conv1, conv2, shortcut;
  std::shared_ptr<BatchNorm> bn1, bn2;

 private:
  int64_t in_, out_, stride_;
};

class ResNetCifar : public Module {
 public:
  // depth = 6n + 2 (20, 32, 44, 56, ...).
  ResNetCifar(int depth, int64_t num_classes, Shortcut sc, const LayerFactory& f, Generator& gen,
              int64_t in_channels = 3) {
    LOWBIT_CHECK(depth >= 8 && (depth - 2) % 6 == 0, "ResNetCifar: depth ", depth, " is not 6n + 2");
    const int n = (depth - 2) / 6;
    conv1 = register_module("conv1", f.conv({in_channels, 16, 3, 1, 1, false, LayerRole::First}, gen));
    bn1 = register_module("bn1", std::make_shared<BatchNorm>(16, true, /*fuse_relu=*/true));
    int64_t in = 16;
    const int64_t widths[3] = {16, 32, 64};
    for (int s = 0; s < 3; ++s) {
      auto stage = std::make_shared<Sequential>();
      for (int b = 0; b < n; ++b) {
        const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
        stage->push_back(std::make_shared<BasicBlock>(in, widths[s], stride, sc, f, gen));
        in = widths[s];
      }
      stages[s] = register_module("layer" + std::to_string(s + 1), stage);
    }
    fc = register_module("fc", f.linear({64, num_classes, true, LayerRole::Last}, gen));
  }
  Tensorf forward(const Tensorf& x) override {
    Tensorf h = (*bn1)((*conv1)(x));  // BN + ReLU fused
    for (auto& s : stages) h = (*s)(h);
    return (*fc)(global_avg_pool2d(h));
  }
  std::string type_name() const override { return "ResNetCifar"; }

  std::shared_ptr<Module> conv1, fc;
  std::shared_ptr<BatchNorm> bn1;
  std::shared_ptr<Sequential> stages[3];
};

inline std::shared_ptr<ResNetCifar> resnet20(Generator& gen, Shortcut sc = Shortcut::A,
                                             const LayerFactory& f = LayerFactory::fp32(),
                                             int64_t num_classes = 10) {
  return std::make_shared<ResNetCifar>(20, num_classes, sc, f, gen);
}

// ResNet-`depth` (6n + 2: 20, 32, 44, 56, 110) for images with `in_channels` channels.
inline std::shared_ptr<ResNetCifar> resnet_cifar(int depth, Generator& gen, Shortcut sc = Shortcut::A,
                                                 const LayerFactory& f = LayerFactory::fp32(),
                                                 int64_t num_classes = 10, int64_t in_channels = 3) {
  return std::make_shared<ResNetCifar>(depth, num_classes, sc, f, gen, in_channels);
}

}  // namespace nn
}  // namespace lowbit
