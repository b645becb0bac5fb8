// Super-resolution pieces of the engine (issue 30): the squared-error losses against central
// differences and by hand, VDSR's shape, parameter count, residual connection and layer roles,
// and gradient clipping (VDSR's adjustable clipping is clip_grad_value at theta / lr).
#include <catch2/catch.hpp>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using Catch::Matchers::Contains;

TEST_CASE("squared_error and mse_loss: by hand and against central differences", "[gradcheck][sr]") {
  using T = Tensor<double>;
  const T x = reshape(T::arange(4.0), {2, 2}), t = T::full({2, 2}, 1.0);
  // (0-1)^2 + 0 + (2-1)^2 + (3-1)^2 = 6
  CHECK(squared_error(x, t, 0.25).item() == Approx(1.5));
  CHECK(mse_loss(x, t).item() == Approx(1.5));
  Generator g(3);
  for (double scale : {1.0, 0.5 / 3, -2.0}) {
    const T target = T::uniform({3, 1, 4, 5}, g, -1, 1);
    const GradcheckResult r = gradcheck([&](const std::vector<T>& v) { return squared_error(v[0], target, scale); },
                                        {T::uniform({3, 1, 4, 5}, g, -1, 1).set_requires_grad()});
    INFO(r.report);
    CHECK(r.ok);
  }
  const T target = T::uniform({7}, g);
  const GradcheckResult r = gradcheck([&](const std::vector<T>& v) { return mse_loss(v[0] * v[0], target); },
                                      {T::uniform({7}, g, -1, 1).set_requires_grad()});
  INFO(r.report);
  CHECK(r.ok);
  CHECK_THROWS_WITH(squared_error(x, T::zeros({4}), 1.0), Contains("same shape"));
  CHECK_THROWS_WITH(squared_error(x, t.clone().set_requires_grad(), 1.0), Contains("target requires a gradient"));
  CHECK_THROWS_WITH(mse_loss(T::zeros({0}), T::zeros({0})), Contains("empty"));
}

TEST_CASE("VDSR: 20 layers of 64 channels, residual output, first and last layers FP32 under a method", "[nn][sr]") {
  Generator gen(0);
  auto m = nn::vdsr(gen);
  int64_t n = 0;
  for (auto& p : m->parameters()) n += p.numel();
  CHECK(n == 665921);  // 1*64*9+64 + 18 * (64*64*9+64) + 64*9+1, by hand
  for (auto& [name, p] : m->named_parameters())
    if (name.find("bias") != std::string::npos) CHECK(max(abs(p)).item() == 0.0f);
  const nn::Tensorf x = nn::Tensorf::uniform({2, 1, 13, 9}, gen);
  nn::Tensorf y = (*m)(x);
  CHECK(y.shape() == x.shape());
  sum(y).backward();
  for (auto& [name, p] : m->named_parameters()) {
    INFO(name);
    CHECK(p.grad().defined());
  }
  // With the last conv zero the residual is zero and the output is the input itself.
  {
    NoGradGuard ng;
    for (auto& [name, p] : m->named_parameters())
      if (name.rfind("body.38.", 0) == 0) p.fill_(0.0f);
    const nn::Tensorf z = (*m)(x);
    for (int64_t i = 0; i < x.numel(); ++i) CHECK(z.data()[i] == x.data()[i]);
  }
  CHECK_THROWS_WITH((*m)(nn::Tensorf::zeros({1, 3, 8, 8})), Contains("N x 1 x H x W"));
  // SLB with 1-bit weights: the 18 middle convs are quantized, the first and last stay FP32.
  quant::QuantSpec s;
  s.method = "slb", s.w_bits = 1, s.a_bits = 32;
  auto q = nn::vdsr(gen, quant::make_factory(s), 4, 8);
  CHECK(q->body->children()[0].second->type_name() == "Conv2d");
  CHECK(q->body->children()[2].second->type_name() == "QConv2d");
  CHECK(q->body->children()[4].second->type_name() == "QConv2d");
  CHECK(q->body->children()[6].second->type_name() == "Conv2d");
  CHECK((*q)(x).shape() == x.shape());
}

TEST_CASE("gradient clipping by value and by norm", "[optim][sr]") {
  nn::Tensorf a = nn::Tensorf::zeros({3}).set_requires_grad(), b = nn::Tensorf::zeros({2}).set_requires_grad();
  const nn::Tensorf ga = nn::Tensorf::arange(-1.0f, 2.0f), gb = nn::Tensorf::full({2}, 4.0f);  // -1 0 1 | 4 4
  (sum(a * ga) + sum(b * gb)).backward();
  CHECK(optim::clip_grad_value({a, b}, 2.0) == Approx(4.0));
  CHECK(b.grad().data()[0] == 2.0f);
  CHECK(a.grad().data()[0] == -1.0f);
  // Now (-1 0 1 | 2 2): norm sqrt(10); clipped to 1 every element is scaled by 1/sqrt(10).
  CHECK(optim::clip_grad_norm({a, b}, 1.0) == Approx(std::sqrt(10.0)));
  CHECK(b.grad().data()[1] == Approx(2 / std::sqrt(10.0)));
  CHECK(optim::clip_grad_norm({a, b}, 5.0) == Approx(1.0));  // under the bound: unchanged
  CHECK(b.grad().data()[1] == Approx(2 / std::sqrt(10.0)));
  CHECK_THROWS_WITH(optim::clip_grad_value({a}, 0.0), Contains("bound 0"));
}
