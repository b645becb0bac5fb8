// Quantizer ops (quant/ste/dorefa.hpp, quant/ste/bwn.hpp, quant/ste/pact.hpp) and integer codes
// (quant/codes.hpp). Pseudo-gradients are checked against their declared formulas on
// inputs that include exact zeros and the clip boundaries (not finite differences); the
// smooth parts (DoReFa's tanh normalization, PACT's clip in x and alpha) by gradcheck.
#include <catch2/catch.hpp>
#include <cmath>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using namespace lowbit::quant;
using Tf = Tensor<float>;
using Td = Tensor<double>;

namespace {
// dL/dx of y = f(x) for the cotangent g.
template <class T, class F>
Tensor<T> grad_of(F f, const Tensor<T>& x0, const Tensor<T>& g) {
  Tensor<T> x = x0.clone().set_requires_grad();
  Tensor<T> y = f(x);
  y.backward(g);
  return x.grad();
}
std::vector<float> ramp_cotangent(int64_t n) {
  std::vector<float> g(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) g[static_cast<size_t>(i)] = 0.5f + 0.25f * static_cast<float>(i);
  return g;
}
void expect_ok(const GradcheckResult& r) {
  INFO(r.report);
  CHECK(r.ok);
}
}  // namespace

TEST_CASE("pack_codes / unpack_codes round-trip for 1..8 bits and awkward counts", "[quant][codes]") {
  Generator gen(7);
  for (int bits = 1; bits <= 8; ++bits)
    for (int64_t count : {0, 1, 7, 8, 13, 64, 1001}) {
      std::vector<uint32_t> codes(static_cast<size_t>(count));
      for (auto& c : codes) c = static_cast<uint32_t>(gen.randint(int64_t(1) << bits));
      if (count > 2) codes[0] = (1u << bits) - 1, codes[1] = 0;  // extremes
      const auto packed = pack_codes(codes, bits);
      INFO("bits " << bits << " count " << count);
      CHECK(static_cast<int64_t>(packed.size()) == (count * bits + 7) / 8);
      CHECK(unpack_codes(packed.data(), packed.size(), count, bits) == codes);
    }
  // LSB-first layout, by hand: 2-bit codes 1, 2, 3, 0 -> 0b00'11'10'01; 3-bit codes 5, 6, 7
  // -> stream 101 011 111 (LSB first) -> bytes 0b11'110'101 = 0xF5, 0b0000000'1 = 0x01.
  CHECK(pack_codes({1, 2, 3, 0}, 2) == std::vector<uint8_t>{0x39});
  CHECK(pack_codes({5, 6, 7}, 3) == std::vector<uint8_t>{0xF5, 0x01});
  CHECK(pack_codes({1, 0, 1, 1, 0, 0, 0, 0, 1}, 1) == std::vector<uint8_t>{0x0D, 0x01});
  CHECK_THROWS_WITH(pack_codes({4}, 2), Catch::Contains("code 4") && Catch::Contains("2 bits"));
  const std::vector<uint8_t> two{0, 0};
  CHECK_THROWS_WITH(unpack_codes(two.data(), 2, 13, 2), Catch::Contains("need 4 bytes"));
}

TEST_CASE("QuantCodes: both dequantization rules, by hand", "[quant][codes]") {
  QuantCodes c;
  c.shape = {2, 3};
  c.bits = 2;
  c.codes = {0, 1, 2, 3, 3, 0};
  c.levels = {-1.f, -0.25f, 0.5f, 1.f};
  c.group_size = 3;
  CHECK(c.dequantize().to_vector() == std::vector<float>{-1.f, -0.25f, 0.5f, 1.f, 1.f, -1.f});
  c.scales = {2.f, 0.5f};
  CHECK(c.dequantize().to_vector() == std::vector<float>{-2.f, -0.5f, 1.f, 0.5f, 0.5f, -0.5f});
  CHECK(c.storage_bytes() == 2 + 8);  // 12 bits -> 2 bytes, two FP32 scales
  // ALQ-style binary bases: 2 bases per group, scales = coordinates (a0, a1) per group.
  QuantCodes b = c;
  b.rule = "binary_bases";
  b.levels.clear();
  b.scales = {1.f, 0.25f, 2.f, 4.f};  // group 0: a = (1, .25); group 1: a = (2, 4)
  // code c: bit0 -> sign of basis 0, bit1 -> sign of basis 1; elements 3..5 are group 1.
  CHECK(b.dequantize().to_vector() == std::vector<float>{-1.25f, 0.75f, -0.75f, 6.f, 6.f, -6.f});
  b.scales.pop_back();
  CHECK_THROWS_WITH(b.dequantize(), Catch::Contains("needs 4 scales"));
  c.codes[2] = 4;
  CHECK_THROWS_WITH(c.dequantize(), Catch::Contains("code 4 at index 2"));
}

