// LeNet5 as ALQ's Table 2 and the pruning papers it compares with use it (the "LeNet-5" of
// Caffe's MNIST example, 20-50-500-10): conv 5x5 20 -> max-pool 2 -> ReLU -> conv 5x5 50 ->
// max-pool 2 -> ReLU -> FC 500 -> ReLU -> FC classes, every layer with a bias. The ReLUs after
// the pools follow the ALQ authors' lenet5.py (method notes §2, docs/notes/alq.md); Caffe's
// original has none there. On 1 x 28 x 28 MNIST the FC input is 50 x 4 x 4 = 800 and the
// network holds 430,500 weights (1,722,000 bytes in FP32) plus 580 biases.
//
// Any input shape works whose spatial size survives the two convs and pools (at least 16 x 16);
// the FC input is computed from it, so LeNet5 also runs on 3 x 32 x 32 images (50 x 5 x 5).
#pragma once
#include <memory>
#include <string>

#include "../ops/activation.hpp"
#include "factory.hpp"

namespace lowbit {
namespace nn {

class LeNet5 : public Module {
 public:
  LeNet5(int64_t in_channels, int64_t height, int64_t width, int64_t num_classes, const LayerFactory& f,
         Generator& gen) {
    const int64_t h = ((height - 4) / 2 - 4) / 2, w = ((width - 4) / 2 - 4) / 2;  // after conv, pool, conv, pool
    LOWBIT_CHECK(in_channels >= 1 && height >= 16 && width >= 16 && h >= 1 && w >= 1, "LeNet5: input ", in_channels,
                 "x", height, "x", width, " (channels x height x width) is too small, expected at least 16 x 16 pixels");
    auto body = std::make_shared<Sequential>();
    body->push_back(f.conv({in_channels, 20, 5, 1, 0, true, LayerRole::First}, gen));
    body->push_back(std::make_shared<MaxPool2d>(2));
    body->push_back(std::make_shared<ReLU>());
    body->push_back(f.conv({20, 50, 5, 1, 0, true, LayerRole::Middle}, gen));
    body->push_back(std::make_shared<MaxPool2d>(2));
    body->push_back(std::make_shared<ReLU>());
    body->push_back(std::make_shared<Flatten>());
    features = register_module("features", body);
    auto head = std::make_shared<Sequential>();
    head->push_back(f.linear({50 * h * w, 500, true, LayerRole::Middle}, gen));
    head->push_back(std::make_shared<ReLU>());
    head->push_back(f.linear({500, num_classes, true, LayerRole::Last}, gen));
    classifier = register_module("classifier", head);
  }
  Tensorf forward(const Tensorf& x) override { return (*classifier)((*features)(x)); }
  std::string type_name() const override { return "LeNet5"; }

  std::shared_ptr<Sequential> features, classifier;
};

inline std::shared_ptr<LeNet5> lenet5(Generator& gen, const LayerFactory& f = LayerFactory::fp32(),
                                      int64_t in_channels = 1, int64_t height = 28, int64_t width = 28,
                                      int64_t num_classes = 10) {
  return std::make_shared<LeNet5>(in_channels, height, width, num_classes, f, gen);
}

}  // namespace nn
}  // namespace lowbit
