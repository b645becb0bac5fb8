// kernels/binary_conv.hpp: the bit-packed 1-bit x 1-bit convolution against its twin, and the
// twin against the float convolution of the fake-quantized tensors (what evaluation computes).
#include <catch2/catch.hpp>

#include <lowbit/kernels/binary_conv.hpp>
#include <lowbit/kernels/conv.hpp>
#include <lowbit/quant/binary_weights.hpp>
#include <lowbit/quant/ste/bwn.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace k = lowbit::kernels;

namespace {

// Awkward shapes: channel counts around the 64-bit word, 1x1 to 5x3 kernels, strides 1-2,
// padding 0-2, widths that leave 1-3 pixels after the 4-pixel tiles.
std::vector<k::ConvShape> shapes() {
  std::vector<k::ConvShape> out;
  for (int64_t C : {1, 3, 63, 64, 65, 130})
    for (auto kk : {std::pair<int64_t, int64_t>{1, 1}, {3, 3}, {5, 3}})
      for (int64_t S : {1, 2})
        for (int64_t P : {0, 1, 2}) {  // 1-13 output channels: tiles of 8 and 4 and their remainders
          k::ConvShape s{2, C, 7 + P, 9 - P, static_cast<int64_t>(1 + (C + 3 * P + S) % 13), kk.first, kk.second, S, S, P, P};
          if (s.OH() > 0 && s.OW() > 0) out.push_back(s);
        }
  return out;
}

struct Tensors {
  std::vector<float> x, w;
};

// x: values around 0 (some exactly 0, read as a 0 / -1 activation); w: signs with magnitudes.
Tensors random_tensors(const k::ConvShape& s, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> d(-2, 2);
  Tensors t;
  t.x.resize(static_cast<size_t>(s.N * s.C * s.H * s.W));
  t.w.resize(static_cast<size_t>(s.O * s.C * s.KH * s.KW));
  for (float& v : t.x) v = 0.5f * static_cast<float>(d(g));
  for (float& v : t.w) v = (d(g) >= 0 ? 0.3f : -0.3f) * static_cast<float>(1 + (g() % 3));
  return t;
}

}  // namespace

TEST_CASE("binary conv: the packed kernel equals its twin on awkward shapes, {0,1} and {-1,+1} activations",
          "[kernels][binary]") {
  unsigned seed = 1;
  for (const k::ConvShape& s : shapes())
    for (k::BinaryActs acts : {k::BinaryActs::ZeroOne, k::BinaryActs::PlusMinus}) {
      const Tensors t = random_tensors(s, seed++);
      const size_t ny = static_cast<size_t>(s.N * s.O * s.OH() * s.OW());
      std::vector<int32_t> want(ny), got(ny, -999);
      k::binary_conv2d_reference(s, t.x.data(), t.w.data(), acts, want.data());
      k::BinaryActivations xb;
      k::pack_binary_activations(s, t.x.data(), xb);
      const k::BinaryWeights wb = k::pack_binary_weights(s, t.w.data());
      INFO("C " << s.C << " O " << s.O << " " << s.KH << "x" << s.KW << " stride " << s.SH << " pad " << s.PH
                << (acts == k::BinaryActs::ZeroOne ? " {0,1}" : " {-1,+1}"));
      for (k::BinaryKernel kernel : k::binary_kernels_built()) {  // VPOPCNTQ, AVX2 where built; scalar
        std::fill(got.begin(), got.end(), -999);
        k::binary_conv2d_forward(s, xb, wb, acts, got.data(), kernel);
        REQUIRE(got == want);
      }
    }
}

TEST_CASE("binary conv: each tile by name runs where built and is refused, naming it, where not",
          "[kernels][binary][errors]") {
  const k::ConvShape s{1, 70, 6, 6, 9, 3, 3, 1, 1, 1, 1};
  const Tensors t = random_tensors(s, 7);
  std::vector<int32_t> want(static_cast<size_t>(s.N * s.O * s.OH() * s.OW())), got(want.size());
  k::binary_conv2d_reference(s, t.x.data(), t.w.data(), k::BinaryActs::ZeroOne, want.data());
  k::BinaryActivations xb;
  k::pack_binary_activations(s, t.x.data(), xb);
  const k::BinaryWeights wb = k::pack_binary_weights(s, t.w.data());
  const std::vector<k::BinaryKernel> built = k::binary_kernels_built();
  CHECK(built.back() == k::BinaryKernel::Portable);  // always there, the fallback of Best
  for (k::BinaryKernel kernel : {k::BinaryKernel::Vpopcnt, k::BinaryKernel::Avx2, k::BinaryKernel::Portable}) {
    INFO("tile " << k::binary_kernel_name(kernel));
    if (std::find(built.begin(), built.end(), kernel) != built.end()) {
      k::binary_conv2d_forward(s, xb, wb, k::BinaryActs::ZeroOne, got.data(), kernel);
      CHECK(got == want);
    } else {
      CHECK_THROWS_WITH(k::binary_conv2d_forward(s, xb, wb, k::BinaryActs::ZeroOne, got.data(), kernel),
                        Catch::Matchers::Contains(std::string("the ") + k::binary_kernel_name(kernel) +
                                                  " tile is not in this build"));
    }
  }
}

