// The tape: accumulation of values used more than once, accumulation across calls,
// detach, no-grad guard, zero_grad, retain_graph, and graph lifetime.
#include <catch2/catch.hpp>
#include <lowbit/lowbit.hpp>
#include <thread>

using namespace lowbit;

TEST_CASE("a value used more than once accumulates its gradients", "[autograd]") {
  Tensor<double> x({2}, {3, -1});
  x.set_requires_grad();
  // y = x*x + x  ->  dy/dx = 2x + 1
  auto y = sum(x * x + x);
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{7, -1});
  // A diamond: a = 2x, b = a*a, c = a + b -> dc/dx = 2 (1 + 2a) = 2 + 8x
  x.zero_grad();
  auto a = x * 2.0;
  auto c = sum(a + a * a);
  c.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{26, -6});
}

TEST_CASE("backward adds into existing gradients; zero_grad clears them", "[autograd]") {
  Tensor<double> x({3}, {1, 2, 3});
  x.set_requires_grad();
  sum(x * 3.0).backward();
  sum(x * 3.0).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{6, 6, 6});
  auto buf = x.grad();
  x.zero_grad();
  CHECK(buf.to_vector() == std::vector<double>{0, 0, 0});  // the buffer is kept and zeroed
  x.zero_grad(/*set_to_none=*/true);
  CHECK(!x.grad().defined());
}

TEST_CASE("retain_graph allows a second backward", "[autograd]") {
  Tensor<double> x({2}, {1, 2});
  x.set_requires_grad();
  auto y = sum(exp(x));
  y.backward(Tensor<double>(), /*retain_graph=*/true);
  y.backward();
  CHECK(x.grad().at({1}) == Approx(2 * std::exp(2.0)));
}

TEST_CASE("non-scalar backward with a seed", "[autograd]") {
  Tensor<double> x({3}, {1, 2, 3});
  x.set_requires_grad();
  auto y = x * x;
  y.backward(Tensor<double>({3}, {1, 0, -1}));
  CHECK(x.grad().to_vector() == std::vector<double>{2, 0, -6});
}

TEST_CASE("detach and NoGradGuard stop recording", "[autograd]") {
  Tensor<double> x({2}, {1, 2});
  x.set_requires_grad();
  auto d = x.detach();
  CHECK(!d.requires_grad());
  CHECK(d.shares_storage_with(x));
  // Gradient flows only through the non-detached factor: d(x * stopgrad(x))/dx = x.
  sum(x * d).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1, 2});
  {
    NoGradGuard guard;
    CHECK(!is_grad_enabled());
    {
      NoGradGuard nested;
    }
    CHECK(!is_grad_enabled());  // nesting restores the outer state
    auto y = x * 2.0;
    CHECK(!y.requires_grad());
    x.fill_(5.0);  // allowed under the guard (optimizer updates)
  }
  CHECK(is_grad_enabled());
  CHECK(x.to_vector() == std::vector<double>{5, 5});
}

TEST_CASE("the no-grad guard is thread-local", "[autograd]") {
  NoGradGuard guard;
  bool other_thread_enabled = false;
  std::thread t([&] { other_thread_enabled = is_grad_enabled(); });
  t.join();
  CHECK(other_thread_enabled);
  CHECK(!is_grad_enabled());
}

TEST_CASE("backward on a leaf and through views", "[autograd]") {
  auto x = Tensor<double>::arange(6.0).set_requires_grad();
  auto r = reshape(x, {2, 3});
  auto s = slice(r, 1, 2);            // second row: 3, 4, 5
  auto y = sum(s * s);               // d/dx = 2x on the second row, 0 elsewhere
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0, 6, 8, 10});
  auto leaf = Tensor<double>::ones({2}).set_requires_grad();
  leaf.backward(Tensor<double>({2}, {4, 5}));
  CHECK(leaf.grad().to_vector() == std::vector<double>{4, 5});
}

TEST_CASE("intermediate values are released after backward", "[autograd]") {
  auto x = Tensor<double>::ones({4}).set_requires_grad();
  std::weak_ptr<detail::TensorImpl<double>> watch;
  Tensor<double> loss;
  {
    auto e = exp(x);  // exp saves its output for backward
    watch = e.impl_ptr();
    loss = sum(e * 2.0);
  }
  // The graph holds the saved *data*, not the intermediate tensor handle itself.
  CHECK(watch.expired());
  loss.backward();
  CHECK(x.grad().at({0}) == Approx(2 * std::exp(1.0)));
  CHECK(loss.grad_fn()->freed);
  CHECK(!loss.grad_fn()->backward);  // saved tensors dropped
}
