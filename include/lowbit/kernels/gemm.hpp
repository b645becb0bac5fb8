// Row-major GEMM through Eigen maps: C = alpha * op(A) * op(B) + beta * C, where op
// transposes when asked. A is M x K after op, B is K x N after op, C is M x N. Eigen is the
// right tool for linear layers and wide GEMMs; convolution kernels have their own.
#pragma once
#include <Eigen/Core>
#include <cstdint>

namespace lowbit {
namespace kernels {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          const T* B, T beta, T* C) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using CMap = Eigen::Map<const Mat>;
  Eigen::Map<Mat> c(C, M, N);
  if (beta == T(0)) c.setZero();
  else if (beta != T(1)) c *= beta;
  if (M == 0 || N == 0 || K == 0) return;
  // A stored row-major as (M x K), or as (K x M) when transposed; same for B.
  CMap a(A, trans_a ? K : M, trans_a ? M : K);
  CMap b(B, trans_b ? N : K, trans_b ? K : N);
  if (!trans_a && !trans_b) c.noalias() += alpha * a * b;
  else if (trans_a && !trans_b) c.noalias() += alpha * a.transpose() * b;
  else if (!trans_a && trans_b) c.noalias() += alpha * a * b.transpose();
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

// The reference twin: the textbook triple loop, used by tests to check gemm().
template <class T>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                    const T* A, const T* B, T beta, T* C) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const T av = trans_a ? A[k * M + i] : A[i * K + k];
        const T bv = trans_b ? B[j * K + k] : B[k * N + j];
        s += static_cast<double>(av) * bv;
      }
      C[i * N + j] = static_cast<T>(alpha * s + (beta == T(0) ? 0.0 : beta * static_cast<double>(C[i * N + j])));
    }
}

}  // namespace kernels
}  // namespace lowbit
