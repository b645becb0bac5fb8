// SLB (quant/slb/slb.hpp, quant/slb/schedule.hpp, quant/slb/sbn.hpp, quant/slb/hooks.hpp): the value set, the
// softmax-expectation op and its exact gradient (gradcheck at several temperatures),
// Theorem 1, codes/export, the temperature schedules against their formulas, and state
// batch-norm's two sets of statistics against hand-computed ones.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>
#include <lowbit/lowbit.hpp>
#include <lowbit/quant/slb/slb.hpp>
#include <lowbit/quant/slb/hooks.hpp>
#include <lowbit/quant/slb/sbn.hpp>
#include <lowbit/quant/slb/schedule.hpp>

using namespace lowbit;
using namespace lowbit::quant;
using Tf = Tensor<float>;
using Td = Tensor<double>;

namespace {
void expect_ok(const GradcheckResult& r) {
  INFO(r.report);
  CHECK(r.ok);
}
double l2(const Tf& t) {
  double s = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += static_cast<double>(t.data()[i]) * t.data()[i];
  return std::sqrt(s);
}
// A 1x1 conv (SLB weight) followed by BN: the smallest model with an SLB layer and a BN.
struct TinySlbNet {
  std::shared_ptr<nn::Sequential> net = std::make_shared<nn::Sequential>();
  std::shared_ptr<QConv2d> conv;
  std::shared_ptr<nn::BatchNorm> bn;
  SlbWeight* wq = nullptr;
  TinySlbNet(int bits, int64_t in, int64_t out, uint64_t seed) {
    Generator g(seed);
    conv = std::make_shared<QConv2d>(
        nn::ConvSpec{in, out, 1, 1, 0, false, nn::LayerRole::Middle},
        [bits](const Tf& init) { return std::make_shared<SlbWeight>(init, bits); }, nullptr, g);
    bn = std::make_shared<nn::BatchNorm>(out);
    net->push_back(conv);
    net->push_back(bn);
    wq = dynamic_cast<SlbWeight*>(conv->wq.get());
  }
};
// y[n, o, s] = sum_c W[o, c] x[n, c, s] (a 1x1 conv, by hand, in double).
std::vector<double> conv1x1(const Tf& x, const Tf& w) {
  const int64_t N = x.shape()[0], C = x.shape()[1], S = x.shape()[2] * x.shape()[3], O = w.shape()[0];
  std::vector<double> y(static_cast<size_t>(N * O * S), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t s = 0; s < S; ++s) {
        double a = 0;
        for (int64_t c = 0; c < C; ++c) a += static_cast<double>(w.data()[o * C + c]) * x.data()[(n * C + c) * S + s];
        y[static_cast<size_t>((n * O + o) * S + s)] = a;
      }
  return y;
}
// Per-channel mean and unbiased variance of y [N, O, S].
void channel_stats(const std::vector<double>& y, int64_t N, int64_t O, int64_t S, int64_t o, double& mean,
                   double& var) {
  double s = 0, q = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < S; ++k) s += y[static_cast<size_t>((n * O + o) * S + k)];
  mean = s / static_cast<double>(N * S);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < S; ++k) {
      const double d = y[static_cast<size_t>((n * O + o) * S + k)] - mean;
      q += d * d;
    }
  var = q / static_cast<double>(N * S - 1);
}
StepContext ctx_at(int64_t step, int64_t total) { return StepContext{step, total, total, 0}; }
}  // namespace

