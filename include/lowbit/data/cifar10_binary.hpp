// Reader for the official CIFAR-10 binary format ("CIFAR-10 binary version", the
// cifar-10-batches-bin folder): each file is a sequence of 3073-byte records, 1 label byte
// (0..9) followed by 3072 pixel bytes — the 1024 red values, then green, then blue, each a
// 32x32 row-major plane. data_batch_1.bin .. data_batch_5.bin hold the 50,000 training
// images, test_batch.bin the 10,000 test images.
//
// The file is validated before anything is trusted: its size must be a non-zero multiple
// of 3073 (a truncated download is the usual failure) and every label must be < 10. Errors
// name the file, the record and byte offset, and what was expected.
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "dataset.hpp"

namespace lowbit {
namespace data {

constexpr int64_t kCifar10RecordBytes = 1 + kImageBytes;  // 3073
constexpr int64_t kCifar10NumClasses = 10;

enum class Split { Train, Test };

inline const char* split_name(Split s) { return s == Split::Train ? "train" : "test"; }

// The files of one split, in the order their images are concatenated.
inline std::vector<std::string> cifar10_binary_files(Split s) {
  if (s == Split::Test) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
          "data_batch_5.bin"};
}

// Appends every record of one .bin file to `out` (whose class_names must be CIFAR-10's).
inline void append_cifar10_bin(const std::string& path, Dataset& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  LOWBIT_CHECK(fs::exists(st), "CIFAR-10 binary: file '", path,
               "' does not exist (expected a file of 3073-byte records, e.g. data_batch_1.bin)");
  LOWBIT_CHECK(fs::is_regular_file(st), "CIFAR-10 binary: '", path,
               "' is not a regular file (expected a file of 3073-byte records)");
  const uintmax_t bytes = fs::file_size(path, ec);
  LOWBIT_CHECK(!ec, "CIFAR-10 binary: cannot read the size of '", path, "': ", ec.message());
  const auto rec = static_cast<uintmax_t>(kCifar10RecordBytes);
  LOWBIT_CHECK(bytes > 0, "CIFAR-10 binary: file '", path,
               "' is empty, expected a non-zero multiple of 3073 bytes (1 label byte + 3072 "
               "pixel bytes per image)");
  if (bytes % rec != 0) {
    const uintmax_t full = bytes / rec;
    lowbit::detail::fail("CIFAR-10 binary: file '", path, "' has ", bytes,
                 " bytes, which is not a multiple of the 3073-byte record (1 label byte + 3072 "
                 "pixel bytes): record ", full, " at byte offset ", full * rec, " has only ",
                 bytes % rec, " of its 3073 bytes. The file is truncated or not in the CIFAR-10 "
                 "binary format (a complete batch file is 30730000 bytes); re-download it with "
                 "data/download_cifar10.sh");
  }
  const uintmax_t n = bytes / rec;

  std::ifstream in(path, std::ios::binary);
  LOWBIT_CHECK(in.good(), "CIFAR-10 binary: cannot open '", path, "' for reading");
  std::vector<uint8_t> buf(static_cast<size_t>(bytes));
  in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(bytes));
  LOWBIT_CHECK(static_cast<uintmax_t>(in.gcount()) == bytes, "CIFAR-10 binary: read only ",
               in.gcount(), " of the ", bytes, " bytes of '", path,
               "' (did the file change while it was read?)");

  const size_t old_n = out.labels.size();
  out.labels.resize(old_n + static_cast<size_t>(n));
  out.images.resize((old_n + static_cast<size_t>(n)) * static_cast<size_t>(kImageBytes));
  for (uintmax_t r = 0; r < n; ++r) {
    const uint8_t* record = buf.data() + r * rec;
    LOWBIT_CHECK(record[0] < kCifar10NumClasses, "CIFAR-10 binary: file '", path, "', record ",
                 r, " (byte offset ", r * rec, "): label byte is ", static_cast<int>(record[0]),
                 ", expected 0..9. The file is corrupt or not in the CIFAR-10 binary format "
                 "(CIFAR-100's binary format has 2 label bytes per record)");
    out.labels[old_n + r] = record[0];
    // The record's pixel bytes are already CHW (R, G, B planes), the Dataset layout.
    std::memcpy(out.images.data() + (old_n + r) * static_cast<size_t>(kImageBytes), record + 1,
                static_cast<size_t>(kImageBytes));
  }
}

// One .bin file as a Dataset.
inline Dataset read_cifar10_bin(const std::string& path) {
  Dataset ds;
  ds.class_names = cifar10_class_names();
  ds.source = "CIFAR-10 binary file " + path;
  append_cifar10_bin(path, ds);
  return ds;
}

// A split from a cifar-10-batches-bin folder: train = data_batch_1..5.bin, test =
// test_batch.bin. Every file of the split must be present.
inline Dataset load_cifar10_binary(const std::string& dir, Split split) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOWBIT_CHECK(fs::is_directory(dir, ec), "CIFAR-10 binary: directory '", dir,
               "' does not exist or is not a directory (expected cifar-10-batches-bin with "
               "data_batch_1..5.bin and test_batch.bin)");
  Dataset ds;
  ds.class_names = cifar10_class_names();
  ds.source = std::string("CIFAR-10 binary ") + split_name(split) + " split from " + dir + " (";
  const auto files = cifar10_binary_files(split);
  // Reserve once for all files (sizes are validated per file below) to avoid re-copying
  // the images vector as each file is appended.
  uintmax_t records = 0;
  for (const auto& f : files) {
    const uintmax_t bytes = fs::file_size(fs::path(dir) / f, ec);
    if (!ec) records += bytes / static_cast<uintmax_t>(kCifar10RecordBytes);
  }
  ds.labels.reserve(static_cast<size_t>(records));
  ds.images.reserve(static_cast<size_t>(records) * static_cast<size_t>(kImageBytes));
  for (size_t k = 0; k < files.size(); ++k) {
    append_cifar10_bin((fs::path(dir) / files[k]).string(), ds);
    ds.source += (k ? ", " : "") + files[k];
  }
  ds.source += ")";
  return ds;
}

}  // namespace data
}  // namespace lowbit
