// Integer codes + scales: the export view of a quantized weight, and the bit packing the
// export file uses.
//
// A quantized weight tensor W of shape S is stored as
//   codes[i]  in [0, 2^bits)             one per element, row-major over S
//   levels[c] float, c in [0, 2^bits)    the codebook (the quantizer's level set)
//   scales[g] float, one per group       g = i / group_size (empty = no scale, i.e. 1)
// and dequantized ("the dequantization rule", rule = "scaled_codebook") as
//
//   w[i] = levels[codes[i]]                       if scales is empty
//   w[i] = scales[i / group_size] * levels[codes[i]]   otherwise (one float multiply)
//
// Every quantizer computes its fake-quantized forward weight with exactly these float
// operations, so dequantize() reproduces the forward weight bit for bit (tested for each
// quantizer). Why a codebook and not a fixed formula: the level sets differ per method —
// DoReFa: {2c/(2^k-1) - 1}; BWN: {-1, +1} with scale mean|W|; SLB: its discrete value set
// (latent logits [..., 2^q] pick one level by argmax); APoT: the additive powers-of-two set,
// scaled by the learned alpha — and a table lookup is the one rule that covers them all
// bit-exactly. The levels follow from (quantizer, bits) and travel in the export file's
// JSON header; the papers' storage accounting counts the codes at `bits` each and the
// scales at 32 bits each (storage_bits()).
//
// Groups: element i belongs to group g = i / group_size when group_interleave = 1 (every
// method but ALQ). ALQ's pixel-wise conv groups (one per output channel and kernel
// position, spanning the input channels) are strided; with group_interleave = k > 1,
//   g(i) = (i / (group_size k)) k + i % k
// (k = kh kw: the elements of a group are k apart inside one output channel).
//
// ALQ (w = sum_j alpha_{g,j} b_j with k binary bases per group) uses rule "binary_bases":
//   w[i] = sum_{j=0}^{bits-1} scales[g * bits + j] * (2 * bit_j(codes[i]) - 1),  summed
//   in order j = 0, 1, ... in float,
// where the k coordinates of each group are the scales (bits scales per group, stored at
// 32 bits) and bit j of a code is the sign of basis j. The rule name is data, so a new rule
// does not change the file format.
//
// Packing: LSB-first. Code i occupies bits [i*bits, (i+1)*bits) of one bit stream; stream
// bit t is bit (t % 8) of byte t / 8; the last byte is zero-padded. 1..32 bits per code.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.hpp"

namespace lowbit {
namespace quant {

struct QuantCodes {
  Shape shape;                    // the weight's shape
  int bits = 0;                   // bits per code, 1..8 for the baselines (up to 32 packable)
  std::vector<uint32_t> codes;    // numel(shape) codes, row-major
  std::string rule = "scaled_codebook";  // or "binary_bases" (ALQ), see above
  std::vector<float> levels;      // scaled_codebook: 2^bits entries; binary_bases: empty
  std::vector<float> scales;      // per group; empty = no scale (scaled_codebook only)
  int64_t group_size = 0;         // codes per group (numel = one group for the tensor)
  int64_t group_interleave = 1;   // > 1: strided groups (ALQ pixel-wise), see group_of()

  int64_t numel() const { return numel_of(shape); }
  int64_t num_groups() const { return group_size > 0 ? (numel() + group_size - 1) / group_size : 0; }
  // The group of element i (see the file comment).
  int64_t group_of(int64_t i) const {
    if (group_interleave == 1) return i / group_size;
    return (i / (group_size * group_interleave)) * group_interleave + i % group_interleave;
  }
  // Bytes of the packed code stream: ceil(numel * bits / 8).
  int64_t code_bytes() const { return (numel() * bits + 7) / 8; }
  // The papers' accounting, rounded to whole bytes per tensor: packed codes + 32-bit scales.
  int64_t storage_bytes() const { return code_bytes() + 4 * static_cast<int64_t>(scales.size()); }