TEST_CASE("SLB value set V for 1, 2, 4 and 8 bits", "[slb]") {
  CHECK(slb_values<float>(1) == std::vector<float>{-1.f, 1.f});
  const auto v2 = slb_values<double>(2);  // {-1, -1/3, 1/3, 1}: no zero level
  REQUIRE(v2.size() == 4);
  CHECK(v2[0] == -1.0);
  CHECK(v2[1] == Approx(-1.0 / 3.0).epsilon(1e-15));
  CHECK(v2[2] == Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(v2[3] == 1.0);
  for (int bits : {4, 8}) {
    const auto v = slb_values<double>(bits);
    const int64_t m = int64_t(1) << bits;
    REQUIRE(static_cast<int64_t>(v.size()) == m);
    CHECK(v.front() == -1.0);
    CHECK(v.back() == 1.0);
    for (int64_t i = 1; i < m; ++i) CHECK(v[i] - v[i - 1] == Approx(2.0 / static_cast<double>(m - 1)).epsilon(1e-12));
    // Symmetric around 0, and (even m) no zero level.
    for (int64_t i = 0; i < m; ++i) CHECK(v[i] == Approx(-v[m - 1 - i]).margin(1e-15));
  }
  CHECK(slb_values<float>(4)[5] == static_cast<float>(-1.0 + 10.0 / 15.0));
  CHECK_THROWS_WITH(slb_values<float>(0), Catch::Contains("bits = 0") && Catch::Contains("1..8"));
  CHECK_THROWS_WITH(slb_values<float>(9), Catch::Contains("bits = 9"));
}

TEST_CASE("SLB Eqs. 5-6: forward by hand and the written-out backward", "[slb]") {
  // 1 bit: W_c = P_2 - P_1 = tanh((a_2 - a_1) / (2 tau)).
  const Td A({2, 3}, {0.3, -1.2, 0.0, -0.5, 0.7, 0.0});
  for (double tau : {0.05, 0.5, 2.0}) {
    const Td wc = slb_expectation(A, slb_values<double>(1), tau);
    REQUIRE(wc.shape() == Shape{3});
    for (int j = 0; j < 3; ++j)
      CHECK(wc.data()[j] == Approx(std::tanh((A.data()[3 + j] - A.data()[j]) / (2 * tau))).epsilon(1e-12));
  }
  // 2 bits, one weight: P = softmax(A / tau) by hand, W_c = sum P v, dA_i = P_i (v_i - W_c) g / tau.
  const std::vector<double> v = slb_values<double>(2);
  const double a[4] = {0.2, -0.4, 1.1, 0.5}, tau = 0.7, g = -1.3;
  double e[4], s = 0;
  for (int i = 0; i < 4; ++i) s += (e[i] = std::exp(a[i] / tau));
  double wc = 0;
  for (int i = 0; i < 4; ++i) wc += e[i] / s * v[i];
  Td A2 = Td({4, 1}, {a[0], a[1], a[2], a[3]}).set_requires_grad();
  Td y = slb_expectation(A2, v, tau);
  CHECK(y.data()[0] == Approx(wc).epsilon(1e-13));
  y.backward(Td({1}, {g}));
  for (int i = 0; i < 4; ++i) CHECK(A2.grad().data()[i] == Approx(e[i] / s * (v[i] - wc) * g / tau).epsilon(1e-12));
  // Bad input names the argument.
  CHECK_THROWS_WITH(slb_expectation(A2, v, 0.0), Catch::Contains("tau = 0"));
  CHECK_THROWS_WITH(slb_expectation(A2, slb_values<double>(1), 1.0), Catch::Contains("4 logits per weight") &&
                                                                         Catch::Contains("2 values"));
}

TEST_CASE("SLB Eqs. 5-6 pass gradcheck at several temperatures and bit widths", "[slb][gradcheck]") {
  Generator gen(11);
  for (int bits : {1, 2, 4}) {
    const auto v = slb_values<double>(bits);
    const int64_t m = int64_t(1) << bits;
    for (double tau : {0.1, 1.0, 10.0, 100.0}) {
      // Logits of size ~tau so the softmax is neither one-hot (no gradient to see) nor flat.
      Td A = Td::randn({m, 3, 5}, gen, 0.0, tau).set_requires_grad();
      INFO("bits " << bits << " tau " << tau);
      expect_ok(gradcheck([&](const std::vector<Td>& xs) { return slb_expectation(xs[0], v, tau); }, {A}));
    }
  }
  // A weight tensor wider than one kernel block (256 weights), so the blocking is covered.
  Td A = Td::randn({2, 600}, gen).set_requires_grad();
  GradcheckOptions o;
  o.max_elements = 300;
  expect_ok(gradcheck([&](const std::vector<Td>& xs) { return slb_expectation(xs[0], slb_values<double>(1), 0.5); },
                      {A}, o));
}

TEST_CASE("SLB Theorem 1: the quantization gap vanishes as tau -> 0 on random A", "[slb]") {
  Generator gen(5);
  for (int bits : {1, 2, 4}) {
    TinySlbNet t(bits, 16, 32, 100 + bits);
    NoGradGuard no_grad;
    Tf(t.wq->latent).copy_(Tf::randn(t.wq->latent.shape(), gen));
    double prev = 1e300, prev_p = 0;
    for (double tau : {10.0, 1.0, 0.1, 0.01, 0.001}) {
      t.wq->set_tau(tau);
      const double g = l2(t.wq->gap());
      const SlbSharpness s = t.wq->sharpness();
      INFO("bits " << bits << " tau " << tau);
      CHECK(g < prev);  // ||W_q - W_c|| shrinks with tau
      CHECK(s.sum_max_p / static_cast<double>(s.weights) > prev_p);
      CHECK(std::sqrt(s.gap_sq) == Approx(g).epsilon(1e-5));
      prev = g, prev_p = s.sum_max_p / static_cast<double>(s.weights);
    }
    // In the limit (exp underflows) P is one-hot and W_c = W_q exactly.
    t.wq->set_tau(1e-9);
    CHECK(l2(t.wq->gap()) == 0.0);
    CHECK(t.wq->sharpness().max_p_gt_0999 == t.wq->sharpness().weights);
  }
}

TEST_CASE("SlbWeight: W_c in training, W_q in eval and discrete mode; codes = argmax, bit-exact export",
          "[slb][codes]") {
  for (int bits : {1, 2, 4, 8}) {
    TinySlbNet t(bits, 3, 5, 7);
    SlbWeight& q = *t.wq;
    const int64_t m = int64_t(1) << bits, n = 15;
    REQUIRE(q.latent.shape() == Shape{m, 5, 3, 1, 1});
    CHECK(q.weight_shape() == Shape{5, 3, 1, 1});
    q.set_tau(0.3);
    t.net->train();
    Tf wc = q.weight();
    CHECK(wc.requires_grad());
    // Hand argmax over the m contiguous planes of A.
    std::vector<uint32_t> k(n);
    for (int64_t j = 0; j < n; ++j) {
      uint32_t best = 0;
      for (int64_t i = 1; i < m; ++i)
        if (q.latent.data()[i * n + j] > q.latent.data()[best * n + j]) best = static_cast<uint32_t>(i);
      k[static_cast<size_t>(j)] = best;
    }
    const QuantCodes c = q.codes();
    CHECK(c.codes == k);
    CHECK(c.levels == slb_values<float>(bits));
    CHECK(c.scales.empty());
    CHECK(c.bits == bits);
    t.net->eval();
    Tf wq = q.weight();
    CHECK_FALSE(wq.requires_grad());
    const Tf deq = c.dequantize();
    for (int64_t j = 0; j < n; ++j) {
      CHECK(wq.data()[j] == slb_values<float>(bits)[k[static_cast<size_t>(j)]]);
      CHECK(std::memcmp(&wq.data()[j], &deq.data()[j], sizeof(float)) == 0);
    }
    // Discrete mode gives W_q in training too; the flag is the quantizer's.
    t.net->train();
    q.set_discrete(true);
    CHECK(q.weight().to_vector() == wq.to_vector());
    q.set_discrete(false);
    CHECK(q.weight().to_vector() == wc.to_vector());
    // Eq. 9.
    const Tf gap = q.gap();
    for (int64_t j = 0; j < n; ++j) CHECK(gap.data()[j] == wq.data()[j] - wc.data()[j]);
  }
  TinySlbNet t(2, 3, 5, 7);
  CHECK_THROWS_WITH(t.wq->set_tau(-1.0), Catch::Contains("tau = -1"));
  CHECK_THROWS_WITH(SlbWeight(Tf::zeros({2, 2}), 9), Catch::Contains("bits = 9"));
}

TEST_CASE("SlbWeight init: Kaiming logits per layer; from an FP32 weight the nearest value wins", "[slb]") {
  Generator g(3);
  const Tf w1 = nn::kaiming_normal({64, 32, 3, 3}, 288, g), w2 = nn::kaiming_normal({64, 32, 3, 3}, 288, g);
  SlbWeight a(w1, 2), b(w1, 2), c(w2, 2);
  CHECK(a.latent.to_vector() == b.latent.to_vector());  // deterministic for a given model seed
  CHECK(a.latent.to_vector() != c.latent.to_vector());  // different layers, different logits
  double s = 0, q = 0;
  for (float x : a.latent.to_vector()) s += x, q += static_cast<double>(x) * x;
  const double n = static_cast<double>(a.latent.numel()), mean = s / n;
  CHECK(std::abs(mean) < 0.01);
  CHECK(std::sqrt(q / n - mean * mean) == Approx(std::sqrt(2.0 / 288.0)).epsilon(0.02));

  // init = weight: W_q is w / max|w| rounded to the nearest value of V.
  const Tf w = Tf({2, 4}, {0.9f, -0.1f, 0.5f, -2.0f, 1.2f, 0.05f, -0.7f, 0.3f});
  for (int bits : {1, 2, 4}) {
    SlbWeight sw(w, bits, SlbInit::Weight);
    const auto v = slb_values<float>(bits);
    const Tf wq = sw.discrete_weight();
    for (int64_t j = 0; j < w.numel(); ++j) {
      const float x = w.data()[j] / 2.0f;
      float best = v[0];
      for (float vi : v)
        if (std::abs(x - vi) < std::abs(x - best)) best = vi;
      INFO("bits " << bits << " w " << w.data()[j]);
      CHECK(wq.data()[j] == best);
    }
  }
  CHECK(parse_slb_init("kaiming") == SlbInit::Kaiming);
  CHECK_THROWS_WITH(parse_slb_init("xavier"), Catch::Contains("'xavier'") && Catch::Contains("kaiming or weight"));
}

TEST_CASE("SlbWeight with values = he: V times sqrt(2 / fan_in), exported as one scale, bit-exact", "[slb][codes]") {
  Generator g(5);
  const Tf w = nn::kaiming_normal({8, 4, 3, 3}, 36, g);
  const float c = static_cast<float>(std::sqrt(2.0 / 36.0));
  for (int bits : {1, 2}) {
    SlbWeight q(w, bits, SlbInit::Kaiming, SlbValues::He);
    SlbWeight unit(w, bits);
    CHECK(q.value_scale() == c);
    CHECK(q.latent.to_vector() == unit.latent.to_vector());  // the same search, only V is scaled
    const auto v = slb_values<float>(bits);
    for (size_t i = 0; i < v.size(); ++i) CHECK(q.values()[i] == c * v[i]);
    const Tf wq = q.discrete_weight(), wq_unit = unit.discrete_weight();
    for (int64_t j = 0; j < wq.numel(); ++j) CHECK(wq.data()[j] == c * wq_unit.data()[j]);
    q.set_tau(0.5), unit.set_tau(0.5);
    const Tf wc = q.continuous_weight(), wc_unit = unit.continuous_weight();
    for (int64_t j = 0; j < wc.numel(); ++j) CHECK(wc.data()[j] == Approx(c * wc_unit.data()[j]).margin(1e-7));
    const QuantCodes codes = q.codes();
    CHECK(codes.levels == v);
    CHECK(codes.scales == std::vector<float>{c});
    const Tf deq = codes.dequantize();
    CHECK(std::memcmp(deq.data(), wq.data(), sizeof(float) * static_cast<size_t>(wq.numel())) == 0);
    // init = weight still picks the nearest value of the unit set for w / max|w|.
    SlbWeight from(w, bits, SlbInit::Weight, SlbValues::He), from_unit(w, bits, SlbInit::Weight);
    CHECK(from.latent.to_vector() == from_unit.latent.to_vector());
  }
  CHECK(SlbOptions::from_json({{"values", "he"}}).values == SlbValues::He);
  CHECK(SlbOptions::from_json({{"values", "he_rms"}}).values == SlbValues::HeRms);
  CHECK(SlbOptions::from_json(nlohmann::json::object()).values == SlbValues::Unit);
  CHECK_THROWS_WITH(SlbOptions::from_json({{"values", "xavier"}}), Catch::Contains("'slb.values'"));
}

TEST_CASE("SlbWeight with values = he_rms: rms(W) = sqrt(2 / fan_in) at any temperature; gradcheck; bit-exact export",
          "[slb][codes][gradcheck]") {
  Generator g(6);
  const Tf w = nn::kaiming_normal({8, 4, 3, 3}, 36, g);
  const double h = std::sqrt(2.0 / 36.0);
  auto rms = [](const Tf& t) {
    double s = 0;
    for (int64_t j = 0; j < t.numel(); ++j) s += static_cast<double>(t.data()[j]) * t.data()[j];
    return std::sqrt(s / static_cast<double>(t.numel()));
  };
  for (int bits : {1, 2}) {
    SlbWeight q(w, bits, SlbInit::Kaiming, SlbValues::HeRms), unit(w, bits);
    CHECK(q.latent.to_vector() == unit.latent.to_vector());  // the same search; only the scale differs
    // W_c of the unit set shrinks with T = 1/tau (about T times the logits' spread); he_rms's does not.
    for (double tau : {100.0, 1.0, 0.01}) {
      q.set_tau(tau), unit.set_tau(tau);
      const Tf wc = q.continuous_weight(), wc_unit = unit.continuous_weight();
      CHECK(rms(wc) == Approx(h).epsilon(1e-5));
      const double r = h / rms(wc_unit);  // the same direction, rescaled
      for (int64_t j = 0; j < wc.numel(); j += 7) CHECK(wc.data()[j] == Approx(r * wc_unit.data()[j]).epsilon(1e-4));
    }
    CHECK(rms(unit.continuous_weight()) > 0.5);  // tau 0.01: nearly one-hot
    q.set_tau(100.0), unit.set_tau(100.0);
    CHECK(rms(unit.continuous_weight()) < 0.05);  // tau 100: nearly zero, the problem he_rms solves
    // W_q: the unit codes times one scale h / rms(W_q); the export dequantizes to it bit for bit.
    const Tf wq = q.discrete_weight(), wq_unit = unit.discrete_weight();
    CHECK(rms(wq) == Approx(h).epsilon(1e-6));
    const float sc = q.discrete_scale();
    if (bits == 1) CHECK(sc == static_cast<float>(h));
    for (int64_t j = 0; j < wq.numel(); ++j) CHECK(wq.data()[j] == wq_unit.data()[j] * sc);
    const QuantCodes codes = q.codes();
    CHECK(codes.levels == slb_values<float>(bits));
    CHECK(codes.scales == std::vector<float>{sc});
    const Tf deq = codes.dequantize();
    CHECK(std::memcmp(deq.data(), wq.data(), sizeof(float) * static_cast<size_t>(wq.numel())) == 0);
    q.train(false);
    const Tf we = q.weight();
    CHECK(std::memcmp(we.data(), wq.data(), sizeof(float) * static_cast<size_t>(wq.numel())) == 0);
  }
  // The rescaled W_c's gradient (composed of square, mean, sqrt, rdiv and mul) against finite differences,
  // in double, at a temperature where the softmax is neither flat nor one-hot.
  Generator gd(7);
  const Td A = Td::randn({2, 3, 5}, gd, 0.0, 1.0).set_requires_grad();
  const auto v = slb_values<double>(1);
  expect_ok(gradcheck([&](const std::vector<Td>& xs) {
    const Td wc = slb_expectation(xs[0], v, 0.7);
    return mul(wc, rdiv(0.25, sqrt(mean(square(wc)))));
  }, {A}));
}

TEST_CASE("SLB temperature schedules: first, middle and last values equal the formulas", "[slb][schedule]") {
  const double ts = 0.01, te = 10.0;
  const int64_t I = 1000;
  SlbSchedule s;
  const double pi = 3.14159265358979323846;
  auto T = [&](const std::string& kind, int64_t step) {
    s.kind = kind;
    return s.temperature(step, I, 100);
  };
  // First step: Algorithm 1's iteration i = 1.
  CHECK(T("linear", 0) == Approx(ts + (te - ts) / I).epsilon(1e-14));
  CHECK(T("sin", 0) == Approx(ts + std::sin(pi / (2.0 * I)) * (te - ts)).epsilon(1e-14));
  CHECK(T("exp", 0) == Approx(ts * std::pow(te / ts, 1.0 / I)).epsilon(1e-14));
  // Middle (i = I/2).
  CHECK(T("linear", I / 2 - 1) == Approx((ts + te) / 2).epsilon(1e-14));
  CHECK(T("sin", I / 2 - 1) == Approx(ts + std::sqrt(0.5) * (te - ts)).epsilon(1e-14));
  CHECK(T("exp", I / 2 - 1) == Approx(std::sqrt(ts * te)).epsilon(1e-14));
  // Last (i = I): T_e.
  for (const char* k : {"linear", "sin", "exp", "sgdr"}) CHECK(T(k, I - 1) == Approx(te).epsilon(1e-14));
  // The default is the paper's exp from 0.01 to 10.
  CHECK(SlbSchedule{}.kind == "exp");
  CHECK(SlbSchedule{}.t_start == 0.01);
  CHECK(SlbSchedule{}.t_end == 10.0);
  // sgdr: three exp periods of I/3 iterations, each ending at T_e, restarting near T_s.
  const int64_t J = 300;
  s.kind = "sgdr";
  CHECK(s.temperature(0, J, 10) == Approx(ts * std::pow(te / ts, 1.0 / 100)).epsilon(1e-14));
  CHECK(s.temperature(49, J, 10) == Approx(std::sqrt(ts * te)).epsilon(1e-14));
  CHECK(s.temperature(99, J, 10) == Approx(te).epsilon(1e-14));
  CHECK(s.temperature(100, J, 10) == Approx(ts * std::pow(te / ts, 1.0 / 100)).epsilon(1e-14));
  CHECK(s.temperature(249, J, 10) == Approx(std::sqrt(ts * te)).epsilon(1e-14));
  CHECK(s.temperature(299, J, 10) == Approx(te).epsilon(1e-14));
  // geometric (docs/notes/slb.md §3.3), E = 100 epochs of 10 steps: T_0 up to epoch 20,
  // T_0 1.2^(e - 20) up to epoch 60, then constant.
  s.kind = "geometric";
  s.t_start = 1.0;
  CHECK(s.temperature(0, 1000, 10) == 1.0);
  CHECK(s.temperature(199, 1000, 10) == 1.0);                                   // epoch 20
  CHECK(s.temperature(200, 1000, 10) == Approx(1.2).epsilon(1e-14));           // epoch 21
  CHECK(s.temperature(599, 1000, 10) == Approx(std::pow(1.2, 40)).epsilon(1e-13));  // epoch 60
  CHECK(s.temperature(999, 1000, 10) == Approx(std::pow(1.2, 40)).epsilon(1e-13));
  CHECK(slb_temperature_geometric(30, 100, 5.0, 1.1, 0.2, 0.6) == Approx(5.0 * std::pow(1.1, 10)).epsilon(1e-14));
  // Bad input.
  s.kind = "cosine";
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("'cosine'"));
  CHECK_THROWS_WITH(SlbSchedule{}.temperature(10, 10, 1), Catch::Contains("step 10"));
}

