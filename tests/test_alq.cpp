// ALQ (quant/alq_*.hpp): sketching, basis search, coordinate closed form, pruning, the
// optimizer's modes, accounting, export, and the pipeline hooks.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <lowbit/lowbit.hpp>
#include <lowbit/quant/alq/method.hpp>

using namespace lowbit;
using namespace lowbit::quant;
using Tf = Tensor<float>;

namespace {
double sq_error(const std::vector<double>& w, const alq::GroupBases& gb) {
  double e = 0;
  for (size_t j = 0; j < w.size(); ++j) {
    double s = 0;
    for (size_t a = 0; a < gb.alpha.size(); ++a) s += gb.alpha[a] * gb.beta[a][j];
    e += (w[j] - s) * (w[j] - s);
  }
  return e;
}
std::vector<float> randn_vec(size_t n, Generator& g, double sd = 1.0) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(g.normal(0.0, sd));
  return v;
}
}  // namespace

TEST_CASE("alq sketch reconstructs a vector of +-c exactly with one basis", "[alq]") {
  std::vector<double> w{0.25, -0.25, -0.25, 0.25, 0.25, -0.25, 0.25};
  const alq::GroupBases gb = alq::sketch(w, 6);
  REQUIRE(gb.alpha.size() == 1);  // the residual vanishes after one basis: no more are added
  CHECK(gb.alpha[0] == 0.25);
  for (size_t j = 0; j < w.size(); ++j) CHECK(gb.beta[0][j] == (w[j] > 0 ? 1 : -1));
  CHECK(sq_error(w, gb) == 0.0);
}

TEST_CASE("alq sketch error falls as bases are added; coordinates positive and ascending", "[alq]") {
  Generator gen(3);
  std::vector<double> w(64);
  for (auto& v : w) v = gen.normal();
  double prev = 0;
  for (double v : w) prev += v * v;
  for (int k = 1; k <= 6; ++k) {
    const alq::GroupBases gb = alq::sketch(w, k);
    REQUIRE(static_cast<int>(gb.alpha.size()) == k);
    const double e = sq_error(w, gb);
    INFO("bases " << k << " error " << e << " previous " << prev);
    CHECK(e < prev);
    prev = e;
    for (size_t a = 0; a < gb.alpha.size(); ++a) {
      CHECK(gb.alpha[a] > 0);
      if (a > 0) CHECK(gb.alpha[a] >= gb.alpha[a - 1]);
    }
  }
}

TEST_CASE("alq basis search equals brute force over all sign patterns", "[alq]") {
  Generator gen(11);
  for (int I = 1; I <= 4; ++I) {
    std::vector<float> alpha(static_cast<size_t>(I));
    for (auto& a : alpha) a = static_cast<float>(gen.uniform(0.05, 1.0));
    if (I >= 3) alpha[2] = alpha[1];  // equal coordinates: ties between patterns
    std::vector<float> t = randn_vec(40, gen, 1.5);
    t[0] = 0.f;
    const std::vector<uint32_t> got = alq::search_bases(alpha, t);
    const std::vector<float> vals = alq::pattern_values(alpha);
    for (size_t j = 0; j < t.size(); ++j) {
      float best = INFINITY;
      for (uint32_t p = 0; p < (1u << I); ++p) {  // brute force: every b in {-1,+1}^I
        float s = 0.f;
        for (int a = 0; a < I; ++a) s += alpha[static_cast<size_t>(a)] * ((p >> a & 1u) ? 1.f : -1.f);
        best = std::min(best, std::abs(s - t[j]));
      }
      CHECK(std::abs(vals[got[j]] - t[j]) == best);
    }
  }
}

TEST_CASE("alq coordinate closed form equals a direct weighted least-squares solve", "[alq]") {
  Generator gen(5);
  const int I = 3;
  const size_t n = 50;
  std::vector<uint32_t> pat(n);
  std::vector<float> h(n), t = randn_vec(n, gen);
  for (size_t j = 0; j < n; ++j) {
    pat[j] = static_cast<uint32_t>(gen.randint(1u << I));
    h[j] = static_cast<float>(gen.uniform(0.1, 3.0));
  }
  const std::vector<double> got = alq::solve_coordinates(pat, h, t, I);
  // Direct: minimise ||H^1/2 (B a - t)||^2 + lambda ||a||^2 by QR of the stacked system
  // [H^1/2 B; sqrt(lambda) I] a = [H^1/2 t; 0] (no normal equations).
  Eigen::MatrixXd A(static_cast<Eigen::Index>(n) + I, I);
  Eigen::VectorXd b(static_cast<Eigen::Index>(n) + I);
  for (size_t j = 0; j < n; ++j) {
    const double sh = std::sqrt(static_cast<double>(h[j]));
    for (int a = 0; a < I; ++a) A(static_cast<Eigen::Index>(j), a) = sh * ((pat[j] >> a & 1u) ? 1.0 : -1.0);
    b(static_cast<Eigen::Index>(j)) = sh * t[j];
  }
  for (int a = 0; a < I; ++a) {
    A.row(static_cast<Eigen::Index>(n) + a).setZero();
    A(static_cast<Eigen::Index>(n) + a, a) = std::sqrt(alq::kRidge);
    b(static_cast<Eigen::Index>(n) + a) = 0;
  }
  const Eigen::VectorXd want = A.colPivHouseholderQr().solve(b);
  for (int a = 0; a < I; ++a) CHECK(got[static_cast<size_t>(a)] == Approx(want(a)).epsilon(1e-9));
}