TEST_CASE("binary conv: the twin is the float convolution of the fake-quantized tensors", "[kernels][binary]") {
  unsigned seed = 100;
  for (const k::ConvShape& s : shapes()) {
    if (s.C > 64) continue;  // the float reference is slow; the packed kernel covers the rest
    const Tensors t = random_tensors(s, seed++);
    for (k::BinaryActs acts : {k::BinaryActs::ZeroOne, k::BinaryActs::PlusMinus}) {
      std::vector<float> xq(t.x.size()), wq(t.w.size());
      for (size_t i = 0; i < xq.size(); ++i)
        xq[i] = t.x[i] > 0 ? 1.0f : (acts == k::BinaryActs::ZeroOne ? 0.0f : -1.0f);
      for (size_t i = 0; i < wq.size(); ++i) wq[i] = t.w[i] > 0 ? 1.0f : -1.0f;
      const size_t ny = static_cast<size_t>(s.N * s.O * s.OH() * s.OW());
      std::vector<float> yf(ny);
      std::vector<int32_t> yi(ny);
      k::conv2d_forward_reference<float>(s, xq.data(), wq.data(), nullptr, yf.data());
      k::binary_conv2d_reference(s, t.x.data(), t.w.data(), acts, yi.data());
      for (size_t i = 0; i < ny; ++i) REQUIRE(static_cast<float>(yi[i]) == yf[i]);
    }
  }
}

TEST_CASE("binary conv: tensors packed for another shape are refused", "[kernels][binary][errors]") {
  const k::ConvShape s{1, 70, 6, 6, 3, 3, 3, 1, 1, 1, 1};
  const Tensors t = random_tensors(s, 7);
  k::BinaryActivations xb;
  k::pack_binary_activations(s, t.x.data(), xb);
  const k::BinaryWeights wb = k::pack_binary_weights(s, t.w.data());
  k::ConvShape other = s;
  other.PH = other.PW = 0;
  std::vector<int32_t> y(static_cast<size_t>(other.N * other.O * other.OH() * other.OW()));
  CHECK_THROWS_WITH(k::binary_conv2d_forward(other, xb, wb, k::BinaryActs::ZeroOne, y.data()),
                    Catch::Matchers::Contains("packed tensors do not match the shape"));
}

TEST_CASE("binary conv: an exported 1-bit weight packs from its codes, one scale per output channel",
          "[kernels][binary][quant]") {
  const k::ConvShape s{2, 70, 6, 5, 6, 3, 3, 1, 1, 1, 1};
  const Tensors t = random_tensors(s, 11);
  lowbit::Tensor<float> init = lowbit::Tensor<float>::empty({s.O, s.C, s.KH, s.KW});
  std::copy(t.w.begin(), t.w.end(), init.data());
  // BWN / DoReFa's 1-bit weight: one scale E for the tensor; and a hand-made per-channel
  // codebook {-0.5, +0.5} with one negative scale (it flips that channel's signs).
  lowbit::quant::QuantCodes per_channel = lowbit::quant::BinaryWeight(init).codes();
  per_channel.levels = {-0.5f, 0.5f};
  per_channel.group_size = s.C * s.KH * s.KW;
  per_channel.scales = {0.3f, 1.7f, -0.9f, 2.5f, 0.01f, 1.0f};
  for (const lowbit::quant::QuantCodes& q : {lowbit::quant::BinaryWeight(init).codes(), per_channel}) {
    const lowbit::quant::PackedBinaryConv p = lowbit::quant::pack_binary_conv(q, s, "conv");
    const lowbit::Tensor<float> deq = q.dequantize();
    const k::BinaryWeights from_floats = k::pack_binary_weights(s, deq.data());
    CHECK(p.w.quads == from_floats.quads);
    CHECK(p.w.tap_sum == from_floats.tap_sum);
    const int64_t K = s.C * s.KH * s.KW;
    for (int64_t i = 0; i < deq.numel(); ++i)  // every weight is exactly +-scale[o]
      REQUIRE(std::abs(deq.data()[i]) == p.scale[static_cast<size_t>(i / K)]);
    // The integer result times the scale is the float convolution of {0,1} activations with
    // the dequantized weight, up to the float sum's rounding.
    k::BinaryActivations xb;
    k::pack_binary_activations(s, t.x.data(), xb);
    const size_t ny = static_cast<size_t>(s.N * s.O * s.OH() * s.OW());
    std::vector<int32_t> yi(ny);
    k::binary_conv2d_forward(s, xb, p.w, k::BinaryActs::ZeroOne, yi.data());
    std::vector<float> x01(t.x.size()), yf(ny);
    for (size_t i = 0; i < x01.size(); ++i) x01[i] = t.x[i] > 0 ? 1.f : 0.f;
    k::conv2d_forward_reference<float>(s, x01.data(), deq.data(), nullptr, yf.data());
    const int64_t plane = s.OH() * s.OW();
    for (size_t i = 0; i < ny; ++i) {
      const float scale = p.scale[static_cast<size_t>((static_cast<int64_t>(i) / plane) % s.O)];
      REQUIRE(std::abs(static_cast<float>(yi[i]) * scale - yf[i]) <= 1e-5f * scale * static_cast<float>(K));
    }
  }
  // What it cannot take: 2-bit codes, a group spanning two channels, a code of 2.
  lowbit::quant::QuantCodes two_bit = per_channel;
  two_bit.bits = 2;
  CHECK_THROWS_WITH(lowbit::quant::pack_binary_conv(two_bit, s, "layer1.conv"),
                    Catch::Matchers::Contains("layer1.conv: 2-bit codes") && Catch::Matchers::Contains("symmetric codebook"));
  lowbit::quant::QuantCodes spanning = per_channel;
  spanning.group_size = 100;
  spanning.scales.assign(static_cast<size_t>(spanning.num_groups()), 1.f);
  CHECK_THROWS_WITH(lowbit::quant::pack_binary_conv(spanning, s, "conv"),
                    Catch::Matchers::Contains("a scale group spans output channels"));
  lowbit::quant::QuantCodes bad_code = per_channel;
  bad_code.codes[5] = 2;
  CHECK_THROWS_WITH(lowbit::quant::pack_binary_conv(bad_code, s, "conv"), Catch::Matchers::Contains("a 1-bit code is 2"));
}
