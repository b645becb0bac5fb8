// 2-D convolution kernels on raw NCHW buffers (no autograd; ops/conv.hpp builds on these).
//
//   conv2d_forward          y  = conv(x, w) + bias         assigns: writes every element of y
//   conv2d_backward_input   dx += conv_transpose(dy, w)    adds; assigns (dx = ...) when
//                                                          called with accumulate = false
//   conv2d_backward_weight  dw += sum x-patch * dy,        adds into both; db may be null
//                           db += sum dy
// The library's caller, ops/conv.hpp (conv2d and detail::conv2d_grads, which
// quant/requant_conv.hpp reuses), relies on exactly this: y comes from Tensor::empty
// (uninitialised), dx from Tensor::empty with accumulate = false, and dw and db from
// Tensor::zeros, so the weight gradient is the sum the kernel adds onto zeros.
//
// Each has a *_reference twin (textbook loops, double accumulation) that the tests compare
// against, with the same contract; conv2d_backward_input_reference has no accumulate flag and
// always adds. Paths:
//   * float with AVX2+FMA enabled by the compiler, stride 1 with pad <= kernel-1 (every 3x3
//     layer of ResNet-20 / VGG-Small but the stride-2 transitions): the "padded grid" path.
//     Each image is copied into a zero-padded layout where every im2col row is a contiguous
//     slice, so the forward pass is an implicit GEMM reading B in place (8x48 AVX-512 tile);
//     the input gradient is the same forward conv on dy with flipped, transposed weights (no
//     col2im); the 3x3 weight gradient is an outer-product kernel over transposed dy. See
//     the PadGrid comment below. With AVX-512, outputs 8 pixels wide (the 8x8 stage) use
//     the transposed tile (8 pixels broadcast x 32 output channels, avx2::pb_kernel) on the
//     same buffer, which wastes no grid points; 3x3 convs whose rows are whole 8-pixel tiles
//     (8, 16, 32 wide) use its 3x3 form avx2::pb3_kernel, which also skips the products
//     with zero padding (16% of the work at 8x8, 8% at 16x16), as does the stride-1 pad-1
//     3x3 weight-gradient kernel avx2::wg3x3_pad1_kernel.
//   * other float convs with AVX2+FMA and pad >= 0 (the stride-2 transitions 3x3/2 and
//     1x1/2, anything strided or over-padded): the "phase grid" path. The padded input is
//     split into its S x S stride phases (space-to-depth), which turns every tap back into a
//     contiguous slice, so forward and weight gradient run the same implicit-GEMM / outer-
//     product kernels; the input gradient is one small stride-1 GEMM per phase of dx
//     (sub-kernels 2x2, 2x1, 1x2, 1x1 for 3x3/2). See the PhaseGrid comment below.
//   * float with AVX2+FMA and negative padding: per-image GEMMs on our own packed 4x24 / 4x48
//     micro-kernel (kernels/sgemm_avx2.hpp), im2col fused into packing one row at a time.
//   * everything else (double, or float without AVX2): im2col + Eigen GEMM per image.
// Notation: K = C*KH*KW (im2col rows), P = OH*OW (output pixels per image). Images (or small
// groups of images) are distributed statically over OpenMP threads; all scratch is per thread
// and per image or group, never per batch. Weight gradients sum per-thread partials in thread
// order, so results are bit-identical from run to run for a given thread count.
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "parallel.hpp"
#include "sgemm_avx2.hpp"

namespace lowbit {
namespace kernels {

struct ConvShape {
  int64_t N, C, H, W;     // input  [N, C, H, W] (NCHW, contiguous)
  int64_t O, KH, KW;      // weight [O, C, KH, KW] (PyTorch layout)
  int64_t SH = 1, SW = 1; // stride
  int64_t PH = 0, PW = 0; // symmetric zero padding
  int64_t OH() const { return (H + 2 * PH - KH) / SH + 1; }
  int64_t OW() const { return (W + 2 * PW - KW) / SW + 1; }
};

// ---------------------------------------------------------------------------------------
// Reference twins: the definition, loop by loop.
// ---------------------------------------------------------------------------------------

template <class T>
void conv2d_forward_reference(const ConvShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bias ? static_cast<double>(bias[o]) : 0.0;
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t ih = oh * s.SH - s.PH + kh, iw = ow * s.SW - s.PW + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += static_cast<double>(x[((n * s.C + c) * s.H + ih) * s.W + iw]) *
                       static_cast<double>(w[((o * s.C + c) * s.KH + kh) * s.KW + kw]);
              }
          y[((n * s.O + o) * OH + oh) * OW + ow] = static_cast<T>(acc);
        }
}

template <class T>
void conv2d_backward_input_reference(const ConvShape& s, const T* dy, const T* w, T* dx) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t ih = 0; ih < s.H; ++ih)
        for (int64_t iw = 0; iw < s.W; ++iw) {
          double acc = 0.0;
          for (int64_t o = 0; o < s.O; ++o)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                // Output pixel (oh, ow) saw this input pixel through tap (kh, kw) iff
                // oh*SH - PH + kh == ih, likewise for w.
                const int64_t th = ih + s.PH - kh, tw = iw + s.PW - kw;
                if (th < 0 || tw < 0 || th % s.SH != 0 || tw % s.SW != 0) continue;
                const int64_t oh = th / s.SH, ow = tw / s.SW;
                if (oh >= OH || ow >= OW) continue;
                acc += static_cast<double>(dy[((n * s.O + o) * OH + oh) * OW + ow]) *
                       static_cast<double>(w[((o * s.C + c) * s.KH + kh) * s.KW + kw]);
              }
          T& d = dx[((n * s.C + c) * s.H + ih) * s.W + iw];
          d = static_cast<T>(static_cast<double>(d) + acc);
        }
}

template <class T>
void conv2d_backward_weight_reference(const ConvShape& s, const T* x, const T* dy, T* dw, T* db) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t o = 0; o < s.O; ++o) {
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t kh = 0; kh < s.KH; ++kh)
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          double acc = 0.0;
          for (int64_t n = 0; n < s.N; ++n)
            for (int64_t oh = 0; oh < OH; ++oh)
              for (int64_t ow = 0; ow < OW; ++ow) {
                const int64_t ih = oh * s.SH - s.PH + kh, iw = ow * s.SW - s.PW + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += static_cast<double>(x[((n * s.C + c) * s.H + ih) * s.W + iw]) *
                       static_cast<double>(dy[((n * s.O + o) * OH + oh) * OW + ow]);
              }
          T& d = dw[((o * s.C + c) * s.KH + kh) * s.KW + kw];
          d = static_cast<T>(static_cast<double>(d) + acc);
        }
    if (db) {
      double acc = 0.0;
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t p = 0; p < OH * OW; ++p) acc += static_cast<double>(dy[(n * s.O + o) * OH * OW + p]);
      db[o] = static_cast<T>(static_cast<double>(db[o]) + acc);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Shared pieces: im2col one row at a time, scratch buffers, threading policy.
