// SLB: Searching for Low-Bit weights (Yang et al., NeurIPS 2020, "Searching for Low-Bit
// Weights in Quantized Neural Networks"; ../../../docs/slb.md walks through every equation).
//
// Instead of a latent float weight and a straight-through estimator, every weight w owns a
// vector of m = 2^q logits A_{:, w}, one per value of the discrete set V, and training
// searches a *distribution* over V by exact gradient descent on A. No STE anywhere.
//
//   V     = {v_1 < ... < v_m}, uniform in [-1, 1]: v_i = -1 + 2 (i-1)/(m-1)   (Sec. 4; 1 bit = {-1, +1})
//   P_i   = softmax_i(A_i / tau)                                      (Eq. 5)
//   W_c   = sum_i P_i v_i          the training ("continuous state") weight  (Eq. 6)
//   W_q   = v_k, k = argmax_i P_i  the inference ("discrete state") weight   (Eq. 7)
//   W_gap = W_q - W_c                                                  (Eq. 9)
//
// Backward of Eqs. 5-6, written out (the softmax Jacobian dP_j/dA_i = P_j (delta_ij - P_i)/tau
// contracted with v):
//   dL/dA_i = dL/dW_c * sum_j v_j dP_j/dA_i = P_i (v_i - W_c) dL/dW_c / tau.
// W_q has no gradient (argmax is piecewise constant): it is only used without autograd
// (evaluation, the discrete pass of state batch-norm, export).
//
// Layout: A has shape [m, S...] for a weight of shape S (the paper's A in R^{m x M x N x K x K},
// Sec. 3.2), so each value's logits form one contiguous plane of numel(S) floats. The fused
// kernel walks the m planes over a block of weights at a time: max, exp, sum, expectation
// and normalisation of P in one sweep per plane, all unit-stride and vectorisable, blocks
// in parallel (OpenMP). The forward does not keep P: the backward recomputes it block by
// block from A (the same function, so bit for bit the same P) and sweeps it once more.
// Keeping P would cost m x numel floats for the whole step (17 MB for ResNet-20 at 4 bits,
// as much as A itself) to save one exp per logit (8 ms, 2% of a ResNet-20 step at 4 bits,
// docs/performance.md). The backward reads A as it is when backward() runs: update A
// (optimizer step) only after the backward, as every training loop does.
//
// Temperature: quantizer state, set by the training loop through SlbHooks
// (quant/slb/hooks.hpp) before every step (Algorithm 1, line 2). The softmax is computed as
// A * (1/tau) so one multiply per logit; argmax_i P_i = argmax_i A_i for every tau > 0,
// so W_q is independent of tau (ties go to the lower index).
//
// Initialisation (Sec. 4.1: "A is initialized by kaiming initialization"): every logit is
// drawn from N(0, 2 / fan_in), fan_in = numel(S) / S[0] as for the float weight (PyTorch's
// kaiming_normal_, mode fan_in). The authors' MindSpore port uses fan_out of the 5-d tensor
// (docs/notes/slb.md §3.2); the difference is a constant factor that the temperature absorbs.
// The layer hands the quantizer only its freshly drawn float weight, so the logits come
// from a Generator seeded with a hash of that weight: deterministic for a given model seed,
// different for every layer. For fine-tuning, init_from_weight() sets logits that favour
// the value nearest to a trained FP32 weight (see there).
//
// Codes (export): code = argmax index, levels = V in float, no scale (with he_scale, see the
// constructor: one scale, the He factor); dequantize() picks the
// same float v_k that W_q holds, so it equals the eval weight bit for bit.
//
// Rows in docs/gradients.md ("SLB"); tests in tests/test_slb.cpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../../autograd/grad_mode.hpp"
#include "../../autograd/node.hpp"
#include "../../kernels/parallel.hpp"
#include "../../kernels/vexp.hpp"
#include "../../ops/binary.hpp"
#include "../../ops/reduce.hpp"
#include "../../ops/unary.hpp"
#include "../quantizer.hpp"

