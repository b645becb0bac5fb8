// Image folders: <dir>/<class>/<image>, one subfolder per class (as torchvision's
// ImageFolder), at least 2 classes. Class names are the subfolder names sorted by byte value;
// a class's label is its position in that order. Files are .jpg/.jpeg/.png/.bmp (any case),
// sorted by name within a class, so the dataset order never depends on the file system's
// listing order. Hidden entries (".name") and files with other extensions are ignored.
//
// load_image_folder(dir, options) reads images of any size, grayscale or RGB:
//   size     0: every image must have the size of the first image in dataset order (a
//              mismatch is an error, not a silent resize); N in 1..4096: every image is
//              resized to N x N with stb_image_resize (stretched, the aspect ratio is not
//              kept and nothing is cropped; Mitchell filter to shrink, Catmull-Rom to enlarge).
//   channels 0: 1 if every image is grayscale (stb reports grey or grey+alpha), else 3 -- this
//              reads every file's header in a first pass, before decoding; 1 or 3: stb
//              converts (RGB to grey by luma; alpha is dropped, not composited).
// load_image_folder(dir), the original reader kept for CIFAR-10, requires 32x32 images and
// converts everything to RGB. Before anything is decoded, each file passes the checks of
// data/image_check.hpp (JPEG structure stb_image 2.27 mishandles) and its header's size is
// checked (kMaxDecodePixels, and the size the folder expects when not resizing), so a small
// file declaring a huge image costs nothing. Entries that are not regular files (named pipes,
// devices, sockets) are never opened: they are skipped with a note in Dataset::notes, also
// printed to stderr. Decoding runs in parallel with OpenMP (stb decodes and resizes
// from memory reentrantly); errors are collected per file and the first one in dataset order
// is thrown after the loop, so the error is the same for every thread count.
//
// The split layouts <root>/train/<class>/<image> and <root>/test/<class>/<image> are read by
// load_image_folder_split(root, split, options) and, for CIFAR-10's JPEGs (the 10 classes,
// 32x32 RGB), by load_cifar10_image_folders(root, split).
#pragma once
#include "../core/platform.hpp"
#if LOWBIT_POSIX
#include <fcntl.h>  // open with O_NONBLOCK, fstat: see read_file_bytes
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "cifar10_binary.hpp"  // Split, split_name
#include "dataset.hpp"
#include "image_check.hpp"
#include "stb_image_private.hpp"
#include "stb_image_resize_private.hpp"

