// AVX2 + FMA single-precision building blocks for the convolution kernels (kernels/conv.hpp):
//
//  * an outer-product micro-kernel C[4 x 8*NV] (+)= A_panel · B_panel over packed panels
//    (BLIS style), with packing helpers for both operands;
//  * a dot-product block kernel C[OB x KB] += X[OB x L] · Y[KB x L]^T for when the reduction
//    dimension is the contiguous one (conv weight gradients), where packing would mean a
//    transpose.
//
// Only compiled when the compiler itself targets AVX2 and FMA (-mavx2 -mfma or a -march that
// implies them); consumers never need special flags — kernels/conv.hpp falls back to a
// portable path otherwise. All loads and stores are unaligned (loadu/storeu): buffers come
// from std::vector and user tensors at arbitrary offsets, and on current cores loadu on data
// that happens to be aligned costs nothing extra.
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#define LOWBIT_HAVE_AVX2_FMA 1
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace lowbit {
namespace kernels {
namespace avx2 {

// Vector width. With AVX-512F enabled by the compiler (e.g. -march=native on a Xeon that has
// it) the same kernels run on 16-float zmm registers; otherwise on 8-float ymm registers.
#if defined(__AVX512F__)
using vfloat = __m512;
constexpr int64_t kVW = 16;
inline vfloat vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vfloat v) { _mm512_storeu_ps(p, v); }
inline vfloat vbroadcast(const float* p) { return _mm512_set1_ps(*p); }
inline vfloat vset1(float x) { return _mm512_set1_ps(x); }
inline vfloat vzero() { return _mm512_setzero_ps(); }
inline vfloat vadd(vfloat a, vfloat b) { return _mm512_add_ps(a, b); }
inline vfloat vfmadd(vfloat a, vfloat b, vfloat c) { return _mm512_fmadd_ps(a, b, c); }
inline float vhsum(vfloat v) { return _mm512_reduce_add_ps(v); }
#else
using vfloat = __m256;
constexpr int64_t kVW = 8;
inline vfloat vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vfloat v) { _mm256_storeu_ps(p, v); }
inline vfloat vbroadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline vfloat vset1(float x) { return _mm256_set1_ps(x); }
inline vfloat vzero() { return _mm256_setzero_ps(); }
inline vfloat vadd(vfloat a, vfloat b) { return _mm256_add_ps(a, b); }
inline vfloat vfmadd(vfloat a, vfloat b, vfloat c) { return _mm256_fmadd_ps(a, b, c); }
inline float vhsum(vfloat v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

// Micro-tile: kMR = 4 rows of C by kNR = 3 vectors (24 floats with AVX2, 48 with AVX-512).
//
// Why 4 x 3 vectors: with AVX2 the register file has 16 ymm registers. The tile keeps
// 4 * 3 = 12 accumulators in registers, leaving 3 registers for the current row of B (3
// vectors) and 1 for the broadcast of A — exactly 16. Each step of k loads 3 B vectors and
// broadcasts 4 A scalars (7 loads) for 12 FMAs: the two FMA ports stay busy while the two load
// ports have slack, and 12 independent accumulators cover the FMA latency (4 cycles x 2 ports =
// 8 in flight). MR = 4 divides the narrow channel counts of CIFAR nets (16, 32, 64) exactly, so
// no accumulator rows are wasted on padding — a 6 x 16 tile would pad O = 16 to 18. With
// AVX-512 the same shape simply uses zmm registers (half of the 32 available).
constexpr int64_t kMR = 4;
constexpr int64_t kNR = 3 * kVW;

// Width of the packed B panel that holds columns [j0, j0 + kNR) of an N-column matrix: the
// last panel is narrowed to a multiple of the vector width so the tail runs the 2- or
// 1-vector kernel instead of multiplying zeros.
inline int64_t panel_width(int64_t N, int64_t j0) {
  const int64_t rem = std::min(kNR, N - j0);
  return (rem + kVW - 1) / kVW * kVW;
}
inline int64_t round_up_vw(int64_t n) { return (n + kVW - 1) / kVW * kVW; }

// Packed B for a K x N block: panels of up to kNR columns, one after another; inside a panel,
// row k's columns are contiguous ([panel][k][width]). Panel p starts at p * K * kNR.
inline int64_t packed_b_size(int64_t K, int64_t N) { return K * round_up_vw(N); }

// Scatters row `k` (N contiguous values) of a K-row block into packed-B layout.
inline void pack_b_row(const float* row, int64_t N, int64_t k, int64_t K, float* dst) {
  int64_t j0 = 0;
  for (; j0 + kNR <= N; j0 += kNR) {
    float* d = dst + j0 * K + k * kNR;
    vstore(d, vload(row + j0));
    vstore(d + kVW, vload(row + j0 + kVW));
    vstore(d + 2 * kVW, vload(row + j0 + 2 * kVW));
  }
  if (j0 < N) {
    const int64_t w = panel_width(N, j0), rem = N - j0;
    float* d = dst + j0 * K + k * w;
    std::memcpy(d, row + j0, sizeof(float) * rem);
    std::memset(d + rem, 0, sizeof(float) * (w - rem));
  }
}

// In-register transpose of an 8x8 block: row r of the result (8 floats at dst + r * ldd) is
// column r of the source rows (src + r * lds). The classic unpack / shuffle / lane-swap steps.
inline void transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], t[8];
  #pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int h = 0; h < 8; h += 4) {
    r[h + 0] = _mm256_shuffle_ps(t[h + 0], t[h + 2], 0x44);
    r[h + 1] = _mm256_shuffle_ps(t[h + 0], t[h + 2], 0xEE);
    r[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
    r[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
  }
  #pragma GCC unroll 16
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// Transposes channels [0, oc) of one image's dy (channel o's P pixels at src + o * P) into a
// [pixel][w] panel: dst[p * w + o] = src[o * P + p], columns oc .. w-1 zeroed (w >= oc). The
// weight-gradient kernels read dy this way; 8x8 blocks in registers, scalar at the edges.
// (A scalar pixel-outer loop read 16 strided streams one float at a time and took a third of
// the 16-channel 3x3 weight gradient.)
inline void transpose_panel(const float* src, int64_t P, int64_t oc, int64_t w, float* dst) {
  const int64_t p8 = P / 8 * 8, o8 = oc / 8 * 8;
  // Panel row p from channel `from` on, one float at a time, then its zero columns.
  const auto scalar_row = [&](int64_t p, int64_t from) {
    for (int64_t o = from; o < oc; ++o) dst[p * w + o] = src[o * P + p];
    for (int64_t o = oc; o < w; ++o) dst[p * w + o] = 0.0f;
  };
  for (int64_t p0 = 0; p0 < p8; p0 += 8) {
    for (int64_t o0 = 0; o0 < o8; o0 += 8) transpose8x8(src + o0 * P + p0, P, dst + p0 * w + o0, w);
    for (int64_t p = p0; p < p0 + 8; ++p) scalar_row(p, o8);
  }
  for (int64_t p = p8; p < P; ++p) scalar_row(p, 0);
}

// Packs an M x K matrix given by element strides (element (i, k) at A[i*rs + k*cs]) into
// panels of kMR rows: [panel][k][kMR], rows past M zero-filled. Done once per convolution
// call for the weights, so a strided scalar loop is fine here.
inline void pack_a(int64_t M, int64_t K, const float* A, int64_t rs, int64_t cs, float* dst) {
  for (int64_t i0 = 0; i0 < M; i0 += kMR)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < kMR; ++i)
        *dst++ = (i0 + i < M) ? A[(i0 + i) * rs + k * cs] : 0.0f;
}
inline int64_t packed_a_size(int64_t M, int64_t K) { return (M + kMR - 1) / kMR * kMR * K; }

// The micro-kernel. For k = 0..kc-1 it does the rank-1 update
//     acc[i][v] += A[k][i] * B[k][v*VW .. v*VW + VW-1]      (i < 4 rows, v < NV vectors)
// i.e. one broadcast of A[k][i] times the NV vectors of B's row k. A is a packed 4-row panel
// (4 floats per k), B a packed panel of NV vectors per k, both read strictly sequentially.
// Then the tile is written to C (row stride ldc): C = acc + bias[i] when !accumulate (bias
// may be null), C += acc when accumulate. Only the top-left mr x nr part is stored, so edge
// tiles never write outside C.
template <int NV>
inline void micro_kernel(int64_t kc, const float* __restrict A, const float* __restrict B,
                         float* __restrict C, int64_t ldc, bool accumulate, const float* bias,
                         int64_t mr, int64_t nr) {
  vfloat acc[kMR][NV];
  #pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[i][v] = vzero();
  for (int64_t k = 0; k < kc; ++k) {
    vfloat b[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) b[v] = vload(B + kVW * v);
    #pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const vfloat a = vbroadcast(A + i);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[i][v] = vfmadd(a, b[v], acc[i][v]);
    }
    A += kMR;
    B += kVW * NV;
  }
  if (mr == kMR && nr == kVW * NV) {
    #pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i)
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        float* c = C + i * ldc + kVW * v;
        vfloat r = acc[i][v];
        if (accumulate) r = vadd(vload(c), r);
        else if (bias) r = vadd(vset1(bias[i]), r);
        vstore(c, r);
      }
    return;
  }
  alignas(64) float tile[kMR][kVW * NV];
  #pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) vstore(&tile[i][kVW * v], acc[i][v]);
  for (int64_t i = 0; i < mr; ++i) {
    float* c = C + i * ldc;
    const float add = (!accumulate && bias) ? bias[i] : 0.0f;
    for (int64_t j = 0; j < nr; ++j) c[j] = accumulate ? c[j] + tile[i][j] : tile[i][j] + add;
  }
}