// ---------------------------------------------------------------------------------------
namespace conv_detail {

// Outputs o in [lo, hi) read an in-bounds input index o*stride - pad + k (in [0, in)); the
// rest of the outputs see zero padding.
inline void valid_range(int64_t in, int64_t out, int64_t stride, int64_t pad, int64_t k,
                        int64_t& lo, int64_t& hi) {
  const int64_t off = pad - k;  // input index = o*stride - off
  lo = off > 0 ? (off + stride - 1) / stride : 0;
  const int64_t last = in - 1 + off;  // o*stride <= last
  hi = last >= 0 ? last / stride + 1 : 0;
  lo = std::min(lo, out);
  hi = std::max(lo, std::min(hi, out));
}

// Row (c, kh, kw) of the im2col matrix of one image: out[oh*OW + ow] = x[c, ih, iw] or 0 in the
// padding. `xc` is the input plane of channel c. Works a whole output row at a time so the
// stride-1 case is a memcpy between two zero-filled margins.
template <class T>
void im2col_row(const ConvShape& s, const T* xc, int64_t kh, int64_t kw, T* out) {
  const int64_t OH = s.OH(), OW = s.OW();
  int64_t h0, h1, w0, w1;
  valid_range(s.H, OH, s.SH, s.PH, kh, h0, h1);
  valid_range(s.W, OW, s.SW, s.PW, kw, w0, w1);
  std::fill(out, out + h0 * OW, T(0));
  for (int64_t oh = h0; oh < h1; ++oh) {
    T* o = out + oh * OW;
    const T* xr = xc + (oh * s.SH - s.PH + kh) * s.W;
    std::fill(o, o + w0, T(0));
    if (s.SW == 1) {
      if (w1 > w0) std::memcpy(o + w0, xr + (w0 - s.PW + kw), sizeof(T) * (w1 - w0));
    } else {
      for (int64_t ow = w0; ow < w1; ++ow) o[ow] = xr[ow * s.SW - s.PW + kw];
    }
    std::fill(o + w1, o + OW, T(0));
  }
  std::fill(out + h1 * OW, out + OH * OW, T(0));
}

// The adjoint of im2col_row: dxc[c, ih, iw] += row[oh*OW + ow] for every in-bounds tap.
template <class T>
void col2im_row_add(const ConvShape& s, const T* row, int64_t kh, int64_t kw, T* dxc) {
  const int64_t OH = s.OH(), OW = s.OW();
  int64_t h0, h1, w0, w1;
  valid_range(s.H, OH, s.SH, s.PH, kh, h0, h1);
  valid_range(s.W, OW, s.SW, s.PW, kw, w0, w1);
  for (int64_t oh = h0; oh < h1; ++oh) {
    const T* r = row + oh * OW;
    T* dr = dxc + (oh * s.SH - s.PH + kh) * s.W;
    if (s.SW == 1) {
      T* d = dr + (w0 - s.PW + kw);
      const int64_t n = w1 - w0;
      const T* src = r + w0;
      for (int64_t i = 0; i < n; ++i) d[i] += src[i];
    } else {
      for (int64_t ow = w0; ow < w1; ++ow) dr[ow * s.SW - s.PW + kw] += r[ow];
    }
  }
}

// Per-thread scratch that survives across calls: conv layers call these kernels every step
// with the same shapes, and re-allocating megabytes each time would page-fault them in again.
// Slots keep simultaneously live buffers apart.
template <class T>
T* scratch(int slot, size_t n) {
  thread_local std::vector<T> bufs[4];
  std::vector<T>& b = bufs[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// Fork only when each image carries enough work to amortise waking the thread team.
inline bool worth_parallel(const ConvShape& s) {
  const int64_t flops = 2 * s.O * s.C * s.KH * s.KW * s.OH() * s.OW();
  return s.N > 1 && s.N * flops > (int64_t(1) << 21);
}

inline int thread_num() { return thread_index(); }

// Weight-gradient reductions: each thread accumulates dw (O*K values) then db (O values) into
// its own slice of one buffer; the slices are then added to dw / db in thread order. A
// critical section would add them in completion order, and float addition is not
// associative, so results would change from run to run.
template <class T>
void add_thread_partials(const std::vector<T>& parts, int threads, int64_t OK, int64_t O, T* dw, T* db) {
  for (int t = 0; t < threads; ++t) {
    const T* p = parts.data() + t * (OK + O);
    for (int64_t i = 0; i < OK; ++i) dw[i] += p[i];
    if (db)
      for (int64_t o = 0; o < O; ++o) db[o] += p[OK + o];
  }
}

// Splits K into ceil(K / max_block) nearly equal blocks (so 288 becomes 144 + 144, not
// 256 + 32). Returns the block length.
inline int64_t even_block(int64_t K, int64_t max_block) {
  const int64_t nb = (K + max_block - 1) / max_block;
  return nb > 0 ? (K + nb - 1) / nb : 0;
}

// ---------------------------------------------------------------------------------------
// Portable path: im2col + Eigen GEMM, one image per iteration.
// ---------------------------------------------------------------------------------------
template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class T>
void fill_cols(const ConvShape& s, const T* xn, T* cols) {
  const int64_t P = s.OH() * s.OW(), KK = s.KH * s.KW;
  for (int64_t k = 0; k < s.C * KK; ++k)
    im2col_row(s, xn + (k / KK) * s.H * s.W, (k % KK) / s.KW, k % s.KW, cols + k * P);
}

template <class T>
void forward_portable(const ConvShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t K = s.C * s.KH * s.KW, P = s.OH() * s.OW();
  Eigen::Map<const RowMat<T>> W(w, s.O, K);
#pragma omp parallel for schedule(static) if (worth_parallel(s))
  for (int64_t n = 0; n < s.N; ++n) {
    T* cols = scratch<T>(0, static_cast<size_t>(K * P));
    fill_cols(s, x + n * s.C * s.H * s.W, cols);
    Eigen::Map<RowMat<T>> Y(y + n * s.O * P, s.O, P);
    Y.noalias() = W * Eigen::Map<const RowMat<T>>(cols, K, P);
    if (bias)
      for (int64_t o = 0; o < s.O; ++o) Y.row(o).array() += bias[o];
  }
}

template <class T>
void backward_input_portable(const ConvShape& s, const T* dy, const T* w, T* dx) {
  const int64_t K = s.C * s.KH * s.KW, P = s.OH() * s.OW(), KK = s.KH * s.KW;
  Eigen::Map<const RowMat<T>> W(w, s.O, K);
#pragma omp parallel for schedule(static) if (worth_parallel(s))
  for (int64_t n = 0; n < s.N; ++n) {
    T* dcols = scratch<T>(0, static_cast<size_t>(K * P));
    Eigen::Map<RowMat<T>> D(dcols, K, P);
    D.noalias() = W.transpose() * Eigen::Map<const RowMat<T>>(dy + n * s.O * P, s.O, P);
    T* dxn = dx + n * s.C * s.H * s.W;
    for (int64_t k = 0; k < K; ++k)
      col2im_row_add(s, dcols + k * P, (k % KK) / s.KW, k % s.KW, dxn + (k / KK) * s.H * s.W);
  }
}

template <class T>
void backward_weight_portable(const ConvShape& s, const T* x, const T* dy, T* dw, T* db) {
  const int64_t K = s.C * s.KH * s.KW, P = s.OH() * s.OW();
  const bool par = worth_parallel(s);
  const int threads = par ? max_threads() : 1;
  std::vector<T> parts(static_cast<size_t>(threads * (s.O * K + s.O)), T(0));
#pragma omp parallel num_threads(threads) if (par)
  {
    Eigen::Map<RowMat<T>> dwl(parts.data() + thread_num() * (s.O * K + s.O), s.O, K);
    T* dbl = dwl.data() + s.O * K;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      T* cols = scratch<T>(0, static_cast<size_t>(K * P));
      fill_cols(s, x + n * s.C * s.H * s.W, cols);
      Eigen::Map<const RowMat<T>> DY(dy + n * s.O * P, s.O, P);
      dwl.noalias() += DY * Eigen::Map<const RowMat<T>>(cols, K, P).transpose();
      for (int64_t o = 0; o < s.O; ++o) dbl[o] += DY.row(o).sum();
    }
  }
  add_thread_partials(parts, threads, s.O * K, s.O, dw, db);
}

// ---------------------------------------------------------------------------------------
// AVX2 + FMA float path.
// ---------------------------------------------------------------------------------------
#ifdef LOWBIT_HAVE_AVX2_FMA

// Sum of n floats in a fixed order (kVW-lane partial sums, then the tail): the bias
// gradient's per-plane sums. A plain `acc += src[p]` loop is one serial add chain (4 cycles
// per float), which cost as much as the transposes it sat in.
inline float sum_floats(const float* p, int64_t n) {
  avx2::vfloat acc = avx2::vzero();
  int64_t i = 0;
  for (; i + avx2::kVW <= n; i += avx2::kVW) acc = avx2::vadd(acc, avx2::vload(p + i));
  float r = avx2::vhsum(acc);
  for (; i < n; ++i) r += p[i];
  return r;
}

// Short-row copy and zero fill for the grid fills. Grid rows are 8-32 floats, where a libc
// memcpy / memset call costs about as much as the copy itself (perf, ResNet-20 step at 1
// thread: memmove + memset ~6% of the step, mostly these per-row calls). Plain loops would
// be turned back into those calls by GCC's loop-distribution pass, hence intrinsics. No
// masked stores for the tails (microcoded and slow on AMD Zen): a last vector that overlaps
// the previous one, or 4/2/1-float steps for rows shorter than a vector. Never touches a
// float at or past n.
inline void copy_row(float* d, const float* s, int64_t n) {
  if (n >= 8) {  // whole vectors, then one more ending exactly at n (overlapping is harmless)
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_loadu_ps(s + i));
    if (i < n) _mm256_storeu_ps(d + n - 8, _mm256_loadu_ps(s + n - 8));
    return;
  }
  int64_t i = 0;  // n < 8: 4, 2, 1 floats (no loop for the compiler to turn into a call)
  if (n & 4) _mm_storeu_ps(d, _mm_loadu_ps(s)), i = 4;
  if (n & 2) _mm_storel_pi(reinterpret_cast<__m64*>(d + i), _mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(s + i))), i += 2;
  if (n & 1) d[i] = s[i];
}
inline void zero_row(float* d, int64_t n) {
  const __m256 z = _mm256_setzero_ps();
  if (n >= 8) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, z);
    if (i < n) _mm256_storeu_ps(d + n - 8, z);
    return;
  }
  int64_t i = 0;
  if (n & 4) _mm_storeu_ps(d, _mm_setzero_ps()), i = 4;
  if (n & 2) _mm_storel_pi(reinterpret_cast<__m64*>(d + i), _mm_setzero_ps()), i += 2;
  if (n & 1) d[i] = 0.0f;
}

