// Data set readers beyond CIFAR-10: MNIST's IDX files, CIFAR-100's binary files and image
// folders of any size and channel count (resize, grayscale). Every input is built here in a
// temporary directory; the real MNIST and CIFAR-10 files are read only if present.
#include <catch2/catch.hpp>

#include <lowbit/data/cifar100_binary.hpp>
#include <lowbit/data/dataset.hpp>
#include <lowbit/data/image_folder.hpp>
#include <lowbit/data/mnist_idx.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "stb_image_write_for_tests.hpp"  // stb_image_write: writes the test images

#include "temp_dir_for_tests.hpp"

using namespace lowbit;
using namespace lowbit::data;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

// Every reader error is one line: the matcher of each error check ends with this.
#define ONE_LINE !Contains("\n")

namespace {

using lowbit_tests::TempDir;

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

uint8_t mnist_pixel(int i, int y, int x) { return static_cast<uint8_t>(i * 40 + y * 4 + x + 1); }

// IDX image file: magic, count, rows, cols, then mnist_pixel() values; `extra` is appended.
std::vector<uint8_t> idx_images(uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols) {
  std::vector<uint8_t> v;
  put_be32(v, magic), put_be32(v, count), put_be32(v, rows), put_be32(v, cols);
  for (uint32_t i = 0; i < count; ++i)
    for (uint32_t y = 0; y < rows; ++y)
      for (uint32_t x = 0; x < cols; ++x) v.push_back(mnist_pixel(int(i), int(y), int(x)));
  return v;
}

std::vector<uint8_t> idx_labels(uint32_t magic, const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> v;
  put_be32(v, magic), put_be32(v, static_cast<uint32_t>(labels.size()));
  v.insert(v.end(), labels.begin(), labels.end());
  return v;
}

uint8_t cifar_pixel(int r, int c, int y, int x) { return static_cast<uint8_t>(r * 11 + c * 70 + y * 5 + x * 3); }

// CIFAR-100 records (coarse, fine) with cifar_pixel() CHW planes.
std::vector<uint8_t> cifar100_records(const std::vector<std::pair<int, int>>& labels) {
  std::vector<uint8_t> v;
  for (size_t r = 0; r < labels.size(); ++r) {
    v.push_back(static_cast<uint8_t>(labels[r].first));
    v.push_back(static_cast<uint8_t>(labels[r].second));
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) v.push_back(cifar_pixel(static_cast<int>(r), c, y, x));
  }
  return v;
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

void write_png(const fs::path& path, int w, int h, int comp, int seed) {
  fs::create_directories(path.parent_path());
  const auto px = hwc_image(w, h, comp, seed);
  REQUIRE(stbi_write_png(path.string().c_str(), w, h, comp, px.data(), w * comp) != 0);
}

// True if image i of `ds` holds the PNG written with (w, h, comp, seed); `comp` 1 forced to
// 3 channels replicates the grey value into every plane.
bool same_pixels(const Dataset& ds, int64_t i, int w, int h, int comp, int seed) {
  const auto px = hwc_image(w, h, comp, seed);
  for (int64_t c = 0; c < ds.channels; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const int k = comp == 1 ? 0 : static_cast<int>(c);
        if (ds.pixel(i, c, y, x) != px[static_cast<size_t>((y * w + x) * comp + k)]) return false;
      }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// MNIST IDX
// ---------------------------------------------------------------------------------------

TEST_CASE("mnist: hand-written IDX files give every pixel, label and the shape", "[data][mnist]") {
  TempDir tmp;
  const std::vector<uint8_t> labels{3, 0, 9, 1, 7};
  write_bytes(tmp.str("train-images-idx3-ubyte"), idx_images(2051, 5, 3, 4));
  write_bytes(tmp.str("train-labels-idx1-ubyte"), idx_labels(2049, labels));
  write_bytes(tmp.str("t10k-images-idx3-ubyte"), idx_images(2051, 2, 3, 4));
  write_bytes(tmp.str("t10k-labels-idx1-ubyte"), idx_labels(2049, {5, 6}));

  const Dataset ds = read_mnist_idx(tmp.str("train-images-idx3-ubyte"), tmp.str("train-labels-idx1-ubyte"));
  REQUIRE(ds.size() == 5);
  CHECK(ds.channels == 1);
  CHECK(ds.height == 3);
  CHECK(ds.width == 4);
  CHECK(ds.images.size() == 5 * 12);
  CHECK(ds.labels == std::vector<int64_t>{3, 0, 9, 1, 7});
  CHECK(ds.class_names == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  CHECK_THAT(ds.source, Contains("train-images-idx3-ubyte") && Contains("train-labels-idx1-ubyte"));
  bool all = true;
  for (int i = 0; i < 5; ++i)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) all = all && ds.pixel(i, 0, y, x) == mnist_pixel(i, y, x);
  CHECK(all);
  CHECK_NOTHROW(ds.check());

  const Dataset train = load_mnist(tmp.str(), Split::Train);
  CHECK(train.images == ds.images);
  CHECK(train.labels == ds.labels);
  CHECK_THAT(train.source, Contains("train split") && Contains(tmp.str()));
  const Dataset test = load_mnist(tmp.str(), Split::Test);
  CHECK(test.size() == 2);
  CHECK(test.labels == std::vector<int64_t>{5, 6});
  CHECK(test.pixel(1, 0, 2, 3) == mnist_pixel(1, 2, 3));
}

TEST_CASE("mnist: bad IDX files give one-line errors naming the file and the numbers", "[data][mnist][errors]") {
  TempDir tmp;
  const std::string im = tmp.str("images-idx3-ubyte"), lb = tmp.str("labels-idx1-ubyte");
  const std::vector<uint8_t> good_images = idx_images(2051, 5, 3, 4);  // 16 + 60 = 76 bytes
  write_bytes(im, good_images);
  write_bytes(lb, idx_labels(2049, {1, 2, 3, 4, 5}));
  REQUIRE(read_mnist_idx(im, lb).size() == 5);

  SECTION("wrong magic: the value in hex and decimal, the expected one, swapped files") {
    CHECK_THROWS_WITH(read_mnist_idx(lb, im), Contains(lb) && Contains("0x00000801") && Contains("2049") &&
                                                  Contains("0x00000803") && Contains("2051") &&
                                                  Contains("swapped") && ONE_LINE);
    const std::string bad = tmp.str("bad");
    write_bytes(bad, idx_images(0x12345678, 5, 3, 4));
    CHECK_THROWS_WITH(read_mnist_idx(bad, lb), Contains(bad) && Contains("0x12345678") &&
                                                   Contains("305419896") && Contains("2051") && ONE_LINE);
    write_bytes(bad, idx_images(0x03080000, 5, 3, 4));  // 2051 written little-endian
    CHECK_THROWS_WITH(read_mnist_idx(bad, lb), Contains("little-endian") && ONE_LINE);
  }
  SECTION("image and label counts disagree") {
    write_bytes(lb, idx_labels(2049, {1, 2, 3, 4}));
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(im) && Contains(lb) && Contains("5 images") &&
                                                  Contains("4 labels") && ONE_LINE);
  }
  SECTION("truncated and extra bytes: the sizes") {
    auto cut = good_images;
    cut.resize(cut.size() - 3);
    write_bytes(im, cut);
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(im) && Contains("has 73 bytes") &&
                                                  Contains("expected 76") && Contains("3 bytes short") && ONE_LINE);
    auto longer = good_images;
    longer.push_back(0), longer.push_back(0);
    write_bytes(im, longer);
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(im) && Contains("78 bytes") && Contains("2 extra bytes") && ONE_LINE);
    write_bytes(im, {0, 0, 8, 3, 0, 0});
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(im) && Contains("6 bytes") && Contains("16-byte header") && ONE_LINE);
    write_bytes(im, good_images);
    std::vector<uint8_t> labels_long = idx_labels(2049, {1, 2, 3, 4, 5});
    labels_long.push_back(1);
    write_bytes(lb, labels_long);
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(lb) && Contains("1 extra bytes") && ONE_LINE);
  }
  SECTION("zero rows, zero count") {
    write_bytes(im, idx_images(2051, 5, 0, 4));
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(im) && Contains("0 rows") && ONE_LINE);
    write_bytes(im, idx_images(2051, 0, 3, 4));
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(im) && Contains("0 images") && ONE_LINE);
    write_bytes(im, idx_images(2051, 1, 8192, 8192));  // header only: far too large an image
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(im) && Contains("8192 rows") && ONE_LINE);
  }
  SECTION("label 10: its index and offset") {
    write_bytes(lb, idx_labels(2049, {1, 2, 10, 4, 5}));
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(lb) && Contains("label 2 ") && Contains("byte offset 10") &&
                                                  Contains("is 10") && Contains("0..9") && ONE_LINE);
  }
  SECTION("missing, not a file, gzip-compressed or only the .gz present") {
    CHECK_THROWS_WITH(read_mnist_idx(tmp.str("nothing"), lb), Contains(tmp.str("nothing")) && Contains("does not exist") && ONE_LINE);
    CHECK_THROWS_WITH(read_mnist_idx(tmp.str(), lb), Contains("not a regular file") && ONE_LINE);
    const std::vector<uint8_t> gz{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    write_bytes(im, gz);
    CHECK_THROWS_WITH(read_mnist_idx(im, lb), Contains(im) && Contains("gzip-compressed") &&
                                                  Contains("gunzip " + im + ".gz") && ONE_LINE);
    write_bytes(im + ".gz", gz);
    CHECK_THROWS_WITH(read_mnist_idx(im + ".gz", lb), Contains("gunzip " + im + ".gz") && ONE_LINE);

    TempDir d;
    write_bytes(d.str("train-images-idx3-ubyte.gz"), gz);
    write_bytes(d.str("train-labels-idx1-ubyte.gz"), gz);
    CHECK_THROWS_WITH(load_mnist(d.str(), Split::Train),
                      Contains(d.str("train-images-idx3-ubyte")) && Contains("does not exist but") &&
                          Contains("gunzip " + d.str("train-images-idx3-ubyte.gz")) && ONE_LINE);
    CHECK_THROWS_WITH(load_mnist(d.str(), Split::Test), Contains(d.str("t10k-images-idx3-ubyte")) &&
                                                            Contains("does not exist") && ONE_LINE);
    CHECK_THROWS_WITH(load_mnist(tmp.str("no_dir"), Split::Test), Contains(tmp.str("no_dir")) && ONE_LINE);
  }
}

