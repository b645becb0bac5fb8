// kernels/binary_threshold.hpp: batch-norm + a 1-bit activation folded into integer
// thresholds, and the epilogue that packs a binary layer's accumulators for the next one.
#include <catch2/catch.hpp>

#include <lowbit/kernels/binary_conv.hpp>
#include <lowbit/kernels/binary_threshold.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace k = lowbit::kernels;

namespace {

// What a float evaluation computes after a binary convolution: the accumulator scaled (the
// weight's alpha times the activation step), eval batch-norm, then DoReFa's 1-bit activation
// quantize_1(clip(x, 0, 1)) = rint(clip(x, 0, 1)), all in float as the layers do it.
struct Chain {
  std::vector<float> scale, gamma, beta, mean, istd;
  bool operator()(int64_t o, int32_t y) const {
    const size_t c = static_cast<size_t>(o);
    const float x = scale[c] * static_cast<float>(y);
    const float bn = gamma[c] * (x - mean[c]) * istd[c] + beta[c];
    return std::rint(std::min(std::max(bn, 0.0f), 1.0f)) > 0.0f;
  }
};

// Channels with positive, negative and zero gamma (bit rising, falling, constant), some
// whose threshold lies outside the range (constant too), means at awkward fractions.
Chain random_chain(int64_t C, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Chain ch;
  for (int64_t c = 0; c < C; ++c) {
    ch.scale.push_back(0.01f + 0.05f * std::fabs(u(g)));
    ch.gamma.push_back(c % 7 == 3 ? 0.0f : 2.0f * u(g));
    ch.beta.push_back(c % 11 == 5 ? 40.0f : u(g));
    ch.mean.push_back(0.7f * u(g));
    ch.istd.push_back(0.5f + 3.0f * std::fabs(u(g)));
  }
  return ch;
}

}  // namespace

TEST_CASE("binary threshold: the folded comparison equals the float chain at every accumulator value",
          "[kernels][binary]") {
  const int64_t C = 77;
  const int32_t K = 64 * 9;  // 64 channels x 3x3: |y| <= 576
  const Chain chain = random_chain(C, 1);
  const std::vector<k::ChannelThreshold> th = k::fold_thresholds(C, -K, K, chain, "conv2");
  int rising = 0, falling = 0, constant = 0;
  for (int64_t o = 0; o < C; ++o) {
    const k::ChannelThreshold& t = th[static_cast<size_t>(o)];
    rising += t.kind == k::ChannelThreshold::AtLeast, falling += t.kind == k::ChannelThreshold::AtMost;
    constant += t.kind == k::ChannelThreshold::Always || t.kind == k::ChannelThreshold::Never;
    for (int32_t y = -K; y <= K; ++y) REQUIRE(t.bit(y) == chain(o, y));
  }
  CHECK(rising > 10);  // every kind occurs
  CHECK(falling > 10);
  CHECK(constant > 5);
}

TEST_CASE("binary threshold: packing the accumulators equals packing the float chain's bits",
          "[kernels][binary]") {
  std::mt19937 g(3);
  for (int64_t C : {1, 63, 64, 65, 130})
    for (int64_t P : {0, 1, 2}) {
      const k::ConvShape next{2, C, 5, 7, 4, 3, 3, 1, 1, P, P};  // the next layer reads y with padding P
      const int32_t K = 9 * 100;
      const Chain chain = random_chain(C, static_cast<unsigned>(C + P));
      const auto th = k::fold_thresholds(C, -K, K, chain, "conv");
      std::uniform_int_distribution<int32_t> d(-K, K);
      std::vector<int32_t> y(static_cast<size_t>(next.N * C * next.H * next.W));
      for (int32_t& v : y) v = d(g) / (1 + static_cast<int32_t>(g() % 20));  // many near 0, some far
      std::vector<float> bits(y.size()), want_bits(y.size());
      k::threshold_bits_reference(next.N, C, next.H * next.W, y.data(), th, bits.data());
      for (size_t i = 0; i < y.size(); ++i) {  // the twin is the chain itself
        const int64_t c = static_cast<int64_t>(i / static_cast<size_t>(next.H * next.W)) % C;
        want_bits[i] = chain(c, y[i]) ? 1.0f : 0.0f;
      }
      REQUIRE(bits == want_bits);
      k::BinaryActivations got, want;
      k::pack_binary_thresholded(next, y.data(), th, got);
      k::pack_binary_activations(next, bits.data(), want);
      CHECK(got.bits == want.bits);
      CHECK(got.Hp == want.Hp);
      CHECK(got.Wp == want.Wp);
      CHECK(got.words == want.words);
    }
}

