// Binary 2-D convolution for inference of 1-bit x 1-bit layers (no autograd): weights in
// {-1, +1}, activations in {0, 1} (DoReFa's 1-bit activation) or {-1, +1} (sign), each packed
// one bit per input channel, 64 channels per word, and multiplied by AND + popcount.
//
// With a bit b = 1 for a = 1 and a weight bit v = 1 for w = +1, per pair of words
//   sum a w = popcount(b & v) - popcount(b & ~v) = 2 popcount(b & v) - popcount(b)   (a in {0,1})
// and for a = 2 b - 1 in {-1, +1}
//   sum a w = 2 (2 popcount(b & v) - popcount(b)) - sum w
// over the taps that lie inside the image: the zero padding of a float convolution contributes
// nothing, so a {-1,+1} tap outside the image is not a -1 (tap_sum below removes those). Both
// are exact integers: y equals the float convolution of the fake-quantized tensors, before the
// scales (the weight's alpha or E|w|, the activation's step), which the caller applies.
//
//   pack_binary_activations   NCHW floats (bit = x > 0) -> zero-padded [N][Hp][Wp][words]
//   pack_binary_weights       [O][C][KH][KW] floats (bit = w > 0) -> quads of channels
//                             (pack_binary_weights_by: from any predicate, e.g. export codes)
//   binary_conv2d_forward     the packed kernel: any stride and padding >= 0
//   binary_conv2d_reference   its twin on the float tensors, loop by loop (tests compare them)
//
// The kernel is an implicit GEMM over output pixels x output channels: for one kernel row ky
// the KW taps of an output pixel are KW consecutive padded pixels, so its words are one
// contiguous run of KW * words in the activations, whatever the stride, and in the weights,
// which keep 4 output channels' words side by side (the "quads" layout). A tile is 4 pixels x 8
// channels. With AVX-512 VPOPCNTDQ (Ice Lake, Zen 4) two quads fill a 512-bit register, a
// pixel's word is broadcast against it and VPOPCNTQ counts the 8 channels' words in one
// instruction (tile_vpopcnt). With AVX2 a pixel's word is broadcast against a quad's 4 words
// and counted by nibble lookups (tile_avx2). The portable tile is 4 x 4 scalar AND + POPCNT over
// one quad (one instruction with -mpopcnt, in -march=native; without it the compiler's builtin
// counts in software). docs/performance.md has the measurements.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512VPOPCNTDQ__)
#define LOWBIT_BINARY_VPOPCNT 1  // this header only; -march=native on Ice Lake, Zen 4 and later
#endif

#include "../core/error.hpp"
#include "conv.hpp"

