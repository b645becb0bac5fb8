// The quantized convolution of an inference model (issue 31): built from an exported weight's
// codes (quant/export.hpp), never from a float weight, and run by the kernel its bit widths
// allow, chosen once at load:
//
//   binary   1-bit weights (a symmetric codebook {-L, +L}, one scale per output channel at
//            most: BWN, DoReFa, SLB's 1-bit set) x 1-bit {0, 1} activations (DoReFa's
//            uniform quantizer with na = 1): packed along input channels, AND + popcount
//            (kernels/binary_conv.hpp); y = scale[o] * count + bias[o]
//   integer  k-bit weights on the symmetric uniform grid (integer_weight: SLB, DoReFa, BWN) x
//            k-bit uniform activations, stride 1, with AVX-512 VNNI: u8 x s8 dot products
//            (kernels/conv_int8.hpp); y = (s / na) * sum + bias[o]
//   float    everything else, e.g. weight-only layers (the activations are floats, so there
//            is no integer product to take), APoT's and ALQ's codebooks, stride-2 layers
//            without an integer fast path: the FP32 convolution of the dequantized codes, the
//            same computation as the fake-quantized evaluation
//
// reason() says in words why a layer runs what it runs (predict --layers prints it).
//
// Exactness against the fake-quantized evaluation (conv2d of aq(x) and the dequantized
// weight): the binary and integer sums are exact integers, and the float convolution of the
// same operands rounds at every multiply-add, so the two differ by float rounding only
// (relative 1e-6 of the layer's output; tests/test_infer.cpp bounds it), the same
// difference two FP32 kernels with different summation orders have. A value within that
// distance of a rounding boundary of the next activation quantizer can fall on the other side.
//
// Inference only: forward() records no autograd graph.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../autograd/profiler.hpp"
#include "../kernels/binary_conv.hpp"
#include "../kernels/conv_int8.hpp"
#include "../nn/factory.hpp"
#include "../ops/conv.hpp"
#include "../quant/binary_weights.hpp"
#include "../quant/integer_conv.hpp"
#include "../quant/quantizer.hpp"

namespace lowbit {
namespace infer {

using nn::Tensorf;

enum class ConvKernel { None, Binary, Integer, Float };

inline const char* conv_kernel_name(ConvKernel k) {
  switch (k) {
    case ConvKernel::Binary: return "binary";
    case ConvKernel::Integer: return "integer";
    case ConvKernel::Float: return "float";
    default: return "none";
  }
}

namespace detail {
// Why the 1-bit weight codes q of a conv with K = C KH KW weights per output channel cannot
// be packed for the binary kernel; empty when they can (quant::pack_binary_conv's conditions).
inline std::string binary_codes_refusal(const quant::QuantCodes& q, int64_t K) {
  if (q.bits != 1) return std::to_string(q.bits) + "-bit weights";
  if (q.rule != "scaled_codebook" || q.levels.size() != 2 || q.levels[1] != -q.levels[0] || q.levels[1] == 0.f)
    return "the 1-bit codebook is not symmetric {-L, +L}";
  if (q.scales.empty()) return "";
  if (q.group_interleave != 1) return "strided scale groups";
  for (int64_t o = 0; o * K < q.numel(); ++o)
    if (q.group_of(o * K) != q.group_of(o * K + K - 1)) return "a scale group spans output channels";
  return "";
}
}  // namespace detail

// The binary kernel's packed input and counts, kept between calls: allocated per call, the
// pages of these megabytes are faulted in again every time (ResNet-20 1/1 at batch 128: 1,030
// instead of 1,690 images/s), and kept per layer they add up (18 layers: 100 MB). load_model
// gives all layers of a model one (a model runs one forward at a time).
struct BinaryScratch {
  kernels::BinaryActivations packed;
  std::vector<int32_t> counts;
};

class InferConv2d : public nn::Module {
 public:
  std::shared_ptr<quant::ActivationQuantizer> aq;  // null: the input is not quantized
  Tensorf bias;

