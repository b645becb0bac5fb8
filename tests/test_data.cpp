// Data pipeline: CIFAR-10 binary reader, image folders (stb_image), subsets and splits,
// augmentation, the DataLoader's resumable state and the data lookup. Every input is built
// here in a temporary directory; the real CIFAR-10 JPEGs are only sampled if present.
#include <catch2/catch.hpp>

#include <lowbit/data/augment.hpp>
#include <lowbit/data/cifar10_binary.hpp>
#include <lowbit/data/dataset.hpp>
#include <lowbit/data/find.hpp>
#include <lowbit/data/image_folder.hpp>
#include <lowbit/data/loader.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <memory>
#include <vector>

#include "stb_image_write_for_tests.hpp"  // stb_image_write: writes the test images

#include "temp_dir_for_tests.hpp"

using namespace lowbit;
using namespace lowbit::data;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using lowbit_tests::TempDir;

// Changes the working directory for one scope (the lookup searches relative to it).
struct ChangeDir {
  fs::path old;
  explicit ChangeDir(const fs::path& p) : old(fs::current_path()) { fs::current_path(p); }
  ~ChangeDir() {
    std::error_code ec;
    fs::current_path(old, ec);
  }
};

// Distinct, position-dependent pixel values: record r, channel c, row y, column x.
uint8_t pattern(int r, int c, int y, int x) { return static_cast<uint8_t>(r * 7 + c * 85 + y * 5 + x * 3); }

// Writes CIFAR-10 binary records with the given labels and pattern() pixels (CHW planes).
void write_bin(const std::string& path, const std::vector<int>& labels, int first_record = 0) {
  std::ofstream out(path, std::ios::binary);
  for (size_t r = 0; r < labels.size(); ++r) {
    out.put(static_cast<char>(labels[r]));
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x)
          out.put(static_cast<char>(pattern(first_record + static_cast<int>(r), c, y, x)));
  }
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// HWC pixels of a w x h image with `comp` channels, value depending on (seed, y, x, channel).
std::vector<uint8_t> hwc_image(int w, int h, int comp, int seed) {
  std::vector<uint8_t> px(static_cast<size_t>(w * h * comp));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < comp; ++k)
        px[static_cast<size_t>((y * w + x) * comp + k)] = static_cast<uint8_t>(seed * 31 + y * 7 + x * 3 + k * 60);
  return px;
}

void write_png(const std::string& path, int w, int h, int comp, int seed) {
  const auto px = hwc_image(w, h, comp, seed);
  REQUIRE(stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp) != 0);
}
void write_bmp(const std::string& path, int w, int h, int seed) {
  const auto px = hwc_image(w, h, 3, seed);
  REQUIRE(stbi_write_bmp(path.c_str(), w, h, 3, px.data()) != 0);
}

// A synthetic dataset: image i has label labels[i] and all bytes of image i's first plane
// equal to i % 256 (so subsets can be traced back), the rest a pattern.
Dataset synthetic(const std::vector<int64_t>& labels, int num_classes) {
  Dataset ds;
  for (int c = 0; c < num_classes; ++c) ds.class_names.push_back("class" + std::to_string(c));
  ds.labels = labels;
  ds.images.resize(labels.size() * kImageBytes);
  for (size_t i = 0; i < labels.size(); ++i) {
    uint8_t* img = ds.images.data() + i * kImageBytes;
    for (int p = 0; p < 1024; ++p) img[p] = static_cast<uint8_t>(i % 256);
    for (int p = 1024; p < kImageBytes; ++p) img[p] = static_cast<uint8_t>((i * 13 + static_cast<size_t>(p)) % 256);
  }
  ds.source = "synthetic";
  return ds;
}

bool same_batch(const Batch& a, const Batch& b) {
  return a.labels == b.labels && a.indices == b.indices &&
         a.images.shape() == b.images.shape() &&
         std::memcmp(a.images.data(), b.images.data(), sizeof(float) * static_cast<size_t>(a.images.numel())) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// CIFAR-10 binary format
// ---------------------------------------------------------------------------------------

TEST_CASE("CIFAR-10 binary: records are read exactly, CHW with the red plane first", "[data][cifar10]") {
  TempDir tmp;
  const std::string f = tmp.str("one.bin");
  write_bin(f, {3, 9, 0});
  const Dataset ds = read_cifar10_bin(f);
  REQUIRE(ds.size() == 3);
  CHECK(ds.labels == std::vector<int64_t>{3, 9, 0});
  CHECK(ds.class_names == cifar10_class_names());
  CHECK(ds.num_classes() == 10);
  CHECK_THAT(ds.source, Contains(f));
  CHECK(ds.images.size() == 3u * 3072u);
  bool all_equal = true;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) all_equal = all_equal && ds.pixel(r, c, y, x) == pattern(r, c, y, x);
  CHECK(all_equal);
  // Layout: byte 0 of a record's pixels is R(0,0), byte 1024 is G(0,0), byte 1023 is R(31,31).
  CHECK(ds.image(1)[0] == pattern(1, 0, 0, 0));
  CHECK(ds.image(1)[1024] == pattern(1, 1, 0, 0));
  CHECK(ds.image(1)[1023] == pattern(1, 0, 31, 31));
  CHECK(ds.image(1)[2 * 1024 + 32] == pattern(1, 2, 1, 0));
  CHECK(ds.class_counts() == std::vector<int64_t>{1, 0, 0, 1, 0, 0, 0, 0, 0, 1});
}

