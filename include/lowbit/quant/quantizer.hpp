// The quantizer interfaces. A quantized layer (quant/layers.hpp) holds a WeightQuantizer
// and, optionally, an ActivationQuantizer for its input; it never knows which ones.
//
// Three views of every quantized weight (../../docs/quantization.md; the latent vs
// quantized confusion of larq #360/#553 and brevitas #423 is why they are separate calls):
//   1. latent parameters  — the quantizer's own named_parameters(), e.g.
//                           "layer1.0.conv1.wq.latent": what the optimizer updates;
//   2. weight()           — the fake-quantized float weight the conv/linear uses, recorded
//                           for autograd with the quantizer's pseudo-gradient;
//   3. codes()            — integer codes + scales + codebook (quant/codes.hpp) whose
//                           dequantize() equals weight() bit for bit; export writes these.
//
// How the methods fit this shape:
//   * SLB: latent = logits of shape [..., 2^q] (a parameter of a different shape than the
//     weight, which is why the latent is the quantizer's business, not the layer's);
//     weight() = softmax-expectation over the level set (training) or the argmax level
//     (eval); codes() = argmax, levels = the level set. Temperature is quantizer state.
//   * APoT: latent = the float weight plus a learned alpha (two parameters); weight() =
//     alpha * project(normalize(W) / alpha); codes() = level index, levels = the APoT set,
//     scales = {alpha}.
//   * ALQ: latent = per-group binary bases and coordinates; codes() uses the
//     "binary_bases" rule (bits = number of bases, scales = coordinates). Its optimizer
//     reaches the bases through the quantizer found by dynamic_cast over named_modules().
// weight_shape() and bits() are what summaries and model builders need without touching
// the latent representation.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "../autograd/grad_mode.hpp"
#include "../nn/module.hpp"
#include "codes.hpp"

namespace lowbit {
namespace quant {

using nn::Tensorf;

class WeightQuantizer : public nn::Module {
 public:
  // The fake-quantized weight, shape weight_shape(); differentiable w.r.t. the latent
  // parameters through the quantizer's (pseudo-)gradient.
  virtual Tensorf weight() = 0;
  // Integer codes + scales (not differentiable). Only for bits() < 32.
  virtual QuantCodes codes() const = 0;
  // Bits per weight code; 32 means the weight is kept in floating point.
  virtual int bits() const = 0;
  // True when codes() dequantizes to what weight() returns right now, so a no-grad forward
  // may use the codes instead (quant/integer_conv.hpp). Quantizers whose weight() depends on
  // a mode say when it does not (SLB in training: weight() = W_c, codes() = argmax).
  virtual bool codes_are_weight() const { return quantized(); }
  const Shape& weight_shape() const { return shape_; }
  bool quantized() const { return bits() < 32; }

  // What summaries, reports and --init-from ask of any quantizer (virtual, so the framework
  // never casts to a method's type; docs/quantization.md "Extras"):
  // Average bits per weight in the papers' accounting (ALQ: active bases per weight).
  virtual double mean_bits() const { return bits(); }
  // Bytes the weight needs in the papers' accounting: codes at their bits + scales (ALQ adds
  // its per-group bit-width table and counts active bases only). Only for bits() < 32.
  virtual int64_t storage_bytes() const { return codes().storage_bytes(); }
  // Additive power-of-two terms per weight (APoT / PoT levels: a multiply becomes that many
  // shift-adds, APoT Sec. 2.2), 0 for other quantizers. summary.hpp counts FixOPs with it.
  virtual int pot_terms() const { return 0; }
  // The report's weight histogram: {"values": [...], "levels": [...], "xlabel": "..."} (and
  // optional "alpha"), the weights as the quantizer sees them with the levels they are
  // projected onto; null when the quantizer has no such picture.
  virtual nlohmann::json histogram() const { return nullptr; }
  // Starts the quantizer from a trained full-precision weight of shape weight_shape()
  // (--init-from an FP32 run): by default the latent parameter "latent" takes it when it has
  // that shape. Returns false when the quantizer cannot start from a float weight.
  virtual bool load_float_weight(const Tensorf& w) {
    for (auto& [name, t] : own_parameters())
      if (name == "latent" && t.shape() == w.shape()) {
        NoGradGuard no_grad;
        Tensorf(t).copy_(w);
        return true;
      }
    return false;
  }

