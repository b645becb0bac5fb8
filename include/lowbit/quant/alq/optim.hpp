// The ALQ optimizer framework (Sec. 3.1, Eqs. 8-10) and its four modes.
//
// AMSGrad as a quadratic model. One AMSGrad step x <- x - a m_hat / sqrt(v_hat) (Eq. 8) is
// the minimiser of
//   f(x) = g^T (x - x^s) + 1/2 (x - x^s)^T H (x - x^s),   g = a m_hat,  H = diag(sqrt(v_hat))
// (Eqs. 9-10), m_hat = m / (1 - b1^t) the bias-corrected first moment and v_hat the running
// maximum of the second moment, bias-corrected. ALQ keeps the model and changes only the
// feasible set: binary bases, fixed coordinates, fewer coordinates. As the authors' code
// does (docs/notes/alq.md §2.3), eps enters the Hessian: H = (sqrt(v_max) + eps) / sqrt(1 - b2^t),
// so g / H is exactly one AMSGrad step.
//
// Two sets of moments per quantized weight. The w-domain moments (m, v, v_max of dL/dw_hat,
// the layer's forward weight) are updated at every step. The alpha-domain moments (one entry
// per slot) follow one of two rules (OptimOptions::alpha_moments, config alq.alpha_moments;
// the paper is silent, docs/alq.md "Moments"):
//   derived (default, the authors' code, docs/notes/alq.md §2.5): coordinate and pruning steps
//           update them from g_alpha = B^T dL/dw_hat (Eq. 14); after every basis and STE step,
//           which change B, they are re-derived from the w-domain moments for the new bases:
//           m_alpha = B^T m_w (the exact moving average of B^T g for the current B, since m is
//           linear in g), v_alpha and v_max,alpha = the sum of v_w, v_max,w over the group (an
//           approximation: the cross terms of (B^T g)^2 are dropped; B's entries square to 1).
//   tracked: updated from g_alpha at every step in every mode. After a basis step they mix
//           gradients taken with bases that no longer exist. A coordinate flipped with its
//           basis has its first moment negated.
//
// Modes (quant/alq/pipeline.hpp chooses one per epoch):
//   Basis       Step 2a (Eqs. 16-20, "speedup" Eqs. 22-23): target t = w_s - g_w / H_w, with
//               w_s = w_hat (Eq. 19); per group, each row takes the sign pattern nearest to t
//               (exhaustive over 2^{I_g}), then alpha = (B^T H B + lambda I)^-1 B^T H t. With
//               first_basis_target = pretrained the very first step of a run uses w_s = the FP32
//               weight the bases were sketched from (AlqWeight::w_fp), as the authors' code does
//               (its w_FP still holds the pretrained weight then, docs/notes/alq.md §2.5).
//   Coordinate  Step 2b (Eq. 21): alpha <- alpha - g_alpha / H_alpha on the active slots, with
//               L2 weight decay wd * alpha added to g_alpha before the moments.
//   Prune       Step 1 (Eqs. 11-15, quant/alq/prune.hpp): moments updated, no step; the
//               smallest increments f = -g_alpha alpha + 1/2 H_alpha alpha^2 are removed.
//   Ste         "STE with loss-aware" (Sec. 5.2, the authors' Alg. 6, docs/notes/alq.md §2.8): a
//               float copy w_fp (set to w_hat when the mode starts) takes the AMSGrad step
//               w_fp <- w_fp - g_w / H_w; the bases and coordinates are re-fitted to w_fp as in
//               Basis mode (Hessian-weighted), and the network uses the fit. The gradient is
//               taken at w_hat and applied to w_fp: the one place ALQ uses an STE.
// In every mode a negative coordinate is flipped with its basis (alpha >= 0, Sec. 3.3).
//
// Every other parameter (BN, biases) is stepped by plain Adam with the same learning rate
// and no weight decay (docs/notes/alq.md §2.3/2.7). The learning rate is the pipeline's
// (AlqControl::lr), not the training loop's: set_lr() calls are ignored.
#pragma once
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../../autograd/grad_mode.hpp"
#include "../../kernels/parallel.hpp"
#include "../../optim/adam.hpp"
#include "basis.hpp"
#include "prune.hpp"