// Largest K block of a packed GEMM: a 24-wide B panel of 256 rows is 24 KiB and stays in the
// 48 KiB L1 while the A panels stream past it.
constexpr int64_t kBlockK = 256;

// Forward, per image: Y[O x P] = W[O x K] · cols[K x P] (+ bias in the first K block's store).
// W is packed once per call and shared by all threads. For each K block, im2col rows are
// generated into a P-long buffer (L1) and scattered straight into packed-B panels.
inline void forward_avx2(const ConvShape& s, const float* x, const float* w, const float* bias,
                         float* y) {
  const int64_t K = s.C * s.KH * s.KW, P = s.OH() * s.OW(), KK = s.KH * s.KW;
  std::vector<float> ap(static_cast<size_t>(avx2::packed_a_size(s.O, K)));
  avx2::pack_a(s.O, K, w, K, 1, ap.data());
  const int64_t kb = even_block(K, kBlockK);
#pragma omp parallel for schedule(static) if (worth_parallel(s))
  for (int64_t n = 0; n < s.N; ++n) {
    float* bp = scratch<float>(0, static_cast<size_t>(avx2::packed_b_size(kb, P)));
    float* row = scratch<float>(1, static_cast<size_t>(P));
    const float* xn = x + n * s.C * s.H * s.W;
    float* yn = y + n * s.O * P;
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
      const int64_t kc = std::min(kb, K - k0);
      for (int64_t k = k0; k < k0 + kc; ++k) {
        im2col_row(s, xn + (k / KK) * s.H * s.W, (k % KK) / s.KW, k % s.KW, row);
        avx2::pack_b_row(row, P, k - k0, kc, bp);
      }
      avx2::gemm_packed(s.O, P, kc, ap.data() + k0 * avx2::kMR, K * avx2::kMR, bp, yn, P,
                        /*accumulate=*/k0 > 0, bias);
    }
  }
}

// Backward input, per image: dcols[K x P] = W^T[K x O] · dy[O x P], then col2im. dy is packed
// once per image; dcols is produced in blocks of rows sized to stay in L2 and is scattered
// into dx right away, so only a block of dcols ever exists.
inline void backward_input_avx2(const ConvShape& s, const float* dy, const float* w, float* dx) {
  const int64_t K = s.C * s.KH * s.KW, P = s.OH() * s.OW(), KK = s.KH * s.KW;
  const int64_t P8 = avx2::round_up_vw(P);  // P rounded to whole vectors
  std::vector<float> apt(static_cast<size_t>(avx2::packed_a_size(K, s.O)));
  avx2::pack_a(K, s.O, w, 1, K, apt.data());  // element (k, o) = w[o*K + k]
  const int64_t ob = even_block(s.O, kBlockK);
  // Rows of dcols per block: a multiple of kMR, about 256 KiB of floats.
  const int64_t mb = std::max<int64_t>(avx2::kMR, std::min<int64_t>((K + 3) / 4 * 4, (65536 / P8) / 4 * 4));
#pragma omp parallel for schedule(static) if (worth_parallel(s))
  for (int64_t n = 0; n < s.N; ++n) {
    float* bp = scratch<float>(0, static_cast<size_t>(s.O * P8));
    float* dcols = scratch<float>(1, static_cast<size_t>(mb * P));
    const float* dyn = dy + n * s.O * P;
    float* dxn = dx + n * s.C * s.H * s.W;
    // O block starting at o0 occupies bp[o0*P8 ...): packed_b_size(oc, P) == oc * P8.
    for (int64_t o0 = 0; o0 < s.O; o0 += ob) {
      const int64_t oc = std::min(ob, s.O - o0);
      for (int64_t o = o0; o < o0 + oc; ++o) avx2::pack_b_row(dyn + o * P, P, o - o0, oc, bp + o0 * P8);
    }
    for (int64_t m0 = 0; m0 < K; m0 += mb) {
      const int64_t mc = std::min(mb, K - m0);
      for (int64_t o0 = 0; o0 < s.O; o0 += ob) {
        const int64_t oc = std::min(ob, s.O - o0);
        avx2::gemm_packed(mc, P, oc, apt.data() + (m0 / avx2::kMR) * avx2::kMR * s.O + o0 * avx2::kMR,
                          avx2::kMR * s.O, bp + o0 * P8, dcols, P, /*accumulate=*/o0 > 0, nullptr);
      }
      for (int64_t r = 0; r < mc; ++r) {
        const int64_t k = m0 + r;
        col2im_row_add(s, dcols + r * P, (k % KK) / s.KW, k % s.KW, dxn + (k / KK) * s.H * s.W);
      }
    }
  }
}

// Backward weight: dw[O x K] += sum_n dy_n[O x P] · cols_n[K x P]^T. The reduction runs along
// P, which is contiguous in both dy and im2col rows, so this is a dot-product kernel and needs
// no transposing pack. Small images are grouped (G images side by side, each zero-padded to
// P8) so each dot runs over at least ~512 elements and the horizontal sums stay cheap. Per
// kDotKB-row block of K, those im2col rows are built for the group into L1, then all of dy (in L2)
// streams past them. Each thread accumulates into its own dw copy; copies are summed at the end.
inline void backward_weight_avx2(const ConvShape& s, const float* x, const float* dy, float* dw,
                                 float* db) {
  const int64_t K = s.C * s.KH * s.KW, P = s.OH() * s.OW(), KK = s.KH * s.KW;
  const int64_t P8 = avx2::round_up_vw(P);  // P rounded to whole vectors
  const int64_t G = std::max<int64_t>(1, std::min<int64_t>(s.N, (512 + P8 - 1) / P8));
  const int64_t groups = (s.N + G - 1) / G;
  const bool par = worth_parallel(s);
  const int threads = par ? max_threads() : 1;
  std::vector<float> parts(static_cast<size_t>(threads * (s.O * K + s.O)), 0.0f);
#pragma omp parallel num_threads(threads) if (par)
  {
    float* dwl = parts.data() + thread_num() * (s.O * K + s.O);
    float* dbl = dwl + s.O * K;
#pragma omp for schedule(static)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t n0 = g * G, gn = std::min(G, s.N - n0), L = gn * P8;
      float* dyb = scratch<float>(0, static_cast<size_t>(s.O * L));
      float* rows = scratch<float>(1, static_cast<size_t>(avx2::kDotKB * L));
      for (int64_t o = 0; o < s.O; ++o)
        for (int64_t i = 0; i < gn; ++i) {
          const float* src = dy + ((n0 + i) * s.O + o) * P;
          float* d = dyb + o * L + i * P8;
          std::memcpy(d, src, sizeof(float) * P);
          std::fill(d + P, d + P8, 0.0f);
          dbl[o] += sum_floats(src, P);
        }
      for (int64_t k0 = 0; k0 < K; k0 += avx2::kDotKB) {
        const int64_t kc = std::min<int64_t>(avx2::kDotKB, K - k0);
        for (int64_t r = 0; r < kc; ++r) {
          const int64_t k = k0 + r;
          for (int64_t i = 0; i < gn; ++i) {
            float* d = rows + r * L + i * P8;
            im2col_row(s, x + (n0 + i) * s.C * s.H * s.W + (k / KK) * s.H * s.W, (k % KK) / s.KW,
                       k % s.KW, d);
            std::fill(d + P, d + P8, 0.0f);
          }
        }
        avx2::dot_gemm(s.O, kc, L, dyb, L, rows, L, dwl + k0, K);
      }
    }
  }
  add_thread_partials(parts, threads, s.O * K, s.O, dw, db);
}


