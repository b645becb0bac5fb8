// SR images of any size: decoded with lowbit's private stb_image after the same structure
// checks as the image-folder reader (data/image_folder.hpp), kept with the channels they are
// stored with (grey stays grey, so that luma() can do what SRCNN does: use a grey image's
// values as they are), and written as PNG through a temp file and a rename.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "../../io/atomic_write.hpp"
#include "../image_folder.hpp"
#include "../stb_image_write_private.hpp"

namespace lowbit {
namespace data {
namespace sr {

struct Image8 {
  int64_t height = 0, width = 0, channels = 0;  // channels: 1 (grey) or 3 (RGB)
  std::vector<uint8_t> px;                      // HWC, row-major
};

namespace detail {
// stb decodes a truncated uncompressed BMP without complaint (the missing rows come out as
// garbage), so its size is checked against the header: pixel offset + |height| rows of
// ((width * bpp + 31) / 32) * 4 bytes. "" when fine or not an uncompressed BMP.
inline std::string bmp_truncation(const uint8_t* b, size_t len) {
  if (len < 30 || b[0] != 'B' || b[1] != 'M') return "";
  const auto u = [&](size_t at, int n) {  // little-endian unsigned field
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | b[at + size_t(i)];
    return v;
  };
  const bool core = u(14, 4) == 12;  // OS/2 BITMAPCOREHEADER: 16-bit sizes
  if (!core && (len < 34 || (u(30, 4) != 0 && u(30, 4) != 3))) return "";  // RLE: left to stb
  const uint64_t w = core ? u(18, 2) : u(18, 4), bpp = core ? u(24, 2) : u(28, 2);
  const int64_t h = core ? int64_t(u(20, 2)) : int64_t(int32_t(uint32_t(u(22, 4))));
  // No overflow: inspect_image has already bounded width x height.
  const uint64_t need = u(10, 4) + uint64_t(h < 0 ? -h : h) * ((w * bpp + 31) / 32 * 4);
  return need > len ? "is truncated: its header declares " + std::to_string(need) + " bytes, the file has " +
                          std::to_string(len) : "";
}
}  // namespace detail

// Decodes the bytes of a JPEG, PNG or BMP file; `name` (the path) is used in errors. Grey and
// grey+alpha files give 1 channel, the others 3 (alpha is dropped). stb expands a palettized
// BMP to RGB; one whose pixels are all grey (Set14/bridge.bmp, an 8-bit BMP with the identity
// grey palette) is returned as 1 channel, which is what MATLAB's imread gives for it (the
// palette indices) and what SRCNN then uses as Y.
inline Image8 decode_image(const uint8_t* bytes, size_t len, const std::string& name) {
  namespace d = lowbit::data::detail;
  LOWBIT_CHECK(len > 0, "cannot decode image '", name, "': the file is empty (expected a JPEG, PNG or BMP file)");
  const d::ImageHeader hd = d::inspect_image(bytes, len, name);  // sizes within the budget, JPEG/PNG structure
  const std::string cut = detail::bmp_truncation(bytes, len);
  LOWBIT_CHECK(cut.empty(), "cannot decode image '", name, "': it ", cut, " (expected a complete BMP file)");
  d::check_png_data(bytes, len, name, hd);
  d::check_jpeg_data(bytes, len, name);
  d::StbImage img;
  const int want = hd.comp <= 2 ? 1 : 3;
  d::stb_decode(bytes, len, name, want, "a valid JPEG, PNG or BMP file", img);
  Image8 out;
  out.height = img.h, out.width = img.w, out.channels = want;
  const size_t n = size_t(img.h) * size_t(img.w);
  out.px.assign(img.px, img.px + n * size_t(want));
  const size_t bpp_at = len > 30 && bytes[14] == 12 ? 24 : 28;  // OS/2 core header, else Windows
  const bool palette_bmp = len > 30 && bytes[0] == 'B' && bytes[1] == 'M' && bytes[bpp_at] <= 8 && bytes[bpp_at + 1] == 0;
  bool grey = want == 3 && palette_bmp;
  for (size_t i = 0; i < n && grey; ++i) grey = out.px[3 * i] == out.px[3 * i + 1] && out.px[3 * i] == out.px[3 * i + 2];
  if (grey) {
    for (size_t i = 0; i < n; ++i) out.px[i] = out.px[3 * i];
    out.px.resize(n);
    out.channels = 1;
  }
  return out;
}

// Reads and decodes an image file: errors name the file (unreadable, not an image, truncated).
inline Image8 load_image(const std::string& path) {
  std::vector<uint8_t> bytes;
  lowbit::data::detail::read_file_bytes(path, bytes);
  return decode_image(bytes.data(), bytes.size(), path);
}

// The caller's size rule (a 1x1 image, or one smaller than a patch): `why` says what needs it.
inline void check_min_size(const Image8& img, const std::string& path, int64_t min_side, const char* why) {
  LOWBIT_CHECK(img.height >= min_side && img.width >= min_side, "image '", path, "' is ", img.width, "x", img.height,
               " (width x height), expected at least ", min_side, "x", min_side, " (", why, ")");
}

// Writes a grey or RGB image as PNG: encoded in memory, then io::write_file_atomic (temp file,
// fsync, rename), so an existing picture is never left half written.
inline void write_png(const std::string& path, const Image8& img) {
  LOWBIT_CHECK((img.channels == 1 || img.channels == 3) && img.height > 0 && img.width > 0 &&
                   img.px.size() == size_t(img.height * img.width * img.channels),
               "write_png '", path, "': image is ", img.width, "x", img.height, "x", img.channels, " with ",
               img.px.size(), " bytes, expected a non-empty grey or RGB image with width*height*channels bytes");
  std::string png;
  const auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  const int w = static_cast<int>(img.width), c = static_cast<int>(img.channels);
  LOWBIT_CHECK(::lowbit_detail_stbiw::stbi_write_png_to_func(append, &png, w, static_cast<int>(img.height), c,
                                                             img.px.data(), w * c) == 1,
               "write_png '", path, "': stb_image_write could not encode the ", img.width, "x", img.height,
               " image (out of memory?)");
  io::write_file_atomic(path, png, "write_png");
}

}  // namespace sr
}  // namespace data
}  // namespace lowbit