namespace lowbit {
namespace kernels {

enum class BinaryActs { ZeroOne, PlusMinus };  // DoReFa's {0, 1}; sign activations {-1, +1}

struct BinaryActivations {
  int64_t N = 0, Hp = 0, Wp = 0, words = 0;  // padded height and width; 64-bit words per pixel
  std::vector<uint64_t> bits;                // [N][Hp][Wp][words]; padding and spare bits 0
};

struct BinaryWeights {
  int64_t O = 0, C = 0, KH = 0, KW = 0, words = 0;
  // [ceil(O/4)][KH][KW * words][4]: bit 1 where w > 0; the words of 4 output channels side by
  // side (the AVX2 tile loads them as one vector; channels past O are 0).
  std::vector<uint64_t> quads;
  std::vector<int32_t> tap_sum;  // [O][KH * KW]: sum over channels of w in {-1, +1}
};

// Which tile binary_conv2d_forward runs: the best this build has (AVX-512 VPOPCNTDQ, else AVX2,
// else portable), one by name (the tests check each built one against the reference, the
// benchmarks time them side by side), or the portable one (scalar popcount), always built.
enum class BinaryKernel { Best, Vpopcnt, Avx2, Portable };

inline const char* binary_kernel_name(BinaryKernel k) {
  switch (k) {
    case BinaryKernel::Best: return "best";
    case BinaryKernel::Vpopcnt: return "vpopcnt";
    case BinaryKernel::Avx2: return "avx2";
    default: return "portable";
  }
}

// The tiles compiled into this build, fastest first (Best is the first of them).
inline std::vector<BinaryKernel> binary_kernels_built() {
  std::vector<BinaryKernel> out;
#if defined(LOWBIT_BINARY_VPOPCNT)
  out.push_back(BinaryKernel::Vpopcnt);
#endif
#if defined(__AVX2__)
  out.push_back(BinaryKernel::Avx2);
#endif
  out.push_back(BinaryKernel::Portable);
  return out;
}

inline int64_t binary_words(int64_t channels) { return (channels + 63) / 64; }

// The packing loop, for any source: channel_bits(n, c) gives the bit of each element
// i = h W + w of channel c of image n, as a callable bit(i) made once per channel (the float
// input here, the threshold epilogue in binary_threshold.hpp). `who` names the caller.
template <class ChannelBits>
void pack_binary_by(const ConvShape& s, BinaryActivations& out, const char* who, ChannelBits channel_bits) {
  LOWBIT_CHECK(s.PH >= 0 && s.PW >= 0, who, ": padding must be >= 0, got ", s.PH, " x ", s.PW);
  out.N = s.N, out.Hp = s.H + 2 * s.PH, out.Wp = s.W + 2 * s.PW, out.words = binary_words(s.C);
  const int64_t image = out.Hp * out.Wp * out.words;
  out.bits.assign(static_cast<size_t>(s.N * image), 0);
#pragma omp parallel for schedule(static) if (s.N > 1 && s.N * s.C * s.H * s.W > (1 << 16))
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < s.C; ++c) {
      const auto bit = channel_bits(n, c);
      const int shift = static_cast<int>(c % 64);
      uint64_t* dst = out.bits.data() + n * image + c / 64;
      for (int64_t h = 0; h < s.H; ++h) {
        uint64_t* row = dst + ((h + s.PH) * out.Wp + s.PW) * out.words;
        // Branch-free: half the activations are positive, and a branch on each mispredicts
        // half the time (it made packing 4x slower than the binary convolution itself).
        for (int64_t w = 0; w < s.W; ++w) row[w * out.words] |= uint64_t(bit(h * s.W + w)) << shift;
      }
    }
}

// x: NCHW floats; the bit is x > 0.
inline void pack_binary_activations(const ConvShape& s, const float* x, BinaryActivations& out) {
  const int64_t plane = s.H * s.W;
  pack_binary_by(s, out, "binary_conv2d", [x, plane, C = s.C](int64_t n, int64_t c) {
    const float* p = x + (n * C + c) * plane;
    return [p](int64_t i) { return p[i] > 0; };
  });
}

// plus(o, c, t): whether weight [o][c][tap t = ky * KW + kx] is +1 (else -1). For packing from
// something other than a float tensor (quant/binary_weights.hpp packs export codes).
template <class Plus>
BinaryWeights pack_binary_weights_by(const ConvShape& s, Plus plus) {
  BinaryWeights out;
  out.O = s.O, out.C = s.C, out.KH = s.KH, out.KW = s.KW, out.words = binary_words(s.C);
  const int64_t taps = s.KH * s.KW;
  const int64_t run = s.KW * out.words;
  out.quads.assign(static_cast<size_t>((s.O + 3) / 4 * s.KH * run * 4), 0);
  out.tap_sum.assign(static_cast<size_t>(s.O * taps), 0);
  for (int64_t o = 0; o < s.O; ++o)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t t = 0; t < taps; ++t) {
        const bool p = plus(o, c, t);
        const int64_t q = (t % s.KW) * out.words + c / 64;  // the word within kernel row t / KW
        if (p) out.quads[static_cast<size_t>((((o / 4) * s.KH + t / s.KW) * run + q) * 4 + o % 4)] |= uint64_t(1) << (c % 64);
        out.tap_sum[static_cast<size_t>(o * taps + t)] += p ? 1 : -1;
      }
  return out;
}

