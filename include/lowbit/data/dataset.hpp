// In-memory uint8 image dataset shared by every source (CIFAR-10/100 binary files, MNIST's
// IDX files, image folders): N images of channels x height x width bytes in CHW order (for
// RGB the R plane, then G, then B, each row-major — the CIFAR binary record layout, so
// binary files are copied unchanged), int64 labels, the class names and a description of
// where the data came from. The shape is a property of the data set, known at run time
// (3 x 32 x 32 for CIFAR, 1 x 28 x 28 for MNIST, whatever an image folder holds); the
// loader, the augmentation and the models take it from here.
//
// Subsets and splits are deterministic functions of a seed (lowbit::Generator), so a run
// can be reproduced exactly from its configuration.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"

namespace lowbit {
namespace data {

// The CIFAR image shape: a Dataset's default, and the record size of the CIFAR binaries.
constexpr int64_t kChannels = 3;
constexpr int64_t kHeight = 32;
constexpr int64_t kWidth = 32;
constexpr int64_t kImageBytes = kChannels * kHeight * kWidth;  // 3072

// Largest image a Dataset accepts (bytes per image; 4096 x 4096 RGB): a bound on what a
// crafted header can make a reader allocate per image.
constexpr int64_t kMaxImageBytes = int64_t(3) << 24;

// The CIFAR-10 classes in label order. They are also in alphabetical order, so image
// folders sorted by name get the same label indices as the binary format.
inline const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names{"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

struct Dataset {
  std::vector<uint8_t> images;           // size() * image_bytes() bytes; image i is CHW
  std::vector<int64_t> labels;           // each in [0, num_classes())
  std::vector<std::string> class_names;  // label -> name
  std::string source;                    // human-readable origin, e.g. the folder or files read
  std::vector<std::string> notes;        // what the reader skipped (e.g. a named pipe), one line each
  int64_t channels = kChannels, height = kHeight, width = kWidth;  // every image's shape

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  bool empty() const { return labels.empty(); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  int64_t image_bytes() const { return channels * height * width; }

  const uint8_t* image(int64_t i) const {
    check_index(i);
    return images.data() + i * image_bytes();
  }
  uint8_t* image(int64_t i) {
    check_index(i);
    return images.data() + i * image_bytes();
  }
  // Pixel value of channel c (0 = R, or the only channel of grayscale), row y, column x.
  uint8_t pixel(int64_t i, int64_t c, int64_t y, int64_t x) const {
    LOWBIT_CHECK(c >= 0 && c < channels && y >= 0 && y < height && x >= 0 && x < width,
                 "Dataset::pixel: (c, y, x) = (", c, ", ", y, ", ", x, ") out of range, expected c < ",
                 channels, ", y < ", height, ", x < ", width);
    return image(i)[(c * height + y) * width + x];
  }
  // The same shape (and so the same image layout) as `o`.
  bool same_shape(const Dataset& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
  std::string shape_string() const {
    return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width);
  }

  // Number of images of each label (length num_classes()).
  std::vector<int64_t> class_counts() const {
    std::vector<int64_t> counts(class_names.size(), 0);
    for (int64_t l : labels) {
      if (l >= 0 && l < num_classes()) ++counts[static_cast<size_t>(l)];
    }
    return counts;
  }

  // Throws if the fields disagree (image bytes vs label count, label out of range).
  void check() const {
    LOWBIT_CHECK(channels >= 1 && height >= 1 && width >= 1 && image_bytes() <= kMaxImageBytes, "Dataset '",
                 source, "': image shape ", shape_string(), " (channels x height x width), expected positive sizes of at most ",
                 kMaxImageBytes, " bytes per image");
    LOWBIT_CHECK(images.size() == labels.size() * static_cast<size_t>(image_bytes()),
                 "Dataset '", source, "': ", images.size(), " image bytes for ", labels.size(),
                 " labels, expected ", labels.size() * static_cast<size_t>(image_bytes()), " (",
                 shape_string(), " bytes per image)");
    for (size_t i = 0; i < labels.size(); ++i) {
      LOWBIT_CHECK(labels[i] >= 0 && labels[i] < num_classes(), "Dataset '", source,
                   "': label of image ", i, " is ", labels[i], ", expected 0..",
                   num_classes() - 1);
    }
  }

 private:
  void check_index(int64_t i) const {
    LOWBIT_CHECK(i >= 0 && i < size(), "Dataset::image: index ", i, " out of range for '",
                 source, "' with ", size(), " images");
  }
};

// Fisher-Yates shuffle of 0..n-1: for i = n-1 down to 1, swap i with randint(i + 1). The
// exact procedure is part of the reproducibility contract (same seed -> same order).
inline std::vector<int64_t> random_permutation(int64_t n, Generator& gen) {
  LOWBIT_CHECK(n >= 0, "random_permutation: n must be >= 0, got ", n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(gen.randint(static_cast<uint64_t>(i + 1)));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

// The images at `indices` (in that order; repeats allowed). `what` is appended to the source.
inline Dataset select(const Dataset& ds, const std::vector<int64_t>& indices,
                      const std::string& what) {
  Dataset out;
  out.class_names = ds.class_names;
  out.source = what.empty() ? ds.source : ds.source + " | " + what;
  out.channels = ds.channels, out.height = ds.height, out.width = ds.width;
  const auto bytes = static_cast<size_t>(ds.image_bytes());
  out.labels.reserve(indices.size());
  out.images.resize(indices.size() * bytes);
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    LOWBIT_CHECK(i >= 0 && i < ds.size(), "data::select: index ", i, " (position ", k,
                 ") out of range for '", ds.source, "' with ", ds.size(), " images");
    out.labels.push_back(ds.labels[static_cast<size_t>(i)]);
    std::memcpy(out.images.data() + k * bytes, ds.image(i), bytes);
  }
  return out;
}

// The first n images, in order.
inline Dataset first_n(const Dataset& ds, int64_t n) {
  LOWBIT_CHECK(n >= 0 && n <= ds.size(), "data::first_n: n = ", n, ", expected 0..", ds.size(),
               " (the size of '", ds.source, "')");
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  return select(ds, idx, "first " + std::to_string(n));
}

namespace detail {
// Indices of each class, in dataset order.
inline std::vector<std::vector<int64_t>> indices_by_class(const Dataset& ds) {
  std::vector<std::vector<int64_t>> by_class(ds.class_names.size());
  for (int64_t i = 0; i < ds.size(); ++i) {
    const int64_t l = ds.labels[static_cast<size_t>(i)];
    LOWBIT_CHECK(l >= 0 && l < ds.num_classes(), "data: label of image ", i, " in '", ds.source,
                 "' is ", l, ", expected 0..", ds.num_classes() - 1);
    by_class[static_cast<size_t>(l)].push_back(i);
  }
  return by_class;
}

// For each class (in label order) a seeded permutation of its images; the first
// `per_class` go to `chosen`, the rest to `rest`. Both come back in ascending dataset order.
inline void split_per_class(const Dataset& ds, int64_t per_class, uint64_t seed,
                            const char* who, std::vector<int64_t>& chosen,
                            std::vector<int64_t>& rest) {
  LOWBIT_CHECK(per_class >= 0, who, ": per-class count must be >= 0, got ", per_class);
  Generator gen(seed);
  const auto by_class = indices_by_class(ds);
  for (size_t c = 0; c < by_class.size(); ++c) {
    const auto& idx = by_class[c];
    LOWBIT_CHECK(static_cast<int64_t>(idx.size()) >= per_class, who, ": class ", c, " ('",
                 ds.class_names[c], "') has ", idx.size(), " images in '", ds.source,
                 "', fewer than the ", per_class, " requested per class");
    const auto perm = random_permutation(static_cast<int64_t>(idx.size()), gen);
    for (size_t k = 0; k < perm.size(); ++k) {
      (static_cast<int64_t>(k) < per_class ? chosen : rest)
          .push_back(idx[static_cast<size_t>(perm[k])]);
    }
  }
  std::sort(chosen.begin(), chosen.end());
  std::sort(rest.begin(), rest.end());
}
}  // namespace detail

// Exactly `per_class` images of every class, chosen at random with `seed` (same seed, same
// images), kept in dataset order. Throws if a class has fewer images.
inline Dataset balanced_subset(const Dataset& ds, int64_t per_class, uint64_t seed) {
  std::vector<int64_t> chosen, rest;
  detail::split_per_class(ds, per_class, seed, "data::balanced_subset", chosen, rest);
  return select(ds, chosen,
                std::to_string(per_class) + " per class (seed " + std::to_string(seed) + ")");
}

// n images drawn without replacement with a seeded permutation, kept in dataset order.
// Not "the first n": image folders are sorted by class, so a prefix would hold one class.
inline Dataset random_subset(const Dataset& ds, int64_t n, uint64_t seed) {
  if (n >= ds.size()) return ds;
  Generator g(seed ^ 0x5eedULL);
  std::vector<int64_t> idx = random_permutation(ds.size(), g);
  idx.resize(static_cast<size_t>(n));
  std::sort(idx.begin(), idx.end());
  return select(ds, idx, "random subset of " + std::to_string(n) + " (seed " + std::to_string(seed) + ")");
}

struct TrainValSplit {
  Dataset train;
  Dataset val;
};

// Seeded random split: `val_size` images (chosen by a seeded permutation) go to val, the
// rest to train; both keep dataset order. The two parts are disjoint and cover everything.
inline TrainValSplit train_val_split(const Dataset& ds, int64_t val_size, uint64_t seed) {
  LOWBIT_CHECK(val_size >= 0 && val_size <= ds.size(), "data::train_val_split: val_size = ",
               val_size, ", expected 0..", ds.size(), " (the size of '", ds.source, "')");
  Generator gen(seed);
  const auto perm = random_permutation(ds.size(), gen);
  std::vector<int64_t> val(perm.begin(), perm.begin() + val_size);
  std::vector<int64_t> train(perm.begin() + val_size, perm.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  const std::string tag = " (seed " + std::to_string(seed) + ")";
  return {select(ds, train, "train part of split, " + std::to_string(val_size) + " held out" + tag),
          select(ds, val, "validation part of split, " + std::to_string(val_size) + " images" + tag)};
}

// Stratified variant: `val_per_class` images of every class go to val (seeded), the rest to
// train, so the validation set is balanced.
inline TrainValSplit train_val_split_per_class(const Dataset& ds, int64_t val_per_class,
                                               uint64_t seed) {
  std::vector<int64_t> val, train;
  detail::split_per_class(ds, val_per_class, seed, "data::train_val_split_per_class", val, train);
  const std::string tag = std::to_string(val_per_class) + " per class held out (seed " +
                          std::to_string(seed) + ")";
  return {select(ds, train, "train part of split, " + tag),
          select(ds, val, "validation part of split, " + tag)};
}

}  // namespace data
}  // namespace lowbit
