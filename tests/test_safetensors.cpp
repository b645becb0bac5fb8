// Safetensors files (io/safetensors.hpp) and the CRC-32C they carry (io/checksum.hpp): round
// trips of every dtype, files written and read by an independent Python implementation
// (tests/safetensors_like_pytorch.py, standard library only), and damaged or malformed files,
// each refused with one line naming the file and the problem.
#include <catch2/catch.hpp>

#include <lowbit/io/checksum.hpp>
#include <lowbit/io/safetensors.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir_for_tests.hpp"

using namespace lowbit;
using namespace lowbit::io;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

// Every reader error is one line: the matcher of each error check ends with this.
#define ONE_LINE !Contains("\n")

namespace {

using lowbit_tests::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s;
  for (int k = 0; k < 8; ++k) s.push_back(static_cast<char>((n >> (8 * k)) & 0xffu));
  return s;
}

// A hand-made file: the length of `header`, `header` as given (no padding), then `data`.
std::string make_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

std::string to_hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : bytes) s += {digits[c >> 4], digits[c & 15]};
  return s;
}

// The Python helper: the system's /usr/bin/python3, which tests/run.sh installs (scripts/
// install_deps.sh tests). Catch2 v2 has no "skip", and a missing python3 here means a broken
// test machine, so its absence fails the test with the fix, as the trainer tests do.
bool run_python(const std::string& args, const std::string& stdout_path) {
  const std::string python = "/usr/bin/python3";
  if (!fs::exists(python)) {
    FAIL(python << " is missing: this test checks lowbit against tests/safetensors_like_pytorch.py and needs it"
                   " (install it: scripts/install_deps.sh tests)");
    return false;
  }
  const std::string cmd = python + " " + std::string(LOWBIT_SOURCE_DIR) + "/tests/safetensors_like_pytorch.py " + args +
                          " > " + stdout_path + " 2>&1";
  const int status = std::system(cmd.c_str());
  INFO(cmd << "\n" << slurp(stdout_path));
  CHECK(status == 0);
  return status == 0;
}

// A file with one F32 tensor "w" of shape [2] for the header tests to break.
const std::string kGoodHeader = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
const std::string kGoodData = bytes_of(std::vector<float>{1.5f, -2.0f});

}  // namespace

