// CNN ops other than convolution: linear, batch_norm, pooling, activations, softmax and
// cross-entropy — gradchecks, hand-computed values, PyTorch's conventions, fast kernels
// against their reference twins, and error messages.
#include <catch2/catch.hpp>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using Catch::Matchers::Contains;
using D = Tensor<double>;
using Inputs = std::vector<D>;

namespace {
D param(const Shape& s, Generator& g, double lo = -1.0, double hi = 1.0) {
  return D::uniform(s, g, lo, hi).set_requires_grad();
}
void expect_ok(const GradcheckResult& r) {
  INFO(r.report);
  CHECK(r.ok);
}
}  // namespace

TEST_CASE("linear: values and gradcheck", "[nn][linear]") {
  D x({2, 3}, {1, 2, 3, 4, 5, 6});
  D w({2, 3}, {1, 0, -1, 0.5, 0.5, 0.5});
  D b({2}, {10, 20});
  CHECK(linear(x, w, b).to_vector() == std::vector<double>{8, 23, 8, 27.5});
  CHECK(linear(x, w).to_vector() == std::vector<double>{-2, 3, -2, 7.5});
  Generator g(1);
  expect_ok(gradcheck([](const Inputs& v) { return linear(v[0], v[1], v[2]); },
                      {param({4, 5}, g), param({3, 5}, g), param({3}, g)}));
  expect_ok(gradcheck([](const Inputs& v) { return linear(v[0], v[1]); }, {param({1, 7}, g), param({2, 7}, g)}));
  CHECK_THROWS_WITH(linear(x, D::zeros({2, 4})), Contains("linear") && Contains("[2, 3]") && Contains("[2, 4]"));
  CHECK_THROWS_WITH(linear(x, w, D::zeros({3})), Contains("bias [3]"));
}

TEST_CASE("activations: values at and around the kinks follow PyTorch", "[nn][activation]") {
  D x({5}, {-2, -1, 0, 1, 2});
  x.set_requires_grad();
  auto r = relu(x);
  CHECK(r.to_vector() == std::vector<double>{0, 0, 0, 1, 2});
  sum(r).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0, 1, 1});  // 0 at x = 0
  x.zero_grad();
  sum(hardtanh(x, -1.0, 1.0)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 1, 0, 0});  // boundaries excluded
  x.zero_grad();
  sum(clamp(x, -1.0, 1.0)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 1, 1, 0});  // boundaries included
  Generator g(2);
  D away({6}, {-1.7, -0.6, -0.2, 0.3, 0.8, 1.9});
  expect_ok(gradcheck([](const Inputs& v) { return relu(v[0]); }, {away.clone().set_requires_grad()}));
  expect_ok(gradcheck([](const Inputs& v) { return hardtanh(v[0], -1.0, 1.0); }, {away.clone().set_requires_grad()}));
  expect_ok(gradcheck([](const Inputs& v) { return clamp(v[0], -0.5, 1.0); }, {away.clone().set_requires_grad()}));
  expect_ok(gradcheck([](const Inputs& v) { return flatten(v[0]); }, {param({2, 3, 2, 2}, g)}));
  CHECK(flatten(D::zeros({2, 3, 4, 5})).shape() == Shape{2, 60});
}

TEST_CASE("batch_norm training: batch statistics and PyTorch's running-stat update", "[nn][batch_norm]") {
  // One channel, values 1..4: mean 2.5, biased var 1.25, unbiased var 5/3.
  D x({4, 1}, {1, 2, 3, 4});
  D gamma({1}, {2}), beta({1}, {0.5});
  D rm({1}, {1.0}), rv({1}, {1.0});
  auto y = batch_norm(x, gamma, beta, rm, rv, {true, 0.1, 0.0});
  const double is = 1 / std::sqrt(1.25);
  for (int i = 0; i < 4; ++i) CHECK(y.at({i, 0}) == Approx(2 * (i + 1 - 2.5) * is + 0.5));
  CHECK(rm.item() == Approx(0.9 * 1.0 + 0.1 * 2.5));
  CHECK(rv.item() == Approx(0.9 * 1.0 + 0.1 * 5.0 / 3.0));
  // Evaluation uses the running statistics.
  auto ye = batch_norm(x, gamma, beta, rm, rv, {false, 0.1, 1e-5});
  CHECK(ye.at({0, 0}) == Approx(2 * (1 - rm.item()) / std::sqrt(rv.item() + 1e-5) + 0.5));
  CHECK(rm.item() == Approx(1.15));  // eval does not move the running mean
}