// C[M x N] (+)= Apacked[M x kc] · Bpacked[kc x N] with the layouts of pack_a / pack_b_row.
// `a` points at k-offset 0 of this K block inside full-K A panels of stride a_panel_stride
// (= kMR * full K). Loops: B panel outer so each B panel (kc rows) stays in L1 while all
// row panels of A (kept in L2) stream past it.
inline void gemm_packed(int64_t M, int64_t N, int64_t kc, const float* a, int64_t a_panel_stride,
                        const float* bp, float* C, int64_t ldc, bool accumulate,
                        const float* bias) {
  for (int64_t j0 = 0; j0 < N; j0 += kNR) {
    const int64_t w = panel_width(N, j0), nr = std::min(kNR, N - j0);
    const float* b = bp + j0 * kc;
    for (int64_t i0 = 0; i0 < M; i0 += kMR) {
      const int64_t mr = std::min(kMR, M - i0);
      const float* ap = a + (i0 / kMR) * a_panel_stride;
      float* c = C + i0 * ldc + j0;
      const float* bi = bias ? bias + i0 : nullptr;
      if (w == 3 * kVW) micro_kernel<3>(kc, ap, b, c, ldc, accumulate, bi, mr, nr);
      else if (w == 2 * kVW) micro_kernel<2>(kc, ap, b, c, ldc, accumulate, bi, mr, nr);
      else micro_kernel<1>(kc, ap, b, c, ldc, accumulate, bi, mr, nr);
    }
  }
}

