// Image folders: <dir>/<class>/<image>, one subfolder per class (as torchvision's
// ImageFolder). Class names are the subfolder names sorted by byte value; a class's label
// is its position in that order. Files are .jpg/.jpeg/.png/.bmp (any case), sorted by name
// within a class, so the dataset order never depends on the file system's listing order.
// Hidden entries (".name") and files with other extensions are ignored.
//
// Every image must be 32x32 pixels. Grayscale, grey+alpha and RGBA images are converted to
// RGB by stb_image (req_comp = 3); an image of any other size is an error rather than being
// silently resized. Decoding runs in parallel with OpenMP (stb decodes from memory
// reentrantly); errors are collected per file and the first one in dataset order is thrown
// after the loop, so the error is the same for every thread count.
//
// The CIFAR-10 JPEG layout, <root>/train/<class>/NNNN.jpg and <root>/test/<class>/NNNN.jpg,
// is read by load_cifar10_image_folders(root, split).
#pragma once
#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "cifar10_binary.hpp"  // Split, split_name
#include "dataset.hpp"
#include "stb_image_private.hpp"

namespace lowbit {
namespace data {

// True for the extensions load_image_folder reads (.jpg .jpeg .png .bmp, any case).
inline bool is_image_file_name(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "bmp";
}

// Decodes one encoded image (JPEG/PNG/BMP bytes) that must be 32x32 into 3x32x32 CHW bytes.
// `name` (usually the file path) is used in error messages.
inline void decode_image_32x32(const uint8_t* bytes, size_t len, const std::string& name,
                               uint8_t* out_chw) {
  LOWBIT_CHECK(len <= static_cast<size_t>(INT_MAX), "image '", name, "' has ", len,
               " bytes, more than stb_image can decode (", INT_MAX, ")");
  int w = 0, h = 0, channels = 0;
  unsigned char* px = ::lowbit_detail_stbi::lowbit_stbi_load_from_memory(
      bytes, static_cast<int>(len), &w, &h, &channels, 3);
  if (px == nullptr) {
    const char* why = ::lowbit_detail_stbi::lowbit_stbi_failure_reason();
    lowbit::detail::fail("cannot decode image '", name, "' (", len, " bytes; stb_image says: ",
                 why ? why : "unknown error",
                 "); expected a valid JPEG, PNG or BMP file of 32x32x3 pixels");
  }
  // Frees stb's buffer on every path out of this function, including the throw below.
  struct Free {
    unsigned char* p;
    ~Free() { ::lowbit_detail_stbi::lowbit_stbi_image_free(p); }
  } guard{px};
  if (w != kWidth || h != kHeight) {
    lowbit::detail::fail("image '", name, "' is ", w, "x", h, "x", channels,
                 " (width x height x channels), expected 32x32x3 (grayscale and RGBA are "
                 "converted to 3 channels, but the size must be 32x32)");
  }
  // stb returns interleaved HWC (RGBRGB...); the dataset stores CHW planes.
  const int64_t plane = kHeight * kWidth;
  for (int64_t p = 0; p < plane; ++p) {
    out_chw[p] = px[3 * p + 0];
    out_chw[plane + p] = px[3 * p + 1];
    out_chw[2 * plane + p] = px[3 * p + 2];
  }
}

namespace detail {
// Reads a whole file into `buf` (reused across calls to avoid an allocation per image).
inline void read_file_bytes(const std::string& path, std::vector<uint8_t>& buf) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  LOWBIT_CHECK(f != nullptr, "cannot open image file '", path, "' for reading");
  struct Close {
    std::FILE* f;
    ~Close() { std::fclose(f); }
  } guard{f};
  buf.clear();
  uint8_t chunk[16384];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), f)) > 0) buf.insert(buf.end(), chunk, chunk + got);
  LOWBIT_CHECK(!std::ferror(f), "error while reading image file '", path, "'");
}

// Sorted names of the visible entries of `dir` that satisfy `keep`.
template <class Keep>
std::vector<std::string> sorted_entries(const std::filesystem::path& dir, Keep keep) {
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && keep(*it)) names.push_back(name);
  }
  LOWBIT_CHECK(!ec, "cannot list directory '", dir.string(), "': ", ec.message());
  std::sort(names.begin(), names.end());
  return names;
}
}  // namespace detail

