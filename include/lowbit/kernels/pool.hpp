// Pooling kernels on NCHW planes, threads across (n, c) planes. No padding: output size is
// floor((H - KH) / SH) + 1, as PyTorch with padding 0 and ceil_mode off.
// Max pooling records the flat in-plane index of each window's first maximum, so the
// backward scatters without the input.
#pragma once
#include <cstdint>
#include <limits>

#include "parallel.hpp"

namespace lowbit {
namespace kernels {

struct PoolShape {
  int64_t N, C, H, W, KH, KW, SH, SW;
  int64_t OH() const { return (H - KH) / SH + 1; }
  int64_t OW() const { return (W - KW) / SW + 1; }
};

// The 2x2 window with stride 2 (VGG-Small's pooling): two input rows at a time, the four
// candidates compared in window order with straight-line code the compiler can vectorize.
// Same result as the general loop (first maximum wins, NaN propagates).
template <class T>
void max_pool_forward_2x2(const PoolShape& s, const T* x, T* y, int32_t* arg) {
  const int64_t OH = s.OH(), OW = s.OW();
#pragma omp parallel for if (s.N * s.C * s.H * s.W > kParallelGrain)
  for (int64_t p = 0; p < s.N * s.C; ++p) {
    const T* px = x + p * s.H * s.W;
    T* py = y + p * OH * OW;
    int32_t* pa = arg + p * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const T* r0 = px + 2 * oh * s.W;
      const T* r1 = r0 + s.W;
      const int32_t base = static_cast<int32_t>(2 * oh * s.W);
      const int32_t W = static_cast<int32_t>(s.W);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int32_t c = static_cast<int32_t>(2 * ow);
        T m = r0[c];
        int32_t i = base + c;
        // `v != v` is the NaN test: a NaN candidate wins unless a NaN already did.
        const T b = r0[c + 1], d0 = r1[c], d1 = r1[c + 1];
        if ((b > m || b != b) && m == m) m = b, i = base + c + 1;
        if ((d0 > m || d0 != d0) && m == m) m = d0, i = base + W + c;
        if ((d1 > m || d1 != d1) && m == m) m = d1, i = base + W + c + 1;
        py[oh * OW + ow] = m;
        pa[oh * OW + ow] = i;
      }
    }
  }
}

// The general window: the reference twin of every max-pool path.
template <class T>
void max_pool_forward_reference(const PoolShape& s, const T* x, T* y, int32_t* arg) {
  const int64_t OH = s.OH(), OW = s.OW();
#pragma omp parallel for if (s.N * s.C * s.H * s.W > kParallelGrain)
  for (int64_t p = 0; p < s.N * s.C; ++p) {
    const T* px = x + p * s.H * s.W;
    T* py = y + p * OH * OW;
    int32_t* pa = arg + p * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t bi = (oh * s.SH) * s.W + ow * s.SW;
        for (int64_t kh = 0; kh < s.KH; ++kh)
          for (int64_t kw = 0; kw < s.KW; ++kw) {
            const int64_t i = (oh * s.SH + kh) * s.W + ow * s.SW + kw;
            if (px[i] > best || px[i] != px[i]) {  // NaN propagates, as in PyTorch
              best = px[i];
              bi = i;
              if (px[i] != px[i]) goto done;
            }
          }
      done:
        py[oh * OW + ow] = px[bi];
        pa[oh * OW + ow] = static_cast<int32_t>(bi);
      }
  }
}

// ASSIGNS y and arg (arg: index h*W + w of the max inside the input plane). The 2x2/2
// window goes to its fast twin; the general loop above is the reference of both.
template <class T>
void max_pool_forward(const PoolShape& s, const T* x, T* y, int32_t* arg) {
  if (s.KH == 2 && s.KW == 2 && s.SH == 2 && s.SW == 2) return max_pool_forward_2x2(s, x, y, arg);
  max_pool_forward_reference(s, x, y, arg);
}

// dx[arg] += dy. ADDS into dx. Overlapping windows (stride < kernel) may hit the same
// input twice, so each plane is handled by one thread.
template <class T>
void max_pool_backward(const PoolShape& s, const T* dy, const int32_t* arg, T* dx) {
  const int64_t OHW = s.OH() * s.OW();
#pragma omp parallel for if (s.N * s.C * s.H * s.W > kParallelGrain)
  for (int64_t p = 0; p < s.N * s.C; ++p) {
    T* pd = dx + p * s.H * s.W;
    for (int64_t o = 0; o < OHW; ++o) pd[arg[p * OHW + o]] += dy[p * OHW + o];
  }
}

// y = mean of each window. ASSIGNS y.
template <class T>
void avg_pool_forward(const PoolShape& s, const T* x, T* y) {
  const int64_t OH = s.OH(), OW = s.OW();
  const T inv = T(1) / static_cast<T>(s.KH * s.KW);
#pragma omp parallel for if (s.N * s.C * s.H * s.W > kParallelGrain)
  for (int64_t p = 0; p < s.N * s.C; ++p) {
    const T* px = x + p * s.H * s.W;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        T acc = 0;
        for (int64_t kh = 0; kh < s.KH; ++kh)
          for (int64_t kw = 0; kw < s.KW; ++kw) acc += px[(oh * s.SH + kh) * s.W + ow * s.SW + kw];
        y[p * OH * OW + oh * OW + ow] = acc * inv;
      }
  }
}

// dx += dy / (KH KW) over each window. ADDS into dx.
template <class T>
void avg_pool_backward(const PoolShape& s, const T* dy, T* dx) {
  const int64_t OH = s.OH(), OW = s.OW();
  const T inv = T(1) / static_cast<T>(s.KH * s.KW);
#pragma omp parallel for if (s.N * s.C * s.H * s.W > kParallelGrain)
  for (int64_t p = 0; p < s.N * s.C; ++p) {
    T* pd = dx + p * s.H * s.W;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const T g = dy[p * OH * OW + oh * OW + ow] * inv;
        for (int64_t kh = 0; kh < s.KH; ++kh)
          for (int64_t kw = 0; kw < s.KW; ++kw) pd[(oh * s.SH + kh) * s.W + ow * s.SW + kw] += g;
      }
  }
}

}  // namespace kernels
}  // namespace lowbit
