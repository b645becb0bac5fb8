// ALQ (Qu, Zhou, Cheng & Thiele, "Adaptive Loss-aware Quantization for Multi-bit Networks",
// CVPR 2020): the representation of one quantized weight tensor and the per-group
// mathematics. The optimizer that drives it is quant/alq/optim.hpp, pruning is
// quant/alq/prune.hpp, the pipeline and trainer hooks are quant/alq/pipeline.hpp; docs/alq.md maps
// every equation of the paper to a function here.
//
// Representation (Sec. 3.1). The N weights of a layer are split into G disjoint groups of
// n weights; group g is reconstructed from I_g binary bases and I_g coordinates
//
//   w_hat_g = sum_{i=1}^{I_g} alpha_{g,i} beta_{g,i} = B_g alpha_g,
//   B_g in {-1,+1}^{n x I_g},  alpha_g >= 0,  I_g <= I_max                    (ALQ Eq. 2)
//
// I_g is the group's bit width. Storage here: every group has I_max "slots"; slot s holds a
// coordinate alpha[g, s] and a mask bit (1 = basis active); the signs of all slots of weight
// element i are packed into one integer code, bit s = 1 when beta_{g,s}[j] = +1 (the code of
// an inactive slot is 0). A pruned slot has mask 0 and alpha 0 (Sec. 3.2: pruning a
// coordinate removes its basis too).
//
// Groups (Sec. 5.1, docs/notes/alq.md §2.1) are laid out by two integers, the group size n and
// an interleave k: group g holds the elements
//   elem(g, j) = (g / k) * (n k) + j k + (g % k),   j = 0 .. n-1.
// k = 1 gives contiguous groups: channel-wise (one output channel of a conv, n = C_in k_h
// k_w), kernel-wise (n = k_h k_w) and sub-channel-wise for a linear layer (a row split into
// chunks of n). Pixel-wise grouping of a conv weight [O, C, kh, kw] (one group per output
// channel and kernel position, spanning the C input channels) is n = C, k = kh kw. The
// same two integers describe the export (QuantCodes::group_interleave, quant/codes.hpp).
//
// The forward uses w_hat, held as the parameter "w_hat" (a leaf the conv/linear consumes),
// so after backward w_hat.grad() is dL/dw_hat, the one input the ALQ optimizer needs
// (Sec. 3.1: "the required input of each AMSGrad step is dl/dw_hat"). No gradient is
// approximated: nothing flows to alpha or B through autograd; the optimizer maps
// dL/dw_hat into the alpha domain itself (Eq. 14).
#pragma once
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "../../autograd/grad_mode.hpp"
#include "../quantizer.hpp"