  // s: the layer; w_bits: the bits its export stores (< 32); a: its activation quantizer, as
  // the method makes it (its parameters, e.g. PACT's alpha, load with the model's tensors).
  InferConv2d(const nn::ConvSpec& s, int w_bits, std::shared_ptr<quant::ActivationQuantizer> a)
      : spec_(s), w_bits_(w_bits), opt_(Conv2dOptions::make(s.stride, s.pad)) {
    LOWBIT_CHECK(s.in > 0 && s.out > 0 && s.kernel > 0 && s.stride > 0 && s.pad >= 0 && w_bits >= 1 && w_bits < 32,
                 "InferConv2d: invalid arguments in=", s.in, " out=", s.out, " kernel=", s.kernel, " stride=", s.stride,
                 " pad=", s.pad, " w_bits=", w_bits);
    if (s.bias) bias = register_parameter("bias", Tensorf::zeros({s.out}), false);
    if (a) aq = register_module("aq", a);
  }

  // Installs the exported codes of this layer's weight and packs them for the kernel chosen.
  void set_codes(const quant::QuantCodes& q, const std::string& who) {
    q.validate(who);
    const Shape want{spec_.out, spec_.in, spec_.kernel, spec_.kernel};
    LOWBIT_CHECK(q.shape == want, who, ": stored weight has shape ", shape_str(q.shape), ", the model expects ",
                 shape_str(want));
    LOWBIT_CHECK(q.bits == w_bits_, who, ": stored weight has ", q.bits, " bits, the model expects ", w_bits_);
    binary_ = {}, int_w_ = {}, float_w_ = Tensorf();
    const int na = aq ? aq->uniform_levels() : 0;
    const kernels::ConvShape s = shape(1, 1, 1);
    const std::string binary_no = detail::binary_codes_refusal(q, spec_.in * spec_.kernel * spec_.kernel);
    if (na == 1 && binary_no.empty()) {
      binary_ = quant::pack_binary_conv(q, s, who);
      kernel_ = ConvKernel::Binary, reason_ = "1-bit weights x 1-bit {0,1} activations: AND + popcount";
      return;
    }
    quant::IntegerWeight iw;
    const bool grid = quant::integer_weight(q, iw);
    if (na > 0 && grid && kernels::int8_conv_supported(s, na)) {
      int_w_ = std::move(iw);
      kernel_ = ConvKernel::Integer, reason_ = std::to_string(q.bits) + "-bit weights x " + std::to_string(aq->bits()) +
                                               "-bit activations: u8 x s8 dot products (VNNI)";
      return;
    }
    float_w_ = q.dequantize();
    kernel_ = ConvKernel::Float;
    if (na <= 0) reason_ = aq ? "float: the activation quantizer is not uniform on [0, 1]" : "float: weight-only layer";
    else if (!grid) reason_ = "float: the weight codebook is not the symmetric uniform grid (" + binary_no + ")";
    else reason_ = "float: no integer fast path for this shape on this CPU (stride " + std::to_string(spec_.stride) + ")";
  }

  Tensorf forward(const Tensorf& x) override {
    LOWBIT_CHECK(kernel_ != ConvKernel::None, "InferConv2d: no codes loaded (", shape_str({spec_.out, spec_.in}),
                 "); load an exported model first");
    LOWBIT_CHECK(x.dim() == 4 && x.shape()[1] == spec_.in, "InferConv2d: input ", shape_str(x.shape()), ", expected [N, ",
                 spec_.in, ", H, W]");
    // Timed as one module, its activation quantizer included (a profile's leaf modules are
    // timed by nn::Module; this one has the quantizer as a child).
    ProfileTimer timer(false, active_profile() ? std::string("InferConv2d/") + conv_kernel_name(kernel_) : std::string());
    if (kernel_ == ConvKernel::Float) {
      NoGradGuard no_grad;
      return conv2d(aq ? aq->forward(x) : x, float_w_, bias, opt_);
    }
    const Tensorf& xc = x;  // tensors are contiguous (core/tensor.hpp)
    const kernels::ConvShape s = shape(xc.shape()[0], xc.shape()[2], xc.shape()[3]);
    LOWBIT_CHECK(s.H + 2 * s.PH >= s.KH && s.W + 2 * s.PW >= s.KW, "InferConv2d: input ", shape_str(x.shape()),
                 " is smaller than the ", s.KH, "x", s.KW, " kernel with padding ", s.PH);
    Tensorf y = Tensorf::empty({s.N, s.O, s.OH(), s.OW()});
    const float* b = bias.defined() ? bias.data() : nullptr;
    if (kernel_ == ConvKernel::Integer) {
      kernels::conv2d_forward_int8(s, xc.data(), aq->uniform_levels(), int_w_.b.data(), int_w_.scale, b, y.data());
      return y;
    }
    BinaryScratch& sc = *scratch_;
    sc.counts.resize(static_cast<size_t>(y.numel()));
    pack_input(xc.data(), s, sc.packed);
    kernels::binary_conv2d_forward(s, sc.packed, binary_.w, kernels::BinaryActs::ZeroOne, sc.counts.data());
    binary_epilogue(sc.counts.data(), s.N, s.OH() * s.OW(), y.data());
    return y;
  }