TEST_CASE("mnist: the real test split (10,000 images, 28x28, known label counts)", "[data][mnist][real]") {
  const fs::path dir = fs::path(LOWBIT_SOURCE_DIR) / ".." / "shared" / "data" / "mnist";
  std::error_code ec;
  if (!fs::exists(dir / "t10k-images-idx3-ubyte", ec)) {
    WARN("skipped: " << dir.string() << " not present");
    return;
  }
  const Dataset test = load_mnist(dir.string(), Split::Test);
  REQUIRE(test.size() == 10000);
  CHECK(test.shape_string() == "1x28x28");
  CHECK(test.labels[0] == 7);
  CHECK(test.class_counts() == std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
  const auto [lo, hi] = std::minmax_element(test.images.begin(), test.images.end());
  CHECK(*lo == 0);
  CHECK(*hi == 255);
  const Dataset train = load_mnist(dir.string(), Split::Train);
  REQUIRE(train.size() == 60000);
  CHECK(train.class_counts() == std::vector<int64_t>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});
  CHECK(train.labels[0] == 5);
}

// ---------------------------------------------------------------------------------------
// CIFAR-100 binary
// ---------------------------------------------------------------------------------------

TEST_CASE("cifar100: fine labels used, CHW pixels copied, 100 class names", "[data][cifar100]") {
  TempDir tmp;
  write_bytes(tmp.str("train.bin"), cifar100_records({{4, 30}, {19, 99}, {0, 0}}));
  write_bytes(tmp.str("test.bin"), cifar100_records({{7, 55}}));
  const Dataset ds = read_cifar100_bin(tmp.str("train.bin"));
  REQUIRE(ds.size() == 3);
  CHECK(ds.labels == std::vector<int64_t>{30, 99, 0});
  CHECK(ds.shape_string() == "3x32x32");
  REQUIRE(ds.num_classes() == 100);
  CHECK(ds.class_names[0] == "apple");
  CHECK(ds.class_names[30] == "dolphin");
  CHECK(ds.class_names[99] == "worm");
  CHECK(std::is_sorted(ds.class_names.begin(), ds.class_names.end()));
  bool all = true;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) all = all && ds.pixel(r, c, y, x) == cifar_pixel(r, c, y, x);
  CHECK(all);
  CHECK_NOTHROW(ds.check());

  const Dataset test = load_cifar100_binary(tmp.str(), Split::Test);
  CHECK(test.labels == std::vector<int64_t>{55});
  CHECK_THAT(test.source, Contains("test.bin") && Contains("test split"));
  CHECK(load_cifar100_binary(tmp.str(), Split::Train).images == ds.images);
}

