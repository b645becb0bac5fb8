// Safetensors files: Hugging Face's format, the one PyTorch, JAX and the model hubs exchange
// weights in. docs/safetensors.md describes the format, the rules below and the checksum.
//
//   bytes 0-7     N, the length of the JSON header (uint64, little-endian)
//   next N bytes  the JSON header, UTF-8, padded with trailing spaces (writers pad to 8):
//                   {"__metadata__": {"format": "pt"},          optional, string -> string
//                    "conv1.weight": {"dtype": "F32", "shape": [16, 3, 3, 3],
//                                     "data_offsets": [0, 1728]}, ...}
//                 offsets count from the start of the data section; end is exclusive
//   the rest      the data section: every tensor's elements, little-endian, row-major
//
// read_safetensors treats the file as hostile: it checks every number of the header against
// the real file size before it allocates or reads the data, so no file can make it read
// outside its buffers or allocate more than the file's size plus the parsed header (capped
// at 100 MB, like the reference implementation's). The rules are the reference's
// (huggingface/safetensors, tensor.rs) plus duplicate keys, which a JSON map would collapse
// silently, and lowbit's checksum. Every failure is one lowbit::Error naming the file, what
// was wrong and what was expected.
//
// lowbit's writer stores two CRC-32Cs in the metadata (8 lowercase hex digits each,
// io/checksum.hpp): "lowbit.crc32c" of the data section and "lowbit.header_crc32c" of the
// header (every name, dtype, shape, offset and metadata string but the two checksums), and
// the reader verifies both. Files from other writers have none: they are read all the same
// and the result says that no checksum was checked (SafetensorsFile::checksum_verified), so
// the caller decides.
//
// Like every lowbit file format, the element bytes are copied as they are: a little-endian
// host is assumed (x86-64 and AArch64 Linux are).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "atomic_write.hpp"
#include "checksum.hpp"

namespace lowbit {
namespace io {

// The reference implementation's limit on N. Real headers are kilobytes (a few MB for the
// largest language models); a larger N is a corrupt or hostile file, not a model.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100000000;
// Where lowbit's writer puts the CRC-32C of the data section: 8 lowercase hex digits.
constexpr const char* kSafetensorsChecksumKey = "lowbit.crc32c";
// Where it puts the CRC-32C of the header (detail::header_crc32c says of what exactly).
constexpr const char* kSafetensorsHeaderChecksumKey = "lowbit.header_crc32c";

// Bytes per element of a safetensors dtype; 0 for a dtype lowbit does not read (the 8-bit
// float formats F8_E4M3 / F8_E5M2 and newer sub-byte ones).
inline uint64_t safetensors_dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, uint64_t> bytes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},   {"BOOL", 1}};
  const auto it = bytes.find(dtype);
  return it == bytes.end() ? 0 : it->second;
}
constexpr const char* kSafetensorsDtypes = "F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL";