// ---------------------------------------------------------------------------------------
// Stride-1 "padded grid" path (implicit GEMM, AVX2 / AVX-512).
//
// Layout: each channel plane of the input is copied into a zero-filled buffer with row
// stride Ws = W + PW and PH zero rows above and below, image row ih starting at
// (PH + ih) * Ws + PW. One PW-wide zero gap between consecutive rows serves as the right
// padding of one row and the left padding of the next. Outputs are computed on a "grid" of
// OH rows of Ws columns: grid index q = oh * Ws + ow, of which columns ow >= OW are garbage
// (they wrap into the next row) and are never copied out. Then tap (c, kh, kw) reads, for
// every grid point, the buffer at q + off[c, kh, kw] with off = c * plane + kh * Ws + kw, so
// every im2col row is a contiguous slice of the buffer: no im2col, no packing of B, and the
// only waste is the PW garbage columns per row (1/(W+1) for 3x3 pad 1).
// Valid when PW <= KW - 1 (so OW <= Ws) and PH <= KH - 1 (so stacked images, below, need
// no more than the PH shared zero rows); the padding tap reads never leave the zero
// rows/gaps because Ws - W = PW covers every iw in [-PW, W + PW).
//
// For the weight gradient, G images are stacked vertically in one buffer, sharing PH zero
// rows between neighbours (image i starts at buffer row PH + i * (H + PH)), so one long
// reduction runs over several small images; the 3x3 kernel visits only real output pixels,
// and the general one (backward_weight_grid) has a dy grid that is zero at garbage points,
// so whatever they read (the neighbour image, the gap) contributes nothing.
// ---------------------------------------------------------------------------------------
struct PadGrid {
  int64_t C, H, W, PH, PW, KH, KW, G;  // input channels, image, padding, kernel, images stacked
  int64_t OH, OW, Ws, plane;           // stride-1 output, buffer row stride, floats per channel
  int64_t rows, Pv;                    // grid rows; grid length rounded up to whole vectors
  int64_t img_grid, img_buffer;        // grid / buffer floats per stacked image (one channel)
  int64_t pplane = 0;                  // no phase planes (see PhaseGrid)
  PadGrid(const ConvShape& s, int64_t G_)
      : C(s.C), H(s.H), W(s.W), PH(s.PH), PW(s.PW), KH(s.KH), KW(s.KW), G(G_) {
    OH = H + 2 * PH - KH + 1;
    OW = W + 2 * PW - KW + 1;
    Ws = W + PW;
    plane = (G * (H + PH) + PH) * Ws + PW;
    rows = (G - 1) * (H + PH) + OH;
    Pv = avx2::round_up_vw(rows * Ws);
    img_grid = img_buffer = (H + PH) * Ws;
  }
  // Buffer floats: the grid of the last channel's last tap reads up to Pv + KH*Ws past its
  // plane start; the tail is zero so those (discarded) reads stay finite.
  int64_t buffer_size() const { return C * plane + Pv + 2 * avx2::kVW; }
  // Grid index of output (image i of the stack, oh, ow).
  int64_t grid(int64_t i, int64_t oh, int64_t ow) const { return (i * (H + PH) + oh) * Ws + ow; }
  // Offset of tap (kh, kw) inside a channel plane, relative to the grid index.
  int64_t tap(int64_t kh, int64_t kw) const { return kh * Ws + kw; }
  // Copies gn <= G images (NCHW, image stride img_stride) into the buffer and zeroes every
  // other float of it (padding, gaps, unused image slots, the tail): each float is written
  // once, walking the buffer in order, instead of a memset of the whole buffer followed by
  // the copies (a second pass over it for every image of every stride-1 conv).
  void fill(const float* x, int64_t img_stride, int64_t gn, float* buf) const {
    for (int64_t c = 0; c < C; ++c) {
      float* bc = buf + c * plane;
      int64_t pos = 0;  // first float of the plane not written yet
      for (int64_t i = 0; i < gn; ++i)
        for (int64_t ih = 0; ih < H; ++ih) {
          const int64_t start = (PH + i * (H + PH) + ih) * Ws + PW;
          zero_row(bc + pos, start - pos);
          copy_row(bc + start, x + i * img_stride + (c * H + ih) * W, W);
          pos = start + W;
        }
      std::memset(bc + pos, 0, sizeof(float) * static_cast<size_t>(plane - pos));
    }
    std::memset(buf + C * plane, 0, sizeof(float) * static_cast<size_t>(buffer_size() - C * plane));
  }
};

// ---------------------------------------------------------------------------------------
// Strided "phase grid" path (any stride and padding; used for stride >= 2, e.g. ResNet's
// 3x3/2 and 1x1/2 transitions, and for the stride-1 pads the padded grid cannot take).
//
// A stride-S conv reads xp[S*oh + kh][S*ow + kw] (xp = the zero-padded input), so consecutive
// outputs read every S-th input: no tap is a contiguous slice of the image. Split xp into its
// S*S phases (space-to-depth): phase (a, b) holds xp[S*r + a][S*q + b]. Then
//     xp[S*oh + kh][S*ow + kw] = phase(kh % S, kw % S)[oh + kh / S][ow + kw / S],
// a stride-1 read of one phase plane. Each phase plane is stored explicitly zero-padded with
// Rb = OH + (KH-1)/S rows of Ws = OW + (KW-1)/S floats, so on the grid q = oh * Ws + ow tap
// (c, kh, kw) is again the contiguous slice at q + off[c, kh, kw]: the 3x3/2 conv becomes an
// implicit GEMM over the 9 taps (4 of them in phase (0,0), 2 in (0,1), 2 in (1,0), 1 in
// (1,1)) with the same kernels as stride 1, doing exactly the useful multiply-adds plus the
// (KW-1)/S garbage columns per row (1/17 of a 16-wide output). Phases a >= KH (or b >= KW)
// are never read and not stored (1x1/2 keeps only phase (0,0): the grid is the output).
// Images stack vertically (image i starts at phase row i * Rb), for the weight gradient.
// ---------------------------------------------------------------------------------------
struct PhaseGrid {
  int64_t C, H, W, SH, SW, PH, PW, KH, KW, G;
  int64_t OH, OW;
  int64_t NA, NB;      // phases stored per dimension: min(S, K)
  int64_t Rb, Ws;      // rows per image of a phase plane, row stride
  int64_t pplane;      // floats per phase plane (all G images)
  int64_t plane;       // floats per channel (NA * NB phase planes)
  int64_t rows, Pv;    // grid rows (G images), grid length rounded up to whole vectors
  int64_t img_grid, img_buffer;
  PhaseGrid(const ConvShape& s, int64_t G_)
      : C(s.C), H(s.H), W(s.W), SH(s.SH), SW(s.SW), PH(s.PH), PW(s.PW), KH(s.KH), KW(s.KW), G(G_) {
    OH = s.OH();
    OW = s.OW();
    NA = std::min(SH, KH);
    NB = std::min(SW, KW);
    Rb = OH + (KH - 1) / SH;
    Ws = OW + (KW - 1) / SW;
    pplane = G * Rb * Ws;
    plane = NA * NB * pplane;
    rows = (G - 1) * Rb + OH;
    Pv = avx2::round_up_vw(rows * Ws);
    img_grid = Rb * Ws;
    img_buffer = NA * NB * Rb * Ws;
  }
  // The last tap's grid of the last channel ends at most (KW-1)/S + kVW - 1 floats past
  // C * plane (its phase plane has (KH-1)/S spare rows per image); those reads only feed
  // discarded grid points but must stay inside the (zeroed) buffer.
  int64_t buffer_size() const { return C * plane + (KW - 1) / SW + 2 * avx2::kVW; }
  int64_t grid(int64_t i, int64_t oh, int64_t ow) const { return (i * Rb + oh) * Ws + ow; }
  int64_t tap(int64_t kh, int64_t kw) const {
    return ((kh % SH) * NB + kw % SW) * pplane + (kh / SH) * Ws + kw / SW;
  }
  // Zeroes the buffer, then deals each input row (c, ih) of gn <= G images out to its phase
  // row r = (ih + PH) / SH of phase a = (ih + PH) % SH, column iw going to phase
  // b = (iw + PW) % SW, column (iw + PW) / SW. Rows / columns no output reads (r >= Rb,
  // a >= NA, ...) are dropped.
  void fill(const float* x, int64_t img_stride, int64_t gn, float* buf) const {
    std::memset(buf, 0, sizeof(float) * buffer_size());
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < gn; ++i) {
        const float* xc = x + i * img_stride + c * H * W;
        float* bc = buf + c * plane + i * Rb * Ws;
        for (int64_t ih = 0, a = PH % SH, r = PH / SH; ih < H && r < Rb; ++ih) {
          if (a < NA) split_row(xc + ih * W, bc + a * NB * pplane + r * Ws);
          if (++a == SH) a = 0, ++r;
        }
      }
  }
  // d[b * pplane + q] = xr[iw] for iw + PW = SW * q + b, b < NB, q < Ws.
  void split_row(const float* xr, float* d) const {
    const int64_t iw_end = std::min(W, SW * Ws - PW);  // columns past that map to q >= Ws
    if (iw_end <= 0) return;
#if defined(__AVX512F__)
    if (SW == 2) {  // the stride-2 transitions: 32 columns per step, split by two permutes
      const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
      // Even input columns go to phase PW % 2, odd ones to the other; with KW = 1 only
      // phase 0 is stored.
      float* d0 = NB > 1 || PW % 2 == 0 ? d + (PW % 2) * pplane : nullptr;
      float* d1 = NB > 1 || PW % 2 == 1 ? d + ((PW + 1) % 2) * pplane : nullptr;
      int64_t iw = 0;
      for (; iw + 32 <= iw_end; iw += 32) {
        const __m512 lo = _mm512_loadu_ps(xr + iw), hi = _mm512_loadu_ps(xr + iw + 16);
        if (d0) _mm512_storeu_ps(d0 + (iw + PW) / 2, _mm512_permutex2var_ps(lo, ev, hi));
        if (d1) _mm512_storeu_ps(d1 + (iw + PW + 1) / 2, _mm512_permutex2var_ps(lo, od, hi));
      }
      if (iw < iw_end) {  // masked tail: never reads past the row, never writes q >= Ws
        const int64_t n = iw_end - iw;
        const __mmask16 m_lo = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1);
        const __mmask16 m_hi = static_cast<__mmask16>(n > 16 ? (1u << (n - 16)) - 1 : 0);
        const __m512 lo = _mm512_maskz_loadu_ps(m_lo, xr + iw), hi = _mm512_maskz_loadu_ps(m_hi, xr + iw + 16);
        if (d0)
          _mm512_mask_storeu_ps(d0 + (iw + PW) / 2, static_cast<__mmask16>((1u << ((n + 1) / 2)) - 1),
                                _mm512_permutex2var_ps(lo, ev, hi));
        if (d1 && n > 1)
          _mm512_mask_storeu_ps(d1 + (iw + PW + 1) / 2, static_cast<__mmask16>((1u << (n / 2)) - 1),
                                _mm512_permutex2var_ps(lo, od, hi));
      }
      return;
    }