TEST_CASE("CIFAR-10 binary: a batches folder gives train = data_batch_1..5 and test = test_batch", "[data][cifar10]") {
  TempDir tmp;
  for (int k = 1; k <= 5; ++k) write_bin(tmp.str("data_batch_" + std::to_string(k) + ".bin"), {k, k - 1}, 2 * (k - 1));
  write_bin(tmp.str("test_batch.bin"), {7}, 100);
  const Dataset train = load_cifar10_binary(tmp.str(), Split::Train);
  const Dataset test = load_cifar10_binary(tmp.str(), Split::Test);
  REQUIRE(train.size() == 10);
  CHECK(train.labels == std::vector<int64_t>{1, 0, 2, 1, 3, 2, 4, 3, 5, 4});
  for (int r = 0; r < 10; ++r) CHECK(train.pixel(r, 2, 31, 30) == pattern(r, 2, 31, 30));
  REQUIRE(test.size() == 1);
  CHECK(test.labels == std::vector<int64_t>{7});
  CHECK(test.pixel(0, 1, 4, 5) == pattern(100, 1, 4, 5));
  CHECK_THAT(train.source, Contains("data_batch_5.bin"));
  CHECK_THAT(test.source, Contains("test_batch.bin"));

  fs::remove(tmp.path / "data_batch_3.bin");
  CHECK_THROWS_WITH(load_cifar10_binary(tmp.str(), Split::Train),
                    Contains("data_batch_3.bin") && Contains("does not exist"));
  CHECK_THROWS_WITH(load_cifar10_binary(tmp.str("nowhere"), Split::Test), Contains("nowhere"));
}

TEST_CASE("CIFAR-10 binary: truncated, empty and bad-label files give errors naming the file", "[data][cifar10][errors]") {
  TempDir tmp;
  const std::string f = tmp.str("data_batch_1.bin");
  write_bin(f, {1, 2, 3});
  fs::resize_file(f, 3 * 3073 - 5);  // the last record lost 5 bytes
  CHECK_THROWS_AS(read_cifar10_bin(f), lowbit::Error);
  CHECK_THROWS_WITH(read_cifar10_bin(f), Contains(f) && Contains("9214 bytes") &&
                                             Contains("not a multiple of the 3073-byte record") &&
                                             Contains("record 2 at byte offset 6146") &&
                                             Contains("truncated"));

  const std::string empty = tmp.str("empty.bin");
  write_bytes(empty, {});
  CHECK_THROWS_WITH(read_cifar10_bin(empty), Contains(empty) && Contains("empty"));

  const std::string bad = tmp.str("bad_label.bin");
  write_bin(bad, {4, 10, 1});
  CHECK_THROWS_WITH(read_cifar10_bin(bad), Contains(bad) && Contains("record 1") &&
                                               Contains("byte offset 3073") &&
                                               Contains("label byte is 10") && Contains("expected 0..9"));
  write_bin(bad, {255});
  CHECK_THROWS_WITH(read_cifar10_bin(bad), Contains("label byte is 255"));

  CHECK_THROWS_WITH(read_cifar10_bin(tmp.str("missing.bin")), Contains("missing.bin") && Contains("does not exist"));
  CHECK_THROWS_WITH(read_cifar10_bin(tmp.str()), Contains("not a regular file"));
}

// ---------------------------------------------------------------------------------------
// Image folders
// ---------------------------------------------------------------------------------------

TEST_CASE("image folder: sorted classes, sorted files, exact pixels, gray/RGBA converted to RGB", "[data][images]") {
  TempDir tmp;
  fs::create_directories(tmp.path / "dog");
  fs::create_directories(tmp.path / "cat");
  fs::create_directories(tmp.path / ".hidden_class");
  write_png(tmp.str("dog/b.png"), 32, 32, 3, 1);
  write_bmp(tmp.str("dog/a.BMP"), 32, 32, 2);
  write_png(tmp.str("cat/gray.png"), 32, 32, 1, 3);
  write_png(tmp.str("cat/rgba.png"), 32, 32, 4, 4);
  write_bytes(tmp.str("cat/README.txt"), {'h', 'i'});  // not an image: ignored
  write_png(tmp.str("cat/.hidden.png"), 5, 5, 3, 0);   // hidden: ignored

  const Dataset ds = load_image_folder(tmp.str());
  REQUIRE(ds.size() == 4);
  CHECK(ds.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(ds.labels == std::vector<int64_t>{0, 0, 1, 1});  // cat/gray, cat/rgba, dog/a.BMP, dog/b.png
  CHECK_THAT(ds.source, Contains(tmp.str()));

  auto expect_image = [&](int64_t i, int comp, int seed) {
    const auto px = hwc_image(32, 32, comp, seed);
    bool ok = true;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          const int k = comp == 1 ? 0 : c;  // gray replicated into R, G and B; alpha dropped
          ok = ok && ds.pixel(i, c, y, x) == px[static_cast<size_t>((y * 32 + x) * comp + k)];
        }
    return ok;
  };
  CHECK(expect_image(0, 1, 3));
  CHECK(expect_image(1, 4, 4));
  CHECK(expect_image(2, 3, 2));
  CHECK(expect_image(3, 3, 1));
}