namespace detail {

template <class T>
T load_le(const char* p) {  // one element of the data section (little-endian host)
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// IEEE half -> float, exactly: every half is a float. Exponent bias 15 -> 127.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float v = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -v : v;
  }
  const uint32_t bits = exponent == 31 ? sign | 0x7f800000u | (mantissa << 13)  // inf, NaN (payload kept)
                                       : sign | ((exponent + 112) << 23) | (mantissa << 13);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// bfloat16 is the top half of a float, so this is exact too.
inline float bfloat16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// A JSON value for an error message, cut short: a hostile header can be 100 MB.
inline std::string short_dump(const nlohmann::json& j) {
  std::string s = j.dump();
  return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

inline bool is_non_negative_integer(const nlohmann::json& j) {
  return j.is_number_unsigned() || (j.is_number_integer() && j.get<int64_t>() >= 0);
}

// The CRC-32C of a header: of its parsed JSON without the two checksum keys, dumped compactly
// (nlohmann sorts object keys and prints integers one way), so it covers every name, dtype,
// shape, offset and metadata string and does not depend on spacing or key order. It catches
// what the structural checks cannot: two offsets swapped, a shape [3, 4] turned into [4, 3],
// a letter of a name or a digit of a stored config changed.
inline uint32_t header_crc32c(nlohmann::json header) {
  auto meta = header.find("__metadata__");
  if (meta != header.end() && meta->is_object()) {
    meta->erase(kSafetensorsChecksumKey);
    meta->erase(kSafetensorsHeaderChecksumKey);
  }
  const std::string text = header.dump();
  return crc32c(text.data(), text.size());
}

// Checks one checksum entry of the metadata against the value computed for the file.
inline void check_crc32c_entry(const std::map<std::string, std::string>& metadata, const char* key, uint32_t computed,
                               const std::string& who, const std::string& what) {
  const auto stored = metadata.find(key);
  uint32_t expected = 0;
  LOWBIT_CHECK(parse_crc32c_hex(stored->second, expected), who, ": its ", key, " is '", stored->second,
               "'; expected 8 lowercase hex digits");
  LOWBIT_CHECK(computed == expected, who, ": checksum mismatch: the CRC-32C of its ", what, " is ", crc32c_hex(computed),
               ", the header's ", key, " says ", stored->second,
               "; the file was damaged after it was written (copy or export it again)");
}

}  // namespace detail

// One tensor as the file holds it: its bytes are kept as they are, whatever the dtype, so a
// tensor lowbit cannot use (an I64 counter, a U8 mask) survives a read and a write unchanged.
struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // "F32", "I64", ...: safetensors_dtype_bytes lists them
  Shape shape;        // [] is a scalar (one element); a 0 anywhere makes an empty tensor
  std::string bytes;  // numel * dtype size bytes, little-endian, row-major

  int64_t numel() const { return numel_of(shape); }
  // A floating-point dtype (to_float reads it; to_int64 reads the others).
  bool is_float() const { return dtype == "F64" || dtype == "F32" || dtype == "F16" || dtype == "BF16"; }

  // Throws unless dtype is known, every size is >= 0 and bytes has exactly the size the
  // dtype and shape need (the writer calls this for every tensor, the converters too).
  void check(const std::string& who) const {
    const uint64_t size = safetensors_dtype_bytes(dtype);
    LOWBIT_CHECK(size != 0, who, ": tensor '", name, "' has dtype '", dtype, "'; expected one of ", kSafetensorsDtypes);
    // numel, computed only while numel * size stays below 2^63: a silly shape cannot wrap.
    const uint64_t fits = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / size;
    uint64_t n = 1;
    bool zero = false, too_many = false;
    for (int64_t d : shape) {
      LOWBIT_CHECK(d >= 0, who, ": tensor '", name, "' has shape ", shape_str(shape), "; sizes must be >= 0");
      const uint64_t k = static_cast<uint64_t>(d);
      if (k == 0) zero = true;
      else if (n > fits / k) too_many = true;
      else n *= k;
    }
    if (zero) {
      n = 0;
      too_many = false;
    }
    LOWBIT_CHECK(!too_many && bytes.size() == n * size, who, ": tensor '", name, "' (", dtype, ", shape ", shape_str(shape),
                 ") has ", bytes.size(), " bytes; its shape and dtype need ",
                 too_many ? std::string("over 2^63") : std::to_string(n * size));
  }

  // The values as float: F32 as they are; F16 and BF16 exactly (each is a float); F64
  // rounded to the nearest float; integers and BOOL converted (exact up to 2^24).
  Tensor<float> to_float() const {
    check("SafetensorsTensor::to_float");
    auto t = Tensor<float>::empty(shape);
    float* out = t.data();
    const char* p = bytes.data();
    const int64_t n = numel();
    if (dtype == "F32") {
      if (n) std::memcpy(out, p, bytes.size());
    } else if (dtype == "F16") {
      for (int64_t i = 0; i < n; ++i) out[i] = detail::half_to_float(detail::load_le<uint16_t>(p + 2 * i));
    } else if (dtype == "BF16") {
      for (int64_t i = 0; i < n; ++i) out[i] = detail::bfloat16_to_float(detail::load_le<uint16_t>(p + 2 * i));
    } else {
      convert(out);
    }
    return t;
  }