namespace lowbit {
namespace quant {

// The value set V of q-bit SLB weights: m = 2^q values uniform in [-1, 1] (Sec. 4,
// docs/notes/slb.md §3.1: linspace(-1, 1, 2^q); 2 bits = {-1, -1/3, 1/3, 1}, no zero).
template <class T = float>
std::vector<T> slb_values(int bits) {
  LOWBIT_CHECK(bits >= 1 && bits <= 8, "slb_values: bits = ", bits, ", expected 1..8");
  const int64_t m = int64_t(1) << bits;
  std::vector<T> v(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i)
    v[static_cast<size_t>(i)] = static_cast<T>(-1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(m - 1));
  return v;
}

namespace detail {

constexpr int64_t kSlbBlock = 256;  // weights per block of the fused kernel

// t[k] = exp(t[k]): 8 lanes at a time for float (kernels/vexp.hpp, within 2 ulp, exp(0) = 1
// exactly); std::exp for double, the type of the gradchecks.
inline void slb_exp(float* t, int64_t count) { kernels::vexp(t, t, count); }
inline void slb_exp(double* t, int64_t count) {
  for (int64_t k = 0; k < count; ++k) t[k] = std::exp(t[k]);
}

// SLB Eqs. 5-6 for the weights [j0, j1) of A [m, n]: W_c of weight j0 + k into wc[k] and,
// when P is non-null, P_i of weight j0 + k into P[i * ldp + k].
template <class T>
void slb_forward_block(const T* A, int64_t m, int64_t n, const T* v, T inv_tau, T* P, int64_t ldp, T* wc,
                       int64_t j0, int64_t j1) {
  T mx[kSlbBlock], s[kSlbBlock], ev[kSlbBlock];
  const int64_t b = j1 - j0;
  const T* a0 = A + j0;
  for (int64_t k = 0; k < b; ++k) mx[k] = a0[k];
  for (int64_t i = 1; i < m; ++i) {
    const T* a = A + i * n + j0;
    for (int64_t k = 0; k < b; ++k) mx[k] = std::max(mx[k], a[k]);
  }
  for (int64_t k = 0; k < b; ++k) s[k] = ev[k] = T(0);
  // Eq. 5 numerators exp((A_i - max_j A_j) / tau) and, in the same sweep, their sum and the
  // Eq. 6 numerator sum_i e_i v_i. Subtracting the max of A *before* scaling makes every
  // exponent exactly <= 0 and the max's exactly 0 (so the sum is >= 1) at any tau. The form
  // exp(A_i / tau - max_j (A_j / tau)) gave NaN at tau = 1e-9 in the -O3 build (a compiler
  // may fuse the product and the difference into one FMA, so the max's exponent is the
  // rounding error of A_max / tau, which at that scale overflows exp).
  T e[kSlbBlock];
  for (int64_t i = 0; i < m; ++i) {
    const T* a = A + i * n + j0;
    const T vi = v[i];
    for (int64_t k = 0; k < b; ++k) e[k] = (a[k] - mx[k]) * inv_tau;
    slb_exp(e, b);
    T* p = P ? P + i * ldp : nullptr;
    if (p)
      for (int64_t k = 0; k < b; ++k) p[k] = e[k];
    for (int64_t k = 0; k < b; ++k) {
      s[k] += e[k];
      ev[k] += e[k] * vi;
    }
  }
  for (int64_t k = 0; k < b; ++k) {
    s[k] = T(1) / s[k];
    wc[k] = ev[k] * s[k];  // Eq. 6: sum_i P_i v_i
  }
  if (P)
    for (int64_t i = 0; i < m; ++i) {
      T* p = P + i * ldp;
      for (int64_t k = 0; k < b; ++k) p[k] *= s[k];
    }
}

// W_c (and P [m, n] when non-null) for all n weights.
template <class T>
void slb_forward(const T* A, int64_t m, int64_t n, const T* v, T inv_tau, T* P, T* wc) {
  const int64_t blocks = (n + kSlbBlock - 1) / kSlbBlock;
#pragma omp parallel for schedule(static) if (m * n > kParallelGrain)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kSlbBlock;
    slb_forward_block(A, m, n, v, inv_tau, P ? P + j0 : nullptr, n, wc + j0, j0, std::min(n, j0 + kSlbBlock));
  }
}

// dL/dA_i = P_i (v_i - W_c) dL/dW_c / tau (the backward of Eqs. 5-6), written into dA.
// P and W_c are recomputed from A per block of weights (see the file comment), into a
// buffer of m x kSlbBlock floats per thread.
template <class T>
void slb_backward(const T* A, const T* g, int64_t m, int64_t n, const T* v, T inv_tau, T* dA) {
  const int64_t blocks = (n + kSlbBlock - 1) / kSlbBlock;
#pragma omp parallel if (m * n > kParallelGrain)
  {
    std::vector<T> P(static_cast<size_t>(m * kSlbBlock));
    T wc[kSlbBlock];
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t j0 = blk * kSlbBlock, j1 = std::min(n, j0 + kSlbBlock), b = j1 - j0;
      slb_forward_block(A, m, n, v, inv_tau, P.data(), kSlbBlock, wc, j0, j1);
      for (int64_t i = 0; i < m; ++i) {
        const T vi = v[i];
        const T* p = P.data() + i * kSlbBlock;
        T* d = dA + i * n + j0;
        const T* gj = g + j0;
        for (int64_t k = 0; k < b; ++k) d[k] = p[k] * (vi - wc[k]) * gj[k] * inv_tau;
      }
    }
  }
}

// k = argmax_i A_i per weight (= argmax_i P_i for tau > 0; ties to the lower index).
template <class T>
void slb_argmax(const T* A, int64_t m, int64_t n, uint32_t* code) {
#pragma omp parallel for schedule(static) if (m * n > kParallelGrain)
  for (int64_t j = 0; j < n; ++j) {
    T best = A[j];
    uint32_t k = 0;
    for (int64_t i = 1; i < m; ++i)
      if (A[i * n + j] > best) best = A[i * n + j], k = static_cast<uint32_t>(i);
    code[j] = k;
  }
}

}  // namespace detail