TEST_CASE("cifar100: wrong size, CIFAR-10 file, bad labels give one-line errors", "[data][cifar100][errors]") {
  TempDir tmp;
  const std::string f = tmp.str("train.bin");
  auto bytes = cifar100_records({{1, 1}, {2, 2}, {3, 3}});
  bytes.resize(bytes.size() - 10);  // record 2 at offset 6148 has 3064 bytes
  write_bytes(f, bytes);
  CHECK_THROWS_WITH(read_cifar100_bin(f), Contains(f) && Contains("record 2") && Contains("6148") &&
                                              Contains("3074") && Contains("truncated") && ONE_LINE);
  write_bytes(f, std::vector<uint8_t>(2 * 3073, 1));  // two CIFAR-10 records
  CHECK_THROWS_WITH(read_cifar100_bin(f), Contains(f) && Contains("3073") && Contains("CIFAR-10 file") && ONE_LINE);
  write_bytes(f, cifar100_records({{1, 1}, {2, 100}}));
  CHECK_THROWS_WITH(read_cifar100_bin(f), Contains(f) && Contains("record 1") && Contains("byte offset 3075") &&
                                              Contains("fine label byte is 100") && Contains("0..99") && ONE_LINE);
  write_bytes(f, cifar100_records({{20, 1}}));
  CHECK_THROWS_WITH(read_cifar100_bin(f), Contains(f) && Contains("record 0") && Contains("byte offset 0") &&
                                              Contains("coarse label byte is 20") && Contains("0..19") && ONE_LINE);
  write_bytes(f, {});
  CHECK_THROWS_WITH(read_cifar100_bin(f), Contains(f) && Contains("empty") && ONE_LINE);
  CHECK_THROWS_WITH(read_cifar100_bin(tmp.str("test.bin")), Contains(tmp.str("test.bin")) && Contains("does not exist"));
  CHECK_THROWS_WITH(load_cifar100_binary(tmp.str("none"), Split::Train), Contains(tmp.str("none")) && ONE_LINE);
}