// Reads <dir>/<class>/<image> into a Dataset (see the top of this file for the rules).
inline Dataset load_image_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOWBIT_CHECK(fs::exists(dir, ec), "image folder: directory '", dir,
               "' does not exist (expected one subfolder per class holding 32x32 "
               ".jpg/.png/.bmp images)");
  LOWBIT_CHECK(fs::is_directory(dir, ec), "image folder: '", dir,
               "' is not a directory (expected one subfolder per class)");

  Dataset ds;
  ds.class_names = detail::sorted_entries(
      dir, [](const fs::directory_entry& e) { std::error_code e2; return e.is_directory(e2); });
  LOWBIT_CHECK(!ds.class_names.empty(), "image folder: directory '", dir,
               "' has no class subfolders (expected <dir>/<class>/<image>.jpg, one subfolder "
               "per class)");

  std::vector<std::string> paths;
  for (size_t c = 0; c < ds.class_names.size(); ++c) {
    const fs::path class_dir = fs::path(dir) / ds.class_names[c];
    const auto files = detail::sorted_entries(class_dir, [](const fs::directory_entry& e) {
      std::error_code e2;
      return !e.is_directory(e2) && is_image_file_name(e.path().filename().string());
    });
    LOWBIT_CHECK(!files.empty(), "image folder: class folder '", class_dir.string(),
                 "' holds no .jpg/.jpeg/.png/.bmp files (expected at least one image per class)");
    for (const auto& f : files) {
      paths.push_back((class_dir / f).string());
      ds.labels.push_back(static_cast<int64_t>(c));
    }
  }

  const auto n = static_cast<int64_t>(paths.size());
  ds.images.resize(static_cast<size_t>(n) * static_cast<size_t>(kImageBytes));
  // Exceptions must not leave an OpenMP region: record each file's error, throw afterwards.
  std::vector<std::string> errors(static_cast<size_t>(n));
  bool any_error = false;
#pragma omp parallel reduction(|| : any_error)
  {
    std::vector<uint8_t> buf;  // per-thread file buffer
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<size_t>(i);
      try {
        detail::read_file_bytes(paths[k], buf);
        decode_image_32x32(buf.data(), buf.size(), paths[k],
                           ds.images.data() + k * static_cast<size_t>(kImageBytes));
      } catch (const std::exception& e) {
        errors[k] = e.what();
        any_error = true;
      } catch (...) {
        errors[k] = "unknown error while reading '" + paths[k] + "'";
        any_error = true;
      }
    }
  }
  if (any_error) {
    int64_t count = 0;
    const std::string* first = nullptr;
    for (const auto& e : errors) {
      if (!e.empty()) {
        ++count;
        if (!first) first = &e;
      }
    }
    lowbit::detail::fail("image folder '", dir, "': ", *first,
                 count > 1 ? " (and " + std::to_string(count - 1) + " more bad file(s))" : "");
  }
  ds.source = "image folder " + dir + " (" + std::to_string(n) + " images, " +
              std::to_string(ds.class_names.size()) + " classes)";
  return ds;
}

// One split of the CIFAR-10 image-folder layout: <root>/train or <root>/test, which must
// hold exactly the 10 CIFAR-10 class folders (so labels match the binary format's).
inline Dataset load_cifar10_image_folders(const std::string& root, Split split) {
  const std::string dir = (std::filesystem::path(root) / split_name(split)).string();
  Dataset ds = load_image_folder(dir);
  if (ds.class_names != cifar10_class_names()) {
    std::string found;
    for (const auto& c : ds.class_names) found += (found.empty() ? "" : " ") + c;
    lowbit::detail::fail("CIFAR-10 image folders: '", dir, "' has the class folders [", found,
                 "], expected exactly [airplane automobile bird cat deer dog frog horse ship "
                 "truck]");
  }
  ds.source = std::string("CIFAR-10 image folders, ") + split_name(split) + " split: " + dir +
              " (" + std::to_string(ds.size()) + " images)";
  return ds;
}

}  // namespace data
}  // namespace lowbit