  // A weight quantizer has no input: layers call weight().
  Tensorf forward(const Tensorf&) override {
    lowbit::detail::fail(type_name(), ": a weight quantizer has no forward(x); call weight()");
  }

 protected:
  explicit WeightQuantizer(Shape shape) : shape_(std::move(shape)) {}
  Shape shape_;
};

// Quantizes a layer's input activations. forward(x) is the fake-quantized input.
class ActivationQuantizer : public nn::Module {
 public:
  virtual int bits() const = 0;
  // True when forward(x) is a function of x and the parameters only (it updates no state),
  // so a layer may quantize x again in its backward instead of keeping the quantized copy
  // (quant/requant_conv.hpp). False by default: only a quantizer that says so is recomputed.
  virtual bool pure() const { return false; }
  // na > 0 when forward(x) = rint(na clip(x, 0, 1)) / na exactly (a k-bit uniform quantizer,
  // na = 2^k - 1), so a layer may convolve the integer codes instead
  // (quant/integer_conv.hpp). 0 by default: the quantizer's output has no such form.
  virtual int uniform_levels() const { return 0; }
};

// The full-precision "quantizer": latent = the weight itself, weight() returns it. Used when
// a layer quantizes its input but not its weight (w_bits = 32, a_bits < 32).
class FullPrecisionWeight : public WeightQuantizer {
 public:
  explicit FullPrecisionWeight(const Tensorf& init) : WeightQuantizer(init.shape()) {
    latent = register_parameter("latent", init);
  }
  Tensorf weight() override { return latent; }
  QuantCodes codes() const override {
    lowbit::detail::fail("FullPrecisionWeight: a 32-bit weight has no integer codes (export stores it as FP32)");
  }
  int bits() const override { return 32; }
  std::string type_name() const override { return "FP32"; }

  Tensorf latent;
};

// An inference-time weight: fixed codes (from an export file), weight() = their
// dequantization, no parameters. quant/export.hpp builds models from these.
class FrozenWeight : public WeightQuantizer {
 public:
  FrozenWeight(Shape shape, int bits) : WeightQuantizer(std::move(shape)), bits_(bits) {
    LOWBIT_CHECK(bits >= 1 && bits < 32, "FrozenWeight: bits = ", bits, ", expected 1..31");
  }
  // Installs the codes; their shape and bits must be the ones this layer was built for.
  void set_codes(const QuantCodes& c, const std::string& who) {
    c.validate(who);
    LOWBIT_CHECK(c.shape == shape_, who, ": stored weight has shape ", shape_str(c.shape), ", the model expects ",
                 shape_str(shape_));
    LOWBIT_CHECK(c.bits == bits_, who, ": stored weight has ", c.bits, " bits, the model expects ", bits_);
    codes_ = c;
    w_ = c.dequantize();
  }
  Tensorf weight() override {
    LOWBIT_CHECK(w_.defined(), "FrozenWeight: no codes loaded (shape ", shape_str(shape_), ", ", bits_,
                 " bits); load a quantized model file first");
    return w_;
  }
  QuantCodes codes() const override {
    LOWBIT_CHECK(w_.defined(), "FrozenWeight: no codes loaded");
    return codes_;
  }
  int bits() const override { return bits_; }
  std::string type_name() const override { return "Frozen"; }

 private:
  int bits_;
  QuantCodes codes_;
  Tensorf w_;
};

}  // namespace quant
}  // namespace lowbit