#endif
    if (SW == 1) {
      copy_row(d + PW, xr, iw_end);
      return;
    }
    for (int64_t iw = 0; iw < iw_end; ++iw) {
      const int64_t b = (iw + PW) % SW;
      if (b < NB) d[b * pplane + (iw + PW) / SW] = xr[iw];
    }
  }
};

// Grid offsets of every im2col row k = (c, kh, kw) for either grid layout.
template <class Grid>
std::vector<int64_t> grid_offsets(const Grid& g) {
  std::vector<int64_t> off(static_cast<size_t>(g.C * g.KH * g.KW));
  for (int64_t c = 0, k = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) off[k++] = c * g.plane + g.tap(kh, kw);
  return off;
}

inline bool padded_grid_ok(const ConvShape& s) {
  return s.SH == 1 && s.SW == 1 && s.PH >= 0 && s.PW >= 0 && s.PH <= s.KH - 1 && s.PW <= s.KW - 1;
}
inline bool phase_grid_ok(const ConvShape& s) { return s.PH >= 0 && s.PW >= 0 && s.SH >= 1 && s.SW >= 1; }

// K block for the implicit GEMM: B is read in place (no packed panel to keep in L1), so a
// longer block than kBlockK halves the C-tile reloads; A's block (M x kb) stays in L2.
constexpr int64_t kIgBlockK = 512;

// out_n[M x OH x OW] (= or +=) conv of each image with packed weights ap (M x K, pack_a_ig
// layout, K in (c, kh, kw) order of g), one image per iteration. bias (may be null) only
// when !add. Used for the forward pass (either grid) and, with flipped weights on the padded
// grid, the stride-1 input gradient.
template <class Grid>
void conv_grid_avx2(const Grid& g, int64_t N, int64_t M, const float* in, const float* ap, const float* bias,
                    float* out, bool add) {
  const int64_t K = g.C * g.KH * g.KW, Mp = (M + avx2::kIgMR - 1) / avx2::kIgMR * avx2::kIgMR;
  const int64_t in_stride = g.C * g.H * g.W, out_plane = g.OH * g.OW;
  const std::vector<int64_t> off = grid_offsets(g);
  const int64_t kb = even_block(K, kIgBlockK);
  const bool par = N > 1 && N * 2 * M * K * out_plane > (int64_t(1) << 21);
#pragma omp parallel for schedule(static) if (par)
  for (int64_t n = 0; n < N; ++n) {
    float* buf = scratch<float>(0, static_cast<size_t>(g.buffer_size()));
    float* yg = scratch<float>(1, static_cast<size_t>(Mp * g.Pv));  // grid-layout output
    g.fill(in + n * in_stride, in_stride, 1, buf);
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
      const int64_t kc = std::min(kb, K - k0);
      avx2::ig_gemm(M, g.Pv, kc, ap + k0 * avx2::kIgMR, avx2::kIgMR * K, buf, off.data() + k0, yg, g.Pv,
                    /*accumulate=*/k0 > 0);
    }
    float* on = out + n * M * out_plane;
    for (int64_t m = 0; m < M; ++m) {
      const float b = bias ? bias[m] : 0.0f;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const float* src = yg + m * g.Pv + oh * g.Ws;
        float* dst = on + (m * g.OH + oh) * g.OW;
        if (add)
          for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] += src[ow];
        else
          for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] = src[ow] + b;
      }
    }
  }
}

#if defined(__AVX512F__)
// Widest output rows that take the pixel-broadcast tile (a multiple of 8); wider rows waste
// at most 1/17 of the pixel-vector grid, which the 8x48 tile then more than makes up for.
constexpr int64_t kPbMaxW = 8;

// Small outputs (rows of 8): the pixel-broadcast kernel avx2::pb_kernel instead of ig_gemm,
// on the same grid buffer and offsets, so no grid point is wasted (see pb_kernel). Each
// 8-pixel x 32-channel tile is transposed in registers into the NCHW output.
inline bool use_pb(int64_t OW) { return OW > 0 && OW % avx2::kPbMR == 0 && OW <= kPbMaxW; }

// 3x3 convs on the padded grid with rows of whole 8-pixel tiles and at least 16 output
// channels (a full vector) take the padding-skipping tile avx2::pb3_kernel at any width: it
// does only the real multiply-adds, which beats the 8x48 pixel-vector tile also on 16- and
// 32-wide outputs (bench_kernels, docs/performance.md).
template <class Grid>
bool use_pb3(const Grid& g, int64_t M) {
  return std::is_same<Grid, PadGrid>::value && g.KH == 3 && g.KW == 3 && g.OW % avx2::kPbMR == 0 && M >= avx2::kVW;
}

template <class Grid>
void conv_grid_pb(const Grid& g, int64_t N, int64_t M, const float* in, const float* wp, const float* bias,
                  float* out, bool add) {
  const int64_t K = g.C * g.KH * g.KW, in_stride = g.C * g.H * g.W, P = g.OH * g.OW;
  const std::vector<int64_t> off = grid_offsets(g);
  const bool pb3 = use_pb3(g, M);
  const bool par = N > 1 && N * 2 * M * K * P > (int64_t(1) << 21);
#pragma omp parallel for schedule(static) if (par)
  for (int64_t n = 0; n < N; ++n) {
    float* buf = scratch<float>(0, static_cast<size_t>(g.buffer_size()));
    g.fill(in + n * in_stride, in_stride, 1, buf);
    float* on = out + n * M * P;
    for (int64_t j0 = 0; j0 < M; j0 += avx2::kPbNW) {
      const int64_t w = std::min(avx2::kPbNW, avx2::round_up_vw(M - j0)), mc = std::min(w, M - j0);
      const float* wpan = wp + j0 * K;
      const float* bj = bias ? bias + j0 : nullptr;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        // Kernel rows that read image rows (not padding) for this output row.
        const int64_t kh0 = std::max<int64_t>(0, g.PH - oh), kh1 = std::min<int64_t>(g.KH, g.H + g.PH - oh);
        for (int64_t ow0 = 0; ow0 < g.OW; ow0 += avx2::kPbMR) {
          const float* X = buf + g.grid(0, oh, ow0);
          float* Y = on + j0 * P + oh * g.OW + ow0;
          if (pb3) {
            // Pixel ow0 at tap kw = 0 reads column ow0 - PW; the tile's last pixel at kw = 2
            // reads column ow0 + 7 + 2 - PW.
            const bool l = ow0 < g.PW, r = ow0 + avx2::kPbMR + 1 - g.PW >= g.W;
            if (w == avx2::kPbNW) avx2::pb3_tile<2>(l, r, g.C, kh0, kh1, g.plane, g.Ws, X, wpan, Y, P, mc, bj, add);
            else avx2::pb3_tile<1>(l, r, g.C, kh0, kh1, g.plane, g.Ws, X, wpan, Y, P, mc, bj, add);
          } else if (w == avx2::kPbNW) {
            avx2::pb_kernel<2>(K, X, off.data(), wpan, Y, P, mc, bj, add);
          } else {
            avx2::pb_kernel<1>(K, X, off.data(), wpan, Y, P, mc, bj, add);
          }
        }
      }
    }
  }
}
#endif