namespace lowbit {
namespace quant {
namespace alq {

enum class Phase { Basis, Coordinate, Prune, Ste };
inline const char* phase_name(Phase p) {
  return p == Phase::Basis ? "basis" : p == Phase::Coordinate ? "coordinate" : p == Phase::Prune ? "prune" : "ste";
}

// What the pipeline (quant/alq/pipeline.hpp) tells the optimizer before each step, and what the
// optimizer reports back. Shared between the hooks and the optimizer.
struct Control {
  Phase phase = Phase::Basis;
  double lr = 1e-3;
  bool ste_start = false;        // this step starts Ste mode: w_fp <- w_hat first
  // pruning
  std::string prune_rule = "paper";  // paper | authors
  double target_bits = 0.66;     // I_min (paper rule)
  int64_t prune_iter = 0;        // t, 0-based over all pruning iterations of the run
  int64_t prune_iters = 1;       // T
  double bits0 = -1;             // B_0: total bits at the first pruning iteration (-1 = not yet)
  double top_k = 0.002, mp = 1;  // authors' rule
  uint64_t seed = 0;
  // reported
  int64_t pruned_last_step = 0, pruned_total = 0;
};

struct OptimOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;  // L2 on alpha in Coordinate mode (Sec. 3.3; the authors' scripts use 0)
  bool derived_alpha_moments = true;       // alpha moments re-derived after basis/STE steps (file comment)
  bool first_basis_from_pretrained = false;  // the first basis step moves from w_fp, not w_hat
};

using NamedAlqWeight = std::pair<std::string, std::shared_ptr<AlqWeight>>;

class AlqOptimizer : public optim::Adam {
 public:
  // others: every parameter that is not an ALQ w_hat (stepped by Adam); layers: the ALQ
  // weights by module name ("features.0.wq").
  AlqOptimizer(std::vector<optim::ParamGroup> others, std::vector<NamedAlqWeight> layers, OptimOptions opt,
               std::shared_ptr<Control> control)
      : Adam(std::move(others), optim::AdamOptions{opt.beta1, opt.beta2, opt.eps, false, false}),
        layers_(std::move(layers)),
        opt_(opt),
        ctl_(std::move(control)) {
    LOWBIT_CHECK(ctl_ != nullptr, "AlqOptimizer: control is null");
    LOWBIT_CHECK(opt.weight_decay >= 0, "AlqOptimizer: weight_decay = ", opt.weight_decay, ", expected >= 0");
  }

  void step() override {
    for (auto& g : groups_) g.lr = ctl_->lr, g.weight_decay = 0.0;
    Adam::step();
    NoGradGuard no_grad;
    ctl_->pruned_last_step = 0;
    std::vector<Moments> mom(layers_.size());
    for (size_t l = 0; l < layers_.size(); ++l) mom[l] = update_moments(l);
    if (ctl_->phase == Phase::Prune) {
      prune_step(mom);
    } else {
      for (size_t l = 0; l < layers_.size(); ++l) {
        if (!mom[l].valid) continue;
        update_layer(l, mom[l]);
        if (rederives()) derive_alpha_moments(l);
      }
    }
    if (ctl_->phase == Phase::Ste) ctl_->ste_start = false;
    // The w_hat leaves are not in the parameter groups (zero_grad() does not see them): their
    // gradient is consumed here, so the next backward starts from zero.
    for (auto& l : layers_) l.second->w_hat.zero_grad(true);
  }

  const std::vector<NamedAlqWeight>& layers() const { return layers_; }