TEST_CASE("CRC-32C gives the published check values, piece by piece too", "[safetensors][checksum]") {
  CHECK(crc32c("123456789", 9) == 0xe3069283u);  // the check value of CRC-32C (iSCSI)
  CHECK(crc32c("", 0) == 0u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  CHECK(crc32c(zeros.data(), 32) == 0x8a9136aau);  // RFC 3720 B.4: 32 bytes of zeros
  CHECK(crc32c(ones.data(), 32) == 0x62a8ab43u);   // RFC 3720 B.4: 32 bytes of ones
  const std::string text = "lowbit safetensors";
  CHECK(crc32c_update(crc32c(text.data(), 7), text.data() + 7, text.size() - 7) == crc32c(text.data(), text.size()));
  CHECK(crc32c_hex(0xe3069283u) == "e3069283");
  CHECK(crc32c_hex(0x0000abcdu) == "0000abcd");
  uint32_t v = 0;
  CHECK(parse_crc32c_hex("e3069283", v));
  CHECK(v == 0xe3069283u);
  CHECK_FALSE(parse_crc32c_hex("E3069283", v));  // lowercase only, as written
  CHECK_FALSE(parse_crc32c_hex("e306928", v));
  CHECK_FALSE(parse_crc32c_hex("e306928g", v));
}

TEST_CASE("safetensors round trip: every dtype, scalar and empty shapes, metadata, bit for bit", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.str("model.safetensors");
  const float nan_payload = [] {
    const uint32_t b = 0x7fc12345u;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }();
  std::vector<SafetensorsTensor> in;
  SafetensorsFile file;
  file.add("conv.weight", Tensor<float>::from_vector({2, 1, 3}, {0.1f, -0.0f, 1e-45f, 3.4e38f, -INFINITY, nan_payload}));
  file.add("scalar", Tensor<float>::scalar(42.25f));
  file.add("empty", Tensor<float>::empty({0, 3}));
  in = file.tensors;
  in.push_back({"u8", "U8", {3}, std::string("\x00\x7f\xff", 3)});
  in.push_back({"f16", "F16", {2}, bytes_of(std::vector<uint16_t>{0x3c00, 0xc000})});
  in.push_back({"bf16", "BF16", {1}, bytes_of(std::vector<uint16_t>{0x3f80})});
  in.push_back({"f64", "F64", {2}, bytes_of(std::vector<double>{0.1, -1e300})});
  in.push_back(SafetensorsTensor::from_int64("bn.num_batches_tracked", {}, {781}));
  in.push_back({"i32", "I32", {2}, bytes_of(std::vector<int32_t>{-7, 1 << 30})});
  in.push_back({"i16", "I16", {1, 1}, bytes_of(std::vector<int16_t>{-300})});
  in.push_back({"i8", "I8", {2}, std::string("\x80\x7f", 2)});
  in.push_back({"bool", "BOOL", {3}, std::string("\x01\x00\x01", 3)});
  in.push_back({"u16", "U16", {1}, bytes_of(std::vector<uint16_t>{65535})});
  in.push_back({"u32", "U32", {1}, bytes_of(std::vector<uint32_t>{4000000000u})});
  in.push_back({"u64", "U64", {1}, bytes_of(std::vector<uint64_t>{1ull << 63})});
  in.push_back({"empty.i64", "I64", {4, 0}, ""});
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcödé, \"quoted\""}};
  write_safetensors(path, in, meta);
  CHECK_FALSE(fs::exists(path + ".tmp"));  // written through io/atomic_write.hpp

  const SafetensorsFile out = read_safetensors(path);
  CHECK(out.checksum_verified);
  CHECK(out.path == path);
  REQUIRE(out.tensors.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {  // the header keeps the writer's order
    INFO(in[i].name);
    CHECK(out.tensors[i].name == in[i].name);
    CHECK(out.tensors[i].dtype == in[i].dtype);
    CHECK(out.tensors[i].shape == in[i].shape);
    CHECK(out.tensors[i].bytes == in[i].bytes);  // bit for bit: NaN payload, -0, subnormal
  }
  CHECK(out.metadata.at("format") == "pt");
  CHECK(out.metadata.at("note") == meta.at("note"));
  uint32_t stored = 0;
  REQUIRE(parse_crc32c_hex(out.metadata.at(kSafetensorsChecksumKey), stored));

  // The layout: header padded with spaces to 8 bytes, every tensor aligned to its element
  // size, the checksum that of the whole data section.
  const std::string raw = slurp(path);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  CHECK(n % 8 == 0);
  const std::string text = raw.substr(8, n);
  CHECK(text.find_last_not_of(' ') == text.find_last_of('}'));
  const auto header = nlohmann::json::parse(text);
  for (auto& t : in) {
    INFO(t.name);
    CHECK(header.at(t.name).at("data_offsets")[0].get<uint64_t>() % safetensors_dtype_bytes(t.dtype) == 0);
  }
  CHECK(crc32c(raw.data() + 8 + n, raw.size() - 8 - n) == stored);

  // A scalar and an empty tensor come back as tensors of their shape.
  CHECK(out.at("scalar").to_float().shape() == Shape{});
  CHECK(out.at("scalar").to_float().item() == 42.25f);
  CHECK(out.at("empty").to_float().shape() == Shape{0, 3});
  CHECK(out.at("empty.i64").to_int64().empty());

  // Reading then writing the file again gives the same bytes (the checksum is recomputed).
  write_safetensors(dir.str("again.safetensors"), out);
  CHECK(slurp(dir.str("again.safetensors")) == raw);
}