// ---------------------------------------------------------------------------------------
// Image folders: any size, any number of classes, grayscale or RGB
// ---------------------------------------------------------------------------------------

TEST_CASE("image folder options: 64x64 RGB, 3 classes, exact pixels, resize, channel policy", "[data][folder]") {
  TempDir tmp;
  const std::vector<std::string> classes{"ant", "bee", "cow"};
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 2; ++k) write_png(tmp.path / classes[size_t(c)] / ("img" + std::to_string(k) + ".png"), 64, 64, 3, c * 2 + k);

  const Dataset ds = load_image_folder(tmp.str(), ImageFolderOptions{});
  REQUIRE(ds.size() == 6);
  CHECK(ds.shape_string() == "3x64x64");
  CHECK(ds.class_names == classes);
  CHECK(ds.labels == std::vector<int64_t>{0, 0, 1, 1, 2, 2});
  for (int i = 0; i < 6; ++i) CHECK(same_pixels(ds, i, 64, 64, 3, i));
  CHECK_NOTHROW(ds.check());
  CHECK_THAT(ds.source, Contains(tmp.str()) && Contains("3x64x64"));

  const Dataset small = load_image_folder(tmp.str(), ImageFolderOptions{32, 0});
  CHECK(small.shape_string() == "3x32x32");
  CHECK(small.labels == ds.labels);
  // A smooth gradient stays close to the original sampled at the same place.
  CHECK(std::abs(int(small.pixel(0, 0, 10, 10)) - int(ds.pixel(0, 0, 21, 21))) <= 6);
  CHECK(load_image_folder(tmp.str(), ImageFolderOptions{64, 3}).images == ds.images);  // same size: no resampling
  CHECK(load_image_folder(tmp.str(), ImageFolderOptions{100, 0}).shape_string() == "3x100x100");

  const Dataset gray = load_image_folder(tmp.str(), ImageFolderOptions{0, 1});
  CHECK(gray.shape_string() == "1x64x64");

  // The original reader still wants 32x32.
  CHECK_THROWS_WITH(load_image_folder(tmp.str()), Contains("64x64x3") && Contains("expected 32x32x3"));
  // One RGB image among grayscale ones makes the automatic choice RGB.
  TempDir mixed;
  write_png(mixed.path / "a" / "g.png", 8, 8, 1, 1);
  write_png(mixed.path / "b" / "ga.png", 8, 8, 2, 2);  // grey + alpha counts as grey
  CHECK(load_image_folder(mixed.str(), ImageFolderOptions{}).channels == 1);
  write_png(mixed.path / "b" / "rgb.png", 8, 8, 3, 3);
  const Dataset m = load_image_folder(mixed.str(), ImageFolderOptions{});
  CHECK(m.channels == 3);
  CHECK(same_pixels(m, 0, 8, 8, 1, 1));
  CHECK(same_pixels(m, 2, 8, 8, 3, 3));
}

