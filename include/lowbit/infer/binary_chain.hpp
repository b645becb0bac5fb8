// Consecutive binary layers of an inference model fused into one module (issue 31; Larq
// Compute Engine does the same): between two binary convolutions the unfused model turns the
// first one's counts into floats, max-pools them, applies batch-norm (and ReLU), and the second
// packs bits again from DoReFa's 1-bit code of the result. Fused, the counts stay integers:
//
//   counts --(max-pool on the integers)--> one comparison per channel --> the next layer's bits
//
// * Max-pooling commutes with the float output: y -> scale[o] y + bias[o] is non-decreasing
//   (scale > 0, and rounding is monotone), so the largest float is the float of the largest count.
// * Everything between the pool and the next binary layer is per channel and monotone
//   (batch-norm with either sign of gamma, ReLU, the 1-bit code), so the next bit is a threshold
//   on the count (kernels/binary_threshold.hpp). The thresholds are found by running the model's
//   own modules, at load, on every count the layer can produce (|y| <= C KH KW), so the fused
//   bits equal the unfused ones exactly, float rounding included; a run is left unfused where
//   the bit is not monotone in the count.
//
// The fused model's output equals the unfused inference model's bit for bit (tests/test_infer.cpp).
// Only a Sequential's children are fused (VGG-Small's features: conv, [pool], BN, conv, ...);
// ResNet's blocks have their own forward and stay unfused.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../autograd/profiler.hpp"
#include "../kernels/binary_conv.hpp"
#include "../kernels/binary_threshold.hpp"
#include "../kernels/conv.hpp"
#include "../kernels/parallel.hpp"
#include "../nn/layers.hpp"
#include "conv.hpp"

namespace lowbit {
namespace infer {

class BinaryChain : public nn::Module {
 public:
  struct Stage {
    std::shared_ptr<InferConv2d> conv;
    int64_t pool_k = 0, pool_s = 0;              // a max-pool on the counts (0: none)
    std::vector<kernels::ChannelThreshold> th;   // the next stage's input bits (all but the last)
  };

  // `layers`: the Sequential's children the chain replaces, with their names (kept as this
  // module's children, so parameters and eval() still reach them).
  BinaryChain(const std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>>& layers, std::vector<Stage> stages)
      : stages_(std::move(stages)) {
    for (auto& [name, m] : layers) register_module(name, m);
  }

  // One image at a time through the whole chain, so its counts (512 KB for VGG-Small's first
  // binary layer) stay in cache instead of a batch's (64 MB at batch 128) going through memory
  // between the layers; images go to threads, each with its own scratch. A single image runs
  // its convolutions on all threads instead.
  Tensorf forward(const Tensorf& x) override {
    ProfileTimer timer(false, active_profile() ? "BinaryChain" : "");
    LOWBIT_CHECK(x.dim() == 4, "BinaryChain: input ", shape_str(x.shape()), ", expected [N, C, H, W]");
    const int64_t N = x.shape()[0];
    kernels::ConvShape s = stages_[0].conv->shape(1, x.shape()[2], x.shape()[3]);
    LOWBIT_CHECK(x.shape()[1] == s.C, "BinaryChain: input ", shape_str(x.shape()), ", expected ", s.C, " channels");
    for (size_t i = 0;; ++i) {  // every shape checked here, before the parallel region
      LOWBIT_CHECK(s.H + 2 * s.PH >= s.KH && s.W + 2 * s.PW >= s.KW && s.H >= 1 && s.W >= 1, "BinaryChain: input ",
                   shape_str(x.shape()), " is too small for stage ", i, "'s ", s.KH, "x", s.KW, " kernel");
      if (i + 1 == stages_.size()) break;
      int64_t H = s.OH(), W = s.OW();
      if (stages_[i].pool_k > 0) {
        LOWBIT_CHECK(H >= stages_[i].pool_k && W >= stages_[i].pool_k, "BinaryChain: input ", shape_str(x.shape()),
                     " is too small for stage ", i, "'s max-pool");
        H = (H - stages_[i].pool_k) / stages_[i].pool_s + 1, W = (W - stages_[i].pool_k) / stages_[i].pool_s + 1;
      }
      s = stages_[i + 1].conv->shape(1, H, W);
    }
    Tensorf y = Tensorf::empty({N, s.O, s.OH(), s.OW()});
    scratch_.resize(static_cast<size_t>(max_threads()));
    const int64_t in_image = x.numel() / std::max<int64_t>(N, 1), out_image = s.O * s.OH() * s.OW();
    if (N == 1) {  // not even a one-thread region around it: libgomp would start new threads
                   // for every nested region inside (measured: 7x slower on 2 threads)
      run_image(x.data(), x.shape()[2], x.shape()[3], scratch_[0], y.data());
      return y;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t n = 0; n < N; ++n)
      run_image(x.data() + n * in_image, x.shape()[2], x.shape()[3], scratch_[static_cast<size_t>(thread_index())],
                y.data() + n * out_image);
    return y;
  }
  std::string type_name() const override { return "BinaryChain"; }
  const std::vector<Stage>& stages() const { return stages_; }

