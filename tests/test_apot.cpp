// APoT (quant/apot/levels.hpp, quant/apot/apot.hpp): the level sets against docs/notes/apot.md §1.1,
// nearest-level projection and its ties, the alpha gradient of Eq. 8 on inputs inside, on
// and beyond the clip boundary, weight normalization by gradcheck, the error split of
// appendix Eq. 14, and the export view (codes) against weight().
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using namespace lowbit::quant;
using Tf = Tensor<float>;
using Td = Tensor<double>;

namespace {
std::vector<double> scaled(std::vector<double> v, double s) {
  for (auto& x : v) x /= s;
  return v;
}
std::vector<double> signed_of(const std::vector<double>& m) {
  std::vector<double> s;
  for (size_t i = m.size() - 1; i >= 1; --i) s.push_back(-m[i]);
  s.insert(s.end(), m.begin(), m.end());
  return s;
}
void check_same(const std::vector<double>& got, const std::vector<double>& want) {
  INFO("got " << ::Catch::Detail::stringify(got) << "\nwant " << ::Catch::Detail::stringify(want));
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-15).epsilon(1e-15));
}
}  // namespace

TEST_CASE("APoT level sets for b = 2..5 equal docs/notes/apot.md §1.1", "[apot][levels]") {
  // Unsigned (activations), B = b.
  const std::vector<double> m2{0, 0.25, 0.5, 1};
  const std::vector<double> m3{0, .1, .2, .3, .4, .6, .8, 1};
  const std::vector<double> m4 = scaled({0, 1, 2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 32, 33, 36, 48}, 48);
  const std::vector<double> m5 = scaled({0,  1,  2,  3,  4,  5,  6,  7,  8,  10, 12, 14, 16, 17, 20, 21,
                                         24, 28, 32, 34, 36, 38, 48, 52, 64, 65, 68, 69, 72, 76, 96, 100}, 100);
  check_same(apot_level_set(ApotLevelKind::APoT, 2, false), m2);
  check_same(apot_level_set(ApotLevelKind::APoT, 3, false), m3);
  check_same(apot_level_set(ApotLevelKind::APoT, 4, false), m4);
  check_same(apot_level_set(ApotLevelKind::APoT, 5, false), m5);
  // Signed (weights), b bits = the (b-1)-bit magnitudes and a sign; 2 bits = ternary.
  check_same(apot_level_set(ApotLevelKind::APoT, 2, true), {-1, 0, 1});
  check_same(apot_level_set(ApotLevelKind::APoT, 3, true), signed_of(m2));
  check_same(apot_level_set(ApotLevelKind::APoT, 4, true), signed_of(m3));
  check_same(apot_level_set(ApotLevelKind::APoT, 5, true), signed_of(m4));
  for (int b = 2; b <= 5; ++b) {
    CHECK(apot_level_set(ApotLevelKind::APoT, b, true).size() == (size_t(1) << b) - 1);   // 3, 7, 15, 31
    CHECK(apot_level_set(ApotLevelKind::APoT, b, false).size() == (size_t(1) << b));
    for (auto k : {ApotLevelKind::Uniform, ApotLevelKind::PoT})  // 2-bit weights: ternary for every kind
      check_same(apot_level_set(k, 2, true), {-1, 0, 1});
  }
  // The paper's B = 4 example (p0 in {0, 1, 1/4, 1/16}, p1 in {0, 1/2, 1/8, 1/32}, gamma = 2/3):
  // "the smallest positive level in Q^a(1, 4) is 2^-4 / 3" = gamma 2^-5 = 1/48.
  CHECK(m4[1] == Approx(1.0 / 48));
  // Uniform (Eq. 2) and PoT (the code's non-additive set).
  check_same(apot_level_set(ApotLevelKind::Uniform, 3, true), {-1, -2. / 3, -1. / 3, 0, 1. / 3, 2. / 3, 1});
  check_same(apot_level_set(ApotLevelKind::Uniform, 2, false), {0, 1. / 3, 2. / 3, 1});
  check_same(apot_level_set(ApotLevelKind::PoT, 3, false), {0, 1. / 64, 1. / 32, 1. / 16, 1. / 8, .25, .5, 1});
  check_same(apot_level_set(ApotLevelKind::PoT, 4, true), signed_of({0, 1. / 64, 1. / 32, 1. / 16, 1. / 8, .25, .5, 1}));
  // 3-bit weights: PoT and APoT coincide (M(2) is the same set).
  check_same(apot_level_set(ApotLevelKind::PoT, 3, true), apot_level_set(ApotLevelKind::APoT, 3, true));
  // PoT terms per weight magnitude (Sec. 2.2): APoT ceil(B/2), PoT 1, uniform B.
  CHECK(apot_pot_terms(ApotLevelKind::APoT, 2) == 1);
  CHECK(apot_pot_terms(ApotLevelKind::APoT, 3) == 2);
  CHECK(apot_pot_terms(ApotLevelKind::APoT, 4) == 2);
  CHECK(apot_pot_terms(ApotLevelKind::PoT, 4) == 1);
  CHECK(apot_pot_terms(ApotLevelKind::Uniform, 4) == 4);
  // Bad input.
  CHECK_THROWS_WITH(apot_level_set(ApotLevelKind::APoT, 1, true), Catch::Contains("signed bits = 1"));
  CHECK_THROWS_WITH(apot_level_set(ApotLevelKind::APoT, 9, false), Catch::Contains("unsigned bits = 9"));
  CHECK_THROWS_WITH(apot_magnitude_levels(ApotLevelKind::APoT, 7), Catch::Contains("B = 7"));
  CHECK_THROWS_WITH(parse_apot_levels("lloyd", "apot_levels"), Catch::Contains("'lloyd'") && Catch::Contains("pot"));
}

