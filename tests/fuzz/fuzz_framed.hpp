// Inputs for the readers of io/framed_file.hpp's container (checkpoints, .lbq exports).
// Random bytes rarely get past the framing (magic, version, lengths, trailer), so an input
// is either
//   - the raw file, when it starts with the format's 8-byte magic (fuzzes the framing), or
//   - "<JSON header>\0<data section>": written with io::write_framed, so the framing is
//     valid and the mutations reach the header's table (shapes, offsets, names).
#pragma once
#include <algorithm>
#include <cstring>

#include <lowbit/io/framed_file.hpp>

#include "fuzz_common.hpp"

namespace fuzz {

// Writes the input as a file of the format; returns "" when its header is not JSON.
inline std::string write_framed_input(const char* name, const char (&magic)[8], uint32_t version,
                                      const uint8_t* data, size_t size) {
  if (size >= 8 && std::memcmp(data, magic, 8) == 0) return write_temp(name, data, size);
  const uint8_t* nul = std::find(data, data + size, uint8_t(0));
  const nlohmann::json header = nlohmann::json::parse(data, nul, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return "";
  const std::string section(nul == data + size ? nul : nul + 1, data + size);
  const std::string path = temp_path(name);
  lowbit::io::write_framed(path, magic, version, header, section, "fuzz");
  return path;
}

}  // namespace fuzz