TEST_CASE("image folder: corrupt file, wrong size, missing or empty directories give clear errors", "[data][images][errors]") {
  TempDir tmp;
  fs::create_directories(tmp.path / "a");
  fs::create_directories(tmp.path / "b");
  write_png(tmp.str("a/ok.png"), 32, 32, 3, 0);
  write_png(tmp.str("b/ok.png"), 32, 32, 3, 1);
  CHECK(load_image_folder(tmp.str()).size() == 2);

  const std::string corrupt = tmp.str("b/zz_corrupt.jpg");
  write_bytes(corrupt, {0xFF, 0xD8, 0xFF, 0x00, 0x12, 0x34, 0x56});  // a JPEG header, then junk
  CHECK_THROWS_WITH(load_image_folder(tmp.str()), Contains(corrupt) && Contains("cannot decode"));
  fs::remove(corrupt);

  const std::string narrow = tmp.str("a/narrow.png");
  write_png(narrow, 31, 32, 3, 5);
  CHECK_THROWS_WITH(load_image_folder(tmp.str()),
                    Contains(narrow) && Contains("31x32x3") && Contains("expected 32x32x3"));
  // Two bad files: the first in dataset order is reported, and the count of the others.
  write_png(tmp.str("b/big.png"), 64, 64, 1, 5);
  CHECK_THROWS_WITH(load_image_folder(tmp.str()), Contains(narrow) && Contains("1 more bad file"));
  fs::remove(narrow);
  fs::remove(tmp.path / "b" / "big.png");

  CHECK_THROWS_WITH(load_image_folder(tmp.str("no_such_dir")), Contains(tmp.str("no_such_dir")) && Contains("does not exist"));
  CHECK_THROWS_WITH(load_image_folder(tmp.str("a/ok.png")), Contains("is not a directory"));
  fs::create_directories(tmp.path / "empty_root");
  CHECK_THROWS_WITH(load_image_folder(tmp.str("empty_root")), Contains(tmp.str("empty_root")) && Contains("no class subfolders"));
  fs::create_directories(tmp.path / "c");
  CHECK_THROWS_WITH(load_image_folder(tmp.str()), Contains(tmp.str("c")) && Contains("holds no .jpg"));

  // decode_image_32x32 directly: an empty buffer.
  uint8_t out[3072];
  CHECK_THROWS_WITH(decode_image_32x32(nullptr, 0, "mem", out), Contains("'mem'") && Contains("cannot decode"));
}

TEST_CASE("image folder: a few real CIFAR-10 JPEGs decode", "[data][images][real]") {
  const fs::path root = "/work/shared/data/cifar10-jpg";
  std::error_code ec;
  if (!fs::is_directory(root / "train" / "cat", ec) || !fs::is_directory(root / "test" / "ship", ec)) {
    WARN("skipped: " << root.string() << " not present");
    return;
  }
  // Decode a handful in place (no copy of the data set), and through load_image_folder on
  // a temp folder of symlinks (falls back to copies where symlinks are not allowed).
  TempDir tmp;
  const std::vector<std::pair<std::string, std::string>> picks{
      {"train/cat", "cat"}, {"train/airplane", "airplane"}, {"test/ship", "ship"}};
  for (const auto& [sub, cls] : picks) {
    fs::create_directories(tmp.path / cls);
    for (const char* name : {"0000.jpg", "0001.jpg"}) {
      const fs::path src = root / sub / name;
      REQUIRE(fs::exists(src));
      fs::create_symlink(src, tmp.path / cls / name, ec);
      if (ec) fs::copy_file(src, tmp.path / cls / name);
    }
  }
  const Dataset ds = load_image_folder(tmp.str());
  REQUIRE(ds.size() == 6);
  CHECK(ds.class_names == std::vector<std::string>{"airplane", "cat", "ship"});
  CHECK(ds.labels == std::vector<int64_t>{0, 0, 1, 1, 2, 2});
  for (int64_t i = 0; i < ds.size(); ++i) {
    const uint8_t* img = ds.image(i);
    const auto [lo, hi] = std::minmax_element(img, img + kImageBytes);
    CHECK(*hi > *lo);  // a real photo is not constant
  }
  // Same bytes when decoded again.
  CHECK(load_image_folder(tmp.str()).images == ds.images);
}

// ---------------------------------------------------------------------------------------
// Subsets and splits
// ---------------------------------------------------------------------------------------