TEST_CASE("alq pruning (paper rule) removes exactly the smallest increments", "[alq]") {
  Generator gen(2);
  std::vector<alq::PruneCandidate> c;
  for (int l = 0; l < 3; ++l)
    for (int g = 0; g < 10; ++g)
      for (int s = 0; s < 2; ++s) c.push_back({gen.normal(), l, g, s, 8});
  // 60 coordinates of 8 bits = 480 bits; a budget of 400 bits needs 10 removals.
  const std::vector<alq::PruneCandidate> out = alq::select_paper(c, 480, 400.0);
  REQUIRE(out.size() == 10);
  std::vector<double> fs;
  for (auto& x : c) fs.push_back(x.f);
  std::sort(fs.begin(), fs.end());
  for (size_t i = 0; i < out.size(); ++i) CHECK(out[i].f == fs[i]);
  // The increment of Eq. 13.
  CHECK(alq::prune_increment(0.5, 2.0, 3.0) == Approx(-1.5 + 9.0));
  // Budget schedule: after the last of T iterations the target is reached exactly.
  CHECK(alq::paper_budget(1000, 200, 4, 5) == Approx(200));
  CHECK(alq::paper_budget(1000, 200, 0, 5) == Approx(840));
}

TEST_CASE("alq pruning (authors' rule) ranks proposals by their own increments", "[alq]") {
  // Layer 0 proposes its 2 smallest, layer 1 its 2 smallest (top_k 0.5 of 4 each, no rounding);
  // the global cut keeps half of the 4 proposals: the two smallest overall.
  std::vector<std::vector<alq::PruneCandidate>> per(2);
  per[0] = {{5.0, 0, 0, 0, 4}, {-1.0, 0, 1, 0, 4}, {2.0, 0, 2, 0, 4}, {0.5, 0, 3, 0, 4}};
  per[1] = {{-3.0, 1, 0, 0, 4}, {9.0, 1, 1, 0, 4}, {1.0, 1, 2, 0, 4}, {7.0, 1, 3, 0, 4}};
  Generator rng(0);
  const std::vector<alq::PruneCandidate> out = alq::select_authors(per, 0.5, 0.5, rng);
  REQUIRE(out.size() == 2);
  CHECK(out[0].f == -3.0);
  CHECK(out[1].f == -1.0);
}

TEST_CASE("alq pixel-wise grouping: a group is one output channel and kernel position across input channels", "[alq]") {
  const alq::Layout l = alq::make_layout({4, 3, 2, 2}, "pixel", 512);
  CHECK(l.n == 3);
  CHECK(l.interleave == 4);
  CHECK(l.groups == 16);
  // group 6 = output channel 1, kernel position 2: elements [1, c, 1, 0] for c = 0..2
  for (int64_t c = 0; c < 3; ++c) CHECK(l.elem(6, c) == 1 * 12 + c * 4 + 2);
  CHECK(alq::make_layout({4, 3, 2, 2}, "channel", 512).n == 12);
  CHECK(alq::make_layout({10, 1024}, "subchannel", 512).n == 512);
  CHECK(alq::make_layout({10, 64}, "subchannel", 512).n == 64);
  CHECK(alq::make_layout({10, 96}, "subchannel", 40).n == 32);
  CHECK_THROWS_WITH(alq::make_layout({4, 3, 2, 2}, "rowwise", 512), Catch::Contains("rowwise"));
}

TEST_CASE("alq export dequantize equals weight() bit for bit, also after pruning and through packing", "[alq]") {
  Generator gen(9);
  for (const char* grouping : {"pixel", "channel"}) {
    Tf w0 = Tf::randn({4, 3, 3, 3}, gen, 0.0, 0.3);
    alq::AlqWeight q(w0, alq::make_layout(w0.shape(), grouping, 512), 4);
    q.prune(1, q.active(1).back());
    q.prune(3, q.active(3).front());
    q.rebuild();
    const QuantCodes c = q.codes();
    c.validate("test");
    const Tf d = c.dequantize();
    const Tf w = q.weight();
    for (int64_t i = 0; i < w.numel(); ++i) REQUIRE(d.data()[i] == w.data()[i]);
    const std::vector<uint32_t> back = unpack_codes(pack_codes(c.codes, c.bits).data(), static_cast<size_t>(c.code_bytes()),
                                                    c.numel(), c.bits);
    CHECK(back == c.codes);
  }
}

