// 2-D convolution kernels on raw NCHW buffers (no autograd; ops/conv.hpp builds on these).
//
//   conv2d_forward          y  = conv(x, w) + bias          (assigns y)
//   conv2d_backward_input   dx += conv_transpose(dy, w)     (adds)
//   conv2d_backward_weight  dw += sum x-patch * dy, db += sum dy   (adds)
//
// Each has a *_reference twin (textbook loops, double accumulation) that the tests compare
// against. Paths:
//   * float with AVX2+FMA enabled by the compiler, stride 1 with pad <= kernel-1 (every 3x3
//     layer of ResNet-20 / VGG-Small but the stride-2 transitions): the "padded grid" path.
//     Each image is copied into a zero-padded layout where every im2col row is a contiguous
//     slice, so the forward pass is an implicit GEMM reading B in place (8x48 AVX-512 tile);
//     the input gradient is the same forward conv on dy with flipped, transposed weights (no
//     col2im); the 3x3 weight gradient is an outer-product kernel over transposed dy. See
//     the PadGrid comment below.
//   * other float convs with AVX2+FMA: per-image GEMMs on our own packed 4x24 / 4x48
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

inline int thread_num() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

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
          float acc = 0.0f;
          for (int64_t p = 0; p < P; ++p) acc += src[p];
          dbl[o] += acc;
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
// Valid when PW <= KW - 1 (so OW <= Ws) and PH <= KH - 1 (see backward_weight_s1); the
// padding tap reads never leave the zero rows/gaps because Ws - W = PW covers every iw in
// [-PW, W + PW).
//
// For the weight gradient, G images are stacked vertically in one buffer, sharing PH zero
// rows between neighbours (image i starts at buffer row PH + i * (H + PH)), so one long
// reduction runs over several small images; the dy grid is zero at garbage points, so
// whatever they read (the neighbour image, the gap) contributes nothing.
// ---------------------------------------------------------------------------------------
struct PadGrid {
  int64_t C, H, W, PH, PW, KH, KW, G;  // input channels, image, padding, kernel, images stacked
  int64_t OH, OW, Ws, plane;           // stride-1 output, buffer row stride, floats per channel
  int64_t rows, Pv;                    // grid rows; grid length rounded up to whole vectors
  PadGrid(int64_t C_, int64_t H_, int64_t W_, int64_t PH_, int64_t PW_, int64_t KH_, int64_t KW_, int64_t G_)
      : C(C_), H(H_), W(W_), PH(PH_), PW(PW_), KH(KH_), KW(KW_), G(G_) {
    OH = H + 2 * PH - KH + 1;
    OW = W + 2 * PW - KW + 1;
    Ws = W + PW;
    plane = (G * (H + PH) + PH) * Ws + PW;
    rows = (G - 1) * (H + PH) + OH;
    Pv = avx2::round_up_vw(rows * Ws);
  }
  // Buffer floats: the grid of the last channel's last tap reads up to Pv + KH*Ws past its
  // plane start; the tail is zero so those (discarded) reads stay finite.
  int64_t buffer_size() const { return C * plane + Pv + 2 * avx2::kVW; }
  // Grid index of output (image i of the stack, oh, ow).
  int64_t grid(int64_t i, int64_t oh, int64_t ow) const { return (i * (H + PH) + oh) * Ws + ow; }
  std::vector<int64_t> offsets() const {
    std::vector<int64_t> off(static_cast<size_t>(C * KH * KW));
    for (int64_t c = 0, k = 0; c < C; ++c)
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw) off[k++] = c * plane + kh * Ws + kw;
    return off;
  }
  // Copies gn <= G images (NCHW, image stride img_stride) into the zeroed buffer.
  void fill(const float* x, int64_t img_stride, int64_t gn, float* buf) const {
    std::memset(buf, 0, sizeof(float) * buffer_size());
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < gn; ++i)
        for (int64_t ih = 0; ih < H; ++ih)
          std::memcpy(buf + c * plane + (PH + i * (H + PH) + ih) * Ws + PW, x + i * img_stride + (c * H + ih) * W,
                      sizeof(float) * W);
  }
};

inline bool padded_grid_ok(const ConvShape& s) {
  return s.SH == 1 && s.SW == 1 && s.PH >= 0 && s.PW >= 0 && s.PH <= s.KH - 1 && s.PW <= s.KW - 1;
}

// K block for the implicit GEMM: B is read in place (no packed panel to keep in L1), so a
// longer block than kBlockK halves the C-tile reloads; A's block (M x kb) stays in L2.
constexpr int64_t kIgBlockK = 512;