TEST_CASE("APoT projection picks the nearest level; ties go to the smaller magnitude", "[apot]") {
  const std::vector<double> m2 = apot_magnitude_levels(ApotLevelKind::APoT, 2);  // {0, 1/4, 1/2, 1}
  // Activations, alpha = 1: 0.75 is half way between 1/2 and 1 -> 1/2; 0.125 between 0 and 1/4 -> 0.
  const Tf one = Tf::full({1}, 1.f);
  const Tf x = Tf::from_vector({9}, {0.f, 0.1f, 0.125f, 0.13f, 0.75f, 0.76f, 0.99f, 2.f, -0.3f});
  CHECK(apot_activation_rcf(x, one, m2).to_vector() ==
        std::vector<float>{0.f, 0.f, 0.f, 0.25f, 0.5f, 1.f, 1.f, 1.f, 0.f});
  // Weights, alpha = 2 (levels +-{0, .5, 1, 2}): -1.5 -> r = -0.75, a tie -> -0.5 -> -1.
  const Tf two = Tf::full({1}, 2.f);
  const Tf w = Tf::from_vector({7}, {-1.5f, -1.6f, 0.25f, 0.26f, -0.f, 5.f, -5.f});
  CHECK(apot_weight_rcf(w, two, m2).to_vector() == std::vector<float>{-1.f, -2.f, 0.f, 0.5f, 0.f, 2.f, -2.f});
  // Brute force: every output is the level nearest to clip(x / alpha), for all sets.
  Generator gen(3);
  const Tf r = Tf::randn({500}, gen, 0.0, 1.5);
  for (auto kind : {ApotLevelKind::APoT, ApotLevelKind::PoT, ApotLevelKind::Uniform})
    for (int b = 2; b <= 5; ++b) {
      const std::vector<double> s = apot_level_set(kind, b, true);
      const Tf y = apot_weight_rcf(r, one, apot_magnitude_levels(kind, b - 1));
      for (int64_t i = 0; i < r.numel(); ++i) {
        const double c = std::min(1.0, std::max(-1.0, static_cast<double>(r.data()[i])));
        double best = 1e9;
        for (double l : s) best = std::min(best, std::abs(c - l));
        INFO(apot_levels_name(kind) << " b " << b << " x " << r.data()[i] << " -> " << y.data()[i]);
        CHECK(std::abs(c - static_cast<double>(y.data()[i])) == Approx(best).margin(1e-7));
      }
    }
}

