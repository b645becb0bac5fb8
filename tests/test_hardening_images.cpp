// Hostile inputs to the image readers (issue 34, item 3; docs/fuzzing.md): a JPEG whose
// Huffman table overflows stb_image 2.27's, decode bombs (tiny JPEG and BMP files declaring
// huge images, a PNG whose data inflates far past its size), a JPEG of endless scans, named
// pipes where a file is expected, and the fuzzer's findings in the image and safetensors
// readers (each rebuilt here, not kept as a file). Every input is written here byte by byte into a
// temporary directory. Each case checks one clear line naming the file, and that nothing was
// decoded or opened first. Each fails without its check (a named pipe: the reader would block;
// run_with_deadline unblocks it and fails the test).
#include <catch2/catch.hpp>

#include <lowbit/data/cifar10_binary.hpp>
#include <lowbit/data/image_folder.hpp>
#include <lowbit/io/safetensors.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "temp_dir_for_tests.hpp"

using namespace lowbit;
using namespace lowbit::data;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

#define ONE_LINE !Contains("\n")

namespace {

using lowbit_tests::TempDir;

using Bytes = std::vector<uint8_t>;

void write_bytes(const std::string& path, const Bytes& b) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void put16be(Bytes& b, unsigned v) {
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}
void put32le(Bytes& b, uint32_t v) {
  for (int k = 0; k < 4; ++k) b.push_back(uint8_t(v >> (8 * k)));
}

// A 24-bit BMP of w x h pixels whose pixel rows hold `pixel_bytes` bytes (0: none at all:
// stb then decodes zeros, so the cost of a decode is the declared size alone).
Bytes bmp(int32_t w, int32_t h, size_t pixel_bytes) {
  Bytes b{'B', 'M'};
  put32le(b, uint32_t(54 + pixel_bytes));
  put32le(b, 0);
  put32le(b, 54);
  for (uint32_t v : {40u, uint32_t(w), uint32_t(h)}) put32le(b, v);
  b.push_back(1), b.push_back(0), b.push_back(24), b.push_back(0);  // planes, bits per pixel
  for (int k = 0; k < 6; ++k) put32le(b, 0);  // no compression, sizes, resolution, palette
  for (size_t k = 0; k < pixel_bytes; ++k) b.push_back(uint8_t(k * 37));
  return b;
}
Bytes bmp_rgb(int w, int h) { return bmp(w, h, size_t((3 * w + 3) / 4 * 4) * size_t(h)); }

// A JPEG's start: SOI and a baseline SOF0 of w x h, 3 components.
Bytes jpeg_sof(unsigned w, unsigned h) {
  Bytes b{0xFF, 0xD8, 0xFF, 0xC0};
  put16be(b, 17);
  b.push_back(8);  // precision
  put16be(b, h);
  put16be(b, w);
  b.push_back(3);
  for (uint8_t c = 1; c <= 3; ++c) b.push_back(c), b.push_back(0x11), b.push_back(0);
  return b;
}

// A JPEG decode bomb: SOI, SOF0 and EOI, no tables and no scan -- enough for stb to read the
// size, allocate the image and convert it (of uninitialised coefficients) to RGB.
Bytes jpeg_bomb(unsigned w, unsigned h) {
  Bytes b = jpeg_sof(w, h);
  b.push_back(0xFF), b.push_back(0xD9);
  return b;
}

// The crafted JPEG: a DHT segment declaring 300 codes (45 of 15 bits, 255 of 16 bits -- a
// consistent code, so stb 2.27 finds nothing wrong with it) for a table of 256 symbols.
// stb_image 2.27 writes the 300 code sizes past its 257-byte table (UBSan: stb_image.h:1990).
Bytes jpeg_dht_overflow() {
  Bytes b{0xFF, 0xD8, 0xFF, 0xC4};
  put16be(b, 2 + 17 + 300);
  b.push_back(0x00);  // DC table 0
  for (int len = 1; len <= 16; ++len) b.push_back(len == 15 ? 45 : len == 16 ? 255 : 0);
  for (int k = 0; k < 300; ++k) b.push_back(uint8_t(k));
  b.push_back(0xFF), b.push_back(0xD9);
  return b;
}

// A grayscale baseline JPEG of w x h: one quantization table (every entry q, 16-bit when q >
// 255), a DC table with the single 1-bit code '0' for `dc_symbol` (its magnitude bits), an AC
// table with the single code '0' for EOB, and a scan whose blocks each hold the DC difference
// `diff` (dc_symbol bits) and an EOB. dc_table: the DC table the scan uses (0 is the one defined).
Bytes jpeg_gray_dc(unsigned w, unsigned h, unsigned q, int dc_symbol, int diff, int dc_table = 0) {
  Bytes b{0xFF, 0xD8, 0xFF, 0xDB};
  put16be(b, q > 255 ? 2 + 129 : 2 + 65);
  b.push_back(q > 255 ? 0x10 : 0x00);
  for (int k = 0; k < 64; ++k) q > 255 ? put16be(b, q) : b.push_back(uint8_t(q));
  for (uint8_t v : {0xFF, 0xC0, 0x00, 0x0B, 0x08}) b.push_back(v);
  put16be(b, h), put16be(b, w);
  for (uint8_t v : {0x01, 0x01, 0x11, 0x00}) b.push_back(v);  // one component, 1x1, table 0
  for (int tc = 0; tc < 2; ++tc) {                                // DC then AC table 0
    for (uint8_t v : {0xFF, 0xC4, 0x00, 0x14}) b.push_back(v);
    b.push_back(uint8_t(tc << 4));
    for (int len = 1; len <= 16; ++len) b.push_back(len == 1);
    b.push_back(tc ? 0x00 : uint8_t(dc_symbol));
  }
  for (uint8_t v : {0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01}) b.push_back(v);
  b.push_back(uint8_t(dc_table << 4));
  for (uint8_t v : {0x00, 0x3F, 0x00}) b.push_back(v);
  std::string bits;  // per block: the DC code, the difference's bits (JPEG's "extend" form), EOB
  const int mag = diff >= 0 ? diff : diff + (1 << dc_symbol) - 1;
  for (unsigned k = 0; k < ((w + 7) / 8) * ((h + 7) / 8); ++k) {
    bits += '0';
    for (int i = dc_symbol - 1; i >= 0; --i) bits += char('0' + ((mag >> i) & 1));
    bits += '0';
  }
  while (bits.size() % 8) bits += '1';
  for (size_t i = 0; i < bits.size(); i += 8) {
    const auto v = uint8_t(std::stoi(bits.substr(i, 8), nullptr, 2));
    b.push_back(v);
    if (v == 0xFF) b.push_back(0x00);  // byte stuffing
  }
  b.push_back(0xFF), b.push_back(0xD9);
  return b;
}

// Deflate bits, least significant first; Huffman codes go most significant bit first.
struct BitWriter {
  Bytes out;
  uint32_t acc = 0;
  int n = 0;
  void bits(uint32_t v, int count) {
    for (int i = 0; i < count; ++i) {
      acc |= ((v >> i) & 1u) << n;
      if (++n == 8) out.push_back(uint8_t(acc)), acc = 0, n = 0;
    }
  }
  void code(uint32_t c, int len) {
    for (int i = len - 1; i >= 0; --i) bits((c >> i) & 1u, 1);
  }
};

// A zlib stream of `count` zero bytes: one fixed-Huffman block, a literal 0 and then copies
// of 258 bytes at distance 1 (13 bits each: deflate's 1032:1 ratio), the rest as literals.
Bytes zlib_zeros(size_t count) {
  BitWriter w;
  w.out = {0x78, 0x01};
  w.bits(1, 1), w.bits(1, 2);  // last block, fixed Huffman codes
  w.code(0x30, 8);             // literal 0
  size_t left = count - 1;
  for (; left >= 258; left -= 258) w.code(0xC5, 8), w.code(0, 5);  // length 258 (code 285), distance 1
  for (; left > 0; --left) w.code(0x30, 8);
  w.code(0, 7);  // end of block
  if (w.n) w.out.push_back(uint8_t(w.acc));
  const uint32_t adler = (uint32_t(count % 65521) << 16) | 1u;
  for (int k = 3; k >= 0; --k) w.out.push_back(uint8_t(adler >> (8 * k)));
  return w.out;
}

// A w x h 8-bit RGB PNG whose image data is `idat` (chunk CRCs are 0: stb does not check them).
Bytes png_rgb(uint32_t w, uint32_t h, const Bytes& idat) {
  Bytes b{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  auto chunk = [&](const char* type, const Bytes& data) {
    for (int k = 3; k >= 0; --k) b.push_back(uint8_t(data.size() >> (8 * k)));
    b.insert(b.end(), type, type + 4);
    b.insert(b.end(), data.begin(), data.end());
    for (int k = 0; k < 4; ++k) b.push_back(0);
  };
  Bytes ihdr;
  for (uint32_t v : {w, h})
    for (int k = 3; k >= 0; --k) ihdr.push_back(uint8_t(v >> (8 * k)));
  for (uint8_t v : {8, 2, 0, 0, 0}) ihdr.push_back(v);  // depth 8, RGB, deflate, filter 0, not interlaced
  chunk("IHDR", ihdr);
  chunk("IDAT", idat);
  chunk("IEND", {});
  return b;
}

// Runs fn (which may hang opening a named pipe without the fix) with a deadline: if it has not
// returned after 10 s, the pipe is opened for writing and closed, so the reader sees end of
// file and the thread ends, and the test fails.
template <class Fn>
void run_with_deadline(const std::string& fifo, Fn fn) {
  auto done = std::async(std::launch::async, fn);
  if (done.wait_for(std::chrono::seconds(10)) == std::future_status::timeout) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    done.wait();
    FAIL("the reader opened the named pipe '" << fifo << "' and blocked");
  }
  done.get();
}

}  // namespace

