// Reader for MNIST's official IDX files (the four uncompressed files of the original
// release): train-images-idx3-ubyte / train-labels-idx1-ubyte (60,000 images) and
// t10k-images-idx3-ubyte / t10k-labels-idx1-ubyte (10,000). All header integers are 32-bit
// big-endian. An image file is magic 2051 (0x00000803: unsigned bytes, 3 dimensions), count,
// rows, cols, then count x rows x cols pixel bytes, image after image, row-major (0 =
// background, 255 = ink). A label file is magic 2049 (0x00000801), count, then count bytes.
// An image is copied unchanged into a 1 x rows x cols Dataset image (one channel, so HW and
// CHW are the same layout).
//
// Each file is validated before it is trusted: the header is read first and the file size
// must be exactly what it announces (a truncated download is the usual failure), so nothing
// is allocated from a bogus header; then the data is read with one read. The .gz files as
// downloaded are refused with the gunzip command to run: lowbit does not link zlib. Errors
// name the file, the value read and what was expected.
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "cifar10_binary.hpp"  // Split, split_name
#include "dataset.hpp"

namespace lowbit {
namespace data {

constexpr uint32_t kMnistImagesMagic = 0x00000803;  // 2051
constexpr uint32_t kMnistLabelsMagic = 0x00000801;  // 2049

inline const std::vector<std::string>& mnist_class_names() {
  static const std::vector<std::string> names{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  return names;
}

namespace detail {
inline uint32_t read_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

inline std::string hex32(uint32_t v) {
  char s[16];
  std::snprintf(s, sizeof(s), "0x%08X", static_cast<unsigned>(v));
  return s;
}

// An open IDX file whose header has been read and checked against the file size; `rest`
// (the bytes after the header) is what the header says the file holds.
struct IdxFile {
  std::FILE* f = nullptr;
  std::string path;
  uint32_t count = 0, rows = 0, cols = 0;
  IdxFile() = default;
  IdxFile(const IdxFile&) = delete;
  IdxFile& operator=(const IdxFile&) = delete;
  ~IdxFile() {
    if (f) std::fclose(f);
  }
  // Reads exactly `n` bytes (the whole rest of the file) into `dst` with one read.
  void read_rest(void* dst, size_t n) {
    const size_t got = n ? std::fread(dst, 1, n, f) : 0;
    LOWBIT_CHECK(got == n, "MNIST: read only ", got, " of the ", n, " data bytes of '", path,
                 "' (did the file change while it was read?)");
  }
};

// Opens `path` and validates its header: `images` selects the image kind (magic 2051, 16-byte
// header) or the label kind (magic 2049, 8-byte header).
inline void open_idx(const std::string& path, bool images, IdxFile& idx) {
  namespace fs = std::filesystem;
  const char* kind = images ? "image" : "label";
  const char* expect = images ? "an IDX image file (idx3-ubyte)" : "an IDX label file (idx1-ubyte)";
  const bool gz_name = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  // gunzip only accepts names ending in .gz; a compressed file under the plain name is renamed.
  const std::string gunzip = gz_name ? "run `gunzip " + path + "` and use '" +
                                           path.substr(0, path.size() - 3) + "'"
                                     : "run `mv " + path + " " + path + ".gz && gunzip " + path + ".gz`";
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) {
    LOWBIT_CHECK(!fs::exists(path + ".gz", ec), "MNIST: '", path, "' does not exist but '", path,
                 ".gz' does; lowbit reads the uncompressed IDX files (it does not link zlib): run `gunzip ",
                 path, ".gz`");
    lowbit::detail::fail("MNIST: ", kind, " file '", path, "' does not exist (expected ", expect,
                         ", e.g. train-images-idx3-ubyte and train-labels-idx1-ubyte)");
  }
  LOWBIT_CHECK(fs::is_regular_file(st), "MNIST: '", path, "' is not a regular file (expected ", expect, ")");
  const uintmax_t size = fs::file_size(path, ec);
  LOWBIT_CHECK(!ec, "MNIST: cannot read the size of '", path, "': ", ec.message());
  idx.path = path;
  idx.f = std::fopen(path.c_str(), "rb");
  LOWBIT_CHECK(idx.f != nullptr, "MNIST: cannot open '", path, "' for reading");

  const size_t header = images ? 16 : 8;
  uint8_t h[16] = {};
  const size_t got = std::fread(h, 1, header, idx.f);
  LOWBIT_CHECK(!(got >= 2 && h[0] == 0x1f && h[1] == 0x8b), "MNIST: '", path,
               "' is gzip-compressed; lowbit reads the uncompressed IDX files (it does not link zlib): ", gunzip);
  const auto short_header = [&] {
    lowbit::detail::fail("MNIST: ", kind, " file '", path, "' has ", size, " bytes, shorter than the ",
                         header, "-byte header of ", expect);
  };
  if (got < 4) short_header();
  // The magic first, even in a short file: a label file given as the images is named as such.
  const uint32_t magic = read_be32(h), want = images ? kMnistImagesMagic : kMnistLabelsMagic;
  if (magic != want) {
    const uint32_t other = images ? kMnistLabelsMagic : kMnistImagesMagic;
    const uint32_t swapped = (magic >> 24) | ((magic >> 8) & 0xff00u) | ((magic << 8) & 0xff0000u) | (magic << 24);
    lowbit::detail::fail(
        "MNIST: '", path, "' starts with magic number ", hex32(magic), " (", magic, "), expected ",
        hex32(want), " (", want, ") for ", expect,
        magic == other ? std::string("; that is the magic of an IDX ") + (images ? "label" : "image") +
                             " file: are the image and label files swapped?"
        : swapped == want ? std::string("; the bytes are in little-endian order, but IDX integers are big-endian")
                          : std::string("; the file is not an MNIST IDX file or is corrupt"));
  }
  if (got < header || size < header) short_header();
  idx.count = read_be32(h + 4);
  LOWBIT_CHECK(idx.count > 0, "MNIST: ", kind, " file '", path, "': the header says it holds 0 ",
               kind, "s, expected at least one");
  uint64_t item = 1;  // bytes per image or label
  if (images) {
    idx.rows = read_be32(h + 8), idx.cols = read_be32(h + 12);
    item = uint64_t(idx.rows) * idx.cols;
    LOWBIT_CHECK(idx.rows > 0 && idx.cols > 0 && item <= uint64_t(kMaxImageBytes), "MNIST: image file '",
                 path, "': the header says images of ", idx.rows, " rows x ", idx.cols,
                 " cols, expected positive sizes and at most ", kMaxImageBytes, " bytes per image");
  }
  const uint64_t want_size = header + uint64_t(idx.count) * item;  // < 2^59: no overflow
  if (size != want_size) {
    const std::string what = images ? std::to_string(idx.count) + " x " + std::to_string(idx.rows) +
                                          " x " + std::to_string(idx.cols) + " pixel bytes"
                                    : std::to_string(idx.count) + " label bytes";
    lowbit::detail::fail("MNIST: ", kind, " file '", path, "' has ", size, " bytes, expected ", want_size,
                         " (the ", header, "-byte header + ", what, "): ",
                         size < want_size ? "it is truncated, " + std::to_string(want_size - size) + " bytes short"
                                          : std::to_string(size - want_size) + " extra bytes after the last " + kind,
                         "; re-download or re-extract it");
  }
}
}  // namespace detail

// One image file and its label file as a Dataset of count images, 1 x rows x cols.
inline Dataset read_mnist_idx(const std::string& images_path, const std::string& labels_path) {
  detail::IdxFile im, lb;
  detail::open_idx(images_path, true, im);
  detail::open_idx(labels_path, false, lb);
  LOWBIT_CHECK(im.count == lb.count, "MNIST: image file '", images_path, "' holds ", im.count,
               " images but label file '", labels_path, "' holds ", lb.count,
               " labels; expected the same count (files of different splits?)");
  Dataset ds;
  ds.class_names = mnist_class_names();
  ds.source = "MNIST IDX files " + images_path + " + " + labels_path;
  ds.channels = 1, ds.height = im.rows, ds.width = im.cols;
  const size_t n = im.count;
  std::vector<uint8_t> labels(n);
  lb.read_rest(labels.data(), n);
  for (size_t i = 0; i < n; ++i) {
    LOWBIT_CHECK(labels[i] <= 9, "MNIST: label file '", labels_path, "': label ", i, " (byte offset ",
                 8 + i, ") is ", int(labels[i]), ", expected 0..9");
  }
  ds.labels.assign(labels.begin(), labels.end());
  ds.images.resize(n * static_cast<size_t>(ds.image_bytes()));
  im.read_rest(ds.images.data(), ds.images.size());  // IDX pixels are already the Dataset layout
  return ds;
}

// A split from a folder holding the four IDX files: train = train-images-idx3-ubyte +
// train-labels-idx1-ubyte, test = t10k-images-idx3-ubyte + t10k-labels-idx1-ubyte.
inline Dataset load_mnist(const std::string& dir, Split split) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOWBIT_CHECK(fs::is_directory(dir, ec), "MNIST: directory '", dir,
               "' does not exist or is not a directory (expected the IDX files train-images-idx3-ubyte, "
               "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte)");
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  Dataset ds = read_mnist_idx((fs::path(dir) / (prefix + "-images-idx3-ubyte")).string(),
                              (fs::path(dir) / (prefix + "-labels-idx1-ubyte")).string());
  ds.source = std::string("MNIST ") + split_name(split) + " split from " + dir + " (" + prefix +
              "-images-idx3-ubyte, " + prefix + "-labels-idx1-ubyte)";
  return ds;
}

}  // namespace data
}  // namespace lowbit
