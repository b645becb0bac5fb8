// The two SR data sets of VDSR (Kim, Lee & Lee, CVPR 2016, Sec. 4.1):
//   load_test_set: Set5 / Set14 as SRCNN's demo_SR.m and VDSR's test code prepare them --
//     Y of the image (rgb2ycbcr), modcrop to the scale, bicubic down by 1/scale and up again;
//   TrainPairs: the 291 images as VDSR's generate_train.m turns them into training pairs,
//     with random 41x41 patches, VDSR's flips and rotations, drawn by sample().
#pragma once
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/random.hpp"
#include "../../core/tensor.hpp"
#include "../image_folder.hpp"
#include "color.hpp"
#include "image.hpp"
#include "imresize.hpp"
#include "plane.hpp"

namespace lowbit {
namespace data {
namespace sr {

namespace detail {
// The .bmp/.jpg/.jpeg/.png files of a folder in name order (hidden and other files ignored).
inline std::vector<std::string> list_images(const std::string& dir, const char* who) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOWBIT_CHECK(fs::is_directory(dir, ec), who, ": '", dir, "' is not a directory (expected a folder of images)");
  std::vector<std::string> paths;
  for (const auto& name : lowbit::data::detail::sorted_entries(dir, [](const fs::directory_entry& e) {
         std::error_code e2;
         return e.is_regular_file(e2) && is_image_file_name(e.path().filename().string());
       }))
    paths.push_back((fs::path(dir) / name).string());
  LOWBIT_CHECK(!paths.empty(), who, ": folder '", dir, "' holds no .bmp/.jpg/.jpeg/.png files");
  return paths;
}

// imresize(imresize(p, 1/s), size(p)) on a modcropped plane: the bicubic input of SRCNN/VDSR.
inline Plane down_up(const Plane& p, int s) {
  return imresize_bicubic(imresize_bicubic(p, 1.0 / s, p.height / s, p.width / s), s, p.height, p.width);
}
}  // namespace detail

struct TestImage {
  std::string name;    // file name without extension
  Plane hr;            // modcropped Y, 0..255 (integers)
  Plane bicubic;       // up(down(hr)), 0..255, unrounded
  Plane cb, cr;        // colour pictures only: the modcropped image's Cb, Cr, resized down and up like Y
  bool colour = false; // false for a grey image (cb, cr empty)
};

// Every image of `dir` in name order, prepared for scale `scale` (2..8).
inline std::vector<TestImage> load_test_set(const std::string& dir, int scale) {
  LOWBIT_CHECK(scale >= 2 && scale <= 8, "load_test_set: scale ", scale, " for '", dir, "', expected 2..8");
  std::vector<TestImage> out;
  for (const std::string& path : detail::list_images(dir, "load_test_set")) {
    const Image8 img = load_image(path);
    check_min_size(img, path, 2 * scale, "a test image must give at least 2x2 pixels at 1/scale");
    TestImage t;
    t.name = std::filesystem::path(path).stem().string();
    t.colour = img.channels == 3;
    if (t.colour) {
      const YCbCr ycc = rgb_to_ycbcr(img);
      t.hr = modcrop(ycc.y, scale);
      t.cb = detail::down_up(modcrop(ycc.cb, scale), scale);
      t.cr = detail::down_up(modcrop(ycc.cr, scale), scale);
    } else {
      t.hr = modcrop(luma(img), scale);
    }
    t.bicubic = detail::down_up(t.hr, scale);
    out.push_back(std::move(t));
  }
  return out;
}

struct TrainSetOptions {
  std::vector<int> scales{2, 3, 4};              // VDSR's multi-scale training (x2, x3, x4)
  std::vector<double> downsizes{1.0, 0.7, 0.5};  // generate_train.m's "downsizes"
  int64_t patch = 41;                            // VDSR Sec. 4.1: 41x41 patches (its receptive field)
};

// Training pairs made as generate_train.m makes them, for each image, downsize d and scale s:
//   rgb = imresize(rgb_uint8, d, 'bicubic')   (uint8: rounded after each pass, imresize_uint8)
//   Y = rgb2ycbcr(rgb)(:,:,1); label = modcrop(Y, s) / 255;
//   input = imresize(imresize(label, 1/s), size(label))   (float, unrounded).
// Labels are stored once per (image, d) as the uint8 Y (label = Y / 255 exactly; a scale's
// modcrop is a top-left window of it), inputs as float. The full 291 folder with the default
// options gives 2616 pairs (3 skipped: t20, 78x78, at 0.5), 1.88e8 label pixels: 0.75 GB of
// inputs + 63 MB of labels, 0.83 GB peak RSS, built in 7 s (measured with one free core).
// JPEGs decode with stb_image, which may differ from MATLAB's libjpeg by a level; that only
// changes the training data, never the test sets (BMP).
// generate_train.m flips and rotates the whole image before downsizing; sample() flips and
// rotates the patch instead: the same distribution of patches up to the border pixels.
class TrainPairs {
 public:
  explicit TrainPairs(const std::string& dir, const TrainSetOptions& opt = {}) : patch_(opt.patch) {
    LOWBIT_CHECK(opt.patch >= 1, "TrainPairs: patch = ", opt.patch, ", expected >= 1");
    LOWBIT_CHECK(!opt.scales.empty() && !opt.downsizes.empty(), "TrainPairs: no scales or no downsizes given");
    for (int s : opt.scales) LOWBIT_CHECK(s >= 2 && s <= 8, "TrainPairs: scale ", s, ", expected 2..8");
    for (double d : opt.downsizes) LOWBIT_CHECK(d > 0 && d <= 1, "TrainPairs: downsize ", d, ", expected in (0, 1]");
    const std::vector<std::string> paths = detail::list_images(dir, "TrainPairs");
    std::vector<std::vector<Source>> srcs(paths.size());  // per image: filled in parallel, joined in order
    std::vector<std::vector<Pair>> pairs(paths.size());
    std::vector<int64_t> skips(paths.size(), 0);
    lowbit::data::detail::for_each_image_file(dir, paths, paths.size(), [&](size_t k, const std::vector<uint8_t>& bytes,
                                                                           std::vector<uint8_t>&) {
      const Image8 img = decode_image(bytes.data(), bytes.size(), paths[k]);
      // An image that cannot give one patch even at full size is bad input, not a skip (a
      // downsized copy of a real image smaller than a patch is skipped and counted).
      check_min_size(img, paths[k], patch_, "a training image must hold one patch at its full size");
      for (double d : opt.downsizes) {
        const Image8 small = d == 1 ? img : resize_uint8(img, d);
        const Plane y = luma(small);
        Source src{y.height, y.width, std::vector<uint8_t>(y.px.begin(), y.px.end())};
        for (int s : opt.scales) {
          const Plane label = modcrop(y, s);
          if (label.height < patch_ || label.width < patch_) {
            ++skips[k];
            continue;
          }
          const Plane in = detail::down_up(label, s);
          Pair p{srcs[k].size(), label.height, label.width, std::vector<float>(in.px.size())};
          for (size_t i = 0; i < in.px.size(); ++i) p.input[i] = in.px[i] / 255.0f;
          pairs[k].push_back(std::move(p));
        }
        srcs[k].push_back(std::move(src));
      }
    });
    for (size_t k = 0; k < paths.size(); ++k) {
      for (Pair& p : pairs[k]) p.source += sources_.size(), pairs_.push_back(std::move(p));
      for (Source& s : srcs[k]) sources_.push_back(std::move(s));
      skipped_ += skips[k];
    }
    LOWBIT_CHECK(!pairs_.empty(), "TrainPairs: folder '", dir, "': all ", skipped_, " pairs are smaller than the ",
                 patch_, "x", patch_, " patch (expected larger images or a smaller patch)");
  }