TEST_CASE("quantize_uniform_ste: round(n x) / n forward, identity gradient", "[quant][dorefa]") {
  const Tf x = Tf::from_vector({8}, {0.f, 1.f / 6, 0.2f, 0.5f, 0.51f, 5.f / 6, 0.9f, 1.f});
  // 2 bits: n = 3. 1/6 * 3 = 0.5 -> rint 0 (half to even); 0.2 * 3 = 0.6 -> 1;
  // 0.5 * 3 = 1.5 -> 2 (half to even); 5/6 * 3 = 2.5 -> 2 (half to even).
  const std::vector<float> y = quantize_uniform_ste(x, 2).to_vector();
  const std::vector<float> want{0.f, 0.f, 1.f / 3, 2.f / 3, 2.f / 3, 2.f / 3, 1.f, 1.f};
  CHECK(y == want);
  const Tf g = Tf::from_vector({8}, ramp_cotangent(8));
  CHECK(grad_of([](const Tf& t) { return quantize_uniform_ste(t, 2); }, x, g).to_vector() == g.to_vector());
  CHECK_THROWS_WITH(quantize_uniform_ste(x, 0), Catch::Contains("bits = 0"));
}

TEST_CASE("dorefa_activation: clip to [0, 1], k-bit, STE with both boundaries inside", "[quant][dorefa]") {
  const Tf x = Tf::from_vector({9}, {-2.f, -0.f, 0.f, 0.1f, 0.5f, 0.99f, 1.f, 1.0001f, 3.f});
  const std::vector<float> y = dorefa_activation(x, 2).to_vector();
  const std::vector<float> want{0.f, 0.f, 0.f, 0.f, 2.f / 3, 1.f, 1.f, 1.f, 1.f};
  CHECK(y == want);
  const Tf g = Tf::from_vector({9}, ramp_cotangent(9));
  const std::vector<float> gx = grad_of([](const Tf& t) { return dorefa_activation(t, 2); }, x, g).to_vector();
  const std::vector<float> gv = g.to_vector();
  // Declared: dy/dx = 1 for 0 <= x <= 1 (zeros and 1 included), 0 outside.
  const std::vector<float> mask{0, 1, 1, 1, 1, 1, 1, 0, 0};
  for (size_t i = 0; i < mask.size(); ++i) CHECK(gx[i] == mask[i] * gv[i]);
  // 4 bits: levels are multiples of 1/15.
  for (float v : dorefa_activation(Tf::from_vector({3}, {0.3f, 0.7f, 0.05f}), 4).to_vector())
    CHECK(std::abs(v * 15 - std::round(v * 15)) < 1e-5f);
}

TEST_CASE("DoReFa weights: tanh normalization passes gradcheck", "[quant][dorefa][gradcheck]") {
  Generator gen(3);
  // A clear unique max|W| keeps the max away from its kink.
  Td w = Td::uniform({3, 4}, gen, -1, 1);
  w.data()[5] = 2.5;
  w.data()[2] = 0.0;
  expect_ok(gradcheck([](const std::vector<Td>& x) { return dorefa_weight_normalize(x[0]); },
                      {w.set_requires_grad()}));
}

