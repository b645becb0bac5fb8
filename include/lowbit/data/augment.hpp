// CIFAR-style augmentation and normalization, producing float batches [B, C, H, W] of the
// data set's own image shape (3 x 32 x 32 for CIFAR, 1 x 28 x 28 for MNIST, ...).
//
// The standard CIFAR-10 training pipeline (torchvision RandomCrop(32, padding=4),
// RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)):
//   1. zero-pad the uint8 image by `pad` pixels on every side (40x40 for pad 4),
//   2. crop H x W (the image's size) at a random top-left corner (dy, dx), each uniform in
//      0..2*pad,
//   3. mirror left-right with probability 0.5,
//   4. x = (v / 255 - mean[c]) / std[c] per channel, in float with the same operations as
//      torchvision (padded zeros become -mean/std, as in torchvision),
//   5. optional Cutout (DeVries & Taylor 2017, "Improved Regularization of Convolutional
//      Neural Networks with Cutout"): one square of the normalized image is set to 0, the
//      per-channel mean. As in the authors' code (applied after Normalize), the centre
//      (cy, cx) is uniform over all H x W pixels and the square is rows
//      [cy - L/2, cy + L/2) x columns [cx - L/2, cx + L/2) clipped to the image, L/2
//      rounded down, so a centre near the border cuts less than L x L (L = 16 for CIFAR-10).
// Random numbers are drawn from a lowbit::Generator, per image in batch order:
//   dy = randint(2*pad + 1), dx = randint(2*pad + 1), flip = uniform() < flip_prob,
//   then with Cutout cy = randint(H), cx = randint(W)
// (the same order as torchvision: crop row, crop column, then the flip). All numbers for a
// batch are drawn first (draw_augment_params), so assembling the images is a pure function
// of (dataset, indices, params): the same bytes in any loop order or thread count.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"

namespace lowbit {
namespace data {

// Per-channel normalization (R, G, B; or the one channel of grayscale) applied after
// scaling to [0, 1]: one mean and one std per channel of the images.
struct Normalize {
  std::vector<float> mean{0.4914f, 0.4822f, 0.4465f};
  std::vector<float> std{0.2470f, 0.2435f, 0.2616f};

  int64_t channels() const { return static_cast<int64_t>(mean.size()); }

  // The usual CIFAR-10 training-set statistics (the defaults).
  static Normalize cifar10() { return Normalize{}; }
  // CIFAR-100's training-set statistics, as the usual CIFAR-100 recipes use them.
  static Normalize cifar100() { return Normalize{{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}}; }
  // MNIST's training-set statistics, as torchvision's MNIST example and ALQ's lenet5.py use them.
  static Normalize mnist() { return Normalize{{0.1307f}, {0.3081f}}; }
  // Only v / 255: mean 0, std 1.
  static Normalize identity(int64_t channels = 3) {
    return Normalize{std::vector<float>(static_cast<size_t>(channels), 0.f),
                     std::vector<float>(static_cast<size_t>(channels), 1.f)};
  }
  // The data set's own statistics: per channel, the mean and the (population) standard
  // deviation of v / 255 over every pixel of every image, summed in double.
  static Normalize of(const Dataset& ds) {
    LOWBIT_CHECK(!ds.empty(), "Normalize::of: data set '", ds.source, "' is empty");
    const int64_t C = ds.channels, plane = ds.height * ds.width;
    std::vector<int64_t> hist(static_cast<size_t>(C * 256), 0);  // exact: count each byte value
    for (int64_t i = 0; i < ds.size(); ++i) {
      const uint8_t* img = ds.image(i);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < plane; ++p) ++hist[static_cast<size_t>(c * 256 + img[c * plane + p])];
    }
    Normalize n{{}, {}};
    const double count = static_cast<double>(ds.size()) * static_cast<double>(plane);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t* h = hist.data() + c * 256;
      double m = 0, var = 0;  // two passes over the histogram: a constant channel gets var = 0 exactly
      for (int v = 0; v < 256; ++v) m += static_cast<double>(h[v]) * (v / 255.0);
      m /= count;
      for (int v = 0; v < 256; ++v) var += static_cast<double>(h[v]) * (v / 255.0 - m) * (v / 255.0 - m);
      var /= count;
      n.mean.push_back(static_cast<float>(m));
      // A constant channel would divide by 0: such a channel carries no information, keep it at v/255 - mean.
      n.std.push_back(var > 0 ? static_cast<float>(std::sqrt(var)) : 1.0f);
    }
    return n;
  }
};

// Lookup table value[c][v] = (float(v) / 255 - mean[c]) / std[c]: every uint8 input maps
// to one precomputed float, computed with the same float operations as torchvision's
// ToTensor + Normalize (v / 255, subtract the mean, divide by the std).
struct NormalizeTable {
  std::vector<std::array<float, 256>> value;  // one table per channel

