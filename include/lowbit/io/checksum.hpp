// CRC-32C (Castagnoli, the checksum of iSCSI, ext4 and SCTP; RFC 3720 B.4) of a byte range.
// It catches accidental damage -- flipped bits, a torn or truncated copy, a block of another
// file -- with certainty for any burst of up to 32 bits and with odds of 1 in 2^32 otherwise.
// It is not a defence against deliberate tampering (that needs a keyed hash), which is not
// what lowbit's files need: they guard against disks, networks and interrupted copies.
// Used by io/safetensors.hpp (metadata key "lowbit.crc32c").
//
// Table-driven, one byte per step (Sarwate): short enough to check by eye against the RFC,
// and fast enough here: the checksum is computed once per file written or read.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace lowbit {
namespace io {

// Continues a CRC-32C over n more bytes: crc32c_update(crc32c_update(0, a), b) equals the
// CRC-32C of a followed by b, so a file can be checked piece by piece. Start with crc = 0.
inline uint32_t crc32c_update(uint32_t crc, const void* data, size_t n) {
  // table[b] = the CRC register after shifting byte b through it; 0x82F63B78 is the
  // Castagnoli polynomial 0x1EDC6F41 bit-reversed (the CRC is computed LSB first).
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t r = b;
      for (int k = 0; k < 8; ++k) r = (r & 1) ? (r >> 1) ^ 0x82F63B78u : r >> 1;
      t[b] = r;
    }
    return t;
  }();
  const unsigned char* p = static_cast<const unsigned char*>(data);
  crc = ~crc;  // the register starts at all ones and the result is inverted (RFC 3720)
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

inline uint32_t crc32c(const void* data, size_t n) { return crc32c_update(0, data, n); }

// 8 lowercase hex digits, most significant first: the form files store ("e3069283").
inline std::string crc32c_hex(uint32_t crc) {
  static const char digits[] = "0123456789abcdef";
  std::string s(8, '0');
  for (int i = 7; i >= 0; --i, crc >>= 4) s[static_cast<size_t>(i)] = digits[crc & 0xfu];
  return s;
}

// The inverse of crc32c_hex: false unless `s` is exactly 8 lowercase hex digits.
inline bool parse_crc32c_hex(const std::string& s, uint32_t& crc) {
  if (s.size() != 8) return false;
  crc = 0;
  for (char c : s) {
    const int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    crc = (crc << 4) | static_cast<uint32_t>(v);
  }
  return true;
}

}  // namespace io
}  // namespace lowbit