TEST_CASE("hardening: a JPEG whose Huffman table overflows stb_image's is refused before stb reads it",
          "[data][errors]") {
  TempDir tmp;
  const Bytes bad = jpeg_dht_overflow();
  uint8_t out[3 * 32 * 32];
  CHECK_THROWS_WITH(decode_image_32x32(bad.data(), bad.size(), "x/crafted.jpg", out),
                    Contains("cannot decode image 'x/crafted.jpg' (325 bytes): it is corrupt") && Contains("DHT segment at byte offset 2") &&
                        Contains("Huffman table of 300 codes, expected at most 256") && ONE_LINE);
  // Through the folder reader, in each mode (the header pass of automatic channels included).
  write_bytes(tmp.str("f/a/0.bmp"), bmp_rgb(32, 32));
  write_bytes(tmp.str("f/b/0.jpg"), bad);
  for (const ImageFolderOptions opt : {ImageFolderOptions{0, 0}, ImageFolderOptions{0, 3}, ImageFolderOptions{16, 3}}) {
    CHECK_THROWS_WITH(load_image_folder(tmp.str("f"), opt),
                      Contains("image '" + tmp.str("f/b/0.jpg") + "' (325 bytes): it is corrupt") &&
                          Contains("Huffman table of 300 codes") && ONE_LINE);
  }
  CHECK_THROWS_WITH(load_image_folder(tmp.str("f")), Contains(tmp.str("f/b/0.jpg")) && Contains("300 codes") && ONE_LINE);
}