TEST_CASE("SLB options: defaults, every key, and errors naming the key", "[slb]") {
  const SlbOptions d = SlbOptions::from_json(nlohmann::json::object());
  CHECK(d.schedule.kind == "exp");
  CHECK(d.sbn);
  CHECK(d.calibrate_batches == 0);
  CHECK(d.init == SlbInit::Kaiming);
  const SlbOptions o = SlbOptions::from_json({{"schedule", "sgdr"}, {"t_start", 0.1}, {"t_end", 20}, {"periods", 4},
                                              {"sbn", false}, {"calibrate_batches", 7}, {"init", "weight"},
                                              {"geo_factor", 1.1}, {"geo_start", 0.3}, {"geo_end", 0.9}});
  CHECK(o.schedule.kind == "sgdr");
  CHECK(o.schedule.t_start == 0.1);
  CHECK(o.schedule.t_end == 20.0);
  CHECK(o.schedule.periods == 4);
  CHECK_FALSE(o.sbn);
  CHECK(o.calibrate_batches == 7);
  CHECK(o.init == SlbInit::Weight);
  CHECK(o.schedule.geo_end == 0.9);
  CHECK_THROWS_WITH(SlbOptions::from_json({{"temperature", 1}}), Catch::Contains("unknown config key 'slb.temperature'"));
  CHECK_THROWS_WITH(SlbOptions::from_json({{"sbn", 1}}), Catch::Contains("'slb.sbn' = 1: expected true or false"));
  CHECK_THROWS_WITH(SlbOptions::from_json({{"t_start", -1.0}}), Catch::Contains("'slb.t_start' = -1.0"));
  CHECK_THROWS_WITH(SlbOptions::from_json({{"periods", 1.5}}), Catch::Contains("'slb.periods' = 1.5: expected an integer"));
}