TEST_CASE("APoT projection: the blocked kernel and the fused backward equal their scalar twins",
          "[apot][kernel]") {
  // issue 35: project_scaled and the activation backward run kLanes values at a time; the
  // twins are NearestLevel::index per element and the chunked double sum of the formula
  // (element by element, which the kernel's vector lanes reorder: equal to float rounding).
  Generator gen(11);
  const int64_t n = (int64_t(1) << 16) + 5;  // several chunks and a ragged tail, above the parallel grain
  Tf x = Tf::randn({n}, gen, 0.0, 3.0);
  for (int64_t i = 0; i < n; i += 97) x.data()[i] = -x.data()[i];
  for (auto kind : {ApotLevelKind::APoT, ApotLevelKind::PoT, ApotLevelKind::Uniform})
    for (int b = 2; b <= 5; ++b) {
      const std::vector<double> mags = apot_magnitude_levels(kind, b);
      const quant::detail::NearestLevel<float> p(mags);
      const float a = 2.5f;
      // exact midpoints (ties), the top, NaN and infinities among the inputs
      for (size_t j = 0; j + 1 < p.m.size(); ++j) x.data()[1000 + j] = p.mid[j] * a;
      x.data()[2000] = a, x.data()[2001] = std::nanf(""), x.data()[2002] = INFINITY, x.data()[2003] = -INFINITY;
      for (bool is_signed : {false, true}) {
        const Tf y = quant::detail::project_scaled(x, a, p, is_signed);
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i) {
          const float r = x.data()[i] / a;
          const float m = p.m[p.index(is_signed ? std::abs(r) : r)];
          const float want = a * ((is_signed && r < 0.f) ? -m : m);
          bad += std::memcmp(&want, &y.data()[i], sizeof(float)) != 0;
        }
        INFO(apot_levels_name(kind) << " b " << b << (is_signed ? " signed" : " unsigned"));
        CHECK(bad == 0);
      }
      Tf xa = x.clone();
      for (int64_t i = 2001; i <= 2003; ++i) xa.data()[i] = 1.f;  // the backward of finite inputs
      xa.set_requires_grad();
      Tf alpha = Tf::full({1}, a).set_requires_grad();
      const Tf g = Tf::randn({n}, gen);
      apot_activation_rcf(xa, alpha, mags).backward(g);
      const double want = quant::detail::chunked_sum(n, [&](int64_t i) {
        const float r = xa.data()[i] / a;
        const double d = r > 1.f ? 1.0 : static_cast<double>(p.m[p.index(r)]) - static_cast<double>(r);
        return static_cast<double>(g.data()[i]) * d;
      });
      INFO(apot_levels_name(kind) << " b " << b);
      CHECK(alpha.grad().item() == Approx(want).epsilon(1e-6));  // vector lanes: another order of the double sum
      int64_t bad = 0;
      for (int64_t i = 0; i < n; ++i) bad += xa.grad().data()[i] != (xa.data()[i] / a > 1.f ? 0.f : g.data()[i]);
      CHECK(bad == 0);
    }
}

