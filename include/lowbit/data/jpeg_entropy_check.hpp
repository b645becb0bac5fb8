// A replay of stb_image 2.27's JPEG entropy decoder without the pixels, run before stb decodes
// a file (data/image_check.hpp's JPEG walk calls it per segment), for the arithmetic that stb
// 2.27 gets wrong on crafted scan data. Upstream refuses these files since 2.28; Debian 12
// ships 2.27, so lowbit refuses them first:
//  - a DC coefficient whose dequantized value leaves 16 bits (stb computes dc * q in int and
//    stores it in a short: a signed overflow once |dc * q| >= 2^31, a wrapped pixel before);
//    most likely what fuzz_image found in CI, whose input was not kept (docs/fuzzing.md rebuilt
//    one by reading stb). 2.28 refuses the same files ("bad delta",
//    "can't merge dc and ac"): the prediction sum must fit an int and the product a short;
//  - a read past the scan data that shifts a byte by 32 or more bits
//    (stbi__grow_buffer_unsafe's `b << (24 - code_bits)` once code_bits < -7, which a fast AC
//    code taken right after the marker can leave behind).
// The replay follows stb's bit reader exactly (code_buffer, code_bits, the marker stop, zeros
// after it), its Huffman decoding (canonical codes; the 9-bit fast AC table), block order
// (interleaved MCUs or one component's blocks), restart intervals and scan types. Where stb
// itself would fail (a bad Huffman code, a bad scan header, an unknown marker) the replay stops
// and says nothing: stb refuses the file with its own reason. Progressive AC refinement scans
// depend on the coefficients of earlier scans and are not replayed; their only arithmetic is
// on shorts (no undefined behaviour), but their bit reader could still shift a zero byte by 32.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace lowbit {
namespace data {
namespace detail {

// A Huffman table as a DHT segment defines it: code counts per length and the symbols; for an
// AC table also stb's fast lookup by the next 9 bits (stbi__build_fast_ac, FAST_BITS = 9).
struct JpegHuffman {
  bool defined = false, valid = false;  // valid: stb's build_huffman accepts the counts
  int count[17] = {}, first[17] = {}, offset[17] = {};  // per code length 1..16
  uint8_t symbol[256] = {};
  // An AC code and its magnitude bits within 9 bits, with a value in [-128, 127]: its run << 4
  // | the bits both take; 0: stb takes the slow path.
  uint8_t fast_ac[512] = {};
};

// stbi__build_huffman: canonical codes, each length's codes after the shorter ones'.
inline void build_jpeg_huffman(JpegHuffman& h, const uint8_t* counts, const uint8_t* symbols, bool ac) {
  h.defined = true, h.valid = true;
  std::fill(h.fast_ac, h.fast_ac + 512, uint8_t(0));
  int code = 0, k = 0;
  for (int len = 1; len <= 16; ++len) {
    h.count[len] = counts[len - 1], h.first[len] = code, h.offset[len] = k;
    if (h.count[len] && code + h.count[len] - 1 >= (1 << len)) {  // stb: "bad code lengths"
      h.valid = false;
      return;
    }
    for (int i = 0; i < h.count[len]; ++i, ++code, ++k) {
      h.symbol[k] = symbols[k];
      const int mag = symbols[k] & 15;
      if (!ac || !mag || len + mag > 9) continue;
      for (int c = code << (9 - len); c < (code + 1) << (9 - len); ++c) {
        int v = ((c << len) & 511) >> (9 - mag);
        if (v < (1 << (mag - 1))) v -= (1 << mag) - 1;
        if (v >= -128 && v <= 127) h.fast_ac[c] = static_cast<uint8_t>((symbols[k] >> 4) << 4 | (len + mag));
      }
    }
    code <<= 1;
  }
}

// stb's entropy-decoder state over one scan's bytes (stbi__jpeg's code_buffer, code_bits,
// nomore, marker) and the reads stb makes of it.
struct JpegBits {
  const uint8_t* p;
  size_t n, pos;
  uint32_t buf = 0;
  int bits = 0;
  bool nomore = false, overshift = false;
  int marker = -1;  // -1: none