TEST_CASE("hardening: a JPEG whose DC coefficient leaves 16 bits is refused before stb decodes it",
          "[data][errors]") {
  // Found by fuzz_image in CI: stb_image 2.27 computes dc * q in int (a signed overflow here:
  // 65534 x 65535) and stores it in a short. Two blocks of the largest difference, 16-bit table.
  TempDir tmp;
  const Bytes bad = jpeg_gray_dc(16, 8, 65535, 15, 32767);
  CHECK_THAT(lowbit::data::detail::jpeg_entropy_problem(bad.data(), bad.size()),
             Contains("component 0's DC coefficient reaches 32767 x 65535") && Contains("outside 16 bits"));
  const Bytes good = jpeg_gray_dc(16, 8, 8, 4, 15);  // small values in the same layout
  write_bytes(tmp.str("f/a/0.jpg"), bad);
  write_bytes(tmp.str("f/b/0.jpg"), good);
  CHECK_THROWS_WITH(load_image_folder(tmp.str("f"), ImageFolderOptions{0, 1}),
                    Contains("image '" + tmp.str("f/a/0.jpg") + "' (") && Contains("it is corrupt: component 0's DC") &&
                        Contains("in its scan at byte offset 192") && Contains("refused before decoding") && ONE_LINE);
  // The prediction adds up over blocks: 17 blocks of +2047 at q = 1 leave 16 bits in the 17th.
  const Bytes drift = jpeg_gray_dc(17 * 8, 8, 1, 11, 2047);
  CHECK_THAT(lowbit::data::detail::jpeg_entropy_problem(drift.data(), drift.size()), Contains("DC coefficient reaches 34799 x 1 = 34799"));
  // The good one decodes to the values its DC gives: 128 + 15 x 8 / 8, then 128 + 30 x 8 / 8.
  CHECK(lowbit::data::detail::jpeg_entropy_problem(good.data(), good.size()).empty());
  write_bytes(tmp.str("g/a/0.jpg"), good);
  write_bytes(tmp.str("g/b/0.jpg"), good);
  const Dataset ds = load_image_folder(tmp.str("g"), ImageFolderOptions{0, 1});
  REQUIRE(ds.images.size() == 2 * 16 * 8);
  CHECK(int(ds.images[0]) == 128 + 15);
  CHECK(int(ds.images[8]) == 128 + 30);  // the second block: the prediction 15 + 15
}

