// The integer conv of the discrete forward (kernels/conv_int8.hpp, quant/integer_conv.hpp):
// the fast kernel against its reference twin on awkward shapes, the reference against the
// float conv of the dequantized operands, the integer view of each quantizer's codes, when
// a QConv2d takes the integer path, and state batch-norm's discrete pass with and without it.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <vector>
#include <lowbit/lowbit.hpp>
#include <lowbit/quant/slb/hooks.hpp>
#include <lowbit/quant/slb/sbn.hpp>

using namespace lowbit;
using namespace lowbit::quant;
using Tf = Tensor<float>;

namespace {
// Activations in [-0.3, 1.3] (so clipping happens on both sides) and weights in [-127, 127].
struct IntConvCase {
  kernels::ConvShape s;
  std::vector<float> x, bias;
  std::vector<int8_t> b;
  IntConvCase(const kernels::ConvShape& shape, int max_code, uint64_t seed) : s(shape) {
    Generator g(seed);
    x.resize(static_cast<size_t>(s.N * s.C * s.H * s.W));
    for (auto& v : x) v = -0.3f + 1.6f * static_cast<float>(g.uniform());
    b.resize(static_cast<size_t>(s.O * s.C * s.KH * s.KW));
    for (auto& v : b) v = static_cast<int8_t>(static_cast<int>(g.randint(static_cast<uint64_t>(2 * max_code + 1))) - max_code);
    bias.resize(static_cast<size_t>(s.O));
    for (auto& v : bias) v = static_cast<float>(g.uniform()) - 0.5f;
  }
  size_t out_size() const { return static_cast<size_t>(s.N * s.O * s.OH() * s.OW()); }
};
kernels::ConvShape shape(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t S,
                         int64_t P) {
  kernels::ConvShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.O = O, s.KH = KH, s.KW = KW, s.SH = s.SW = S, s.PH = s.PW = P;
  return s;
}
}  // namespace

TEST_CASE("integer conv reference equals the float conv of the dequantized operands", "[kernels][int8]") {
  // Any shape, strided too: codes a = rint(na clip(x, 0, 1)), weights b, y = (scale/na) a (*) b + bias.
  for (const auto& s : {shape(2, 3, 5, 6, 4, 3, 3, 1, 1), shape(1, 5, 7, 7, 3, 3, 3, 2, 1), shape(2, 4, 6, 5, 2, 1, 1, 2, 0)}) {
    for (int na : {1, 3, 15, 255}) {
      IntConvCase c(s, 127, 11 + static_cast<uint64_t>(na));
      const float scale = 0.037f;
      std::vector<float> y(c.out_size()), yf(c.out_size());
      kernels::conv2d_forward_int8_reference(s, c.x.data(), na, c.b.data(), scale, c.bias.data(), y.data());
      std::vector<float> xq(c.x.size()), w(c.b.size());
      for (size_t i = 0; i < xq.size(); ++i)
        xq[i] = static_cast<float>(std::rint(std::min(std::max(c.x[i], 0.0f), 1.0f) * static_cast<float>(na))) / static_cast<float>(na);
      for (size_t i = 0; i < w.size(); ++i) w[i] = scale * static_cast<float>(c.b[i]);
      kernels::conv2d_forward_reference(s, xq.data(), w.data(), c.bias.data(), yf.data());
      for (size_t i = 0; i < y.size(); ++i) {
        INFO("na " << na << " output " << i);
        REQUIRE(y[i] == Approx(yf[i]).epsilon(1e-5).margin(1e-4));
      }
    }
  }
}