// Dot-product block: C[ob][kb] += sum_l X[ob*ldx + l] * Y[kb*ldy + l] for l < L (L a multiple
// of kVW; callers zero-pad). The OB x KB accumulators each hold kVW partial sums along l and
// are reduced horizontally once at the end, which is cheap when L is a few hundred.
// Registers with OB = 4, KB = 3 (AVX2): 12 accumulators + 3 Y vectors + 1 X vector = 16. Each
// step does 12 FMAs for 7 loads. Y (KB rows) is the operand callers keep in L1; X streams.
template <int OB, int KB>
inline void dot_block(int64_t L, const float* __restrict X, int64_t ldx, const float* __restrict Y,
                      int64_t ldy, float* C, int64_t ldc) {
  vfloat acc[OB][KB];
  #pragma GCC unroll 16
  for (int o = 0; o < OB; ++o)
    #pragma GCC unroll 16
    for (int k = 0; k < KB; ++k) acc[o][k] = vzero();
  for (int64_t l = 0; l < L; l += kVW) {
    vfloat y[KB];
    #pragma GCC unroll 16
    for (int k = 0; k < KB; ++k) y[k] = vload(Y + k * ldy + l);
    #pragma GCC unroll 16
    for (int o = 0; o < OB; ++o) {
      const vfloat x = vload(X + o * ldx + l);
      #pragma GCC unroll 16
      for (int k = 0; k < KB; ++k) acc[o][k] = vfmadd(x, y[k], acc[o][k]);
    }
  }
  #pragma GCC unroll 16
  for (int o = 0; o < OB; ++o)
    #pragma GCC unroll 16
    for (int k = 0; k < KB; ++k) C[o * ldc + k] += vhsum(acc[o][k]);
}

// Rows of Y per dot block: 3 fits AVX2's 16 registers (see dot_block); AVX-512 has 32, so
// 4 x 6 = 24 accumulators + 6 Y vectors + 1 X vector = 31, which halves the L2 traffic of X.
#if defined(__AVX512F__)
constexpr int kDotKB = 6;
#else
constexpr int kDotKB = 3;
#endif

template <int OB, int KB>
inline void dot_rows(int64_t M, int64_t L, const float* X, int64_t ldx, const float* Y, int64_t ldy,
                     float* C, int64_t ldc) {
  int64_t o0 = 0;
  for (; o0 + OB <= M; o0 += OB) dot_block<OB, KB>(L, X + o0 * ldx, ldx, Y, ldy, C + o0 * ldc, ldc);
  for (; o0 < M; ++o0) dot_block<1, KB>(L, X + o0 * ldx, ldx, Y, ldy, C + o0 * ldc, ldc);
}

template <int KB>
inline void dot_tail(int64_t kb, int64_t M, int64_t L, const float* X, int64_t ldx, const float* Y,
                     int64_t ldy, float* C, int64_t ldc) {
  if constexpr (KB > 0) {
    if (kb == KB) dot_rows<4, KB>(M, L, X, ldx, Y, ldy, C, ldc);
    else dot_tail<KB - 1>(kb, M, L, X, ldx, Y, ldy, C, ldc);
  }
}

// C[M x K] += X[M x L] · Y[K x L]^T, blocked 4 x kDotKB with template tails. Y-block outer:
// its rows stay in L1 while all of X streams from L2.
inline void dot_gemm(int64_t M, int64_t K, int64_t L, const float* X, int64_t ldx, const float* Y,
                     int64_t ldy, float* C, int64_t ldc) {
  for (int64_t k0 = 0; k0 < K; k0 += kDotKB) {
    const int64_t kb = std::min<int64_t>(kDotKB, K - k0);
    dot_tail<kDotKB>(kb, M, L, X, ldx, Y + k0 * ldy, ldy, C + k0, ldc);
  }
}