TEST_CASE("subsets: first N, balanced per class (seeded), train/validation split", "[data][subset]") {
  // 4 classes with 5, 6, 7, 8 images, interleaved.
  std::vector<int64_t> labels;
  for (int i = 0; i < 8; ++i)
    for (int c = 0; c < 4; ++c)
      if (i < 5 + c) labels.push_back(c);
  const Dataset ds = synthetic(labels, 4);
  REQUIRE(ds.size() == 26);
  auto index_of = [](const Dataset& d, int64_t k) { return static_cast<int64_t>(d.image(k)[0]); };

  const Dataset f = first_n(ds, 7);
  REQUIRE(f.size() == 7);
  for (int64_t k = 0; k < 7; ++k) CHECK(index_of(f, k) == k);
  CHECK_THROWS_WITH(first_n(ds, 27), Contains("n = 27") && Contains("0..26"));

  const Dataset b1 = balanced_subset(ds, 3, 42);
  CHECK(b1.size() == 12);
  CHECK(b1.class_counts() == std::vector<int64_t>{3, 3, 3, 3});
  const Dataset b2 = balanced_subset(ds, 3, 42);
  CHECK(b2.images == b1.images);
  CHECK(b2.labels == b1.labels);
  bool differs = false;
  for (uint64_t seed = 1; seed < 6 && !differs; ++seed) differs = balanced_subset(ds, 3, seed).images != b1.images;
  CHECK(differs);
  for (int64_t k = 0; k < b1.size(); ++k) {  // each chosen image carries its original label
    CHECK(b1.labels[k] == ds.labels[index_of(b1, k)]);
    if (k) CHECK(index_of(b1, k) > index_of(b1, k - 1));  // kept in dataset order
  }
  CHECK(balanced_subset(ds, 5, 0).class_counts() == std::vector<int64_t>{5, 5, 5, 5});
  CHECK_THROWS_WITH(balanced_subset(ds, 6, 0), Contains("class 0 ('class0') has 5 images") && Contains("6 requested"));

  const TrainValSplit s = train_val_split(ds, 6, 7);
  CHECK(s.train.size() == 20);
  CHECK(s.val.size() == 6);
  std::set<int64_t> seen;
  for (int64_t k = 0; k < s.train.size(); ++k) seen.insert(index_of(s.train, k));
  for (int64_t k = 0; k < s.val.size(); ++k) seen.insert(index_of(s.val, k));
  CHECK(seen.size() == 26u);  // disjoint and covering
  CHECK(train_val_split(ds, 6, 7).val.images == s.val.images);
  CHECK_THROWS_WITH(train_val_split(ds, 30, 0), Contains("val_size = 30"));

  const TrainValSplit sp = train_val_split_per_class(ds, 2, 3);
  CHECK(sp.val.class_counts() == std::vector<int64_t>{2, 2, 2, 2});
  CHECK(sp.train.class_counts() == std::vector<int64_t>{3, 4, 5, 6});

  Generator g(5);
  auto p = random_permutation(100, g);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(100);
  std::iota(iota.begin(), iota.end(), 0);
  CHECK(sorted == iota);
  CHECK(p != iota);
}

// ---------------------------------------------------------------------------------------
// Augmentation
// ---------------------------------------------------------------------------------------

TEST_CASE("augmentation: Cutout zeroes its rectangle of the normalized output and nothing else", "[data][augment]") {
  Dataset r = synthetic({0}, 1);
  Generator rg(3);
  for (auto& v : r.images) v = static_cast<uint8_t>(1 + rg.randint(255));
  const NormalizeTable t(Normalize::cifar10());
  std::vector<float> plain(3072), cut(3072);
  // Crop (2, 7) + flip, square rows [0, 6) x columns [20, 32): the corner case of a
  // centre near the top-right border. Output coordinates, i.e. after the flip.
  AugmentParams p{2, 7, true};
  augment_image(r.image(0), p, 4, t, plain.data());
  p.cut_y0 = 0, p.cut_y1 = 6, p.cut_x0 = 20, p.cut_x1 = 32;
  augment_image(r.image(0), p, 4, t, cut.data());
  int zeroed = 0, kept = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const auto k = static_cast<size_t>((c * 32 + y) * 32 + x);
        if (y < 6 && x >= 20) {
          zeroed += cut[k] == 0.0f;  // the channel mean, not the padding value -mean/std
        } else {
          kept += cut[k] == plain[k];
        }
      }
  CHECK(zeroed == 3 * 6 * 12);
  CHECK(kept == 3 * 1024 - 3 * 6 * 12);
  CHECK(t.value[0][0] != 0.0f);
  // A rectangle outside the image is refused with its coordinates.
  p.cut_y1 = 33;
  CHECK_THROWS_WITH(augment_image(r.image(0), p, 4, t, cut.data()), Contains("Cutout rows [0, 33)"));
  AugmentConfig bad;
  bad.cutout = 5000;  // larger than any image lowbit reads (a side of at most 4096)
  CHECK_THROWS_WITH(bad.check(), Contains("cutout = 5000"));
}