TEST_CASE("batch_norm: gradcheck in training and eval, 2-d and 4-d", "[nn][batch_norm][gradcheck]") {
  Generator g(3);
  for (bool training : {true, false}) {
    BatchNormOptions o{training, 0.1, 1e-5};
    D rm = D::uniform({3}, g, -0.5, 0.5), rv = D::uniform({3}, g, 0.5, 1.5);
    expect_ok(gradcheck([&](const Inputs& v) { return batch_norm(v[0], v[1], v[2], rm.clone(), rv.clone(), o); },
                        {param({2, 3, 3, 2}, g), param({3}, g, 0.5, 1.5), param({3}, g)}));
    expect_ok(gradcheck([&](const Inputs& v) { return batch_norm(v[0], v[1], v[2], rm.clone(), rv.clone(), o); },
                        {param({5, 3}, g), param({3}, g, 0.5, 1.5), param({3}, g)}));
    // No affine parameters.
    expect_ok(gradcheck([&](const Inputs& v) { return batch_norm(v[0], D(), D(), rm.clone(), rv.clone(), o); },
                        {param({4, 3, 2, 2}, g)}));
  }
}

TEST_CASE("batch_norm with fused ReLU equals relu(batch_norm) and passes gradcheck", "[nn][batch_norm][gradcheck]") {
  Generator g(31);
  for (bool training : {true, false}) {
    BatchNormOptions plain{training, 0.1, 1e-5, false}, fused{training, 0.1, 1e-5, true};
    D rm = D::uniform({3}, g, -0.5, 0.5), rv = D::uniform({3}, g, 0.5, 1.5);
    D x = param({4, 3, 2, 3}, g), ga = param({3}, g, 0.5, 1.5), be = param({3}, g);
    D x2 = x.detach().clone().set_requires_grad(), ga2 = ga.detach().clone().set_requires_grad(),
      be2 = be.detach().clone().set_requires_grad();
    D y1 = batch_norm(x, ga, be, rm.clone(), rv.clone(), fused);
    D y2 = relu(batch_norm(x2, ga2, be2, rm.clone(), rv.clone(), plain));
    CHECK(max_abs_diff(y1, y2) < 1e-12);
    D cot = D::randn(y1.shape(), g);
    y1.backward(cot);
    y2.backward(cot);
    CHECK(max_abs_diff(x.grad(), x2.grad()) < 1e-10);
    CHECK(max_abs_diff(ga.grad(), ga2.grad()) < 1e-10);
    CHECK(max_abs_diff(be.grad(), be2.grad()) < 1e-10);
    // Gradcheck with beta shifted so that no output sits within the step of the kink.
    expect_ok(gradcheck([&](const Inputs& v) { return batch_norm(v[0], v[1], v[2], rm.clone(), rv.clone(), fused); },
                        {param({4, 3, 2, 2}, g), param({3}, g, 0.5, 1.5), param({3}, g)}));
  }
}

TEST_CASE("add_relu: values, gradcheck, shape error", "[nn][activation]") {
  D a({4}, {1, -2, 0.5, -0.25}), b({4}, {1, 1, -1, 0.5});
  CHECK(add_relu(a, b).to_vector() == std::vector<double>{2, 0, 0, 0.25});
  Generator g(32);
  expect_ok(gradcheck([](const Inputs& v) { return add_relu(v[0], v[1]); }, {param({2, 5}, g), param({2, 5}, g)}));
  CHECK_THROWS_WITH(add_relu(a, D::zeros({2, 2})), Contains("add_relu") && Contains("[4]") && Contains("[2, 2]"));
}