TEST_CASE("hardening: a JPEG scan that uses a table no segment defines is refused", "[data][errors]") {
  // stb would read its uninitialized table (stbi__jpeg is malloc'ed).
  const Bytes bad = jpeg_gray_dc(8, 8, 8, 4, 15, /*dc_table=*/1);
  CHECK_THAT(lowbit::data::detail::jpeg_entropy_problem(bad.data(), bad.size()),
             Contains("its scan at byte offset") && Contains("uses DC Huffman table 1, which no DHT segment defines"));
}

TEST_CASE("hardening: decode bombs (tiny JPEG and BMP files declaring huge images) are refused from the header",
          "[data][errors]") {
  TempDir tmp;
  // 8192 x 8192: 4 times the decode budget. Without the header check stb allocates and fills
  // about 200 MB for each (a 30000 x 30000 BMP of 54 bytes took 10 s and 1.8 GB).
  const Bytes jpeg_bomb8k = jpeg_bomb(8192, 8192), bmp_bomb = bmp(8192, 8192, 0);
  REQUIRE(jpeg_bomb8k.size() < 40);
  REQUIRE(bmp_bomb.size() == 54);
  write_bytes(tmp.str("f/a/0.bmp"), bmp_rgb(32, 32));
  write_bytes(tmp.str("f/b/0.jpg"), jpeg_bomb8k);
  write_bytes(tmp.str("g/a/0.bmp"), bmp_rgb(32, 32));
  write_bytes(tmp.str("g/b/0.bmp"), bmp_bomb);
  // "refused before decoding": the check reads the header only (speed is not timed in a unit
  // test; docs/fuzzing.md has the decode costs).
  for (const char* dir : {"f", "g"}) {
    const std::string file = tmp.str(std::string(dir) + (dir[0] == 'f' ? "/b/0.jpg" : "/b/0.bmp"));
    INFO(file);
    // Resized (the size alone cannot be refused), automatic channels, and a fixed size.
    CHECK_THROWS_WITH(load_image_folder(tmp.str(dir), ImageFolderOptions{32, 3}),
                      Contains("image '" + file + "' is 8192x8192 (width x height), more than the 16777216 pixels") &&
                          Contains("refused before decoding") && ONE_LINE);
    CHECK_THROWS_WITH(load_image_folder(tmp.str(dir), ImageFolderOptions{32, 0}),
                      Contains("image '" + file + "' is 8192x8192") && ONE_LINE);
    CHECK_THROWS_WITH(load_image_folder(tmp.str(dir), ImageFolderOptions{0, 3}),
                      Contains("image '" + file + "' is 8192x8192") && Contains("refused before decoding") && ONE_LINE);
    CHECK_THROWS_WITH(load_image_folder(tmp.str(dir)),
                      Contains("image '" + file + "' is 8192x8192") && Contains("refused before decoding") && ONE_LINE);
  }
  // At the budget (4096 x 4096) an image is accepted and resized.
  write_bytes(tmp.str("h/a/0.bmp"), bmp(4096, 4096, 0));
  write_bytes(tmp.str("h/b/0.bmp"), bmp_rgb(32, 32));
  CHECK(load_image_folder(tmp.str("h"), ImageFolderOptions{8, 3}).size() == 2);
}