 private:
  struct Scratch {
    kernels::BinaryActivations bits;
    std::vector<int32_t> counts, pooled;
  };

  void run_image(const float* x, int64_t H, int64_t W, Scratch& sc, float* y) const {
    const bool prof = active_profile() != nullptr;  // the steps timed apart in a profile (its own thread)
    kernels::ConvShape s = stages_[0].conv->shape(1, H, W);
    {
      ProfileTimer t(false, prof ? "BinaryChain/pack input" : "");
      InferConv2d::pack_input(x, s, sc.bits);
    }
    for (size_t i = 0;; ++i) {
      const Stage& st = stages_[i];
      H = s.OH(), W = s.OW();
      sc.counts.resize(static_cast<size_t>(s.O * H * W));
      {
        ProfileTimer t(false, prof ? "BinaryChain/conv " + std::to_string(i) : "");
        kernels::binary_conv2d_forward(s, sc.bits, st.conv->binary_weights(), kernels::BinaryActs::ZeroOne, sc.counts.data());
      }
      if (i + 1 == stages_.size()) return st.conv->binary_epilogue(sc.counts.data(), 1, H * W, y);
      const int32_t* counts = sc.counts.data();
      if (st.pool_k > 0) {
        ProfileTimer t(false, prof ? "BinaryChain/pool" : "");
        max_pool_counts(counts, s.O, H, W, st.pool_k, st.pool_s, sc.pooled);
        counts = sc.pooled.data();
      }
      ProfileTimer t(false, prof ? "BinaryChain/thresholds" : "");
      s = stages_[i + 1].conv->shape(1, H, W);
      kernels::pack_binary_thresholded(s, counts, st.th, sc.bits);
    }
  }

  // k x k windows at stride `stride` over each of `planes` H x W planes (no padding; the output
  // size of ops/pool.hpp's max_pool2d); H and W become the output's.
  static void max_pool_counts(const int32_t* in, int64_t planes, int64_t& H, int64_t& W, int64_t k, int64_t stride,
                              std::vector<int32_t>& out) {
    const int64_t OH = (H - k) / stride + 1, OW = (W - k) / stride + 1;
    out.resize(static_cast<size_t>(planes * OH * OW));
    if (k == 2 && stride == 2) {  // VGG's pool, as one vectorizable loop over pairs of rows
      for (int64_t p = 0; p < planes; ++p)
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int32_t* r0 = in + (p * H + 2 * oy) * W;
          const int32_t* r1 = r0 + W;
          int32_t* o = out.data() + (p * OH + oy) * OW;
          for (int64_t ox = 0; ox < OW; ++ox)
            o[ox] = std::max(std::max(r0[2 * ox], r0[2 * ox + 1]), std::max(r1[2 * ox], r1[2 * ox + 1]));
        }
      H = OH, W = OW;
      return;
    }
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          const int32_t* src = in + (p * H + oy * stride) * W + ox * stride;
          int32_t m = src[0];
          for (int64_t dy = 0; dy < k; ++dy)
            for (int64_t dx = 0; dx < k; ++dx) m = std::max(m, src[dy * W + dx]);
          out[static_cast<size_t>((p * OH + oy) * OW + ox)] = m;
        }
    H = OH, W = OW;
  }

  std::vector<Stage> stages_;
  std::vector<Scratch> scratch_;  // one per thread, kept between calls
};