 private:
  // Pseudo-gradient g = lr m_hat and pseudo-Hessian H of both domains for one step.
  struct Moments {
    bool valid = false;
    std::vector<float> gw, hw;  // per weight element
    std::vector<float> ga, ha;  // per slot [G, I_max]; empty when the step re-derives them
    int64_t t = 0;              // this step's count (1 = the first step of the run)
  };

  // Basis and STE steps change B; under the derived rule the alpha moments follow from the
  // w-domain ones afterwards instead of from g_alpha.
  bool rederives() const {
    return opt_.derived_alpha_moments && (ctl_->phase == Phase::Basis || ctl_->phase == Phase::Ste);
  }

  Moments update_moments(size_t l) {
    Moments out;
    AlqWeight& q = *layers_[l].second;
    const Tensorf grad = q.w_hat.grad();
    if (!grad.defined()) return out;
    out.valid = true;
    const std::string& name = layers_[l].first;
    float& t = slot(name, "step", {1}).data()[0];
    t += 1.0f;
    out.t = static_cast<int64_t>(t);
    const double bc1 = 1 - std::pow(opt_.beta1, static_cast<double>(t));
    const double bc2 = 1 - std::pow(opt_.beta2, static_cast<double>(t));
    const float b1 = static_cast<float>(opt_.beta1), b2 = static_cast<float>(opt_.beta2);
    const float gscale = static_cast<float>(ctl_->lr / bc1), hscale = static_cast<float>(1 / std::sqrt(bc2));
    const float eps = static_cast<float>(opt_.eps);
    auto amsgrad = [&](const float* g, float* m, float* v, float* vmax, int64_t n, std::vector<float>& pg,
                       std::vector<float>& ph) {
      pg.resize(static_cast<size_t>(n));
      ph.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        vmax[i] = std::max(vmax[i], v[i]);
        pg[static_cast<size_t>(i)] = gscale * m[i];                       // g = lr m_hat (Eq. 10)
        ph[static_cast<size_t>(i)] = (std::sqrt(vmax[i]) + eps) * hscale;  // H = sqrt(v_hat)
      }
    };
    const Shape& ws = q.weight_shape();
    const Shape as{q.layout().groups, static_cast<int64_t>(q.slots())};
    amsgrad(grad.data(), slot(name, "w_exp_avg", ws).data(), slot(name, "w_exp_avg_sq", ws).data(),
            slot(name, "w_max_exp_avg_sq", ws).data(), grad.numel(), out.gw, out.hw);
    if (rederives()) return out;  // derive_alpha_moments() after the step
    // g_alpha = B^T dL/dw_hat (Eq. 14), 0 on inactive slots; L2 on alpha in Coordinate mode.
    const Layout& L = q.layout();
    const int I = q.slots();
    std::vector<float> galpha(static_cast<size_t>(L.groups * I), 0.f);
    const float wd = ctl_->phase == Phase::Coordinate ? static_cast<float>(opt_.weight_decay) : 0.f;
#pragma omp parallel for schedule(static) if (L.groups * L.n > kParallelGrain)
    for (int64_t g = 0; g < L.groups; ++g) {
      std::vector<double> acc(static_cast<size_t>(I), 0.0);
      for (int64_t j = 0; j < L.n; ++j) {
        const int64_t e = L.elem(g, j);
        const uint32_t code = static_cast<uint32_t>(q.signs.data()[e]);
        const double gv = grad.data()[e];
        for (int s = 0; s < I; ++s) acc[static_cast<size_t>(s)] += (code >> s & 1u) ? gv : -gv;
      }
      for (int s = 0; s < I; ++s) {
        if (q.mask.data()[g * I + s] == 0.f) continue;
        galpha[static_cast<size_t>(g * I + s)] =
            static_cast<float>(acc[static_cast<size_t>(s)]) + wd * q.alpha.data()[g * I + s];
      }
    }
    amsgrad(galpha.data(), slot(name, "a_exp_avg", as).data(), slot(name, "a_exp_avg_sq", as).data(),
            slot(name, "a_max_exp_avg_sq", as).data(), L.groups * I, out.ga, out.ha);
    return out;
  }