  // Throws unless the fields are consistent (sizes, code range, rule).
  void validate(const std::string& what) const {
    LOWBIT_CHECK(bits >= 1 && bits <= 32, what, ": bits = ", bits, ", expected 1..32");
    LOWBIT_CHECK(static_cast<int64_t>(codes.size()) == numel(), what, ": ", codes.size(), " codes for shape ",
                 shape_str(shape), ", expected ", numel());
    LOWBIT_CHECK(group_size > 0, what, ": group_size = ", group_size, ", expected > 0");
    LOWBIT_CHECK(group_interleave >= 1 && (group_interleave == 1 || numel() % (group_size * group_interleave) == 0),
                 what, ": group_interleave = ", group_interleave, " with group_size ", group_size, " does not tile ",
                 numel(), " codes");
    const uint64_t limit = bits == 32 ? (uint64_t(1) << 32) : (uint64_t(1) << bits);
    for (size_t i = 0; i < codes.size(); ++i)
      LOWBIT_CHECK(codes[i] < limit, what, ": code ", codes[i], " at index ", i, " does not fit in ", bits, " bits");
    if (rule == "scaled_codebook") {
      LOWBIT_CHECK(bits <= 16 && static_cast<int64_t>(levels.size()) == (int64_t(1) << bits), what, ": rule ",
                   rule, " needs 2^bits = ", (bits <= 16 ? (int64_t(1) << bits) : -1), " levels, got ",
                   levels.size());
      LOWBIT_CHECK(scales.empty() || static_cast<int64_t>(scales.size()) == num_groups(), what, ": ",
                   scales.size(), " scales, expected 0 or one per group (", num_groups(), ")");
    } else if (rule == "binary_bases") {
      LOWBIT_CHECK(static_cast<int64_t>(scales.size()) == num_groups() * bits, what, ": rule binary_bases needs ",
                   num_groups() * bits, " scales (bits per group), got ", scales.size());
    } else {
      lowbit::detail::fail(what, ": unknown dequantization rule '", rule, "' (expected scaled_codebook or binary_bases)");
    }
  }

  // The dequantization rule (see the file comment).
  float value(int64_t i) const {
    const uint32_t c = codes[static_cast<size_t>(i)];
    const int64_t g = group_of(i);
    if (rule == "binary_bases") {
      float w = 0.f;
      for (int j = 0; j < bits; ++j)
        w += scales[static_cast<size_t>(g * bits + j)] * ((c >> j & 1u) ? 1.f : -1.f);
      return w;
    }
    const float l = levels[c];
    return scales.empty() ? l : scales[static_cast<size_t>(g)] * l;
  }
  Tensor<float> dequantize() const {
    validate("QuantCodes::dequantize");
    Tensor<float> w = Tensor<float>::empty(shape);
    for (int64_t i = 0; i < w.numel(); ++i) w.data()[i] = value(i);
    return w;
  }
};

// Packs codes LSB-first at `bits` bits each (see the file comment).
inline std::vector<uint8_t> pack_codes(const std::vector<uint32_t>& codes, int bits) {
  LOWBIT_CHECK(bits >= 1 && bits <= 32, "pack_codes: bits = ", bits, ", expected 1..32");
  const uint64_t limit = uint64_t(1) << bits;
  std::vector<uint8_t> out((codes.size() * static_cast<size_t>(bits) + 7) / 8, 0);
  uint64_t t = 0;  // stream bit position
  for (size_t i = 0; i < codes.size(); ++i) {
    LOWBIT_CHECK(codes[i] < limit, "pack_codes: code ", codes[i], " at index ", i, " does not fit in ", bits, " bits");
    for (int b = 0; b < bits; ++b, ++t)
      if (codes[i] >> b & 1u) out[t / 8] = static_cast<uint8_t>(out[t / 8] | (1u << (t % 8)));
  }
  return out;
}

// Inverse of pack_codes: `count` codes of `bits` bits from `nbytes` bytes.
inline std::vector<uint32_t> unpack_codes(const uint8_t* data, size_t nbytes, int64_t count, int bits) {
  LOWBIT_CHECK(bits >= 1 && bits <= 32, "unpack_codes: bits = ", bits, ", expected 1..32");
  LOWBIT_CHECK(count >= 0, "unpack_codes: count = ", count, ", expected >= 0");
  const uint64_t need = (static_cast<uint64_t>(count) * static_cast<uint64_t>(bits) + 7) / 8;
  LOWBIT_CHECK(nbytes == need, "unpack_codes: ", count, " codes of ", bits, " bits need ", need, " bytes, got ",
               nbytes);
  std::vector<uint32_t> out(static_cast<size_t>(count), 0);
  uint64_t t = 0;
  for (size_t i = 0; i < out.size(); ++i)
    for (int b = 0; b < bits; ++b, ++t)
      if (data[t / 8] >> (t % 8) & 1u) out[i] |= (1u << b);
  return out;
}

}  // namespace quant
}  // namespace lowbit
