// Every differentiable op of the core against central differences (autograd/gradcheck.hpp),
// including broadcast shapes, repeated inputs and the "adds, not overwrites" check.
// Each op here has a row in docs/gradients.md.
#include <catch2/catch.hpp>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using T = Tensor<double>;
using Inputs = std::vector<T>;

namespace {
T param(const Shape& s, Generator& g, double lo = -1.0, double hi = 1.0) {
  return T::uniform(s, g, lo, hi).set_requires_grad();
}
void expect_ok(const GradcheckResult& r) {
  INFO(r.report);
  CHECK(r.ok);
}
}  // namespace

TEST_CASE("gradcheck: broadcasting binary ops", "[gradcheck]") {
  Generator g(1);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{4, 1, 3}, {2, 1}}, {{3}, {}}, {{}, {2, 2}}};
  for (auto& [sa, sb] : shapes) {
    DYNAMIC_SECTION("shapes " << shape_str(sa) << " and " << shape_str(sb)) {
      expect_ok(gradcheck([](const Inputs& x) { return add(x[0], x[1]); }, {param(sa, g), param(sb, g)}));
      expect_ok(gradcheck([](const Inputs& x) { return sub(x[0], x[1]); }, {param(sa, g), param(sb, g)}));
      expect_ok(gradcheck([](const Inputs& x) { return mul(x[0], x[1]); }, {param(sa, g), param(sb, g)}));
      expect_ok(gradcheck([](const Inputs& x) { return div(x[0], x[1]); },
                          {param(sa, g), param(sb, g, 0.5, 2.0)}));
    }
  }
  // Only one side requires grad.
  expect_ok(gradcheck([](const Inputs& x) { return mul(x[0], x[1]); }, {param({3, 2}, g), T::ones({2})}));
  expect_ok(gradcheck([](const Inputs& x) { return div(x[0], x[1]); },
                      {T::ones({3, 2}), param({3, 2}, g, 0.5, 2.0)}));
}