namespace lowbit {
namespace data {

struct ImageFolderOptions {
  int64_t size = 0;      // 0: keep the images' own (common) size; 1..4096: resize to size x size
  int64_t channels = 0;  // 0: 1 if every image is grayscale, else 3; 1 or 3: convert to that
};

// True for the extensions load_image_folder reads (.jpg .jpeg .png .bmp, any case).
inline bool is_image_file_name(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "bmp";
}

namespace detail {
// stb's decoded interleaved (HWC) pixels, freed on every path out of scope (throws included).
struct StbImage {
  unsigned char* px = nullptr;
  int w = 0, h = 0, comp = 0;  // comp: the file's own channel count
  StbImage() = default;
  StbImage(const StbImage&) = delete;
  StbImage& operator=(const StbImage&) = delete;
  ~StbImage() {
    if (px) ::lowbit_detail_stbi::lowbit_stbi_image_free(px);
  }
};

inline void check_stb_length(size_t len, const std::string& name) {
  LOWBIT_CHECK(len <= static_cast<size_t>(INT_MAX), "image '", name, "' has ", len,
               " bytes, more than stb_image can decode (", INT_MAX, ")");
}

[[noreturn]] inline void fail_decode(size_t len, const std::string& name, const char* expected) {
  const char* why = ::lowbit_detail_stbi::lowbit_stbi_failure_reason();
  lowbit::detail::fail("cannot decode image '", name, "' (", len, " bytes; stb_image says: ",
                       why ? why : "unknown error", "); expected ", expected);
}

// Decodes with `channels` channels per pixel (stb converts from the file's own).
inline void stb_decode(const uint8_t* bytes, size_t len, const std::string& name, int channels,
                       const char* expected, StbImage& img) {
  check_stb_length(len, name);
  img.px = ::lowbit_detail_stbi::lowbit_stbi_load_from_memory(bytes, static_cast<int>(len), &img.w,
                                                              &img.h, &img.comp, channels);
  if (img.px == nullptr) fail_decode(len, name, expected);
}

// Width, height and channel count from the file's header, without decoding the pixels.
struct ImageHeader {
  int w = 0, h = 0, comp = 0;
};

// Everything that is checked before stb decodes: the structure checks of image_check.hpp
// (before stb reads the header, which for JPEG already parses Huffman tables), then the
// header's size against the decode budget.
inline ImageHeader inspect_image(const uint8_t* bytes, size_t len, const std::string& name) {
  check_stb_length(len, name);
  JpegSize jpeg;
  const std::string problem = encoded_image_problem(bytes, len, &jpeg);
  LOWBIT_CHECK(problem.empty(), "cannot decode image '", name, "' (", len, " bytes): it ", problem,
               "; refused before stb_image reads it");
  ImageHeader hd{jpeg.w, jpeg.h, jpeg.comp};  // a JPEG's frame header, read by the check: stb reads the same
  if (!jpeg.found &&
      !::lowbit_detail_stbi::lowbit_stbi_info_from_memory(bytes, static_cast<int>(len), &hd.w, &hd.h, &hd.comp))
    fail_decode(len, name, "a valid JPEG, PNG or BMP file");
  const std::string too_big = image_pixel_budget_problem(hd.w, hd.h);
  LOWBIT_CHECK(too_big.empty(), "image '", name, "' ", too_big, "; refused before decoding");
  return hd;
}

// Before stb decodes a PNG (image_check.hpp, png_image_data): its image data must inflate to
// at most what the header hd declares, tried into a buffer of that size. Not part of
// inspect_image, which the header pass of automatic channels runs on every file.
inline void check_png_data(const uint8_t* bytes, size_t len, const std::string& name, const ImageHeader& hd) {
  const PngData png = png_image_data(bytes, len);  // within the budget: raw_bytes < 2^28
  LOWBIT_CHECK(png.problem.empty(), "cannot decode image '", name, "' (", len, " bytes): it ", png.problem,
               "; refused before decoding");
  // The same IHDR as stb's (hd), whose size the budget already bounds.
  if (png.found && png.width == uint64_t(hd.w) && png.height == uint64_t(hd.h) &&
      png.idat.size() <= static_cast<size_t>(INT_MAX)) {
    // Not zeroed: only the pages the data inflates into are touched, however large the header.
    const std::unique_ptr<char[]> raw(new char[static_cast<size_t>(png.raw_bytes)]);
    const auto inflate = png.zlib_header ? ::lowbit_detail_stbi::lowbit_stbi_zlib_decode_buffer
                                         : ::lowbit_detail_stbi::lowbit_stbi_zlib_decode_noheader_buffer;
    const int got = inflate(raw.get(), static_cast<int>(png.raw_bytes), png.idat.data(), static_cast<int>(png.idat.size()));
    if (got < 0) {
      const char* why = ::lowbit_detail_stbi::lowbit_stbi_failure_reason();
      lowbit::detail::fail("image '", name, "' is a ", hd.w, "x", hd.h, " PNG whose image data (", png.idat.size(),
                           " compressed bytes) does not inflate to at most the ", png.raw_bytes,
                           " bytes its header declares (stb_image says: ", why ? why : "unknown error",
                           "); refused before decoding");
    }
  }
}

// Before stb decodes a JPEG: its scans replayed as stb 2.27 would decode them
// (jpeg_entropy_check.hpp), for the coefficient overflows and the over-long shift of its bit reader.
inline void check_jpeg_data(const uint8_t* bytes, size_t len, const std::string& name) {
  const std::string problem = jpeg_entropy_problem(bytes, len);
  LOWBIT_CHECK(problem.empty(), "cannot decode image '", name, "' (", len, " bytes): it ", problem,
               "; refused before decoding");
}

// stb returns interleaved HWC (RGBRGB...); the dataset stores CHW planes.
inline void hwc_to_chw(const uint8_t* hwc, int64_t channels, int64_t pixels, uint8_t* chw) {
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t c = 0; c < channels; ++c) chw[c * pixels + p] = hwc[channels * p + c];
}
}  // namespace detail

// Decodes one encoded image (JPEG/PNG/BMP bytes) that must be 32x32 into 3x32x32 CHW bytes.
// `name` (usually the file path) is used in error messages.
inline void decode_image_32x32(const uint8_t* bytes, size_t len, const std::string& name,
                               uint8_t* out_chw) {
  const detail::ImageHeader hd = detail::inspect_image(bytes, len, name);
  LOWBIT_CHECK(hd.w == kWidth && hd.h == kHeight, "image '", name, "' is ", hd.w, "x", hd.h, "x", hd.comp,
               " (width x height x channels, from its header), expected 32x32x3 (grayscale and RGBA are converted "
               "to 3 channels, but the size must be 32x32); refused before decoding");
  detail::check_png_data(bytes, len, name, hd);
  detail::check_jpeg_data(bytes, len, name);
  detail::StbImage img;
  detail::stb_decode(bytes, len, name, 3, "a valid JPEG, PNG or BMP file of 32x32x3 pixels", img);
  if (img.w != kWidth || img.h != kHeight) {
    lowbit::detail::fail("image '", name, "' is ", img.w, "x", img.h, "x", img.comp,
                         " (width x height x channels), expected 32x32x3 (grayscale and RGBA are "
                         "converted to 3 channels, but the size must be 32x32)");
  }
  detail::hwc_to_chw(img.px, 3, kHeight * kWidth, out_chw);
}

namespace detail {
// The shape every image of a folder is decoded to, and how its size was chosen.
struct FolderShape {
  int64_t channels = 3, height = kHeight, width = kWidth;
  bool resize = false;   // resize every image to height x width (else each must have it)
  bool cifar32 = false;  // the original 32x32 RGB reader (decode_image_32x32)
  std::string first;     // without resize: the image whose size the others must have
};

// Decodes one image into s.channels x s.height x s.width CHW bytes. `tmp`: scratch reused
// across the images of one thread.
inline void decode_image_to(const uint8_t* bytes, size_t len, const std::string& name,
                            const FolderShape& s, std::vector<uint8_t>& tmp, uint8_t* out_chw) {
  if (s.cifar32) return decode_image_32x32(bytes, len, name, out_chw);
  const ImageHeader hd = inspect_image(bytes, len, name);
  LOWBIT_CHECK(s.resize || (hd.w == s.width && hd.h == s.height), "image '", name, "' is ", hd.w, "x", hd.h,
               " (width x height), expected ", s.width, "x", s.height, ", the size of the first image '", s.first,
               "': all images must have one size; set image_size to resize them to N x N");
  check_png_data(bytes, len, name, hd);
  check_jpeg_data(bytes, len, name);
  StbImage img;
  stb_decode(bytes, len, name, static_cast<int>(s.channels), "a valid JPEG, PNG or BMP file", img);
  const uint8_t* px = img.px;
  if (img.w != s.width || img.h != s.height) {
    LOWBIT_CHECK(s.resize, "image '", name, "' is ", img.w, "x", img.h, " (width x height), expected ",
                 s.width, "x", s.height, ", the size of the first image '", s.first,
                 "': all images must have one size; set image_size to resize them to N x N");
    tmp.resize(static_cast<size_t>(s.channels * s.height * s.width));
    LOWBIT_CHECK(::lowbit_detail_stbir::stbir_resize_uint8(img.px, img.w, img.h, 0, tmp.data(),
                                                           static_cast<int>(s.width), static_cast<int>(s.height),
                                                           0, static_cast<int>(s.channels)) == 1,
                 "cannot resize image '", name, "' from ", img.w, "x", img.h, " to ", s.width, "x",
                 s.height, " (stb_image_resize failed: out of memory?)");
    px = tmp.data();
  }
  hwc_to_chw(px, s.channels, s.height * s.width, out_chw);
}

// Why a special file is not read: opening a named pipe blocks until a writer comes, a device
// can be endless. "" for a regular file (after symlinks) and for a missing one.
inline std::string special_file_kind(std::filesystem::file_type t) {
  namespace fs = std::filesystem;
  switch (t) {
    case fs::file_type::regular:
    case fs::file_type::not_found:
    case fs::file_type::none: return "";
    case fs::file_type::fifo: return "a named pipe (FIFO)";
    case fs::file_type::socket: return "a socket";
    case fs::file_type::character: return "a character device";
    case fs::file_type::block: return "a block device";
    case fs::file_type::directory: return "a directory";
    default: return "a special file";
  }
}

inline std::string special_file_kind(const std::filesystem::path& p) {
  std::error_code ec;
  return special_file_kind(std::filesystem::status(p, ec).type());
}

// Reads a whole file into `buf` (reused across calls to avoid an allocation per image). The
// folder listing already skipped special files; a path replaced by one since is opened
// O_NONBLOCK (a named pipe does not block it) and refused by fstat before a byte is read.
// (A stat of the path first would cost 4 us per image, 8% of a CIFAR-10 JPEG's decode.)
// Without POSIX the type is asked first (a named pipe would block the open) and the file is
// read with std::ifstream.
inline void read_file_bytes(const std::string& path, std::vector<uint8_t>& buf) {
#if LOWBIT_POSIX
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  LOWBIT_CHECK(fd >= 0, "cannot open image file '", path,
               "' for reading: ", std::error_code(errno, std::generic_category()).message());
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } guard{fd};
  struct stat st {};
  LOWBIT_CHECK(::fstat(fd, &st) == 0, "cannot read the status of image file '", path, "'");
  const std::string special = S_ISREG(st.st_mode) ? "" : special_file_kind(path);
  LOWBIT_CHECK(special.empty(), "image file '", path, "' is ", special,
               ", not a regular file; it is not read (expected a .jpg/.png/.bmp file)");
  buf.resize(static_cast<size_t>(st.st_size) + 1);  // + 1: sees a file that grew
  size_t got = 0;
  for (;;) {
    if (got == buf.size()) buf.resize(2 * buf.size());
    const ssize_t r = ::read(fd, buf.data() + got, buf.size() - got);
    if (r == 0) break;
    if (r < 0 && errno == EINTR) continue;
    LOWBIT_CHECK(r > 0, "error while reading image file '", path, "': ",
                 std::error_code(errno, std::generic_category()).message());
    got += static_cast<size_t>(r);
  }
  buf.resize(got);
#else
  const std::string special = special_file_kind(std::filesystem::path(path));
  LOWBIT_CHECK(special.empty(), "image file '", path, "' is ", special,
               ", not a regular file; it is not read (expected a .jpg/.png/.bmp file)");
  std::ifstream f(path, std::ios::binary);
  LOWBIT_CHECK(f.is_open(), "cannot open image file '", path,
               "' for reading: ", std::error_code(errno, std::generic_category()).message());
  buf.clear();
  char chunk[65536];
  while (f.read(chunk, sizeof chunk) || f.gcount() > 0) buf.insert(buf.end(), chunk, chunk + f.gcount());
  LOWBIT_CHECK(!f.bad(), "error while reading image file '", path, "'");
#endif
}

// Calls fn(k, file_bytes, scratch) for paths[0..n) in parallel. Exceptions must not leave an
// OpenMP region: each file's error is recorded and the first in dataset order is thrown
// afterwards (with the count of the others), the same error for every thread count.
template <class Fn>
void for_each_image_file(const std::string& dir, const std::vector<std::string>& paths, size_t n, Fn&& fn) {
  std::vector<std::string> errors(n);
  bool any_error = false;
#pragma omp parallel reduction(|| : any_error)
  {
    std::vector<uint8_t> buf, scratch;  // per thread
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
      const auto k = static_cast<size_t>(i);
      try {
        read_file_bytes(paths[k], buf);
        fn(k, buf, scratch);
      } catch (const std::exception& e) {
        errors[k] = e.what();
        any_error = true;
      } catch (...) {
        errors[k] = "unknown error while reading '" + paths[k] + "'";
        any_error = true;
      }
    }
  }
  if (!any_error) return;
  const auto bad = [](const std::string& e) { return !e.empty(); };
  const auto first = std::find_if(errors.begin(), errors.end(), bad);
  const auto more = std::count_if(first + 1, errors.end(), bad);
  lowbit::detail::fail("image folder '", dir, "': ", *first,
                       more ? " (and " + std::to_string(more) + " more bad file(s))" : "");
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

// The classes and image files of a folder, in dataset order.
struct FolderFiles {
  std::vector<std::string> class_names, paths;
  std::vector<int64_t> labels;
  std::vector<std::string> notes;  // special files skipped, one line each
};

inline FolderFiles list_image_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOWBIT_CHECK(fs::exists(dir, ec), "image folder: directory '", dir,
               "' does not exist (expected one subfolder per class holding .jpg/.png/.bmp images)");
  LOWBIT_CHECK(fs::is_directory(dir, ec), "image folder: '", dir,
               "' is not a directory (expected one subfolder per class)");
  FolderFiles out;
  out.class_names = sorted_entries(
      dir, [](const fs::directory_entry& e) { std::error_code e2; return e.is_directory(e2); });
  LOWBIT_CHECK(!out.class_names.empty(), "image folder: directory '", dir,
               "' has no class subfolders (expected <dir>/<class>/<image>.jpg, one subfolder "
               "per class)");
  LOWBIT_CHECK(out.class_names.size() >= 2, "image folder: directory '", dir,
               "' has a single class subfolder '", out.class_names[0],
               "': there is nothing to classify (expected one subfolder per class, at least 2)");
  for (size_t c = 0; c < out.class_names.size(); ++c) {
    const fs::path class_dir = fs::path(dir) / out.class_names[c];
    const auto files = sorted_entries(class_dir, [&](const fs::directory_entry& e) {
      std::error_code e2;
      if (e.is_directory(e2) || !is_image_file_name(e.path().filename().string())) return false;
      if (e.is_regular_file(e2)) return true;  // the type readdir gave: no stat per image
      const std::string special = special_file_kind(e.path());
      if (special.empty()) return true;
      out.notes.push_back("image folder '" + dir + "': skipped '" + e.path().string() + "': it is " + special +
                          ", not a regular file (never opened)");
      return false;
    });
    LOWBIT_CHECK(!files.empty(), "image folder: class folder '", class_dir.string(),
                 "' holds no .jpg/.jpeg/.png/.bmp files (expected at least one image per class)");
    for (const auto& f : files) {
      out.paths.push_back((class_dir / f).string());
      out.labels.push_back(static_cast<int64_t>(c));
    }
  }
  return out;
}

