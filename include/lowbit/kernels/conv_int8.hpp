// Integer 2-D convolution for the discrete forward of a low-bit network (no autograd).
//
// When a layer's input is a k-bit uniform activation, x_q = a / na with integer codes
// a = rint(na clip(x, 0, 1)) in [0, na] (DoReFa Eq. 11, na = 2^k - 1), and its weight lies on a
// symmetric uniform grid, w = s b with integers b in [-127, 127] (SLB's value set, DoReFa
// weights, BWN: quant/integer_conv.hpp derives b and s from the quantizer's codes), then
//
//   y[n, o, p] = (s / na) * sum_{c, kh, kw} b[o, c, kh, kw] a[n, c, p + (kh, kw)] + bias[o]
//
// and the sum is exact in int32: |b a| <= 127 * 255 per term, so any K = C KH KW below
// 66,000 cannot overflow. The float conv of x_q and w computes the same value up to float
// rounding, with a quarter of the multiply-adds per instruction: AVX-512 VNNI's vpdpbusd does
// 64 u8 x s8 products where an FMA does 16 (measured: about 2x faster per layer,
// docs/performance.md). State batch-norm's discrete pass (quant/slb/sbn.hpp) is one such
// forward per training step.
//
//   conv2d_forward_int8            fast path: stride 1, pad <= kernel - 1 (every 3x3 layer but
//                                  the stride-2 transitions), AVX-512 VNNI; int8_conv_supported()
//                                  says whether a shape takes it
//   conv2d_forward_int8_reference  its twin, loop by loop, any shape (tests compare the two)
//
// Layout of the fast path: the "padded grid" of kernels/conv.hpp (see PadGrid there), with
// bytes instead of floats and four input channels interleaved per pixel, [C/4][plane][4]:
// a 64-byte load at grid point q is 16 consecutive grid points x 4 channels, exactly the
// operand vpdpbusd multiplies with 4 weights broadcast as one int32, so every tap of every
// channel quad is again one contiguous load and no im2col is built. The codes are computed
// while the grid is filled (the activation quantizer's float pass is never run).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#endif

#include "../core/error.hpp"
#include "conv.hpp"

namespace lowbit {
namespace kernels {

// The activation code of DoReFa's quantize_k (quant/ste/dorefa.hpp, detail::uniform_code). A NaN
// input gets code 0, as the vector path's max(x, 0) gives (a float conv would spread the NaN).
inline int32_t activation_code(float x, float na) {
  if (!(x > 0.0f)) return 0;
  return static_cast<int32_t>(std::rint(std::min(x, 1.0f) * na));
}

// Largest K = C KH KW whose int32 sums cannot overflow (127 * 255 per term).
constexpr int64_t kInt8MaxK = (int64_t(1) << 31) / (127 * 255) - 1;

// y = (scale / na) * conv(codes(x), b) + bias, loop by loop (b: int8 weights [O, C, KH, KW]).
inline void conv2d_forward_int8_reference(const ConvShape& s, const float* x, int na, const int8_t* b, float scale,
                                          const float* bias, float* y) {
  const int64_t OH = s.OH(), OW = s.OW();
  const float fna = static_cast<float>(na), out_scale = scale / fna;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int32_t acc = 0;
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t ih = oh * s.SH - s.PH + kh, iw = ow * s.SW - s.PW + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += static_cast<int32_t>(b[((o * s.C + c) * s.KH + kh) * s.KW + kw]) *
                       activation_code(x[((n * s.C + c) * s.H + ih) * s.W + iw], fna);
              }
          const float v = static_cast<float>(acc) * out_scale;
          y[((n * s.O + o) * OH + oh) * OW + ow] = bias ? v + bias[o] : v;
        }
}