TEST_CASE("safetensors tensors convert to float and int64 exactly where the values allow", "[safetensors]") {
  SafetensorsTensor f16{"h", "F16", {8}, bytes_of(std::vector<uint16_t>{0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x8000, 0x7c00, 0x3555})};
  const auto h = f16.to_float().to_vector();
  CHECK(h[0] == 1.0f);
  CHECK(h[1] == -2.0f);
  CHECK(h[2] == 65504.0f);                        // the largest half
  CHECK(h[3] == std::ldexp(1.0f, -24));           // the smallest subnormal
  CHECK(h[4] == std::ldexp(1023.0f, -24));        // the largest subnormal
  CHECK(bits_of(h[5]) == 0x80000000u);            // -0
  CHECK(h[6] == std::numeric_limits<float>::infinity());
  CHECK(h[7] == 0.333251953125f);                 // 0x3555: 1/3 in half precision
  SafetensorsTensor nan16{"n", "F16", {1}, bytes_of(std::vector<uint16_t>{0x7e01})};
  CHECK(bits_of(nan16.to_float().item()) == 0x7fc02000u);  // NaN, payload kept

  SafetensorsTensor bf16{"b", "BF16", {3}, bytes_of(std::vector<uint16_t>{0x3f80, 0xc2f7, 0x0001})};
  const auto b = bf16.to_float().to_vector();
  CHECK(b[0] == 1.0f);
  CHECK(b[1] == -123.5f);
  CHECK(bits_of(b[2]) == 0x00010000u);

  SafetensorsTensor f64{"d", "F64", {3}, bytes_of(std::vector<double>{0.1, 1e300, -2.5})};
  const auto d = f64.to_float().to_vector();
  CHECK(d[0] == static_cast<float>(0.1));  // rounded to nearest
  CHECK(d[1] == std::numeric_limits<float>::infinity());
  CHECK(d[2] == -2.5f);

  SafetensorsTensor i64{"c", "I64", {}, bytes_of(std::vector<int64_t>{781})};
  CHECK(i64.to_int64() == std::vector<int64_t>{781});
  CHECK(i64.to_float().item() == 781.0f);
  SafetensorsTensor i8{"s", "I8", {2}, std::string("\xff\x80", 2)};
  CHECK(i8.to_int64() == std::vector<int64_t>{-1, -128});
  SafetensorsTensor u8{"u", "U8", {2}, std::string("\xff\x80", 2)};
  CHECK(u8.to_int64() == std::vector<int64_t>{255, 128});
  SafetensorsTensor flags{"m", "BOOL", {3}, std::string("\x00\x01\x02", 3)};
  CHECK(flags.to_int64() == std::vector<int64_t>{0, 1, 1});
  CHECK(flags.to_float().to_vector() == std::vector<float>{0, 1, 1});

  SafetensorsTensor f32{"w", "F32", {1}, bytes_of(std::vector<float>{1})};
  CHECK_THROWS_WITH(f32.to_int64(), Contains("'w' is F32, not an integer dtype") && ONE_LINE);
  SafetensorsTensor big{"u", "U64", {1}, bytes_of(std::vector<uint64_t>{1ull << 63})};
  CHECK_THROWS_WITH(big.to_int64(), Contains("9223372036854775808, above the int64 range") && ONE_LINE);
  SafetensorsTensor short_bytes{"w", "F32", {2, 2}, bytes_of(std::vector<float>{1})};
  CHECK_THROWS_WITH(short_bytes.to_float(), Contains("'w' (F32, shape [2, 2]) has 4 bytes; its shape and dtype need 16"));
}

TEST_CASE("safetensors: a file laid out like PyTorch's save_file, by an independent writer, is read", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.str("pt.safetensors");
  if (!run_python("write " + path, dir.str("python.log"))) return;
  const SafetensorsFile file = read_safetensors(path);
  CHECK_FALSE(file.checksum_verified);  // PyTorch writes none: read, and reported as unchecked
  CHECK(file.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(file.tensors.size() == 6);
  CHECK(file.tensors[0].name == "bn1.num_batches_tracked");  // the header's order, I64 first
  // The same literals as the Python side, rounded double -> float as struct.pack('f') does.
  const std::vector<double> conv = {0.1, -0.2, 0.3, -0.4, 1.5, -2.25, 1e-8, 3.4e38};
  const Tensor<float> w = file.at("conv1.weight").to_float();
  CHECK(w.shape() == Shape{2, 1, 2, 2});
  for (size_t i = 0; i < conv.size(); ++i) CHECK(bits_of(w.data()[i]) == bits_of(static_cast<float>(conv[i])));
  CHECK(file.at("bn1.running_var").to_float().to_vector() == std::vector<float>{1.0f, 0.5f});
  CHECK(file.at("bn1.num_batches_tracked").shape == Shape{});
  CHECK(file.at("bn1.num_batches_tracked").to_int64() == std::vector<int64_t>{781});
  CHECK(file.at("fc.bias").to_float().to_vector() == std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)});
  CHECK(file.at("fc.scale").to_float().to_vector() == std::vector<float>{1.0f, -123.5f, std::ldexp(1.0f, -100)});
  CHECK(file.at("steps").to_int64() == std::vector<int64_t>{-(int64_t(1) << 40), int64_t(1) << 62});
}

