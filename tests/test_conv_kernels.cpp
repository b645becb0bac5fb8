// Convolution kernels (kernels/conv.hpp): the fast paths against their reference twins on
// awkward shapes, for float (AVX2 path when compiled with it) and double (Eigen path), plus a
// case small enough to compute by hand. Backward kernels must ADD into their outputs, so
// every gradient buffer starts out filled with random values.
#include <catch2/catch.hpp>
#include <lowbit/kernels/conv.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using lowbit::kernels::ConvShape;
namespace k = lowbit::kernels;

namespace {

template <class T>
std::vector<T> random_vec(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& e : v) e = static_cast<T>(d(rng));
  return v;
}

// max |a - b| relative to the largest magnitude in b (floored at 1 so near-zero outputs
// don't inflate the ratio).
template <class T>
double rel_err(const std::vector<T>& a, const std::vector<T>& b) {
  double diff = 0, mag = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    mag = std::max(mag, std::abs(static_cast<double>(b[i])));
  }
  return diff / mag;
}

std::string describe(const ConvShape& s) {
  std::ostringstream os;
  os << "N" << s.N << " C" << s.C << " " << s.H << "x" << s.W << " -> O" << s.O << " k" << s.KH
     << "x" << s.KW << " s" << s.SH << "," << s.SW << " p" << s.PH << "," << s.PW;
  return os.str();
}

template <class T>
void check_against_reference(const ConvShape& s, uint32_t seed) {
  const double tol = std::is_same<T, float>::value ? 1e-4 : 1e-10;
  std::mt19937 rng(seed);
  const int64_t xs = s.N * s.C * s.H * s.W, ws = s.O * s.C * s.KH * s.KW;
  const int64_t ys = s.N * s.O * s.OH() * s.OW();
  auto x = random_vec<T>(xs, rng), w = random_vec<T>(ws, rng), b = random_vec<T>(s.O, rng);
  auto dy = random_vec<T>(ys, rng);
  INFO(describe(s) << (std::is_same<T, float>::value ? " float" : " double"));

  for (bool with_bias : {true, false}) {
    std::vector<T> y(ys, T(7)), yr(ys, T(-7));  // forward assigns: prefill must not leak
    const T* bias = with_bias ? b.data() : nullptr;
    k::conv2d_forward(s, x.data(), w.data(), bias, y.data());
    k::conv2d_forward_reference(s, x.data(), w.data(), bias, yr.data());
    INFO("forward, bias " << with_bias);
    CHECK(rel_err(y, yr) < tol);
  }

  auto dx0 = random_vec<T>(xs, rng);
  auto dx = dx0, dxr = dx0;
  k::conv2d_backward_input(s, dy.data(), w.data(), dx.data());
  k::conv2d_backward_input_reference(s, dy.data(), w.data(), dxr.data());
  {
    INFO("backward_input");
    CHECK(rel_err(dx, dxr) < tol);
  }
  {
    // accumulate = false assigns: a NaN prefill must not survive anywhere, and the result is
    // the reference's gradient added to zero.
    std::vector<T> dxa(xs, std::numeric_limits<T>::quiet_NaN()), dxz(xs, T(0));
    k::conv2d_backward_input(s, dy.data(), w.data(), dxa.data(), /*accumulate=*/false);
    k::conv2d_backward_input_reference(s, dy.data(), w.data(), dxz.data());
    INFO("backward_input, assign");
    CHECK(std::none_of(dxa.begin(), dxa.end(), [](T v) { return std::isnan(v); }));
    CHECK(rel_err(dxa, dxz) < tol);
  }

  auto dw0 = random_vec<T>(ws, rng), db0 = random_vec<T>(s.O, rng);
  auto dw = dw0, dwr = dw0, db = db0, dbr = db0;
  k::conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data());
  k::conv2d_backward_weight_reference(s, x.data(), dy.data(), dwr.data(), dbr.data());
  {
    INFO("backward_weight");
    CHECK(rel_err(dw, dwr) < tol);
    CHECK(rel_err(db, dbr) < tol);
  }
  auto dw2 = dw0, dwr2 = dw0;  // db may be null
  k::conv2d_backward_weight<T>(s, x.data(), dy.data(), dw2.data(), nullptr);
  k::conv2d_backward_weight_reference<T>(s, x.data(), dy.data(), dwr2.data(), nullptr);
  CHECK(rel_err(dw2, dwr2) < tol);
}