  // The values as int64, for the integer dtypes and BOOL: PyTorch's batch-norm counter
  // num_batches_tracked is an I64 scalar. A float dtype is an error (use to_float), and so is
  // a U64 value above 2^63 - 1.
  std::vector<int64_t> to_int64() const {
    check("SafetensorsTensor::to_int64");
    LOWBIT_CHECK(!is_float(), "SafetensorsTensor::to_int64: tensor '", name, "' is ", dtype,
                 ", not an integer dtype (to_float reads it)");
    std::vector<int64_t> out(static_cast<size_t>(numel()));
    if (dtype == "U64") {
      for (size_t i = 0; i < out.size(); ++i) {
        const uint64_t v = detail::load_le<uint64_t>(bytes.data() + 8 * i);
        LOWBIT_CHECK(v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), "SafetensorsTensor::to_int64: tensor '",
                     name, "' holds the U64 value ", v, ", above the int64 range");
        out[i] = static_cast<int64_t>(v);
      }
    } else {
      convert(out.data());
    }
    return out;
  }

  // A float tensor as F32 (its values copied bit for bit).
  static SafetensorsTensor from_float(const std::string& name, const Tensor<float>& t) {
    SafetensorsTensor s{name, "F32", t.shape(), std::string()};
    s.bytes.assign(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * sizeof(float));
    return s;
  }
  // int64 values as I64 (a num_batches_tracked counter for PyTorch: shape {}, one value).
  static SafetensorsTensor from_int64(const std::string& name, const Shape& shape, const std::vector<int64_t>& values) {
    SafetensorsTensor s{name, "I64", shape, std::string()};
    s.bytes.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t));
    s.check("SafetensorsTensor::from_int64");
    return s;
  }

 private:
  // Integer, BOOL and F64 elements converted one by one with static_cast.
  template <class Out>
  void convert(Out* out) const {
    const char* p = bytes.data();
    const int64_t n = numel();
    auto each = [&](auto zero) {
      using T = decltype(zero);
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Out>(detail::load_le<T>(p + sizeof(T) * i));
    };
    if (dtype == "F64") each(double());
    else if (dtype == "I64") each(int64_t());
    else if (dtype == "I32") each(int32_t());
    else if (dtype == "I16") each(int16_t());
    else if (dtype == "I8") each(int8_t());
    else if (dtype == "U64") each(uint64_t());
    else if (dtype == "U32") each(uint32_t());
    else if (dtype == "U16") each(uint16_t());
    else if (dtype == "U8") each(uint8_t());
    else if (dtype == "BOOL") for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Out>(p[i] != 0);
  }
};

// A whole file: the tensors in the order of its JSON header, and its metadata.
struct SafetensorsFile {
  std::vector<SafetensorsTensor> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"; lowbit.crc32c stays in it
  std::string path;                             // the file it was read from (for messages)
  // read_safetensors: true when the file carried lowbit.crc32c and the data matched it (a
  // mismatch throws); false when it carried none, e.g. a file written by PyTorch.
  bool checksum_verified = false;

