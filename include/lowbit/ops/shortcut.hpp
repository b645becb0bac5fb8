// ResNet "option A" shortcut (He et al. 2016, CIFAR experiments): the identity, subsampled
// by the stride and zero-padded with extra channels split evenly before and after, so a
// block can change width without parameters. Row in docs/gradients.md.
#pragma once
#include "../autograd/node.hpp"
#include "../kernels/parallel.hpp"

namespace lowbit {

// x: [N, C, H, W] -> [N, out_channels, ceil(H/stride), ceil(W/stride)],
// y[n, c + (out - C)/2, i, j] = x[n, c, i*stride, j*stride], zeros elsewhere.
// Gradient: dx[n, c, i*stride, j*stride] = dy[n, c + (out - C)/2, i, j], zero elsewhere.
template <class T>
Tensor<T> shortcut_pad(const Tensor<T>& x, int64_t out_channels, int64_t stride) {
  LOWBIT_CHECK(x.dim() == 4 && out_channels >= x.shape()[1] && (out_channels - x.shape()[1]) % 2 == 0 &&
                   stride >= 1,
               "shortcut_pad: input ", shape_str(x.shape()), " cannot be padded to ", out_channels,
               " channels with stride ", stride, " (needs an even number of added channels)");
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const int64_t OH = (H + stride - 1) / stride, OW = (W + stride - 1) / stride;
  const int64_t before = (out_channels - C) / 2;
  Tensor<T> y = Tensor<T>::zeros({N, out_channels, OH, OW});
#pragma omp parallel for if (N * C * OH * OW > kParallelGrain)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j)
          y.data()[((n * out_channels + c + before) * OH + i) * OW + j] =
              x.data()[((n * C + c) * H + i * stride) * W + j * stride];
  if (autograd::needs_grad({&x}))
    autograd::record(y, "shortcut_pad", {&x}, [=](const Tensor<T>& g) {
      Tensor<T> dx = Tensor<T>::zeros({N, C, H, W});
#pragma omp parallel for if (N * C * OH * OW > kParallelGrain)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < OH; ++i)
            for (int64_t j = 0; j < OW; ++j)
              dx.data()[((n * C + c) * H + i * stride) * W + j * stride] =
                  g.data()[((n * out_channels + c + before) * OH + i) * OW + j];
      return std::vector<Tensor<T>>{dx};
    });
  return y;
}

}  // namespace lowbit