// out_n[M x OH x OW] (= or +=) conv of each image with packed weights ap (M x K, pack_a_ig
// layout, K in (c, kh, kw) order of g), one image per iteration. bias (may be null) only
// when !add. Used for the forward pass and, with flipped weights, the input gradient.
inline void conv_s1_avx2(const PadGrid& g, int64_t N, int64_t M, const float* in, const float* ap,
                         const float* bias, float* out, bool add) {
  const int64_t K = g.C * g.KH * g.KW, Mp = (M + avx2::kIgMR - 1) / avx2::kIgMR * avx2::kIgMR;
  const int64_t in_stride = g.C * g.H * g.W, out_plane = g.OH * g.OW;
  const std::vector<int64_t> off = g.offsets();
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

inline void forward_s1(const ConvShape& s, const float* x, const float* w, const float* bias, float* y) {
  const PadGrid g(s.C, s.H, s.W, s.PH, s.PW, s.KH, s.KW, 1);
  const int64_t K = s.C * s.KH * s.KW;
  std::vector<float> ap(static_cast<size_t>(avx2::packed_a_ig_size(s.O, K)));
  avx2::pack_a_ig(s.O, K, [&](int64_t o, int64_t k) { return w[o * K + k]; }, ap.data());
  conv_s1_avx2(g, s.N, s.O, x, ap.data(), bias, y, /*add=*/false);
}

// Stride 1: dx = "full" correlation of dy with the spatially flipped, transposed weights,
// i.e. a forward conv with input dy (O channels, OH x OW), weights w'[c][o][a][b] =
// w[o][c][KH-1-a][KW-1-b] and padding (KH-1-PH, KW-1-PW), whose output is exactly H x W.
// No dcols, no col2im scatter.
inline void backward_input_s1(const ConvShape& s, const float* dy, const float* w, float* dx) {
  const PadGrid g(s.O, s.OH(), s.OW(), s.KH - 1 - s.PH, s.KW - 1 - s.PW, s.KH, s.KW, 1);
  const int64_t K = s.O * s.KH * s.KW, KK = s.KH * s.KW;
  std::vector<float> ap(static_cast<size_t>(avx2::packed_a_ig_size(s.C, K)));
  avx2::pack_a_ig(s.C, K,
                  [&](int64_t c, int64_t k) {  // k = (o, a, b) of the flipped kernel
                    const int64_t o = k / KK, a = (k % KK) / s.KW, b = k % s.KW;
                    return w[((o * s.C + c) * s.KH + (s.KH - 1 - a)) * s.KW + (s.KW - 1 - b)];
                  },
                  ap.data());
  conv_s1_avx2(g, s.N, s.C, dy, ap.data(), nullptr, dx, /*add=*/true);
}

// 3x3 weight gradient on the padded grid with the outer-product kernel avx2::wg3x3_kernel.
// dy is transposed per group into panels of kWgNW output channels, [l][channel] inside a
// panel (zero at garbage grid points); each thread accumulates dw transposed ([k][o], row
// stride Op) into its own slice, and the slices are transposed back and added in thread order.
inline void backward_weight_s1_3x3(const ConvShape& s, const float* x, const float* dy, float* dw, float* db) {
  const int64_t K = s.C * 9, OH = s.OH(), OW = s.OW(), P = OH * OW;
  const int64_t Op = avx2::round_up_vw(s.O);
  // Images per group: a grid of >= ~512 points amortises the C-tile update after each kernel
  // call, while the stacked x buffer stays under ~1 MiB so it is re-read from L2 for every
  // output-channel panel.
  const int64_t per = (s.H + s.PH) * (s.W + s.PW);
  int64_t G = (512 + per - 1) / per;
  G = std::min(G, std::max<int64_t>(1, (int64_t(1) << 18) / (s.C * per)));
  G = std::max<int64_t>(1, std::min(G, s.N));
  const PadGrid g(s.C, s.H, s.W, s.PH, s.PW, 3, 3, G);
  const int64_t L = g.rows * g.Ws, groups = (s.N + G - 1) / G;
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
      const int64_t n0 = gi * G, gn = std::min(G, s.N - n0);
      float* buf = scratch<float>(0, static_cast<size_t>(g.buffer_size()));
      float* dyp = scratch<float>(1, static_cast<size_t>(Op * L));  // panel j0 at dyp + j0 * L
      g.fill(x + n0 * s.C * s.H * s.W, s.C * s.H * s.W, gn, buf);
      std::memset(dyp, 0, sizeof(float) * Op * L);
      for (int64_t o = 0; o < s.O; ++o) {
        const int64_t j0 = o / avx2::kWgNW * avx2::kWgNW, wj = std::min(avx2::kWgNW, Op - j0);
        float* d = dyp + j0 * L + (o - j0);
        float acc = 0.0f;
        for (int64_t i = 0; i < gn; ++i) {
          const float* src = dy + ((n0 + i) * s.O + o) * P;
          for (int64_t oh = 0; oh < OH; ++oh) {
            float* dr = d + g.grid(i, oh, 0) * wj;
            for (int64_t ow = 0; ow < OW; ++ow) {
              dr[ow * wj] = src[oh * OW + ow];
              acc += src[oh * OW + ow];
            }
          }
        }
        dbl[o] += acc;
      }
      for (int64_t j0 = 0; j0 < Op; j0 += avx2::kWgNW) {
        const int64_t wj = std::min(avx2::kWgNW, Op - j0);
        const float* dpan = dyp + j0 * L;
        for (int64_t c = 0; c < s.C;) {
          const float* xc = buf + c * g.plane;
          float* cc = dwt + c * 9 * Op + j0;
          if (wj == 2 * avx2::kVW) {
            avx2::wg3x3_kernel<1, 2>(L, xc, g.plane, g.Ws, dpan, wj, cc, Op);
            c += 1;
          } else if (avx2::kVW == 16 && c + 1 < s.C) {  // 18 accumulators need 32 registers
            avx2::wg3x3_kernel<2, 1>(L, xc, g.plane, g.Ws, dpan, wj, cc, Op);
            c += 2;
          } else {
            avx2::wg3x3_kernel<1, 1>(L, xc, g.plane, g.Ws, dpan, wj, cc, Op);
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
// of the stacked padded buffer (see PadGrid). Groups of G images go to threads statically;
// each thread accumulates into its own slice of `parts`, and the slices are summed in thread
// order afterwards, so the result depends only on the thread count, not on scheduling.
inline void backward_weight_s1(const ConvShape& s, const float* x, const float* dy, float* dw, float* db) {
  const int64_t K = s.C * s.KH * s.KW, OH = s.OH(), OW = s.OW(), P = OH * OW;
  // Stack enough images for a reduction of ~1000 floats: the 4 x kDotKB horizontal sums at
  // the end of each dot block then cost a few percent.
  const int64_t per = (s.H + s.PH) * (s.W + s.PW);
  const int64_t G = std::max<int64_t>(1, std::min<int64_t>(s.N, (1024 + per - 1) / per));
  const PadGrid g(s.C, s.H, s.W, s.PH, s.PW, s.KH, s.KW, G);
  const int64_t L = g.Pv, groups = (s.N + G - 1) / G;
  const std::vector<int64_t> off = g.offsets();
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
          for (int64_t oh = 0; oh < OH; ++oh) {
            std::memcpy(dyg + o * L + g.grid(i, oh, 0), src + oh * OW, sizeof(float) * OW);
            for (int64_t ow = 0; ow < OW; ++ow) acc += src[oh * OW + ow];
          }
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
    if (conv_detail::padded_grid_ok(s)) conv_detail::forward_s1(s, x, w, bias, y);
    else conv_detail::forward_avx2(s, x, w, bias, y);
    return;
  }
#endif
  conv_detail::forward_portable(s, x, w, bias, y);
}

template <class T>
void conv2d_backward_input(const ConvShape& s, const T* dy, const T* w, T* dx) {
  if (conv_detail::empty_output<T>(s) || s.KH <= 0 || s.KW <= 0) return;
#ifdef LOWBIT_HAVE_AVX2_FMA
  if constexpr (std::is_same<T, float>::value) {
    if (conv_detail::padded_grid_ok(s)) conv_detail::backward_input_s1(s, dy, w, dx);
    else conv_detail::backward_input_avx2(s, dy, w, dx);
    return;
  }
#endif
  conv_detail::backward_input_portable(s, dy, w, dx);
}

template <class T>
void conv2d_backward_weight(const ConvShape& s, const T* x, const T* dy, T* dw, T* db) {
  if (s.N <= 0 || s.O <= 0 || s.OH() <= 0 || s.OW() <= 0) return;
  if (s.C <= 0 || s.KH <= 0 || s.KW <= 0) {  // no weights; db still gets its sum
    if (db) conv2d_backward_weight_reference(s, static_cast<const T*>(nullptr), dy, dw, db);
    return;
  }
#ifdef LOWBIT_HAVE_AVX2_FMA
  if constexpr (std::is_same<T, float>::value) {
    if (conv_detail::padded_grid_ok(s) && s.KH == 3 && s.KW == 3)
      conv_detail::backward_weight_s1_3x3(s, x, dy, dw, db);
    else if (conv_detail::padded_grid_ok(s))
      conv_detail::backward_weight_s1(s, x, dy, dw, db);
    else conv_detail::backward_weight_avx2(s, x, dy, dw, db);
    return;
  }
#endif
  conv_detail::backward_weight_portable(s, x, dy, dw, db);
}

}  // namespace kernels
}  // namespace lowbit