// True when conv2d_forward_int8 takes this shape on its fast path (otherwise callers use
// the float conv): built with AVX-512 VNNI, stride 1, the padded grid's padding condition,
// codes of at most 8 bits, and K small enough for exact int32 sums.
inline bool int8_conv_supported(const ConvShape& s, int na) {
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
  return s.SH == 1 && s.SW == 1 && s.PH <= s.KH - 1 && s.PW <= s.KW - 1 && na >= 1 && na <= 255 &&
         s.C * s.KH * s.KW <= kInt8MaxK;
#else
  (void)s, (void)na;
  return false;
#endif
}

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
namespace int8 {

constexpr int64_t kMR = 8;   // output channels per micro-tile
constexpr int64_t kPV = 16;  // grid points per vector (16 int32 lanes)

// Geometry of one image's grid (kernels/conv.hpp PadGrid with G = 1), in pixels.
struct Grid {
  int64_t C4, H, W, PH, PW, OH, OW, Ws, plane, Pv;
  explicit Grid(const ConvShape& s)
      : C4((s.C + 3) / 4), H(s.H), W(s.W), PH(s.PH), PW(s.PW), OH(s.OH()), OW(s.OW()), Ws(s.W + s.PW) {
    plane = (H + 2 * PH) * Ws + PW;
    Pv = (OH * Ws + kPV - 1) / kPV * kPV;  // whole vectors
  }
  // Pixels: the last quad's plane plus what the last tile's farthest tap reads past it.
  int64_t buffer_pixels(const ConvShape& s) const { return C4 * plane + Pv + s.KH * Ws + s.KW + kPV; }
};

// Fills the grid of one image: pixel (ih, iw) of quad c4 holds the codes of channels
// 4 c4 .. 4 c4 + 3 in its 4 bytes (0 past C); padding, gaps and the tail are 0 (= code 0).
inline void fill_grid(const ConvShape& s, const Grid& g, const float* xn, float na, uint32_t* buf) {
  std::memset(buf, 0, sizeof(uint32_t) * static_cast<size_t>(g.buffer_pixels(s)));
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), vna = _mm512_set1_ps(na);
  const int64_t HW = s.H * s.W;
  for (int64_t c4 = 0; c4 < g.C4; ++c4) {
    const int64_t nc = std::min<int64_t>(4, s.C - 4 * c4);
    for (int64_t ih = 0; ih < s.H; ++ih) {
      uint32_t* dst = buf + c4 * g.plane + (g.PH + ih) * g.Ws + g.PW;
      const float* src = xn + (4 * c4) * HW + ih * s.W;
      int64_t iw = 0;
      for (; iw + kPV <= s.W; iw += kPV) {
        __m512i packed = _mm512_setzero_si512();
        for (int64_t j = 0; j < nc; ++j) {
          const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_loadu_ps(src + j * HW + iw), zero), one);
          // cvtps rounds to nearest even under the default MXCSR mode, as std::rint.
          const __m512i code = _mm512_cvtps_epi32(_mm512_mul_ps(v, vna));
          packed = _mm512_or_si512(packed, _mm512_slli_epi32(code, static_cast<unsigned>(8 * j)));
        }
        _mm512_storeu_si512(dst + iw, packed);
      }
      for (; iw < s.W; ++iw) {
        uint32_t p = 0;
        for (int64_t j = 0; j < nc; ++j) p |= static_cast<uint32_t>(activation_code(src[j * HW + iw], na)) << (8 * j);
        dst[iw] = p;
      }
    }
  }
}

// Packs b [O, C, KH, KW] into tiles of kMR output channels: for tap t = (c4, kh, kw) the kMR
// int32 words hold b[o, 4 c4 .. 4 c4 + 3, kh, kw] as 4 signed bytes (0 past C or O).
inline std::vector<int32_t> pack_weights(const ConvShape& s, const int8_t* b) {
  const int64_t C4 = (s.C + 3) / 4, T = C4 * s.KH * s.KW, OT = (s.O + kMR - 1) / kMR;
  std::vector<int32_t> wp(static_cast<size_t>(OT * T * kMR), 0);
  for (int64_t o = 0; o < s.O; ++o)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t kh = 0; kh < s.KH; ++kh)
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const int64_t t = ((c / 4) * s.KH + kh) * s.KW + kw;
          const uint32_t byte = static_cast<uint8_t>(b[((o * s.C + c) * s.KH + kh) * s.KW + kw]);
          auto& word = wp[static_cast<size_t>(((o / kMR) * T + t) * kMR + o % kMR)];
          word = static_cast<int32_t>(static_cast<uint32_t>(word) | (byte << (8 * (c % 4))));
        }
  return wp;
}