  uint8_t get8() { return pos < n ? p[pos++] : 0; }  // stbi__get8: 0 past the end
  void grow() {                                      // stbi__grow_buffer_unsafe
    do {
      const uint32_t b = nomore ? 0 : get8();
      if (b == 0xFF) {
        int c = get8();
        while (c == 0xFF) c = get8();
        if (c != 0) {
          marker = c, nomore = true;
          return;
        }
      }
      if (24 - bits >= 32) {  // stb shifts by 24 - code_bits: undefined from 32 on
        overshift = true;
        return;
      }
      buf |= b << (24 - bits), bits += 8;
    } while (bits <= 24);
  }
  void skip(int s) { buf <<= s, bits -= s; }
  uint32_t take(int s) {  // the top s bits (1..16), consumed: stb's stbi_lrot and mask
    const uint32_t k = buf >> (32 - s);
    skip(s);
    return k;
  }
  uint32_t get_bits(int s) {  // stbi__jpeg_get_bits (and get_bit for s = 1)
    if (bits < s) grow();
    return take(s);
  }
  int extend_receive(int s) {  // stbi__extend_receive: a top bit of 0 means negative
    if (bits < s) grow();
    const bool positive = buf >> 31;
    const int k = static_cast<int>(take(s));
    return positive ? k : k - ((1 << s) - 1);
  }
  // stbi__jpeg_huff_decode: the symbol, or -1 where stb fails (no code, or fewer bits than it).
  int decode(const JpegHuffman& h) {
    if (bits < 16) grow();
    for (int len = 1; len <= 16; ++len) {
      const int code = static_cast<int>(buf >> (32 - len));
      if (code - h.first[len] < h.count[len]) {  // >= first[len]: no shorter code matched
        if (len > bits) return -1;
        skip(len);
        return h.symbol[h.offset[len] + code - h.first[len]];
      }
    }
    return -1;
  }
};

// What stb knows while it reads a JPEG: tables, frame, restart interval. segment() is called
// for each marker segment in file order; it returns "" or the problem (the tail of a sentence).
class JpegEntropyReplay {
 public:
  std::string segment(uint8_t m, const uint8_t* seg, size_t len, const uint8_t* file, size_t n, size_t data_at,
                      size_t at) {
    if (stopped_) return "";
    if (m == 0xDB) return dqt(seg, len);
    if (m == 0xC4) return dht(seg, len);
    if (m == 0xDD) return len == 2 ? (restart_ = (seg[0] << 8) | seg[1], "") : stop();
    if (m >= 0xC0 && m <= 0xC2) return frame_ ? stop() : sof(m, seg, len);
    if (m == 0xDA) return frame_ ? scan(seg, len, file, n, data_at, at) : stop();
    if ((m >= 0xE0 && m <= 0xEF) || m == 0xFE || (m == 0xDC && frame_)) return "";
    return stop();  // stb: "unknown marker"
  }

  // What the replay got through, for the tests (a replay that lost its place in a file stops
  // without a word, as stb fails there): scans replayed to their end, units (MCUs, or blocks
  // of a one-component scan) decoded, restart markers taken; stopped where stb would fail.
  struct Progress {
    int scans = 0;
    int64_t units = 0, restarts = 0;
    bool stopped = false;
  };
  Progress progress() const {
    Progress p = progress_;
    p.stopped = stopped_;
    return p;
  }

 private:
  struct Component {
    int id = 0, h = 1, v = 1, tq = 0, x = 0, y = 0, hd = 0, ha = 0;
    int64_t pred = 0;
  };
  Progress progress_;
  bool stopped_ = false, frame_ = false, progressive_ = false;
  int restart_ = 0, width_ = 0, height_ = 0, ncomp_ = 0, hmax_ = 1, vmax_ = 1;
  Component comp_[4];
  bool qdefined_[4] = {};
  int q0_[4] = {};  // each quantization table's DC entry
  JpegHuffman dc_[4], ac_[4];
  // the scan being replayed
  int ss_ = 0, se_ = 0, ah_ = 0, al_ = 0, eob_run_ = 0;
  std::string problem_;

  std::string stop() {
    stopped_ = true;
    return "";
  }

  std::string dqt(const uint8_t* s, size_t len) {
    for (size_t k = 0; k < len;) {
      const int pq = s[k] >> 4, tq = s[k] & 15;
      const size_t size = pq ? 129 : 65;
      if (pq > 1 || tq > 3 || len - k < size) return stop();
      q0_[tq] = pq ? (s[k + 1] << 8) | s[k + 2] : s[k + 1], qdefined_[tq] = true;
      k += size;
    }
    return "";
  }

  std::string dht(const uint8_t* s, size_t len) {  // image_check.hpp's dht_problem checked the layout
    for (size_t k = 0; k + 17 <= len;) {
      const int tc = s[k] >> 4, th = s[k] & 15;
      int codes = 0;
      for (int b = 1; b <= 16; ++b) codes += s[k + static_cast<size_t>(b)];
      if (tc > 1 || th > 3 || codes > 256 || len - k - 17 < static_cast<size_t>(codes)) return stop();
      JpegHuffman& h = tc ? ac_[th] : dc_[th];
      build_jpeg_huffman(h, s + k + 1, s + k + 17, tc == 1);
      if (!h.valid) return stop();
      k += 17 + static_cast<size_t>(codes);
    }
    return "";
  }