// ---------------------------------------------------------------------------------------
// Implicit-GEMM pieces for stride-1 convolutions (kernels/conv.hpp, "padded-grid" path).
//
// There the input image is copied once into a zero-padded layout in which every im2col row
// (channel c, tap kh, kw) is simply a contiguous slice starting at base + off[k]. So the B
// operand is never materialised or packed: the micro-kernel reads B straight from that
// padded copy through a table of row offsets. B rows start at arbitrary float offsets
// (kw = 1, 2 are misaligned), so most B loads split a cache line; that costs load-port
// slots, which this tile has to spare.
// ---------------------------------------------------------------------------------------

// Tile: kIgMR rows of C (output channels) by kIgNV vectors (pixels).
// AVX-512 (32 zmm): 8 x 3 = 24 accumulators + 3 B vectors + 1 broadcast = 28 registers.
// Per k step: 3 B loads + 8 A broadcasts (11 load uops, ~15 slots counting line splits) feed
// 24 FMAs = 12 cycles on two FMA ports, so the FMA ports, not the loads, are the limit, and
// 24 independent chains cover the 4-cycle FMA latency 3 times over. 8 rows divide every
// channel count of ResNet-20 / VGG-Small, so no rows are padding.
// AVX2 (16 ymm): the 4 x 3 shape of micro_kernel (12 accumulators + 3 + 1 = 16).
// The small fixed loops over the tile carry "#pragma GCC unroll": without it GCC 12 keeps
// the acc[][] array in memory as well and stores every accumulator after every FMA (on an
// AVX2-only host that made ResNet-20 training 1.5x slower; docs/performance.md).
#if defined(__AVX512F__)
constexpr int64_t kIgMR = 8;
#else
constexpr int64_t kIgMR = 4;
#endif
constexpr int64_t kIgNV = 3;
constexpr int64_t kIgNR = kIgNV * kVW;

// Packs rows [0, M) x cols [0, K) of a matrix given by an accessor at(i, k) into panels of
// kIgMR rows: [panel][k][kIgMR], rows past M zero. Done once per convolution call for the
// weights (also in flipped/transposed order for the input gradient), so scalar is fine.
template <class At>
inline void pack_a_ig(int64_t M, int64_t K, At at, float* dst) {
  for (int64_t i0 = 0; i0 < M; i0 += kIgMR)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < kIgMR; ++i) *dst++ = (i0 + i < M) ? at(i0 + i, k) : 0.0f;
}
inline int64_t packed_a_ig_size(int64_t M, int64_t K) { return (M + kIgMR - 1) / kIgMR * kIgMR * K; }

// acc[i][v] += A[k][i] * B[off[k] + v*VW ...] for k < kc, i < MR (MR <= kIgMR: the A panel
// always has kIgMR floats per k; a short last panel just uses fewer of them), then the full
// MR x NV*VW tile is stored to C (row stride ldc): C = acc, or C += acc when accumulate.
// Callers size C to whole tiles, so there are no edge cases here.
template <int MR, int NV>
inline void ig_kernel(int64_t kc, const float* __restrict A, const float* __restrict B,
                      const int64_t* __restrict off, float* __restrict C, int64_t ldc, bool accumulate) {
  vfloat acc[MR][NV];
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[i][v] = vzero();
  for (int64_t k = 0; k < kc; ++k) {
    const float* b = B + off[k];
    vfloat bv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) bv[v] = vload(b + kVW * v);
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const vfloat a = vbroadcast(A + i);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[i][v] = vfmadd(a, bv[v], acc[i][v]);
    }
    A += kIgMR;
  }
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      float* c = C + i * ldc + kVW * v;
      vstore(c, accumulate ? vadd(vload(c), acc[i][v]) : acc[i][v]);
    }
}

template <int MR>
inline void ig_row_panel(int64_t nv, int64_t kc, const float* A, const float* B, const int64_t* off,
                         float* C, int64_t ldc, bool accumulate) {
  if (nv == 3) ig_kernel<MR, 3>(kc, A, B, off, C, ldc, accumulate);
  else if (nv == 2) ig_kernel<MR, 2>(kc, A, B, off, C, ldc, accumulate);
  else ig_kernel<MR, 1>(kc, A, B, off, C, ldc, accumulate);
}

// C[M x N] (+)= A[M x kc] · B[kc x N] where B's row k is B + off[k] (N contiguous floats) and
// A is packed by pack_a_ig (`a` points at k-offset 0 of this K block inside full-K panels of
// stride a_panel_stride = kIgMR * full K). C has ceil(M / kIgMR) * kIgMR rows and N is a
// multiple of kVW (callers pad). Loop order: pixel panel outer, so the few padded-image rows
// that panel reads stay in L1 while all row panels of A stream from L2.
inline void ig_gemm(int64_t M, int64_t N, int64_t kc, const float* a, int64_t a_panel_stride,
                    const float* B, const int64_t* off, float* C, int64_t ldc, bool accumulate) {
  for (int64_t j0 = 0; j0 < N; j0 += kIgNR) {
    const int64_t nv = std::min(kIgNR, N - j0) / kVW;
    for (int64_t i0 = 0; i0 < M; i0 += kIgMR) {
      const float* ap = a + (i0 / kIgMR) * a_panel_stride;
      float* c = C + i0 * ldc + j0;
      if (M - i0 <= kIgMR / 2) ig_row_panel<kIgMR / 2>(nv, kc, ap, B + j0, off, c, ldc, accumulate);
      else ig_row_panel<kIgMR>(nv, kc, ap, B + j0, off, c, ldc, accumulate);
    }
  }
}

