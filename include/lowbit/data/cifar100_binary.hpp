// Reader for the official CIFAR-100 binary format ("CIFAR-100 binary version", the
// cifar-100-binary folder): train.bin holds 50,000 and test.bin 10,000 records of 3074
// bytes: 1 coarse label byte (superclass, 0..19), 1 fine label byte (class, 0..99), then the
// 3072 pixel bytes, CHW planes exactly as in CIFAR-10. The fine labels are used; the coarse
// label is validated but not kept.
//
// Validated as cifar10_binary.hpp does: the size must be a non-zero multiple of 3074 (a
// multiple of 3073 is a CIFAR-10 file, and the error says so) and every label in range.
// Errors name the file, the record and byte offset, and what was expected.
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "cifar10_binary.hpp"  // Split, split_name
#include "dataset.hpp"

namespace lowbit {
namespace data {

constexpr int64_t kCifar100RecordBytes = 2 + kImageBytes;  // 3074
constexpr int64_t kCifar100NumClasses = 100;
constexpr int64_t kCifar100NumCoarse = 20;

// The 100 fine classes in label order (alphabetical, as in the release's fine_label_names.txt).
inline const std::vector<std::string>& cifar100_class_names() {
  static const std::vector<std::string> names{
      "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
      "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
      "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
      "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
      "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
      "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
      "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
      "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
      "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
      "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
      "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"};
  return names;
}

// One CIFAR-100 .bin file (train.bin or test.bin) as a Dataset with the fine labels.
inline Dataset read_cifar100_bin(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  LOWBIT_CHECK(fs::exists(st), "CIFAR-100 binary: file '", path,
               "' does not exist (expected a file of 3074-byte records, train.bin or test.bin)");
  LOWBIT_CHECK(fs::is_regular_file(st), "CIFAR-100 binary: '", path,
               "' is not a regular file (expected a file of 3074-byte records)");
  const uintmax_t bytes = fs::file_size(path, ec);
  LOWBIT_CHECK(!ec, "CIFAR-100 binary: cannot read the size of '", path, "': ", ec.message());
  const auto rec = static_cast<uintmax_t>(kCifar100RecordBytes);
  LOWBIT_CHECK(bytes > 0, "CIFAR-100 binary: file '", path,
               "' is empty, expected a non-zero multiple of 3074 bytes (coarse label byte + fine "
               "label byte + 3072 pixel bytes per image)");
  if (bytes % rec != 0) {
    const uintmax_t full = bytes / rec;
    const bool cifar10 = bytes % static_cast<uintmax_t>(kCifar10RecordBytes) == 0;
    lowbit::detail::fail(
        "CIFAR-100 binary: file '", path, "' has ", bytes, " bytes, which is not a multiple of the "
        "3074-byte record (coarse label + fine label + 3072 pixel bytes): record ", full,
        " at byte offset ", full * rec, " has only ", bytes % rec, " of its 3074 bytes. ",
        cifar10 ? "The size is a multiple of 3073, the CIFAR-10 record (1 label byte): this looks "
                  "like a CIFAR-10 file; read it with the CIFAR-10 reader"
                : "The file is truncated or not in the CIFAR-100 binary format (train.bin is "
                  "153700000 bytes, test.bin 30740000)");
  }
  const uintmax_t n = bytes / rec;

  std::ifstream in(path, std::ios::binary);
  LOWBIT_CHECK(in.good(), "CIFAR-100 binary: cannot open '", path, "' for reading");
  std::vector<uint8_t> buf(static_cast<size_t>(bytes));
  in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(bytes));
  LOWBIT_CHECK(static_cast<uintmax_t>(in.gcount()) == bytes, "CIFAR-100 binary: read only ",
               in.gcount(), " of the ", bytes, " bytes of '", path,
               "' (did the file change while it was read?)");

  Dataset ds;
  ds.class_names = cifar100_class_names();
  ds.source = "CIFAR-100 binary file " + path;
  ds.labels.resize(static_cast<size_t>(n));
  ds.images.resize(static_cast<size_t>(n) * static_cast<size_t>(kImageBytes));
  for (uintmax_t r = 0; r < n; ++r) {
    const uint8_t* record = buf.data() + r * rec;
    LOWBIT_CHECK(record[0] < kCifar100NumCoarse, "CIFAR-100 binary: file '", path, "', record ", r,
                 " (byte offset ", r * rec, "): coarse label byte is ", static_cast<int>(record[0]),
                 ", expected 0..19. The file is corrupt or not in the CIFAR-100 binary format");
    LOWBIT_CHECK(record[1] < kCifar100NumClasses, "CIFAR-100 binary: file '", path, "', record ", r,
                 " (byte offset ", r * rec + 1, "): fine label byte is ", static_cast<int>(record[1]),
                 ", expected 0..99. The file is corrupt or not in the CIFAR-100 binary format");
    ds.labels[r] = record[1];
    // The pixel bytes are already CHW (R, G, B planes), the Dataset layout.
    std::memcpy(ds.images.data() + r * static_cast<size_t>(kImageBytes), record + 2,
                static_cast<size_t>(kImageBytes));
  }
  return ds;
}

// A split from a cifar-100-binary folder: train.bin or test.bin.
inline Dataset load_cifar100_binary(const std::string& dir, Split split) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOWBIT_CHECK(fs::is_directory(dir, ec), "CIFAR-100 binary: directory '", dir,
               "' does not exist or is not a directory (expected cifar-100-binary with train.bin "
               "and test.bin)");
  const std::string file = split == Split::Train ? "train.bin" : "test.bin";
  Dataset ds = read_cifar100_bin((fs::path(dir) / file).string());
  ds.source = std::string("CIFAR-100 binary ") + split_name(split) + " split from " + dir + " (" + file + ")";
  return ds;
}

}  // namespace data
}  // namespace lowbit