TEST_CASE("augmentation: crop offsets, flips and normalization match hand-computed values", "[data][augment]") {
  // R = row + 1, G = column + 1, B = 200: every output pixel reveals where it came from,
  // and 0 marks padding.
  Dataset ds = synthetic({0}, 1);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      ds.images[static_cast<size_t>(y * 32 + x)] = static_cast<uint8_t>(y + 1);
      ds.images[static_cast<size_t>(1024 + y * 32 + x)] = static_cast<uint8_t>(x + 1);
      ds.images[static_cast<size_t>(2048 + y * 32 + x)] = 200;
    }
  const NormalizeTable raw(Normalize::identity());  // out = v / 255
  auto run = [&](AugmentParams p) {
    std::vector<float> out(3072);
    augment_image(ds.image(0), p, 4, raw, out.data());
    std::vector<int> v(3072);
    for (int k = 0; k < 3072; ++k) v[k] = static_cast<int>(std::lround(out[k] * 255.0f));
    return v;
  };
  auto at = [](const std::vector<int>& v, int c, int y, int x) { return v[static_cast<size_t>((c * 32 + y) * 32 + x)]; };

  // Identity: (dy, dx) = (pad, pad), no flip.
  auto id = run({4, 4, false});
  CHECK(at(id, 0, 0, 0) == 1);
  CHECK(at(id, 1, 0, 0) == 1);
  CHECK(at(id, 0, 31, 5) == 32);
  CHECK(at(id, 1, 7, 31) == 32);

  // Crop at (dy, dx) = (0, 8): out(y, x) = src(y - 4, x + 4); rows 0..3 and columns 28..31 are padding.
  auto a = run({0, 8, false});
  CHECK(at(a, 0, 3, 0) == 0);
  CHECK(at(a, 2, 3, 10) == 0);
  CHECK(at(a, 0, 4, 0) == 1);   // src row 0
  CHECK(at(a, 1, 4, 0) == 5);   // src column 4
  CHECK(at(a, 1, 10, 27) == 32);
  CHECK(at(a, 1, 10, 28) == 0);
  CHECK(at(a, 2, 31, 27) == 200);
  CHECK(at(a, 0, 31, 27) == 28);

  // Flip without shift: out(y, x) = src(y, 31 - x).
  auto f = run({4, 4, true});
  CHECK(at(f, 1, 0, 0) == 32);
  CHECK(at(f, 1, 0, 31) == 1);
  CHECK(at(f, 0, 9, 0) == 10);

  // Crop (dy, dx) = (8, 1), then flip: out(y, x) = src(y + 4, (31 - x) - 3).
  auto cf = run({8, 1, true});
  CHECK(at(cf, 0, 0, 0) == 5);    // src row 4
  CHECK(at(cf, 1, 0, 0) == 29);   // src column 28
  CHECK(at(cf, 1, 0, 28) == 1);   // src column 0
  CHECK(at(cf, 1, 0, 29) == 0);   // src column -1: padding
  CHECK(at(cf, 0, 27, 5) == 32);  // src row 31
  CHECK(at(cf, 0, 28, 5) == 0);   // src row 32: padding

  // Every (dy, dx, flip) against the definition, pixel by pixel, on a pseudo-random image.
  {
    Dataset r = synthetic({0}, 1);
    Generator rg(77);
    for (auto& v : r.images) v = static_cast<uint8_t>(1 + rg.randint(255));
    bool ok = true;
    std::vector<float> out(3072);
    for (int dy = 0; dy <= 8; ++dy)
      for (int dx = 0; dx <= 8; ++dx)
        for (bool flip : {false, true}) {
          augment_image(r.image(0), {dy, dx, flip}, 4, raw, out.data());
          for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 32; ++y)
              for (int x = 0; x < 32; ++x) {
                const int sy = y + dy - 4, sx = (flip ? 31 - x : x) + dx - 4;
                const int v = (sy >= 0 && sy < 32 && sx >= 0 && sx < 32) ? r.pixel(0, c, sy, sx) : 0;
                ok = ok && out[static_cast<size_t>((c * 32 + y) * 32 + x)] == raw.value[c][v];
              }
        }
    CHECK(ok);
  }

  // The draws: dy = randint(9), dx = randint(9), flip = uniform() < 0.5, per image in order.
  Generator g1(123), g2(123);
  AugmentConfig cfg;
  std::set<int> dys, dxs;
  int flips = 0;
  for (int i = 0; i < 200; ++i) {
    const AugmentParams p = draw_augment_params(g1, cfg);
    const int dy = static_cast<int>(g2.randint(9)), dx = static_cast<int>(g2.randint(9));
    const bool flip = g2.uniform() < 0.5;
    CHECK(p.dy == dy);
    CHECK(p.dx == dx);
    CHECK(p.flip == flip);
    dys.insert(p.dy);
    dxs.insert(p.dx);
    flips += p.flip;
  }
  CHECK(dys.size() == 9u);  // every offset 0..8 occurs
  CHECK(dxs.size() == 9u);
  CHECK(flips > 60);
  CHECK(flips < 140);
  AugmentConfig off;
  off.random_crop = false;
  off.horizontal_flip = false;
  Generator g3(1);
  const auto before = g3.state_string();
  const AugmentParams p0 = draw_augment_params(g3, off);
  CHECK((p0.dy == 4 && p0.dx == 4 && !p0.flip));
  CHECK(g3.state_string() == before);  // disabled parts draw nothing

  // Cutout comes after the flip: cy = randint(32), cx = randint(32), square
  // [c - 8, c + 8) clipped to the image; the crop and flip draws are unchanged.
  AugmentConfig cut;
  cut.cutout = 16;
  Generator g4(5), g5(5);
  int clipped = 0;
  for (int i = 0; i < 300; ++i) {
    const AugmentParams p = draw_augment_params(g4, cut);
    CHECK(p.dy == static_cast<int>(g5.randint(9)));
    CHECK(p.dx == static_cast<int>(g5.randint(9)));
    CHECK(p.flip == (g5.uniform() < 0.5));
    const int cy = static_cast<int>(g5.randint(32)), cx = static_cast<int>(g5.randint(32));
    CHECK(p.cut_y0 == std::max(0, cy - 8));
    CHECK(p.cut_y1 == std::min(32, cy + 8));
    CHECK(p.cut_x0 == std::max(0, cx - 8));
    CHECK(p.cut_x1 == std::min(32, cx + 8));
    clipped += (p.cut_y1 - p.cut_y0) * (p.cut_x1 - p.cut_x0) < 256;
  }
  CHECK(clipped > 100);  // a full 16x16 needs cy and cx in 8..24: (17/32)^2 = 28% of draws
  CHECK(clipped < 290);

  // Normalization, CIFAR-10 defaults: (v / 255 - mean) / std.
  const NormalizeTable t(Normalize::cifar10());
  CHECK(t.value[0][255] == Approx((1.0 - 0.4914) / 0.2470).epsilon(1e-6));    // 2.0591093...
  CHECK(t.value[1][0] == Approx(-0.4822 / 0.2435).epsilon(1e-6));             // -1.9802874...
  CHECK(t.value[2][128] == Approx((128.0 / 255.0 - 0.4465) / 0.2616).epsilon(1e-6));
  CHECK(t.value[0][255] == (255.0f / 255.0f - 0.4914f) / 0.2470f);           // PyTorch's float formula
  Batch b = make_batch(ds, {0, 0}, {{4, 4, false}, {0, 0, false}}, 4, t);
  CHECK(b.images.shape() == Shape{2, 3, 32, 32});
  CHECK(b.labels == std::vector<int64_t>{0, 0});
  CHECK(b.images.at({0, 0, 0, 0}) == t.value[0][1]);
  CHECK(b.images.at({0, 2, 5, 5}) == t.value[2][200]);
  CHECK(b.images.at({1, 2, 0, 0}) == t.value[2][0]);   // padding is a zero pixel, normalized
  CHECK(b.images.at({1, 1, 4, 4}) == t.value[1][1]);
  CHECK_THROWS_WITH(make_batch(ds, {0}, {{9, 0, false}}, 4, t), Contains("(9, 0)") && Contains("0..8"));
  CHECK_THROWS_WITH(make_batch(ds, {1}, {}, 4, t), Contains("index 1"));
  CHECK_THROWS_WITH(NormalizeTable(Normalize{{0, 0, 0}, {1, 0, 1}}), Contains("std[1]"));
}