TEST_CASE("APoT weight RCF: alpha gradient equals Eq. 8 inside, on and beyond the boundary", "[apot]") {
  const std::vector<double> m2 = apot_magnitude_levels(ApotLevelKind::APoT, 2);
  // alpha = 2; signed levels r in +-{0, 1/4, 1/2, 1}.
  //   x = 0.3:  r = .15  inside,   q = .25  -> q - r =  0.10
  //   x = -0.9: r = -.45 inside,   q = -.5  -> q - r = -0.05
  //   x = 2:    r = 1    boundary, q = 1    -> 0
  //   x = -2:   r = -1   boundary, q = -1   -> 0
  //   x = 2.5:  r = 1.25 beyond             -> sign = +1
  //   x = -3:   r = -1.5 beyond             -> sign = -1
  const std::vector<float> xv{0.3f, -0.9f, 2.f, -2.f, 2.5f, -3.f};
  const std::vector<float> gv{1.f, 2.f, 3.f, 4.f, 0.5f, 0.25f};
  const std::vector<double> per{0.1, -0.05, 0, 0, 1, -1};
  double want = 0;
  for (size_t i = 0; i < xv.size(); ++i) want += gv[i] * per[i];
  for (bool pass : {true, false})
    for (auto mode : {ApotAlphaGrad::Rcf, ApotAlphaGrad::Pact}) {
      Tf x = Tf::from_vector({6}, xv).set_requires_grad();
      Tf alpha = Tf::full({1}, 2.f).set_requires_grad();
      Tf y = apot_weight_rcf(x, alpha, m2, pass, mode);
      CHECK(y.to_vector() == std::vector<float>{0.5f, -1.f, 2.f, -2.f, 2.f, -2.f});
      y.backward(Tf::from_vector({6}, gv));
      INFO("pass " << pass << " pact " << (mode == ApotAlphaGrad::Pact));
      const double w = mode == ApotAlphaGrad::Rcf ? want : gv[4] * 1.0 + gv[5] * -1.0;  // Eq. 11: outliers only
      CHECK(alpha.grad().item() == Approx(w).epsilon(1e-6));
      // STE inside and on the boundary; beyond: passed through or zeroed.
      const float o = pass ? 1.f : 0.f;
      CHECK(x.grad().to_vector() == std::vector<float>{1.f, 2.f, 3.f, 4.f, 0.5f * o, 0.25f * o});
    }
  // The numbers, spelled out: 1 * 0.1 + 2 * (-0.05) + 0.5 - 0.25 = 0.25.
  CHECK(want == Approx(0.25));
  CHECK_THROWS_WITH(apot_weight_rcf(Tf::from_vector({1}, {1.f}), Tf::full({1}, 0.f), m2),
                    Catch::Contains("alpha = 0") && Catch::Contains("finite nonzero"));
  CHECK_THROWS_WITH(apot_weight_rcf(Tf::from_vector({1}, {1.f}), Tf::full({1}, std::nanf("")), m2),
                    Catch::Contains("alpha = nan") && Catch::Contains("finite nonzero"));

  // alpha = -2 (SGD stepped past 0, as at 2 bits): the forward is that of |alpha| = 2, the
  // alpha gradient is Eq. 8 at |alpha| times sign(alpha) = -1, x's gradient is unchanged.
  Tf x = Tf::from_vector({6}, xv).set_requires_grad();
  Tf alpha = Tf::full({1}, -2.f).set_requires_grad();
  Tf y = apot_weight_rcf(x, alpha, m2);
  CHECK(y.to_vector() == std::vector<float>{0.5f, -1.f, 2.f, -2.f, 2.f, -2.f});
  y.backward(Tf::from_vector({6}, gv));
  CHECK(alpha.grad().item() == Approx(-want).epsilon(1e-6));
  CHECK(x.grad().to_vector() == std::vector<float>{1.f, 2.f, 3.f, 4.f, 0.5f, 0.25f});
}

TEST_CASE("ApotWeight: a negative alpha exports the codes and scale of |alpha|", "[apot]") {
  const Tf init = Tf::from_vector({2, 3}, {0.3f, -1.2f, 2.0f, -0.1f, 0.8f, -2.5f});
  ApotWeight pos(init, 3, ApotConfig::from_options({{"w_alpha", 1.5}}));
  ApotWeight neg(init, 3, ApotConfig::from_options({{"w_alpha", 1.5}}));
  neg.alpha.data()[0] = -1.5f;
  const QuantCodes cp = pos.codes(), cn = neg.codes();
  CHECK(cn.scales == std::vector<float>{1.5f});
  CHECK(cn.codes == cp.codes);
  CHECK(neg.weight().to_vector() == pos.weight().to_vector());
  neg.alpha.data()[0] = 0.f;
  CHECK_THROWS_WITH(neg.codes(), Catch::Contains("ApotWeight::codes: alpha = 0"));
}