  const SafetensorsTensor* find(const std::string& name) const {
    for (auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  const SafetensorsTensor& at(const std::string& name) const {
    const SafetensorsTensor* t = find(name);
    LOWBIT_CHECK(t != nullptr, "SafetensorsFile::at: '", path, "' has no tensor named '", name, "' (it has ",
                 tensors.size(), " tensors)");
    return *t;
  }
  void add(const std::string& name, const Tensor<float>& t) { tensors.push_back(SafetensorsTensor::from_float(name, t)); }
};

// Writes the tensors (header in their order) and the metadata, plus lowbit.crc32c (any value
// the caller put there is replaced), atomically: io/atomic_write.hpp. The data section holds
// the widest dtypes first (8-byte, then 4, 2, 1; in the given order within a width), as the
// reference writer does: with the header padded to 8 bytes, every tensor then starts at a
// multiple of its element size in the file, which zero-copy readers (mmap + cast) need.
inline void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  const std::string who = "write_safetensors: '" + path + "'";
  std::set<std::string> names;
  for (auto& t : tensors) {
    t.check(who);
    LOWBIT_CHECK(t.name != "__metadata__", who, ": no tensor can be named __metadata__ (the format's metadata key)");
    LOWBIT_CHECK(names.insert(t.name).second, who, ": two tensors are named '", t.name, "'; names must be unique");
  }
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return safetensors_dtype_bytes(tensors[a].dtype) > safetensors_dtype_bytes(tensors[b].dtype);
  });
  std::vector<uint64_t> begin(tensors.size());
  uint64_t data_size = 0;
  uint32_t crc = 0;
  for (size_t i : order) {
    begin[i] = data_size;
    data_size += tensors[i].bytes.size();
    crc = crc32c_update(crc, tensors[i].bytes.data(), tensors[i].bytes.size());
  }
  std::map<std::string, std::string> meta = metadata;
  meta.erase(kSafetensorsHeaderChecksumKey);
  meta[kSafetensorsChecksumKey] = crc32c_hex(crc);
  // The header text, entry by entry in the caller's order (nlohmann's ordered_json would
  // search its keys linearly at each insert: quadratic in the number of tensors); `header`
  // is the same content as the reader will parse it, for the header checksum.
  std::string text;
  try {
    nlohmann::json header = {{"__metadata__", meta}};
    std::string entries;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      const nlohmann::ordered_json entry = {
          {"dtype", t.dtype},
          {"shape", t.shape},
          {"data_offsets", nlohmann::ordered_json::array({begin[i], begin[i] + t.bytes.size()})}};
      entries += "," + nlohmann::json(t.name).dump() + ":" + entry.dump();
      header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin[i], begin[i] + t.bytes.size()}}};
    }
    meta[kSafetensorsHeaderChecksumKey] = crc32c_hex(detail::header_crc32c(std::move(header)));
    text = "{\"__metadata__\":" + nlohmann::json(meta).dump() + entries + "}";
  } catch (const nlohmann::json::exception& e) {  // a name or metadata string that is not UTF-8
    ::lowbit::detail::fail(who, ": a tensor name or metadata string is not valid UTF-8 (", e.what(), ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // so the data section starts 8-byte aligned
  LOWBIT_CHECK(text.size() <= kSafetensorsMaxHeaderBytes, who, ": the JSON header would be ", text.size(),
               " bytes, over the format's limit of ", kSafetensorsMaxHeaderBytes, " (names or metadata too long?)");
  std::string bytes;
  bytes.reserve(8 + text.size() + data_size);
  const uint64_t n = text.size();
  for (int k = 0; k < 8; ++k) bytes.push_back(static_cast<char>((n >> (8 * k)) & 0xffu));
  bytes += text;
  for (size_t i : order) bytes += tensors[i].bytes;
  write_file_atomic(path, bytes, "write_safetensors");
}

inline void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  write_safetensors(path, file.tensors, file.metadata);
}

namespace detail {

// The keys of a header as written, which the parsed JSON hides: nlohmann keeps one of two
// equal keys without a word, and its std::map forgets their order. This SAX handler lists
// the top object's keys in file order and counts the keys of each one's value when it is an
// object; a count differing from the parsed object's size means a repeated key (two tensors
// of one name would otherwise lose one silently). It also stops a nesting no header has.
// (nlohmann's parser callback would do the same job, but it rescans the whole parent object
// at each object's end: quadratic in the number of tensors.)
struct SafetensorsKeys : nlohmann::json_sax<nlohmann::json> {
  std::vector<std::string> names;  // the top object's keys, in file order
  std::vector<size_t> counts;      // names[i]'s value: its number of keys, if an object
  std::vector<bool> open;          // the open containers, outermost first: true = object
  std::string error;               // why the parse stopped: a syntax error, or the nesting