// Packs the weights (element (m, k) = at(m, k), K in the grid's (c, kh, kw) order) for the
// kernel conv_grid picks, and runs it.
template <class Grid, class At>
void conv_grid(const Grid& g, int64_t N, int64_t M, const float* in, At at, const float* bias, float* out,
               bool add) {
  const int64_t K = g.C * g.KH * g.KW;
#if defined(__AVX512F__)
  if (use_pb(g.OW) || use_pb3(g, M)) {
    std::vector<float> wp(static_cast<size_t>(avx2::packed_pb_size(M, K)));
    avx2::pack_pb(M, K, at, wp.data());
    conv_grid_pb(g, N, M, in, wp.data(), bias, out, add);
    return;
  }
#endif
  std::vector<float> ap(static_cast<size_t>(avx2::packed_a_ig_size(M, K)));
  avx2::pack_a_ig(M, K, at, ap.data());
  conv_grid_avx2(g, N, M, in, ap.data(), bias, out, add);
}

template <class Grid>
void forward_grid(const ConvShape& s, const Grid& g, const float* x, const float* w, const float* bias, float* y) {
  const int64_t K = s.C * s.KH * s.KW;
  conv_grid(g, s.N, s.O, x, [&](int64_t o, int64_t k) { return w[o * K + k]; }, bias, y, /*add=*/false);
}

// Stride 1: dx = "full" correlation of dy with the spatially flipped, transposed weights,
// i.e. a forward conv with input dy (O channels, OH x OW), weights w'[c][o][a][b] =
// w[o][c][KH-1-a][KW-1-b] and padding (KH-1-PH, KW-1-PW), whose output is exactly H x W.
// No dcols, no col2im scatter. Every dx element of an image is written by that image's
// iteration, so with add = false dx needs no zero-fill first.
inline void backward_input_s1(const ConvShape& s, const float* dy, const float* w, float* dx, bool add) {
  ConvShape t{s.N, s.O, s.OH(), s.OW(), s.C, s.KH, s.KW};
  t.PH = s.KH - 1 - s.PH;
  t.PW = s.KW - 1 - s.PW;
  const PadGrid g(t, 1);
  // wt[c][o][a][b] = w[o][c][KH-1-a][KW-1-b], built in one pass over w so that packing reads
  // a plain matrix (an accessor with three divisions per element was ~5% of a 64->64 8x8 pass).
  const int64_t KK = s.KH * s.KW, K = s.O * KK;
  std::vector<float> wt(static_cast<size_t>(s.C * K));
  for (int64_t o = 0; o < s.O; ++o)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t t = 0; t < KK; ++t) wt[c * K + o * KK + (KK - 1 - t)] = w[(o * s.C + c) * KK + t];
  conv_grid(g, s.N, s.C, dy, [&](int64_t c, int64_t k) { return wt[c * K + k]; }, nullptr, dx, add);
}

// Strided input gradient by phases of dx. Write ih + PH = S*i + a (a < S). The taps that
// reach input row ih are kh = a + S*t with output row oh = i - t, so
//     dx[c][S*i + a - PH][S*j + b - PW] = sum_{o,t,u} dy[o][i - t][j - u] * w[o][c][a + S*t][b + S*u]
// is, for each phase (a, b) of dx, a stride-1 "full" correlation of dy with the sub-kernel
// w[., ., a::S, b::S] (2x2, 2x1, 1x2 and 1x1 for 3x3/2): four implicit GEMMs on one
// zero-padded copy of dy, whose outputs are scattered (added) into every S-th pixel of dx.
// Together they do exactly the conv's multiply-adds, with no col2im.
//
// dy layout: O planes of BR rows x Ws floats, dy row r at buffer row TT + r, column q at
// UU + q, zeros elsewhere (TT = (KH-1)/S rows and UU = (KW-1)/S columns of leading zeros:
// the largest t and u). Phase (a, b) computes i in [i0, i0 + R), j in [j0, j0 + Cn) on the
// grid (i - i0) * Ws + (j - j0); tap (o, t, u) reads q + o*plane + (i0 - t + TT)*Ws + (j0 - u + UU).
// Reads of columns j - u >= OW run into the zero columns right of dy, or wrap into the next
// row's UU leading zeros; Ws >= max(OW + UU, j_max + 1) makes both hold.
inline void backward_input_phase(const ConvShape& s, const float* dy, const float* w, float* dx) {
  const int64_t OH = s.OH(), OW = s.OW(), TT = (s.KH - 1) / s.SH, UU = (s.KW - 1) / s.SW;
  struct Phase {
    int64_t a, b, i0, R, j0, Cn, Ta, Ub, K, Pv;
    bool pb;  // pixel-broadcast tiles (rows of Cn = 8 pixels) instead of the pixel-vector grid
    std::vector<int64_t> off;
    std::vector<float> ap;
  };
  std::vector<Phase> ph;
  int64_t imax = OH, Ws = OW + UU;
  for (int64_t a = 0; a < std::min(s.SH, s.KH); ++a)
    for (int64_t b = 0; b < std::min(s.SW, s.KW); ++b) {
      Phase p{};
      p.a = a, p.b = b;
      int64_t i1, j1;  // rows i / columns j whose input pixel lies inside the image
      valid_range(s.H, s.H + s.PH + 1, s.SH, s.PH, a, p.i0, i1);
      valid_range(s.W, s.W + s.PW + 1, s.SW, s.PW, b, p.j0, j1);
      p.R = i1 - p.i0, p.Cn = j1 - p.j0;
      if (p.R <= 0 || p.Cn <= 0) continue;
      p.Ta = (s.KH - a + s.SH - 1) / s.SH;
      p.Ub = (s.KW - b + s.SW - 1) / s.SW;
      p.K = s.O * p.Ta * p.Ub;
      imax = std::max(imax, i1);
      Ws = std::max(Ws, j1 + 1);
      ph.push_back(std::move(p));
    }
  const int64_t BR = TT + imax + 1, plane = BR * Ws;  // +1: the wrap past the last row
  int64_t buf_size = s.O * plane, yg_size = 0;
  const int64_t Cp = (s.C + avx2::kIgMR - 1) / avx2::kIgMR * avx2::kIgMR;
  for (Phase& p : ph) {
    p.Pv = avx2::round_up_vw(p.R * Ws);
    p.off.resize(static_cast<size_t>(p.K));
    for (int64_t o = 0, k = 0; o < s.O; ++o)
      for (int64_t t = 0; t < p.Ta; ++t)
        for (int64_t u = 0; u < p.Ub; ++u) p.off[k++] = o * plane + (p.i0 - t + TT) * Ws + (p.j0 - u + UU);
    buf_size = std::max(buf_size, p.off.back() + p.Pv);  // last channel's grid, past the planes
    yg_size = std::max(yg_size, Cp * p.Pv);
    const int64_t TU = p.Ta * p.Ub;
    const auto at = [&](int64_t c, int64_t k) {
      const int64_t o = k / TU, t = (k % TU) / p.Ub, u = k % p.Ub;
      return w[((o * s.C + c) * s.KH + p.a + s.SH * t) * s.KW + p.b + s.SW * u];
    };
    p.pb = false;
#if defined(__AVX512F__)
    p.pb = use_pb(p.Cn);
    if (p.pb) {  // output [c][r * Cn + q], compact
      p.ap.resize(static_cast<size_t>(avx2::packed_pb_size(s.C, p.K)));
      avx2::pack_pb(s.C, p.K, at, p.ap.data());
      continue;
    }
#endif
    p.ap.resize(static_cast<size_t>(avx2::packed_a_ig_size(s.C, p.K)));
    avx2::pack_a_ig(s.C, p.K, at, p.ap.data());
  }
  buf_size += avx2::kVW;
  const int64_t P = OH * OW, HW = s.H * s.W;
#pragma omp parallel for schedule(static) if (worth_parallel(s))
  for (int64_t n = 0; n < s.N; ++n) {
    float* buf = scratch<float>(0, static_cast<size_t>(buf_size));
    float* yg = scratch<float>(1, static_cast<size_t>(yg_size));
    std::memset(buf, 0, sizeof(float) * buf_size);
    for (int64_t o = 0; o < s.O; ++o)
      for (int64_t r = 0; r < OH; ++r)
        copy_row(buf + o * plane + (TT + r) * Ws + UU, dy + (n * s.O + o) * P + r * OW, OW);
    float* dxn = dx + n * s.C * HW;
    for (const Phase& p : ph) {
      // Phase result in yg: channel c, row r, column q at yg[c * cs + r * rs + q].
      int64_t cs = p.Pv, rs = Ws;
#if defined(__AVX512F__)
      if (p.pb) {
        cs = p.R * p.Cn, rs = p.Cn;
        for (int64_t j0 = 0; j0 < s.C; j0 += avx2::kPbNW) {
          const int64_t wd = std::min(avx2::kPbNW, avx2::round_up_vw(s.C - j0)), mc = std::min(wd, s.C - j0);
          for (int64_t r = 0; r < p.R; ++r)
            for (int64_t q0 = 0; q0 < p.Cn; q0 += avx2::kPbMR) {
              const float* X = buf + r * Ws + q0;
              float* Y = yg + j0 * cs + r * rs + q0;
              if (wd == avx2::kPbNW) avx2::pb_kernel<2>(p.K, X, p.off.data(), p.ap.data() + j0 * p.K, Y, cs, mc, nullptr, false);
              else avx2::pb_kernel<1>(p.K, X, p.off.data(), p.ap.data() + j0 * p.K, Y, cs, mc, nullptr, false);
            }
        }
      }
#endif
      if (!p.pb) {
        const int64_t kb = even_block(p.K, kIgBlockK);
        for (int64_t k0 = 0; k0 < p.K; k0 += kb)
          avx2::ig_gemm(s.C, p.Pv, std::min(kb, p.K - k0), p.ap.data() + k0 * avx2::kIgMR, avx2::kIgMR * p.K, buf,
                        p.off.data() + k0, yg, p.Pv, /*accumulate=*/k0 > 0);
      }
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t r = 0; r < p.R; ++r) {
          const float* src = yg + c * cs + r * rs;
          float* d = dxn + c * HW + (s.SH * (p.i0 + r) + p.a - s.PH) * s.W + s.SW * p.j0 + p.b - s.PW;
          for (int64_t q = 0; q < p.Cn; ++q) d[s.SW * q] += src[q];
        }
    }
  }
}