ConvShape shape(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW,
                int64_t SH = 1, int64_t SW = 1, int64_t PH = 0, int64_t PW = 0) {
  ConvShape s{N, C, H, W, O, KH, KW};
  s.SH = SH; s.SW = SW; s.PH = PH; s.PW = PW;
  return s;
}

std::vector<ConvShape> awkward_shapes() {
  return {
      shape(1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1),    // batch 1, C = 3, pad 1
      shape(2, 5, 7, 9, 7, 3, 3, 1, 1, 0, 0),    // odd sizes, pad 0, O not a multiple of 4
      shape(3, 13, 7, 9, 13, 3, 3, 2, 2, 1, 1),  // stride 2, C = O = 13
      shape(2, 5, 6, 7, 9, 1, 1),                // 1x1
      shape(2, 16, 8, 8, 32, 1, 1, 2, 2, 0, 0),  // ResNet option-B shortcut, small
      shape(2, 3, 7, 9, 5, 3, 1, 1, 1, 1, 0),    // rectangular 3x1, asymmetric pads
      shape(2, 4, 9, 7, 6, 2, 5, 1, 2, 0, 2),    // 2x5, mixed strides
      shape(1, 2, 5, 5, 3, 5, 5, 1, 1, 2, 2),    // kernel as big as the input
      shape(1, 1, 4, 4, 1, 3, 3, 3, 3, 0, 0),    // stride 3, a single output pixel
      shape(2, 6, 11, 13, 30, 3, 3, 1, 1, 1, 1), // P = 143: full + tail 24-panels
      shape(5, 3, 4, 6, 29, 2, 2, 2, 1, 1, 0),   // several images per weight-gradient group
  };
}

}  // namespace

TEST_CASE("conv kernels: hand-computed 3x3 input, 2x2 kernel", "[conv_kernels]") {
  // x = 1 2 3      w = 1  0      bias 0.5, stride 1, no padding:
  //     4 5 6          0 -1      y = [1-5, 2-6; 4-8, 5-9] + 0.5 = [-3.5 -3.5; -3.5 -3.5]
  //     7 8 9
  ConvShape s{1, 1, 3, 3, 1, 2, 2};
  const std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8, 9}, w{1, 0, 0, -1}, b{0.5f};
  std::vector<float> y(4, 123.f);
  k::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
  CHECK(y == std::vector<float>{-3.5f, -3.5f, -3.5f, -3.5f});

  // dy = [1 2; 3 4]: dx[ih][iw] = sum dy[oh][ow] * w[ih-oh][iw-ow]; w has +1 at (0,0) and
  // -1 at (1,1), so dx = dy placed at the top-left minus dy placed at the bottom-right.
  //   dx = 1  2  0      dw[kh][kw] = sum dy[oh][ow] * x[oh+kh][ow+kw]
  //        3  3 -2        dw[0][0] = 1*1+2*2+3*4+4*5 = 37, dw[0][1] = 1*2+2*3+3*5+4*6 = 47
  //        0 -3 -4        dw[1][0] = 1*4+2*5+3*7+4*8 = 67, dw[1][1] = 1*5+2*6+3*8+4*9 = 77
  const std::vector<float> dy{1, 2, 3, 4};
  std::vector<float> dx(9, 1.0f), dw(4, 1.0f), db(1, 1.0f);  // ones: the kernels must add
  k::conv2d_backward_input(s, dy.data(), w.data(), dx.data());
  CHECK(dx == std::vector<float>{2, 3, 1, 4, 4, -1, 1, -2, -3});
  k::conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data());
  CHECK(dw == std::vector<float>{38, 48, 68, 78});
  CHECK(db == std::vector<float>{11});

  // Padding 1: the corner output sees only x[0][0..1], x[1][0..1] through w's bottom-right.
  ConvShape sp = s;
  sp.PH = sp.PW = 1;
  std::vector<float> yp(16), ypr(16);
  k::conv2d_forward(sp, x.data(), w.data(), b.data(), yp.data());
  CHECK(yp[0] == Approx(-1.0f + 0.5f));  // only w[1][1] * x[0][0] = -1 lands in the corner
  k::conv2d_forward_reference(sp, x.data(), w.data(), b.data(), ypr.data());
  CHECK(yp == ypr);
}