  bool key(string_t& k) override {
    if (open.size() == 1) {
      names.push_back(k);
      counts.push_back(0);
    }
    // A key one level down, in the value of a top-level key (open[0]: the top is an object,
    // so that key came first and counts has its entry; a top-level array has none).
    if (open.size() == 2 && open[0] && open[1]) ++counts.back();
    return true;
  }
  bool start_object(std::size_t) override { return enter(true); }
  bool start_array(std::size_t) override { return enter(false); }
  bool end_object() override { return leave(); }
  bool end_array() override { return leave(); }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) override {
    error = std::string("is not valid JSON: ") + e.what();
    return false;
  }

 private:
  bool enter(bool object) {  // a header nests 3 deep (top object, entry, shape); 8 is plenty
    if (open.size() == 8) error = "nests deeper than 8 levels (a safetensors header needs 3)";
    open.push_back(object);
    return error.empty();
  }
  bool leave() {
    open.pop_back();
    return true;
  }
};

// Parses the JSON header: its keys as written (`names`, in file order) and its values.
inline nlohmann::json parse_safetensors_header(const std::string& text, const std::string& who,
                                               std::vector<std::string>& names) {
  SafetensorsKeys keys;
  const bool ok = nlohmann::json::sax_parse(text, &keys);
  LOWBIT_CHECK(ok, who, ": its ", text.size(), "-byte header ", keys.error);
  const nlohmann::json header = nlohmann::json::parse(text);  // valid: the SAX pass read it all
  LOWBIT_CHECK(header.is_object(), who, ": its JSON header is ", short_dump(header), "; expected an object of tensors");
  if (header.size() != keys.names.size()) {
    std::vector<std::string> sorted = keys.names;
    std::sort(sorted.begin(), sorted.end());
    ::lowbit::detail::fail(who, ": its JSON header has the tensor name '",
                           *std::adjacent_find(sorted.begin(), sorted.end()), "' twice; names must be unique");
  }
  for (size_t i = 0; i < keys.names.size(); ++i) {
    const nlohmann::json& v = header.at(keys.names[i]);
    LOWBIT_CHECK(!v.is_object() || v.size() == keys.counts[i], who, ": its JSON header has a key twice in the entry of '",
                 keys.names[i], "'; keys must be unique");
  }
  names = std::move(keys.names);
  return header;
}

// One tensor's entry of the header, checked on its own: a known dtype, sizes >= 0 whose
// product cannot overflow int64 (zeros aside, so numel and every index computed from the
// shape later are safe), and data_offsets [begin, end] holding exactly numel x dtype size
// bytes. Keys beyond these three are ignored, as the reference does. The bytes stay empty.
inline SafetensorsTensor parse_safetensors_entry(const std::string& name, const nlohmann::json& v,
                                                 const std::string& who, uint64_t& begin, uint64_t& end) {
  using json = nlohmann::json;
  const std::string what = who + ": tensor '" + name + "'";
  LOWBIT_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), what, " is ",
               short_dump(v), "; expected {\"dtype\": ..., \"shape\": [...], \"data_offsets\": [begin, end]}");
  const json& dtype = v.at("dtype");
  const uint64_t elem = dtype.is_string() ? safetensors_dtype_bytes(dtype.get<std::string>()) : 0;
  LOWBIT_CHECK(elem != 0, what, " has dtype ", short_dump(dtype), "; lowbit reads ", kSafetensorsDtypes);
  const json& shape = v.at("shape");
  LOWBIT_CHECK(shape.is_array(), what, " has shape ", short_dump(shape), "; expected a list of sizes");
  SafetensorsTensor t{name, dtype.get<std::string>(), Shape(), std::string()};
  uint64_t numel = 1, nonzero = 1;
  for (const json& d : shape) {
    LOWBIT_CHECK(is_non_negative_integer(d), what, " has shape ", short_dump(shape), "; sizes must be integers >= 0");
    const uint64_t k = d.get<uint64_t>();
    if (k != 0) {
      LOWBIT_CHECK(nonzero <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / k, what, " has shape ",
                   short_dump(shape), ", over 2^63 elements");
      nonzero *= k;
    }
    numel *= k;  // <= nonzero: no overflow
    t.shape.push_back(static_cast<int64_t>(k));
  }
  const json& offsets = v.at("data_offsets");
  LOWBIT_CHECK(offsets.is_array() && offsets.size() == 2 && is_non_negative_integer(offsets[0]) &&
                   is_non_negative_integer(offsets[1]),
               what, " has data_offsets ", short_dump(offsets), "; expected two integers [begin, end] >= 0");
  begin = offsets[0].get<uint64_t>();
  end = offsets[1].get<uint64_t>();
  LOWBIT_CHECK(begin <= end, what, " has data_offsets [", begin, ", ", end, "], which end before they begin");
  LOWBIT_CHECK((end - begin) % elem == 0 && (end - begin) / elem == numel, what, " (", t.dtype, ", shape ",
               shape_str(t.shape), ") has data_offsets [", begin, ", ", end, "], ", end - begin, " bytes; expected ",
               numel, " elements x ", elem, " bytes");
  return t;
}

}  // namespace detail