TEST_CASE("integer conv: the VNNI kernel equals its reference twin on awkward shapes", "[kernels][int8]") {
  // Batch 1, channels not a multiple of 4, outputs not a multiple of 8, 1x1 and rectangular
  // kernels, pad 0 and 1 (and 2 for 5x5), odd spatial sizes, rows shorter and longer than a vector.
  const std::vector<kernels::ConvShape> shapes = {
      shape(1, 3, 7, 9, 5, 3, 3, 1, 1),   shape(2, 5, 19, 17, 11, 3, 3, 1, 1), shape(3, 4, 8, 8, 8, 1, 1, 1, 0),
      shape(2, 7, 5, 33, 9, 3, 3, 1, 0),  shape(1, 16, 32, 32, 16, 3, 3, 1, 1), shape(2, 9, 11, 13, 17, 5, 5, 1, 2),
      shape(1, 2, 6, 20, 3, 3, 1, 1, 0),
      // 3x3 with rows of whole 8-pixel tiles and >= 16 outputs: the pixel-broadcast tile
      // (int8::pb_tile), which skips the padding taps: 8x8 with 20 outputs (one 32-wide
      // panel), a single row, three tiles a row with 32 + 16 outputs, pad 2, pad 0.
      shape(2, 5, 8, 8, 20, 3, 3, 1, 1),  shape(1, 7, 1, 16, 16, 3, 3, 1, 1), shape(2, 6, 6, 24, 48, 3, 3, 1, 1),
      shape(1, 3, 6, 6, 17, 3, 3, 1, 2),  shape(2, 4, 10, 10, 16, 3, 3, 1, 0)};
  bool ran = false;
  for (const auto& s : shapes) {
    for (int na : {1, 15, 255}) {
      if (!kernels::int8_conv_supported(s, na)) continue;
      ran = true;
      IntConvCase c(s, 127, 100 + static_cast<uint64_t>(s.C * na));
      std::vector<float> y(c.out_size(), -7.0f), yr(c.out_size());
      kernels::conv2d_forward_int8(s, c.x.data(), na, c.b.data(), 0.01f, c.bias.data(), y.data());
      kernels::conv2d_forward_int8_reference(s, c.x.data(), na, c.b.data(), 0.01f, c.bias.data(), yr.data());
      for (size_t i = 0; i < y.size(); ++i) {
        INFO("shape C" << s.C << " H" << s.H << " W" << s.W << " O" << s.O << " K" << s.KH << "x" << s.KW << " na " << na
                       << " output " << i);
        // The integer sums are exact in both; only the float epilogue may round differently.
        REQUIRE(y[i] == Approx(yr[i]).epsilon(1e-6).margin(1e-6));
      }
      // No bias: the epilogue adds nothing.
      kernels::conv2d_forward_int8(s, c.x.data(), na, c.b.data(), 0.01f, nullptr, y.data());
      kernels::conv2d_forward_int8_reference(s, c.x.data(), na, c.b.data(), 0.01f, nullptr, yr.data());
      for (size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(yr[i]).epsilon(1e-6).margin(1e-6));
    }
  }
  if (!ran) WARN("built without AVX-512 VNNI: the integer fast path is not compiled, only its reference is tested");
  // What the fast path refuses: stride 2, over-padding, codes above 8 bits.
  CHECK_FALSE(kernels::int8_conv_supported(shape(1, 4, 8, 8, 4, 3, 3, 2, 1), 15));
  CHECK_FALSE(kernels::int8_conv_supported(shape(1, 4, 8, 8, 4, 3, 3, 1, 3), 15));
  CHECK_FALSE(kernels::int8_conv_supported(shape(1, 4, 8, 8, 4, 3, 3, 1, 1), 256));
  const auto s = shape(1, 4, 8, 8, 4, 3, 3, 2, 1);
  std::vector<float> x(256), y(64);
  std::vector<int8_t> b(144);
  CHECK_THROWS_WITH(kernels::conv2d_forward_int8(s, x.data(), 15, b.data(), 1.0f, nullptr, y.data()),
                    Catch::Contains("conv2d_forward_int8: shape not supported (stride 2x2"));
}