#if defined(__AVX512F__)
// Pixel-broadcast implicit GEMM, the transposed shape of ig_kernel, for small images (8x8
// outputs, where the pixel-vector grid wastes 20%: a 9-float padded row per 8 outputs, 72
// grid points rounded up to 80). Here output channels are the vector dimension and pixels
// the broadcast one, so a tile is exactly 8 consecutive output pixels of one row and no grid
// point is wasted:
//     T[i][v*VW ...] = sum_k X[off[k] + i] * Wp[k][v*VW ...]     (i < 8 pixels, v < NV)
// Wp is a panel of packed weights [k][NV*VW] (pack_pb). Registers: 8 x NV (NV = 2) = 16
// accumulators + 2 weight vectors + 1 broadcast; per k 8 broadcasts + 2 loads feed 16 FMAs
// (8 cycles on two FMA ports), 16 chains cover the FMA latency. The broadcasts are at
// constant displacements from one pointer, the weights stream sequentially from L2. The
// tile is transposed in registers on the way out (pb_store), so the output stays NCHW.
constexpr int64_t kPbMR = 8;
constexpr int64_t kPbNW = 2 * kVW;  // output channels per weight panel

// Writes channels [0, mc) (mc <= 16) of an 8-pixel x 16-channel tile r[pixel] to Y (channel
// c's 8 pixels at Y + c * ldy): Y = r^T + bias[c] (bias may be null), or Y += r^T when add.
// The transpose runs in registers: the classic 8x8 unpack / shuffle steps work inside each
// 128-bit lane, which leaves lane j of tt[c] holding pixels 0-3 (tt[c]) or 4-7 (tt[c + 4]) of
// channel 4j + c; one two-source permute per output pairs those halves up, two channels per
// register.
inline void pb_store(const vfloat* r, float* Y, int64_t ldy, int64_t mc, const float* bias, bool add) {
  vfloat t[8], tt[8];
  #pragma GCC unroll 16
  for (int h = 0; h < 2; ++h) {  // pixels 4h .. 4h+3
    const vfloat* q = r + 4 * h;
    t[4 * h + 0] = _mm512_unpacklo_ps(q[0], q[1]);
    t[4 * h + 1] = _mm512_unpackhi_ps(q[0], q[1]);
    t[4 * h + 2] = _mm512_unpacklo_ps(q[2], q[3]);
    t[4 * h + 3] = _mm512_unpackhi_ps(q[2], q[3]);
    tt[4 * h + 0] = _mm512_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0x44);
    tt[4 * h + 1] = _mm512_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0xEE);
    tt[4 * h + 2] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    tt[4 * h + 3] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
  }
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  #pragma GCC unroll 16
  for (int c = 0; c < 4; ++c)
    #pragma GCC unroll 16
    for (int half = 0; half < 2; ++half) {
      const vfloat z = _mm512_permutex2var_ps(tt[c], half ? hi : lo, tt[c + 4]);
      #pragma GCC unroll 16
      for (int e = 0; e < 2; ++e) {  // channel 8*half + 4*e + c
        const int64_t ch = 8 * half + 4 * e + c;
        if (ch >= mc) continue;
        __m256 v = e ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z), 1)) : _mm512_castps512_ps256(z);
        float* y = Y + ch * ldy;
        if (add) v = _mm256_add_ps(_mm256_loadu_ps(y), v);
        else if (bias) v = _mm256_add_ps(_mm256_set1_ps(bias[ch]), v);
        _mm256_storeu_ps(y, v);
      }
    }
}

// Tile Y[c][i] (=, or += when add) sum_k X[off[k] + i] * Wp[k][c] for pixels i < 8 and
// channels c < mc <= NV * VW (rows of Y ldy apart); bias as in pb_store.
template <int NV>
inline void pb_kernel(int64_t K, const float* __restrict X, const int64_t* __restrict off,
                      const float* __restrict Wp, float* Y, int64_t ldy, int64_t mc, const float* bias, bool add) {
  vfloat acc[NV][kPbMR];
  #pragma GCC unroll 16
  for (int v = 0; v < NV; ++v)
    #pragma GCC unroll 16
    for (int i = 0; i < kPbMR; ++i) acc[v][i] = vzero();
  for (int64_t k = 0; k < K; ++k) {
    const float* x = X + off[k];
    vfloat w[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) w[v] = vload(Wp + kVW * v);
    #pragma GCC unroll 16
    for (int i = 0; i < kPbMR; ++i) {
      const vfloat a = vbroadcast(x + i);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[v][i] = vfmadd(a, w[v], acc[v][i]);
    }
    Wp += NV * kVW;
  }
  for (int v = 0; v < NV && v * kVW < mc; ++v)
    pb_store(acc[v], Y + v * kVW * ldy, ldy, std::min<int64_t>(kVW, mc - v * kVW), bias ? bias + v * kVW : nullptr,
             add);
}