// Images per weight-gradient group: a grid of >= ~`target` points amortises the per-call
// costs of the reduction kernels, while the stacked x buffer stays under ~1 MiB so it is
// re-read from L2 for every output-channel panel.
template <class Grid>
int64_t wg_group(const ConvShape& s, const Grid& one, int64_t target) {
  int64_t G = (target + one.img_grid - 1) / one.img_grid;
  G = std::min(G, std::max<int64_t>(1, (int64_t(1) << 18) / (s.C * one.img_buffer)));
  return std::max<int64_t>(1, std::min(G, s.N));
}

// 3x3 weight gradient on either grid with the outer-product kernel avx2::wg3x3_kernel.
// dy is transposed per group of G images into panels of kWgNW output channels, [pixel][channel]
// inside a panel (pixels of the group in NCHW order, so only real outputs: the kernel walks
// the grid row by row and skips its padding columns); each thread accumulates dw transposed
// ([k][o], row stride Op) into its own slice, and the slices are transposed back and added in
// thread order.
template <int S, class Grid>
void backward_weight_3x3(const ConvShape& s, const float* x, const float* dy, float* dw, float* db) {
  const int64_t K = s.C * 9, OH = s.OH(), OW = s.OW(), P = OH * OW;
  const int64_t Op = avx2::round_up_vw(s.O);
  const int64_t G = wg_group(s, Grid(s, 1), 512);
  const Grid g(s, G);
  const int64_t groups = (s.N + G - 1) / G;
  std::vector<int64_t> rowoff(static_cast<size_t>(G * OH));  // grid index of each output row
  for (int64_t i = 0; i < G; ++i)
    for (int64_t oh = 0; oh < OH; ++oh) rowoff[i * OH + oh] = g.grid(i, oh, 0);
  const bool par = worth_parallel(s) && groups > 1;
  const int threads = par ? max_threads() : 1;
  const int64_t part = K * Op + s.O;
  std::vector<float> parts(static_cast<size_t>(threads * part), 0.0f);
#pragma omp parallel num_threads(threads) if (par)
  {
    float* dwt = parts.data() + thread_num() * part;  // [K][Op]
    float* dbl = dwt + K * Op;
#pragma omp for schedule(static)
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t n0 = gi * G, gn = std::min(G, s.N - n0), L = gn * P;
      float* buf = scratch<float>(0, static_cast<size_t>(g.buffer_size()));
      float* dyp = scratch<float>(1, static_cast<size_t>(Op * G * P));  // panel j0 at dyp + j0 * L
      g.fill(x + n0 * s.C * s.H * s.W, s.C * s.H * s.W, gn, buf);
      // Transpose dy into the panels ([pixel][channel], written sequentially).
      for (int64_t j0 = 0; j0 < s.O; j0 += avx2::kWgNW) {
        const int64_t wj = std::min(avx2::kWgNW, Op - j0), oc = std::min(avx2::kWgNW, s.O - j0);
        for (int64_t i = 0; i < gn; ++i)
          avx2::transpose_panel(dy + ((n0 + i) * s.O + j0) * P, P, oc, wj, dyp + j0 * L + i * P * wj);
      }
      if (db)  // a full pass over dy: only for convolutions with a bias
        for (int64_t o = 0; o < s.O; ++o) {
          float acc = 0.0f;
          for (int64_t i = 0; i < gn; ++i) acc += sum_floats(dy + ((n0 + i) * s.O + o) * P, P);
          dbl[o] += acc;
        }
      const int64_t nrows = gn * OH;
      // Stride 1, padding 1 (every stride-1 3x3 layer of ResNet-20 and VGG-Small): the
      // kernel that skips the products with zero padding.
      const bool pad1 = S == 1 && s.PH == 1 && s.PW == 1;
      const int64_t* ro = rowoff.data();
      for (int64_t j0 = 0; j0 < Op; j0 += avx2::kWgNW) {
        const int64_t wj = std::min(avx2::kWgNW, Op - j0);
        const float* dpan = dyp + j0 * L;
        for (int64_t c = 0; c < s.C;) {
          const float* xc = buf + c * g.plane;
          float* cc = dwt + c * 9 * Op + j0;
          if (wj == 2 * avx2::kVW) {
            if (pad1) avx2::wg3x3_pad1_kernel<1, 2>(nrows, OH, OW, ro, xc, g.plane, g.Ws, dpan, wj, cc, Op);
            else avx2::wg3x3_kernel<S, 1, 2>(nrows, OW, ro, xc, g.plane, g.pplane, g.Ws, dpan, wj, cc, Op);
            c += 1;
          } else if (avx2::kVW == 16 && c + 1 < s.C) {  // 18 accumulators need 32 registers
            if (pad1) avx2::wg3x3_pad1_kernel<2, 1>(nrows, OH, OW, ro, xc, g.plane, g.Ws, dpan, wj, cc, Op);
            else avx2::wg3x3_kernel<S, 2, 1>(nrows, OW, ro, xc, g.plane, g.pplane, g.Ws, dpan, wj, cc, Op);
            c += 2;
          } else {
            if (pad1) avx2::wg3x3_pad1_kernel<1, 1>(nrows, OH, OW, ro, xc, g.plane, g.Ws, dpan, wj, cc, Op);
            else avx2::wg3x3_kernel<S, 1, 1>(nrows, OW, ro, xc, g.plane, g.pplane, g.Ws, dpan, wj, cc, Op);
            c += 1;
          }
        }
      }
    }
  }
  for (int t = 0; t < threads; ++t) {
    const float* p = parts.data() + t * part;
    for (int64_t o = 0; o < s.O; ++o)
      for (int64_t k = 0; k < K; ++k) dw[o * K + k] += p[k * Op + o];
    if (db)
      for (int64_t o = 0; o < s.O; ++o) db[o] += p[K * Op + o];
  }
}

