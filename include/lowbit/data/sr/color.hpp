// Colour conversion as MATLAB's rgb2ycbcr / ycbcr2rgb (ITU-R BT.601, "studio swing": Y in
// 16..235, Cb and Cr in 16..240), the convention SRCNN and VDSR measure PSNR in. For uint8
// input MATLAB computes imlincomb(T(p,1),R, T(p,2),G, T(p,3),B, offset(p)) in double with
// T = (1/255) * origT and rounds the result to uint8 (half away from zero); we do the same
// operations in the same order, so Y is bit-identical.
#pragma once
#include <cstdint>
#include <string>

#include "../../core/error.hpp"
#include "image.hpp"
#include "plane.hpp"

namespace lowbit {
namespace data {
namespace sr {

namespace detail {
constexpr double kYcc[3][3] = {{65.481, 128.553, 24.966}, {-37.797, -74.203, 112.0}, {112.0, -93.786, -18.214}};
constexpr double kYccOffset[3] = {16.0, 128.0, 128.0};

// MATLAB rgb2ycbcr on uint8 pixels: channel p (0 Y, 1 Cb, 2 Cr) of pixel i, rounded.
inline uint8_t ycc_channel(const Image8& img, int64_t i, int p) {
  const uint8_t* rgb = &img.px[size_t(3 * i)];
  const double t = 1.0 / 255.0;
  return to_uint8(t * kYcc[p][0] * rgb[0] + t * kYcc[p][1] * rgb[1] + t * kYcc[p][2] * rgb[2] + kYccOffset[p]);
}

inline void check_rgb(const Image8& img, const char* who) {
  LOWBIT_CHECK(img.channels == 3 && img.px.size() == size_t(img.height * img.width * 3), who, ": image is ",
               img.width, "x", img.height, "x", img.channels, ", expected an RGB image (3 channels)");
}
}  // namespace detail

// The luma plane SR models are trained and measured on (values 0..255, integers). A grey
// image's plane is its grey values unchanged, as in SRCNN's demo_SR.m (rgb2ycbcr only when
// size(im,3) > 1).
inline Plane luma(const Image8& img) {
  Plane y(img.height, img.width);
  const int64_t n = img.height * img.width;
  if (img.channels == 1) {
    for (int64_t i = 0; i < n; ++i) y.px[size_t(i)] = img.px[size_t(i)];
    return y;
  }
  detail::check_rgb(img, "sr::luma");
  for (int64_t i = 0; i < n; ++i) y.px[size_t(i)] = detail::ycc_channel(img, i, 0);
  return y;
}

struct YCbCr {
  Plane y, cb, cr;
};

// MATLAB rgb2ycbcr on an RGB uint8 image: each channel rounded to uint8, stored as float.
inline YCbCr rgb_to_ycbcr(const Image8& img) {
  detail::check_rgb(img, "sr::rgb_to_ycbcr");
  YCbCr out{Plane(img.height, img.width), Plane(img.height, img.width), Plane(img.height, img.width)};
  Plane* planes[3] = {&out.y, &out.cb, &out.cr};
  for (int64_t i = 0; i < img.height * img.width; ++i)
    for (int p = 0; p < 3; ++p) planes[p]->px[size_t(i)] = detail::ycc_channel(img, i, p);
  return out;
}

// MATLAB ycbcr2rgb for uint8 output: rgb = 255 * inv(origT) * (ycc - offset), rounded and
// clamped to 0..255. The planes may hold unrounded values (a model's output), on 0..255.
inline Image8 ycbcr_to_rgb(const Plane& y, const Plane& cb, const Plane& cr) {
  LOWBIT_CHECK(y.height == cb.height && y.width == cb.width && y.height == cr.height && y.width == cr.width,
               "sr::ycbcr_to_rgb: planes are ", y.height, "x", y.width, ", ", cb.height, "x", cb.width, " and ",
               cr.height, "x", cr.width, ", expected one size");
  const auto& m = detail::kYcc;  // inverse by the adjugate, in double
  double inv[3][3];
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      inv[r][c] = (m[(c + 1) % 3][(r + 1) % 3] * m[(c + 2) % 3][(r + 2) % 3] -
                   m[(c + 1) % 3][(r + 2) % 3] * m[(c + 2) % 3][(r + 1) % 3]) / det;
  Image8 out;
  out.height = y.height, out.width = y.width, out.channels = 3;
  out.px.resize(size_t(y.height * y.width * 3));
  for (size_t i = 0; i < y.px.size(); ++i) {
    const double v[3] = {y.px[i] - 16.0, cb.px[i] - 128.0, cr.px[i] - 128.0};
    for (int p = 0; p < 3; ++p)
      out.px[3 * i + size_t(p)] = to_uint8(255.0 * (inv[p][0] * v[0] + inv[p][1] * v[1] + inv[p][2] * v[2]));
  }
  return out;
}

// A plane on 0..255 as a grey uint8 image (rounded as MATLAB's uint8), e.g. for write_png.
inline Image8 grey_image(const Plane& p) {
  Image8 out;
  out.height = p.height, out.width = p.width, out.channels = 1;
  out.px.resize(p.px.size());
  for (size_t i = 0; i < p.px.size(); ++i) out.px[i] = to_uint8(p.px[i]);
  return out;
}

}  // namespace sr
}  // namespace data
}  // namespace lowbit