// One tap column kw of pb3_kernel for pixels [I0, I1) (a template, so the tile stays in
// registers: with runtime pixel bounds GCC kept the accumulators in memory, at half speed).
template <int NV, int KW, int I0, int I1>
[[gnu::always_inline]] inline void pb3_tap(vfloat (&acc)[NV][kPbMR], const float* __restrict x,
                                           const float* __restrict wk) {
  vfloat w[NV];
  #pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) w[v] = vload(wk + (KW * NV + v) * kVW);
  for (int i = I0; i < I1; ++i) {
    const vfloat a = vbroadcast(x + KW + i);
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[v][i] = vfmadd(a, w[v], acc[v][i]);
  }
}

// pb_kernel for 3x3 taps on the padded grid (conv.hpp's PadGrid, tap (kh, kw) at kh*Ws + kw of
// a channel plane), skipping the multiply-adds that read zero padding. Zero taps are 16% of a
// 3x3 pad-1 conv on 8x8 outputs ((22/24)^2 of the nominal work is real) and 8% on 16x16;
// oneDNN's direct convolution skips them too, and doing all 9 taps everywhere had lowbit at
// 0.80-0.87x of it on VGG-Small's 8x8 layers. The caller passes which kernel rows are real for
// this output row ([kh0, kh1)) and whether the tile's first pixel (tap kw = 0) or last pixel
// (tap kw = 2) sits on the left / right padding; skipping a product with an exact zero leaves
// every sum bit-identical. Wp is pack_pb's panel with K in (c, kh, kw) order.
template <int NV, bool SkipL, bool SkipR>
inline void pb3_kernel(int64_t C, int64_t kh0, int64_t kh1, int64_t plane, int64_t ws, const float* __restrict X,
                       const float* __restrict Wp, float* Y, int64_t ldy, int64_t mc, const float* bias, bool add) {
  vfloat acc[NV][kPbMR];
  #pragma GCC unroll 16
  for (int v = 0; v < NV; ++v)
    #pragma GCC unroll 16
    for (int i = 0; i < kPbMR; ++i) acc[v][i] = vzero();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t kh = kh0; kh < kh1; ++kh) {
      const float* x = X + c * plane + kh * ws;
      const float* wk = Wp + (c * 9 + kh * 3) * NV * kVW;
      pb3_tap<NV, 0, SkipL ? 1 : 0, kPbMR>(acc, x, wk);
      pb3_tap<NV, 1, 0, kPbMR>(acc, x, wk);
      pb3_tap<NV, 2, 0, SkipR ? kPbMR - 1 : kPbMR>(acc, x, wk);
    }
  for (int v = 0; v < NV && v * kVW < mc; ++v)
    pb_store(acc[v], Y + v * kVW * ldy, ldy, std::min<int64_t>(kVW, mc - v * kVW), bias ? bias + v * kVW : nullptr,
             add);
}

template <int NV>
inline void pb3_tile(bool skip_l, bool skip_r, int64_t C, int64_t kh0, int64_t kh1, int64_t plane, int64_t ws,
                     const float* X, const float* Wp, float* Y, int64_t ldy, int64_t mc, const float* bias, bool add) {
  if (skip_l && skip_r) pb3_kernel<NV, true, true>(C, kh0, kh1, plane, ws, X, Wp, Y, ldy, mc, bias, add);
  else if (skip_l) pb3_kernel<NV, true, false>(C, kh0, kh1, plane, ws, X, Wp, Y, ldy, mc, bias, add);
  else if (skip_r) pb3_kernel<NV, false, true>(C, kh0, kh1, plane, ws, X, Wp, Y, ldy, mc, bias, add);
  else pb3_kernel<NV, false, false>(C, kh0, kh1, plane, ws, X, Wp, Y, ldy, mc, bias, add);
}

// Packs an M x K matrix given by at(i, k) into panels of kPbNW rows (the last one narrowed to
// whole vectors, zero-padded): panel j0 starts at dst + j0 * K and is [k][width].
template <class At>
inline void pack_pb(int64_t M, int64_t K, At at, float* dst) {
  for (int64_t j0 = 0; j0 < M; j0 += kPbNW) {
    const int64_t w = std::min(kPbNW, round_up_vw(M - j0));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < w; ++j) *dst++ = j0 + j < M ? at(j0 + j, k) : 0.0f;
  }
}
inline int64_t packed_pb_size(int64_t M, int64_t K) { return round_up_vw(M) * K; }
#endif