TEST_CASE("conv kernels: fast float matches reference on awkward shapes", "[conv_kernels]") {
  uint32_t seed = 1;
  for (const auto& s : awkward_shapes()) check_against_reference<float>(s, seed++);
}

TEST_CASE("conv kernels: double path matches reference on awkward shapes", "[conv_kernels]") {
  uint32_t seed = 100;
  for (const auto& s : awkward_shapes()) check_against_reference<double>(s, seed++);
}

TEST_CASE("conv kernels: real ResNet-20 / VGG-Small shapes at small batch", "[conv_kernels]") {
  // Small batch and, for VGG, fewer channels than the real net so the double-accumulating
  // reference stays fast under sanitizers; the spatial sizes and K blocking are the real ones.
  const std::vector<ConvShape> shapes = {
      shape(2, 3, 32, 32, 16, 3, 3, 1, 1, 1, 1),   // ResNet stem
      shape(2, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1),  // ResNet stage 1
      shape(2, 16, 32, 32, 32, 3, 3, 2, 2, 1, 1),  // ResNet stride-2 transition
      shape(3, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1),  // ResNet stage 2 (K = 288: two K blocks)
      shape(2, 32, 16, 16, 64, 1, 1, 2, 2, 0, 0),  // option-B shortcut
      shape(9, 64, 8, 8, 20, 3, 3, 1, 1, 1, 1),    // 8x8 stage: images grouped for dw
      shape(1, 40, 8, 8, 300, 3, 3, 1, 1, 1, 1),   // O > 256: blocked reduction in dx
  };
  uint32_t seed = 500;
  for (const auto& s : shapes) check_against_reference<float>(s, seed++);
  check_against_reference<double>(shapes[1], seed++);
}

TEST_CASE("conv kernels: stride-1 padded-grid path edge cases", "[conv_kernels]") {
  // Stride 1 with PH <= KH-1 and PW <= KW-1 runs on the padded-grid implicit GEMM (forward;
  // input gradient as a forward conv with flipped weights; weight gradient over stacked
  // images). These shapes hit its corners; the last two go to the phase grid instead
  // (pad > kernel-1, stride 2).
  const std::vector<ConvShape> shapes = {
      shape(2, 3, 6, 7, 5, 3, 3, 1, 1, 0, 2),     // pad 0 rows, pad 2 columns (= KW-1)
      shape(2, 4, 5, 6, 11, 3, 3, 1, 1, 2, 0),    // pad 2 rows only; O = 11: 8-row + 3-row panels
      shape(3, 5, 4, 9, 13, 2, 2, 1, 1, 1, 1),    // even kernel, pad 1 (flipped pad 0)
      shape(2, 7, 3, 3, 9, 1, 1),                 // 1x1 stride 1: Ws = W, no gaps
      shape(2, 2, 6, 6, 3, 1, 5, 1, 1, 0, 4),     // 1x5, column pad 4 = KW-1
      shape(6, 3, 16, 16, 17, 3, 3, 1, 1, 1, 1),  // weight grad: groups of 4 images + 2
      shape(9, 6, 8, 8, 8, 3, 3, 1, 1, 1, 1),     // one stacked group of 9 small images
      shape(1, 2, 1, 1, 3, 3, 3, 1, 1, 1, 1),     // a single pixel, all taps but one padding
      shape(2, 35, 5, 8, 50, 3, 3, 1, 1, 1, 1),   // 8-wide rows (AVX-512: pixel-broadcast
                                                  // kernel), 32 + 18 channels both ways
      // 3x3 with rows of whole 8-pixel tiles and >= 16 output channels (AVX-512: the
      // padding-skipping tile pb3_kernel; stride 1 pad 1 weight gradient: wg3x3_pad1_kernel):
      shape(2, 5, 1, 16, 16, 3, 3, 1, 1, 1, 1),   // one row: only kh = 1; 16 channels (NV = 1)
      shape(2, 3, 6, 24, 20, 3, 3, 1, 1, 1, 1),   // three tiles a row, the middle one skips none
      shape(1, 4, 7, 6, 16, 3, 3, 1, 1, 2, 2),    // pad 2: two padding rows / columns a side
      shape(2, 3, 10, 10, 16, 3, 3, 1, 1, 0, 0),  // pad 0: nothing to skip
      shape(2, 3, 5, 8, 48, 3, 3, 1, 1, 1, 1),    // 32 + 16 channels; dw panels NCH 2 and 1
      shape(3, 4, 1, 2, 17, 3, 3, 1, 1, 1, 1),    // dw: one output row, first = last pixel + 1
      shape(2, 3, 5, 6, 4, 2, 2, 1, 1, 2, 1),     // PH = 2 > KH-1: phase grid
      shape(2, 3, 9, 9, 8, 3, 3, 2, 2, 1, 1),     // stride 2: phase grid
  };
  uint32_t seed = 900;
  for (const auto& s : shapes) check_against_reference<float>(s, seed++);
  for (const auto& s : shapes) check_against_reference<double>(s, seed++);
}