TEST_CASE("SLB state batch-norm: both sets of statistics equal hand-computed ones", "[slb][sbn]") {
  TinySlbNet t(2, 2, 3, 21);
  Generator gen(4);
  const Tf x = Tf::randn({2, 2, 2, 2}, gen);
  const int64_t N = 2, O = 3, S = 4;
  // Constant temperature T = 0.5 (tau = 2): a soft distribution, so W_c and W_q differ.
  SlbHooks hooks({{"schedule", "linear"}, {"t_start", 0.5}, {"t_end", 0.5}});
  t.net->train();
  std::vector<double> cm(O, 0.0), cv(O, 1.0), qm(O, 0.0), qv(O, 1.0);  // PyTorch's initial values
  for (int64_t step = 0; step < 2; ++step) {
    hooks.begin_step(*t.net, ctx_at(step, 10));
    REQUIRE(t.wq->tau() == Approx(2.0));
    const Tf wc = t.wq->continuous_weight().detach(), wq = t.wq->discrete_weight();
    REQUIRE(l2(wc) > 0);
    REQUIRE(wc.to_vector() != wq.to_vector());
    (*t.net)(x);  // the training forward (W_c), Eq. 13
    hooks.end_step(*t.net, x, ctx_at(step, 10));  // the discrete pass (W_q), Eq. 14
    const auto yc = conv1x1(x, wc), yq = conv1x1(x, wq);
    for (int64_t o = 0; o < O; ++o) {
      double mc, vc, mq, vq;
      channel_stats(yc, N, O, S, o, mc, vc);
      channel_stats(yq, N, O, S, o, mq, vq);
      cm[o] = 0.9 * cm[o] + 0.1 * mc, cv[o] = 0.9 * cv[o] + 0.1 * vc;
      qm[o] = 0.9 * qm[o] + 0.1 * mq, qv[o] = 0.9 * qv[o] + 0.1 * vq;
      INFO("step " << step << " channel " << o);
      CHECK(hooks.state_batch_norm().continuous_mean(0).data()[o] == Approx(cm[o]).margin(1e-6));
      CHECK(hooks.state_batch_norm().continuous_var(0).data()[o] == Approx(cv[o]).epsilon(1e-5));
      // At rest the layer's own buffers hold the discrete statistics.
      CHECK(t.bn->running_mean.data()[o] == Approx(qm[o]).margin(1e-6));
      CHECK(t.bn->running_var.data()[o] == Approx(qv[o]).epsilon(1e-5));
      CHECK(std::abs(cm[o] - qm[o]) + std::abs(cv[o] - qv[o]) > 1e-4);  // the two sets really differ
    }
    CHECK_FALSE(t.wq->discrete());
    CHECK(t.net->is_training());
  }
  // Evaluation = W_q with the discrete statistics and the shared gamma, beta (Eq. 15).
  {
    NoGradGuard no_grad;
    t.bn->weight.copy_(Tf({3}, {1.5f, -0.5f, 2.0f}));
    t.bn->bias.copy_(Tf({3}, {0.1f, 0.2f, -0.3f}));
  }
  t.net->eval();
  const Tf z = (*t.net)(x);
  const auto yq = conv1x1(x, t.wq->discrete_weight());
  for (int64_t i = 0; i < z.numel(); ++i) {
    const int64_t o = (i / S) % O;
    const double ref = t.bn->weight.data()[o] * (yq[static_cast<size_t>(i)] - qm[o]) / std::sqrt(qv[o] + 1e-5) +
                       t.bn->bias.data()[o];
    CHECK(z.data()[i] == Approx(ref).margin(1e-4));
  }
  // state() carries the continuous set to a resumed run, exactly.
  SlbHooks resumed({{"schedule", "linear"}, {"t_start", 0.5}, {"t_end", 0.5}});
  resumed.load_state(nlohmann::json::parse(hooks.state().dump()));
  CHECK(resumed.state_batch_norm().continuous_mean(0).to_vector() ==
        hooks.state_batch_norm().continuous_mean(0).to_vector());
  CHECK(resumed.state_batch_norm().continuous_var(0).to_vector() ==
        hooks.state_batch_norm().continuous_var(0).to_vector());
}

