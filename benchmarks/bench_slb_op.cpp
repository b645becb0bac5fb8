// bench_slb_op: the SLB softmax-expectation op alone (quant/slb/slb.hpp) on ResNet-20's
// quantized weights (267,264 weights: every conv but the first), per step: forward (Eqs. 5-6,
// P not kept), backward (P recomputed from A, then dL/dA_i = P_i (v_i - W_c) g / tau) and the argmax of
// W_q (Eq. 7; evaluation and the SBN pass). Mean over 10 repetitions, for 1, 2 and 4 bits.
//
//   bench_slb_op [threads]      (default 1)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using namespace lowbit::quant;

int main(int argc, char** argv) {
  if (argc > 2) {
    std::fprintf(stderr, "usage: bench_slb_op [threads]\n");
    return 2;
  }
  char* end = nullptr;
  const long threads = argc > 1 ? std::strtol(argv[1], &end, 10) : 1;
  if (argc > 1 && (!*argv[1] || *end || threads < 1 || threads > 4096)) {  // atoi read "x" as 0
    std::fprintf(stderr, "bench_slb_op: threads expects a whole number >= 1, got '%s'\n", argv[1]);
    return 2;
  }
  set_num_threads(static_cast<int>(threads));
  Generator g(0);
  for (int bits : {1, 2, 4}) {
    const int64_t m = int64_t(1) << bits, n = 267264;
    Tensor<float> A = Tensor<float>::randn({m, n}, g).set_requires_grad();
    const auto v = slb_values<float>(bits);
    const Tensor<float> gy = Tensor<float>::randn({n}, g);
    double tf = 0, tb = 0, tq = 0;
    const int R = 10;
    for (int r = 0; r < R; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      Tensor<float> w = slb_expectation(A, v, 0.5);
      const auto t1 = std::chrono::steady_clock::now();
      w.backward(gy);
      const auto t2 = std::chrono::steady_clock::now();
      Tensor<float> wq = slb_discrete(A, v);
      const auto t3 = std::chrono::steady_clock::now();
      tf += std::chrono::duration<double, std::milli>(t1 - t0).count();
      tb += std::chrono::duration<double, std::milli>(t2 - t1).count();
      tq += std::chrono::duration<double, std::milli>(t3 - t2).count();
      A.zero_grad(true);
    }
    std::printf("bits %d (m * n = %lld logits): forward %.2f ms, backward %.2f ms, argmax %.2f ms\n", bits,
                static_cast<long long>(m * n), tf / R, tb / R, tq / R);
  }
  return 0;
}