TEST_CASE("batch_norm fast kernels equal their reference twins", "[nn][batch_norm][kernels]") {
  Generator g(4);
  for (auto s : {kernels::BnShape{1, 3, 5}, kernels::BnShape{7, 13, 9}, kernels::BnShape{128, 16, 64},
                 kernels::BnShape{3, 5, 1}}) {
    const int64_t n = s.N * s.C * s.S;
    auto x = Tensor<float>::randn({n}, g, 3.0, 2.0), dy = Tensor<float>::randn({n}, g);
    auto gamma = Tensor<float>::uniform({s.C}, g, 0.5, 1.5);
    std::vector<float> m1(s.C), v1(s.C), m2(s.C), v2(s.C), is(s.C);
    kernels::bn_stats(s, x.data(), m1.data(), v1.data());
    kernels::bn_stats_reference(s, x.data(), m2.data(), v2.data());
    for (int64_t c = 0; c < s.C; ++c) {
      CHECK(m1[c] == Approx(m2[c]).epsilon(1e-5));
      CHECK(v1[c] == Approx(v2[c]).epsilon(1e-4));
      is[c] = 1.0f / std::sqrt(v2[c] + 1e-5f);
    }
    // A fused-ReLU output with about half its entries at zero, to mask the gradient.
    auto yr = Tensor<float>::randn({n}, g);
    for (int64_t i = 0; i < n; ++i) yr.data()[i] = std::max(0.0f, yr.data()[i]);
    for (int variant = 0; variant < 4; ++variant) {
      const bool batch_stats = variant % 2 == 0;
      const float* mask = variant >= 2 ? yr.data() : nullptr;
      auto dx1 = Tensor<float>::zeros({n}), dx2 = Tensor<float>::zeros({n});
      auto dg1 = Tensor<float>::full({s.C}, 1.0f), dg2 = dg1.clone(), db1 = dg1.clone(), db2 = dg1.clone();
      kernels::bn_backward(s, x.data(), dy.data(), m2.data(), is.data(), gamma.data(), batch_stats,
                           dx1.data(), dg1.data(), db1.data(), mask);
      kernels::bn_backward_reference(s, x.data(), dy.data(), m2.data(), is.data(), gamma.data(),
                                     batch_stats, dx2.data(), dg2.data(), db2.data(), mask);
      const double scale = 1 + std::max(std::abs(max(dx2).item()), std::abs(max(neg(dx2)).item()));
      CHECK(max_abs_diff(dx1, dx2) < 1e-4 * scale);
      CHECK(max_abs_diff(dg1, dg2) < 1e-4 * (1 + std::abs(sum(abs(dg2)).item())));
      CHECK(max_abs_diff(db1, db2) < 1e-4 * (1 + std::abs(sum(abs(db2)).item())));
    }
  }
}

TEST_CASE("batch_norm errors name the shapes", "[nn][batch_norm][errors]") {
  D x = D::zeros({2, 3, 4, 4});
  CHECK_THROWS_WITH(batch_norm(x, D::ones({4}), D(), D(), D()), Contains("[4]") && Contains("3 channels"));
  CHECK_THROWS_WITH(batch_norm(D::zeros({2, 3, 4}), D(), D(), D(), D()), Contains("[2, 3, 4]"));
  CHECK_THROWS_WITH(batch_norm(x, D(), D(), D(), D(), {false, 0.1, 1e-5}), Contains("running_mean"));
  CHECK_THROWS_WITH(batch_norm(D::zeros({1, 3}), D(), D(), D(), D()), Contains("more than one value"));
}

TEST_CASE("pooling: values, overlapping windows and gradcheck", "[nn][pool]") {
  D x({1, 1, 3, 4}, {1, 5, 2, 0,  //
                     3, 4, 9, 1,  //
                     7, 6, 8, 2});
  CHECK(max_pool2d(x, 2).to_vector() == std::vector<double>{5, 9});
  CHECK(avg_pool2d(x, 2).to_vector() == std::vector<double>{13.0 / 4, 12.0 / 4});
  CHECK(max_pool2d(x, 2, 2, 1, 1).to_vector() == std::vector<double>{5, 9, 9, 7, 9, 9});
  CHECK(global_avg_pool2d(x).item() == Approx(48.0 / 12));
  // Overlapping windows share the 9: its gradient is the sum of the four windows that chose it.
  x.set_requires_grad();
  sum(max_pool2d(x, 2, 2, 1, 1)).backward();
  CHECK(x.grad().at({0, 0, 1, 2}) == 4);
  CHECK(x.grad().at({0, 0, 2, 0}) == 1);
  Generator g(5);
  // Distinct values so no window has a tie under the finite-difference step.
  auto distinct = [&](const Shape& s) {
    D v = permute(reshape(D::arange(static_cast<double>(numel_of(s))) * 0.05, {s[3], s[2], s[1], s[0]}), {3, 2, 1, 0});
    return v.detach().clone().set_requires_grad();
  };
  expect_ok(gradcheck([](const Inputs& v) { return max_pool2d(v[0], 2); }, {distinct({2, 3, 4, 6})}));
  expect_ok(gradcheck([](const Inputs& v) { return max_pool2d(v[0], 3, 2, 2, 1); }, {distinct({1, 2, 7, 5})}));
  expect_ok(gradcheck([](const Inputs& v) { return avg_pool2d(v[0], 2); }, {param({2, 3, 4, 6}, g)}));
  expect_ok(gradcheck([](const Inputs& v) { return avg_pool2d(v[0], 3, 2, 2, 1); }, {param({1, 2, 7, 5}, g)}));
  expect_ok(gradcheck([](const Inputs& v) { return global_avg_pool2d(v[0]); }, {param({2, 3, 3, 5}, g)}));
  CHECK_THROWS_WITH(max_pool2d(D::zeros({1, 1, 2, 2}), 3), Contains("max_pool2d") && Contains("[1, 1, 2, 2]"));
}