inline void check_image_folder_options(const ImageFolderOptions& opt) {
  LOWBIT_CHECK(opt.size >= 0 && opt.size <= 4096, "image folder: image size option is ", opt.size,
               ", expected 0 (keep the images' own size) or 1..4096 (resize every image to size x size)");
  LOWBIT_CHECK(opt.channels == 0 || opt.channels == 1 || opt.channels == 3, "image folder: channels option is ",
               opt.channels, ", expected 0 (automatic: 1 if every image is grayscale, else 3), 1 or 3");
}

// Resolves the options on the images of one folder: automatic channels read every file's
// header (stbi_info, in parallel), size 0 only the first file's.
inline FolderShape resolve_folder_shape(const std::string& dir, const std::vector<std::string>& paths,
                                        const ImageFolderOptions& opt) {
  FolderShape s;
  s.resize = opt.size > 0;
  s.height = s.width = opt.size;
  s.channels = opt.channels;
  const size_t n = opt.channels == 0 ? paths.size() : (opt.size == 0 ? 1 : 0);
  std::vector<int> comps(n, 0);
  int w0 = 0, h0 = 0;
  for_each_image_file(dir, paths, n, [&](size_t k, const std::vector<uint8_t>& bytes, std::vector<uint8_t>&) {
    const ImageHeader hd = inspect_image(bytes.data(), bytes.size(), paths[k]);
    comps[k] = hd.comp;
    if (k == 0) w0 = hd.w, h0 = hd.h;
  });
  if (opt.channels == 0)
    s.channels = std::all_of(comps.begin(), comps.end(), [](int c) { return c <= 2; }) ? 1 : 3;
  // inspect_image refused more than kMaxDecodePixels, so an image holds at most kMaxImageBytes.
  if (opt.size == 0) s.width = w0, s.height = h0, s.first = paths[0];
  return s;
}