namespace lowbit {
namespace quant {
namespace alq {

// Ridge added to B^T H B before inversion (ALQ Sec. 3.3, after Eq. 23: lambda = 1e-6).
constexpr double kRidge = 1e-6;
// Sketching stops adding bases once ||r||^2 / ||w||^2 drops below this (docs/notes/alq.md §2.2).
constexpr double kSketchTolerance = 1e-6;

// ---- grouping -----------------------------------------------------------------------------

struct Layout {
  int64_t n = 0;           // group size
  int64_t interleave = 1;  // k in elem(g, j) above
  int64_t groups = 0;      // G
  int64_t elem(int64_t g, int64_t j) const { return (g / interleave) * (n * interleave) + j * interleave + g % interleave; }
};

// The grouping of a weight of shape [O, C, kh, kw] (conv) or [O, I] (linear) by name:
//   conv:   "channel" (n = C kh kw), "pixel" (n = C, interleave kh kw), "kernel" (n = kh kw)
//   linear: "subchannel" (n = the largest divisor of I that is <= fc_group_size), "channel" (n = I)
inline Layout make_layout(const Shape& shape, const std::string& grouping, int64_t fc_group_size) {
  const int64_t N = numel_of(shape);
  Layout l;
  if (shape.size() == 4) {
    const int64_t C = shape[1], kk = shape[2] * shape[3];
    if (grouping == "channel") l.n = C * kk;
    else if (grouping == "pixel") l.n = C, l.interleave = kk;
    else if (grouping == "kernel") l.n = kk;
    else lowbit::detail::fail("alq: conv grouping '", grouping, "' is unknown (expected channel, pixel or kernel)");
  } else if (shape.size() == 2) {
    const int64_t I = shape[1];
    if (grouping == "channel") {
      l.n = I;
    } else if (grouping == "subchannel") {
      LOWBIT_CHECK(fc_group_size >= 1, "alq: fc_group_size = ", fc_group_size, ", expected >= 1");
      l.n = std::min(I, fc_group_size);
      while (I % l.n != 0) --l.n;  // equal groups: the largest divisor of I not above the cap
    } else {
      lowbit::detail::fail("alq: linear grouping '", grouping, "' is unknown (expected subchannel or channel)");
    }
  } else {
    lowbit::detail::fail("alq: weight shape ", shape_str(shape), " is neither a conv [O,C,kh,kw] nor a linear [O,I] weight");
  }
  l.groups = N / l.n;
  return l;
}

// ---- one group: sketching, basis search, coordinate solve ------------------------------------

// A group's bases as dense sign columns (+1/-1) and their coordinates, double precision.
struct GroupBases {
  std::vector<std::vector<int8_t>> beta;  // I columns of n signs
  std::vector<double> alpha;              // I coordinates, >= 0
};

namespace detail {
// Least squares alpha = (B^T B)^-1 B^T w over the columns; false when B^T B is singular
// (the new column is a combination of the others).
inline bool refit_least_squares(const std::vector<std::vector<int8_t>>& beta, const std::vector<double>& w,
                                std::vector<double>& alpha) {
  const int I = static_cast<int>(beta.size());
  const size_t n = w.size();
  Eigen::MatrixXd A(I, I);
  Eigen::VectorXd b(I);
  for (int a = 0; a < I; ++a) {
    double s = 0;
    for (size_t j = 0; j < n; ++j) s += beta[a][j] * w[j];
    b(a) = s;
    for (int c = 0; c <= a; ++c) {
      double t = 0;
      for (size_t j = 0; j < n; ++j) t += beta[a][j] * beta[c][j];
      A(a, c) = A(c, a) = t;
    }
  }
  Eigen::FullPivLU<Eigen::MatrixXd> lu(A);
  if (lu.rank() < I) return false;
  Eigen::VectorXd x = lu.solve(b);
  alpha.assign(x.data(), x.data() + I);
  return true;
}
}  // namespace detail

// Structured sketching (ALQ Sec. 5.1, its Alg. 1 as the authors' code does it, docs/notes/alq.md
// §2.2): greedy residual signs, and after each new basis a least-squares refit of ALL
// coordinates so far (Guo et al.'s network sketching with refinement). Then negative
// coordinates are flipped together with their basis, zero ones dropped, and the bases
// sorted by ascending coordinate.
inline GroupBases sketch(const std::vector<double>& w, int max_bases) {
  LOWBIT_CHECK(max_bases >= 1, "alq::sketch: max_bases = ", max_bases, ", expected >= 1");
  const size_t n = w.size();
  double ww = 0;
  for (double v : w) ww += v * v;
  GroupBases gb;
  std::vector<double> r = w;
  for (int i = 0; i < max_bases; ++i) {
    double rr = 0;
    for (double v : r) rr += v * v;
    if (ww == 0 || rr / ww < kSketchTolerance) break;
    std::vector<int8_t> col(n);
    for (size_t j = 0; j < n; ++j) col[j] = r[j] >= 0 ? 1 : -1;  // sign(0) = +1
    gb.beta.push_back(std::move(col));
    std::vector<double> alpha;
    if (!detail::refit_least_squares(gb.beta, w, alpha)) {  // dependent basis: no new direction
      gb.beta.pop_back();
      break;
    }
    gb.alpha = alpha;
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t a = 0; a < gb.beta.size(); ++a) s += gb.alpha[a] * gb.beta[a][j];
      r[j] = w[j] - s;
    }
  }
  GroupBases out;
  std::vector<size_t> order;
  for (size_t a = 0; a < gb.alpha.size(); ++a) {
    if (gb.alpha[a] < 0) {  // alpha >= 0: flip the coordinate with its basis
      gb.alpha[a] = -gb.alpha[a];
      for (auto& s : gb.beta[a]) s = static_cast<int8_t>(-s);
    }
    if (gb.alpha[a] > 0) order.push_back(a);  // an empty basis is dropped
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return gb.alpha[a] < gb.alpha[b]; });
  for (size_t a : order) {
    out.alpha.push_back(gb.alpha[a]);
    out.beta.push_back(gb.beta[a]);
  }
  return out;
}