TEST_CASE("hardening: a PNG whose image data inflates past its declared size (a zlib bomb) is refused",
          "[data][errors]") {
  TempDir tmp;
  // 32 x 32 RGB declares 32 rows of 1 filter byte + 96 pixel bytes = 3104 bytes. The bomb's
  // 6 KB of IDAT inflate to 1 MB (stb 2.27 inflates it all, up to 4 GB, then decodes the first
  // 3104 bytes as if nothing were wrong).
  const Bytes bomb = png_rgb(32, 32, zlib_zeros(1 << 20));
  REQUIRE(bomb.size() < 8000);
  write_bytes(tmp.str("f/a/0.png"), png_rgb(32, 32, zlib_zeros(3104)));  // exact: accepted
  write_bytes(tmp.str("f/b/0.png"), png_rgb(32, 32, zlib_zeros(3104)));
  CHECK(load_image_folder(tmp.str("f")).size() == 2);
  write_bytes(tmp.str("f/b/1.png"), bomb);
  for (const ImageFolderOptions opt : {ImageFolderOptions{0, 0}, ImageFolderOptions{8, 3}}) {
    CHECK_THROWS_WITH(load_image_folder(tmp.str("f"), opt),
                      Contains("image '" + tmp.str("f/b/1.png") + "' is a 32x32 PNG whose image data") &&
                          Contains("does not inflate to at most the 3104 bytes its header declares") && ONE_LINE);
  }
  CHECK_THROWS_WITH(load_image_folder(tmp.str("f")), Contains(tmp.str("f/b/1.png")) && Contains("3104 bytes") && ONE_LINE);
}

TEST_CASE("hardening: a JPEG with more scans than the budget is refused before decoding", "[data][errors]") {
  Bytes b = jpeg_sof(32, 32);
  for (int k = 0; k <= kMaxJpegScans; ++k) {  // one scan over the limit, each an empty SOS
    for (uint8_t v : {0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00}) b.push_back(v);
  }
  b.push_back(0xFF), b.push_back(0xD9);
  uint8_t out[3 * 32 * 32];
  CHECK_THROWS_WITH(decode_image_32x32(b.data(), b.size(), "many_scans.jpg", out),
                    Contains("image 'many_scans.jpg' (") && Contains("bytes): it has more than 100 scans") && ONE_LINE);
}

TEST_CASE("hardening: a named pipe in an image folder is skipped with a note, never opened", "[data][errors]") {
  TempDir tmp;
  write_bytes(tmp.str("f/a/0.bmp"), bmp_rgb(4, 4));
  write_bytes(tmp.str("f/b/0.bmp"), bmp_rgb(4, 4));
  const std::string fifo = tmp.str("f/a/1.jpg");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (const ImageFolderOptions opt : {ImageFolderOptions{0, 0}, ImageFolderOptions{8, 3}}) {
    Dataset ds;
    run_with_deadline(fifo, [&] { ds = load_image_folder(tmp.str("f"), opt); });
    CHECK(ds.size() == 2);
    REQUIRE(ds.notes.size() == 1);
    CHECK_THAT(ds.notes[0], Contains("skipped '" + fifo + "': it is a named pipe (FIFO), not a regular file") && ONE_LINE);
  }
}