TEST_CASE("safetensors: lowbit's file is read by an independent reader, the checksum recomputed there", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.str("lowbit.safetensors");
  std::vector<SafetensorsTensor> in;
  in.push_back(SafetensorsTensor::from_float("a.weight", Tensor<float>::from_vector({3}, {0.5f, -1.0f, 2.0f})));
  in.push_back({"a.mask", "U8", {5}, std::string("\x01\x02\x03\x04\x05", 5)});  // makes the F32/I64 below unaligned unless sorted
  in.push_back(SafetensorsTensor::from_int64("a.count", {}, {12}));
  in.push_back({"a.half", "F16", {1}, bytes_of(std::vector<uint16_t>{0x3c00})});
  // Metadata with quotes, control characters and non-ASCII text: the header checksum's
  // canonical JSON must escape them as Python's json.dumps does.
  write_safetensors(path, in, {{"format", "pt"}, {"lowbit.meta", "{\"a\": \"tab\t, \\ and \u00e9\x01\"}"}});
  const std::string out = dir.str("python.json");
  if (!run_python("read " + path, out)) return;
  const auto py = nlohmann::json::parse(slurp(out));
  CHECK(py.at("crc32c") == read_safetensors(path).metadata.at(kSafetensorsChecksumKey));
  CHECK(py.at("header_crc32c") == read_safetensors(path).metadata.at(kSafetensorsHeaderChecksumKey));
  CHECK(py.at("metadata").at("format") == "pt");
  CHECK(py.at("order") == nlohmann::json({"a.weight", "a.mask", "a.count", "a.half"}));
  for (auto& t : in) {
    INFO(t.name);
    CHECK(py.at("tensors").at(t.name).at("dtype") == t.dtype);
    CHECK(py.at("tensors").at(t.name).at("shape").get<Shape>() == t.shape);
    CHECK(py.at("tensors").at(t.name).at("hex") == to_hex(t.bytes));
  }
}