TEST_CASE("conv kernels: strided phase-grid path edge cases", "[conv_kernels]") {
  // Stride >= 2 (and stride 1 with pad > kernel-1) runs on the phase grid: the padded input
  // split into its S x S phases, forward and weight gradient as implicit GEMMs over that
  // layout, input gradient as one sub-kernel GEMM per phase of dx. Odd and even sizes move
  // the last used input row/column between phases; stacked weight-gradient groups, pads
  // 0 / 1 / 2, kernels 1x1 / 3x3 / 5x5, channel counts off the 8- and 32-wide tiles.
  const std::vector<ConvShape> shapes = {
      shape(1, 5, 9, 9, 7, 3, 3, 2, 2, 1, 1),      // batch 1, odd input, pad 1
      shape(2, 3, 10, 8, 11, 3, 3, 2, 2, 0, 0),    // even input, pad 0 (last column unread)
      shape(3, 4, 11, 12, 9, 3, 3, 2, 2, 0, 0),    // odd x even, pad 0
      shape(2, 6, 8, 8, 17, 1, 1, 2, 2, 0, 0),     // 1x1/2 shortcut: only phase (0,0) stored
      shape(2, 3, 9, 7, 5, 1, 1, 2, 2, 1, 1),      // 1x1/2 with pad: the border outputs are bias
      shape(2, 5, 13, 11, 6, 5, 5, 2, 2, 2, 2),    // 5x5/2 pad 2
      shape(1, 2, 12, 12, 3, 5, 5, 2, 2, 0, 1),    // 5x5/2, unequal pads
      shape(5, 9, 16, 16, 40, 3, 3, 2, 2, 1, 1),   // dw: 2-image groups, O = 40 (32 + 8 panels)
      shape(4, 17, 7, 7, 16, 3, 3, 2, 2, 1, 1),    // O = 16: the two-channel dw kernel, odd C
      shape(2, 3, 10, 9, 4, 3, 3, 3, 3, 1, 1),     // stride 3: generic phase code
      shape(2, 3, 9, 10, 5, 3, 2, 2, 3, 1, 0),     // stride 2 x 3, 3x2 kernel
      shape(2, 3, 6, 5, 4, 3, 3, 1, 1, 3, 2),      // stride 1, pad > kernel-1
      shape(2, 7, 6, 16, 13, 3, 3, 2, 2, 1, 1),    // 3 x 8 output: pixel-broadcast tiles, 13 channels
      shape(2, 3, 9, 8, 5, 3, 3, 2, 1, -1, 0),     // negative pad (a crop): packed im2col fallback
  };
  uint32_t seed = 1300;
  for (const auto& s : shapes) check_against_reference<float>(s, seed++);
  check_against_reference<double>(shapes[0], seed++);
}

TEST_CASE("conv kernels: results do not depend on the thread count", "[conv_kernels]") {
  const ConvShape s = shape(6, 16, 12, 12, 16, 3, 3, 1, 1, 1, 1);  // big enough to fork
  std::mt19937 rng(77);
  auto x = random_vec<float>(s.N * s.C * s.H * s.W, rng);
  auto w = random_vec<float>(s.O * s.C * 9, rng);
  auto dy = random_vec<float>(s.N * s.O * s.OH() * s.OW(), rng);
  const int saved = lowbit::max_threads();
  std::vector<float> y1(dy.size()), y2(dy.size()), dw1(w.size()), dw2(w.size());
  lowbit::set_num_threads(1);
  k::conv2d_forward<float>(s, x.data(), w.data(), nullptr, y1.data());
  k::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw1.data(), nullptr);
  lowbit::set_num_threads(2);
  k::conv2d_forward<float>(s, x.data(), w.data(), nullptr, y2.data());
  k::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw2.data(), nullptr);
  lowbit::set_num_threads(saved);
  CHECK(y1 == y2);  // images are independent: bitwise equal
  CHECK(rel_err(dw1, dw2) < 1e-5);  // per-thread partial sums: equal up to rounding
}