TEST_CASE("hardening: a named pipe given as a file is refused without opening it", "[data][errors]") {
  TempDir tmp;
  const std::string fifo = tmp.str("model.safetensors");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  run_with_deadline(fifo, [&] {
    CHECK_THROWS_WITH(io::read_safetensors(fifo),
                      Contains("read_safetensors: '" + fifo + "' is not a regular file") && ONE_LINE);
  });
  run_with_deadline(fifo, [&] {
    CHECK_THROWS_WITH(read_cifar10_bin(fifo), Contains("'" + fifo + "' is not a regular file") && ONE_LINE);
  });
}

// Found by the fuzzer: stb
// decodes a BMP of height 0, and resizing it divided by zero (UBSan in stb_image_resize).
TEST_CASE("hardening: an image of zero width or height is refused from its header", "[data][errors]") {
  TempDir tmp;
  write_bytes(tmp.str("f/a/0.bmp"), bmp_rgb(32, 32));
  write_bytes(tmp.str("f/b/0.bmp"), bmp(156, 0, 0));
  for (const ImageFolderOptions opt : {ImageFolderOptions{24, 1}, ImageFolderOptions{0, 0}}) {
    CHECK_THROWS_WITH(load_image_folder(tmp.str("f"), opt),
                      Contains("image '" + tmp.str("f/b/0.bmp") + "' is 156x0 (width x height): it has no pixels") &&
                          ONE_LINE);
  }
}

// Found by the fuzzer: a header
// whose top level is an array of objects made the key counter use an empty list.
TEST_CASE("hardening: a safetensors header that is an array of objects is refused", "[io][errors]") {
  TempDir tmp;
  const std::string text = R"([{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}])";
  Bytes b;
  for (int k = 0; k < 8; ++k) b.push_back(uint8_t(text.size() >> (8 * k)));
  b.insert(b.end(), text.begin(), text.end());
  for (int k = 0; k < 4; ++k) b.push_back(0);
  write_bytes(tmp.str("x.safetensors"), b);
  CHECK_THROWS_WITH(io::read_safetensors(tmp.str("x.safetensors")),
                    Contains(tmp.str("x.safetensors")) && Contains("expected an object of tensors") && ONE_LINE);
}

// Found by the fuzzer: stb 2.27
// copies an empty first IDAT chunk to its not yet allocated buffer (memcpy to a null pointer).
TEST_CASE("hardening: a PNG whose first IDAT chunk is empty is refused before decoding", "[data][errors]") {
  TempDir tmp;
  Bytes png = png_rgb(8, 8, {});  // signature (8) + IHDR chunk (25): the IDAT chunk is at byte 33
  write_bytes(tmp.str("f/a/0.png"), png);
  write_bytes(tmp.str("f/b/0.png"), png_rgb(8, 8, zlib_zeros(8 * 25)));
  CHECK_THROWS_WITH(load_image_folder(tmp.str("f"), ImageFolderOptions{0, 3}),
                    Contains("cannot decode image '" + tmp.str("f/a/0.png") +
                             "' (57 bytes): it is corrupt: its first IDAT chunk (at byte offset 33) is empty") &&
                        ONE_LINE);
}

// Found by the fuzzer: stb 2.27
// reallocates its IDAT buffer to a chunk's declared length before reading it, so a few bytes
// declaring a 2 GB chunk cost a 2 GB allocation.
TEST_CASE("hardening: a PNG chunk longer than the file is refused before decoding", "[data][errors]") {
  TempDir tmp;
  Bytes png = png_rgb(8, 8, zlib_zeros(8 * 25));
  png.resize(33 + 8 + 10);  // signature + IHDR, then the IDAT chunk's length, type and 10 bytes
  for (int k = 0; k < 4; ++k) png[33 + size_t(k)] = uint8_t(0x7FFFFFF0u >> (24 - 8 * k));
  write_bytes(tmp.str("f/a/0.png"), png);
  write_bytes(tmp.str("f/b/0.png"), png_rgb(8, 8, zlib_zeros(8 * 25)));
  CHECK_THROWS_WITH(load_image_folder(tmp.str("f"), ImageFolderOptions{0, 3}),
                    Contains("cannot decode image '" + tmp.str("f/a/0.png") + "' (51 bytes): it is truncated: its "
                             "IDAT chunk at byte offset 33 declares 2147483632 bytes, but only 10 follow its header") &&
                        ONE_LINE);
}