TEST_CASE("gradcheck: scalar ops and operators", "[gradcheck]") {
  Generator g(2);
  expect_ok(gradcheck([](const Inputs& x) { return x[0] + 3.0; }, {param({5}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return x[0] * -2.5; }, {param({5}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return 3.0 / x[0]; }, {param({5}, g, 0.5, 2.0)}));
  expect_ok(gradcheck([](const Inputs& x) { return 1.0 - x[0]; }, {param({5}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return x[0] / 4.0; }, {param({5}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return -x[0]; }, {param({5}, g)}));
}

TEST_CASE("gradcheck: unary math", "[gradcheck]") {
  Generator g(3);
  expect_ok(gradcheck([](const Inputs& x) { return neg(x[0]); }, {param({2, 3}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return exp(x[0]); }, {param({2, 3}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return log(x[0]); }, {param({2, 3}, g, 0.2, 3.0)}));
  expect_ok(gradcheck([](const Inputs& x) { return sqrt(x[0]); }, {param({2, 3}, g, 0.2, 3.0)}));
  expect_ok(gradcheck([](const Inputs& x) { return tanh(x[0]); }, {param({2, 3}, g, -3, 3)}));
  expect_ok(gradcheck([](const Inputs& x) { return sigmoid(x[0]); }, {param({2, 3}, g, -6, 6)}));
  expect_ok(gradcheck([](const Inputs& x) { return square(x[0]); }, {param({2, 3}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return pow(x[0], 2.5); }, {param({2, 3}, g, 0.2, 2.0)}));
  // abs away from its kink at 0.
  T a({4}, {-1.5, -0.3, 0.4, 2.0});
  expect_ok(gradcheck([](const Inputs& x) { return abs(x[0]); }, {a.set_requires_grad()}));
}

TEST_CASE("gradcheck: reductions", "[gradcheck]") {
  Generator g(4);
  for (bool keep : {false, true}) {
    expect_ok(gradcheck([keep](const Inputs& x) { return sum(x[0], {}, keep); }, {param({2, 3, 4}, g)}));
    expect_ok(gradcheck([keep](const Inputs& x) { return sum(x[0], {0, 2}, keep); }, {param({2, 3, 4}, g)}));
    expect_ok(gradcheck([keep](const Inputs& x) { return mean(x[0], {1}, keep); }, {param({2, 3, 4}, g)}));
    expect_ok(gradcheck([keep](const Inputs& x) { return mean(x[0], {-1, 0}, keep); }, {param({2, 3, 4}, g)}));
    // max: distinct values (a random permutation scaled), so the argmax is unique and
    // central differences with a small step do not cross a tie.
    T v = reshape(T::arange(24.0) * 0.1, {2, 3, 4}).detach();
    T perm = permute(v, {2, 0, 1}).detach().clone();
    expect_ok(gradcheck([keep](const Inputs& x) { return max(x[0], {1}, keep); },
                        {reshape(perm, {2, 3, 4}).detach().clone().set_requires_grad()}));
    expect_ok(gradcheck([keep](const Inputs& x) { return max(x[0], {}, keep); },
                        {reshape(perm, {2, 3, 4}).detach().clone().set_requires_grad()}));
  }
}

TEST_CASE("gradcheck: shape ops", "[gradcheck]") {
  Generator g(5);
  expect_ok(gradcheck([](const Inputs& x) { return reshape(x[0], {4, -1}); }, {param({2, 3, 2}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return slice(x[0], 1, 3); }, {param({4, 3}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return select(x[0], 2); }, {param({4, 3}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return permute(x[0], {1, 2, 0}); }, {param({2, 3, 4}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return transpose(x[0], 0, -1); }, {param({2, 3, 4}, g)}));
  for (int64_t d : {0, 1, -1})
    expect_ok(gradcheck([d](const Inputs& x) { return flip(x[0], d); }, {param({2, 3, 4}, g)}));
}

TEST_CASE("gradcheck: matmul", "[gradcheck]") {
  Generator g(6);
  expect_ok(gradcheck([](const Inputs& x) { return matmul(x[0], x[1]); }, {param({3, 4}, g), param({4, 5}, g)}));
  expect_ok(gradcheck([](const Inputs& x) { return matmul(x[0], x[1]); }, {param({1, 7}, g), T::ones({7, 2})}));
  // A value used twice: d/dA of A A.
  expect_ok(gradcheck([](const Inputs& x) { return matmul(x[0], x[0]); }, {param({3, 3}, g)}));
}

TEST_CASE("gradcheck: a composite expression", "[gradcheck]") {
  Generator g(7);
  // A tiny two-layer network with a squared loss: every primitive composed.
  expect_ok(gradcheck(
      [](const Inputs& x) {
        T h = tanh(add(matmul(x[0], x[1]), x[2]));
        return mean(square(matmul(h, x[3]) - 0.5), {});
      },
      {param({4, 3}, g), param({3, 5}, g), param({5}, g), param({5, 2}, g)}));
}

TEST_CASE("gradcheck catches a wrong gradient and an overwriting backward", "[gradcheck]") {
  Generator g(8);
  // A deliberately wrong op: forward x^2, backward claims 3x.
  auto wrong = [](const Inputs& x) {
    T y = square(x[0].detach());
    if (autograd::needs_grad({&x[0]}))
      autograd::record(y, "wrong_square", {&x[0]}, [xd = x[0].detach()](const T& gout) {
        return std::vector<T>{gout * xd * 3.0};
      });
    return y;
  };
  auto r = gradcheck(wrong, {param({3}, g)});
  CHECK(!r.ok);
  CHECK_THAT(r.report, Catch::Matchers::Contains("FAIL") && Catch::Matchers::Contains("worst element"));

  // An op that assigns instead of adding, writing straight into the leaf's grad buffer:
  // the pre-seeded gradient exposes it.
  auto overwrite = [](const Inputs& x) {
    T y = x[0].detach() * 2.0;
    if (autograd::needs_grad({&x[0]})) {
      auto leaf = x[0].impl_ptr();
      autograd::record(y, "overwrite", {&x[0]}, [leaf](const T& gout) {
        leaf->grad = std::make_shared<T>(Tensor<double>::zeros(gout.shape()));
        return std::vector<T>{gout * 2.0};
      });
    }
    return y;
  };
  CHECK(!gradcheck(overwrite, {param({3}, g)}).ok);
}