TEST_CASE("conv kernels: repeated runs are bit-identical at a fixed thread count", "[conv_kernels]") {
  // Per-thread weight-gradient partials are combined in thread order, never in completion
  // order, so every pass must reproduce itself exactly (the trainer's resume test relies on it).
  for (const ConvShape& s : {shape(8, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1), shape(8, 16, 16, 16, 32, 3, 3, 2, 2, 1, 1)}) {
    INFO(describe(s));
    std::mt19937 rng(78);
    auto x = random_vec<float>(s.N * s.C * s.H * s.W, rng);
    auto w = random_vec<float>(s.O * s.C * 9, rng);
    auto dy = random_vec<float>(s.N * s.O * s.OH() * s.OW(), rng);
    const int saved = lowbit::max_threads();
    lowbit::set_num_threads(2);
    std::vector<float> ref_dx, ref_dw, ref_db;
    for (int rep = 0; rep < 4; ++rep) {
      std::vector<float> dx(x.size(), 0.5f), dw(w.size(), 0.25f), db(s.O, 1.0f);
      k::conv2d_backward_input<float>(s, dy.data(), w.data(), dx.data());
      k::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw.data(), db.data());
      if (rep == 0) {
        ref_dx = dx, ref_dw = dw, ref_db = db;
      } else {
        CHECK(dx == ref_dx);
        CHECK(dw == ref_dw);
        CHECK(db == ref_db);
      }
    }
    lowbit::set_num_threads(saved);
  }
}

#ifdef LOWBIT_HAVE_AVX2_FMA
TEST_CASE("conv kernels: dy panel transpose matches the scalar definition", "[conv_kernels]") {
  // avx2::transpose_panel: dst[p * w + o] = src[o * P + p] for o < oc, zeros for oc <= o < w.
  // Pixel counts off and on the 8x8 blocks, channel counts below, at and past 8, panel widths
  // wider than oc (the zero columns of a channel tail).
  std::mt19937 rng(31);
  for (int64_t P : {1, 7, 8, 9, 16, 49, 64})
    for (int64_t oc : {1, 5, 8, 13, 16, 32})
      for (int64_t w : {oc, (oc + 7) / 8 * 8, (oc + 15) / 16 * 16 + 16}) {
        INFO("P " << P << " oc " << oc << " w " << w);
        const auto src = random_vec<float>(oc * P, rng);
        std::vector<float> dst(static_cast<size_t>(P * w + 8), -7.0f);  // guard floats at the end
        k::avx2::transpose_panel(src.data(), P, oc, w, dst.data());
        bool ok = true;
        for (int64_t p = 0; p < P; ++p)
          for (int64_t o = 0; o < w; ++o) ok &= dst[p * w + o] == (o < oc ? src[o * P + p] : 0.0f);
        for (int64_t i = P * w; i < P * w + 8; ++i) ok &= dst[i] == -7.0f;
        CHECK(ok);
      }
}

TEST_CASE("conv kernels: grid row copy and zero fill write exactly the first n floats", "[conv_kernels]") {
  // conv_detail::copy_row / zero_row: every length from 0 to 41 (the 4/2/1-float steps below
  // a vector, whole vectors, and the overlapping last vector), at offsets 0..3 so the stores
  // are unaligned; guard floats before and after must stay untouched.
  std::mt19937 rng(37);
  for (int64_t n = 0; n <= 41; ++n)
    for (int64_t at = 0; at < 4; ++at) {
      INFO("n " << n << " offset " << at);
      const auto src = random_vec<float>(n + 8, rng);
      std::vector<float> a(static_cast<size_t>(n + 16), -7.0f), z(a);
      k::conv_detail::copy_row(a.data() + 4 + at, src.data() + at, n);
      k::conv_detail::zero_row(z.data() + 4 + at, n);
      bool ok = true;
      for (int64_t i = 0; i < n + 16; ++i) {
        const bool inside = i >= 4 + at && i < 4 + at + n;
        ok &= a[i] == (inside ? src[i - 4] : -7.0f);
        ok &= z[i] == (inside ? 0.0f : -7.0f);
      }
      CHECK(ok);
    }
}
#endif