TEST_CASE("APoT activation RCF: gradients of the CIFAR code (docs/notes/apot.md §1.3)", "[apot]") {
  const std::vector<double> m2 = apot_magnitude_levels(ApotLevelKind::APoT, 2);  // {0, 1/4, 1/2, 1}
  // alpha = 4: x = 0 (r = 0, q = 0: 0), 1.2 (r = .3, q = .25: -0.05), 3 (r = .75, tie -> .5: -.25),
  // 4 (boundary, q = 1: 0), 5 (beyond: 1, input gradient 0).
  Tf x = Tf::from_vector({5}, {0.f, 1.2f, 3.f, 4.f, 5.f}).set_requires_grad();
  Tf alpha = Tf::full({1}, 4.f).set_requires_grad();
  Tf y = apot_activation_rcf(x, alpha, m2);
  CHECK(y.to_vector() == std::vector<float>{0.f, 1.f, 2.f, 4.f, 4.f});
  y.backward(Tf::from_vector({5}, {1.f, 2.f, 3.f, 4.f, 5.f}));
  CHECK(alpha.grad().item() == Approx(2 * -0.05 + 3 * -0.25 + 5 * 1.0).epsilon(1e-6));
  CHECK(x.grad().to_vector() == std::vector<float>{1.f, 2.f, 3.f, 4.f, 0.f});
}

TEST_CASE("APoT weight normalization (Eq. 9): statistics and gradcheck through mu and sigma", "[apot][gradcheck]") {
  Generator gen(11);
  Td w = Td::randn({4, 3, 3, 3}, gen, 0.3, 0.7);
  {
    const Td y = apot_weight_normalize(w, 1e-5);
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s1 += y.data()[i], s2 += y.data()[i] * y.data()[i];
    CHECK(s1 / y.numel() == Approx(0).margin(1e-12));
    // Population variance of (W - mu) / (sigma + eps) is (sigma / (sigma + eps))^2, just under 1.
    CHECK(s2 / y.numel() < 1.0);
    CHECK(s2 / y.numel() == Approx(1).epsilon(1e-4));
  }
  GradcheckOptions o;
  o.eps = 1e-6;
  const GradcheckResult r =
      gradcheck([](const std::vector<Td>& in) { return apot_weight_normalize(in[0], 1e-5); }, {w.clone().set_requires_grad()}, o);
  INFO(r.report);
  CHECK(r.ok);
  // Detached statistics (the CIFAR code): dL/dW = g / (sigma + eps), not the true derivative.
  Td wd = w.clone().set_requires_grad();
  Td y = apot_weight_normalize(wd, 1e-5, true);
  Td g = Td::randn(w.shape(), gen);
  y.backward(g);
  double mu = 0, s2 = 0;
  for (int64_t i = 0; i < w.numel(); ++i) mu += w.data()[i];
  mu /= w.numel();
  for (int64_t i = 0; i < w.numel(); ++i) s2 += (w.data()[i] - mu) * (w.data()[i] - mu);
  const double s = std::sqrt(s2 / w.numel()) + 1e-5;
  for (int64_t i = 0; i < w.numel(); ++i) CHECK(wd.grad().data()[i] == Approx(g.data()[i] / s).epsilon(1e-12));
}