TEST_CASE("SLB without SBN keeps one set; BN calibration moves it toward the W_q statistics", "[slb][sbn]") {
  TinySlbNet t(1, 2, 3, 22);
  Generator gen(8);
  const Tf x = Tf::randn({4, 2, 2, 2}, gen);
  SlbHooks hooks({{"schedule", "linear"}, {"t_start", 0.5}, {"t_end", 0.5}, {"sbn", false}, {"calibrate_batches", 2}});
  t.net->train();
  hooks.begin_step(*t.net, ctx_at(0, 10));
  const Tf wc = t.wq->continuous_weight().detach(), wq = t.wq->discrete_weight();
  (*t.net)(x);
  hooks.end_step(*t.net, x, ctx_at(0, 10));
  const auto yc = conv1x1(x, wc), yq = conv1x1(x, wq);
  std::vector<double> m(3), v(3);
  for (int64_t o = 0; o < 3; ++o) {
    double mc, vc;
    channel_stats(yc, 4, 3, 4, o, mc, vc);
    m[o] = 0.1 * mc, v[o] = 0.9 + 0.1 * vc;
    CHECK(t.bn->running_mean.data()[o] == Approx(m[o]).margin(1e-6));  // no discrete pass
    CHECK(t.bn->running_var.data()[o] == Approx(v[o]).epsilon(1e-5));
  }
  // end_epoch calibrates with 2 (of 3 available) batches of W_q, then logs.
  int served = 0;
  const nlohmann::json log = hooks.end_epoch(*t.net, [&](Tf& images) {
    if (served == 3) return false;
    ++served, images = x;
    return true;
  }, 0);
  CHECK(served == 2);
  CHECK(log.at("calibrated_batches") == 2);
  for (int64_t o = 0; o < 3; ++o) {
    double mq, vq;
    channel_stats(yq, 4, 3, 4, o, mq, vq);
    for (int k = 0; k < 2; ++k) m[o] = 0.9 * m[o] + 0.1 * mq, v[o] = 0.9 * v[o] + 0.1 * vq;
    CHECK(t.bn->running_mean.data()[o] == Approx(m[o]).margin(1e-6));
    CHECK(t.bn->running_var.data()[o] == Approx(v[o]).epsilon(1e-5));
  }
  CHECK(hooks.state().at("sbn_continuous").empty());
}