  // The authors' rule after a basis or STE step (docs/notes/alq.md §2.5): m_alpha = B^T m_w,
  // v_alpha = sum_j v_w,j and v_max,alpha = sum_j v_max,w,j over the group; 0 on inactive slots.
  void derive_alpha_moments(size_t l) {
    AlqWeight& q = *layers_[l].second;
    const std::string& name = layers_[l].first;
    const Layout& L = q.layout();
    const int I = q.slots();
    const Shape ws = q.weight_shape(), as{L.groups, static_cast<int64_t>(I)};
    const float* mw = slot(name, "w_exp_avg", ws).data();
    const float* vw = slot(name, "w_exp_avg_sq", ws).data();
    const float* xw = slot(name, "w_max_exp_avg_sq", ws).data();
    float* ma = slot(name, "a_exp_avg", as).data();
    float* va = slot(name, "a_exp_avg_sq", as).data();
    float* xa = slot(name, "a_max_exp_avg_sq", as).data();
#pragma omp parallel for schedule(static) if (L.groups * L.n > kParallelGrain)
    for (int64_t g = 0; g < L.groups; ++g) {
      std::vector<double> m(static_cast<size_t>(I), 0.0);
      double v = 0, x = 0;
      for (int64_t j = 0; j < L.n; ++j) {
        const int64_t e = L.elem(g, j);
        const uint32_t code = static_cast<uint32_t>(q.signs.data()[e]);
        for (int s = 0; s < I; ++s) m[static_cast<size_t>(s)] += (code >> s & 1u) ? mw[e] : -mw[e];
        v += vw[e];
        x += xw[e];
      }
      for (int s = 0; s < I; ++s) {
        const bool on = q.mask.data()[g * I + s] != 0.f;
        ma[g * I + s] = on ? static_cast<float>(m[static_cast<size_t>(s)]) : 0.f;
        va[g * I + s] = on ? static_cast<float>(v) : 0.f;
        xa[g * I + s] = on ? static_cast<float>(x) : 0.f;
      }
    }
  }

  // A flipped coordinate's basis changed sign, so does its gradient history.
  void negate_first_moment(size_t l, const std::vector<int64_t>& flipped) {
    if (flipped.empty()) return;
    AlqWeight& q = *layers_[l].second;
    float* m = slot(layers_[l].first, "a_exp_avg", {q.layout().groups, static_cast<int64_t>(q.slots())}).data();
    for (int64_t k : flipped) m[k] = -m[k];
  }

  // Re-fits every group of layer l to per-element targets with Hessian weights (Basis, Ste).
  static void fit_all(AlqWeight& q, const std::vector<float>& target_flat, const std::vector<float>& h_flat) {
    const Layout& L = q.layout();
#pragma omp parallel for schedule(static) if (L.groups * L.n > kParallelGrain)
    for (int64_t g = 0; g < L.groups; ++g) {
      std::vector<float> t(static_cast<size_t>(L.n)), h(static_cast<size_t>(L.n));
      for (int64_t j = 0; j < L.n; ++j) {
        const int64_t e = L.elem(g, j);
        t[static_cast<size_t>(j)] = target_flat[static_cast<size_t>(e)];
        h[static_cast<size_t>(j)] = h_flat[static_cast<size_t>(e)];
      }
      q.fit_group(g, t, h);
    }
  }