// Dot-product block with offset rows: C[o][k] += sum_l X[o*ldx + l] * Y[yoff[k] + l], l < L
// (L a multiple of kVW). Same register budget as dot_block (4 x kDotKB accumulators).
template <int OB, int KB>
inline void dot_block_off(int64_t L, const float* __restrict X, int64_t ldx, const float* __restrict Y,
                          const int64_t* yoff, float* C, int64_t ldc) {
  vfloat acc[OB][KB];
  const float* yr[KB];
  #pragma GCC unroll 16
  for (int k = 0; k < KB; ++k) yr[k] = Y + yoff[k];
  #pragma GCC unroll 16
  for (int o = 0; o < OB; ++o)
    #pragma GCC unroll 16
    for (int k = 0; k < KB; ++k) acc[o][k] = vzero();
  for (int64_t l = 0; l < L; l += kVW) {
    vfloat y[KB];
    #pragma GCC unroll 16
    for (int k = 0; k < KB; ++k) y[k] = vload(yr[k] + l);
    #pragma GCC unroll 16
    for (int o = 0; o < OB; ++o) {
      const vfloat x = vload(X + o * ldx + l);
      #pragma GCC unroll 16
      for (int k = 0; k < KB; ++k) acc[o][k] = vfmadd(x, y[k], acc[o][k]);
    }
  }
  #pragma GCC unroll 16
  for (int o = 0; o < OB; ++o)
    #pragma GCC unroll 16
    for (int k = 0; k < KB; ++k) C[o * ldc + k] += vhsum(acc[o][k]);
}

template <int KB>
inline void dot_off_rows(int64_t kb, int64_t M, int64_t L, const float* X, int64_t ldx, const float* Y,
                         const int64_t* yoff, float* C, int64_t ldc) {
  if constexpr (KB > 0) {
    if (kb != KB) return dot_off_rows<KB - 1>(kb, M, L, X, ldx, Y, yoff, C, ldc);
    int64_t o0 = 0;
    for (; o0 + 4 <= M; o0 += 4) dot_block_off<4, KB>(L, X + o0 * ldx, ldx, Y, yoff, C + o0 * ldc, ldc);
    for (; o0 < M; ++o0) dot_block_off<1, KB>(L, X + o0 * ldx, ldx, Y, yoff, C + o0 * ldc, ldc);
  }
}

// C[M x K] += X[M x L] · Y[K x L]^T with row k of Y at Y + yoff[k]. Blocked kDotKB rows of Y
// (kept in L1) against all of X; callers block M so that X's rows stay in L2.
inline void dot_gemm_off(int64_t M, int64_t K, int64_t L, const float* X, int64_t ldx, const float* Y,
                         const int64_t* yoff, float* C, int64_t ldc) {
  for (int64_t k0 = 0; k0 < K; k0 += kDotKB) {
    const int64_t kb = std::min<int64_t>(kDotKB, K - k0);
    dot_off_rows<kDotKB>(kb, M, L, X, ldx, Y, yoff + k0, C + k0, ldc);
  }
}

// Weight-gradient kernel for 3x3 convolutions with stride S = 1 (padded grid) or S = 2 (phase
// grid), outer-product form: the output-channel dimension is vectorised instead of the
// reduction, so no horizontal sums are needed and no load splits a cache line:
//     acc[9*ch + 3*kh + kw][v] += X[ch*plane + rowoff[r] + tap(kh, kw) + l] * D[r*OW + l][v*VW ...]
// for the grid rows r < nrows (each image's output rows) and l < OW: only real output pixels,
// none of the grid's padding columns or rows between stacked images. X is the input buffer of NCH consecutive channels (one scalar broadcast per tap), with
// tap(kh, kw) = kh*ws + kw for S = 1 and, for S = 2, phase plane ((kh%2)*2 + kw%2) * pp plus
// (kh/2)*ws + kw/2 (see PhaseGrid in conv.hpp). S is a template parameter so every tap is a
// few base pointers plus constant displacements, as in a hand-written kernel. D is a panel of
// dy transposed to [pixel][w] (w = NV vectors of output channels, contiguous per pixel, so
// it streams sequentially). Result rows are taps (k = 9*c + 3*kh + kw), columns output
// channels: C[k * ldc + o] += acc (dw transposed; the caller transposes back).
// Registers (AVX-512): NCH = 1, NV = 2 -> 18 accumulators + 2 dy vectors + 1 broadcast;
// per grid point 9 broadcasts + 2 loads feed 18 FMAs. A 16-wide channel tail uses NCH = 2,
// NV = 1 (18 accumulators; 18 broadcasts + 1 load per 18 FMAs, the most reuse 16 output
// channels allow).
constexpr int64_t kWgNV = kVW == 16 ? 2 : 1;
constexpr int64_t kWgNW = kWgNV * kVW;  // output channels per dy panel