TEST_CASE("SLB hooks: tau set every step, end_epoch logs the sharpness of the search", "[slb]") {
  TinySlbNet t(2, 4, 6, 23);
  SlbHooks hooks(nlohmann::json::object());  // exp from 0.01 to 10
  t.net->train();
  hooks.begin_step(*t.net, ctx_at(0, 4));
  CHECK(t.wq->tau() == Approx(1.0 / (0.01 * std::pow(1000.0, 0.25))));
  hooks.begin_step(*t.net, ctx_at(3, 4));
  CHECK(t.wq->tau() == Approx(0.1));
  hooks.end_step(*t.net, Tf::ones({2, 4, 2, 2}), ctx_at(3, 4));
  const nlohmann::json log = hooks.end_epoch(*t.net, [](Tf&) { return false; }, 0);
  // By hand from P = softmax(A / tau) over the 4 planes of A.
  const int64_t n = 24;
  double sum_max = 0, gap = 0, wcn = 0;
  int64_t sharp = 0;
  const auto v = slb_values<double>(2);
  for (int64_t j = 0; j < n; ++j) {
    double e[4], s = 0, mx = -1e300, wc = 0;
    int k = 0;
    for (int i = 0; i < 4; ++i) mx = std::max(mx, static_cast<double>(t.wq->latent.data()[i * n + j]) * 10);
    for (int i = 0; i < 4; ++i) s += (e[i] = std::exp(t.wq->latent.data()[i * n + j] * 10.0 - mx));
    for (int i = 0; i < 4; ++i) {
      wc += e[i] / s * v[i];
      if (e[i] > e[k]) k = i;
    }
    sum_max += e[k] / s, sharp += e[k] / s > 0.999;
    gap += (v[k] - wc) * (v[k] - wc), wcn += wc * wc;
  }
  CHECK(log.at("tau").get<double>() == Approx(0.1));
  CHECK(log.at("mean_max_p").get<double>() == Approx(sum_max / n).epsilon(1e-5));
  CHECK(log.at("frac_max_p_gt_0999").get<double>() == Approx(static_cast<double>(sharp) / n));
  CHECK(log.at("gap_rel").get<double>() == Approx(std::sqrt(gap / wcn)).epsilon(1e-4));
  CHECK_FALSE(log.contains("calibrated_batches"));
}

