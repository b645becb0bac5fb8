// Bicubic resizing exactly as MATLAB's imresize(A, scale, 'bicubic') (imresize.m:
// contributions() and cubic()), which SRCNN and VDSR use to make their low-resolution
// inputs and whose output their published bicubic PSNR figures measure.
//   kernel: Keys cubic, a = -0.5; when shrinking (scale < 1) it is stretched to
//     h(x) = scale * cubic(scale * x), width 4 / scale (MATLAB's antialiasing);
//   output pixel x (1-based) sits at u = x / scale + 0.5 * (1 - 1 / scale) in input
//     coordinates; taps left = floor(u - width / 2) + (0 .. ceil(width) + 1), weights
//     normalized to sum 1; indices outside 1..n mirrored with [1..n, n..1] (the edge pixel
//     repeats: symmetric padding);
//   separable: dimension 1 (height) first, then width (MATLAB sorts the dimensions by scale,
//     height first on a tie, and every caller here uses one scale for both).
// Computed in double. MATLAB keeps the class of its input between the passes, so a uint8
// image is rounded after each pass: imresize_uint8 does that, imresize_bicubic does not.
//
// Why not stb_image_resize (libstb-dev, data/stb_image_resize_private.hpp), as issue 30
// asked to check first: its Catmull-Rom filter is the same kernel and its antialiased
// down-scaling the same, but STBIR_EDGE_REFLECT mirrors the low edge without repeating the
// edge pixel (-1 -> 1; MATLAB: -1 -> 0). Measured on Set5 luma (stbir_resize_float_generic,
// CATMULLROM, EDGE_REFLECT, linear; the acceptance test of tests/test_sr_data.cpp prints it):
//   down(hr): max |stb - MATLAB| 10.1 / 9.8 / 7.8 levels (of 255) at x2 / x3 / x4, all in
//     the outer 2 rows and columns (< 0.001 inside: float rounding);
//   up(down(hr)): 32.7 / 44.2 / 56.8 levels at the edge, < 0.04 beyond 3 * scale pixels;
//   Set5 bicubic PSNR, border shaved: 33.6614 / 30.3922 / 28.4207 dB with this kernel,
//     33.6615 / 30.3929 / 28.4220 with stb. Both pass the 0.05 dB acceptance only because the
//     shave hides the border; a network sees the unshaved input, so its edge pixels (and,
//     through a 41-pixel receptive field, 20 pixels inside) would not be MATLAB's. Hence this
//     kernel, ~60 lines. (stb's REFLECT also returns -n for any n < 0, out of bounds when the
//     kernel reaches past a plane of fewer than ~2 * (taps / 2) pixels.)
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../core/error.hpp"
#include "plane.hpp"