TEST_CASE("alq bit and byte accounting on a hand-built layer", "[alq]") {
  // A linear layer 2 x 8 with sub-channel groups of 4: G = 4 groups, I_max = 3.
  Tf w0 = Tf::zeros({2, 8});
  alq::AlqWeight q(w0, alq::make_layout(w0.shape(), "subchannel", 4), 3);
  // Hand-set bit widths: I = {3, 1, 0, 0}: output channel 1 (groups 2, 3) fully pruned.
  std::fill(q.mask.data(), q.mask.data() + q.mask.numel(), 0.f);
  for (int s = 0; s < 3; ++s) q.mask.data()[s] = 1.f, q.alpha.data()[s] = 0.1f * static_cast<float>(s + 1);
  q.mask.data()[3] = 1.f, q.alpha.data()[3] = 0.5f;
  q.rebuild();
  const alq::LayerReport r = alq::layer_report("fc", q);
  CHECK(r.active == 4);
  CHECK(r.avg_bits == 1.0);  // 4 coordinates / 4 groups
  CHECK(r.histogram == std::vector<int64_t>{2, 1, 0, 1});
  CHECK(r.pruned_groups == 2);
  CHECK(r.pruned_out_channels == 1);
  CHECK(alq::table_bits_per_group(3) == 2);
  CHECK(alq::table_bits_per_group(6) == 3);
  CHECK(alq::table_bits_per_group(8) == 4);
  CHECK(r.basis_bytes == 2);       // 4 bases x 4 weights = 16 bits
  CHECK(r.coordinate_bytes == 16);  // 4 float32 coordinates
  CHECK(r.table_bytes == 1);        // 4 groups x 2 bits = 8 bits
  CHECK(r.bytes == 19);
}

namespace {
// Backward of L = sum(w_hat * c): dL/dw_hat = c.
void set_grad(alq::AlqWeight& q, const Tf& c) {
  q.w_hat.zero_grad(true);
  Tf loss = sum(q.weight() * c);
  loss.backward();
}
}  // namespace

TEST_CASE("alq flipping a negative coordinate with its basis leaves the reconstruction unchanged", "[alq]") {
  Generator gen(4);
  Tf w0 = Tf::randn({3, 8}, gen);
  alq::AlqWeight q(w0, alq::make_layout(w0.shape(), "channel", 0), 3);
  const Tf before = q.weight().clone();
  q.alpha.data()[1] = -q.alpha.data()[1];  // negate coordinate and basis: same reconstruction
  for (int64_t j = 0; j < 8; ++j) {
    float& c = q.signs.data()[j];
    c = static_cast<float>(static_cast<uint32_t>(c) ^ 2u);
  }
  const std::vector<int64_t> flipped = q.flip_negative();
  REQUIRE(flipped == std::vector<int64_t>{1});
  q.rebuild();
  for (int64_t i = 0; i < before.numel(); ++i) CHECK(q.weight().data()[i] == before.data()[i]);
  for (int64_t k = 0; k < q.alpha.numel(); ++k) CHECK(q.alpha.data()[k] >= 0.f);
}

TEST_CASE("alq coordinate mode takes one AMSGrad step on alpha with g_alpha = B^T dL/dw_hat (Eqs. 14, 21)", "[alq]") {
  Generator gen(8);
  Tf w0 = Tf::randn({2, 6}, gen);
  auto q = std::make_shared<alq::AlqWeight>(w0, alq::make_layout(w0.shape(), "channel", 0), 2);
  const Tf c = Tf::randn({2, 6}, gen);
  set_grad(*q, c);
  const std::vector<float> a0(q->alpha.data(), q->alpha.data() + q->alpha.numel());
  const std::vector<float> s0(q->signs.data(), q->signs.data() + q->signs.numel());
  auto ctl = std::make_shared<alq::Control>();
  ctl->phase = alq::Phase::Coordinate;
  ctl->lr = 0.01;
  alq::OptimOptions oo;
  oo.weight_decay = 0.1;
  alq::AlqOptimizer opt({}, {{"fc.wq.w_hat", q}}, oo, ctl);
  opt.step();
  for (int64_t g = 0; g < 2; ++g)
    for (int s = 0; s < 2; ++s) {
      const int64_t k = g * 2 + s;
      if (q->mask.data()[k] == 0.f) continue;
      double ga = 0;
      for (int64_t j = 0; j < 6; ++j)
        ga += ((static_cast<uint32_t>(s0[static_cast<size_t>(g * 6 + j)]) >> s & 1u) ? 1.0 : -1.0) * c.data()[g * 6 + j];
      ga += 0.1 * a0[static_cast<size_t>(k)];
      // t = 1: m_hat = g, v_hat = g^2; H = (sqrt((1-b2) g^2) + eps) / sqrt(1-b2).
      const double h = (std::sqrt(0.001 * ga * ga) + 1e-8) / std::sqrt(0.001);
      const double want = a0[static_cast<size_t>(k)] - 0.01 * ga / h;
      CHECK(std::abs(q->alpha.data()[k]) == Approx(std::abs(want)).epsilon(1e-5));
    }
  // w_hat is the reconstruction of the updated bases and coordinates.
  const Tf d = q->codes().dequantize();
  for (int64_t i = 0; i < d.numel(); ++i) CHECK(d.data()[i] == q->weight().data()[i]);
}