  int64_t size() const { return int64_t(pairs_.size()); }  // pairs kept (image x downsize x scale)
  int64_t skipped() const { return skipped_; }             // pairs smaller than a patch after downsizing
  int64_t patch() const { return patch_; }
  int64_t pixels() const {  // label pixels over all pairs
    int64_t n = 0;
    for (const Pair& p : pairs_) n += p.h * p.w;
    return n;
  }

  // Fills input and label, [batch, 1, patch, patch] (reallocated if their shape differs),
  // with patches on 0..1. Per item, in this order: a pair (uniform), a top-left corner
  // (uniform over the valid positions, row then column), a flip (VDSR's 3 states: vertical,
  // horizontal, none) and a rotation by 0/90/180/270 degrees counterclockwise (imrotate),
  // flip first, the same for label and input. Deterministic given gen's state.
  void sample(Generator& gen, int64_t batch, Tensor<float>& input, Tensor<float>& label) const {
    LOWBIT_CHECK(batch >= 1, "TrainPairs::sample: batch = ", batch, ", expected >= 1");
    const int64_t n = patch_;
    const Shape shape{batch, 1, n, n};
    if (!input.defined() || input.shape() != shape) input = Tensor<float>::empty(shape);
    if (!label.defined() || label.shape() != shape) label = Tensor<float>::empty(shape);
    for (int64_t b = 0; b < batch; ++b) {
      const Pair& p = pairs_[gen.randint(pairs_.size())];
      const auto top = int64_t(gen.randint(uint64_t(p.h - n + 1))), left = int64_t(gen.randint(uint64_t(p.w - n + 1)));
      const auto flip = gen.randint(3), rot = gen.randint(4);
      const Source& src = sources_[p.source];
      float* in = input.data() + b * n * n;
      float* lb = label.data() + b * n * n;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          int64_t y = i, x = j;  // output -> source patch: undo rot90 (B(i,j) = A(j, n-1-i)), then the flip
          for (uint64_t r = 0; r < rot; ++r) {
            const int64_t t = y;
            y = x, x = n - 1 - t;
          }
          if (flip == 0) y = n - 1 - y;
          if (flip == 1) x = n - 1 - x;
          y += top, x += left;
          in[i * n + j] = p.input[size_t(y * p.w + x)];
          lb[i * n + j] = float(src.y[size_t(y * src.w + x)]) / 255.0f;
        }
    }
  }