inline Dataset decode_image_folder(const std::string& dir, FolderFiles&& files, const FolderShape& s) {
  Dataset ds;
  ds.class_names = std::move(files.class_names);
  ds.labels = std::move(files.labels);
  ds.notes = std::move(files.notes);
  for (const auto& note : ds.notes) std::cerr << "note: " << note << "\n";
  ds.channels = s.channels, ds.height = s.height, ds.width = s.width;
  const auto bytes = static_cast<size_t>(ds.image_bytes());
  ds.images.resize(files.paths.size() * bytes);
  for_each_image_file(dir, files.paths, files.paths.size(),
                      [&](size_t k, const std::vector<uint8_t>& buf, std::vector<uint8_t>& tmp) {
                        decode_image_to(buf.data(), buf.size(), files.paths[k], s, tmp, ds.images.data() + k * bytes);
                      });
  ds.source = "image folder " + dir + " (" + std::to_string(ds.size()) + " images, " +
              std::to_string(ds.num_classes()) + " classes" +
              (s.cifar32 ? std::string(")") : ", " + ds.shape_string() + (s.resize ? " resized)" : ")"));
  return ds;
}
}  // namespace detail

// Reads <dir>/<class>/<image>: 32x32 images only, converted to RGB (the original reader).
inline Dataset load_image_folder(const std::string& dir) {
  detail::FolderShape s;
  s.cifar32 = true;
  return detail::decode_image_folder(dir, detail::list_image_folder(dir), s);
}