namespace detail {

// Opens a safetensors file and reads its header: checks 1 and 2 of docs/safetensors.md. On
// return `f` stands at the start of the data section.
inline std::string read_safetensors_header_text(std::ifstream& f, const std::string& path, const std::string& who,
                                                uint64_t max_header_bytes, uint64_t& data_size) {
  // Opening a named pipe blocks until a writer comes, and a device can be endless: only a
  // regular file (after symlinks) is opened.
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  LOWBIT_CHECK(!std::filesystem::exists(st) || std::filesystem::is_regular_file(st), who,
               " is not a regular file (a named pipe, device, socket or directory); expected a .safetensors file");
  f.open(path, std::ios::binary | std::ios::ate);
  LOWBIT_CHECK(f.good(), who, ": cannot open the file (no such file, or no permission?)");
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  LOWBIT_CHECK(size >= 8, who, " is truncated: it has ", size,
               " bytes, and a safetensors file starts with the 8-byte length of its header");
  f.seekg(0);
  unsigned char le[8];
  f.read(reinterpret_cast<char*>(le), 8);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | le[k];
  LOWBIT_CHECK(n <= max_header_bytes, who, ": its header length is ", n, " bytes, over the limit of ", max_header_bytes,
               " (not a safetensors file, or a damaged one)");
  LOWBIT_CHECK(n <= size - 8, who, " is truncated: its header length is ", n, " bytes, but only ", size - 8,
               " bytes follow the length");
  data_size = size - 8 - n;
  std::string text(n, '\0');
  f.read(&text[0], static_cast<std::streamsize>(n));
  LOWBIT_CHECK(f.good(), who, ": reading its ", n, "-byte header failed");
  return text;
}

// The "__metadata__" entry of a parsed header (check 5).
inline std::map<std::string, std::string> safetensors_metadata(const nlohmann::json& header, const std::string& who) {
  std::map<std::string, std::string> out;
  const auto v = header.find("__metadata__");
  if (v == header.end() || v->is_null()) return out;  // (the reference reads null as "no metadata")
  LOWBIT_CHECK(v->is_object(), who, ": __metadata__ is ", short_dump(*v), "; expected an object of strings");
  for (auto& m : v->items()) {
    LOWBIT_CHECK(m.value().is_string(), who, ": __metadata__ entry '", m.key(), "' is ", short_dump(m.value()),
                 "; metadata values must be strings");
    out[m.key()] = m.value().get<std::string>();
  }
  return out;
}

}  // namespace detail

// The metadata of a safetensors file, from its header alone: what a caller reads to learn what
// a file is (lowbit's checkpoints and exports name their format there) before reading it
// whole. Checks 1-5 apply; the tensors, the data and the checksums are checked by
// read_safetensors only.
inline std::map<std::string, std::string> read_safetensors_metadata(
    const std::string& path, uint64_t max_header_bytes = kSafetensorsMaxHeaderBytes) {
  const std::string who = "read_safetensors: '" + path + "'";
  std::ifstream f;
  uint64_t data_size = 0;
  const std::string text = detail::read_safetensors_header_text(f, path, who, max_header_bytes, data_size);
  std::vector<std::string> names;
  return detail::safetensors_metadata(detail::parse_safetensors_header(text, who, names), who);
}

