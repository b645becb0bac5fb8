// The standard layers: Conv2d, Linear, BatchNorm (2d and 1d), ReLU, MaxPool2d, AvgPool2d,
// Flatten, Sequential. Each is a thin Module around the op of the same name in ops/.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../ops/activation.hpp"
#include "../ops/batch_norm.hpp"
#include "../ops/conv.hpp"
#include "../ops/linear.hpp"
#include "../ops/pool.hpp"
#include "init.hpp"
#include "module.hpp"

namespace lowbit {
namespace nn {

class Conv2d : public Module {
 public:
  // Kaiming-normal weight [out, in, k, k]; bias (if any) as PyTorch's default.
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad, bool bias, Generator& gen)
      : in_(in), out_(out), k_(kernel), opt_(Conv2dOptions::make(stride, pad)) {
    LOWBIT_CHECK(in > 0 && out > 0 && kernel > 0 && stride > 0 && pad >= 0, "Conv2d: invalid arguments in=",
                 in, " out=", out, " kernel=", kernel, " stride=", stride, " pad=", pad);
    weight = register_parameter("weight", kaiming_normal({out, in, kernel, kernel}, in * kernel * kernel, gen));
    if (bias) this->bias = register_parameter("bias", fan_in_uniform({out}, in * kernel * kernel, gen));
  }
  Tensorf forward(const Tensorf& x) override { return conv2d(x, weight, bias, opt_); }
  std::string type_name() const override { return "Conv2d"; }
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  int64_t kernel_size() const { return k_; }
  const Conv2dOptions& options() const { return opt_; }

  Tensorf weight, bias;

 private:
  int64_t in_, out_, k_;
  Conv2dOptions opt_;
};

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen) : in_(in), out_(out) {
    LOWBIT_CHECK(in > 0 && out > 0, "Linear: invalid sizes in=", in, " out=", out);
    weight = register_parameter("weight", fan_in_uniform({out, in}, in, gen));
    if (bias) this->bias = register_parameter("bias", fan_in_uniform({out}, in, gen));
  }
  Tensorf forward(const Tensorf& x) override { return linear(x, weight, bias); }
  std::string type_name() const override { return "Linear"; }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  Tensorf weight, bias;

 private:
  int64_t in_, out_;
};

// Per-channel batch norm for [N, C, H, W] (BatchNorm2d) or [N, C] (BatchNorm1d) inputs:
// gamma = 1, beta = 0, running mean 0 and variance 1, as PyTorch. With fuse_relu it is
// BN followed by ReLU, computed in one pass (ops/batch_norm.hpp); the models use that.
class BatchNorm : public Module {
 public:
  explicit BatchNorm(int64_t channels, bool two_d = true, bool fuse_relu = false, double momentum = 0.1,
                     double eps = 1e-5)
      : two_d_(two_d), relu_(fuse_relu), momentum_(momentum), eps_(eps) {
    LOWBIT_CHECK(channels > 0, "BatchNorm: invalid channel count ", channels);
    weight = register_parameter("weight", Tensorf::ones({channels}));
    bias = register_parameter("bias", Tensorf::zeros({channels}));
    running_mean = register_buffer("running_mean", Tensorf::zeros({channels}));
    running_var = register_buffer("running_var", Tensorf::ones({channels}));
  }
  Tensorf forward(const Tensorf& x) override {
    LOWBIT_CHECK(x.dim() == (two_d_ ? 4 : 2), type_name(), ": expected a ", two_d_ ? "4-d" : "2-d",
                 " input, got ", shape_str(x.shape()));
    return batch_norm(x, weight, bias, running_mean, running_var, {is_training(), momentum_, eps_, relu_, sync_.get()});
  }
  std::string type_name() const override {
    return std::string(two_d_ ? "BatchNorm2d" : "BatchNorm1d") + (relu_ ? "+ReLU" : "");
  }

  // The running-statistics update weight m (running = (1 - m) running + m batch).
  double momentum() const { return momentum_; }
  void set_momentum(double m) {
    LOWBIT_CHECK(m > 0 && m <= 1, type_name(), ": momentum = ", m, ", expected in (0, 1]");
    momentum_ = m;
  }
  // Synchronized batch-norm: training statistics over the shards of every process of `comm`
  // (ops/batch_norm.hpp, docs/distributed.md); null: this process's batch alone (default).
  void set_sync(std::shared_ptr<const dist::Communicator> comm) { sync_ = std::move(comm); }

  Tensorf weight, bias, running_mean, running_var;

 private:
  bool two_d_, relu_;
  double momentum_, eps_;
  std::shared_ptr<const dist::Communicator> sync_;
};

class ReLU : public Module {
 public:
  Tensorf forward(const Tensorf& x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0) : k_(kernel), s_(stride > 0 ? stride : kernel) {}
  Tensorf forward(const Tensorf& x) override { return max_pool2d(x, k_, k_, s_, s_); }
  std::string type_name() const override { return "MaxPool2d"; }
  int64_t kernel() const { return k_; }
  int64_t stride() const { return s_; }

 private:
  int64_t k_, s_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel, int64_t stride = 0) : k_(kernel), s_(stride > 0 ? stride : kernel) {}
  Tensorf forward(const Tensorf& x) override { return avg_pool2d(x, k_, k_, s_, s_); }
  std::string type_name() const override { return "AvgPool2d"; }

 private:
  int64_t k_, s_;
};

class GlobalAvgPool2d : public Module {
 public:
  Tensorf forward(const Tensorf& x) override { return global_avg_pool2d(x); }
  std::string type_name() const override { return "GlobalAvgPool2d"; }
};

class Flatten : public Module {
 public:
  Tensorf forward(const Tensorf& x) override { return flatten(x); }
  std::string type_name() const override { return "Flatten"; }
};

// Runs its children in order; they are named "0", "1", ...
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& layers) {
    for (auto& l : layers) push_back(l);
  }
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    return register_module(std::to_string(children().size()), std::move(m));
  }
  Tensorf forward(const Tensorf& x) override {
    Tensorf h = x;
    for (auto& c : children()) h = (*c.second)(h);
    return h;
  }
  std::string type_name() const override { return "Sequential"; }
  // Runs layers [first, last) as one module `m` from now on (an inference model's fused
  // layers, infer/binary_chain.hpp); m takes the first layer's name. Not for training.
  void fuse(size_t first, size_t last, std::shared_ptr<Module> m) { replace_children(first, last, std::move(m)); }
};

}  // namespace nn
}  // namespace lowbit