namespace lowbit {
namespace data {
namespace sr {

// MATLAB's output length for a scale: ceil(scale * n), computed in double as MATLAB does.
inline int64_t imresize_length(int64_t n, double scale) { return static_cast<int64_t>(std::ceil(scale * double(n))); }

namespace detail {
inline double cubic(double x) {  // MATLAB imresize's cubic(): Keys (1981), a = -0.5
  const double a = std::fabs(x), a2 = a * a, a3 = a2 * a;
  return (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1) + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((1 < a) && (a <= 2));
}

// MATLAB imresize's contributions(): for each output sample, `taps` 0-based input indices
// (mirrored) and weights.
struct Contributions {
  int64_t taps = 0;
  std::vector<int64_t> index;
  std::vector<double> weight;
};

inline Contributions contributions(int64_t in_len, int64_t out_len, double scale) {
  const bool shrink = scale < 1;
  const double width = shrink ? 4.0 / scale : 4.0;
  Contributions c;
  c.taps = static_cast<int64_t>(std::ceil(width)) + 2;
  c.index.resize(size_t(out_len * c.taps));
  c.weight.resize(c.index.size());
  for (int64_t x = 1; x <= out_len; ++x) {
    const double u = double(x) / scale + 0.5 * (1 - 1 / scale);
    const auto left = static_cast<int64_t>(std::floor(u - width / 2));
    double sum = 0;
    for (int64_t k = 0; k < c.taps; ++k) {
      const int64_t j = left + k;  // 1-based input index
      const double w = shrink ? scale * cubic(scale * (u - double(j))) : cubic(u - double(j));
      int64_t m = (j - 1) % (2 * in_len);  // aux = [1..n, n..1], aux(mod(j-1, 2n) + 1)
      if (m < 0) m += 2 * in_len;
      const size_t at = size_t((x - 1) * c.taps + k);
      c.index[at] = m < in_len ? m : 2 * in_len - 1 - m;
      c.weight[at] = w;
      sum += w;
    }
    for (int64_t k = 0; k < c.taps; ++k) c.weight[size_t((x - 1) * c.taps + k)] /= sum;
  }
  return c;
}

// Both passes on a row-major h x w buffer; round_uint8: round and clamp after each pass.
inline std::vector<double> resize2d(const std::vector<double>& in, int64_t h, int64_t w, double scale, int64_t oh,
                                    int64_t ow, bool round_uint8) {
  LOWBIT_CHECK(h > 0 && w > 0 && oh > 0 && ow > 0 && scale > 0 && std::isfinite(scale), "sr::imresize: cannot resize ",
               h, "x", w, " to ", oh, "x", ow, " with scale ", scale, " (expected positive sizes and scale)");
  const Contributions ch = contributions(h, oh, scale), cw = contributions(w, ow, scale);
  std::vector<double> mid(size_t(oh * w)), out(size_t(oh * ow));
#pragma omp parallel for if (oh * w * ch.taps > (1 << 18))
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < w; ++x) {
      double s = 0;
      for (int64_t k = 0; k < ch.taps; ++k)
        s += ch.weight[size_t(y * ch.taps + k)] * in[size_t(ch.index[size_t(y * ch.taps + k)] * w + x)];
      mid[size_t(y * w + x)] = round_uint8 ? to_uint8(s) : s;
    }
#pragma omp parallel for if (oh * ow * cw.taps > (1 << 18))
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      double s = 0;
      for (int64_t k = 0; k < cw.taps; ++k)
        s += cw.weight[size_t(x * cw.taps + k)] * mid[size_t(y * w + cw.index[size_t(x * cw.taps + k)])];
      out[size_t(y * ow + x)] = round_uint8 ? to_uint8(s) : s;
    }
  return out;
}

inline Plane resize_plane(const Plane& in, double scale, int64_t out_h, int64_t out_w, bool round_uint8) {
  const std::vector<double> r = resize2d({in.px.begin(), in.px.end()}, in.height, in.width, scale, out_h, out_w, round_uint8);
  Plane out(out_h, out_w);
  for (size_t i = 0; i < r.size(); ++i) out.px[i] = static_cast<float>(r[i]);
  return out;
}
}  // namespace detail

// MATLAB imresize(in, scale, 'bicubic') with output size out_h x out_w (MATLAB's own is
// imresize_length(n, scale)); float in, float out, double inside, nothing rounded.
inline Plane imresize_bicubic(const Plane& in, double scale, int64_t out_h, int64_t out_w) {
  return detail::resize_plane(in, scale, out_h, out_w, false);
}

// MATLAB imresize on a uint8 plane (values 0..255 in the floats): as imresize_bicubic, but
// rounded to uint8 after each pass, as MATLAB keeps uint8 between the passes and at the end
// (VDSR's generate_train.m resizes the uint8 RGB image this way).
inline Plane imresize_uint8(const Plane& in, double scale, int64_t out_h, int64_t out_w) {
  return detail::resize_plane(in, scale, out_h, out_w, true);
}

}  // namespace sr
}  // namespace data
}  // namespace lowbit