TEST_CASE("integer view of a quantizer's codes: uniform symmetric grids only", "[quant][int8]") {
  Generator g(5);
  const Tf w0 = Tf::randn({4, 3, 3, 3}, g);
  IntegerWeight iw;
  SECTION("SLB 2 bits: V = {-1, -1/3, 1/3, 1} -> b = 2c - 3, scale 1/3") {
    SlbWeight q(w0, 2);
    const QuantCodes c = q.codes();
    REQUIRE(integer_weight(c, iw));
    CHECK(iw.scale == Approx(1.0 / 3.0));
    const Tf wq = q.discrete_weight();
    for (size_t i = 0; i < iw.b.size(); ++i) {
      CHECK(static_cast<int>(iw.b[i]) == 2 * static_cast<int>(c.codes[i]) - 3);
      CHECK(iw.scale * iw.b[i] == Approx(wq.data()[i]).margin(1e-6));
    }
  }
  SECTION("DoReFa 4 bits: levels 2c/15 - 1 -> b = 2c - 15, scale 1/15") {
    DoReFaWeight q(w0, 4);
    REQUIRE(integer_weight(q.codes(), iw));
    CHECK(iw.scale == Approx(1.0 / 15.0));
    const Tf wq = q.weight();
    for (size_t i = 0; i < iw.b.size(); ++i) CHECK(iw.scale * iw.b[i] == Approx(wq.data()[i]).margin(1e-6));
  }
  SECTION("BWN: levels {-1, +1} with the scale mean|W|") {
    BinaryWeight q(w0);
    REQUIRE(integer_weight(q.codes(), iw));
    double mean_abs = 0;
    for (int64_t i = 0; i < w0.numel(); ++i) mean_abs += std::fabs(w0.data()[i]);
    CHECK(iw.scale == Approx(mean_abs / static_cast<double>(w0.numel())).epsilon(1e-6));
    const Tf wq = q.weight();
    for (size_t i = 0; i < iw.b.size(); ++i) CHECK(iw.scale * iw.b[i] == Approx(wq.data()[i]).margin(1e-6));
  }
  SECTION("refused: 8-bit codes (b would not fit int8), a non-uniform codebook, binary bases, several scales") {
    DoReFaWeight q8(w0, 8);
    CHECK_FALSE(integer_weight(q8.codes(), iw));
    QuantCodes c;
    c.bits = 2, c.levels = {-1.0f, -0.25f, 0.25f, 1.0f}, c.codes = {0, 1, 2, 3};  // power-of-two-like, not uniform
    CHECK_FALSE(integer_weight(c, iw));
    c.levels = {-1.0f, -1.0f / 3, 1.0f / 3, 1.0f};
    CHECK(integer_weight(c, iw));
    c.scales = {0.5f, 0.25f};
    CHECK_FALSE(integer_weight(c, iw));
    c.scales.clear(), c.rule = "binary_bases";
    CHECK_FALSE(integer_weight(c, iw));
  }
}

namespace {
// 3x3 pad-1 QConv2d with an SLB weight and a DoReFa activation quantizer.
std::shared_ptr<QConv2d> slb_conv(int w_bits, int a_bits, int64_t in, int64_t out, int64_t stride, uint64_t seed) {
  Generator g(seed);
  return std::make_shared<QConv2d>(
      nn::ConvSpec{in, out, 3, stride, 1, false, nn::LayerRole::Middle},
      [w_bits](const Tf& init) { return std::make_shared<SlbWeight>(init, w_bits); },
      std::make_shared<DoReFaActivation>(a_bits), g);
}
}  // namespace

