// One image channel for super-resolution (SR): a row-major float plane. Values are on the
// 0..255 scale unless a function says otherwise, so a plane read from a uint8 image holds
// integers and "rounding to uint8" (SRCNN's uint8(x*255)) is a plain round + clamp.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../core/error.hpp"

namespace lowbit {
namespace data {
namespace sr {

struct Plane {
  int64_t height = 0, width = 0;
  std::vector<float> px;  // height * width, row-major

  Plane() = default;
  Plane(int64_t h, int64_t w, float fill = 0.f) : height(h), width(w), px(static_cast<size_t>(h * w), fill) {}
  float& at(int64_t y, int64_t x) { return px[static_cast<size_t>(y * width + x)]; }
  float at(int64_t y, int64_t x) const { return px[static_cast<size_t>(y * width + x)]; }
};

// MATLAB's uint8(v): round half away from zero, saturate to 0..255 (NaN gives 0).
inline uint8_t to_uint8(double v) {
  if (!(v > 0.0)) return 0;
  return v >= 255.0 ? uint8_t(255) : static_cast<uint8_t>(std::round(v));
}

// The h x w window of p whose top-left pixel is (top, left). window of p (h <= p.height, w <= p.width).
inline Plane crop(const Plane& p, int64_t top, int64_t left, int64_t h, int64_t w) {
  LOWBIT_CHECK(top >= 0 && left >= 0 && h >= 0 && w >= 0 && top + h <= p.height && left + w <= p.width,
               "sr::crop: window ", h, "x", w, " at (", top, ", ", left, ") does not fit a ", p.height, "x",
               p.width, " plane");
  Plane out(h, w);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) out.at(y, x) = p.at(top + y, left + x);
  return out;
}

// MATLAB modcrop (SRCNN, VDSR): drop the bottom rows and right columns so that both sides are
// multiples of `scale`, which makes down- and up-scaling by `scale` return the same size.
inline Plane modcrop(const Plane& p, int scale) {
  LOWBIT_CHECK(scale >= 1, "sr::modcrop: scale = ", scale, ", expected >= 1");
  return crop(p, 0, 0, p.height - p.height % scale, p.width - p.width % scale);
}

// SRCNN's shave(im, [b b]): drop `border` pixels on every side (PSNR ignores them).
inline Plane shave(const Plane& p, int border) {
  LOWBIT_CHECK(border >= 0 && 2 * int64_t(border) < p.height && 2 * int64_t(border) < p.width, "sr::shave: border ",
               border, " leaves nothing of a ", p.height, "x", p.width, " plane");
  return crop(p, border, border, p.height - 2 * border, p.width - 2 * border);
}

}  // namespace sr
}  // namespace data
}  // namespace lowbit