// W_c = sum_i softmax_i(A / tau) v_i (SLB Eqs. 5-6), differentiable in A with the exact
// gradient dL/dA_i = P_i (v_i - W_c) dL/dW_c / tau. A: [m, S...] -> W_c: S.
template <class T>
Tensor<T> slb_expectation(const Tensor<T>& A, const std::vector<T>& values, double tau) {
  LOWBIT_CHECK(A.dim() >= 2, "slb_expectation: logits A must have shape [m, weight shape...], got ",
               shape_str(A.shape()));
  LOWBIT_CHECK(A.shape()[0] == static_cast<int64_t>(values.size()) && values.size() >= 2, "slb_expectation: A has ",
               A.shape()[0], " logits per weight (dimension 0) but the value set has ", values.size(), " values");
  LOWBIT_CHECK(tau > 0 && std::isfinite(tau), "slb_expectation: tau = ", tau, ", expected a finite value > 0");
  const int64_t m = A.shape()[0], n = A.numel() / m;
  const Shape ws(A.shape().begin() + 1, A.shape().end());
  const T inv_tau = static_cast<T>(1.0 / tau);
  Tensor<T> wc = Tensor<T>::empty(ws);
  detail::slb_forward(A.data(), m, n, values.data(), inv_tau, static_cast<T*>(nullptr), wc.data());
  if (autograd::needs_grad({&A}))
    autograd::record(wc, "slb_expectation", {&A}, [Ad = A.detach(), values, inv_tau, m, n](const Tensor<T>& g) {
      Tensor<T> dA = Tensor<T>::empty(Ad.shape());
      detail::slb_backward(Ad.data(), g.data(), m, n, values.data(), inv_tau, dA.data());
      return std::vector<Tensor<T>>{dA};
    });
  return wc;
}