TEST_CASE("alq basis mode does not increase the quadratic model of the loss (Eqs. 17-23)", "[alq]") {
  Generator gen(12);
  Tf w0 = Tf::randn({4, 5, 3, 3}, gen, 0.0, 0.2);
  auto q = std::make_shared<alq::AlqWeight>(w0, alq::make_layout(w0.shape(), "pixel", 0), 3);
  const Tf c = Tf::randn(w0.shape(), gen, 0.0, 0.01);
  set_grad(*q, c);
  const Tf before = q->weight().clone();
  auto ctl = std::make_shared<alq::Control>();
  ctl->phase = alq::Phase::Basis;
  ctl->lr = 0.05;
  alq::AlqOptimizer opt({}, {{"conv.wq.w_hat", q}}, alq::OptimOptions{}, ctl);
  opt.step();
  // At t = 1 the model is f(w) = g^T (w - w0) + 1/2 (w - w0)^T H (w - w0), g = lr c, H = |c| + eps'.
  double f_new = 0;
  const double eps_h = 1e-8 / std::sqrt(0.001);
  for (int64_t i = 0; i < c.numel(); ++i) {
    const double g = 0.05 * c.data()[i], h = std::abs(c.data()[i]) + eps_h;
    const double d = static_cast<double>(q->weight().data()[i]) - before.data()[i];
    f_new += g * d + 0.5 * h * d * d;
  }
  CHECK(f_new < 0.0);  // the old point has f = 0; the search + closed form must improve on it
  for (int64_t k = 0; k < q->alpha.numel(); ++k) CHECK(q->alpha.data()[k] >= 0.f);
}

TEST_CASE("alq prune mode reaches the paper's bit budget after T iterations", "[alq]") {
  Generator gen(13);
  Tf w0 = Tf::randn({8, 16}, gen);
  auto q = std::make_shared<alq::AlqWeight>(w0, alq::make_layout(w0.shape(), "subchannel", 8), 4);
  auto ctl = std::make_shared<alq::Control>();
  ctl->phase = alq::Phase::Prune;
  ctl->target_bits = 1.5;
  ctl->prune_iters = 3;
  alq::AlqOptimizer opt({}, {{"fc.wq.w_hat", q}}, alq::OptimOptions{}, ctl);
  const double start = q->average_bits();
  REQUIRE(start > 3.0);
  for (int64_t t = 0; t < 3; ++t) {
    ctl->prune_iter = t;
    set_grad(*q, Tf::randn(w0.shape(), gen));
    opt.step();
    CHECK(q->average_bits() <= start - (start - 1.5) * static_cast<double>(t + 1) / 3.0 + 1e-12);
  }
  CHECK(q->average_bits() <= 1.5);
  CHECK(q->average_bits() > 1.5 - 1.0 / 16.0 - 1e-12);  // not one coordinate more than needed
  const Tf d = q->codes().dequantize();
  for (int64_t i = 0; i < d.numel(); ++i) CHECK(d.data()[i] == q->weight().data()[i]);
}

TEST_CASE("alq pipeline plan follows the authors' VGG schedule", "[alq]") {
  const alq::Options o = alq::Options::from_json(nlohmann::json::object());  // the schema's defaults
  CHECK(o.total_epochs() == 225);
  auto p0 = alq::plan_epoch(o, 0);
  CHECK(p0.phase == alq::Phase::Basis);
  CHECK(p0.lr == Approx(1e-3 * 0.8));
  auto p20 = alq::plan_epoch(o, 20);
  CHECK(p20.phase == alq::Phase::Coordinate);
  CHECK(p20.lr == Approx(1e-3 * std::pow(0.8, 21)));
  auto p30 = alq::plan_epoch(o, 30);
  CHECK(p30.phase == alq::Phase::Prune);
  CHECK(p30.prune_epochs_before == 0);
  auto p31 = alq::plan_epoch(o, 31);
  CHECK(p31.phase == alq::Phase::Basis);
  CHECK(p31.lr == Approx(1e-3 * 0.8));  // reset each round
  CHECK(alq::plan_epoch(o, 61).prune_epochs_before == 1);
  auto p155 = alq::plan_epoch(o, 155);
  CHECK(p155.phase == alq::Phase::Ste);
  CHECK(p155.first_ste_epoch);
  CHECK(p155.prune_epochs_before == 5);
  auto p205 = alq::plan_epoch(o, 205);
  CHECK(p205.phase == alq::Phase::Coordinate);
  CHECK(p205.lr == Approx(1e-3 * std::pow(0.95, 50) * 0.9));
  CHECK_THROWS_WITH(alq::Options::from_json({{"prune_rule", "magic"}}), Catch::Contains("magic"));
  CHECK_THROWS_WITH(alq::Options::from_json({{"bogus", 1}}), Catch::Contains("bogus"));
}

