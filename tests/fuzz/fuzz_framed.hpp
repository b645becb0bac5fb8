// Inputs for the readers of lowbit's checkpoints and .lbq exports: safetensors files with
// lowbit's checksums (io/checkpoint.hpp, quant/export.hpp), and the earlier framed format
// (io/framed_file.hpp) they still read. Random bytes rarely get past a checksum or the
// framing (magic, version, lengths, trailer), so an input is
//   - the raw framed file, when it starts with the format's 8-byte magic (fuzzes the framing);
//   - "<JSON header>\0<data section>" (starts with '{'): written with io::write_framed, so the
//     framing is valid and the mutations reach the header's table (shapes, offsets, names);
//   - otherwise a safetensors file (8-byte length, JSON header, data), written back with both
//     lowbit checksums recomputed, so the mutations reach lowbit's layer behind them (the
//     format key, the meta and quantized-table JSON, codes and scales).
#pragma once
#include <algorithm>
#include <cstring>

#include <lowbit/io/framed_file.hpp>
#include <lowbit/io/safetensors.hpp>

#include "fuzz_common.hpp"

namespace fuzz {

// Writes the input as a file of the format; returns "" when its header is not JSON.
inline std::string write_safetensors_input(const char* name, const uint8_t* data, size_t size);

inline std::string write_framed_input(const char* name, const char (&magic)[8], uint32_t version,
                                      const uint8_t* data, size_t size) {
  if (size >= 8 && std::memcmp(data, magic, 8) == 0) return write_temp(name, data, size);
  if (size == 0 || data[0] != '{') return write_safetensors_input(name, data, size);
  const uint8_t* nul = std::find(data, data + size, uint8_t(0));
  const nlohmann::json header = nlohmann::json::parse(data, nul, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return "";
  const std::string section(nul == data + size ? nul : nul + 1, data + size);
  const std::string path = temp_path(name);
  lowbit::io::write_framed(path, magic, version, header, section, "fuzz");
  return path;
}

// A safetensors input with lowbit's two checksums set to match (io/safetensors.hpp); "" when
// its header is not a JSON object or its metadata not an object.
inline std::string write_safetensors_input(const char* name, const uint8_t* data, size_t size) {
  namespace io = lowbit::io;
  if (size < 8) return "";
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | data[k];
  if (n > size - 8) return "";
  nlohmann::json header = nlohmann::json::parse(data + 8, data + 8 + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return "";
  nlohmann::json& meta = header["__metadata__"];
  if (meta.is_null()) meta = nlohmann::json::object();
  if (!meta.is_object()) return "";
  meta[io::kSafetensorsChecksumKey] = io::crc32c_hex(io::crc32c(data + 8 + n, size - 8 - n));
  meta[io::kSafetensorsHeaderChecksumKey] = io::crc32c_hex(io::detail::header_crc32c(header));
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception&) {  // a string nlohmann will not write back
    return "";
  }
  std::string bytes(8, '\0');
  for (int k = 0; k < 8; ++k) bytes[k] = static_cast<char>((text.size() >> (8 * k)) & 0xffu);
  bytes += text;
  bytes.append(reinterpret_cast<const char*>(data + 8 + n), size - 8 - n);
  return write_temp(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace fuzz