TEST_CASE("QConv2d integer forward: no-grad only, the float conv's values, float path otherwise", "[quant][int8]") {
  auto conv = slb_conv(2, 4, 5, 6, 1, 3);
  conv->eval();  // W_q
  Generator g(9);
  const Tf x = Tf::uniform({2, 5, 9, 9}, g, -0.2, 1.2);
  const Tf ref = [&] {
    NoGradGuard no_grad;
    return (*conv)(x);  // integer flag off: the float conv of aq(x) and W_q
  }();
  conv->set_integer_forward(true);
  const bool fast = kernels::int8_conv_supported(shape(2, 5, 9, 9, 6, 3, 3, 1, 1), 15);
  {
    NoGradGuard no_grad;
    const Tf y = (*conv)(x);
    REQUIRE(y.shape() == ref.shape());
    bool identical = true;
    for (int64_t i = 0; i < y.numel(); ++i) {
      REQUIRE(y.data()[i] == Approx(ref.data()[i]).epsilon(1e-5).margin(1e-5));
      identical = identical && y.data()[i] == ref.data()[i];
    }
    const Tf direct = try_conv2d_integer(x, *conv->aq, *conv->wq, conv->bias, Conv2dOptions::make(1, 1));
    CHECK(direct.defined() == fast);
    if (!fast) CHECK(identical);  // no fast kernel: the layer kept the float path
  }
  // With grad enabled the layer always records the float conv (the integer path has no backward).
  CHECK_FALSE(try_conv2d_integer(x, *conv->aq, *conv->wq, conv->bias, Conv2dOptions::make(1, 1)).defined());
  const Tf y = (*conv)(x);
  for (int64_t i = 0; i < y.numel(); ++i) CHECK(y.data()[i] == ref.data()[i]);
  // In training mode (not discrete) SLB's weight() is W_c while its codes are W_q: the layer
  // must keep the float conv with W_c, even under no-grad with the flag on.
  NoGradGuard no_grad;
  conv->train();
  REQUIRE_FALSE(conv->wq->codes_are_weight());
  const Tf yc = (*conv)(x);
  const Tf yc_ref = conv2d(conv->aq->forward(x), conv->wq->weight(), conv->bias, Conv2dOptions::make(1, 1));
  REQUIRE(yc.to_vector() == yc_ref.to_vector());
  CHECK(yc.to_vector() != ref.to_vector());  // W_c really differs from W_q here
  dynamic_cast<SlbWeight&>(*conv->wq).set_discrete(true);
  CHECK(conv->wq->codes_are_weight());
  CHECK(try_conv2d_integer(x, *conv->aq, *conv->wq, conv->bias, Conv2dOptions::make(1, 1)).defined() == fast);
  // Stride 2 and 32-bit activations keep the float path.
  auto strided = slb_conv(2, 4, 5, 6, 2, 4);
  CHECK_FALSE(try_conv2d_integer(x, *strided->aq, *strided->wq, strided->bias, Conv2dOptions::make(2, 1)).defined());
  PactActivation pact(4, 10.0f);
  CHECK(pact.uniform_levels() == 0);
  CHECK(DoReFaActivation(3).uniform_levels() == 7);
}

TEST_CASE("SBN discrete pass: integer and float convs give the same statistics; flags restored", "[slb][sbn][int8]") {
  auto run = [](bool integer, std::vector<float>& mean, std::vector<float>& var, bool& flags_restored) {
    auto net = std::make_shared<nn::Sequential>();
    auto conv = slb_conv(4, 4, 6, 10, 1, 17);
    auto bn = std::make_shared<nn::BatchNorm>(10);
    net->push_back(conv);
    net->push_back(bn);
    SlbHooks hooks(nlohmann::json{{"integer_pass", integer}});
    Generator g(2);
    const Tf x = Tf::uniform({4, 6, 11, 11}, g, -0.1, 1.1);
    net->train();
    for (int64_t step = 0; step < 2; ++step) {
      hooks.begin_step(*net, StepContext{step, 10, 10, 0});
      {
        NoGradGuard no_grad;
        (*net)(x);
      }
      hooks.end_step(*net, x, StepContext{step, 10, 10, 0});
    }
    mean = bn->running_mean.to_vector(), var = bn->running_var.to_vector();
    flags_restored = !conv->integer_forward() && net->is_training();
  };
  std::vector<float> mi, vi, mf, vf;
  bool ri = false, rf = false;
  run(true, mi, vi, ri);
  run(false, mf, vf, rf);
  CHECK(ri);
  CHECK(rf);
  for (size_t k = 0; k < mi.size(); ++k) {
    CHECK(mi[k] == Approx(mf[k]).epsilon(1e-5).margin(1e-6));
    CHECK(vi[k] == Approx(vf[k]).epsilon(1e-5));
  }
  CHECK_THROWS_WITH(SlbHooks(nlohmann::json{{"integer_pass", 1}}), Catch::Contains("config key 'slb.integer_pass' = 1: expected true or false"));
}