TEST_CASE("alq activation refit (Eq. 25) equals least squares on D' = [1, D]", "[alq]") {
  Generator gen(21);
  const int I = 2;
  const size_t n = 200;
  std::vector<float> x(n);
  std::vector<uint32_t> pat(n);
  for (size_t k = 0; k < n; ++k) {
    x[k] = static_cast<float>(gen.uniform(0.0, 3.0));
    pat[k] = static_cast<uint32_t>(gen.randint(1u << I));
  }
  const std::vector<double> got = alq::refit_activation(pat, x.data(), I);
  Eigen::MatrixXd D(static_cast<Eigen::Index>(n), I + 1);
  Eigen::VectorXd b(static_cast<Eigen::Index>(n));
  for (size_t k = 0; k < n; ++k) {
    D(static_cast<Eigen::Index>(k), 0) = 1.0;
    for (int i = 0; i < I; ++i) D(static_cast<Eigen::Index>(k), i + 1) = (pat[k] >> i & 1u) ? 1.0 : -1.0;
    b(static_cast<Eigen::Index>(k)) = x[k];
  }
  const Eigen::VectorXd want = D.colPivHouseholderQr().solve(b);
  for (int i = 0; i <= I; ++i) CHECK(got[static_cast<size_t>(i)] == Approx(want(i)).margin(1e-6));
}

TEST_CASE("alq activation: nearest level forward, running average (Eq. 26), clipped STE backward", "[alq]") {
  alq::AlqActivation aq(2);
  aq.gamma.data()[0] = 1.0f, aq.gamma.data()[1] = 0.5f, aq.gamma.data()[2] = 0.25f;  // levels 0.25, 0.75, 1.25, 1.75
  aq.initialized.data()[0] = 1.f;
  aq.eval();
  Tf x = Tf::from_vector({6}, {-1.f, 0.3f, 0.74f, 1.3f, 1.7f, 2.5f});
  Tf y = aq(x);
  const std::vector<float> want{0.25f, 0.25f, 0.75f, 1.25f, 1.75f, 1.75f};
  for (int64_t k = 0; k < 6; ++k) CHECK(y.data()[k] == want[static_cast<size_t>(k)]);
  CHECK(aq.gamma.data()[0] == 1.0f);  // eval: no update
  // Backward: gradient passes inside [x_ref - sum gamma, x_ref + sum gamma] = [0.25, 1.75].
  aq.train();
  Tf xg = x.clone().set_requires_grad();
  Tf yt = aq(xg);
  yt.backward(Tf::from_vector({6}, {1.f, 1.f, 1.f, 1.f, 1.f, 1.f}));
  const std::vector<float> gwant{0.f, 1.f, 1.f, 1.f, 1.f, 0.f};
  for (int64_t k = 0; k < 6; ++k) CHECK(xg.grad().data()[k] == gwant[static_cast<size_t>(k)]);
  // Training updated gamma' to 0.9 old + 0.1 least-squares fit of this batch.
  const std::vector<uint32_t> pat = alq::search_bases({0.5f, 0.25f}, {-2.f, -0.7f, -0.26f, 0.3f, 0.7f, 1.5f});
  const std::vector<double> fresh = alq::refit_activation(pat, x.data(), 2);
  CHECK(aq.gamma.data()[0] == Approx(0.9 * 1.0 + 0.1 * fresh[0]));
  CHECK(aq.gamma.data()[1] == Approx(std::abs(0.9 * 0.5 + 0.1 * fresh[1])));
  CHECK(aq.gamma.data()[2] == Approx(std::abs(0.9 * 0.25 + 0.1 * fresh[2])));
}