TEST_CASE("softmax and log_softmax: stable, normalized, gradcheck on every axis", "[nn][softmax]") {
  D big({1, 3}, {1000, 1001, 1002});  // would overflow without the max shift
  auto p = softmax(big, 1);
  CHECK(sum(p).item() == Approx(1.0));
  CHECK(p.at({0, 2}) == Approx(std::exp(2.0) / (1 + std::exp(1.0) + std::exp(2.0))));
  CHECK(log_softmax(big, 1).at({0, 0}) == Approx(-std::log(1 + std::exp(1.0) + std::exp(2.0))));
  Generator g(6);
  for (int64_t axis : {0, 1, 2, -1}) {
    expect_ok(gradcheck([axis](const Inputs& v) { return softmax(v[0], axis); }, {param({2, 3, 4}, g, -2, 2)}));
    expect_ok(gradcheck([axis](const Inputs& v) { return log_softmax(v[0], axis); }, {param({2, 3, 4}, g, -2, 2)}));
  }
}

TEST_CASE("cross_entropy: value, label smoothing, fused gradient, bad labels", "[nn][softmax]") {
  D logits({2, 3}, {1, 2, 3, 0, 0, 0});
  // Row 0: -log softmax_2 ; row 1: log 3.
  const double l0 = -(3 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)));
  CHECK(cross_entropy(logits, std::vector<int64_t>{2, 1}).item() == Approx((l0 + std::log(3.0)) / 2));
  // Smoothing 0.3 on row 1 (uniform logits): every log p = -log 3, so the loss is still log 3.
  CHECK(cross_entropy(slice(logits, 1, 2), std::vector<int64_t>{0}, 0.3).item() == Approx(std::log(3.0)));
  Generator g(7);
  for (double eps : {0.0, 0.1}) {
    expect_ok(gradcheck([eps](const Inputs& v) { return cross_entropy(v[0], std::vector<int64_t>{0, 4, 2, 4}, eps); },
                        {param({4, 5}, g, -3, 3)}));
  }
  // The fused backward equals the composite -mean(log_softmax picked at the labels).
  D z = param({3, 4}, g, -2, 2), z2 = z.detach().clone().set_requires_grad();
  cross_entropy(z, std::vector<int64_t>{1, 0, 3}).backward();
  auto ls = log_softmax(z2, 1);
  auto onehot = D::zeros({3, 4});
  onehot.at({0, 1}) = onehot.at({1, 0}) = onehot.at({2, 3}) = 1;
  (-sum(ls * onehot) / 3.0).backward();
  CHECK(max_abs_diff(z.grad(), z2.grad()) < 1e-12);
  CHECK_THROWS_WITH(cross_entropy(logits, std::vector<int64_t>{2, 3}),
                    Contains("label 3 at position 1") && Contains("[0, 3)") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(cross_entropy(logits, std::vector<int64_t>{0}), Contains("1 labels") && Contains("[2, 3]"));
}