// w: [O][C][KH][KW] floats; the bit is w > 0.
inline BinaryWeights pack_binary_weights(const ConvShape& s, const float* w) {
  const int64_t taps = s.KH * s.KW;
  return pack_binary_weights_by(s, [&](int64_t o, int64_t c, int64_t t) { return w[(o * s.C + c) * taps + t] > 0; });
}

namespace binary_detail {

inline int popcount(uint64_t v) { return __builtin_popcountll(v); }

// counts[j][i] = sum over the KH runs of popcount(a & w) for pixels ox0 + j and channels o0 + i
// (o0 a multiple of 4, OB <= 4: one quad of channels).
template <int PB, int OB>
inline void tile(const uint64_t* img, const uint64_t* quads, const ConvShape& s, int64_t Wp, int64_t words,
                 int64_t oy, int64_t ox0, int64_t o0, int32_t (&counts)[4][8]) {
  const int64_t run = s.KW * words;
  uint32_t acc[PB][OB] = {};
  for (int64_t ky = 0; ky < s.KH; ++ky) {
    const uint64_t* a[PB];
    for (int j = 0; j < PB; ++j) a[j] = img + ((oy * s.SH + ky) * Wp + (ox0 + j) * s.SW) * words;
    const uint64_t* b = quads + ((o0 / 4) * s.KH + ky) * run * 4;
    for (int64_t q = 0; q < run; ++q) {
      uint64_t av[PB];
      for (int j = 0; j < PB; ++j) av[j] = a[j][q];
      for (int i = 0; i < OB; ++i) {
        const uint64_t bv = b[4 * q + i];
        for (int j = 0; j < PB; ++j) acc[j][i] += static_cast<uint32_t>(popcount(av[j] & bv));
      }
    }
  }
  for (int j = 0; j < PB; ++j)
    for (int i = 0; i < OB; ++i) counts[j][i] = static_cast<int32_t>(acc[j][i]);
}

#if defined(__AVX2__)
// The same counts for PB pixels x 4 NQ channels with AVX2: a pixel's word is broadcast and
// ANDed with 4 channels' words at once, and the bytes are counted by nibble lookups (vpshufb)
// into byte sums, which vpsadbw adds into 64-bit lanes every 31 steps (31 x 8 < 256).
template <int PB, int NQ>
inline void tile_avx2(const uint64_t* img, const uint64_t* quads, const ConvShape& s, int64_t Wp, int64_t words,
                      int64_t oy, int64_t ox0, int64_t o0, int32_t (&counts)[4][8]) {
  const int64_t run = s.KW * words;
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2,
                                       3, 2, 3, 3, 4);
  const __m256i nibble = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
  __m256i bytes[PB][NQ], sums[PB][NQ];
  for (int j = 0; j < PB; ++j)
    for (int i = 0; i < NQ; ++i) bytes[j][i] = sums[j][i] = zero;
  int steps = 0;
  for (int64_t ky = 0; ky < s.KH; ++ky) {
    const uint64_t* a[PB];
    const uint64_t* b[NQ];
    for (int j = 0; j < PB; ++j) a[j] = img + ((oy * s.SH + ky) * Wp + (ox0 + j) * s.SW) * words;
    for (int i = 0; i < NQ; ++i) b[i] = quads + ((o0 / 4 + i) * s.KH + ky) * run * 4;
    for (int64_t q = 0; q < run; ++q) {
      __m256i wv[NQ];
      for (int i = 0; i < NQ; ++i) wv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i] + 4 * q));
      for (int j = 0; j < PB; ++j) {
        const __m256i av = _mm256_set1_epi64x(static_cast<long long>(a[j][q]));
        for (int i = 0; i < NQ; ++i) {
          const __m256i x = _mm256_and_si256(av, wv[i]);
          const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, nibble));
          const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble));
          bytes[j][i] = _mm256_add_epi8(bytes[j][i], _mm256_add_epi8(lo, hi));
        }
      }
      if (++steps == 31) {
        for (int j = 0; j < PB; ++j)
          for (int i = 0; i < NQ; ++i)
            sums[j][i] = _mm256_add_epi64(sums[j][i], _mm256_sad_epu8(bytes[j][i], zero)), bytes[j][i] = zero;
        steps = 0;
      }
    }
  }
  for (int j = 0; j < PB; ++j)
    for (int i = 0; i < NQ; ++i) {
      alignas(32) int64_t lanes[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(sums[j][i], _mm256_sad_epu8(bytes[j][i], zero)));
      for (int l = 0; l < 4; ++l) counts[j][4 * i + l] = static_cast<int32_t>(lanes[l]);
    }
}
#endif