TEST_CASE("alq activation: the one-pass forward equals search_bases + Eq. 25 on the same inputs", "[alq][kernel]") {
  // issue 35: AlqActivation counts lower_bound's position for 16 elements at once and sums
  // Eq. 25's per-pattern statistics in chunks; the twin is the per-element search and refit.
  Generator gen(5);
  const int64_t n = (int64_t(1) << 16) + 7;  // several chunks, a ragged tail, above the parallel grain
  for (int I : {1, 2, 3, 4, 6}) {            // 6 bits: 64 levels, the binary-search branch
    alq::AlqActivation aq(I);
    Tf x = Tf::randn({n}, gen, 1.0, 1.0);
    for (int i = 0; i <= I; ++i) aq.gamma.data()[i] = i == 0 ? 1.f : static_cast<float>(0.6 * std::pow(0.5, i - 1));
    aq.initialized.data()[0] = 1.f;
    const std::vector<float> g(aq.gamma.data() + 1, aq.gamma.data() + 1 + I);
    const std::vector<float> v = alq::pattern_values(g);
    std::vector<float> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    for (size_t j = 0; j + 1 < sorted.size(); ++j) x.data()[100 + j] = 1.f + (sorted[j] + sorted[j + 1]) / 2;  // ties
    x.data()[50] = std::nanf("");
    std::vector<float> t(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) t[static_cast<size_t>(k)] = x.data()[k] - 1.f;
    const std::vector<uint32_t> pat = alq::search_bases(g, t);
    aq.eval();
    const Tf y = aq(x);
    int64_t bad = 0;
    for (int64_t k = 0; k < n; ++k) {
      const float want = 1.f + v[pat[static_cast<size_t>(k)]];
      bad += std::memcmp(&want, &y.data()[k], sizeof(float)) != 0;
    }
    INFO("I = " << I);
    CHECK(bad == 0);
    x.data()[50] = 0.f;  // Eq. 25 over finite inputs
    for (int64_t k : {int64_t(50)}) t[static_cast<size_t>(k)] = x.data()[k] - 1.f;
    const std::vector<double> fresh = alq::refit_activation(alq::search_bases(g, t), x.data(), I);
    aq.train();
    aq(x);
    for (int i = 0; i <= I; ++i) {
      const double want = 0.9 * (i == 0 ? 1.0 : 0.6 * std::pow(0.5, i - 1)) + 0.1 * fresh[static_cast<size_t>(i)];
      CHECK(aq.gamma.data()[i] == Approx(i == 0 ? want : std::abs(want)).epsilon(1e-6));
    }
  }
}

TEST_CASE("alq factory: every layer gets an AlqWeight grouped by its role; summary counts active bases", "[alq]") {
  QuantSpec spec;
  spec.method = "alq";
  spec.w_bits = 3;
  spec.first = spec.last = LayerPolicy::Same;
  Generator gen(1);
  auto model = nn::resnet20(gen, nn::Shortcut::A, make_factory(spec));
  auto ws = alq::find_weights(*model);
  REQUIRE(ws.size() == 20);
  int first = 0, pixel = 0, fc = 0;
  for (auto& [name, q] : ws) {
    const Shape& s = q->weight_shape();
    if (s.size() == 4 && s[1] == 3) first += q->layout().n == 27 && q->layout().interleave == 1;  // channel-wise
    else if (s.size() == 4) pixel += q->layout().n == s[1] && q->layout().interleave == 9;        // pixel-wise
    else fc += q->layout().n == 64;                                                              // 64 -> 10
  }
  CHECK(first == 1);
  CHECK(pixel == 18);
  CHECK(fc == 1);
  ws[3].second->prune(0, ws[3].second->active(0).front());
  ws[3].second->rebuild();
  const ModelSummary s = summary(*model);
  const alq::Report r = alq::report(*model);
  CHECK(r.avg_weight_bits < 3.0);
  CHECK(s.avg_weight_bits == Approx(r.avg_weight_bits).epsilon(1e-12));
  CHECK(dynamic_cast<alq::AlqHooks*>(make_hooks(spec).get()) != nullptr);
  spec.w_bits = 32;
  CHECK_THROWS_WITH(resolve(spec), Catch::Contains("I_max"));
  spec.w_bits = 3;
  spec.options = {{"conv_grouping", "rows"}};
  CHECK_THROWS_WITH(resolve(spec), Catch::Contains("rows"));
}

TEST_CASE("alq STE mode: the float copy takes the AMSGrad step and the bases are refitted to it", "[alq]") {
  Generator gen(31);
  Tf w0 = Tf::randn({3, 4, 3, 3}, gen, 0.0, 0.2);
  auto q = std::make_shared<alq::AlqWeight>(w0, alq::make_layout(w0.shape(), "pixel", 0), 3);
  const Tf c = Tf::randn(w0.shape(), gen, 0.0, 0.01);
  set_grad(*q, c);
  const Tf before = q->weight().clone();
  auto ctl = std::make_shared<alq::Control>();
  ctl->phase = alq::Phase::Ste;
  ctl->ste_start = true;  // w_fp <- w_hat first
  ctl->lr = 0.02;
  alq::AlqOptimizer opt({}, {{"conv.wq.w_hat", q}}, alq::OptimOptions{}, ctl);
  opt.step();
  CHECK_FALSE(ctl->ste_start);
  const double eps_h = 1e-8 / std::sqrt(0.001);
  for (int64_t i = 0; i < c.numel(); ++i) {  // t = 1: w_fp = w_hat - lr g / (|g| + eps')
    const double want = before.data()[i] - 0.02 * c.data()[i] / (std::abs(c.data()[i]) + eps_h);
    CHECK(q->w_fp.data()[i] == Approx(want).margin(1e-6));
  }
  const Tf d = q->codes().dequantize();  // the network uses the fit, exactly the exported one
  for (int64_t i = 0; i < d.numel(); ++i) CHECK(d.data()[i] == q->weight().data()[i]);
  CHECK(q->w_hat.grad().defined() == false);  // consumed by the step
}

