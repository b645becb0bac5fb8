// Batch-norm and a 1-bit activation folded into one integer comparison per channel, for
// inference through binary layers (issue 31; Larq Compute Engine does the same): a binary
// convolution gives an exact integer y per output (kernels/binary_conv.hpp); the float
// evaluation then scales it, applies batch-norm and the next layer's 1-bit activation
// quantizer, e.g. bit = round(clip(gamma (s y - mean) istd + beta, 0, 1)) for DoReFa. Whatever
// that chain is, if its bit is monotone in y it is y >= t (or y <= t) for one integer t.
//
//   fold_thresholds       finds each channel's t by evaluating the caller's float chain at every
//                         integer y the layer can produce (at most 2 C KH KW + 1 values), so the
//                         folded comparison equals the float evaluation exactly, float rounding
//                         included; a chain that is not monotone there is refused
//   pack_binary_thresholded  the epilogue: int32 accumulators [N, O, H, W] -> the next layer's
//                         packed, zero-padded input (BinaryActivations), no float in between
//   threshold_bits_reference  its twin: the comparison, element by element, as floats 0/1
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "binary_conv.hpp"

namespace lowbit {
namespace kernels {

// One channel's folded activation: the bit for accumulator y.
struct ChannelThreshold {
  enum Kind : int8_t { AtLeast, AtMost, Always, Never };
  Kind kind = Never;
  int32_t t = 0;
  bool bit(int32_t y) const {
    switch (kind) {
      case AtLeast: return y >= t;
      case AtMost: return y <= t;
      case Always: return true;
      default: return false;
    }
  }
};

// bit(o, y): the bit the float evaluation gives channel o for accumulator y, for every y in
// [lo, hi] (the range the layer can produce: |y| <= C KH KW for a binary convolution).
// Throws, naming `who` and the channel, where the bit changes more than once over the range.
template <class Bit>
std::vector<ChannelThreshold> fold_thresholds(int64_t channels, int32_t lo, int32_t hi, Bit bit,
                                              const std::string& who) {
  LOWBIT_CHECK(lo <= hi, who, ": accumulator range [", lo, ", ", hi, "] is empty");
  std::vector<ChannelThreshold> out(static_cast<size_t>(channels));
  for (int64_t o = 0; o < channels; ++o) {
    const bool first = bit(o, lo);
    bool prev = first;
    int changes = 0;
    int32_t at = lo;
    for (int64_t y = int64_t(lo) + 1; y <= hi; ++y) {  // every value: exact, monotonicity proven
      const bool b = bit(o, static_cast<int32_t>(y));
      if (b == prev) continue;
      prev = b, ++changes, at = static_cast<int32_t>(y);
      LOWBIT_CHECK(changes == 1, who, ": channel ", o, "'s activation bit changes more than once over the ",
                   "accumulator range [", lo, ", ", hi, "] (at ", at, "): not a threshold, so it cannot be folded");
    }
    ChannelThreshold& c = out[static_cast<size_t>(o)];
    if (changes == 0) c.kind = first ? ChannelThreshold::Always : ChannelThreshold::Never;
    else if (first) c.kind = ChannelThreshold::AtMost, c.t = at - 1;  // 1 up to at - 1, then 0
    else c.kind = ChannelThreshold::AtLeast, c.t = at;                // 0 below at, then 1
  }
  return out;
}

// s: the NEXT layer's input shape and padding (s.C = the channels of y, s.H x s.W its size).
// y: int32 [N, C, H, W] (NCHW, as binary_conv2d_forward writes it). out: as
// pack_binary_activations would pack the 0/1 floats threshold_bits_reference gives.
inline void pack_binary_thresholded(const ConvShape& s, const int32_t* y, const std::vector<ChannelThreshold>& th,
                                    BinaryActivations& out) {
  LOWBIT_CHECK(static_cast<int64_t>(th.size()) == s.C, "pack_binary_thresholded: ", th.size(),
               " thresholds for ", s.C, " channels");
  // y >= t as t <= y, y <= t as -y >= -t: one comparison per element, no branch in the loop.
  // Always: t below any int32 value; Never: above any.
  std::vector<int64_t> sign(static_cast<size_t>(s.C)), t(static_cast<size_t>(s.C));
  for (size_t c = 0; c < th.size(); ++c) {
    sign[c] = th[c].kind == ChannelThreshold::AtMost ? -1 : 1;
    t[c] = th[c].kind == ChannelThreshold::Always  ? INT64_MIN / 2
           : th[c].kind == ChannelThreshold::Never ? INT64_MAX
                                                   : sign[c] * th[c].t;
  }
  const int64_t plane = s.H * s.W;
  pack_binary_by(s, out, "pack_binary_thresholded", [&, plane, C = s.C](int64_t n, int64_t c) {
    const int32_t* p = y + (n * C + c) * plane;
    return [p, sg = sign[static_cast<size_t>(c)], tc = t[static_cast<size_t>(c)]](int64_t i) { return sg * p[i] >= tc; };
  });
}

// The twin: bits[i] = 1.0f where channel c's threshold passes y[i], else 0.0f (NCHW).
inline void threshold_bits_reference(int64_t N, int64_t C, int64_t HW, const int32_t* y,
                                     const std::vector<ChannelThreshold>& th, float* bits) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t k = (n * C + c) * HW + i;
        bits[k] = th[static_cast<size_t>(c)].bit(y[k]) ? 1.0f : 0.0f;
      }
}

}  // namespace kernels
}  // namespace lowbit