// The values b^T alpha of all 2^I sign patterns b (ALQ Eq. 20), pattern p having b_s = +1
// where bit s of p is set. Summed in float in slot order, as the forward does, so the value
// chosen here is exactly the reconstructed weight.
inline std::vector<float> pattern_values(const std::vector<float>& alpha) {
  const int I = static_cast<int>(alpha.size());
  std::vector<float> v(size_t(1) << I);
  for (size_t p = 0; p < v.size(); ++p) {
    float s = 0.f;
    for (int a = 0; a < I; ++a) s += alpha[static_cast<size_t>(a)] * ((p >> a & 1u) ? 1.f : -1.f);
    v[p] = s;
  }
  return v;
}

// The 2^I pattern values in ascending order (a stable sort: equal values keep the smaller
// pattern first) and the nearest one to a target: the first value >= t or the one before it,
// the smaller value on a tie. `below` is the number of values < t (std::lower_bound's
// position); the activation quantizer counts it in blocks of elements at once.
struct SortedPatterns {
  std::vector<uint32_t> order;  // order[i]: the pattern of the i-th smallest value
  std::vector<float> sorted;    // sorted[i] = pattern_values(alpha)[order[i]]
  explicit SortedPatterns(const std::vector<float>& alpha) {
    const std::vector<float> v = pattern_values(alpha);
    order.resize(v.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return v[a] < v[b]; });
    for (uint32_t p : order) sorted.push_back(v[p]);
  }
  size_t below(float t) const {
    return static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), t) - sorted.begin());
  }
  // The position in `sorted` of the value nearest to t, given below(t).
  size_t nearest(size_t hi, float t) const {
    if (hi == 0) return 0;
    if (hi == sorted.size()) return hi - 1;
    return std::abs(sorted[hi] - t) < std::abs(sorted[hi - 1] - t) ? hi : hi - 1;
  }
};

// The basis search of ALQ Eqs. 17-20: with alpha fixed and H diagonal, every row j of B_g is
// chosen independently as the sign pattern whose value b^T alpha is nearest to the target
// t_j = w_hat_j - g_j / H_jj (Eq. 19). Exhaustive over the 2^I patterns, done as a sort of
// the 2^I values plus a binary search per row (same minimum; among equal distances the
// smaller value wins). Returns the pattern index of each row.
inline std::vector<uint32_t> search_bases(const std::vector<float>& alpha, const std::vector<float>& target) {
  const SortedPatterns sp(alpha);
  std::vector<uint32_t> out(target.size());
  for (size_t j = 0; j < target.size(); ++j) out[j] = sp.order[sp.nearest(sp.below(target[j]), target[j])];
  return out;
}