// acc[r][j] (kMR rows x NV vectors of grid points q0 + 16 j) = sum over taps of the tap's
// weight word for row r times the 16 x 4 codes at q0 + 16 j + off[t]; then
// out[r][q] = acc * out_scale (+ bias[r]) as floats into the image's output grid.
template <int NV>
inline void tile(const uint32_t* buf, const int32_t* wt, const int64_t* off, int64_t T, int64_t q0, int64_t rows,
                 float out_scale, const float* bias, float* yg, int64_t Pv) {
  __m512i acc[kMR][NV];
  for (int r = 0; r < kMR; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_setzero_si512();
  for (int64_t t = 0; t < T; ++t) {
    const uint32_t* p = buf + q0 + off[t];
    __m512i a[NV];
    for (int j = 0; j < NV; ++j) a[j] = _mm512_loadu_si512(p + j * kPV);
    const int32_t* w = wt + t * kMR;
    for (int r = 0; r < kMR; ++r) {
      const __m512i wb = _mm512_set1_epi32(w[r]);
      for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], a[j], wb);
    }
  }
  const __m512 vs = _mm512_set1_ps(out_scale);
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 vb = _mm512_set1_ps(bias ? bias[r] : 0.0f);
    for (int j = 0; j < NV; ++j)
      _mm512_storeu_ps(yg + r * Pv + q0 + j * kPV, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][j]), vs), vb));
  }
}

// Pixel-broadcast tile for 3x3 convs whose output rows are whole 8-pixel tiles and which have
// at least 16 output channels: the integer twin of the float pb3_kernel (sgemm_avx2.hpp).
// Output channels are the vector dimension (16 int32 lanes, each the dot product of 4 input
// channels with vpdpbusd), the 8 pixels of a row segment the broadcast one, so no grid point
// is wasted (the pixel-vector tile above rounds an 8x8 image's 72-point grid up to 80 and
// ran no faster than the float conv there) and the products with zero padding are skipped
// as in pb3_kernel (16% of the work at 8x8). Per tap: 8 broadcasts of 4 channel codes and NV
// weight loads feed 8 NV vpdpbusd. The weights come from pack_weights_pb.
constexpr int64_t kPbPix = 8;   // pixels per tile (one row segment)
constexpr int64_t kPbNW = 32;   // output channels per weight panel (2 vectors)

// Panels of kPbNW output channels (the last narrowed to whole vectors, zero-padded): panel
// o0 starts at o0 * T words and holds, for each tap t = (c4, kh, kw), one word per channel
// with b[o, 4 c4 .. 4 c4 + 3, kh, kw] as 4 signed bytes.
inline std::vector<int32_t> pack_weights_pb(const ConvShape& s, const int8_t* b) {
  const int64_t C4 = (s.C + 3) / 4, T = C4 * s.KH * s.KW, Op = (s.O + kPV - 1) / kPV * kPV;
  std::vector<int32_t> wp(static_cast<size_t>(Op * T), 0);
  for (int64_t o = 0; o < s.O; ++o) {
    const int64_t o0 = o / kPbNW * kPbNW, w = std::min(kPbNW, Op - o0);
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t kh = 0; kh < s.KH; ++kh)
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const int64_t t = ((c / 4) * s.KH + kh) * s.KW + kw;
          const uint32_t byte = static_cast<uint8_t>(b[((o * s.C + c) * s.KH + kh) * s.KW + kw]);
          auto& word = wp[static_cast<size_t>(o0 * T + t * w + (o - o0))];
          word = static_cast<int32_t>(static_cast<uint32_t>(word) | (byte << (8 * (c % 4))));
        }
  }
  return wp;
}

// Tap column KW of pb_tile for pixels [I0, I1); a template so the tile stays in registers.
template <int NV, int KW, int I0, int I1>
[[gnu::always_inline]] inline void pb_tap(__m512i (&acc)[NV][kPbPix], const uint32_t* __restrict x,
                                          const int32_t* __restrict wk) {
  __m512i w[NV];
  for (int v = 0; v < NV; ++v) w[v] = _mm512_loadu_si512(wk + (KW * NV + v) * kPV);
  for (int i = I0; i < I1; ++i) {
    const __m512i a = _mm512_set1_epi32(static_cast<int>(x[KW + i]));
    for (int v = 0; v < NV; ++v) acc[v][i] = _mm512_dpbusd_epi32(acc[v][i], a, w[v]);
  }
}