// dw[O x K] += sum over images of dy_grid[O x L] · xbuf-rows[K x L]^T, the rows being slices
// of the stacked grid buffer (either layout). Groups of G images go to threads statically;
// each thread accumulates into its own slice of `parts`, and the slices are summed in thread
// order afterwards, so the result depends only on the thread count, not on scheduling.
template <class Grid>
void backward_weight_grid(const ConvShape& s, const float* x, const float* dy, float* dw, float* db) {
  const int64_t K = s.C * s.KH * s.KW, OH = s.OH(), OW = s.OW(), P = OH * OW;
  // Stack enough images for a reduction of ~1000 floats: the 4 x kDotKB horizontal sums at
  // the end of each dot block then cost a few percent.
  const int64_t G = wg_group(s, Grid(s, 1), 1024);
  const Grid g(s, G);
  const int64_t L = g.Pv, groups = (s.N + G - 1) / G;
  const std::vector<int64_t> off = grid_offsets(g);
  // Rows of dy per pass over K: ~512 KiB of dy grid, so it stays in L2 while the x buffer's
  // rows are swept (kDotKB taps at a time, from L1).
  const int64_t ob = std::max<int64_t>(4, std::min<int64_t>(s.O, (131072 / L) / 4 * 4));
  const bool par = worth_parallel(s) && groups > 1;
  const int threads = par ? max_threads() : 1;
  std::vector<float> parts(static_cast<size_t>(threads * (s.O * K + s.O)), 0.0f);
#pragma omp parallel num_threads(threads) if (par)
  {
    float* dwl = parts.data() + thread_num() * (s.O * K + s.O);
    float* dbl = dwl + s.O * K;
#pragma omp for schedule(static)
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t n0 = gi * G, gn = std::min(G, s.N - n0);
      float* buf = scratch<float>(0, static_cast<size_t>(g.buffer_size()));
      float* dyg = scratch<float>(1, static_cast<size_t>(s.O * L));
      g.fill(x + n0 * s.C * s.H * s.W, s.C * s.H * s.W, gn, buf);
      std::memset(dyg, 0, sizeof(float) * s.O * L);
      for (int64_t o = 0; o < s.O; ++o) {
        float acc = 0.0f;
        for (int64_t i = 0; i < gn; ++i) {
          const float* src = dy + ((n0 + i) * s.O + o) * P;
          for (int64_t oh = 0; oh < OH; ++oh)
            copy_row(dyg + o * L + g.grid(i, oh, 0), src + oh * OW, OW);
          acc += sum_floats(src, P);
        }
        dbl[o] += acc;
      }
      for (int64_t o0 = 0; o0 < s.O; o0 += ob) {
        const int64_t oc = std::min(ob, s.O - o0);
        avx2::dot_gemm_off(oc, K, L, dyg + o0 * L, L, buf, off.data(), dwl + o0 * K, K);
      }
    }
  }
  add_thread_partials(parts, threads, s.O * K, s.O, dw, db);
}

#endif  // LOWBIT_HAVE_AVX2_FMA

template <class T>
bool empty_output(const ConvShape& s) {
  return s.N <= 0 || s.O <= 0 || s.C <= 0 || s.OH() <= 0 || s.OW() <= 0;
}

}  // namespace conv_detail

// ---------------------------------------------------------------------------------------
// Public entry points: float goes to the AVX2 path when compiled in, the rest to Eigen.
// ---------------------------------------------------------------------------------------

// y[N, O, OH, OW] = conv(x, w) + bias (bias may be null: no bias). Assigns: every element of
// y is written and none is read, so y may be uninitialised (ops/conv.hpp passes a
// Tensor::empty). With C, KH or KW = 0 the sum is empty and y is the bias (or 0).
template <class T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t P = s.OH() * s.OW();
  if (s.N <= 0 || s.O <= 0 || s.OH() <= 0 || s.OW() <= 0) return;
  if (s.C <= 0 || s.KH <= 0 || s.KW <= 0) {  // empty sum: y is the bias
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t o = 0; o < s.O; ++o) std::fill(y + (n * s.O + o) * P, y + (n * s.O + o + 1) * P, bias ? bias[o] : T(0));
    return;
  }
#ifdef LOWBIT_HAVE_AVX2_FMA
  if constexpr (std::is_same<T, float>::value) {
    if (conv_detail::padded_grid_ok(s))
      conv_detail::forward_grid(s, conv_detail::PadGrid(s, 1), x, w, bias, y);
    else if (conv_detail::phase_grid_ok(s))
      conv_detail::forward_grid(s, conv_detail::PhaseGrid(s, 1), x, w, bias, y);
    else conv_detail::forward_avx2(s, x, w, bias, y);
    return;
  }
#endif
  conv_detail::forward_portable(s, x, w, bias, y);
}

// The input gradient dx[N, C, H, W] of y = conv(x, w), given dy[N, O, OH, OW].
//   accumulate = true (the default): adds it into dx, which must hold valid values (the
//     tests and benchmarks start from zeros or a prior gradient).
//   accumulate = false: assigns it; every element of dx is written and none is read, so dx
//     may be uninitialised. ops/conv.hpp (detail::conv2d_grads) calls it this way on a
//     Tensor::empty, which saves an activation-sized memset and a read per conv per step.
//     The stride-1 padded-grid path writes every element once; the other paths zero dx
//     here and then add. With an empty sum (no outputs, KH or KW = 0) dx becomes zeros.
template <class T>
void conv2d_backward_input(const ConvShape& s, const T* dy, const T* w, T* dx, bool accumulate = true) {
  const int64_t dx_size = s.N * s.C * s.H * s.W;
  const bool trivial = conv_detail::empty_output<T>(s) || s.KH <= 0 || s.KW <= 0;
#ifdef LOWBIT_HAVE_AVX2_FMA
  if constexpr (std::is_same<T, float>::value) {
    if (!trivial && conv_detail::padded_grid_ok(s)) {
      conv_detail::backward_input_s1(s, dy, w, dx, accumulate);
      return;
    }
  }
#endif
  if (!accumulate && dx_size > 0) std::fill(dx, dx + dx_size, T(0));
  if (trivial) return;
#ifdef LOWBIT_HAVE_AVX2_FMA
  if constexpr (std::is_same<T, float>::value) {
    if (conv_detail::phase_grid_ok(s)) conv_detail::backward_input_phase(s, dy, w, dx);
    else conv_detail::backward_input_avx2(s, dy, w, dx);
    return;
  }
#endif
  conv_detail::backward_input_portable(s, dy, w, dx);
}

// The weight and bias gradients of y = conv(x, w) + b, given x and dy. Adds: dw[O, C, KH, KW]
// += sum over images and output pixels of dy * the input patch, and db[O] += sum of dy over
// images and pixels (skipped when db is null). Nothing is ever assigned, so the caller zeroes
// dw and db first when it wants the gradient itself: ops/conv.hpp (detail::conv2d_grads)
// passes Tensor::zeros for both. Per-thread partials are added in thread order (bit-identical
// from run to run for a given thread count).
template <class T>
void conv2d_backward_weight(const ConvShape& s, const T* x, const T* dy, T* dw, T* db) {
  if (s.N <= 0 || s.O <= 0 || s.OH() <= 0 || s.OW() <= 0) return;
  if (s.C <= 0 || s.KH <= 0 || s.KW <= 0) {  // no weights; db still gets its sum
    if (db) conv2d_backward_weight_reference(s, static_cast<const T*>(nullptr), dy, dw, db);
    return;
  }
#ifdef LOWBIT_HAVE_AVX2_FMA
  if constexpr (std::is_same<T, float>::value) {
    namespace cd = conv_detail;
    const bool k3 = s.KH == 3 && s.KW == 3;
    if (cd::padded_grid_ok(s)) {
      if (k3) cd::backward_weight_3x3<1, cd::PadGrid>(s, x, dy, dw, db);
      else cd::backward_weight_grid<cd::PadGrid>(s, x, dy, dw, db);
    } else if (cd::phase_grid_ok(s)) {
      if (k3 && s.SH == 2 && s.SW == 2) cd::backward_weight_3x3<2, cd::PhaseGrid>(s, x, dy, dw, db);
      else cd::backward_weight_grid<cd::PhaseGrid>(s, x, dy, dw, db);
    } else cd::backward_weight_avx2(s, x, dy, dw, db);
    return;
  }
#endif
  conv_detail::backward_weight_portable(s, x, dy, dw, db);
}

}  // namespace kernels
}  // namespace lowbit