#if defined(__AVX2__)
// The epilogue of a full 4-pixel x 8-channel tile of {0,1} activations, in registers:
// r[j] = the 8 channels' counts of pixel j; y = 2 count - ones per pixel, transposed (4 x 8
// -> 8 x 4) to one 4-pixel store per channel row of y (NCHW, rows `stride` apart). The
// scalar epilogue (32 loads, a branch and a scattered store each) cost as much as the
// counting itself on 128-channel layers (docs/performance.md).
inline void store_4x8(const __m256i (&r)[4], const int32_t (&ones)[4], int32_t* y, int64_t stride) {
  __m256i v[4];
  for (int j = 0; j < 4; ++j) v[j] = _mm256_sub_epi32(_mm256_add_epi32(r[j], r[j]), _mm256_set1_epi32(ones[j]));
  const __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
  const __m256i u[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2), _mm256_unpacklo_epi64(t1, t3),
                        _mm256_unpackhi_epi64(t1, t3)};  // u[i]: channel i (low half), i + 4 (high)
  for (int i = 0; i < 4; ++i) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i * stride), _mm256_castsi256_si128(u[i]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + (i + 4) * stride), _mm256_extracti128_si256(u[i], 1));
  }
}
#endif

#if defined(LOWBIT_BINARY_VPOPCNT)
// acc[j] lane i = the count for pixel ox0 + j and channel o0 + i (8 channels: two quads).
template <int PB>
inline void vpopcnt8(const uint64_t* img, const uint64_t* quads, const ConvShape& s, int64_t Wp, int64_t words,
                     int64_t oy, int64_t ox0, int64_t o0, __m512i (&acc)[PB]) {
  const int64_t run = s.KW * words;
  const uint64_t* a[PB];
  for (int j = 0; j < PB; ++j) acc[j] = _mm512_setzero_si512();
  for (int64_t ky = 0; ky < s.KH; ++ky) {
    for (int j = 0; j < PB; ++j) a[j] = img + ((oy * s.SH + ky) * Wp + (ox0 + j) * s.SW) * words;
    const uint64_t* b0 = quads + ((o0 / 4) * s.KH + ky) * run * 4;
    const uint64_t* b1 = quads + ((o0 / 4 + 1) * s.KH + ky) * run * 4;
    for (int64_t q = 0; q < run; ++q) {
      const __m512i wv = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 4 * q))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 4 * q)), 1);
      for (int j = 0; j < PB; ++j) {
        const __m512i x = _mm512_and_si512(wv, _mm512_set1_epi64(static_cast<long long>(a[j][q])));
        acc[j] = _mm512_add_epi64(acc[j], _mm512_popcnt_epi64(x));
      }
    }
  }
}