  // ---- the binary kernel's pieces, for fused runs of binary layers (infer/binary_chain.hpp) ----
  // The input bits of x (NCHW floats of shape s): DoReFa's 1-bit code rint(clip(x, 0, 1)) is 1
  // exactly where x > 0.5 (rint rounds the tie 0.5 to even, 0; NaN gives 0 both ways), a
  // comparison without a branch, unlike kernels::activation_code (tests/test_infer.cpp checks
  // the two on the ties).
  static void pack_input(const float* x, const kernels::ConvShape& s, kernels::BinaryActivations& out) {
    const int64_t plane = s.H * s.W;
    kernels::pack_binary_by(s, out, "InferConv2d", [x, plane, C = s.C](int64_t n, int64_t c) {
      const float* p = x + (n * C + c) * plane;
      return [p](int64_t i) { return input_bit(p[i]); };
    });
  }
  static bool input_bit(float x) { return x > 0.5f; }
  // The float output of count y in channel o; every fused and unfused path computes it here, so
  // both round alike.
  float binary_output(int32_t y, int64_t o) const {
    return static_cast<float>(y) * binary_.scale[static_cast<size_t>(o)] + (bias.defined() ? bias.data()[o] : 0.0f);
  }
  // counts [N, O, plane] -> y [N, O, plane] floats.
  void binary_epilogue(const int32_t* counts, int64_t N, int64_t plane, float* y) const {
    const int64_t O = spec_.out;
#pragma omp parallel for schedule(static) if (N * O * plane > (1 << 16))
    for (int64_t no = 0; no < N * O; ++no)
      for (int64_t i = 0; i < plane; ++i) y[no * plane + i] = binary_output(counts[no * plane + i], no % O);
  }
  const kernels::BinaryWeights& binary_weights() const { return binary_.w; }
  void share_scratch(std::shared_ptr<BinaryScratch> s) { scratch_ = std::move(s); }
  // The layer's shape for an input of N x H x W.
  kernels::ConvShape shape(int64_t N, int64_t H, int64_t W) const {
    kernels::ConvShape s;
    s.N = N, s.C = spec_.in, s.H = H, s.W = W;
    s.O = spec_.out, s.KH = s.KW = spec_.kernel;
    s.SH = s.SW = spec_.stride, s.PH = s.PW = spec_.pad;
    return s;
  }

  std::string type_name() const override { return "InferConv2d"; }
  const nn::ConvSpec& spec() const { return spec_; }
  ConvKernel kernel() const { return kernel_; }
  const std::string& reason() const { return reason_; }
  // Bytes of the weight as this layer holds it (packed bits, int8 or float), for reports.
  int64_t weight_bytes() const {
    switch (kernel_) {
      case ConvKernel::Binary:
        return static_cast<int64_t>(binary_.w.quads.size() * 8 + binary_.w.tap_sum.size() * 4 + binary_.scale.size() * 4);
      case ConvKernel::Integer: return static_cast<int64_t>(int_w_.b.size()) + 4;
      case ConvKernel::Float: return float_w_.numel() * 4;
      default: return 0;
    }
  }

 private:
  nn::ConvSpec spec_;
  int w_bits_;
  Conv2dOptions opt_;
  ConvKernel kernel_ = ConvKernel::None;
  std::string reason_;
  quant::PackedBinaryConv binary_;
  quant::IntegerWeight int_w_;
  Tensorf float_w_;
  std::shared_ptr<BinaryScratch> scratch_ = std::make_shared<BinaryScratch>();
};

}  // namespace infer
}  // namespace lowbit