  void update_layer(size_t l, const Moments& mo) {
    AlqWeight& q = *layers_[l].second;
    const int64_t N = q.w_hat.numel();
    std::vector<float> target(static_cast<size_t>(N));
    switch (ctl_->phase) {
      case Phase::Basis: {
        // Eq. 19's target: one AMSGrad step from w_hat (or, at the run's first step under
        // first_basis_target = pretrained, from the FP32 weight that was sketched).
        const float* from = opt_.first_basis_from_pretrained && mo.t == 1 ? q.w_fp.data() : q.w_hat.data();
        for (int64_t i = 0; i < N; ++i)
          target[static_cast<size_t>(i)] = from[i] - mo.gw[static_cast<size_t>(i)] / mo.hw[static_cast<size_t>(i)];
        fit_all(q, target, mo.hw);
        break;
      }
      case Phase::Coordinate: {
        // Eq. 21 on the active slots.
        for (int64_t k = 0; k < q.alpha.numel(); ++k)
          if (q.mask.data()[k] != 0.f) q.alpha.data()[k] -= mo.ga[static_cast<size_t>(k)] / mo.ha[static_cast<size_t>(k)];
        break;
      }
      case Phase::Ste: {
        if (ctl_->ste_start) std::copy(q.w_hat.data(), q.w_hat.data() + N, q.w_fp.data());
        for (int64_t i = 0; i < N; ++i)
          target[static_cast<size_t>(i)] = q.w_fp.data()[i] - mo.gw[static_cast<size_t>(i)] / mo.hw[static_cast<size_t>(i)];
        std::copy(target.begin(), target.end(), q.w_fp.data());
        fit_all(q, target, mo.hw);
        break;
      }
      case Phase::Prune:
        break;
    }
    negate_first_moment(l, q.flip_negative());
    q.rebuild();
  }

  void prune_step(const std::vector<Moments>& mom) {
    std::vector<std::vector<PruneCandidate>> per_layer(layers_.size());
    int64_t total_bits = 0;
    double total_weights = 0;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const AlqWeight& q = *layers_[l].second;
      const int I = q.slots();
      total_bits += q.active_count() * q.layout().n;
      total_weights += static_cast<double>(q.w_hat.numel());
      if (!mom[l].valid) continue;
      for (int64_t g = 0; g < q.layout().groups; ++g)
        for (int s : q.active(g)) {
          const size_t k = static_cast<size_t>(g * I + s);
          per_layer[l].push_back({prune_increment(mom[l].ga[k], mom[l].ha[k], q.alpha.data()[k]), static_cast<int>(l), g,
                                  s, q.layout().n});
        }
    }
    std::vector<PruneCandidate> removed;
    if (ctl_->prune_rule == "authors") {
      Generator rng(ctl_->seed ^ (0xA1C0ULL + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(ctl_->prune_iter + 1)));
      removed = select_authors(std::move(per_layer), ctl_->top_k, ctl_->mp, rng);
    } else {
      if (ctl_->bits0 < 0) ctl_->bits0 = static_cast<double>(total_bits);
      const double budget =
          paper_budget(ctl_->bits0, ctl_->target_bits * total_weights, ctl_->prune_iter, ctl_->prune_iters);
      std::vector<PruneCandidate> all;
      for (auto& v : per_layer) all.insert(all.end(), v.begin(), v.end());
      removed = select_paper(std::move(all), total_bits, budget);
    }
    std::vector<bool> touched(layers_.size(), false);
    for (auto& c : removed) {
      AlqWeight& q = *layers_[static_cast<size_t>(c.layer)].second;
      q.prune(c.group, c.slot);
      const Shape as{q.layout().groups, static_cast<int64_t>(q.slots())};
      const std::string& name = layers_[static_cast<size_t>(c.layer)].first;
      for (const char* what : {"a_exp_avg", "a_exp_avg_sq", "a_max_exp_avg_sq"})
        slot(name, what, as).data()[c.group * q.slots() + c.slot] = 0.f;
      touched[static_cast<size_t>(c.layer)] = true;
    }
    for (size_t l = 0; l < layers_.size(); ++l)
      if (touched[l]) layers_[l].second->rebuild();
    ctl_->pruned_last_step = static_cast<int64_t>(removed.size());
    ctl_->pruned_total += static_cast<int64_t>(removed.size());
  }

  std::vector<NamedAlqWeight> layers_;
  OptimOptions opt_;
  std::shared_ptr<Control> ctl_;
};

}  // namespace alq
}  // namespace quant
}  // namespace lowbit