// A full 4-pixel x 8-channel tile of {0,1} activations straight into y (NCHW, channel rows
// `stride` apart) from the VPOPCNTQ sums, without the scalar epilogue (store_4x8 above).
inline void vpopcnt_store_4x8(const uint64_t* img, const uint64_t* quads, const ConvShape& s, int64_t Wp,
                              int64_t words, int64_t oy, int64_t ox0, int64_t o0, const int32_t (&ones)[4],
                              int32_t* y, int64_t stride) {
  __m512i acc[4];
  vpopcnt8<4>(img, quads, s, Wp, words, oy, ox0, o0, acc);
  __m256i r[4];
  for (int j = 0; j < 4; ++j) r[j] = _mm512_cvtepi64_epi32(acc[j]);
  store_4x8(r, ones, y, stride);
}

// The same counts for PB pixels x 8 channels (two quads, o0 a multiple of 8) with AVX-512:
// the quads' 4 words each fill the halves of one register, each pixel's word is broadcast,
// ANDed and counted per 64-bit lane by VPOPCNTQ into 64-bit sums (no overflow to manage).
// With OB <= 4 only the first quad exists (the quads end there): the 256-bit forms.
template <int PB, int OB>
inline void tile_vpopcnt(const uint64_t* img, const uint64_t* quads, const ConvShape& s, int64_t Wp, int64_t words,
                         int64_t oy, int64_t ox0, int64_t o0, int32_t (&counts)[4][8]) {
  if constexpr (OB > 4) {
    __m512i acc[PB];
    vpopcnt8<PB>(img, quads, s, Wp, words, oy, ox0, o0, acc);
    for (int j = 0; j < PB; ++j)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(counts[j]), _mm512_cvtepi64_epi32(acc[j]));
  } else {
    const int64_t run = s.KW * words;
    const uint64_t* a[PB];
    __m256i acc[PB];
    for (int j = 0; j < PB; ++j) acc[j] = _mm256_setzero_si256();
    for (int64_t ky = 0; ky < s.KH; ++ky) {
      for (int j = 0; j < PB; ++j) a[j] = img + ((oy * s.SH + ky) * Wp + (ox0 + j) * s.SW) * words;
      const uint64_t* b0 = quads + ((o0 / 4) * s.KH + ky) * run * 4;
      for (int64_t q = 0; q < run; ++q) {
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 4 * q));
        for (int j = 0; j < PB; ++j) {
          const __m256i x = _mm256_and_si256(wv, _mm256_set1_epi64x(static_cast<long long>(a[j][q])));
          acc[j] = _mm256_add_epi64(acc[j], _mm256_popcnt_epi64(x));
        }
      }
    }
    for (int j = 0; j < PB; ++j)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(counts[j]), _mm256_cvtepi64_epi32(acc[j]));
  }
}
#endif

template <int PB>
inline void tile_o(int ob, const uint64_t* img, const uint64_t* quads, const ConvShape& s, int64_t Wp, int64_t words,
                   int64_t oy, int64_t ox0, int64_t o0, int32_t (&counts)[4][8]) {
  switch (ob) {
    case 4: return tile<PB, 4>(img, quads, s, Wp, words, oy, ox0, o0, counts);
    case 3: return tile<PB, 3>(img, quads, s, Wp, words, oy, ox0, o0, counts);
    case 2: return tile<PB, 2>(img, quads, s, Wp, words, oy, ox0, o0, counts);
    default: return tile<PB, 1>(img, quads, s, Wp, words, oy, ox0, o0, counts);
  }
}