// The closed-form coordinate update (ALQ Eqs. 22-23): with B fixed, the alpha minimising the
// quadratic model sum_j g_j (w_j - w0_j) + 1/2 H_jj (w_j - w0_j)^2 of w = B alpha is
//   alpha = (B^T H B + lambda I)^-1 B^T H t,   t = w0 - H^-1 g,   lambda = 1e-6
// i.e. a weighted least-squares fit of B alpha to t (Eq. 23 written with the target t).
// Rows are given by their pattern index (bit s = sign of basis s); the products are
// accumulated per pattern, O(n + 2^I I^2) instead of O(n I^2).
inline std::vector<double> solve_coordinates(const std::vector<uint32_t>& patterns, const std::vector<float>& h,
                                             const std::vector<float>& target, int I) {
  const size_t P = size_t(1) << I;
  std::vector<double> hs(P, 0.0), ht(P, 0.0);
  for (size_t j = 0; j < patterns.size(); ++j) {
    hs[patterns[j]] += h[j];
    ht[patterns[j]] += static_cast<double>(h[j]) * target[j];
  }
  Eigen::MatrixXd A = Eigen::MatrixXd::Identity(I, I) * kRidge;
  Eigen::VectorXd b = Eigen::VectorXd::Zero(I);
  for (size_t p = 0; p < P; ++p) {
    if (hs[p] == 0 && ht[p] == 0) continue;
    for (int a = 0; a < I; ++a) {
      const double sa = (p >> a & 1u) ? 1.0 : -1.0;
      b(a) += sa * ht[p];
      for (int c = 0; c < I; ++c) A(a, c) += sa * ((p >> c & 1u) ? 1.0 : -1.0) * hs[p];
    }
  }
  Eigen::VectorXd x = A.ldlt().solve(b);
  return std::vector<double>(x.data(), x.data() + I);
}

// ---- the weight quantizer ----------------------------------------------------------------

// ceil(log2(I_max + 1)): bits of one entry of the per-group bit-width table.
inline int64_t table_bits_per_group(int64_t max_bits) {
  int64_t b = 0;
  while ((int64_t(1) << b) < max_bits + 1) ++b;
  return b;
}

class AlqWeight : public WeightQuantizer {
 public:
  // init: the float weight to sketch; max_bits: I_max (slots per group).
  AlqWeight(const Tensorf& init, const Layout& layout, int max_bits)
      : WeightQuantizer(init.shape()), layout_(layout), slots_(max_bits) {
    LOWBIT_CHECK(max_bits >= 1 && max_bits <= 16, "AlqWeight: max_bits = ", max_bits, ", expected 1..16");
    LOWBIT_CHECK(layout.n >= 1 && layout.interleave >= 1 && layout.groups * layout.n == init.numel(),
                 "AlqWeight: grouping n = ", layout.n, ", interleave ", layout.interleave, ", ", layout.groups,
                 " groups does not tile the weight ", shape_str(init.shape()));
    const Shape gs{layout.groups, static_cast<int64_t>(max_bits)};
    w_hat = register_parameter("w_hat", Tensorf::zeros(init.shape()));
    alpha = register_buffer("alpha", Tensorf::zeros(gs));
    mask = register_buffer("mask", Tensorf::zeros(gs));
    signs = register_buffer("signs", Tensorf::zeros(init.shape()));  // integer codes held in float (< 2^16)
    w_fp = register_buffer("w_fp", Tensorf::zeros(init.shape()));   // float copy: the sketched weight, then Alg. 6's
    initialize(init);
  }

