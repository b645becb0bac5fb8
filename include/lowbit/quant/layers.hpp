// Quantized conv2d and linear layers. Each holds a WeightQuantizer ("wq": latent parameters
// -> the float weight the kernel uses) and an optional ActivationQuantizer ("aq") applied to
// the layer's INPUT; neither the layer nor the model knows which quantizers they are.
//
//   forward(x) = conv2d(aq ? aq(x) : x, wq.weight(), bias)   (conv2d_requantized when aq is pure;
//                the integer kernel of integer_conv.hpp in no-grad passes that ask for it)
//
// Parameter names: "<layer>.wq.latent" (and whatever else the quantizer owns), "<layer>.bias",
// "<layer>.aq.alpha" for PACT. The three views of the weight: wq->named_parameters() (latent),
// weight() (fake-quantized float), codes() (integer codes + scales for export).
#pragma once
#include <memory>
#include <string>

#include "../autograd/profiler.hpp"
#include "../nn/factory.hpp"
#include "../nn/init.hpp"
#include "../ops/conv.hpp"
#include "../ops/linear.hpp"
#include "integer_conv.hpp"
#include "quantizer.hpp"
#include "requant_conv.hpp"

namespace lowbit {
namespace quant {

// Makes the weight quantizer from the freshly initialized float weight.
using WeightQuantizerMaker = std::function<std::shared_ptr<WeightQuantizer>(const Tensorf& init)>;

// What QConv2d and QLinear share: the two quantizers, the bias and the last output shape
// (summary() reads it to count MACs).
class QuantLayer : public nn::Module {
 public:
  std::shared_ptr<WeightQuantizer> wq;
  std::shared_ptr<ActivationQuantizer> aq;  // null: the input is not quantized
  Tensorf bias;

  // The three views.
  Tensorf weight() { return wq->weight(); }
  QuantCodes codes() const { return wq->codes(); }
  int weight_bits() const { return wq->bits(); }
  int activation_bits() const { return aq ? aq->bits() : 32; }
  const Shape& last_output_shape() const { return last_out_; }

 protected:
  void attach(const Tensorf& init, const WeightQuantizerMaker& make_wq, std::shared_ptr<ActivationQuantizer> a,
              int64_t bias_size, int64_t fan_in, Generator& gen) {
    auto q = make_wq(init);
    LOWBIT_CHECK(q != nullptr, type_name(), ": the weight quantizer maker returned null");
    LOWBIT_CHECK(q->weight_shape() == init.shape(), type_name(), ": weight quantizer has shape ",
                 shape_str(q->weight_shape()), ", the layer needs ", shape_str(init.shape()));
    wq = register_module("wq", q);
    // The bias is drawn after the weight, as nn::Conv2d / nn::Linear do, so a quantized model
    // starts from the same latent values as its FP32 twin built from the same seed.
    if (bias_size > 0) bias = register_parameter("bias", nn::fan_in_uniform({bias_size}, fan_in, gen));
    if (a) aq = register_module("aq", a);
  }
  Shape last_out_;
};

class QConv2d : public QuantLayer {
 public:
  QConv2d(const nn::ConvSpec& s, const WeightQuantizerMaker& make_wq, std::shared_ptr<ActivationQuantizer> a,
          Generator& gen)
      : spec_(s), opt_(Conv2dOptions::make(s.stride, s.pad)) {
    LOWBIT_CHECK(s.in > 0 && s.out > 0 && s.kernel > 0 && s.stride > 0 && s.pad >= 0,
                 "QConv2d: invalid arguments in=", s.in, " out=", s.out, " kernel=", s.kernel, " stride=", s.stride,
                 " pad=", s.pad);
    const int64_t fan_in = s.in * s.kernel * s.kernel;
    attach(nn::kaiming_normal({s.out, s.in, s.kernel, s.kernel}, fan_in, gen), make_wq, std::move(a),
           s.bias ? s.out : 0, fan_in, gen);
  }
  Tensorf forward(const Tensorf& x) override {
    if (integer_forward_ && aq) {  // no-grad only; undefined when the integer path does not apply
      ProfileTimer timer(false, active_profile() ? type_name() + ": integer conv (codes)" : std::string());
      Tensorf y = try_conv2d_integer(x, *aq, *wq, bias, opt_);
      if (y.defined()) {
        last_out_ = y.shape();
        return y;
      }
    }
    // A QConv2d is not a leaf module, so the profiler (autograd/profiler.hpp) would see only
    // its input quantizer: it gets two rows of its own, the weight quantizer and the rest.
    OpProfile* const prof = active_profile();
    Tensorf w;
    {
      ProfileTimer timer(false, prof ? type_name() + ": weight quantizer (" + wq->type_name() + ")" : std::string());
      w = wq->weight();
    }
    ProfileTimer timer(false, prof ? type_name() + ": input quantizer + conv" : std::string());
    OpProfile nested;  // the input quantizer's own row would count its time twice
    std::unique_ptr<ProfileScope> hide = prof ? std::make_unique<ProfileScope>(nested) : nullptr;
    // A pure activation quantizer is applied again in the backward rather than its output
    // kept: same gradients, one activation-sized tensor less per layer (requant_conv.hpp).
    Tensorf y = aq && aq->pure() ? conv2d_requantized(x, aq, w, bias, opt_) : conv2d(aq ? (*aq)(x) : x, w, bias, opt_);
    last_out_ = y.shape();
    return y;
  }
  std::string type_name() const override { return "QConv2d"; }
  const nn::ConvSpec& spec() const { return spec_; }
  // While on, no-grad forwards convolve the integer codes of aq(x) and the weight when both
  // are on uniform grids (quant/integer_conv.hpp); same values up to float rounding. Off by
  // default; state batch-norm's discrete pass turns it on (quant/slb/sbn.hpp).
  void set_integer_forward(bool on) { integer_forward_ = on; }
  bool integer_forward() const { return integer_forward_; }

 private:
  nn::ConvSpec spec_;
  Conv2dOptions opt_;
  bool integer_forward_ = false;
};

class QLinear : public QuantLayer {
 public:
  QLinear(const nn::LinearSpec& s, const WeightQuantizerMaker& make_wq, std::shared_ptr<ActivationQuantizer> a,
          Generator& gen)
      : spec_(s) {
    LOWBIT_CHECK(s.in > 0 && s.out > 0, "QLinear: invalid sizes in=", s.in, " out=", s.out);
    attach(nn::fan_in_uniform({s.out, s.in}, s.in, gen), make_wq, std::move(a), s.bias ? s.out : 0, s.in, gen);
  }
  Tensorf forward(const Tensorf& x) override {
    Tensorf y = linear(aq ? (*aq)(x) : x, wq->weight(), bias);
    last_out_ = y.shape();
    return y;
  }
  std::string type_name() const override { return "QLinear"; }
  const nn::LinearSpec& spec() const { return spec_; }

 private:
  nn::LinearSpec spec_;
};

}  // namespace quant
}  // namespace lowbit