TEST_CASE("distillation_loss: T^2 KL value, fused gradient, its relation to soft cross-entropy, errors", "[nn][softmax]") {
  // Hand-computed, K = 2, T = 2: teacher logits (2, 0) -> p = softmax(1, 0); student (0, 0) -> q = (1/2, 1/2).
  D s({1, 2}, {0, 0}), t({1, 2}, {2, 0});
  const double p0 = std::exp(1.0) / (std::exp(1.0) + 1), p1 = 1 - p0;
  const double kl = p0 * std::log(p0 / 0.5) + p1 * std::log(p1 / 0.5);
  CHECK(distillation_loss(s, t, 2.0).item() == Approx(4 * kl));
  CHECK(distillation_loss(t, t, 3.0).item() == Approx(0.0).margin(1e-15));  // a student equal to its teacher
  Generator g(8);
  const D teacher = param({4, 5}, g, -3, 3).detach();
  for (double temp : {1.0, 4.0})
    expect_ok(gradcheck([&teacher, temp](const Inputs& v) { return distillation_loss(v[0], teacher, temp); },
                        {param({4, 5}, g, -3, 3)}));
  // At T = 1 its gradient is soft-target cross-entropy's, -mean sum p log_softmax(z): the
  // teacher's entropy, the difference of the two, does not depend on the student.
  D z = param({4, 5}, g, -2, 2), z2 = z.detach().clone().set_requires_grad();
  distillation_loss(z, teacher, 1.0).backward();
  (-sum(softmax(teacher, 1) * log_softmax(z2, 1)) / 4.0).backward();
  CHECK(max_abs_diff(z.grad(), z2.grad()) < 1e-12);
  CHECK_THROWS_WITH(distillation_loss(s, D::zeros({2, 2}), 1.0), Contains("[1, 2]") && Contains("[2, 2]"));
  CHECK_THROWS_WITH(distillation_loss(s, t, 0.0), Contains("temperature 0 must be > 0"));
  CHECK_THROWS_WITH(distillation_loss(s, t.clone().set_requires_grad(), 1.0), Contains("teacher's logits require a gradient"));
}

TEST_CASE("conv2d op: gradcheck of input, weight and bias; shape errors", "[nn][conv][gradcheck]") {
  Generator g(41);
  struct Case {
    Shape x, w;
    Conv2dOptions opt;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5, 4}, {4, 3, 3, 3}, Conv2dOptions::make(1, 1), true},   // 3x3, pad 1
      {{1, 2, 7, 6}, {3, 2, 3, 3}, Conv2dOptions::make(2, 1), false},  // stride 2, odd size
      {{2, 5, 4, 4}, {2, 5, 1, 1}, Conv2dOptions::make(1, 0), true},   // 1x1
      {{1, 3, 6, 5}, {2, 3, 2, 3}, {2, 1, 0, 1}, true},                // rectangular kernel, mixed stride/pad
  };
  for (const auto& c : cases) {
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w));
    if (c.bias)
      expect_ok(gradcheck([&](const Inputs& v) { return conv2d(v[0], v[1], v[2], c.opt); },
                          {param(c.x, g), param(c.w, g), param({c.w[0]}, g)}));
    else
      expect_ok(gradcheck([&](const Inputs& v) { return conv2d(v[0], v[1], D(), c.opt); },
                          {param(c.x, g), param(c.w, g)}));
  }
  CHECK_THROWS_WITH(conv2d(D::zeros({1, 3, 4, 4}), D::zeros({2, 4, 3, 3})),
                    Contains("conv2d") && Contains("[1, 3, 4, 4]") && Contains("[2, 4, 3, 3]"));
  CHECK_THROWS_WITH(conv2d(D::zeros({1, 3, 2, 2}), D::zeros({2, 3, 5, 5})), Contains("larger than the padded input"));
  CHECK_THROWS_WITH(conv2d(D::zeros({1, 3, 4, 4}), D::zeros({2, 3, 3, 3}), D::zeros({3})), Contains("bias [3]"));
}

TEST_CASE("max-pool 2x2 fast path equals the reference loop, ties and NaN included", "[nn][pool][kernels]") {
  Generator g(51);
  for (auto s : {kernels::PoolShape{2, 3, 8, 6, 2, 2, 2, 2}, kernels::PoolShape{1, 5, 7, 9, 2, 2, 2, 2},
                 kernels::PoolShape{4, 16, 32, 32, 2, 2, 2, 2}}) {
    const int64_t n = s.N * s.C * s.H * s.W, m = s.N * s.C * s.OH() * s.OW();
    // Values on a coarse grid so windows hold ties; a few NaNs.
    auto x = Tensor<float>::empty({n});
    for (int64_t i = 0; i < n; ++i) x.data()[i] = static_cast<float>(g.randint(5));
    for (int k = 0; k < 5; ++k) x.data()[g.randint(static_cast<uint64_t>(n))] = std::nanf("");
    std::vector<float> y1(m), y2(m);
    std::vector<int32_t> a1(m), a2(m);
    kernels::max_pool_forward(s, x.data(), y1.data(), a1.data());
    kernels::max_pool_forward_reference(s, x.data(), y2.data(), a2.data());
    int64_t mismatches = 0;
    for (int64_t i = 0; i < m; ++i)
      mismatches += a1[i] != a2[i] || !(y1[i] == y2[i] || (std::isnan(y1[i]) && std::isnan(y2[i])));
    CHECK(mismatches == 0);
  }
}
