// The integer forward of a quantized conv: y = conv(aq(x), W) computed on the integer codes
// of both operands (kernels/conv_int8.hpp) instead of their float values.
//
// It applies when
//   * the activation quantizer is a k-bit uniform one, aq(x) = rint(na clip(x, 0, 1)) / na
//     (ActivationQuantizer::uniform_levels() = na > 0: DoReFa), and
//   * the weight's codebook is the symmetric uniform grid levels[c] = (2c - n) / n,
//     n = 2^bits - 1, with at most one scale s: then W = (s / n) b with odd integers
//     b = 2c - n in [-n, n] (SLB's value set V, linspace(-1, 1, 2^q); DoReFa weights; BWN's
//     {-1, +1} with s = mean|W|), b fits int8 for bits <= 7;
//   * the quantizer's codes() are its current weight() (WeightQuantizer::codes_are_weight:
//     not for SLB's continuous W_c in training),
//   * nothing records gradients (the integer path has no backward), and
//   * the shape takes the fast kernel (int8_conv_supported: AVX-512 VNNI, stride 1).
// Otherwise try_conv2d_integer returns an undefined tensor and the caller runs the float conv.
//
// The result equals the float conv of the dequantized operands up to float rounding: the
// integer sum is exact, the float conv rounds at every multiply-add (tests/test_integer_conv.cpp
// bounds the difference). Who uses it: state batch-norm's discrete pass and BN calibration
// (quant/slb/sbn.hpp), which switch it on per layer with QConv2d::set_integer_forward; the
// training forward, evaluation and export keep the float path.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../kernels/conv_int8.hpp"
#include "../ops/conv.hpp"
#include "quantizer.hpp"

namespace lowbit {
namespace quant {

// W = scale * b, b int8, in the weight's own [O, C, KH, KW] order.
struct IntegerWeight {
  std::vector<int8_t> b;
  float scale = 1.0f;
};

// The integer view of codes c (see the file comment); false when the codebook is not the
// symmetric uniform grid (APoT, ALQ's binary bases), has more than one scale, or needs more
// than 7 bits.
inline bool integer_weight(const QuantCodes& c, IntegerWeight& out) {
  if (c.rule != "scaled_codebook" || c.bits < 1 || c.bits > 7 || c.scales.size() > 1) return false;
  const int n = (1 << c.bits) - 1;
  if (c.levels.size() != static_cast<size_t>(n + 1)) return false;
  for (int k = 0; k <= n; ++k)
    if (std::fabs(static_cast<double>(c.levels[static_cast<size_t>(k)]) - static_cast<double>(2 * k - n) / n) > 1e-6)
      return false;
  out.scale = (c.scales.empty() ? 1.0f : c.scales[0]) / static_cast<float>(n);
  out.b.resize(c.codes.size());
  for (size_t i = 0; i < c.codes.size(); ++i) out.b[i] = static_cast<int8_t>(2 * static_cast<int>(c.codes[i]) - n);
  return true;
}

// conv2d(aq(x), wq.weight(), bias, opt) on integer codes, or an undefined tensor when the
// integer path does not apply (the caller then runs the float conv).
inline Tensorf try_conv2d_integer(const Tensorf& x, const ActivationQuantizer& aq, const WeightQuantizer& wq,
                                  const Tensorf& bias, const Conv2dOptions& opt) {
  const int na = aq.uniform_levels();
  if (is_grad_enabled() || na <= 0 || !wq.codes_are_weight() || wq.bits() > 7) return Tensorf();
  const Shape& ws = wq.weight_shape();
  if (x.dim() != 4 || ws.size() != 4 || x.shape()[1] != ws[1]) return Tensorf();  // conv2d reports the error
  kernels::ConvShape s;
  s.N = x.shape()[0], s.C = x.shape()[1], s.H = x.shape()[2], s.W = x.shape()[3];
  s.O = ws[0], s.KH = ws[2], s.KW = ws[3];
  s.SH = opt.stride_h, s.SW = opt.stride_w, s.PH = opt.pad_h, s.PW = opt.pad_w;
  if (!kernels::int8_conv_supported(s, na) || s.H + 2 * s.PH < s.KH || s.W + 2 * s.PW < s.KW) return Tensorf();
  LOWBIT_CHECK(!bias.defined() || bias.shape() == Shape{s.O}, "conv2d_integer: bias ", shape_str(bias.shape()),
               " does not match weight ", shape_str(ws), " (expected [", s.O, "])");
  IntegerWeight w;
  if (!integer_weight(wq.codes(), w)) return Tensorf();
  Tensorf y = Tensorf::empty({s.N, s.O, s.OH(), s.OW()});
  kernels::conv2d_forward_int8(s, x.data(), na, w.b.data(), w.scale, bias.defined() ? bias.data() : nullptr, y.data());
  return y;
}

}  // namespace quant
}  // namespace lowbit