TEST_CASE("binary threshold: two binary layers through the folded epilogue equal the float chain between them",
          "[kernels][binary]") {
  std::mt19937 g(5);
  std::uniform_int_distribution<int> d(-2, 2);
  const k::ConvShape s1{2, 70, 6, 6, 66, 3, 3, 1, 1, 1, 1}, s2{2, 66, 6, 6, 9, 3, 3, 1, 1, 1, 1};
  std::vector<float> x(static_cast<size_t>(s1.N * s1.C * s1.H * s1.W)), w1(static_cast<size_t>(s1.O * s1.C * 9)),
      w2(static_cast<size_t>(s2.O * s2.C * 9));
  for (float& v : x) v = static_cast<float>(d(g));
  for (float& v : w1) v = d(g) >= 0 ? 0.5f : -0.5f;
  for (float& v : w2) v = d(g) >= 0 ? 0.5f : -0.5f;
  const Chain chain = random_chain(s1.O, 9);
  const int32_t K = static_cast<int32_t>(s1.C * 9);
  // Float way: layer 1's integers, the chain in float to 0/1 activations, layer 2 on those.
  std::vector<int32_t> y1(static_cast<size_t>(s1.N * s1.O * 36)), want(static_cast<size_t>(s2.N * s2.O * 36)),
      got(want.size());
  k::binary_conv2d_reference(s1, x.data(), w1.data(), k::BinaryActs::ZeroOne, y1.data());
  std::vector<float> a(y1.size());
  for (size_t i = 0; i < y1.size(); ++i) a[i] = chain(static_cast<int64_t>(i / 36) % s1.O, y1[i]) ? 1.0f : 0.0f;
  k::binary_conv2d_reference(s2, a.data(), w2.data(), k::BinaryActs::ZeroOne, want.data());
  // Integer way: packed layer 1, the folded thresholds packing straight into layer 2's input.
  k::BinaryActivations xb, ab;
  k::pack_binary_activations(s1, x.data(), xb);
  std::vector<int32_t> z1(y1.size());
  k::binary_conv2d_forward(s1, xb, k::pack_binary_weights(s1, w1.data()), k::BinaryActs::ZeroOne, z1.data());
  k::pack_binary_thresholded(s2, z1.data(), k::fold_thresholds(s1.O, -K, K, chain, "layer1"), ab);
  k::binary_conv2d_forward(s2, ab, k::pack_binary_weights(s2, w2.data()), k::BinaryActs::ZeroOne, got.data());
  CHECK(got == want);
}

TEST_CASE("binary threshold: a chain that is not a threshold, or thresholds for other channels, are refused",
          "[kernels][binary][errors]") {
  auto parity = [](int64_t, int32_t y) { return y % 2 == 0; };
  CHECK_THROWS_WITH(k::fold_thresholds(3, -9, 9, parity, "layer2.conv"),
                    Catch::Matchers::Contains("layer2.conv: channel 0's activation bit changes more than once") &&
                        Catch::Matchers::Contains("[-9, 9]") && Catch::Matchers::Contains("cannot be folded"));
  CHECK_THROWS_WITH(k::fold_thresholds(3, 1, 0, parity, "fc"), Catch::Matchers::Contains("fc: accumulator range [1, 0] is empty"));
  const k::ConvShape s{1, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0};
  std::vector<int32_t> y(16, 0);
  k::BinaryActivations out;
  CHECK_THROWS_WITH(k::pack_binary_thresholded(s, y.data(), std::vector<k::ChannelThreshold>(3), out),
                    Catch::Matchers::Contains("3 thresholds for 4 channels"));
}