TEST_CASE("DoReFa weights: forward and pseudo-gradient by hand", "[quant][dorefa]") {
  // W includes an exact zero, and the max |tanh W| is at index 3 (negative).
  const std::vector<float> wv{0.f, 0.3f, -0.2f, -1.5f, 0.9f, 1e-3f};
  const Tf W = Tf::from_vector({6}, wv);
  const int64_t n = 6;
  std::vector<double> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = std::tanh(static_cast<double>(wv[i]));
  const double m = std::abs(t[3]);
  for (int bits : {2, 3, 4, 8}) {
    const double levels = (1 << bits) - 1;
    const std::vector<float> y = dorefa_weight(W, bits).to_vector();
    for (int64_t i = 0; i < n; ++i) {
      const double v = t[i] / m * 0.5 + 0.5;
      const double want = 2 * std::nearbyint(v * levels) / levels - 1;
      CHECK(y[i] == Approx(want).margin(1e-6));
    }
    CHECK(y[0] == Approx(2 * std::nearbyint(0.5 * levels) / levels - 1).margin(1e-7));  // W = 0 -> v = 1/2
    CHECK(y[3] == -1.f);
    // Declared pseudo-gradient: dL/dW_j = sum_i 2 g_i dv_i/dW_j with the exact Jacobian of
    // v_i = t_i / (2 |t_k|) + 1/2 (k = argmax |t|):
    //   dv_i/dW_j = [i = j] (1 - t_j^2) / (2m) - [j = k] t_i sign(t_k) (1 - t_k^2) / (2 m^2).
    const std::vector<float> gv{0.5f, -1.f, 2.f, 0.25f, -0.75f, 1.5f};
    const std::vector<float> gw =
        grad_of([bits](const Tf& x) { return dorefa_weight(x, bits); }, W, Tf::from_vector({6}, gv)).to_vector();
    for (int64_t j = 0; j < n; ++j) {
      double want = 2 * gv[j] * (1 - t[j] * t[j]) / (2 * m);
      if (j == 3)
        for (int64_t i = 0; i < n; ++i) want -= 2 * gv[i] * t[i] * -1.0 * (1 - t[3] * t[3]) / (2 * m * m);
      INFO("bits " << bits << " j " << j);
      CHECK(gw[j] == Approx(want).epsilon(1e-5).margin(1e-6));
    }
  }
  CHECK_THROWS_WITH(dorefa_weight(Tf::zeros({4}), 2), Catch::Contains("all weights are zero"));
  CHECK_THROWS_WITH(dorefa_weight(W, 1), Catch::Contains("bits = 1"));
}

TEST_CASE("BWN weights: mean|W| sign(W) with sign(0) = +1, identity STE", "[quant][bwn]") {
  const Tf W = Tf::from_vector({5}, {0.f, -0.5f, 1.5f, -0.f, 0.25f});
  const float e = static_cast<float>((0.5 + 1.5 + 0.25) / 5);
  CHECK(bwn_weight(W).to_vector() == std::vector<float>{e, -e, e, e, e});
  const Tf g = Tf::from_vector({5}, ramp_cotangent(5));
  // E is a constant in the backward: the gradient is g itself, zeros included.
  CHECK(grad_of([](const Tf& x) { return bwn_weight(x); }, W, g).to_vector() == g.to_vector());
}