TEST_CASE("APoT quantization error split Delta_clip + Delta_proj (appendix Eq. 14)", "[apot]") {
  const std::vector<double> m2 = apot_magnitude_levels(ApotLevelKind::APoT, 2);
  // alpha = 2, levels +-{0, .5, 1, 2}: 0.3 -> 0.5 (proj 0.04), -0.9 -> -1 (proj 0.01),
  // 2.5 -> clip (0.25), -3 -> clip (1), 2 -> 2 (0).
  const Tf w = Tf::from_vector({5}, {0.3f, -0.9f, 2.5f, -3.f, 2.f});
  const ApotErrorSplit e = apot_quantization_error(w, 2.f, m2);
  CHECK(e.clip == Approx((0.25 + 1.0) / 5).epsilon(1e-6));
  CHECK(e.proj == Approx((0.04 + 0.01) / 5).epsilon(1e-5));
  // On a random layer the split sums to the mean squared error of the forward.
  Generator gen(2);
  const Tf r = Tf::randn({2000}, gen);
  for (float a : {0.5f, 1.5f, 3.f}) {
    const ApotErrorSplit s = apot_quantization_error(r, a, apot_magnitude_levels(ApotLevelKind::APoT, 3));
    const Tf q = apot_weight_rcf(r, Tf::full({1}, a), apot_magnitude_levels(ApotLevelKind::APoT, 3));
    double mse = 0;
    for (int64_t i = 0; i < r.numel(); ++i) mse += std::pow(double(r.data()[i]) - double(q.data()[i]), 2);
    CHECK(s.total() == Approx(mse / r.numel()).epsilon(1e-9));
    CHECK(s.clip > 0);
    CHECK(s.proj > 0);
  }
  CHECK_THROWS_WITH(apot_quantization_error(w, 0.f, m2), Catch::Contains("alpha = 0"));
}

TEST_CASE("APoT quantizers: codes().dequantize() equals weight() bit for bit", "[apot][codes]") {
  Generator gen(5);
  Tf init = nn::kaiming_normal({8, 4, 3, 3}, 36, gen);
  init.data()[0] = 0.f;
  init.data()[1] = -0.f;
  init.data()[2] = 1.f;  // an outlier, clipped at alpha
  std::vector<std::shared_ptr<WeightQuantizer>> qs{std::make_shared<Uniform8Weight>(init.clone())};
  for (const char* levels : {"apot", "uniform", "pot"})
    for (const char* wn : {"on", "detached", "off"})
      for (const char* rcf : {"on", "pact", "off"})
        for (int b = 2; b <= 5; ++b) {
          const ApotConfig cfg = ApotConfig::from_options({{"levels", levels}, {"wn", wn}, {"rcf", rcf}});
          auto q = std::make_shared<ApotWeight>(init.clone(), b, cfg);
          if (q->alpha.defined()) q->alpha.data()[0] = 1.7f;  // not the init value, so clipping happens
          qs.push_back(q);
        }
  for (auto& q : qs) {
    INFO(q->type_name() << " " << q->bits() << " bits");
    const QuantCodes c = q->codes();
    c.validate("test");
    CHECK(c.bits == q->bits());
    CHECK(c.scales.size() == 1);
    CHECK(q->weight().to_vector() == c.dequantize().to_vector());
  }
  // The parameters: latent + alpha (rcf on/pact), latent only (rcf off, Uniform8).
  auto* a = dynamic_cast<ApotWeight*>(qs[1].get());
  REQUIRE(a);
  REQUIRE(a->named_parameters().size() == 2);
  CHECK(a->named_parameters()[0].first == "latent");
  CHECK(a->named_parameters()[1].first == "alpha");
  CHECK(qs[0]->named_parameters().size() == 1);
  // Ternary 2-bit weights: three of the four codes are used.
  const QuantCodes t = ApotWeight(init, 2).codes();
  CHECK(t.levels == std::vector<float>{-1.f, 0.f, 1.f, 0.f});
  // Uniform8: the 8-bit grid s * k / 127, s = max|W|.
  const QuantCodes u = qs[0]->codes();
  CHECK(u.scales[0] == 1.f);
  CHECK(u.levels[254] == 1.f);
  CHECK(u.levels[0] == -1.f);
  CHECK_THROWS_WITH(ApotWeight(init, 6), Catch::Contains("bits = 6") && Catch::Contains("2..5"));
  CHECK_THROWS_WITH(ApotActivation(1), Catch::Contains("bits = 1"));
  CHECK_THROWS_WITH(ApotConfig::from_options({{"wn", "yes"}}), Catch::Contains("'apot.wn'") && Catch::Contains("\"yes\"") &&
                                                                  Catch::Contains("on | detached | off"));
  CHECK_THROWS_WITH(ApotConfig::from_options({{"alpha", 1}}), Catch::Contains("unknown config key 'apot.alpha'"));
  CHECK_THROWS_WITH(ApotConfig::from_options({{"w_alpha", -1}}), Catch::Contains("'apot.w_alpha' = -1"));
  // The schema's defaults are the struct's.
  const ApotConfig d = ApotConfig::from_options(nlohmann::json::object()), c{};
  CHECK((d.levels == c.levels && d.wn == c.wn && d.rcf == c.rcf && d.grad_outside_pass == c.grad_outside_pass &&
         d.w_alpha == c.w_alpha && d.a_alpha == c.a_alpha));
}