  std::string sof(uint8_t m, const uint8_t* s, size_t len) {  // stbi__process_frame_header
    if (len < 6) return stop();
    height_ = (s[1] << 8) | s[2], width_ = (s[3] << 8) | s[4], ncomp_ = s[5];
    if (s[0] != 8 || !height_ || !width_ || (ncomp_ != 1 && ncomp_ != 3 && ncomp_ != 4) ||
        len != 6 + 3 * static_cast<size_t>(ncomp_))
      return stop();
    for (int i = 0; i < ncomp_; ++i) {
      Component& c = comp_[i];
      c.id = s[6 + 3 * i], c.h = s[7 + 3 * i] >> 4, c.v = s[7 + 3 * i] & 15, c.tq = s[8 + 3 * i];
      if (c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3) return stop();
      hmax_ = std::max(hmax_, c.h), vmax_ = std::max(vmax_, c.v);
    }
    for (int i = 0; i < ncomp_; ++i) {
      Component& c = comp_[i];
      if (hmax_ % c.h || vmax_ % c.v) return stop();
      c.x = (width_ * c.h + hmax_ - 1) / hmax_, c.y = (height_ * c.v + vmax_ - 1) / vmax_;
    }
    frame_ = true, progressive_ = m == 0xC2;
    return "";
  }

  // stbi__process_scan_header, then stbi__parse_entropy_coded_data without the pixels.
  std::string scan(const uint8_t* s, size_t len, const uint8_t* file, size_t n, size_t data_at, size_t at) {
    const int ns = len ? s[0] : 0;
    if (ns < 1 || ns > 4 || ns > ncomp_ || len != 4 + 2 * static_cast<size_t>(ns)) return stop();
    int order[4];
    for (int i = 0; i < ns; ++i) {
      int which = 0;
      while (which < ncomp_ && comp_[which].id != s[1 + 2 * i]) ++which;
      if (which == ncomp_) return stop();
      comp_[which].hd = s[2 + 2 * i] >> 4, comp_[which].ha = s[2 + 2 * i] & 15;
      if (comp_[which].hd > 3 || comp_[which].ha > 3) return stop();
      order[i] = which;
    }
    ss_ = s[1 + 2 * ns], se_ = s[2 + 2 * ns], ah_ = s[3 + 2 * ns] >> 4, al_ = s[3 + 2 * ns] & 15;
    if (progressive_ ? ss_ > 63 || se_ > 63 || ss_ > se_ || ah_ > 13 || al_ > 13 : ss_ != 0 || ah_ != 0 || al_ != 0)
      return stop();
    if (!progressive_) se_ = 63;
    if (progressive_ && ss_ > 0 && ah_ > 0) return "";  // AC refinement: not replayed (see the top)
    for (int i = 0; i < ns; ++i) {  // stb would read tables no segment defined (uninitialized memory)
      const Component& c = comp_[order[i]];
      const std::string where = "its scan at byte offset " + std::to_string(at) + " uses ";
      if (!qdefined_[c.tq])
        return "is corrupt: " + where + "quantization table " + std::to_string(c.tq) + ", which no DQT segment defines";
      if (ss_ == 0 && ah_ == 0 && !dc_[c.hd].defined)
        return "is corrupt: " + where + "DC Huffman table " + std::to_string(c.hd) + ", which no DHT segment defines";
      if (se_ > 0 && !ac_[c.ha].defined)
        return "is corrupt: " + where + "AC Huffman table " + std::to_string(c.ha) + ", which no DHT segment defines";
    }
    JpegBits b{file, n, data_at};
    problem_.clear();
    const int restart_todo = restart_ ? restart_ : 0x7fffffff;
    int todo = 0;
    auto reset = [&] {  // stbi__jpeg_reset
      b.buf = 0, b.bits = 0, b.nomore = false, b.marker = -1, eob_run_ = 0, todo = restart_todo;
      for (Component& c : comp_) c.pred = 0;
    };
    reset();
    // One unit (an MCU, or a block of a one-component scan), then the restart countdown.
    // Returns false where the scan ends (stb returns) or the replay found a problem.
    auto after_unit = [&] {
      ++progress_.units;
      if (--todo > 0) return true;
      if (b.bits < 24) b.grow();
      if (b.overshift || b.marker < 0xD0 || b.marker > 0xD7) return false;
      ++progress_.restarts;
      reset();
      return true;
    };
    const std::string tail = " in its scan at byte offset " + std::to_string(at);
    const int64_t units_before = progress_.units;
    int64_t units = 0;  // in this scan
    auto end = [&] {  // a scan whose every unit was decoded counts as replayed
      if (progress_.units - units_before == units) ++progress_.scans;
      return finish(b, tail);
    };
    if (ns == 1) {  // one component: its own blocks in raster order
      const int c = order[0];
      const int w = (comp_[c].x + 7) >> 3, h = (comp_[c].y + 7) >> 3;
      units = int64_t(w) * h;
      for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i)
          if (!block(b, c) || !after_unit()) return end();
    } else {  // interleaved: MCUs of h x v blocks per component
      const int mw = (width_ + 8 * hmax_ - 1) / (8 * hmax_), mh = (height_ + 8 * vmax_ - 1) / (8 * vmax_);
      units = int64_t(mw) * mh;
      for (int j = 0; j < mh; ++j)
        for (int i = 0; i < mw; ++i) {
          for (int k = 0; k < ns; ++k)
            for (int blocks = comp_[order[k]].h * comp_[order[k]].v; blocks > 0; --blocks)
              if (!block(b, order[k])) return end();
          if (!after_unit()) return end();
        }
    }
    return end();
  }