TEST_CASE("safetensors: a damaged data section fails the checksum, naming the file", "[safetensors][errors]") {
  TempDir dir;
  const std::string path = dir.str("w.safetensors");
  Generator gen(7);
  write_safetensors(path, {SafetensorsTensor::from_float("w", Tensor<float>::randn({64}, gen)),
                           SafetensorsTensor::from_int64("n", {}, {3})});
  const std::string good = slurp(path);
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);
  const uint64_t data_size = good.size() - 8 - n;
  for (uint64_t at : {uint64_t(0), uint64_t(1), uint64_t(7), uint64_t(8), data_size / 2, data_size - 1}) {
    INFO("byte " << at << " of the data section");
    std::string bad = good;
    bad[8 + n + at] = static_cast<char>(bad[8 + n + at] ^ 0x10);
    const std::string damaged = dir.str("damaged.safetensors");
    spit(damaged, bad);
    CHECK_THROWS_WITH(read_safetensors(damaged),
                      Contains("read_safetensors: '" + damaged + "': checksum mismatch") &&
                          Contains("the header's lowbit.crc32c says " + read_safetensors(path).metadata.at("lowbit.crc32c")) &&
                          ONE_LINE);
  }
  // Damage to the header that leaves it consistent (a shape [4, 16] for [16, 4], a changed
  // letter of a name, a changed metadata value, two tensors' offsets swapped) is caught by the
  // header checksum.
  write_safetensors(path, {SafetensorsTensor::from_float("w", Tensor<float>::randn({16, 4}, gen)),
                           SafetensorsTensor::from_float("v", Tensor<float>::randn({8}, gen)),
                           SafetensorsTensor::from_float("x", Tensor<float>::randn({8}, gen))},
                    {{"lowbit.meta", "{\"lr\": 0.1}"}});
  const std::string good2 = slurp(path);
  using Edits = std::vector<std::pair<std::string, std::string>>;
  for (const Edits& edits : {Edits{{"[16,4]", "[4,16]"}}, Edits{{"\"v\":", "\"u\":"}}, Edits{{"0.1", "0.7"}},
                             Edits{{"[256,288]", "[#]"}, {"[288,320]", "[256,288]"}, {"[#]", "[288,320]"}}}) {
    INFO(edits.front().first << " -> " << edits.back().second);
    std::string bad = good2;
    for (auto& [from, to] : edits) {
      const size_t at = bad.find(from);
      REQUIRE(at != std::string::npos);
      bad.replace(at, from.size(), to);
    }
    REQUIRE(bad.size() == good2.size());
    const std::string damaged = dir.str("header.safetensors");
    spit(damaged, bad);
    CHECK_THROWS_WITH(read_safetensors(damaged),
                      Contains("read_safetensors: '" + damaged + "': checksum mismatch: the CRC-32C of its ") &&
                          Contains("-byte header is ") && ONE_LINE);
  }
  // A checksum that is not 8 lowercase hex digits is an error, not a silent "no checksum".
  const std::string odd = dir.str("odd.safetensors");
  spit(odd, make_file(R"({"__metadata__":{"lowbit.crc32c":"XYZ"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kGoodData));
  CHECK_THROWS_WITH(read_safetensors(odd), Contains(odd) && Contains("lowbit.crc32c is 'XYZ'; expected 8 lowercase hex digits"));
}

TEST_CASE("safetensors: truncated files are refused at every length", "[safetensors][errors]") {
  TempDir dir;
  const std::string path = dir.str("w.safetensors");
  write_safetensors(path, {SafetensorsTensor::from_float("w", Tensor<float>::arange(10.0f))});
  const std::string good = slurp(path);
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);
  const std::string cut = dir.str("cut.safetensors");
  for (uint64_t len : {uint64_t(0), uint64_t(5), uint64_t(8), uint64_t(9), 8 + n - 1, 8 + n, 8 + n + 1, uint64_t(good.size() - 1)}) {
    INFO("cut at " << len << " of " << good.size() << " bytes");
    spit(cut, good.substr(0, len));
    const std::string problem = len < 8 ? "' is truncated: it has " + std::to_string(len) + " bytes"
                                : len < 8 + n ? "' is truncated: its header length is " + std::to_string(n)
                                              : "' is truncated: its tensors need 40 bytes of data after the header, the file has " +
                                                    std::to_string(len - 8 - n);
    CHECK_THROWS_WITH(read_safetensors(cut), Contains("read_safetensors: '" + cut + problem) && ONE_LINE);
  }
  CHECK_THROWS_WITH(read_safetensors(dir.str("missing.safetensors")),
                    Contains("missing.safetensors': cannot open the file") && ONE_LINE);
}