TEST_CASE("alq calibrate_batches re-estimates BN statistics after an epoch; 0 leaves them alone", "[alq]") {
  QuantSpec spec;
  spec.method = "alq";
  spec.w_bits = 2;
  spec.first = spec.last = LayerPolicy::Same;
  Generator gen(3), gx(4), gref(3);
  auto model = nn::resnet20(gen, nn::Shortcut::A, make_factory(spec));
  auto ref = nn::resnet20(gref, nn::Shortcut::A, make_factory(spec));  // same weights
  const std::vector<Tf> batches = {Tf::randn({2, 3, 8, 8}, gx), Tf::randn({2, 3, 8, 8}, gx), Tf::randn({2, 3, 8, 8}, gx)};
  auto source = [&batches](size_t* next) {
    return [&batches, next](Tf& images) {
      if (*next == batches.size()) return false;
      images = batches[(*next)++];
      return true;
    };
  };
  nn::StateDict before;  // copies: state_dict() shares the buffers' storage
  for (auto& [name, t] : model->named_buffers()) before.emplace(name, t.clone());

  size_t n0 = 0;
  alq::AlqHooks off(nlohmann::json::object());
  CHECK(off.end_epoch(*model, source(&n0), 0).at("alq_calibrated_batches") == 0);
  CHECK(n0 == 0);
  for (auto& [name, t] : model->named_buffers()) CHECK(allclose(t, before.at(name), 0, 0));

  size_t n1 = 0, n2 = 0;
  alq::AlqHooks on(nlohmann::json{{"calibrate_batches", 2}});
  CHECK(on.end_epoch(*model, source(&n1), 0).at("alq_calibrated_batches") == 2);
  CHECK(nn::recalibrate_batch_norm(*ref, source(&n2), 2) == 2);
  int changed = 0;
  const nn::StateDict want = ref->state_dict();
  for (auto& [name, t] : model->named_buffers()) {
    CHECK(allclose(t, want.at(name), 0, 0));
    changed += !allclose(t, before.at(name), 0, 0);
  }
  CHECK(changed > 0);
  CHECK_THROWS_WITH(alq::AlqHooks(nlohmann::json{{"calibrate_batches", -1}}), Catch::Contains("'alq.calibrate_batches' = -1: expected 0 <= v"));
}

// The two places where the authors' optimizer differs from the paper's equations
// (alq.alpha_moments, alq.first_basis_target; docs/alq.md "Moments" and "First basis step"),
// on one group small enough to compute by hand.
TEST_CASE("alq alpha moments: derived (the authors) vs tracked, by hand on one group", "[alq]") {
  // w = 1.0 (+,-,+,-) + 0.5 (-,+,+,-) is sketched exactly with two bases; slot 2 stays empty.
  // Sorted by ascending alpha: slot 0 = 0.5 (-,+,+,-), slot 1 = 1.0 (+,-,+,-).
  const Tf w0 = Tf::from_vector({1, 4}, {0.5f, -0.5f, 1.5f, -1.5f});
  const Tf c = Tf::from_vector({1, 4}, {0.1f, -0.2f, 0.3f, 0.4f});
  for (bool derived : {true, false}) {
    auto q = std::make_shared<alq::AlqWeight>(w0, alq::make_layout(w0.shape(), "channel", 0), 3);
    REQUIRE(q->active_count() == 2);
    REQUIRE(q->alpha.data()[0] == Approx(0.5));
    REQUIRE(q->alpha.data()[1] == Approx(1.0));
    set_grad(*q, c);
    auto ctl = std::make_shared<alq::Control>();
    ctl->phase = alq::Phase::Basis;
    ctl->lr = 0.01;  // the target moves 0.01: every row keeps its sign pattern (values -1.5, -0.5, 0.5, 1.5)
    alq::OptimOptions oo;
    oo.derived_alpha_moments = derived;
    alq::AlqOptimizer opt({}, {{"fc.wq.w_hat", q}}, oo, ctl);
    opt.step();
    CHECK(q->signs.data()[0] == 2.f);  // (slot 1 +, slot 0 -): the patterns did not change
    const auto& st = opt.state();
    const float* m = st.at("fc.wq.w_hat.a_exp_avg").data();
    const float* v = st.at("fc.wq.w_hat.a_exp_avg_sq").data();
    const float* x = st.at("fc.wq.w_hat.a_max_exp_avg_sq").data();
    // Both rules: m_alpha = (1 - b1) B^T c: slot 0 = 0.1 (-0.1 - 0.2 + 0.3 - 0.4) = -0.04,
    // slot 1 = 0.1 (0.1 + 0.2 + 0.3 - 0.4) = 0.02 (B did not change, m is linear in g).
    CHECK(m[0] == Approx(-0.04).epsilon(1e-5));
    CHECK(m[1] == Approx(0.02).epsilon(1e-5));
    CHECK(m[2] == 0.f);
    // (1 - b2 is 1 - 0.999f in float: 1.3e-5 below 0.001, hence the tolerance of 1e-4.)
    if (derived) {
      // v_alpha = sum_j (1 - b2) c_j^2 = 0.001 (0.01 + 0.04 + 0.09 + 0.16) = 3.0e-4 on both slots.
      CHECK(v[0] == Approx(3.0e-4).epsilon(1e-4));
      CHECK(v[1] == Approx(3.0e-4).epsilon(1e-4));
      CHECK(x[0] == Approx(3.0e-4).epsilon(1e-4));
    } else {
      // v_alpha = (1 - b2) (B^T c)^2: 0.001 * 0.16 and 0.001 * 0.04.
      CHECK(v[0] == Approx(1.6e-4).epsilon(1e-4));
      CHECK(v[1] == Approx(4.0e-5).epsilon(1e-4));
      CHECK(x[1] == Approx(4.0e-5).epsilon(1e-4));
    }
    CHECK(v[2] == 0.f);
  }
}