// counts[j][i] for pb pixels from ox0 and ob <= 8 channels from o0 (a multiple of 8).
template <int PB>
inline void tile_any(BinaryKernel kernel, int ob, const uint64_t* img, const BinaryWeights& w, const ConvShape& s,
                     int64_t Wp, int64_t words, int64_t oy, int64_t ox0, int64_t o0, int32_t (&counts)[4][8]) {
  // The quads are padded to 4 channels: ob 1..4 is one quad, 5..8 two.
#if defined(LOWBIT_BINARY_VPOPCNT)
  if (kernel == BinaryKernel::Vpopcnt) {
    if (ob > 4) return tile_vpopcnt<PB, 8>(img, w.quads.data(), s, Wp, words, oy, ox0, o0, counts);
    return tile_vpopcnt<PB, 4>(img, w.quads.data(), s, Wp, words, oy, ox0, o0, counts);
  }
#endif
#if defined(__AVX2__)
  if (kernel == BinaryKernel::Avx2) {
    if (ob > 4) return tile_avx2<PB, 2>(img, w.quads.data(), s, Wp, words, oy, ox0, o0, counts);
    return tile_avx2<PB, 1>(img, w.quads.data(), s, Wp, words, oy, ox0, o0, counts);
  }
#endif
  (void)kernel;
  int32_t part[4][8];
  tile_o<PB>(std::min(ob, 4), img, w.quads.data(), s, Wp, words, oy, ox0, o0, counts);
  if (ob <= 4) return;
  tile_o<PB>(ob - 4, img, w.quads.data(), s, Wp, words, oy, ox0, o0 + 4, part);
  for (int j = 0; j < PB; ++j)
    for (int i = 0; i < ob - 4; ++i) counts[j][4 + i] = part[j][i];
}

}  // namespace binary_detail