TEST_CASE("image folder split: 28x28 grayscale train/test, auto 1 channel, forced 3, resize", "[data][folder]") {
  TempDir tmp;
  for (const char* split : {"train", "test"})
    for (const char* cls : {"circle", "square"})
      for (int k = 0; k < 3; ++k)
        write_png(tmp.path / split / cls / (std::to_string(k) + ".png"), 28, 28, 1, (split[1] == 'r') * 10 + (cls[0] == 's') * 3 + k);

  const Dataset train = load_image_folder_split(tmp.str(), Split::Train, {});
  const Dataset test = load_image_folder_split(tmp.str(), Split::Test, {});
  REQUIRE(train.size() == 6);
  REQUIRE(test.size() == 6);
  CHECK(train.shape_string() == "1x28x28");
  CHECK(test.same_shape(train));
  CHECK(train.class_names == std::vector<std::string>{"circle", "square"});
  CHECK(test.class_names == train.class_names);
  CHECK(train.labels == std::vector<int64_t>{0, 0, 0, 1, 1, 1});
  for (int i = 0; i < 6; ++i) {
    CHECK(same_pixels(train, i, 28, 28, 1, 10 + (i / 3) * 3 + i % 3));
    CHECK(same_pixels(test, i, 28, 28, 1, (i / 3) * 3 + i % 3));
  }

  const Dataset rgb = load_image_folder_split(tmp.str(), Split::Test, {0, 3});
  CHECK(rgb.shape_string() == "3x28x28");
  for (int i = 0; i < 6; ++i) CHECK(same_pixels(rgb, i, 28, 28, 1, (i / 3) * 3 + i % 3));  // grey in all 3 planes

  const Dataset resized = load_image_folder_split(tmp.str(), Split::Test, {32, 0});
  CHECK(resized.shape_string() == "1x32x32");
  CHECK(load_image_folder_split(tmp.str(), Split::Train, {32, 3}).shape_string() == "3x32x32");

  // The test split takes the train split's shape: an RGB image in test is converted to grey,
  // and a test image of another size is an error naming the train image whose size rules.
  write_png(tmp.path / "test" / "square" / "9rgb.png", 28, 28, 3, 4);
  CHECK(load_image_folder_split(tmp.str(), Split::Test, {}).shape_string() == "1x28x28");
  write_png(tmp.path / "test" / "square" / "9rgb.png", 20, 28, 3, 4);
  CHECK_THROWS_WITH(load_image_folder_split(tmp.str(), Split::Test, {}),
                    Contains(tmp.str("test/square/9rgb.png")) && Contains("20x28") &&
                        Contains(tmp.str("train/circle/0.png")) && Contains("set image_size to resize") && ONE_LINE);
  CHECK(load_image_folder_split(tmp.str(), Split::Test, {28, 0}).size() == 7);
}

