// tiny_train: the smallest end-to-end use of the autograd engine. A two-layer MLP learns
// to classify points of two interleaved spirals with full-batch gradient descent; the
// loss printed every 200 steps goes down. Everything here is public API:
// Tensor factories, ops, backward(), grad(), NoGradGuard.
#include <cmath>
#include <cstdio>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using T = Tensor<float>;

int main(int argc, char** argv) {
  if (argc > 1) {  // nothing to set: say so rather than ignore it
    std::fprintf(stderr, "tiny_train: takes no arguments, got '%s'\n", argv[1]);
    return 2;
  }
  Generator gen(0);
  const int64_t n = 200, hidden = 32;

  // Two spirals, labels +1 / -1.
  T x = T::empty({n, 2}), y = T::empty({n, 1});
  for (int64_t i = 0; i < n; ++i) {
    const float r = 0.2f + 0.8f * static_cast<float>(i / 2) / (n / 2);
    const float a = 3.0f * r * 3.14159f + (i % 2 ? 3.14159f : 0.0f);
    x.at({i, 0}) = r * std::cos(a) + 0.02f * static_cast<float>(gen.normal());
    x.at({i, 1}) = r * std::sin(a) + 0.02f * static_cast<float>(gen.normal());
    y.at({i, 0}) = i % 2 ? 1.0f : -1.0f;
  }

  // Parameters, Kaiming-style scaled normals.
  T w1 = (T::randn({2, hidden}, gen) * std::sqrt(2.0f / 2)).detach().set_requires_grad();
  T b1 = T::zeros({hidden}).set_requires_grad();
  T w2 = (T::randn({hidden, 1}, gen) * std::sqrt(1.0f / hidden)).detach().set_requires_grad();
  T b2 = T::zeros({1}).set_requires_grad();
  std::vector<T*> params = {&w1, &b1, &w2, &b2};

  const float lr = 0.5f;
  float first = 0, last = 0;
  for (int step = 0; step <= 2000; ++step) {
    // Logistic loss log(1 + exp(-y f(x))) written with the primitives.
    T h = tanh(matmul(x, w1) + b1);
    T f = matmul(h, w2) + b2;
    T loss = mean(log(1.0f + exp(-(y * f))));
    for (T* p : params) p->zero_grad();
    loss.backward();
    {
      NoGradGuard no_grad;  // parameter updates are not part of the graph
      for (T* p : params) {
        float* w = p->data();
        const float* g = p->grad().data();
        for (int64_t i = 0; i < p->numel(); ++i) w[i] -= lr * g[i];
      }
    }
    if (step == 0) first = loss.item();
    last = loss.item();
    if (step % 200 == 0) {
      NoGradGuard no_grad;
      const T correct = mul(y, f);
      int64_t right = 0;
      for (int64_t i = 0; i < n; ++i) right += correct.data()[i] > 0;
      std::printf("step %4d  loss %.4f  train accuracy %5.1f%%\n", step, loss.item(),
                  100.0 * static_cast<double>(right) / n);
    }
  }
  std::printf("loss went from %.4f to %.4f\n", first, last);
  return last < first ? 0 : 1;
}
