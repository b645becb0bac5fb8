// Fully connected layer, PyTorch layout: weight [out, in]. Row in docs/gradients.md.
#pragma once
#include "../autograd/node.hpp"
#include "../kernels/gemm.hpp"

namespace lowbit {

// y = x W^T + b, x: [N, in], W: [out, in], b: [out] or undefined.
// dx = G W,  dW = G^T x,  db = sum over rows of G.
template <class T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b = Tensor<T>()) {
  LOWBIT_CHECK(x.dim() == 2 && w.dim() == 2 && x.shape()[1] == w.shape()[1], "linear: input ",
               shape_str(x.shape()), " and weight ", shape_str(w.shape()),
               " do not match (expected [N, in] and [out, in])");
  const int64_t N = x.shape()[0], I = x.shape()[1], O = w.shape()[0];
  LOWBIT_CHECK(!b.defined() || b.shape() == Shape{O}, "linear: bias ", shape_str(b.shape()),
               " does not match weight ", shape_str(w.shape()), " (expected [", O, "])");
  Tensor<T> y = Tensor<T>::empty({N, O});
  kernels::gemm(false, true, N, O, I, T(1), x.data(), w.data(), T(0), y.data());
  if (b.defined())
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) y.data()[n * O + o] += b.data()[o];
  if (autograd::needs_grad({&x, &w, &b})) {
    autograd::record(y, "linear", {&x, &w, &b},
                     [xd = w.requires_grad() ? x.detach() : Tensor<T>(), wd = w.detach(),
                      gx = x.requires_grad(), gw = w.requires_grad(),
                      gb = b.defined() && b.requires_grad(), N, I, O](const Tensor<T>& g) {
                       Tensor<T> dx, dw, db;
                       if (gx) {
                         dx = Tensor<T>::empty({N, I});
                         kernels::gemm(false, false, N, I, O, T(1), g.data(), wd.data(), T(0), dx.data());
                       }
                       if (gw) {
                         dw = Tensor<T>::empty({O, I});
                         kernels::gemm(true, false, O, I, N, T(1), g.data(), xd.data(), T(0), dw.data());
                       }
                       if (gb) {
                         db = Tensor<T>::zeros({O});
                         for (int64_t n = 0; n < N; ++n)
                           for (int64_t o = 0; o < O; ++o) db.data()[o] += g.data()[n * O + o];
                       }
                       return std::vector<Tensor<T>>{dx, dw, db};
                     });
  }
  return y;
}

}  // namespace lowbit