TEST_CASE("alq first basis step: from w_hat (Eq. 19) or from the pretrained weight (the authors), by hand", "[alq]") {
  // One slot: w = (1, 2, 3, 4) is sketched to 2.5 (+,+,+,+); w_fp keeps w.
  const Tf w0 = Tf::from_vector({1, 4}, {1.f, 2.f, 3.f, 4.f});
  const Tf c = Tf::from_vector({1, 4}, {0.5f, 1.f, 1.5f, 2.f});
  for (bool pretrained : {false, true}) {
    auto q = std::make_shared<alq::AlqWeight>(w0, alq::make_layout(w0.shape(), "channel", 0), 1);
    REQUIRE(q->alpha.data()[0] == Approx(2.5));
    for (int64_t i = 0; i < 4; ++i) REQUIRE(q->w_fp.data()[i] == w0.data()[i]);
    auto ctl = std::make_shared<alq::Control>();
    ctl->phase = alq::Phase::Basis;
    ctl->lr = 0.1;
    alq::OptimOptions oo;
    oo.first_basis_from_pretrained = pretrained;
    alq::AlqOptimizer opt({}, {{"fc.wq.w_hat", q}}, oo, ctl);
    // Step 1: g / H = lr sign(c) = 0.1 (t = 1, AMSGrad), h_j = |c_j|. From w_hat the target is
    // 2.4 everywhere, alpha = 2.4. From w_fp it is (0.9, 1.9, 2.9, 3.9), and the Hessian-weighted
    // fit gives alpha = sum c_j t_j / sum c_j = 14.5 / 5 = 2.9.
    set_grad(*q, c);
    opt.step();
    CHECK(q->alpha.data()[0] == Approx(pretrained ? 2.9 : 2.4).epsilon(1e-5));
    // Step 2 (same gradient: g / H = 0.1 again) moves from w_hat under both rules.
    set_grad(*q, c);
    opt.step();
    CHECK(q->alpha.data()[0] == Approx(pretrained ? 2.8 : 2.3).epsilon(1e-5));
  }
}

TEST_CASE("alq authors' pruning rule: a top_k too small for the steps per epoch is refused, naming the key", "[alq]") {
  // M_p = (pr / top_k) / steps: 0.8 / 0.005 / 391 = 0.41 is fine (LeNet5, the authors' setting);
  // with 40 steps per epoch M_p = 4 > 1 would cap pruning at top_k per step, far below pr.
  alq::AlqHooks hooks({{"prune_rule", "authors"}, {"prune_rate", 0.8}, {"top_k", 0.005}});
  nn::Sequential model;
  StepContext ctx;
  ctx.steps_per_epoch = 391;
  CHECK_NOTHROW(hooks.begin_step(model, ctx));
  CHECK(hooks.control()->mp == Approx(0.8 / 0.005 / 391));
  ctx.steps_per_epoch = 40;
  CHECK_THROWS_WITH(hooks.begin_step(model, ctx), Catch::Contains("'alq.top_k' = 0.005") && Catch::Contains("0.02"));
  alq::AlqHooks paper_rule({{"prune_rule", "paper"}, {"top_k", 0.005}});  // top_k unused: no check
  CHECK_NOTHROW(paper_rule.begin_step(model, ctx));
}