namespace detail {
// The next stage's thresholds for conv's counts through `between` (per-channel monotone
// modules: batch-norm, ReLU), run on every count conv can produce; false (and a reason) when the
// bit is not a threshold.
inline bool chain_thresholds(const InferConv2d& conv, const std::vector<std::shared_ptr<nn::Module>>& between,
                             std::vector<kernels::ChannelThreshold>& th, std::string& why) {
  const nn::ConvSpec& sp = conv.spec();
  const int32_t K = static_cast<int32_t>(sp.in * sp.kernel * sp.kernel), lo = -K, hi = K;
  const int64_t R = int64_t(hi) - lo + 1;
  Tensorf t = Tensorf::empty({1, sp.out, 1, R});
  for (int64_t o = 0; o < sp.out; ++o)
    for (int64_t r = 0; r < R; ++r) t.data()[o * R + r] = conv.binary_output(static_cast<int32_t>(lo + r), o);
  NoGradGuard no_grad;
  for (const auto& m : between) {
    LOWBIT_CHECK(!m->is_training(), "fuse_binary_chains: ", m->type_name(), " is in training mode; eval() the model first");
    t = (*m)(t);
  }
  try {
    th = kernels::fold_thresholds(sp.out, lo, hi, [&](int64_t o, int32_t y) {
      return InferConv2d::input_bit(t.data()[o * R + (y - lo)]);  // the bit pack_input gives
    }, "BinaryChain");
  } catch (const Error& e) {
    why = e.what();
    return false;
  }
  return true;
}

inline bool is_binary(const std::shared_ptr<nn::Module>& m) {
  auto c = std::dynamic_pointer_cast<InferConv2d>(m);
  return c && c->kernel() == ConvKernel::Binary;
}
inline bool per_channel_monotone(const nn::Module& m) {
  const std::string t = m.type_name();
  return t == "BatchNorm2d" || t == "BatchNorm2d+ReLU" || t == "ReLU";
}
}  // namespace detail

// Fuses every run of binary layers in the Sequentials under `root` (an eval-mode inference
// model, after loading): binary conv, [max-pool], per-channel monotone modules, binary conv, ...
// Returns the names (under `prefix`) of the convolutions whose output now goes to the next one
// as integer thresholds.
inline std::vector<std::string> fuse_binary_chains(const std::shared_ptr<nn::Module>& root, const std::string& prefix = "") {
  std::vector<std::string> fused;
  for (auto& [n, c] : root->children()) {
    auto sub = fuse_binary_chains(c, prefix.empty() ? n : prefix + "." + n);
    fused.insert(fused.end(), sub.begin(), sub.end());
  }
  auto seq = std::dynamic_pointer_cast<nn::Sequential>(root);
  if (!seq) return fused;
  for (size_t i = 0; i < seq->children().size(); ++i) {
    const auto& kids = seq->children();
    if (!detail::is_binary(kids[i].second)) continue;
    auto stage = [](const std::shared_ptr<nn::Module>& m) {
      BinaryChain::Stage st;
      st.conv = std::dynamic_pointer_cast<InferConv2d>(m);
      return st;
    };
    std::vector<BinaryChain::Stage> stages{stage(kids[i].second)};
    size_t last = i;  // the last conv of the chain
    for (;;) {
      size_t j = last + 1;
      BinaryChain::Stage& st = stages.back();
      int64_t pk = 0, ps = 0;
      if (j < kids.size())
        if (auto p = std::dynamic_pointer_cast<nn::MaxPool2d>(kids[j].second)) pk = p->kernel(), ps = p->stride(), ++j;
      std::vector<std::shared_ptr<nn::Module>> between;
      while (j < kids.size() && detail::per_channel_monotone(*kids[j].second)) between.push_back(kids[j++].second);
      std::string why;
      if (j >= kids.size() || !detail::is_binary(kids[j].second) || !detail::chain_thresholds(*st.conv, between, st.th, why))
        break;
      st.pool_k = pk, st.pool_s = ps;
      fused.push_back((prefix.empty() ? "" : prefix + ".") + kids[last].first);
      stages.push_back(stage(kids[j].second));
      last = j;
    }
    if (stages.size() < 2) continue;
    stages.back().th.clear();
    std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> run(kids.begin() + static_cast<std::ptrdiff_t>(i),
                                                                         kids.begin() + static_cast<std::ptrdiff_t>(last + 1));
    seq->fuse(i, last + 1, std::make_shared<BinaryChain>(run, std::move(stages)));
  }
  return fused;
}

}  // namespace infer
}  // namespace lowbit