TEST_CASE("PACT: forward, and gradients of x and alpha by their declared formulas", "[quant][pact]") {
  const float a = 2.f;
  const Tf x = Tf::from_vector({8}, {-1.f, 0.f, 0.3f, 1.f, 1.99f, 2.f, 2.5f, 10.f});
  const Tf alpha = Tf::full({1}, a);
  // 2 bits: s = 2/3; levels 0, 2/3, 4/3, 2.
  const std::vector<float> y = pact_quantize(x, alpha, 2).to_vector();
  const float s = a / 3;
  const std::vector<float> want{0.f, 0.f, 0.f * s, 2.f * s, 3.f * s, 3.f * s, 3.f * s, 3.f * s};
  CHECK(y == want);
  CHECK(pact_clip(x, alpha).to_vector() == std::vector<float>{0.f, 0.f, 0.3f, 1.f, 1.99f, 2.f, 2.f, 2.f});
  const std::vector<float> gv = ramp_cotangent(8);
  for (int bits : {0, 2, 4}) {
    Tf xx = x.clone().set_requires_grad(), aa = alpha.clone().set_requires_grad();
    Tf out = bits ? pact_quantize(xx, aa, bits) : pact_clip(xx, aa);
    out.backward(Tf::from_vector({8}, gv));
    // dy/dx = 1 on [0, alpha) (0 included, alpha excluded); dy/dalpha = 1 for x >= alpha.
    const std::vector<float> mx{0, 1, 1, 1, 1, 0, 0, 0};
    double ga = 0;
    for (size_t i = 0; i < 8; ++i) {
      INFO("bits " << bits << " i " << i);
      CHECK(xx.grad().to_vector()[i] == mx[i] * gv[i]);
      if (!mx[i] && x.to_vector()[i] >= a) ga += gv[i];
    }
    CHECK(aa.grad().item() == static_cast<float>(ga));
    CHECK(ga == Approx(1.75 + 2.0 + 2.25));  // x = alpha, 2.5, 10
  }
  CHECK_THROWS_WITH(pact_quantize(x, Tf::full({1}, -0.5f), 2), Catch::Contains("alpha = -0.5"));
  CHECK_THROWS_WITH(pact_quantize(x, Tf::full({2}, 1.f), 2), Catch::Contains("one value"));
}

TEST_CASE("PACT: clip passes gradcheck in x and alpha away from the kinks", "[quant][pact][gradcheck]") {
  Generator gen(11);
  Td x = Td::uniform({4, 5}, gen, -1, 3);
  for (int64_t i = 0; i < x.numel(); ++i)  // keep 1e-3 away from 0 and alpha = 1.5
    if (std::abs(x.data()[i]) < 1e-3 || std::abs(x.data()[i] - 1.5) < 1e-3) x.data()[i] += 0.01;
  Td alpha = Td::full({1}, 1.5);
  expect_ok(gradcheck([](const std::vector<Td>& in) { return pact_clip(in[0], in[1]); },
                      {x.set_requires_grad(), alpha.set_requires_grad()}));
}

TEST_CASE("weight quantizers: weight() equals codes().dequantize() bit for bit", "[quant][codes]") {
  Generator gen(5);
  Tf init = nn::kaiming_normal({8, 4, 3, 3}, 36, gen);
  init.data()[0] = 0.f;
  init.data()[1] = -0.f;
  std::vector<std::shared_ptr<WeightQuantizer>> qs{std::make_shared<BinaryWeight>(init.clone())};
  for (int b = 2; b <= 8; ++b) qs.push_back(std::make_shared<DoReFaWeight>(init.clone(), b));
  for (auto& q : qs) {
    INFO(q->type_name() << " " << q->bits() << " bits");
    const QuantCodes c = q->codes();
    CHECK(c.bits == q->bits());
    CHECK(c.shape == init.shape());
    CHECK(q->weight().to_vector() == c.dequantize().to_vector());
    // The latent view is a parameter named "latent"; the weight view is a different tensor.
    REQUIRE(q->named_parameters().size() == 1);
    CHECK(q->named_parameters()[0].first == "latent");
    CHECK(q->named_parameters()[0].second.to_vector() == init.to_vector());
    // Codes survive packing.
    CHECK(unpack_codes(pack_codes(c.codes, c.bits).data(), static_cast<size_t>(c.code_bytes()), c.numel(), c.bits) ==
          c.codes);
  }
  CHECK(qs[0]->codes().scales.size() == 1);  // BWN: mean|W|
  CHECK(qs[1]->codes().scales.empty());      // DoReFa: no scale
  CHECK_THROWS_WITH(DoReFaWeight(init, 1), Catch::Contains("bits = 1") && Catch::Contains("BinaryWeight"));
  CHECK_THROWS_WITH(qs[0]->forward(init), Catch::Contains("call weight()"));
}