// ---------------------------------------------------------------------------------------
// DataLoader
// ---------------------------------------------------------------------------------------

TEST_CASE("loader: batch sizes, drop_last, shuffling is a per-epoch permutation", "[data][loader]") {
  std::vector<int64_t> labels(23);
  for (int i = 0; i < 23; ++i) labels[static_cast<size_t>(i)] = i % 3;
  const Dataset ds = synthetic(labels, 3);

  LoaderOptions o;
  o.batch_size = 5;
  o.seed = 9;
  DataLoader loader(ds, o);
  CHECK(loader.batches_per_epoch() == 5);
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<int64_t> seen, sizes;
    Batch b;
    while (loader.next(b)) {
      sizes.push_back(b.size());
      CHECK(b.images.shape() == Shape{b.size(), 3, 32, 32});
      for (int64_t k = 0; k < b.size(); ++k) CHECK(b.labels[k] == ds.labels[b.indices[k]]);
      seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    }
    CHECK(sizes == std::vector<int64_t>{5, 5, 5, 5, 3});
    CHECK(seen == loader.epoch_order(e));
    std::vector<int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> iota(23);
    std::iota(iota.begin(), iota.end(), 0);
    CHECK(sorted == iota);  // every image exactly once
    epochs.push_back(seen);
    CHECK(loader.epoch() == e + 1);
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(epochs[1] != epochs[2]);

  o.drop_last = true;
  o.shuffle = false;
  o.augment = false;
  DataLoader plain(ds, o);
  CHECK(plain.batches_per_epoch() == 4);
  Batch b;
  int n = 0;
  while (plain.next(b)) {
    CHECK(b.size() == 5);
    CHECK(b.indices == std::vector<int64_t>{5 * n, 5 * n + 1, 5 * n + 2, 5 * n + 3, 5 * n + 4});
    ++n;
  }
  CHECK(n == 4);
  // Without augmentation the batch is the normalized image itself.
  const NormalizeTable t{Normalize{}};
  CHECK(b.images.at({0, 0, 0, 0}) == t.value[0][ds.image(15)[0]]);

  o.batch_size = 24;
  CHECK_THROWS_WITH(DataLoader(ds, o), Contains("batch_size 24") && Contains("drop_last"));
  o.batch_size = 0;
  CHECK_THROWS_WITH(DataLoader(ds, o), Contains("batch_size = 0"));
  CHECK_THROWS_WITH(DataLoader(Dataset{}, LoaderOptions{}), Contains("empty"));
}