// Reads and checks a safetensors file (the rules: docs/safetensors.md). max_header_bytes caps
// the JSON header (and with it the memory the parse takes); lower it for untrusted uploads.
inline SafetensorsFile read_safetensors(const std::string& path, uint64_t max_header_bytes = kSafetensorsMaxHeaderBytes) {
  const std::string who = "read_safetensors: '" + path + "'";
  std::ifstream f;
  uint64_t data_size = 0;
  const std::string text = detail::read_safetensors_header_text(f, path, who, max_header_bytes, data_size);

  std::vector<std::string> names;
  const nlohmann::json header = detail::parse_safetensors_header(text, who, names);
  SafetensorsFile out;
  out.path = path;
  struct Range {
    size_t tensor;  // index into out.tensors
    uint64_t begin, end;
  };
  std::vector<Range> ranges;
  out.metadata = detail::safetensors_metadata(header, who);
  for (const std::string& name : names) {
    if (name == "__metadata__") continue;
    Range r{out.tensors.size(), 0, 0};
    out.tensors.push_back(detail::parse_safetensors_entry(name, header.at(name), who, r.begin, r.end));
    ranges.push_back(r);
  }

  // The ranges, in data order, must tile the data section exactly: no byte shared by two
  // tensors, none that belongs to no tensor, none missing at the end.
  std::stable_sort(ranges.begin(), ranges.end(),
                   [](const Range& x, const Range& y) { return x.begin != y.begin ? x.begin < y.begin : x.end < y.end; });
  uint64_t pos = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range& r = ranges[i];
    const std::string& name = out.tensors[r.tensor].name;
    if (r.begin < pos) {
      const Range& p = ranges[i - 1];
      ::lowbit::detail::fail(who, ": tensor '", name, "' at bytes [", r.begin, ", ", r.end, ") overlaps tensor '",
                             out.tensors[p.tensor].name, "' at [", p.begin, ", ", p.end,
                             "); every byte of the data section belongs to one tensor");
    }
    LOWBIT_CHECK(r.begin == pos, who, ": bytes [", pos, ", ", r.begin, ") of the data section, before tensor '", name,
                 "', belong to no tensor; the tensors must follow each other without gaps");
    pos = r.end;
  }
  LOWBIT_CHECK(pos <= data_size, who, " is truncated: its tensors need ", pos, " bytes of data after the header, the file has ",
               data_size);
  LOWBIT_CHECK(pos == data_size, who, ": its last ", data_size - pos, " bytes belong to no tensor (the tensors end at byte ",
               pos, " of a data section of ", data_size, "); the tensors must end where the file ends");

  // Read the data section in file order, one tensor at a time (no second copy of the
  // data), and check it against lowbit.crc32c when the file carries one.
  uint32_t crc = 0;
  for (const Range& r : ranges) {
    std::string& bytes = out.tensors[r.tensor].bytes;
    bytes.resize(r.end - r.begin);
    f.read(&bytes[0], static_cast<std::streamsize>(bytes.size()));
    crc = crc32c_update(crc, bytes.data(), bytes.size());
  }
  LOWBIT_CHECK(f.good(), who, ": reading its ", data_size, "-byte data section failed");
  // Both checksums when the file carries them (lowbit's writer stores both; a file with only
  // the data one was written before the header one existed). The header one first: a damaged
  // header is the more specific message.
  if (out.metadata.count(kSafetensorsHeaderChecksumKey))
    detail::check_crc32c_entry(out.metadata, kSafetensorsHeaderChecksumKey, detail::header_crc32c(header), who,
                               std::to_string(text.size()) + "-byte header");
  if (out.metadata.count(kSafetensorsChecksumKey)) {
    detail::check_crc32c_entry(out.metadata, kSafetensorsChecksumKey, crc, who,
                               std::to_string(data_size) + "-byte data section");
    out.checksum_verified = true;
  }
  return out;
}

}  // namespace io
}  // namespace lowbit