  // Structured sketching of `w` into every group (Sec. 5.1); w_hat is rebuilt and w_fp keeps
  // w (the authors' first basis step moves from it, quant/alq/optim.hpp).
  void initialize(const Tensorf& w) {
    LOWBIT_CHECK(w.shape() == shape_, "AlqWeight::initialize: weight ", shape_str(w.shape()), ", expected ",
                 shape_str(shape_));
    NoGradGuard no_grad;
    std::copy(w.data(), w.data() + w.numel(), w_fp.data());
    std::fill(alpha.data(), alpha.data() + alpha.numel(), 0.f);
    std::fill(mask.data(), mask.data() + mask.numel(), 0.f);
    std::vector<double> wg(static_cast<size_t>(layout_.n));
    for (int64_t g = 0; g < layout_.groups; ++g) {
      for (int64_t j = 0; j < layout_.n; ++j) wg[static_cast<size_t>(j)] = w.data()[layout_.elem(g, j)];
      const GroupBases gb = sketch(wg, slots_);
      for (int64_t j = 0; j < layout_.n; ++j) {
        uint32_t code = 0;
        for (size_t s = 0; s < gb.beta.size(); ++s)
          if (gb.beta[s][static_cast<size_t>(j)] > 0) code |= 1u << s;
        signs.data()[layout_.elem(g, j)] = static_cast<float>(code);
      }
      for (size_t s = 0; s < gb.alpha.size(); ++s) {
        alpha.data()[g * slots_ + static_cast<int64_t>(s)] = static_cast<float>(gb.alpha[s]);
        mask.data()[g * slots_ + static_cast<int64_t>(s)] = 1.f;
      }
    }
    rebuild();
  }

  // w_hat = B alpha, every element summed over the slots in order j = 0 .. I_max-1 in float:
  // the rule "binary_bases" of quant/codes.hpp, so codes().dequantize() equals it bit for bit.
  void rebuild() {
    NoGradGuard no_grad;
    float* w = w_hat.data();
    const float* a = alpha.data();
    const float* c = signs.data();
    for (int64_t g = 0; g < layout_.groups; ++g)
      for (int64_t j = 0; j < layout_.n; ++j) {
        const int64_t e = layout_.elem(g, j);
        const uint32_t code = static_cast<uint32_t>(c[e]);
        float v = 0.f;
        for (int s = 0; s < slots_; ++s) v += a[g * slots_ + s] * ((code >> s & 1u) ? 1.f : -1.f);
        w[e] = v;
      }
  }

  // Keeps alpha >= 0 (Sec. 3.3: "if there is a negative value in alpha_g, the corresponding
  // basis is set to its negative complement"): flips every negative coordinate with its basis.
  // Returns the flipped (group, slot) pairs as g * I_max + s (the optimizer negates their
  // first moments). Does not rebuild.
  std::vector<int64_t> flip_negative() {
    std::vector<int64_t> flipped;
    for (int64_t g = 0; g < layout_.groups; ++g)
      for (int s = 0; s < slots_; ++s) {
        float& a = alpha.data()[g * slots_ + s];
        if (!(a < 0.f)) continue;
        a = -a;
        for (int64_t j = 0; j < layout_.n; ++j) {
          float& c = signs.data()[layout_.elem(g, j)];
          c = static_cast<float>(static_cast<uint32_t>(c) ^ (1u << s));
        }
        flipped.push_back(g * slots_ + s);
      }
    return flipped;
  }

  // Removes slot s of group g (Sec. 3.2: the coordinate and its basis go together).
  void prune(int64_t g, int s) {
    LOWBIT_CHECK(g >= 0 && g < layout_.groups && s >= 0 && s < slots_, "AlqWeight::prune: group ", g, " slot ", s,
                 " is outside ", layout_.groups, " groups x ", slots_, " slots");
    alpha.data()[g * slots_ + s] = 0.f;
    mask.data()[g * slots_ + s] = 0.f;
    for (int64_t j = 0; j < layout_.n; ++j) {
      float& c = signs.data()[layout_.elem(g, j)];
      c = static_cast<float>(static_cast<uint32_t>(c) & ~(1u << s));
    }
  }

  // The active slots of group g, in slot order.
  std::vector<int> active(int64_t g) const {
    std::vector<int> out;
    for (int s = 0; s < slots_; ++s)
      if (mask.data()[g * slots_ + s] != 0.f) out.push_back(s);
    return out;
  }
  int64_t active_count() const {
    int64_t k = 0;
    for (int64_t i = 0; i < mask.numel(); ++i) k += mask.data()[i] != 0.f;
    return k;
  }
  // Average bits of this layer: sum_g I_g n / N = active coordinates / G (docs/notes/alq.md §2.9).
  double average_bits() const { return static_cast<double>(active_count()) / static_cast<double>(layout_.groups); }