// W_q = v_argmax (SLB Eq. 7), no gradient. A: [m, S...] -> S.
template <class T>
Tensor<T> slb_discrete(const Tensor<T>& A, const std::vector<T>& values) {
  LOWBIT_CHECK(A.dim() >= 2 && A.shape()[0] == static_cast<int64_t>(values.size()),
               "slb_discrete: logits of shape ", shape_str(A.shape()), " do not match a value set of ", values.size());
  const int64_t m = A.shape()[0], n = A.numel() / m;
  std::vector<uint32_t> k(static_cast<size_t>(n));
  detail::slb_argmax(A.data(), m, n, k.data());
  Tensor<T> w = Tensor<T>::empty(Shape(A.shape().begin() + 1, A.shape().end()));
  for (int64_t j = 0; j < n; ++j) w.data()[j] = values[k[static_cast<size_t>(j)]];
  return w;
}

// How sharp the searched distributions are (the per-epoch log; Sec. 3.3.2's "max(p) > 0.999").
struct SlbSharpness {
  int64_t weights = 0;
  double sum_max_p = 0;        // sum over weights of max_i P_i
  int64_t max_p_gt_0999 = 0;   // weights with max_i P_i > 0.999
  double gap_sq = 0;           // ||W_q - W_c||^2 (Eq. 9)
  double wc_sq = 0;            // ||W_c||^2
  void add(const SlbSharpness& o) {
    weights += o.weights, sum_max_p += o.sum_max_p, max_p_gt_0999 += o.max_p_gt_0999;
    gap_sq += o.gap_sq, wc_sq += o.wc_sq;
  }
};

// How A is initialised (see the file comment).
enum class SlbInit { Kaiming, Weight };

inline SlbInit parse_slb_init(const std::string& s) {
  if (s == "kaiming") return SlbInit::Kaiming;
  if (s == "weight") return SlbInit::Weight;
  lowbit::detail::fail("SLB option init: unknown value '", s, "' (expected kaiming or weight)");
}

// The scale of the weights (option values; docs/slb.md, "Without BN"):
//   Unit:   V in [-1, 1], the paper's; a batch-norm after every conv absorbs the scale.
//   He:     V times the layer's He factor h = sqrt(2 / fan_in).
//   HeRms:  V in [-1, 1], and the layer's weight -- W_c in training, W_q otherwise -- is
//           rescaled to a root mean square of h, the spread He's initialization gives:
//           W = W_c * h / sqrt(mean(W_c^2)). Without BN the scale
//           of W_c matters: for small T it is about T times the logits' spread (W_c = tanh(T dA / 2)
//           at 1 bit), so an 18-layer stack of them passes no signal until T is large; the
//           rescaling does for a BN-free network what the batch-norm does in the paper's.
enum class SlbValues { Unit, He, HeRms };

inline SlbValues parse_slb_values(const std::string& s) {
  if (s == "unit") return SlbValues::Unit;
  if (s == "he") return SlbValues::He;
  if (s == "he_rms") return SlbValues::HeRms;
  lowbit::detail::fail("SLB option values: unknown value '", s, "' (expected unit, he or he_rms)");
}