TEST_CASE("ApotWeight: the gradients reach latent W and alpha through WN and RCF", "[apot]") {
  // d/dalpha of sum(g * weight()) is Eq. 8 applied to W~ = WN(W), and rcf = off has no alpha.
  Generator gen(9);
  const Tf init = nn::kaiming_normal({4, 2, 3, 3}, 18, gen);
  for (const char* wn : {"on", "detached"}) {
    ApotWeight q(init, 4, ApotConfig::from_options({{"wn", wn}, {"w_alpha", 1.5}}));
    const Tf g = Tf::randn(init.shape(), gen);
    q.weight().backward(g);
    const Tf wt = apot_weight_normalize(init, 1e-5f);
    const std::vector<double> s = apot_level_set(ApotLevelKind::APoT, 4, true);
    double want = 0;
    for (int64_t i = 0; i < wt.numel(); ++i) {
      const double r = wt.data()[i] / 1.5;
      double best = 0, bd = 1e9;
      for (double l : s)
        if (std::abs(r - l) < bd) bd = std::abs(r - l), best = l;
      want += g.data()[i] * (std::abs(r) > 1 ? (r > 0 ? 1.0 : -1.0) : best - r);
    }
    INFO("wn " << wn);
    CHECK(q.alpha.grad().item() == Approx(want).epsilon(1e-4));
    REQUIRE(q.latent.grad().defined());
    // Through WN with mu and sigma, the latent gradient sums to 0 (shifting W changes nothing).
    double gs = 0;
    for (int64_t i = 0; i < init.numel(); ++i) gs += q.latent.grad().data()[i];
    if (std::string(wn) == "on") CHECK(gs == Approx(0).margin(1e-4));
  }
  ApotWeight off(init, 3, ApotConfig::from_options({{"rcf", "off"}}));
  CHECK(!off.alpha.defined());
  const Tf z = apot_weight_normalize(init, 1e-5f);
  float zmax = 0;
  for (int64_t i = 0; i < z.numel(); ++i) zmax = std::max(zmax, std::abs(z.data()[i]));
  CHECK(off.codes().scales[0] == zmax);  // no clipping: alpha = max|W~| (Table 3 "without RCF")
  // wn = off: alpha starts at w_alpha * std(W_init).
  ApotWeight raw(init, 3, ApotConfig::from_options({{"wn", "off"}, {"w_alpha", 3}}));
  double mu = 0, s2 = 0;
  for (int64_t i = 0; i < init.numel(); ++i) mu += init.data()[i];
  mu /= init.numel();
  for (int64_t i = 0; i < init.numel(); ++i) s2 += (init.data()[i] - mu) * (init.data()[i] - mu);
  CHECK(raw.alpha.item() == Approx(3 * std::sqrt(s2 / init.numel())).epsilon(1e-6));
}

