// Matrix product of 2-d tensors through Eigen (kernels/gemm.hpp). Row in docs/gradients.md.
#pragma once
#include "../autograd/node.hpp"
#include "../kernels/gemm.hpp"

namespace lowbit {

// C = A B with A: [M, K], B: [K, N].  dL/dA = G B^T,  dL/dB = A^T G.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  LOWBIT_CHECK(a.dim() == 2 && b.dim() == 2 && a.shape()[1] == b.shape()[0], "matmul: shapes ",
               shape_str(a.shape()), " and ", shape_str(b.shape()),
               " do not multiply (expected [M, K] and [K, N])");
  const int64_t M = a.shape()[0], K = a.shape()[1], N = b.shape()[1];
  Tensor<T> c = Tensor<T>::empty({M, N});
  kernels::gemm(false, false, M, N, K, T(1), a.data(), b.data(), T(0), c.data());
  if (autograd::needs_grad({&a, &b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    autograd::record(c, "matmul", {&a, &b},
                     [ad = gb ? a.detach() : Tensor<T>(), bd = ga ? b.detach() : Tensor<T>(), M, N,
                      K](const Tensor<T>& g) {
                       Tensor<T> da, db;
                       if (bd.defined()) {
                         da = Tensor<T>::empty({M, K});
                         kernels::gemm(false, true, M, K, N, T(1), g.data(), bd.data(), T(0), da.data());
                       }
                       if (ad.defined()) {
                         db = Tensor<T>::empty({K, N});
                         kernels::gemm(true, false, K, N, M, T(1), ad.data(), g.data(), T(0), db.data());
                       }
                       return std::vector<Tensor<T>>{da, db};
                     });
  }
  return c;
}

}  // namespace lowbit