// The SLB weight quantizer. latent = A, shape [m, S...].
//   training, not discrete: weight() = W_c (Eq. 6), differentiable in A;
//   evaluation or discrete mode: weight() = W_q (Eq. 7), a constant.
// Discrete mode in training is what state batch-norm's extra no-grad pass uses (Eq. 14).
class SlbWeight : public WeightQuantizer {
 public:
  // init: the layer's freshly drawn float weight. SlbInit::Kaiming draws A (seeded from
  // init, see the file comment); SlbInit::Weight calls init_from_weight(init).
  // values (SlbValues above): He multiplies V by the layer's He factor sqrt(2 / fan_in), so
  // that W_q has the spread of an initialized float weight; HeRms rescales W_c and W_q to
  // that root mean square. The paper's V in [-1, 1] relies on a batch-norm after every conv; a
  // network without BN (VDSR, SLB Sec. 4.3) grows its activations by about sqrt(fan_in) per
  // layer with +-1 weights and diverges (docs/slb.md, "Without BN").
  SlbWeight(const Tensorf& init, int bits, SlbInit how = SlbInit::Kaiming, SlbValues values = SlbValues::Unit)
      : WeightQuantizer(init.shape()), bits_(bits) {
    LOWBIT_CHECK(bits >= 1 && bits <= 8, "SlbWeight: bits = ", bits, ", expected 1..8");
    LOWBIT_CHECK(init.dim() >= 1 && init.numel() > 0, "SlbWeight: weight of shape ", shape_str(init.shape()),
                 " is empty");
    values_ = slb_values<float>(bits);
    const double he = std::sqrt(2.0 / static_cast<double>(init.numel() / init.shape()[0]));
    if (values == SlbValues::He) {  // one float multiply per level: the export's scale * level, bit for bit
      value_scale_ = static_cast<float>(he);
      for (float& v : values_) v = value_scale_ * v;
    }
    if (values == SlbValues::HeRms) rms_target_ = he;
    const int64_t m = static_cast<int64_t>(values_.size());
    Shape as{m};
    as.insert(as.end(), shape_.begin(), shape_.end());
    Tensorf A;
    if (how == SlbInit::Kaiming) {
      uint64_t h = 1469598103934665603ULL;  // FNV-1a over the bits of the init weight
      for (int64_t i = 0; i < init.numel(); ++i) {
        uint32_t u;
        std::memcpy(&u, init.data() + i, sizeof u);
        h = (h ^ u) * 1099511628211ULL;
      }
      Generator g(h);
      const double fan_in = static_cast<double>(init.numel() / init.shape()[0]);
      A = Tensorf::randn(as, g, 0.0, std::sqrt(2.0 / fan_in));
    } else {
      A = Tensorf::zeros(as);
    }
    latent = register_parameter("latent", A);
    if (how == SlbInit::Weight) init_from_weight(init);
  }