  std::string finish(const JpegBits& b, const std::string& tail) {
    if (!problem_.empty()) return "is corrupt: " + problem_ + tail + " (stb_image 2.27 would overflow; 2.28 refuses it)";
    if (b.overshift)
      return "is corrupt: its entropy-coded data ends inside a code" + tail +
             " (stb_image 2.27 would shift past 32 bits; undefined behaviour)";
    return "";
  }

  // One block as stb decodes it; false where stb fails or a problem is found.
  bool block(JpegBits& b, int c) {
    if (!progressive_) {  // stbi__jpeg_decode_block
      if (b.bits < 16) b.grow();
      return dc(b, c, q0_[comp_[c].tq]) && ac(b, comp_[c].ha, 1, 63, false);
    }
    if (ss_ == 0) {  // stbi__jpeg_decode_block_prog_dc
      if (se_ != 0) return false;
      if (b.bits < 16) b.grow();
      if (ah_ == 0) return dc(b, c, 1 << al_);
      b.get_bits(1);
      return !b.overshift;
    }
    return ac(b, comp_[c].ha, ss_, se_, true);  // stbi__jpeg_decode_block_prog_ac, first pass
  }

  // The DC difference, the prediction and its scaled value (dequantized, or shifted by Al).
  // The caller grew the buffer as stb does.
  bool dc(JpegBits& b, int c, int scale) {
    const int t = b.overshift ? -1 : b.decode(dc_[comp_[c].hd]);
    if (t < 0 || t > 15) return false;
    const int diff = t ? b.extend_receive(t) : 0;
    if (b.overshift) return false;
    Component& k = comp_[c];
    k.pred += diff;
    const int64_t value = k.pred * scale;
    if (k.pred > INT32_MAX || k.pred < INT32_MIN || value > INT16_MAX || value < INT16_MIN) {
      problem_ = "component " + std::to_string(c) + "'s DC coefficient reaches " + std::to_string(k.pred) + " x " +
                 std::to_string(scale) + " = " + std::to_string(value) + ", outside 16 bits,";
      return false;
    }
    return true;
  }

  // AC coefficients k0..k1 (baseline: 1..63 ending at an EOB; progressive first pass: with EOB runs).
  bool ac(JpegBits& b, int table, int k0, int k1, bool prog) {
    const JpegHuffman& h = ac_[table];
    if (prog && eob_run_) {
      --eob_run_;
      return true;
    }
    int k = k0;
    do {
      if (b.bits < 16) b.grow();
      if (b.overshift) return false;
      if (const int e = h.fast_ac[b.buf >> 23]) {  // stb's fast path: no check of code_bits
        k += (e >> 4) + 1, b.skip(e & 15);
        continue;
      }
      const int rs = b.decode(h);
      if (rs < 0) return false;
      const int s = rs & 15, r = rs >> 4;
      if (s == 0) {
        if (prog && r < 15) {
          eob_run_ = (1 << r) - 1 + (r ? static_cast<int>(b.get_bits(r)) : 0);
          break;
        }
        if (!prog && rs != 0xF0) break;
        k += 16;
      } else {
        k += r + 1;
        b.extend_receive(s);
      }
    } while (prog ? k <= k1 : k < 64);
    return !b.overshift;
  }
};

}  // namespace detail
}  // namespace data
}  // namespace lowbit
