// 2-D convolution kernels on raw NCHW buffers (no autograd; ops/conv.hpp builds on these).
//
//   conv2d_forward          y  = conv(x, w) + bias          (assigns y)
//   conv2d_backward_input   dx += conv_transpose(dy, w)     (adds)
//   conv2d_backward_weight  dw += sum x-patch * dy, db += sum dy   (adds)
//
// Each has a *_reference twin (textbook loops, double accumulation) that the tests compare
// against. Paths:
//   * float with AVX2+FMA enabled by the compiler: per-image GEMMs on our own packed 4x24
//     micro-kernel (kernels/sgemm_avx2.hpp). im2col is fused into packing, one row of the
//     im2col matrix at a time, so no whole-image column matrix is ever materialised for the
//     forward pass, and the weight gradient builds only 3 im2col rows at a time.
//   * everything else (double, or float without AVX2): im2col + Eigen GEMM per image.
// Notation: K = C*KH*KW (im2col rows), P = OH*OW (output pixels per image). Images are
// distributed over OpenMP threads; all scratch is per thread and per image (or per small
// group of images), never per batch.
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
#pragma omp parallel if (worth_parallel(s))
  {
    RowMat<T> dwl = RowMat<T>::Zero(s.O, K);
    std::vector<T> dbl(static_cast<size_t>(s.O), T(0));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      T* cols = scratch<T>(0, static_cast<size_t>(K * P));
      fill_cols(s, x + n * s.C * s.H * s.W, cols);
      Eigen::Map<const RowMat<T>> DY(dy + n * s.O * P, s.O, P);
      dwl.noalias() += DY * Eigen::Map<const RowMat<T>>(cols, K, P).transpose();
      for (int64_t o = 0; o < s.O; ++o) dbl[o] += DY.row(o).sum();
    }
#pragma omp critical(lowbit_conv_bw_reduce)
    {
      for (int64_t i = 0; i < s.O * K; ++i) dw[i] += dwl.data()[i];
      if (db)
        for (int64_t o = 0; o < s.O; ++o) db[o] += dbl[o];
    }
  }
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
#pragma omp parallel if (worth_parallel(s))
  {
    std::vector<float> dwl(static_cast<size_t>(s.O * K), 0.0f), dbl(static_cast<size_t>(s.O), 0.0f);
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
        avx2::dot_gemm(s.O, kc, L, dyb, L, rows, L, dwl.data() + k0, K);
      }
    }
#pragma omp critical(lowbit_conv_bw_reduce)
    {
      for (int64_t i = 0; i < s.O * K; ++i) dw[i] += dwl[i];
      if (db)
        for (int64_t o = 0; o < s.O; ++o) db[o] += dbl[o];
    }
  }
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
    conv_detail::forward_avx2(s, x, w, bias, y);
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
    conv_detail::backward_input_avx2(s, dy, w, dx);
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
    conv_detail::backward_weight_avx2(s, x, dy, dw, db);
    return;
  }
#endif
  conv_detail::backward_weight_portable(s, x, dy, dw, db);
}

}  // namespace kernels
}  // namespace lowbit