  // Logits that favour the value nearest to a trained float weight w (fine-tuning):
  //   w' = w / max|w|  (in [-1, 1]),   A_i = -((w' - v_i) / s)^2,   s = 2 / (m - 1),
  // so argmax_i A_i is the nearest v_i (W_q = w' rounded onto V). A weight sitting exactly on
  // v_k has logit 0 there and -1 at each neighbour: at tau = 1, P_k is e times a neighbour's;
  // a smaller tau sharpens it.
  void init_from_weight(const Tensorf& w) {
    LOWBIT_CHECK(w.shape() == shape_, "SlbWeight::init_from_weight: weight has shape ", shape_str(w.shape()),
                 ", the quantizer was built for ", shape_str(shape_));
    double mx = 0;
    for (int64_t j = 0; j < w.numel(); ++j) mx = std::max(mx, std::abs(static_cast<double>(w.data()[j])));
    const double scale = mx > 0 ? 1.0 / mx : 0.0;
    const int64_t m = static_cast<int64_t>(values_.size()), n = w.numel();
    const double s = 2.0 / static_cast<double>(m - 1);
    const std::vector<float> unit = slb_values<float>(bits_);  // V before any he_scale
    NoGradGuard no_grad;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const double d = (static_cast<double>(w.data()[j]) * scale - unit[static_cast<size_t>(i)]) / s;
        latent.data()[i * n + j] = static_cast<float>(-d * d);
      }
  }

  Tensorf weight() override {
    if (is_training() && !discrete_) return continuous_weight();
    return discrete_weight();
  }
  // W_c (Eq. 6) at the current temperature, recorded for autograd. HeRms: times
  // h / sqrt(mean(W_c^2)), through the autograd ops square, mean, sqrt, rdiv and mul
  // (docs/gradients.md).
  Tensorf continuous_weight() const {
    Tensorf wc = slb_expectation(latent, values_, tau_);
    if (rms_target_ == 0) return wc;
    return mul(wc, rdiv(static_cast<float>(rms_target_), sqrt(mean(square(wc)))));
  }
  // W_q (Eq. 7), no gradient. HeRms: times discrete_scale(), the codes' one scale.
  Tensorf discrete_weight() const {
    Tensorf wq = slb_discrete(latent, values_);
    if (rms_target_ == 0) return wq;
    const float s = rms_scale(wq);
    for (int64_t j = 0; j < wq.numel(); ++j) wq.data()[j] = wq.data()[j] * s;  // as QuantCodes::dequantize
    return wq;
  }
  // HeRms: h / sqrt(mean(W_q^2)) of the unit-V codes (h itself at 1 bit, where every |v| is
  // 1); else 1.
  float discrete_scale() const { return rms_target_ == 0 ? 1.0f : rms_scale(slb_discrete(latent, values_)); }
  // W_gap = W_q - W_c (Eq. 9) at the current temperature, no gradient.
  Tensorf gap() const {
    NoGradGuard no_grad;
    Tensorf wq = discrete_weight(), wc = continuous_weight();
    for (int64_t j = 0; j < wq.numel(); ++j) wq.data()[j] -= wc.data()[j];
    return wq;
  }

  QuantCodes codes() const override {
    QuantCodes c;
    c.shape = shape_;
    c.bits = bits_;
    c.group_size = numel_of(shape_);
    c.levels = slb_values<float>(bits_);  // V; He: the He factor is the tensor's one scale; HeRms: discrete_scale()
    if (value_scale_ != 1.0f) c.scales = {value_scale_};
    if (rms_target_ != 0) c.scales = {discrete_scale()};
    c.codes.resize(static_cast<size_t>(c.group_size));
    detail::slb_argmax(latent.data(), static_cast<int64_t>(values_.size()), c.group_size, c.codes.data());
    return c;
  }
  int bits() const override { return bits_; }
  std::string type_name() const override { return "SLB"; }

  // Temperature tau of Eq. 5 (the schedules of quant/slb/schedule.hpp give T = 1/tau).
  void set_tau(double tau) {
    LOWBIT_CHECK(tau > 0 && std::isfinite(tau), "SlbWeight::set_tau: tau = ", tau, ", expected a finite value > 0");
    tau_ = tau;
  }
  double tau() const { return tau_; }
  // Discrete mode: weight() gives W_q even in training (state batch-norm's discrete pass).
  void set_discrete(bool on) { discrete_ = on; }
  bool codes_are_weight() const override { return !is_training() || discrete_; }  // W_q, not W_c
  bool discrete() const { return discrete_; }
  const std::vector<float>& values() const { return values_; }
  float value_scale() const { return value_scale_; }  // 1, or the He factor (SlbValues::He)

  // max_i P_i, the fraction above 0.999 and the gap norms at the current temperature.
  SlbSharpness sharpness() const {
    const int64_t m = static_cast<int64_t>(values_.size()), n = numel_of(shape_);
    std::vector<float> P(static_cast<size_t>(m * n)), wc(static_cast<size_t>(n));
    detail::slb_forward(latent.data(), m, n, values_.data(), static_cast<float>(1.0 / tau_), P.data(), wc.data());
    std::vector<uint32_t> k(static_cast<size_t>(n));
    detail::slb_argmax(latent.data(), m, n, k.data());
    SlbSharpness s;
    s.weights = n;
    for (int64_t j = 0; j < n; ++j) {
      const double pmax = P[static_cast<size_t>(k[static_cast<size_t>(j)] * n + j)];
      s.sum_max_p += pmax;
      s.max_p_gt_0999 += pmax > 0.999;
      const double g = static_cast<double>(values_[k[static_cast<size_t>(j)]]) - wc[static_cast<size_t>(j)];
      s.gap_sq += g * g;
      s.wc_sq += static_cast<double>(wc[static_cast<size_t>(j)]) * wc[static_cast<size_t>(j)];
    }
    return s;
  }

  Tensorf latent;  // A, [m, S...]

 private:
  // h / rms(wq) for the unit-V discrete weight wq (HeRms).
  float rms_scale(const Tensorf& wq) const {
    double sum_sq = 0;
    for (int64_t j = 0; j < wq.numel(); ++j) sum_sq += static_cast<double>(wq.data()[j]) * wq.data()[j];
    return static_cast<float>(rms_target_ / std::sqrt(sum_sq / static_cast<double>(wq.numel())));
  }

  int bits_;
  std::vector<float> values_;  // V, times value_scale_
  float value_scale_ = 1.0f;
  double rms_target_ = 0;  // HeRms: the He factor h; 0 otherwise
  double tau_ = 1.0;
  bool discrete_ = false;
};

}  // namespace quant
}  // namespace lowbit
