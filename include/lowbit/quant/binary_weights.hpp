// An exported 1-bit conv weight (quant/codes.hpp) packed for the binary convolution
// (kernels/binary_conv.hpp) from its codes, without the float weight ever being built: the
// first step of running an exported model with low-bit kernels (issue 31).
//
// A 1-bit codebook {-L, +L} (BWN/DoReFa: {-1, +1} with one scale E = mean|W|; SLB's 1-bit
// value set) dequantizes to w = scales[g] * levels[c] = +-(scales[g] * L): the float product
// is the same for both signs, so every weight of output channel o is exactly +-scale[o] with
// scale[o] = scales[g(o)] * L (or L without scales). The kernel counts with the signs and
// the caller multiplies each channel's integer result by scale[o] (and by the activation's
// step). That needs one group per output channel at most: a group that spans two channels
// (or ALQ's strided groups and binary bases) is refused.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../kernels/binary_conv.hpp"
#include "codes.hpp"

namespace lowbit {
namespace quant {

struct PackedBinaryConv {
  kernels::BinaryWeights w;
  std::vector<float> scale;  // per output channel: the weights of channel o are +-scale[o]
};

// q: the weight's codes; s: the convolution (O, C, KH, KW must be q's shape). who names the
// weight in errors.
inline PackedBinaryConv pack_binary_conv(const QuantCodes& q, const kernels::ConvShape& s, const std::string& who) {
  const int64_t K = s.C * s.KH * s.KW;
  LOWBIT_CHECK(q.shape == Shape({s.O, s.C, s.KH, s.KW}), who, ": codes of shape ", shape_str(q.shape),
               ", expected the convolution's [", s.O, ", ", s.C, ", ", s.KH, ", ", s.KW, "]");
  LOWBIT_CHECK(q.bits == 1 && q.rule == "scaled_codebook" && q.levels.size() == 2 && q.levels[1] == -q.levels[0] &&
                   q.levels[1] != 0.f && std::isfinite(q.levels[1]),
               who, ": ", q.bits, "-bit codes with rule '", q.rule,
               "'; the binary convolution needs 1-bit codes of a symmetric codebook {-L, +L} (rule scaled_codebook)");
  LOWBIT_CHECK(static_cast<int64_t>(q.codes.size()) == q.numel(), who, ": ", q.codes.size(), " codes for ", q.numel(),
               " weights");
  for (const uint32_t c : q.codes) LOWBIT_CHECK(c < 2, who, ": a 1-bit code is ", c, ", expected 0 or 1");
  LOWBIT_CHECK(q.scales.empty() || q.group_interleave == 1, who,
               ": strided groups (group_interleave ", q.group_interleave, "); expected one scale per output channel at most");
  PackedBinaryConv out;
  out.scale.resize(static_cast<size_t>(s.O));
  const float L = std::abs(q.levels[1]);
  for (int64_t o = 0; o < s.O; ++o) {
    float sc = L;
    if (!q.scales.empty()) {
      const int64_t g = q.group_of(o * K);
      LOWBIT_CHECK(q.group_of(o * K + K - 1) == g && g < static_cast<int64_t>(q.scales.size()), who,
                   ": a scale group spans output channels (group size ", q.group_size, ", ", K,
                   " weights per channel); expected one scale per output channel at most");
      sc = q.scales[static_cast<size_t>(g)] * L;  // |scales[g] * levels[c]|, the same product as dequantize()
      if (sc < 0) sc = -sc;
    }
    out.scale[static_cast<size_t>(o)] = sc;
  }
  // The signs straight from the codes: weight i is +scale where scales[g] * levels[c] > 0 (a
  // negative scale flips the codebook's sign).
  out.w = kernels::pack_binary_weights_by(s, [&](int64_t o, int64_t c, int64_t t) {
    const int64_t i = o * K + c * s.KH * s.KW + t;
    const bool level_plus = q.levels[q.codes[static_cast<size_t>(i)]] > 0;
    return q.scales.empty() || q.scales[static_cast<size_t>(q.group_of(i))] > 0 ? level_plus : !level_plus;
  });
  return out;
}

}  // namespace quant
}  // namespace lowbit
