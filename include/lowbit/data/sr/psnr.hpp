// PSNR on the luma channel as SRCNN's demo_SR.m / VDSR's test code measure it: both images
// rounded to uint8 (MATLAB's uint8(x * 255): half away from zero, saturated), a border of
// `border` pixels (= the scale) shaved, then 20 log10(255 / RMSE) in double.
#pragma once
#include <cmath>
#include <limits>

#include "../../core/error.hpp"
#include "plane.hpp"

namespace lowbit {
namespace data {
namespace sr {

// ref, test: planes on 0..255. Identical images (after rounding) give +infinity (RMSE 0),
// which a mean over a set propagates; callers comparing models never see it in practice.
inline double psnr_y(const Plane& ref, const Plane& test, int border) {
  LOWBIT_CHECK(ref.height == test.height && ref.width == test.width, "sr::psnr_y: reference is ", ref.height, "x",
               ref.width, ", test image is ", test.height, "x", test.width, ", expected the same size");
  LOWBIT_CHECK(border >= 0 && 2 * int64_t(border) < ref.height && 2 * int64_t(border) < ref.width, "sr::psnr_y: border ",
               border, " leaves nothing of a ", ref.height, "x", ref.width, " image");
  double se = 0;
  for (int64_t y = border; y < ref.height - border; ++y)
    for (int64_t x = border; x < ref.width - border; ++x) {
      const double d = double(to_uint8(ref.at(y, x))) - double(to_uint8(test.at(y, x)));
      se += d * d;
    }
  const double mse = se / double((ref.height - 2 * border) * (ref.width - 2 * border));
  return mse == 0 ? std::numeric_limits<double>::infinity() : 20 * std::log10(255.0 / std::sqrt(mse));
}

}  // namespace sr
}  // namespace data
}  // namespace lowbit