template <int S, int NCH, int NV>
inline void wg3x3_kernel(int64_t nrows, int64_t OW, const int64_t* rowoff, const float* __restrict X, int64_t plane,
                         int64_t pp, int64_t ws, const float* __restrict D, int64_t w, float* __restrict C,
                         int64_t ldc) {
  static_assert(S == 1 || S == 2, "3x3 weight-gradient kernel: stride 1 or 2");
  constexpr int NB = S == 1 ? 1 : 2;  // phases per row of the grid layout
  vfloat acc[NCH * 9][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < NCH * 9; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = vzero();
  for (int64_t row = 0; row < nrows; ++row) {
    const float* xrow = X + rowoff[row];
    for (int64_t l = 0; l < OW; ++l, D += w) {
      vfloat d[NV];
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) d[v] = vload(D + kVW * v);
      #pragma GCC unroll 16
      for (int ch = 0; ch < NCH; ++ch)
        #pragma GCC unroll 16
        for (int kh = 0; kh < 3; ++kh)
          #pragma GCC unroll 16
          for (int kw = 0; kw < 3; ++kw) {
            const float* xr = xrow + ch * plane + ((kh % S) * NB + kw % S) * pp + (kh / S) * ws + l;
            const vfloat a = vbroadcast(xr + kw / S);
            #pragma GCC unroll 16
            for (int v = 0; v < NV; ++v) acc[ch * 9 + kh * 3 + kw][v] = vfmadd(a, d[v], acc[ch * 9 + kh * 3 + kw][v]);
          }
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < NCH * 9; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      float* c = C + r * ldc + kVW * v;
      vstore(c, vadd(vload(c), acc[r][v]));
    }
}

// wg3x3_kernel for stride 1 and padding 1 on the padded grid, skipping the products that read
// zero padding: tap kh = 0 on each image's first output row, kh = 2 on its last, kw = 0 on
// the first pixel of a row and kw = 2 on the last. Those are 16% of the nominal work on 8x8
// outputs and 8% on 16x16 (see pb3_kernel). Rows and pixels are visited in the same order as
// wg3x3_kernel and a skipped product is an exact zero, so every sum is bit-identical to it.
// oh_rows is the number of output rows per image (rows r with r % oh_rows == 0 are first).
template <int NCH, int NV, int KH0, int KH1, int KW0, int KW1>
[[gnu::always_inline]] inline void wg3x3_point(vfloat (&acc)[NCH * 9][NV], const float* __restrict x, int64_t plane,
                                               int64_t ws, const float* __restrict D) {
  vfloat d[NV];
  #pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) d[v] = vload(D + kVW * v);
  #pragma GCC unroll 16
  for (int ch = 0; ch < NCH; ++ch)
    for (int kh = KH0; kh < KH1; ++kh)
      for (int kw = KW0; kw < KW1; ++kw) {
        const vfloat a = vbroadcast(x + ch * plane + kh * ws + kw);
        #pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[ch * 9 + kh * 3 + kw][v] = vfmadd(a, d[v], acc[ch * 9 + kh * 3 + kw][v]);
      }
}

template <int NCH, int NV, int KH0, int KH1>
[[gnu::always_inline]] inline void wg3x3_row(vfloat (&acc)[NCH * 9][NV], int64_t OW, const float* __restrict x,
                                             int64_t plane, int64_t ws, const float* __restrict D, int64_t w) {
  if (OW == 1) return wg3x3_point<NCH, NV, KH0, KH1, 1, 2>(acc, x, plane, ws, D);
  wg3x3_point<NCH, NV, KH0, KH1, 1, 3>(acc, x, plane, ws, D);
  for (int64_t l = 1; l + 1 < OW; ++l) wg3x3_point<NCH, NV, KH0, KH1, 0, 3>(acc, x + l, plane, ws, D + l * w);
  wg3x3_point<NCH, NV, KH0, KH1, 0, 2>(acc, x + OW - 1, plane, ws, D + (OW - 1) * w);
}

template <int NCH, int NV>
inline void wg3x3_pad1_kernel(int64_t nrows, int64_t oh_rows, int64_t OW, const int64_t* rowoff,
                              const float* __restrict X, int64_t plane, int64_t ws, const float* __restrict D,
                              int64_t w, float* __restrict C, int64_t ldc) {
  vfloat acc[NCH * 9][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < NCH * 9; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = vzero();
  for (int64_t row = 0; row < nrows; ++row, D += OW * w) {
    const float* x = X + rowoff[row];
    const int64_t oh = row % oh_rows;
    if (oh_rows == 1) wg3x3_row<NCH, NV, 1, 2>(acc, OW, x, plane, ws, D, w);
    else if (oh == 0) wg3x3_row<NCH, NV, 1, 3>(acc, OW, x, plane, ws, D, w);
    else if (oh == oh_rows - 1) wg3x3_row<NCH, NV, 0, 2>(acc, OW, x, plane, ws, D, w);
    else wg3x3_row<NCH, NV, 0, 3>(acc, OW, x, plane, ws, D, w);
  }
  #pragma GCC unroll 16
  for (int r = 0; r < NCH * 9; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      float* c = C + r * ldc + kVW * v;
      vstore(c, vadd(vload(c), acc[r][v]));
    }
}

}  // namespace avx2
}  // namespace kernels
}  // namespace lowbit

#endif  // __AVX2__ && __FMA__