TEST_CASE("APoT summary: PoT terms and FixOPs next to uniform on hand-built layers", "[apot][summary]") {
  // conv A: 3 -> 8, 3x3, stride 1, APoT 4-bit weights (B = 3: n = 2 terms), 4-bit inputs:
  //   MACs = 8 * 32 * 32 * 27 = 221184; uniform 221184 * 4 * 4 / 64 = 55296; APoT 221184 * 2 * 4 / 64 = 27648.
  // conv B: 8 -> 4, 3x3, stride 2, uniform 3-bit weights (no PoT terms), 3-bit inputs:
  //   MACs = 4 * 16 * 16 * 72 = 73728; both costs 73728 * 3 * 3 / 64 = 10368.
  // conv C: 4 -> 2, 1x1, PoT 5-bit weights (n = 1), FP32 input: no fixed-point cost.
  Generator g(1);
  auto wq = [](int bits, const char* levels) -> WeightQuantizerMaker {
    return [bits, levels](const Tf& init) {
      return std::make_shared<ApotWeight>(init, bits, ApotConfig::from_options({{"levels", levels}}));
    };
  };
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<QConv2d>(nn::ConvSpec{3, 8, 3, 1, 1, false, nn::LayerRole::Middle}, wq(4, "apot"),
                                           std::make_shared<ApotActivation>(4), g));
  net->push_back(std::make_shared<QConv2d>(nn::ConvSpec{8, 4, 3, 2, 1, false, nn::LayerRole::Middle}, wq(3, "uniform"),
                                           std::make_shared<ApotActivation>(3), g));
  net->push_back(std::make_shared<QConv2d>(nn::ConvSpec{4, 2, 1, 1, 0, false, nn::LayerRole::Middle}, wq(5, "pot"),
                                           nullptr, g));
  const ModelSummary s = summary(*net);
  REQUIRE(s.layers.size() == 3);
  CHECK(s.layers[0].macs == 221184);
  CHECK(s.layers[0].pot_terms == 2);
  CHECK(s.layers[0].fixops == 27648);
  CHECK(s.layers[0].fixops_uniform == 55296);
  CHECK(s.layers[1].pot_terms == 0);
  CHECK(s.layers[1].fixops == 10368);
  CHECK(s.layers[1].fixops_uniform == 10368);
  CHECK(s.layers[2].pot_terms == 1);
  CHECK(s.layers[2].fixops == 0);
  CHECK(s.fixops == 27648 + 10368);
  CHECK(s.fixops_uniform == 55296 + 10368);
  CHECK(s.to_json().at("fixops") == 38016.0);
  CHECK_THAT(s.table(), Catch::Contains("PoT terms") && Catch::Contains("FixOPs 38016 per image"));
}

TEST_CASE("APoT ResNet-20: export -> load gives bit-identical outputs", "[apot][export]") {
  QuantSpec spec;
  spec.method = "apot";
  spec.w_bits = 3;
  spec.a_bits = 3;
  spec.first = LayerPolicy::Bit8;
  spec.last = LayerPolicy::Bit8;
  spec.options = {{"wn", "on"}, {"levels", "apot"}};
  Generator g(4);
  auto build = [&g](const nn::LayerFactory& f) { return nn::resnet20(g, nn::Shortcut::B, f); };
  std::shared_ptr<nn::Module> model = build(make_factory(spec));
  Generator dg(5);
  const Tf images = Tf::randn({8, 3, 32, 32}, dg);
  optim::ParamGroup pg;
  pg.lr = 0.05;
  pg.params = model->named_parameters();
  optim::SGD opt({pg}, optim::SgdOptions{0.9, 0.0, false});
  model->train();
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    Tf loss = cross_entropy((*model)(images), std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
    loss.backward();
    opt.step();
  }
  const std::string path = (std::filesystem::temp_directory_path() / "lowbit_apot_export.lbq").string();
  export_quantized(*model, path, {{"spec", spec.to_json()}});
  std::shared_ptr<nn::Module> inference = load_quantized_model(path, build);
  model->eval();
  inference->eval();
  NoGradGuard no_grad;
  CHECK((*model)(images).to_vector() == (*inference)(images).to_vector());
  CHECK(summary(*inference).model_bytes == summary(*model).model_bytes);
  std::filesystem::remove(path);
  // Bad specs: bits outside the authors' sets, unknown options.
  spec.w_bits = 6;
  CHECK_THROWS_WITH(resolve(spec), Catch::Contains("'w_bits' = 6: method apot expects 2..5 or 32"));
  spec.w_bits = 3;
  spec.options = {{"rcf", "sometimes"}};
  CHECK_THROWS_WITH(make_factory(spec), Catch::Contains("'apot.rcf' = \"sometimes\"") && Catch::Contains("on | pact | off"));
}