// Y[c][i] = out_scale * sum + bias[c] for the 8 pixels at grid point X of one output row and
// channels c < mc <= 16 NV (rows of Y ldy apart); kernel rows [kh0, kh1) are the real ones.
template <int NV, bool SkipL, bool SkipR>
inline void pb_tile(const uint32_t* X, int64_t C4, int64_t kh0, int64_t kh1, int64_t plane, int64_t ws,
                    const int32_t* wp, float out_scale, const float* bias, float* Y, int64_t ldy, int64_t mc) {
  __m512i acc[NV][kPbPix];
  for (int v = 0; v < NV; ++v)
    for (int i = 0; i < kPbPix; ++i) acc[v][i] = _mm512_setzero_si512();
  for (int64_t c4 = 0; c4 < C4; ++c4)
    for (int64_t kh = kh0; kh < kh1; ++kh) {
      const uint32_t* x = X + c4 * plane + kh * ws;
      const int32_t* wk = wp + (c4 * 9 + kh * 3) * NV * kPV;
      pb_tap<NV, 0, SkipL ? 1 : 0, kPbPix>(acc, x, wk);
      pb_tap<NV, 1, 0, kPbPix>(acc, x, wk);
      pb_tap<NV, 2, 0, SkipR ? kPbPix - 1 : kPbPix>(acc, x, wk);
    }
  const __m512 vs = _mm512_set1_ps(out_scale);
  for (int v = 0; v < NV && v * kPV < mc; ++v) {
    __m512 r[kPbPix];
    for (int i = 0; i < kPbPix; ++i) r[i] = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[v][i]), vs);
    avx2::pb_store(r, Y + v * kPV * ldy, ldy, std::min<int64_t>(kPV, mc - v * kPV), bias ? bias + v * kPV : nullptr,
                   /*add=*/false);
  }
}

template <int NV>
inline void pb_tile_at(bool skip_l, bool skip_r, const uint32_t* X, int64_t C4, int64_t kh0, int64_t kh1,
                       int64_t plane, int64_t ws, const int32_t* wp, float out_scale, const float* bias, float* Y,
                       int64_t ldy, int64_t mc) {
  if (skip_l && skip_r) pb_tile<NV, true, true>(X, C4, kh0, kh1, plane, ws, wp, out_scale, bias, Y, ldy, mc);
  else if (skip_l) pb_tile<NV, true, false>(X, C4, kh0, kh1, plane, ws, wp, out_scale, bias, Y, ldy, mc);
  else if (skip_r) pb_tile<NV, false, true>(X, C4, kh0, kh1, plane, ws, wp, out_scale, bias, Y, ldy, mc);
  else pb_tile<NV, false, false>(X, C4, kh0, kh1, plane, ws, wp, out_scale, bias, Y, ldy, mc);
}

inline bool use_pb(const ConvShape& s) { return s.KH == 3 && s.KW == 3 && s.OW() % kPbPix == 0 && s.O >= kPV; }

}  // namespace int8
#endif