TEST_CASE("image folder options: mixed sizes, one class, empty class, different test classes, bad options", "[data][folder][errors]") {
  TempDir tmp;
  write_png(tmp.path / "a" / "1.png", 30, 28, 3, 1);
  write_png(tmp.path / "b" / "1.png", 30, 28, 3, 2);
  REQUIRE(load_image_folder(tmp.str(), {}).shape_string() == "3x28x30");

  write_png(tmp.path / "b" / "2.png", 28, 28, 3, 3);
  write_png(tmp.path / "b" / "3.png", 28, 29, 3, 3);
  CHECK_THROWS_WITH(load_image_folder(tmp.str(), {}),
                    Contains(tmp.str("b/2.png")) && Contains("28x28") && Contains("expected 30x28") &&
                        Contains(tmp.str("a/1.png")) && Contains("set image_size to resize") &&
                        Contains("1 more bad file") && ONE_LINE);
  CHECK(load_image_folder(tmp.str(), {16, 0}).shape_string() == "3x16x16");

  const std::string corrupt = tmp.str("b/0_corrupt.png");
  write_bytes(corrupt, {0x89, 'P', 'N', 'G', 1, 2, 3});
  CHECK_THROWS_WITH(load_image_folder(tmp.str(), {}), Contains(corrupt) && Contains("cannot decode"));
  CHECK_THROWS_WITH(load_image_folder(tmp.str(), {16, 3}), Contains(corrupt) && Contains("cannot decode"));
  fs::remove(corrupt);

  fs::create_directories(tmp.path / "c");
  CHECK_THROWS_WITH(load_image_folder(tmp.str(), {}), Contains(tmp.str("c")) && Contains("holds no") && ONE_LINE);
  fs::remove(tmp.path / "c");

  TempDir one;
  write_png(one.path / "only" / "1.png", 8, 8, 3, 1);
  CHECK_THROWS_WITH(load_image_folder(one.str(), {}), Contains(one.str()) && Contains("single class") &&
                                                          Contains("'only'") && ONE_LINE);
  CHECK_THROWS_WITH(load_image_folder(one.str()), Contains("single class"));

  TempDir split;
  write_png(split.path / "train" / "cat" / "1.png", 8, 8, 3, 1);
  write_png(split.path / "train" / "dog" / "1.png", 8, 8, 3, 1);
  write_png(split.path / "test" / "cat" / "1.png", 8, 8, 3, 1);
  write_png(split.path / "test" / "cow" / "1.png", 8, 8, 3, 1);
  CHECK_NOTHROW(load_image_folder_split(split.str(), Split::Train, {}));
  CHECK_THROWS_WITH(load_image_folder_split(split.str(), Split::Test, {}),
                    Contains(split.str("train")) && Contains(split.str("test")) && Contains("[cat cow]") &&
                        Contains("[cat dog]") && ONE_LINE);

  // Too large an image: only the header of a 5000x5000 RGB PNG (the size check reads no more);
  // over the decode budget of 4096x4096 pixels (data/image_check.hpp), resized or not.
  TempDir large;
  std::vector<uint8_t> png{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  put_be32(png, 5000), put_be32(png, 5000);
  for (uint8_t b : {8, 2, 0, 0, 0, 0, 0, 0, 0}) png.push_back(b);  // 8-bit RGB, then a CRC
  fs::create_directories(large.path / "a");
  write_bytes(large.str("a/huge.png"), png);
  write_png(large.path / "b" / "1.png", 8, 8, 3, 1);
  for (const ImageFolderOptions opt : {ImageFolderOptions{}, ImageFolderOptions{64, 3}})
    CHECK_THROWS_WITH(load_image_folder(large.str(), opt), Contains(large.str("a/huge.png")) && Contains("5000x5000") &&
                                                               Contains("more than the 16777216 pixels") && ONE_LINE);

  CHECK_THROWS_WITH(load_image_folder(tmp.str(), {5000, 0}), Contains("5000") && Contains("1..4096") && ONE_LINE);
  CHECK_THROWS_WITH(load_image_folder(tmp.str(), {-1, 0}), Contains("-1") && ONE_LINE);
  CHECK_THROWS_WITH(load_image_folder(tmp.str(), {0, 2}), Contains("channels option is 2") && ONE_LINE);
  CHECK_THROWS_WITH(load_image_folder_split(split.str(), Split::Test, {0, 4}), Contains("channels option is 4"));
  CHECK_THROWS_WITH(load_image_folder(tmp.str("nowhere"), {}), Contains(tmp.str("nowhere")) && Contains("does not exist"));
}

TEST_CASE("image folder options: real CIFAR-10 JPEGs give the original reader's bytes", "[data][folder][real]") {
  const fs::path root = fs::path(LOWBIT_SOURCE_DIR) / ".." / "shared" / "data" / "cifar10-jpg";
  std::error_code ec;
  if (!fs::is_directory(root / "train" / "cat", ec)) {
    WARN("skipped: " << root.string() << " not present");
    return;
  }
  TempDir tmp;
  for (const char* cls : {"cat", "ship"}) {
    fs::create_directories(tmp.path / cls);
    for (int k = 0; k < 20; ++k) {
      const std::string name = (k < 10 ? "000" : "00") + std::to_string(k) + ".jpg";
      fs::create_symlink(root / "train" / cls / name, tmp.path / cls / name, ec);
      if (ec) fs::copy_file(root / "train" / cls / name, tmp.path / cls / name);
    }
  }
  const Dataset orig = load_image_folder(tmp.str());
  REQUIRE(orig.size() == 40);
  CHECK(load_image_folder(tmp.str(), ImageFolderOptions{}).images == orig.images);
  CHECK(load_image_folder(tmp.str(), ImageFolderOptions{32, 3}).images == orig.images);
}