  explicit NormalizeTable(const Normalize& n = Normalize{}) {
    LOWBIT_CHECK(!n.mean.empty() && n.mean.size() == n.std.size(), "Normalize: ", n.mean.size(), " means and ",
                 n.std.size(), " stds, expected one of each per image channel");
    value.resize(n.mean.size());
    for (size_t c = 0; c < n.mean.size(); ++c) {
      LOWBIT_CHECK(n.std[c] > 0.f && std::isfinite(n.std[c]) && std::isfinite(n.mean[c]), "Normalize: std[", c,
                   "] = ", n.std[c], ", mean[", c, "] = ", n.mean[c], ", expected a finite mean and a positive std");
      for (int v = 0; v < 256; ++v) {
        value[c][v] = (static_cast<float>(v) / 255.0f - n.mean[c]) / n.std[c];
      }
    }
  }
  int64_t channels() const { return static_cast<int64_t>(value.size()); }
};

// The (channels, height, width) of the images being augmented; CIFAR's by default.
struct ImageShape {
  int64_t channels = kChannels, height = kHeight, width = kWidth;
  static ImageShape of(const Dataset& ds) { return {ds.channels, ds.height, ds.width}; }
  int64_t numel() const { return channels * height * width; }
};

struct AugmentConfig {
  bool random_crop = true;       // zero pad + random crop back to the image's size
  int pad = 4;                   // padding on each side for the crop
  bool horizontal_flip = true;   // random left-right mirror
  double flip_prob = 0.5;
  int cutout = 0;                // Cutout square side L in pixels (16 for CIFAR-10); 0 = off

  void check() const {
    LOWBIT_CHECK(pad >= 0 && pad <= 1024, "AugmentConfig: pad = ", pad, ", expected 0..1024");
    LOWBIT_CHECK(cutout >= 0 && cutout <= 4096, "AugmentConfig: cutout = ", cutout,
                 ", expected a square side in pixels, 0..4096 (0 = off)");
    LOWBIT_CHECK(flip_prob >= 0.0 && flip_prob <= 1.0, "AugmentConfig: flip_prob = ", flip_prob,
                 ", expected a probability in [0, 1]");
  }
};

// What to do to one image. (dy, dx) is the crop's top-left corner in the padded image, so
// (pad, pad) without flip is the identity. The Cutout square is rows [cut_y0, cut_y1) x
// columns [cut_x0, cut_x1) of the output image (after crop and flip); empty by default.
struct AugmentParams {
  int dy = 0;
  int dx = 0;
  bool flip = false;
  int cut_y0 = 0, cut_y1 = 0;
  int cut_x0 = 0, cut_x1 = 0;
};

inline AugmentParams identity_params(int pad) { return AugmentParams{pad, pad, false}; }

// Draws one image's parameters for an image of height x width (see the top of this file
// for the order of the draws). Disabled parts draw nothing.
inline AugmentParams draw_augment_params(Generator& gen, const AugmentConfig& cfg, int64_t height = kHeight,
                                         int64_t width = kWidth) {
  AugmentParams p = identity_params(cfg.pad);
  if (cfg.random_crop) {
    const auto range = static_cast<uint64_t>(2 * cfg.pad + 1);
    p.dy = static_cast<int>(gen.randint(range));
    p.dx = static_cast<int>(gen.randint(range));
  }
  if (cfg.horizontal_flip) p.flip = gen.uniform() < cfg.flip_prob;
  if (cfg.cutout > 0) {
    const int H = static_cast<int>(height), W = static_cast<int>(width), half = cfg.cutout / 2;
    const int cy = static_cast<int>(gen.randint(static_cast<uint64_t>(H)));
    const int cx = static_cast<int>(gen.randint(static_cast<uint64_t>(W)));
    p.cut_y0 = std::max(0, cy - half);
    p.cut_y1 = std::min(H, cy + half);
    p.cut_x0 = std::max(0, cx - half);
    p.cut_x1 = std::min(W, cx + half);
  }
  return p;
}