// y [N, O, OH, OW] (NCHW) = sum over taps inside the image and channels of a * w, exactly.
inline void binary_conv2d_forward(const ConvShape& s, const BinaryActivations& x, const BinaryWeights& w,
                                  BinaryActs acts, int32_t* y, BinaryKernel kernel = BinaryKernel::Best) {
  LOWBIT_CHECK(x.N == s.N && x.Hp == s.H + 2 * s.PH && x.Wp == s.W + 2 * s.PW && x.words == binary_words(s.C) &&
                   w.O == s.O && w.C == s.C && w.KH == s.KH && w.KW == s.KW,
               "binary_conv2d_forward: packed tensors do not match the shape (pack them with this ConvShape)");
  const std::vector<BinaryKernel> built = binary_kernels_built();
  if (kernel == BinaryKernel::Best) kernel = built.front();
  LOWBIT_CHECK(std::find(built.begin(), built.end(), kernel) != built.end(), "binary_conv2d_forward: the ",
               binary_kernel_name(kernel), " tile is not in this build (compiled for another CPU; use BinaryKernel::Best)");
  const int64_t OH = s.OH(), OW = s.OW(), taps = s.KH * s.KW, words = x.words, image = x.Hp * x.Wp * words;
  // Per channel, the sum of w over all taps (an output pixel whose taps are all inside).
  std::vector<int32_t> full(static_cast<size_t>(s.O), 0);
  for (int64_t o = 0; o < s.O; ++o)
    for (int64_t t = 0; t < taps; ++t) full[static_cast<size_t>(o)] += w.tap_sum[static_cast<size_t>(o * taps + t)];
#pragma omp parallel for collapse(2) schedule(static) if (s.N * OH * OW * s.O * taps * words > (1 << 16))
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oy = 0; oy < OH; ++oy) {
      const uint64_t* img = x.bits.data() + n * image;
      int32_t* yrow = y + n * s.O * OH * OW + oy * OW;
      for (int64_t ox0 = 0; ox0 < OW; ox0 += 4) {
        const int pb = static_cast<int>(std::min<int64_t>(4, OW - ox0));
        int32_t ones[4] = {};  // popcount(b) over each pixel's taps
        for (int j = 0; j < pb; ++j)
          for (int64_t ky = 0; ky < s.KH; ++ky) {
            const uint64_t* a = img + ((oy * s.SH + ky) * x.Wp + (ox0 + j) * s.SW) * words;
            for (int64_t q = 0; q < s.KW * words; ++q) ones[j] += binary_detail::popcount(a[q]);
          }
        for (int64_t o0 = 0; o0 < s.O; o0 += 8) {
          const int ob = static_cast<int>(std::min<int64_t>(8, s.O - o0));
#if defined(LOWBIT_BINARY_VPOPCNT)
          if (kernel == BinaryKernel::Vpopcnt && pb == 4 && ob == 8 && acts == BinaryActs::ZeroOne) {
            binary_detail::vpopcnt_store_4x8(img, w.quads.data(), s, x.Wp, words, oy, ox0, o0, ones,
                                             yrow + o0 * OH * OW + ox0, OH * OW);
            continue;
          }
#endif
#if defined(__AVX2__)
          if (kernel == BinaryKernel::Avx2 && pb == 4 && ob == 8 && acts == BinaryActs::ZeroOne) {
            alignas(32) int32_t counts[4][8];
            binary_detail::tile_avx2<4, 2>(img, w.quads.data(), s, x.Wp, words, oy, ox0, o0, counts);
            __m256i r[4];
            for (int j = 0; j < 4; ++j) r[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(counts[j]));
            binary_detail::store_4x8(r, ones, yrow + o0 * OH * OW + ox0, OH * OW);
            continue;
          }
#endif
          int32_t counts[4][8];
          switch (pb) {
            case 4: binary_detail::tile_any<4>(kernel, ob, img, w, s, x.Wp, words, oy, ox0, o0, counts); break;
            case 3: binary_detail::tile_any<3>(kernel, ob, img, w, s, x.Wp, words, oy, ox0, o0, counts); break;
            case 2: binary_detail::tile_any<2>(kernel, ob, img, w, s, x.Wp, words, oy, ox0, o0, counts); break;
            default: binary_detail::tile_any<1>(kernel, ob, img, w, s, x.Wp, words, oy, ox0, o0, counts);
          }
          for (int j = 0; j < pb; ++j)
            for (int i = 0; i < ob; ++i) {
              const int64_t o = o0 + i, ox = ox0 + j;
              int32_t v = 2 * counts[j][i] - ones[j];
              if (acts == BinaryActs::PlusMinus) {
                int32_t wsum = full[static_cast<size_t>(o)];
                const int64_t iy = oy * s.SH - s.PH, ix = ox * s.SW - s.PW;
                if (iy < 0 || ix < 0 || iy + s.KH > s.H || ix + s.KW > s.W)  // some taps in the padding
                  for (int64_t ky = 0; ky < s.KH; ++ky)
                    for (int64_t kx = 0; kx < s.KW; ++kx)
                      if (iy + ky < 0 || iy + ky >= s.H || ix + kx < 0 || ix + kx >= s.W)
                        wsum -= w.tap_sum[static_cast<size_t>(o * taps + ky * s.KW + kx)];
                v = 2 * v - wsum;
              }
              yrow[o * OH * OW + ox] = v;
            }
        }
      }
    }
}

// The twin: y = conv(x, sign(w)) with x read as {0,1} (ZeroOne: x > 0) or {-1,+1} (PlusMinus),
// zero padding, every product one at a time.
inline void binary_conv2d_reference(const ConvShape& s, const float* x, const float* w, BinaryActs acts,
                                    int32_t* y) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.O; ++o)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          int32_t sum = 0;
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t ky = 0; ky < s.KH; ++ky)
              for (int64_t kx = 0; kx < s.KW; ++kx) {
                const int64_t iy = oy * s.SH - s.PH + ky, ix = ox * s.SW - s.PW + kx;
                if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;  // zero padding
                const float xv = x[((n * s.C + c) * s.H + iy) * s.W + ix];
                const int32_t a = acts == BinaryActs::ZeroOne ? (xv > 0 ? 1 : 0) : (xv > 0 ? 1 : -1);
                sum += a * (w[((o * s.C + c) * s.KH + ky) * s.KW + kx] > 0 ? 1 : -1);
              }
          y[((n * s.O + o) * OH + oy) * OW + ox] = sum;
        }
}

}  // namespace kernels
}  // namespace lowbit