// Data-parallel training (dist/data_parallel.hpp): the shards of every batch are the
// one-process batch, split by position, with the same augmentation, over several epochs.
TEST_CASE("loader: the shards of a batch are the one-process batch, image for image", "[data][loader][dist]") {
  std::vector<int64_t> labels(37);
  for (int i = 0; i < 37; ++i) labels[static_cast<size_t>(i)] = i % 4;
  const auto ds = std::make_shared<const Dataset>(synthetic(labels, 4));
  LoaderOptions o;
  o.batch_size = 8;  // 4 batches of 8 and one of 5 per epoch
  o.seed = 7;
  o.augment_config.cutout = 8;
  for (int shards : {2, 3, 5}) {
    DataLoader whole(ds, o);
    std::vector<std::unique_ptr<DataLoader>> parts;
    for (int r = 0; r < shards; ++r) {
      LoaderOptions p = o;
      p.shard = r, p.shards = shards;
      parts.push_back(std::make_unique<DataLoader>(ds, p));
    }
    int batches = 0;
    for (int e = 0; e < 3; ++e) {
      Batch b;
      while (whole.next(b)) {
        const int64_t n = b.size(), per = b.images.numel() / n;
        for (int r = 0; r < shards; ++r) {
          Batch s;
          REQUIRE(parts[static_cast<size_t>(r)]->next(s));
          const int64_t lo = n * r / shards, hi = n * (r + 1) / shards;
          INFO("shards " << shards << ", epoch " << e << ", shard " << r);
          REQUIRE(s.size() == hi - lo);
          CHECK(std::equal(s.labels.begin(), s.labels.end(), b.labels.begin() + lo));
          CHECK(std::equal(s.indices.begin(), s.indices.end(), b.indices.begin() + lo));
          CHECK(std::memcmp(s.images.data(), b.images.data() + lo * per, sizeof(float) * static_cast<size_t>(s.images.numel())) == 0);
        }
        ++batches;
      }
      for (auto& p : parts) {
        Batch s;
        CHECK(!p->next(s));  // every shard's epoch ends with the whole batch's
      }
    }
    CHECK(batches == 15);
    for (auto& p : parts) CHECK(p->state() == whole.state());  // one checkpointed state serves every process
  }
  // A batch that would leave a process without images is refused at construction.
  LoaderOptions bad = o;
  bad.shards = 6, bad.shard = 0;  // the last batch of an epoch has 5 images
  CHECK_THROWS_WITH(DataLoader(ds, bad), Catch::Contains("split over 6 processes would leave a process without images") &&
                                             Catch::Contains("the last batch 5"));
  bad.shards = 2, bad.shard = 2;
  CHECK_THROWS_WITH(DataLoader(ds, bad), Catch::Contains("shard 2 of 2, expected 0 <= shard < shards"));
}

TEST_CASE("loader: state save/restore resumes with bit-identical batches", "[data][loader][resume]") {
  std::vector<int64_t> labels(37);
  for (int i = 0; i < 37; ++i) labels[static_cast<size_t>(i)] = i % 4;
  const auto ds = std::make_shared<const Dataset>(synthetic(labels, 4));
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 2024;

  // Uninterrupted: 4 epochs.
  std::vector<Batch> full;
  {
    DataLoader a(ds, o);
    for (int e = 0; e < 4; ++e) {
      Batch b;
      while (a.next(b)) full.push_back(b);
    }
  }
  REQUIRE(full.size() == 20u);

  // Interrupted after epoch 1 (k = 2 epochs done), resumed in a fresh loader.
  std::string saved;
  {
    DataLoader a(ds, o);
    for (int e = 0; e < 2; ++e) {
      Batch b;
      while (a.next(b)) {}
    }
    saved = a.state();
  }
  {
    DataLoader r(ds, o);
    r.set_state(saved);
    CHECK(r.epoch() == 2);
    CHECK(r.position() == 0);
    size_t k = 10;
    for (int e = 2; e < 4; ++e) {
      Batch b;
      while (r.next(b)) {
        REQUIRE(k < full.size());
        CHECK(same_batch(b, full[k]));
        ++k;
      }
    }
    CHECK(k == full.size());
  }

  // Interrupted mid-epoch (after 2 batches of epoch 1), resumed through the JSON struct.
  {
    DataLoader a(ds, o);
    Batch b;
    // The 5 batches of epoch 0, the false that ends it, then the first batch of epoch 1.
    for (int i = 0; i < 5 + 1 + 1; ++i) a.next(b);
    REQUIRE(a.epoch() == 1);
    REQUIRE(a.position() == 8);
    const LoaderState s = a.save_state();
    const nlohmann::json j = s.to_json();
    DataLoader r(ds, LoaderOptions{o});
    r.load_state(LoaderState::from_json(nlohmann::json::parse(j.dump())));
    for (const char* key : {"epoch", "position", "batch_size", "perm_seed"}) {  // fractional or huge: refused
      nlohmann::json bad = j;
      bad[key] = 1e82;
      CHECK_THROWS_WITH(LoaderState::from_json(bad), Catch::Contains(std::string(key) + " = 1e+82"));
      bad[key] = 0.5;
      CHECK_THROWS_WITH(LoaderState::from_json(bad), Catch::Contains(std::string(key) + " = 0.5"));
    }
    CHECK(r.epoch() == a.epoch());
    CHECK(r.position() == a.position());
    Batch x, y;
    for (int i = 0; i < 6; ++i) {
      const bool more_a = a.next(x), more_r = r.next(y);
      CHECK(more_a == more_r);
      if (more_a) CHECK(same_batch(x, y));
    }
    // Another seed gives other batches (so the equalities above are not vacuous).
    LoaderOptions o3 = o;
    o3.seed = 2025;
    DataLoader other_seed(ds, o3);
    Batch z;
    other_seed.next(z);
    CHECK(!same_batch(z, full[0]));
  }

  // Mismatches and garbage are errors, not silent divergence.
  LoaderOptions o2 = o;
  o2.batch_size = 4;
  DataLoader other(ds, o2);
  CHECK_THROWS_WITH(other.set_state(saved), Contains("batch_size 8") && Contains("has 4"));
  DataLoader smaller(synthetic({0, 1, 2}, 4), o);
  CHECK_THROWS_WITH(smaller.set_state(saved), Contains("37 images"));
  DataLoader same(ds, o);
  CHECK_THROWS_WITH(same.set_state("not json"), Contains("cannot parse") && Contains("DataLoader::state()"));
  CHECK_THROWS_WITH(same.set_state("{\"format\": \"lowbit.DataLoader\", \"version\": 1}"), Contains("malformed"));
  auto js = nlohmann::json::parse(saved);
  js["rng"] = "garbage";
  CHECK_THROWS_WITH(same.set_state(js.dump()), Contains("cannot parse generator state"));
  js = nlohmann::json::parse(saved);
  js["position"] = 99;
  CHECK_THROWS_WITH(same.set_state(js.dump()), Contains("position 99") && Contains("0..37"));
}