// y = (scale / na) * conv(codes(x), b) + bias on the fast path; the shape must satisfy
// int8_conv_supported (callers check, and fall back to the float conv otherwise).
inline void conv2d_forward_int8(const ConvShape& s, const float* x, int na, const int8_t* b, float scale,
                                const float* bias, float* y) {
  LOWBIT_CHECK(int8_conv_supported(s, na), "conv2d_forward_int8: shape not supported (stride ", s.SH, "x", s.SW,
               ", pad ", s.PH, "x", s.PW, ", kernel ", s.KH, "x", s.KW, ", na ", na, "); check int8_conv_supported");
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
  using namespace int8;
  const Grid g(s);
  if (use_pb(s)) {
    const std::vector<int32_t> wp = pack_weights_pb(s, b);
    const int64_t C4 = g.C4, T = C4 * 9, P = g.OH * g.OW;
    const float out_scale = scale / static_cast<float>(na);
#pragma omp parallel for schedule(static) if (conv_detail::worth_parallel(s))
    for (int64_t n = 0; n < s.N; ++n) {
      uint32_t* buf = conv_detail::scratch<uint32_t>(0, static_cast<size_t>(g.buffer_pixels(s)));
      fill_grid(s, g, x + n * s.C * s.H * s.W, static_cast<float>(na), buf);
      float* yn = y + n * s.O * P;
      for (int64_t o0 = 0; o0 < s.O; o0 += kPbNW) {
        const int64_t mc = std::min(kPbNW, s.O - o0);
        const int32_t* wpan = wp.data() + o0 * T;
        const float* bo = bias ? bias + o0 : nullptr;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          // As in conv.hpp's conv_grid_pb: the kernel rows and edge pixels that read padding.
          const int64_t kh0 = std::max<int64_t>(0, g.PH - oh), kh1 = std::min<int64_t>(3, g.H + g.PH - oh);
          for (int64_t ow0 = 0; ow0 < g.OW; ow0 += kPbPix) {
            const bool l = ow0 < g.PW, r = ow0 + kPbPix + 1 - g.PW >= g.W;
            const uint32_t* X = buf + oh * g.Ws + ow0;
            float* Y = yn + o0 * P + oh * g.OW + ow0;
            if (mc > kPV) pb_tile_at<2>(l, r, X, C4, kh0, kh1, g.plane, g.Ws, wpan, out_scale, bo, Y, P, mc);
            else pb_tile_at<1>(l, r, X, C4, kh0, kh1, g.plane, g.Ws, wpan, out_scale, bo, Y, P, mc);
          }
        }
      }
    }
    return;
  }
  const std::vector<int32_t> wp = pack_weights(s, b);
  const int64_t T = g.C4 * s.KH * s.KW, OT = (s.O + kMR - 1) / kMR, P = g.OH * g.OW;
  std::vector<int64_t> off(static_cast<size_t>(T));
  for (int64_t c4 = 0; c4 < g.C4; ++c4)
    for (int64_t kh = 0; kh < s.KH; ++kh)
      for (int64_t kw = 0; kw < s.KW; ++kw) off[static_cast<size_t>((c4 * s.KH + kh) * s.KW + kw)] = c4 * g.plane + kh * g.Ws + kw;
  const float out_scale = scale / static_cast<float>(na);
#pragma omp parallel for schedule(static) if (conv_detail::worth_parallel(s))
  for (int64_t n = 0; n < s.N; ++n) {
    uint32_t* buf = conv_detail::scratch<uint32_t>(0, static_cast<size_t>(g.buffer_pixels(s)));
    float* yg = conv_detail::scratch<float>(2, static_cast<size_t>(kMR * g.Pv));
    fill_grid(s, g, x + n * s.C * s.H * s.W, static_cast<float>(na), buf);
    float* yn = y + n * s.O * P;
    for (int64_t ot = 0; ot < OT; ++ot) {
      const int64_t o0 = ot * kMR, rows = std::min(kMR, s.O - o0);
      const int32_t* wt = wp.data() + ot * T * kMR;
      const float* bt = bias ? bias + o0 : nullptr;
      int64_t q0 = 0;  // 48-point tiles, then a 16- or 32-point tail (an 8x8 grid is 72 points)
      for (; q0 + 3 * kPV <= g.Pv; q0 += 3 * kPV) tile<3>(buf, wt, off.data(), T, q0, rows, out_scale, bt, yg, g.Pv);
      if (g.Pv - q0 == 2 * kPV) tile<2>(buf, wt, off.data(), T, q0, rows, out_scale, bt, yg, g.Pv);
      if (g.Pv - q0 == kPV) tile<1>(buf, wt, off.data(), T, q0, rows, out_scale, bt, yg, g.Pv);
      // Grid row oh holds output row oh in its first OW points; the rest are garbage.
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t oh = 0; oh < g.OH; ++oh)
          std::memcpy(yn + (o0 + r) * P + oh * g.OW, yg + r * g.Pv + oh * g.Ws, sizeof(float) * static_cast<size_t>(g.OW));
    }
  }
#else
  (void)x, (void)b, (void)scale, (void)bias, (void)y;
#endif
}

}  // namespace kernels
}  // namespace lowbit