TEST_CASE("SLB through QuantSpec: factory, init option, hooks and validation", "[slb][spec]") {
  QuantSpec spec;
  spec.method = "slb";
  spec.w_bits = 2;
  spec.a_bits = 2;
  spec.options = {{"init", "weight"}};
  const nn::LayerFactory f = make_factory(spec);
  // The quantized conv draws the same initial float weight as its FP32 twin from the same
  // seed; with init = weight its W_q is that weight / max|w| rounded to the nearest value.
  Generator g1(5), g2(5);
  nn::Conv2d fp(4, 8, 3, 1, 1, false, g1);
  auto m = f.conv(nn::ConvSpec{4, 8, 3, 1, 1, false, nn::LayerRole::Middle}, g2);
  auto* q = dynamic_cast<QConv2d*>(m.get());
  REQUIRE(q != nullptr);
  auto* sw = dynamic_cast<SlbWeight*>(q->wq.get());
  REQUIRE(sw != nullptr);
  CHECK(sw->bits() == 2);
  REQUIRE(q->aq != nullptr);
  CHECK(q->aq->type_name() == "DoReFa");
  float mx = 0;
  for (float w : fp.weight.to_vector()) mx = std::max(mx, std::abs(w));
  const auto v = slb_values<float>(2);
  const Tf wq = sw->discrete_weight();
  for (int64_t j = 0; j < wq.numel(); ++j) {
    const double x = static_cast<double>(fp.weight.data()[j]) / mx;
    double best = v[0];
    for (float vi : v)
      if (std::abs(x - vi) < std::abs(x - best)) best = vi;
    CHECK(wq.data()[j] == static_cast<float>(best));
  }
  // First conv and last linear stay FP32 by default.
  CHECK(dynamic_cast<nn::Conv2d*>(f.conv(nn::ConvSpec{3, 8, 3, 1, 1, false, nn::LayerRole::First}, g2).get()));
  CHECK(dynamic_cast<nn::Linear*>(f.linear(nn::LinearSpec{8, 10, true, nn::LayerRole::Last}, g2).get()));
  CHECK(dynamic_cast<SlbHooks*>(make_hooks(spec).get()) != nullptr);
  CHECK(has_method("slb"));
  spec.w_bits = 32;
  CHECK_THROWS_WITH(resolve(spec), Catch::Contains("'w_bits' = 32: method slb expects 1..8"));
  spec.w_bits = 1;
  spec.options = {{"schedule", "cosine"}};
  CHECK_THROWS_WITH(resolve(spec), Catch::Contains("\"cosine\"") && Catch::Contains("exp | linear | sin"));
}

