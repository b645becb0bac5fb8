// Checks on an encoded image that run before stb_image sees it (data/image_folder.hpp calls
// them), for inputs that stb_image 2.27 -- Debian 12's libstb-dev, the copy lowbit compiles --
// mishandles. Each returns "" for an acceptable file or the problem as the tail of a sentence
// ("has a DHT segment ..."), which the caller turns into one line naming the file.
//
// JPEG (jpeg_problem): stb 2.27 trusts a DHT segment's 16 code counts. Their sum may exceed
// the 256 symbols a Huffman table holds, and stbi__build_huffman then writes past the table
// (stb_image.h:1990, found by the fuzzer; upstream added "if (n > 256)" in 2.28). The check
// walks the marker segments exactly as stb reads them and refuses such a table. It is strict:
// a segment must follow the previous one directly (stb resynchronises over junk between
// segments, so a lenient walk could miss a DHT that stb then reads); what stb would refuse
// anyway may be refused here first. It also caps the number of scans (progressive JPEGs use
// about 10): each scan is a pass over the whole image, so a small file with thousands of empty
// scans would otherwise cost minutes of decoding.
//
// PNG (png_image_data): stb inflates a PNG's image data (its IDAT chunks) into a buffer it
// doubles until the stream ends, up to 4 GB, and only then compares the result with the size
// the header declares: a zlib bomb (deflate reaches 1032:1, so 1 MB of IDAT can inflate to 1 GB)
// costs its full inflated size. image_folder.hpp inflates the data once first into a buffer of
// the declared size and refuses a PNG whose data does not fit; png_image_data finds that data.
//
// Sizes (image_pixel_budget_problem): a decode costs memory and time in proportion to the
// declared size, however small the file (a 118-byte BMP can declare 30000 x 30000), so the size
// from the header is checked against kMaxDecodePixels before decoding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "jpeg_entropy_check.hpp"

