// The binary framing shared by lowbit's file formats (checkpoints, io/checkpoint.hpp;
// quantized models, quant/export.hpp):
//
//   bytes 0-7    magic (8 characters naming the format)
//   bytes 8-11   format version (uint32, little-endian)
//   bytes 12-19  length L of the JSON header (uint64)
//   next L bytes the JSON header (the format's table of contents)
//   then         the data section (what the header's offsets point into)
//   last 8 bytes total file length (uint64), so a truncated file is detected
//
// write_framed writes through io/atomic_write.hpp: a crash never leaves a torn file, and the
// previous file survives until the new one is complete.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../core/error.hpp"
#include "atomic_write.hpp"

namespace lowbit {
namespace io {

struct FramedFile {
  nlohmann::json header;
  std::string data;           // the data section
  uint64_t header_bytes = 0;  // everything but the data section: 28 + L
};

// `who` prefixes error messages (e.g. "save_checkpoint").
inline void write_framed(const std::string& path, const char (&magic)[8], uint32_t version,
                         const nlohmann::json& header, const std::string& data, const char* who) {
  const std::string text = header.dump();
  const uint64_t hlen = text.size();
  const uint64_t total = 8 + 4 + 8 + hlen + data.size() + 8;
  std::string bytes;
  bytes.reserve(total);
  bytes.append(magic, 8);
  bytes.append(reinterpret_cast<const char*>(&version), 4);
  bytes.append(reinterpret_cast<const char*>(&hlen), 8);
  bytes += text;
  bytes += data;
  bytes.append(reinterpret_cast<const char*>(&total), 8);
  write_file_atomic(path, bytes, who);
}

// The byte offset of an entry of `n` bytes in a data section of `size` bytes, read from a
// header value: it must be a non-negative integer and [offset, offset + n) must lie inside
// the section. Written without offset + n, which a huge or negative offset would wrap.
inline uint64_t checked_offset(const nlohmann::json& v, uint64_t n, uint64_t size, const std::string& what) {
  LOWBIT_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), what, ": offset ",
               v.dump(), " is not a non-negative integer");
  const uint64_t off = v.get<uint64_t>();
  LOWBIT_CHECK(off <= size && n <= size - off, what, ": bytes [", off, ", ", off, " + ", n,
               ") lie outside the data section of ", size, " bytes");
  return off;
}

// The element count of a stored shape, checked before anything is allocated: every
// dimension >= 0 and count * elem_bytes <= limit (the data section that must hold it).
inline uint64_t checked_numel(const nlohmann::json& shape, uint64_t elem_bytes, uint64_t limit, const std::string& what) {
  LOWBIT_CHECK(shape.is_array() && shape.size() <= 8, what, ": shape ", shape.dump(), " is not a list of at most 8 sizes");
  uint64_t n = 1;
  for (auto& d : shape) {
    LOWBIT_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, what, ": shape ", shape.dump(),
                 " has a size that is not a non-negative integer");
    const uint64_t k = d.get<uint64_t>();
    LOWBIT_CHECK(k == 0 || n <= limit / elem_bytes / k, what, ": shape ", shape.dump(), " needs more than the ", limit,
                 " bytes of the data section");
    n *= k;
  }
  return n;
}

// True when the file starts with `magic`.
inline bool has_magic(const std::string& path, const char (&magic)[8]) {
  std::error_code ec;  // a FIFO or device is never opened: reading one could block forever
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream f(path, std::ios::binary);
  char m[8] = {};
  f.read(m, 8);
  return f.good() && std::memcmp(m, magic, 8) == 0;
}

// Reads and checks the framing; `kind` names the format in errors ("checkpoint").
inline FramedFile read_framed(const std::string& path, const char (&magic)[8], uint32_t version, const char* kind,
                              const char* who) {
  std::error_code ec;  // a FIFO, device or socket would block or never end: refused unopened
  LOWBIT_CHECK(!std::filesystem::exists(path, ec) || std::filesystem::is_regular_file(path, ec), who, ": '", path,
               "' is not a regular file (a FIFO, device, socket or folder); expected a lowbit ", kind);
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  LOWBIT_CHECK(f.good(), who, ": cannot open '", path, "' (no such file?)");
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  char m[8] = {};
  uint32_t v = 0;
  uint64_t hlen = 0;
  f.read(m, 8);
  LOWBIT_CHECK(f.good() && std::memcmp(m, magic, 8) == 0, who, ": '", path, "' is not a lowbit ", kind,
               " (bad magic bytes; expected ", std::string(magic, 8), ")");
  f.read(reinterpret_cast<char*>(&v), 4);
  f.read(reinterpret_cast<char*>(&hlen), 8);
  LOWBIT_CHECK(f.good() && v == version, who, ": '", path, "' has format version ", v, ", this build reads version ",
               version);
  LOWBIT_CHECK(size >= 28 && hlen <= size - 28, who, ": '", path, "' is truncated (header of ", hlen,
               " bytes in a file of ", size, ")");  // no wrap-around for a huge hlen
  uint64_t total = 0;
  f.seekg(static_cast<std::streamoff>(size - 8));
  f.read(reinterpret_cast<char*>(&total), 8);
  LOWBIT_CHECK(f.good() && total == size, who, ": '", path, "' is truncated (trailer says ", total,
               " bytes, file has ", size, ")");
  FramedFile out;
  out.header_bytes = 28 + hlen;
  std::string text(hlen, '\0');
  out.data.resize(size - out.header_bytes);
  f.seekg(20);
  f.read(&text[0], static_cast<std::streamsize>(hlen));
  f.read(&out.data[0], static_cast<std::streamsize>(out.data.size()));
  LOWBIT_CHECK(f.good(), who, ": reading '", path, "' failed");
  try {
    out.header = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    detail::fail(who, ": '", path, "' has a corrupt header: ", e.what());
  }
  return out;
}

}  // namespace io
}  // namespace lowbit