TEST_CASE("safetensors: malformed headers are refused, naming the file, the problem and what was expected",
          "[safetensors][errors]") {
  TempDir dir;
  const std::string path = dir.str("bad.safetensors");
  const std::string prefix = "read_safetensors: '" + path + "'";
  auto read_bytes = [&](const std::string& bytes) {
    spit(path, bytes);
    return read_safetensors(path);
  };
  // The hand-made baseline is valid (no padding, no checksum): each case below breaks one thing.
  spit(path, make_file(kGoodHeader, kGoodData));
  CHECK(read_safetensors(path).at("w").to_float().to_vector() == std::vector<float>{1.5f, -2.0f});

  SECTION("a header length of 2^63 or over the limit") {
    CHECK_THROWS_WITH(read_bytes(le64(uint64_t(1) << 63) + kGoodHeader + kGoodData),
                      Contains(prefix + ": its header length is 9223372036854775808 bytes, over the limit of 100000000") && ONE_LINE);
  }
  SECTION("a header length past the end of the file") {
    CHECK_THROWS_WITH(read_bytes(le64(1000) + kGoodHeader + kGoodData),
                      Contains(prefix + " is truncated: its header length is 1000 bytes, but only") && ONE_LINE);
  }
  SECTION("not JSON, or JSON but not an object") {
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32",)", kGoodData)),
                      Contains(prefix + ": its 20-byte header is not valid JSON: [json.exception.parse_error") && ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file("{\"w\xff\":1}", "")), Contains(prefix + ": its 8-byte header is not valid JSON"));
    CHECK_THROWS_WITH(read_bytes(make_file("[1,2]", "")), Contains(prefix + ": its JSON header is [1,2]; expected an object"));
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[[[[[[[[[[1]]]]]]]]]],"data_offsets":[0,4]}})", "")),
                      Contains(prefix + ": its 72-byte header nests deeper than 8 levels (a safetensors header needs 3)"));
  }
  SECTION("a duplicate tensor name, or a duplicate key inside an entry") {
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                      R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                      kGoodData)),
                      Contains(prefix + ": its JSON header has the tensor name 'w' twice; names must be unique") && ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}})", kGoodData)),
                      Contains(prefix + ": its JSON header has a key twice in the entry of 'w'"));
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"__metadata__":{"a":"1","a":"2"}})", "")),
                      Contains(prefix + ": its JSON header has a key twice in the entry of '__metadata__'"));
  }
  SECTION("an entry that is not {dtype, shape, data_offsets}") {
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":[0,8]})", kGoodData)),
                      Contains(prefix + ": tensor 'w' is [0,8]; expected {\"dtype\"") && ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[2]}})", kGoodData)),
                      Contains(prefix + ": tensor 'w' is {\"dtype\":\"F32\",\"shape\":[2]}; expected"));
  }
  SECTION("an unknown dtype") {
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", kGoodData)),
                      Contains(prefix + ": tensor 'w' has dtype \"F8_E4M3\"; lowbit reads F64, F32, F16, BF16") && ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", kGoodData)),
                      Contains(prefix + ": tensor 'w' has dtype 4;"));
  }
  SECTION("negative, fractional or huge sizes") {
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", kGoodData)),
                      Contains(prefix + ": tensor 'w' has shape [-2]; sizes must be integers >= 0") && ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", kGoodData)),
                      Contains("sizes must be integers >= 0"));
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", kGoodData)),
                      Contains(prefix + ": tensor 'w' has shape \"2\"; expected a list of sizes"));
    // 2^32 * 2^32 wraps to 0 in 64 bits: it must not pass as an empty tensor of 0 bytes.
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", "")),
                      Contains(prefix + ": tensor 'w' has shape [4294967296,4294967296], over 2^63 elements") && ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})", "")),
                      Contains("over 2^63 elements"));
  }
  SECTION("data_offsets that are not two integers, or end before they begin") {
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}})", kGoodData)),
                      Contains(prefix + ": tensor 'w' has data_offsets [0,8,16]; expected two integers [begin, end] >= 0") &&
                          ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", kGoodData)),
                      Contains("data_offsets [-8,0]; expected two integers"));
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", kGoodData)),
                      Contains(prefix + ": tensor 'w' has data_offsets [8, 0], which end before they begin"));
  }
  SECTION("a byte length that is not numel x dtype size") {
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kGoodData)),
                      Contains(prefix + ": tensor 'w' (F32, shape [3]) has data_offsets [0, 8], 8 bytes; expected 3 elements x 4 bytes") &&
                          ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", kGoodData)),
                      Contains("8 bytes; expected 2 elements x 8 bytes"));
  }
  SECTION("overlapping offsets, a gap, bytes past the last tensor") {
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                      kGoodData)),
                      Contains(prefix + ": tensor 'b' at bytes [4, 8) overlaps tensor 'a' at [0, 8)") && ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                                      R"("c":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
                                      kGoodData + kGoodData)),
                      Contains(prefix + ": bytes [8, 12) of the data section, before tensor 'c', belong to no tensor") && ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", kGoodData)),
                      Contains(prefix + ": bytes [0, 4) of the data section, before tensor 'w', belong to no tensor"));
    CHECK_THROWS_WITH(read_bytes(make_file(kGoodHeader, kGoodData + "junk")),
                      Contains(prefix + ": its last 4 bytes belong to no tensor (the tensors end at byte 8 of a data section of 12)") &&
                          ONE_LINE);
  }
  SECTION("metadata that is not an object of strings") {
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"__metadata__":{"epochs":200},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                      kGoodData)),
                      Contains(prefix + ": __metadata__ entry 'epochs' is 200; metadata values must be strings") && ONE_LINE);
    CHECK_THROWS_WITH(read_bytes(make_file(R"({"__metadata__":["pt"],"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kGoodData)),
                      Contains(prefix + ": __metadata__ is [\"pt\"]; expected an object of strings"));
  }
}

