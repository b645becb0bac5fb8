// Misuse gives exceptions whose messages name the op and the shapes.
#include <catch2/catch.hpp>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using Catch::Matchers::Contains;

TEST_CASE("shape errors name the op and the shapes", "[errors]") {
  auto a = Tensor<float>::zeros({2, 3});
  auto b = Tensor<float>::zeros({4});
  CHECK_THROWS_WITH(a + b, Contains("add") && Contains("[2, 3]") && Contains("[4]") &&
                               Contains("cannot be broadcast"));
  CHECK_THROWS_WITH(a * b, Contains("mul") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(matmul(a, a), Contains("matmul") && Contains("[2, 3]") && Contains("[K, N]"));
  CHECK_THROWS_WITH(reshape(a, {4, 2}), Contains("reshape") && Contains("[2, 3]") && Contains("[4, 2]"));
  CHECK_THROWS_WITH(reshape(a, {-1, -1}), Contains("more than one -1"));
  CHECK_THROWS_WITH(sum(a, {2}), Contains("sum") && Contains("axis 2"));
  CHECK_THROWS_WITH(permute(a, {0, 0}), Contains("permute") && Contains("repeated"));
  CHECK_THROWS_WITH(slice(a, 1, 3), Contains("slice") && Contains("[1, 3)") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(a.at({0, 3}), Contains("index 3") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(a.item(), Contains("item") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(Tensor<float>::from_vector({2, 2}, {1, 2, 3}), Contains("needs 4 values, got 3"));
  CHECK_THROWS_WITH(Tensor<float>::zeros({2, -1}), Contains("negative dimension"));
  CHECK_THROWS_AS(Tensor<float>().shape(), Error);
}

TEST_CASE("backward misuse names the op and the shapes", "[errors][autograd]") {
  Generator g(0);
  auto w = Tensor<double>::randn({2, 3}, g).set_requires_grad();
  auto x = Tensor<double>::randn({3, 4}, g);

  auto y = matmul(w, x);
  CHECK_THROWS_WITH(y.backward(), Contains("matmul([2, 3], [3, 4]) -> [2, 4]") &&
                                      Contains("needs a scalar") && Contains("seed"));
  CHECK_THROWS_WITH(y.backward(Tensor<double>::ones({4, 2})),
                    Contains("seed gradient has shape [4, 2]") && Contains("matmul"));

  auto loss = sum(exp(w));
  loss.backward();
  CHECK_THROWS_WITH(loss.backward(), Contains("already freed") && Contains("sum([2, 3]) -> []") &&
                                         Contains("retain_graph"));

  auto c = sum(x);  // nothing requires grad
  CHECK_THROWS_WITH(c.backward(), Contains("does not require grad"));

  CHECK_THROWS_WITH(w.fill_(0.0), Contains("fill_") && Contains("[2, 3]") && Contains("NoGradGuard"));
  CHECK_THROWS_WITH(y.set_requires_grad(false), Contains("only leaf tensors"));
}

TEST_CASE("a closure returning a wrong-shaped gradient is caught", "[errors][autograd]") {
  auto x = Tensor<double>::ones({3}).set_requires_grad();
  Tensor<double> y = Tensor<double>::ones({3});
  autograd::record(y, "broken_op", {&x}, [](const Tensor<double>&) {
    return std::vector<Tensor<double>>{Tensor<double>::ones({2})};
  });
  CHECK_THROWS_WITH(y.backward(Tensor<double>::ones({3})),
                    Contains("broken_op([3]) -> [3]") && Contains("gradient of shape [2]") &&
                        Contains("input 0 of shape [3]"));
}