namespace lowbit {
namespace data {

// The most pixels lowbit decodes per image, after padding each side to a multiple of 32 (a
// JPEG decoder works on whole blocks of up to 32 x 32 pixels): 4096 x 4096, the largest
// image a Dataset holds (kMaxImageBytes). Decoding an image at this cap took about 1 s and
// at most 200 MB (a progressive JPEG; docs/fuzzing.md), per decoding thread.
constexpr int64_t kMaxDecodePixels = int64_t(4096) * 4096;
// The most scans (SOS segments) a JPEG may have (a progressive JPEG has about 10); libjpeg-turbo
// has a scan limit for the same reason.
constexpr int kMaxJpegScans = 100;

namespace detail {

inline std::string hex_byte(uint8_t b) {
  const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

// Bytes of an entropy-coded scan start at p[i]; returns the offset of the marker that ends it
// (a 0xFF not followed by a stuffed 0x00 or a restart marker 0xD0..0xD7), or n.
inline size_t skip_jpeg_scan(const uint8_t* p, size_t n, size_t i) {
  while (i < n) {
    const void* ff = std::memchr(p + i, 0xFF, n - i);
    if (!ff) return n;
    i = static_cast<size_t>(static_cast<const uint8_t*>(ff) - p);
    size_t k = i + 1;
    while (k < n && p[k] == 0xFF) ++k;  // fill bytes
    if (k < n && (p[k] == 0x00 || (p[k] >= 0xD0 && p[k] <= 0xD7))) {
      i = k + 1;
      continue;
    }
    return i;
  }
  return n;
}

// The tables of one DHT segment (seg: its bytes after the length field), read as stb reads
// them: class/id byte, 16 code counts, then as many symbols as the counts add up to.
inline std::string dht_problem(const uint8_t* seg, size_t len, size_t at) {
  const std::string where = "its DHT segment at byte offset " + std::to_string(at);
  size_t k = 0;
  while (k < len) {
    if (len - k < 17) return "is corrupt: " + where + " ends inside a table header";
    const int tc = seg[k] >> 4, th = seg[k] & 15;
    if (tc > 1 || th > 3)
      return "is corrupt: " + where + " has table class " + std::to_string(tc) + " and id " + std::to_string(th) +
             ", expected class 0..1 and id 0..3";
    size_t codes = 0;
    for (int b = 1; b <= 16; ++b) codes += seg[k + static_cast<size_t>(b)];
    if (codes > 256)
      return "is corrupt: " + where + " declares a Huffman table of " + std::to_string(codes) +
             " codes, expected at most 256 (stb_image 2.27 would write past its table)";
    if (len - k - 17 < codes) return "is corrupt: " + where + " ends inside a table's symbols";
    k += 17 + codes;
  }
  return "";
}

// A JPEG's size from its frame header (SOF0-2, the ones stb decodes), read by the walk below
// so that stbi_info need not parse the file a second time. found = false when there is none
// or it holds what stb refuses (then stbi_info reports stb's reason).
struct JpegSize {
  bool found = false;
  int w = 0, h = 0, comp = 0;  // comp as stbi_info reports it: 1 (grey) or 3
};

// replay: also replays the scans as stb decodes them (jpeg_entropy_check.hpp); costs a Huffman
// decode of the file, so only the decode path asks for it (jpeg_entropy_problem below).
inline std::string jpeg_problem(const uint8_t* p, size_t n, JpegSize* size = nullptr,
                                JpegEntropyReplay* replay = nullptr) {
  size_t i = 0;
  int scans = 0;
  bool first = true;
  for (;;) {
    if (i >= n) return "is truncated: it ends without an EOI marker";
    if (p[i] != 0xFF)
      return "is corrupt: byte " + hex_byte(p[i]) + " at offset " + std::to_string(i) +
             " where a JPEG marker (0xFF) was expected";
    const size_t at = i;
    while (i < n && p[i] == 0xFF) ++i;  // 0xFF fill bytes may precede any marker
    if (i >= n) return "is truncated inside a marker";
    const uint8_t m = p[i++];
    if (first) {  // stb tells a JPEG by SOI (after any fill bytes), as here
      if (m != 0xD8) return "is not a JPEG: it starts with 0xFF but not with the SOI marker 0xFF 0xD8";
      first = false;
      continue;
    }
    if (m == 0xD9) return "";  // EOI: stb reads nothing after it
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8))
      return "is corrupt: marker 0xFF " + hex_byte(m) + " at byte offset " + std::to_string(at) +
             " outside a scan, expected a marker segment";
    if (n - i < 2) return "is truncated inside the segment at byte offset " + std::to_string(at);
    const size_t len = (size_t(p[i]) << 8) | p[i + 1];
    if (len < 2 || len > n - i)
      return "is corrupt or truncated: the segment at byte offset " + std::to_string(at) + " declares " +
             std::to_string(len) + " bytes, " + std::to_string(n - i) + " are left";
    if (m == 0xC4) {
      const std::string bad = dht_problem(p + i + 2, len - 2, at);
      if (!bad.empty()) return bad;
    }
    if (size && !size->found && m >= 0xC0 && m <= 0xC2 && len >= 8) {  // precision, height, width, components
      const uint8_t* f = p + i + 2;
      const int h = (f[1] << 8) | f[2], w = (f[3] << 8) | f[4], nc = f[5];
      if (f[0] == 8 && h > 0 && w > 0 && (nc == 1 || nc == 3 || nc == 4)) *size = JpegSize{true, w, h, nc >= 3 ? 3 : 1};
    }
    if (replay) {
      const std::string bad = replay->segment(m, p + i + 2, len - 2, p, n, i + len, at);
      if (!bad.empty()) return bad;
    }
    i += len;
    if (m == 0xDA) {  // SOS: the scan's entropy-coded bytes follow the segment
      if (++scans > kMaxJpegScans)
        return "has more than " + std::to_string(kMaxJpegScans) +
               " scans (SOS segments); each scan decodes the whole image again";
      i = skip_jpeg_scan(p, n, i);
    }
  }
}

// A width x height image has pixels, and decoding it stays within kMaxDecodePixels.
inline std::string image_pixel_budget_problem(int64_t width, int64_t height) {
  if (width < 1 || height < 1)  // stb decodes a BMP of height 0; the resize would divide by it
    return "is " + std::to_string(width) + "x" + std::to_string(height) + " (width x height): it has no pixels";
  const int64_t pw = (width + 31) / 32 * 32, ph = (height + 31) / 32 * 32;  // <= 2^31 each: no overflow
  if (pw * ph <= kMaxDecodePixels) return "";
  return "is " + std::to_string(width) + "x" + std::to_string(height) + " (width x height), more than the " +
         std::to_string(kMaxDecodePixels) + " pixels (4096x4096) lowbit decodes per image (shrink it beforehand: "
         "image_size resizes after decoding)";
}

// A PNG's image data as stb reads it: the IDAT chunks concatenated up to IEND, and the bytes
// they must inflate to (a filter byte per row, per Adam7 pass when interlaced). found = false
// when the file is not a PNG stb would inflate (no IHDR first, no IEND: stb refuses it).
struct PngData {
  bool found = false;
  uint64_t width = 0, height = 0;  // from IHDR, which must be the first chunk (as stb requires)
  bool zlib_header = true;  // false for Apple's CgBI PNGs (raw deflate), as stb reads them
  std::string idat;
  uint64_t raw_bytes = 0;
  std::string problem;  // set: refuse the file (the tail of a sentence, as jpeg_problem's)
};

inline uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

inline PngData png_image_data(const uint8_t* p, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  PngData out;
  if (n < 8 || std::memcmp(p, sig, 8) != 0) return out;
  uint64_t w = 0, h = 0, depth = 0, comps = 0, interlace = 0;
  for (size_t i = 8; n - i >= 12;) {
    const uint64_t len = be32(p + i);
    const uint8_t* type = p + i + 4;
    // stb grows its IDAT buffer to the declared length before it reads (up to 4 GB for a
    // 50-byte file; found by the fuzzer), so a chunk longer than the file is refused.
    if (len > n - i - 12) {
      out.problem = "is truncated: its " + std::string(reinterpret_cast<const char*>(type), 4) + " chunk at byte offset " +
                    std::to_string(i) + " declares " + std::to_string(len) + " bytes, but only " +
                    std::to_string(n - i - 8) + " follow its header (for the data and the 4-byte CRC)";
      return out;
    }
    const uint8_t* data = p + i + 8;
    if (i == 8) {  // IHDR first, with a depth and colour type stb accepts, or stb refuses the file
      if (std::memcmp(type, "IHDR", 4) != 0 || len < 13) return out;
      w = be32(data), h = be32(data + 4), depth = data[8], interlace = data[12];
      const uint8_t color = data[9];
      if ((depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16) || color > 6 || color == 1 ||
          color == 5)
        return out;
      comps = color == 3 ? 1 : (color & 2 ? 3 : 1) + (color & 4 ? 1 : 0);  // palette: 1 index
      out.width = w, out.height = h;
    } else if (std::memcmp(type, "CgBI", 4) == 0) {
      out.zlib_header = false;
    } else if (std::memcmp(type, "IDAT", 4) == 0) {
      // stb 2.27 allocates its IDAT buffer at the first non-empty chunk; an empty one before
      // it makes stb memcpy 0 bytes to a null pointer (undefined behaviour; found by the fuzzer).
      if (len == 0 && out.idat.empty()) {
        out.problem = "is corrupt: its first IDAT chunk (at byte offset " + std::to_string(i) + ") is empty";
        return out;
      }
      out.idat.append(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
    } else if (std::memcmp(type, "IEND", 4) == 0) {
      // Rows of each pass (one pass of the whole image unless Adam7-interlaced), as stb sizes them.
      static const uint64_t x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
      static const uint64_t dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
      for (int k = 0; k < (interlace ? 7 : 1); ++k) {
        const uint64_t pw = interlace ? (w + dx[k] - 1 - x0[k]) / dx[k] : w;  // x0 < dx: no wrap
        const uint64_t ph = interlace ? (h + dy[k] - 1 - y0[k]) / dy[k] : h;
        if (pw && ph) out.raw_bytes += ph * (1 + (pw * depth * comps + 7) / 8);
      }
      out.found = w > 0 && h > 0;
      return out;
    }
    i += 12 + static_cast<size_t>(len);
  }
  return out;
}

// The checks that apply to these bytes before stb reads even the header: stb reads a JPEG's
// DHT segments already for its size (stbi_info). PNG and BMP need none before the header.
inline std::string encoded_image_problem(const uint8_t* p, size_t n, JpegSize* size = nullptr) {
  if (n > 0 && p[0] == 0xFF) return jpeg_problem(p, n, size);  // stb tries JPEG first, by this byte
  return "";
}

// The JPEG walk with the scan replay: "" or the problem; "" for other formats.
inline std::string jpeg_entropy_problem(const uint8_t* p, size_t n) {
  if (n == 0 || p[0] != 0xFF) return "";
  JpegEntropyReplay replay;
  return jpeg_problem(p, n, nullptr, &replay);
}

}  // namespace detail
}  // namespace data
}  // namespace lowbit