// ---------------------------------------------------------------------------------------
// Lookup
// ---------------------------------------------------------------------------------------

TEST_CASE("find_cifar10: explicit dirs, format detection, and the not-found message", "[data][find]") {
  TempDir tmp;
  const fs::path bin = tmp.path / "mydata" / "cifar-10-batches-bin";
  fs::create_directories(bin);
  write_bin((bin / "test_batch.bin").string(), {1, 2});
  const fs::path jpg = tmp.path / "jpgs";
  fs::create_directories(jpg / "train" / "cat");
  fs::create_directories(jpg / "test" / "cat");

  // --data pointing at the batches folder itself, or at its parent.
  DataLocation l1 = find_cifar10_in(bin.string(), "", {});
  CHECK(l1.format == DataFormat::Binary);
  CHECK(l1.dir == bin.lexically_normal().string());
  CHECK_THAT(l1.description, Contains("binary") && Contains("--data"));
  DataLocation l2 = find_cifar10_in((tmp.path / "mydata").string(), "", {});
  CHECK(l2.dir == bin.lexically_normal().string());
  CHECK(load_cifar10(l2, Split::Test).labels == std::vector<int64_t>{1, 2});

  // $LOWBIT_DATA (given explicitly here) with image folders.
  DataLocation l3 = find_cifar10_in("", jpg.string(), {});
  CHECK(l3.format == DataFormat::ImageFolders);
  CHECK_THAT(l3.description, Contains("image folders") && Contains("LOWBIT_DATA"));

  // An explicit directory without data is an error of its own, naming it.
  CHECK_THROWS_WITH(find_cifar10_in(tmp.str("nope"), "", {}),
                    Contains("--data") && Contains(tmp.str("nope")) && Contains("does not exist"));
  CHECK_THROWS_WITH(find_cifar10_in("", tmp.str(), {}), Contains("$LOWBIT_DATA") && Contains("holds neither"));

  // Default places, relative to the working directory and a repository root.
  const fs::path repo = tmp.path / "work" / "main";
  fs::create_directories(repo / "build");
  {
    ChangeDir cd(repo / "build");
    CHECK_THROWS_WITH(find_cifar10_in("", "", {repo.string()}),
                      Contains("CIFAR-10 not found") && Contains("--data: not given") &&
                          Contains("$LOWBIT_DATA: not given") &&
                          Contains(fs::weakly_canonical(repo / "data" / "cifar-10-batches-bin").string()) &&
                          Contains(fs::weakly_canonical(tmp.path / "work" / "shared" / "data" / "cifar10-jpg").string()) &&
                          Contains("download_cifar10.sh"));
    fs::create_directories(tmp.path / "work" / "shared" / "data" / "cifar10-jpg" / "train" / "dog");
    fs::create_directories(tmp.path / "work" / "shared" / "data" / "cifar10-jpg" / "test" / "dog");
    DataLocation l4 = find_cifar10_in("", "", {repo.string()});
    CHECK(l4.format == DataFormat::ImageFolders);
    CHECK_THAT(l4.dir, Contains("shared"));
    // The binary folder in the repository comes first once it exists.
    fs::create_directories(repo / "data" / "cifar-10-batches-bin");
    write_bin((repo / "data" / "cifar-10-batches-bin" / "data_batch_1.bin").string(), {0});
    DataLocation l5 = find_cifar10_in("", "", {repo.string()});
    CHECK(l5.format == DataFormat::Binary);
    CHECK_THAT(l5.description, Contains("parent of the working directory"));
  }

#ifdef LOWBIT_SOURCE_DIR
  // The real shared folder next to this repository, if this machine has it.
  const fs::path shared = fs::path(LOWBIT_SOURCE_DIR) / ".." / "shared" / "data" / "cifar10-jpg";
  std::error_code ec;
  if (fs::is_directory(shared / "train", ec)) {
    ChangeDir cd(tmp.path);
    const DataLocation real = find_cifar10_in("", "", {LOWBIT_SOURCE_DIR});
    CHECK(real.format == DataFormat::ImageFolders);
  } else {
    WARN("real data check skipped: " << shared.string() << " not present");
  }
#endif
}