// quant/requant_conv.hpp: conv2d_requantized keeps x instead of aq(x) and quantizes again in
// the backward. Its outputs and every gradient (x, w, b and the quantizer's alpha) must be
// the numbers of the unfused conv2d(aq(x), w, b), bit for bit.
TEST_CASE("conv2d_requantized: output and all gradients equal conv2d(aq(x)) bit for bit", "[quant][requant]") {
  Generator gen(11);
  // Inputs below 0, above the clip levels, and exactly on 0, 1 and the PACT/APoT alpha.
  Tf x0 = Tf::uniform({2, 5, 7, 6}, gen, -0.5, 2.0);
  for (int64_t i = 0; i < x0.numel(); i += 7) x0.data()[i] = static_cast<float>(i % 3) * 0.75f;  // 0, 0.75, 1.5
  x0.data()[1] = 1.f;
  const Tf w0 = Tf::randn({4, 5, 3, 3}, gen, 0.0, 0.3), b0 = Tf::randn({4}, gen);
  const Conv2dOptions opt = Conv2dOptions::make(2, 1);
  const Tf g = Tf::randn({2, 4, 4, 3}, gen);
  auto make = [](int which) -> std::shared_ptr<ActivationQuantizer> {
    if (which == 0) return std::make_shared<DoReFaActivation>(2);
    if (which == 1) return std::make_shared<PactActivation>(3, 1.5f);
    ApotConfig c;
    c.a_alpha = 1.5f;
    return std::make_shared<ApotActivation>(4, c);
  };
  for (int which = 0; which < 3; ++which)
    for (bool x_grad : {true, false}) {
      auto aq = make(which);
      INFO(aq->type_name() << ", x requires grad: " << x_grad);
      struct Out {
        Tf y, dx, dw, db;
        std::vector<Tf> dalpha;
      };
      auto run = [&](bool fused) {
        Tf x = x0.clone(), w = w0.clone().set_requires_grad(), b = b0.clone().set_requires_grad();
        if (x_grad) x.set_requires_grad();
        aq->zero_grad(/*set_to_none=*/true);
        Out o;
        o.y = fused ? conv2d_requantized(x, aq, w, b, opt) : conv2d((*aq)(x), w, b, opt);
        o.y.backward(g);
        if (x_grad) o.dx = x.grad();
        o.dw = w.grad(), o.db = b.grad();
        for (const Tf& p : aq->parameters()) o.dalpha.push_back(p.grad());
        return o;
      };
      const Out ref = run(false), got = run(true);
      CHECK(max_abs_diff(got.y, ref.y) == 0.0);
      if (x_grad) CHECK(max_abs_diff(got.dx, ref.dx) == 0.0);
      CHECK(max_abs_diff(got.dw, ref.dw) == 0.0);
      CHECK(max_abs_diff(got.db, ref.db) == 0.0);
      REQUIRE(got.dalpha.size() == ref.dalpha.size());
      for (size_t k = 0; k < ref.dalpha.size(); ++k) {
        REQUIRE(got.dalpha[k].defined());
        CHECK(got.dalpha[k].item() == ref.dalpha[k].item());
        CHECK(ref.dalpha[k].item() != 0.f);  // inputs beyond alpha: the alpha gradient is exercised
      }
      if (x_grad) CHECK(max_abs_diff(ref.dx, Tf::zeros(ref.dx.shape())) > 0.0);
    }
}

TEST_CASE("conv2d_requantized: no recording without grad; a stateful quantizer is refused", "[quant][requant][errors]") {
  Generator gen(12);
  const Tf x = Tf::uniform({1, 3, 5, 5}, gen, 0.0, 1.2), w = Tf::randn({2, 3, 3, 3}, gen);
  auto aq = std::make_shared<DoReFaActivation>(2);
  const Tf y = conv2d_requantized(x, aq, w);
  CHECK(!y.requires_grad());
  CHECK(max_abs_diff(y, conv2d((*aq)(x), w)) == 0.0);
  auto alq = std::make_shared<alq::AlqActivation>(2);
  try {
    conv2d_requantized(x, alq, w);
    FAIL("expected an error");
  } catch (const std::exception& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains("not pure") && Catch::Matchers::Contains(alq->type_name()));
  }
}