 private:
  struct Source {  // Y of one image at one downsize, uint8
    int64_t h = 0, w = 0;
    std::vector<uint8_t> y;
  };
  struct Pair {  // label = the top-left h x w of sources_[source] / 255
    size_t source = 0;
    int64_t h = 0, w = 0;
    std::vector<float> input;  // h x w, 0..1
  };

  // imresize(rgb_uint8, d, 'bicubic') per channel, as MATLAB does for uint8 images.
  static Image8 resize_uint8(const Image8& img, double d) {
    Image8 out;
    out.height = imresize_length(img.height, d), out.width = imresize_length(img.width, d), out.channels = img.channels;
    out.px.resize(size_t(out.height * out.width * out.channels));
    for (int64_t c = 0; c < img.channels; ++c) {
      Plane ch(img.height, img.width);
      for (size_t i = 0; i < ch.px.size(); ++i) ch.px[i] = img.px[i * size_t(img.channels) + size_t(c)];
      const Plane r = imresize_uint8(ch, d, out.height, out.width);
      for (size_t i = 0; i < r.px.size(); ++i) out.px[i * size_t(img.channels) + size_t(c)] = uint8_t(r.px[i]);
    }
    return out;
  }

  int64_t patch_;
  int64_t skipped_ = 0;
  std::vector<Source> sources_;
  std::vector<Pair> pairs_;
};

}  // namespace sr
}  // namespace data
}  // namespace lowbit