TEST_CASE("safetensors: accepted edge cases of other writers", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.str("edge.safetensors");
  // No tensors at all; "__metadata__": null; keys beyond the three; leading whitespace and
  // padding; tensors listed out of data order; two empty tensors at one offset.
  spit(path, make_file("{}        ", ""));
  CHECK(read_safetensors(path).tensors.empty());
  spit(path, make_file(R"(  {"__metadata__":null,"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8],"extra":1},)"
                       R"("e1":{"dtype":"I64","shape":[0],"data_offsets":[8,8]},"e2":{"dtype":"U8","shape":[0,5],"data_offsets":[8,8]},)"
                       R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}   )",
                       kGoodData));
  const SafetensorsFile file = read_safetensors(path);
  CHECK(file.metadata.empty());
  REQUIRE(file.tensors.size() == 4);
  CHECK(file.tensors[0].name == "b");  // the header's order, not the data's
  CHECK(file.at("a").to_float().item() == 1.5f);
  CHECK(file.at("b").to_float().item() == -2.0f);
  CHECK(file.at("e2").shape == Shape{0, 5});
  CHECK(file.find("nope") == nullptr);
  CHECK_THROWS_WITH(file.at("nope"), Contains("SafetensorsFile::at: '" + path + "' has no tensor named 'nope' (it has 4 tensors)"));
}

TEST_CASE("safetensors: the writer refuses what it could not write correctly, and replaces files atomically",
          "[safetensors][errors]") {
  TempDir dir;
  const std::string path = dir.str("w.safetensors");
  const auto w = SafetensorsTensor::from_float("w", Tensor<float>::ones({2}));
  write_safetensors(path, {w});
  const std::string before = slurp(path);
  const std::string prefix = "write_safetensors: '" + path + "'";
  CHECK_THROWS_WITH(write_safetensors(path, {w, w}), Contains(prefix + ": two tensors are named 'w'; names must be unique") && ONE_LINE);
  CHECK_THROWS_WITH(write_safetensors(path, {SafetensorsTensor{"__metadata__", "U8", {0}, ""}}),
                    Contains(prefix + ": no tensor can be named __metadata__"));
  CHECK_THROWS_WITH(write_safetensors(path, {SafetensorsTensor{"x", "F8_E4M3", {1}, "a"}}),
                    Contains(prefix + ": tensor 'x' has dtype 'F8_E4M3'; expected one of F64"));
  CHECK_THROWS_WITH(write_safetensors(path, {SafetensorsTensor{"x", "F32", {3}, "abcd"}}),
                    Contains(prefix + ": tensor 'x' (F32, shape [3]) has 4 bytes; its shape and dtype need 12"));
  CHECK_THROWS_WITH(write_safetensors(path, {SafetensorsTensor{"x", "F32", {-1}, ""}}),
                    Contains(prefix + ": tensor 'x' has shape [-1]; sizes must be >= 0"));
  CHECK_THROWS_WITH(write_safetensors(path, {SafetensorsTensor{"x", "U8", {int64_t(1) << 62, 8}, "ab"}}),
                    Contains("has 2 bytes; its shape and dtype need over 2^63"));
  CHECK_THROWS_WITH(write_safetensors(path, {SafetensorsTensor{"bad\xff", "U8", {0}, ""}}),
                    Contains(prefix + ": a tensor name or metadata string is not valid UTF-8"));
  CHECK(slurp(path) == before);  // every refusal left the old file as it was
  CHECK_FALSE(fs::exists(path + ".tmp"));
  write_safetensors(path, {SafetensorsTensor::from_float("w", Tensor<float>::zeros({3}))}, {{"lowbit.crc32c", "00000000"}});
  const SafetensorsFile again = read_safetensors(path);  // a stale checksum from the caller is replaced
  CHECK(again.checksum_verified);
  CHECK(again.at("w").to_float().to_vector() == std::vector<float>{0, 0, 0});
}