// kernels/vexp.hpp, the exp of SLB's float softmax.
TEST_CASE("vexp: AVX2 equals its reference twin bit for bit; within 2 ulp of exp", "[slb][kernels]") {
  Generator gen(21);
  const float inf = std::numeric_limits<float>::infinity();
  const float special[] = {0.f, -0.f, 1e-30f, -1e-30f, -87.3f, -87.34f, -87.4f, -100.f, -inf, 88.f, 88.01f, inf,
                           std::nanf(""), 0.5f, -0.5f * 0.693359375f, 1.f};
  for (int64_t count : {int64_t(1), int64_t(7), int64_t(8), int64_t(9), int64_t(4099)}) {
    INFO("count " << count);
    std::vector<float> x(static_cast<size_t>(count));
    for (auto& v : x) v = static_cast<float>(gen.uniform(-90.0, 10.0));
    for (size_t k = 0; k < x.size(); k += 3) x[k] = special[(k / 3) % 16];
    std::vector<float> fast(x.size()), ref(x.size());
    kernels::vexp(x.data(), fast.data(), count);
    kernels::vexp_reference(x.data(), ref.data(), count);
    CHECK(std::memcmp(fast.data(), ref.data(), x.size() * sizeof(float)) == 0);
  }
  CHECK(kernels::exp_poly(0.f) == 1.f);
  CHECK(kernels::exp_poly(-100.f) == 0.f);
  CHECK(kernels::exp_poly(89.f) == inf);
  CHECK(std::isnan(kernels::exp_poly(std::nanf(""))));
  // Accuracy where the result is a normal float: |exp_poly(x) / exp(x) - 1| <= 2 ulp.
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -87.3f + static_cast<float>(i) * (88.f + 87.3f) / 200000.f;
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(static_cast<double>(kernels::exp_poly(x)) / want - 1.0));
  }
  INFO("worst relative error " << worst);
  CHECK(worst <= 2.0 * std::ldexp(1.0, -23));
}