// One image: crop at (dy, dx) from the image zero-padded by `pad`, optional mirror, then
// normalize. out(c, y, x) = table[c][src(c, y + dy - pad, xs + dx - pad)] where
// xs = flip ? W - 1 - x : x, and pixels outside the source are 0.
inline void augment_image(const uint8_t* src_chw, const AugmentParams& p, int pad,
                          const NormalizeTable& table, float* out_chw, const ImageShape& shape = ImageShape{}) {
  const int C = static_cast<int>(shape.channels), H = static_cast<int>(shape.height), W = static_cast<int>(shape.width);
  LOWBIT_CHECK(table.channels() == shape.channels, "augment_image: normalization for ", table.channels(),
               " channels, the image has ", shape.channels);
  LOWBIT_CHECK(p.dy >= 0 && p.dy <= 2 * pad && p.dx >= 0 && p.dx <= 2 * pad,
               "augment_image: crop offset (dy, dx) = (", p.dy, ", ", p.dx,
               ") out of range for pad ", pad, ", expected 0..", 2 * pad);
  LOWBIT_CHECK(0 <= p.cut_y0 && p.cut_y0 <= p.cut_y1 && p.cut_y1 <= H && 0 <= p.cut_x0 &&
                   p.cut_x0 <= p.cut_x1 && p.cut_x1 <= W,
               "augment_image: Cutout rows [", p.cut_y0, ", ", p.cut_y1, ") x columns [", p.cut_x0, ", ",
               p.cut_x1, ") is not a rectangle inside the ", H, "x", W, " image");
  const int oy = p.dy - pad, ox = p.dx - pad;  // source offset of output pixel (0, 0)
  for (int c = 0; c < C; ++c) {
    const uint8_t* s = src_chw + c * H * W;
    const float* lut = table.value[static_cast<size_t>(c)].data();
    const float zero = lut[0];
    float* o = out_chw + c * H * W;
    for (int y = 0; y < H; ++y) {
      const int sy = y + oy;
      float* orow = o + y * W;
      if (sy < 0 || sy >= H) {
        for (int x = 0; x < W; ++x) orow[x] = zero;
        continue;
      }
      const uint8_t* srow = s + sy * W;
      // Source column of output column x: x + ox, or (W - 1 - x) + ox when flipped. It is
      // inside the image for x in [x0, x1); outside that range the pixel is padding.
      const int x0 = p.flip ? std::max(0, ox) : std::max(0, -ox);
      const int x1 = p.flip ? std::min(W, W + ox) : std::min(W, W - ox);
      for (int x = 0; x < x0; ++x) orow[x] = zero;
      if (p.flip) {
        for (int x = x0; x < x1; ++x) orow[x] = lut[srow[W - 1 + ox - x]];
      } else {
        for (int x = x0; x < x1; ++x) orow[x] = lut[srow[x + ox]];
      }
      for (int x = std::max(x0, x1); x < W; ++x) orow[x] = zero;
    }
    // Cutout: 0 in normalized units is the channel mean (the authors' mask multiplies the
    // normalized tensor), not the padding value lut[0].
    for (int y = p.cut_y0; y < p.cut_y1; ++y)
      for (int x = p.cut_x0; x < p.cut_x1; ++x) o[y * W + x] = 0.0f;
  }
}

struct Batch {
  Tensor<float> images;          // [B, C, H, W], normalized
  std::vector<int64_t> labels;   // B labels
  std::vector<int64_t> indices;  // B dataset indices the batch was made from
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// Assembles a batch from dataset `indices` with per-image `params` (same length; pass an
// empty vector for no augmentation, i.e. identity_params).
inline Batch make_batch(const Dataset& ds, const std::vector<int64_t>& indices,
                        const std::vector<AugmentParams>& params, int pad,
                        const NormalizeTable& table) {
  LOWBIT_CHECK(!indices.empty(), "make_batch: no indices, expected at least one image");
  LOWBIT_CHECK(params.empty() || params.size() == indices.size(), "make_batch: ", params.size(),
               " augmentation parameter sets for ", indices.size(),
               " images, expected one per image (or none)");
  const auto B = static_cast<int64_t>(indices.size());
  const ImageShape shape = ImageShape::of(ds);
  LOWBIT_CHECK(table.channels() == ds.channels, "make_batch: normalization for ", table.channels(),
               " channels, the images of '", ds.source, "' have ", ds.channels,
               " (give one mean and one std per channel)");
  Batch b;
  b.indices = indices;
  b.labels.resize(indices.size());
  for (int64_t i = 0; i < B; ++i) {
    const int64_t idx = indices[static_cast<size_t>(i)];
    LOWBIT_CHECK(idx >= 0 && idx < ds.size(), "make_batch: index ", idx, " (batch position ", i,
                 ") out of range for '", ds.source, "' with ", ds.size(), " images");
    b.labels[static_cast<size_t>(i)] = ds.labels[static_cast<size_t>(idx)];
    if (!params.empty()) {
      const auto& p = params[static_cast<size_t>(i)];
      LOWBIT_CHECK(p.dy >= 0 && p.dy <= 2 * pad && p.dx >= 0 && p.dx <= 2 * pad,
                   "make_batch: crop offset (dy, dx) = (", p.dy, ", ", p.dx, ") of batch position ",
                   i, " out of range for pad ", pad, ", expected 0..", 2 * pad);
    }
  }
  b.images = Tensor<float>::empty({B, shape.channels, shape.height, shape.width});
  float* out = b.images.data();
  const uint8_t* src = ds.images.data();
  const AugmentParams ident = identity_params(pad);
  // Serial on purpose. Assembly costs about 3 us per image on one core (bench_data: ~300k
  // images/s, 0.4 ms per batch of 128), negligible next to a training step. An OpenMP
  // region per batch would save at most a fraction of that on an idle machine, but it was
  // measured 5-7x SLOWER whenever the cores are shared with other processes (threads spin
  // at the barrier waiting for a descheduled sibling). The output does not depend on the
  // order of this loop (all random numbers were drawn before), so it can be made parallel
  // with `#pragma omp parallel for` without changing a single bit.
  for (int64_t i = 0; i < B; ++i) {
    const auto k = static_cast<size_t>(i);
    augment_image(src + indices[k] * shape.numel(), params.empty() ? ident : params[k], pad, table,
                  out + i * shape.numel(), shape);
  }
  return b;
}

}  // namespace data
}  // namespace lowbit