  // Re-chooses the bases of group g for the targets t_j of its rows (Eqs. 17-20), then
  // solves its coordinates in closed form with weights h_j (Eqs. 22-23). Inactive slots stay
  // empty. Does not flip negatives or rebuild.
  void fit_group(int64_t g, const std::vector<float>& target, const std::vector<float>& h) {
    const std::vector<int> act = active(g);
    if (act.empty()) return;
    std::vector<float> a(act.size());
    for (size_t i = 0; i < act.size(); ++i) a[i] = alpha.data()[g * slots_ + act[i]];
    const std::vector<uint32_t> pat = search_bases(a, target);
    const std::vector<double> x = solve_coordinates(pat, h, target, static_cast<int>(act.size()));
    for (int64_t j = 0; j < layout_.n; ++j) {
      uint32_t code = 0;
      for (size_t i = 0; i < act.size(); ++i)
        if (pat[static_cast<size_t>(j)] >> i & 1u) code |= 1u << act[i];
      signs.data()[layout_.elem(g, j)] = static_cast<float>(code);
    }
    for (size_t i = 0; i < act.size(); ++i) alpha.data()[g * slots_ + act[i]] = static_cast<float>(x[i]);
  }

  Tensorf weight() override { return w_hat; }

  // Export: rule binary_bases, bits = I_max (every slot stored; a pruned slot has coordinate
  // 0 and sign bit 0), one group per ALQ group (group_size n, group_interleave k), scales =
  // the I_max coordinates of each group. The file therefore stores I_max bits per weight;
  // the paper's storage (only active bases, plus a per-group bit-width table) is what
  // alq::report() counts (docs/alq.md).
  QuantCodes codes() const override {
    QuantCodes c;
    c.shape = shape_;
    c.bits = slots_;
    c.rule = "binary_bases";
    c.group_size = layout_.n;
    c.group_interleave = layout_.interleave;
    c.scales.assign(alpha.data(), alpha.data() + alpha.numel());
    c.codes.resize(static_cast<size_t>(numel_of(shape_)));
    for (size_t i = 0; i < c.codes.size(); ++i) c.codes[i] = static_cast<uint32_t>(signs.data()[i]);
    return c;
  }
  int bits() const override { return slots_; }
  std::string type_name() const override { return "ALQ"; }

  // The paper's accounting (Sec. 3.1, 5.4.1; quant/alq/report.hpp): I = active bases per
  // group, averaged; bytes = 1-bit bases + float coordinates of the active bases + the
  // per-group bit-width table.
  double mean_bits() const override {
    return static_cast<double>(active_bases()) / static_cast<double>(layout_.groups);
  }
  int64_t storage_bytes() const override {
    const int64_t active = active_bases();
    return (layout_.n * active + 7) / 8 + 4 * active + (layout_.groups * table_bits_per_group(slots_) + 7) / 8;
  }
  // --init-from an FP32 run: structured sketching of the trained weight (Sec. 5.1).
  bool load_float_weight(const Tensorf& w) override {
    initialize(w);
    return true;
  }
  int64_t active_bases() const {
    int64_t a = 0;
    for (int64_t g = 0; g < layout_.groups; ++g) a += static_cast<int64_t>(active(g).size());
    return a;
  }

  const Layout& layout() const { return layout_; }
  int slots() const { return slots_; }

  Tensorf w_hat;   // parameter: the reconstruction the layer uses
  Tensorf alpha;   // [G, I_max] coordinates (0 where inactive)
  Tensorf mask;    // [G, I_max] 1 = active slot
  Tensorf signs;   // weight-shaped integer codes: bit s = sign of basis s
  Tensorf w_fp;    // weight-shaped float copy: the sketched FP32 weight until the STE phase (Alg. 6) sets it

 private:
  Layout layout_;
  int slots_;
};

}  // namespace alq
}  // namespace quant
}  // namespace lowbit