// Reads <dir>/<class>/<image> of any size and channel count (see the top of this file).
inline Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& opt) {
  detail::check_image_folder_options(opt);
  detail::FolderFiles files = detail::list_image_folder(dir);
  const detail::FolderShape s = detail::resolve_folder_shape(dir, files.paths, opt);
  return detail::decode_image_folder(dir, std::move(files), s);
}

// One split of <root>/train/<class>/<image> and <root>/test/<class>/<image>. The test split
// must have the train split's class folders, and automatic options are resolved on the train
// split (its first image's size, its channels), so both splits come out with one shape.
inline Dataset load_image_folder_split(const std::string& root, Split split, const ImageFolderOptions& opt) {
  const std::string train = (std::filesystem::path(root) / "train").string();
  if (split == Split::Train) return load_image_folder(train, opt);
  detail::check_image_folder_options(opt);
  const std::string test = (std::filesystem::path(root) / "test").string();
  detail::FolderFiles train_files = detail::list_image_folder(train);
  detail::FolderFiles test_files = detail::list_image_folder(test);
  if (test_files.class_names != train_files.class_names) {
    std::string a, b;
    for (const auto& c : train_files.class_names) a += (a.empty() ? "" : " ") + c;
    for (const auto& c : test_files.class_names) b += (b.empty() ? "" : " ") + c;
    lowbit::detail::fail("image folder split: the test folder '", test, "' has the class folders [", b,
                         "], but the train folder '", train, "' has [", a,
                         "]; expected the same classes in both (labels are positions in the sorted list)");
  }
  const detail::FolderShape s = detail::resolve_folder_shape(train, train_files.paths, opt);
  return detail::decode_image_folder(test, std::move(test_files), s);
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
