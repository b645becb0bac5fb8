// Adam (Kingma & Ba 2015) with the AMSGrad option (Reddi et al. 2018), and AdamW
// (Loshchilov & Hutter 2019) — torch.optim.Adam / AdamW numerics, step for step:
//   Adam:   g = g + wd p                     (L2 folded into the gradient)
//   AdamW:  p = p (1 - lr wd)                (decoupled decay, before the update)
//   m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2,   vmax = max(vmax, v) (AMSGrad)
//   p = p - lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)
// eps is added *outside* the square root, as PyTorch does.
#pragma once
#include <algorithm>
#include <cmath>

#include "optimizer.hpp"

namespace lowbit {
namespace optim {

struct AdamOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool amsgrad = false;
  bool decoupled_weight_decay = false;  // true = AdamW
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions opt = {}) : Optimizer(std::move(groups)), opt_(opt) {
    LOWBIT_CHECK(opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1 && opt.eps >= 0,
                 "Adam: betas must be in [0, 1) and eps >= 0, got beta1 ", opt.beta1, ", beta2 ", opt.beta2,
                 ", eps ", opt.eps);
  }
  void step() override {
    NoGradGuard no_grad;
    for (auto& grp : groups_) {
      for (auto& [name, p] : grp.params) {
        Tensorf g = p.grad();
        if (!g.defined()) continue;
        // The step count lives in the state so that it is checkpointed with the moments.
        float& t = slot(name, "step", {1}).data()[0];
        t += 1.0f;
        const double bc1 = 1 - std::pow(opt_.beta1, static_cast<double>(t));
        const double bc2 = 1 - std::pow(opt_.beta2, static_cast<double>(t));
        const float lr = static_cast<float>(grp.lr), wd = static_cast<float>(grp.weight_decay);
        const float b1 = static_cast<float>(opt_.beta1), b2 = static_cast<float>(opt_.beta2);
        const float step_size = static_cast<float>(grp.lr / bc1);
        const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2)), eps = static_cast<float>(opt_.eps);
        float* w = p.data();
        const float* gd = g.data();
        float* m = slot(name, "exp_avg", p.shape()).data();
        float* v = slot(name, "exp_avg_sq", p.shape()).data();
        float* vmax = opt_.amsgrad ? slot(name, "max_exp_avg_sq", p.shape()).data() : nullptr;
        const int64_t n = p.numel();
        for (int64_t i = 0; i < n; ++i) {
          float gi = gd[i];
          if (opt_.decoupled_weight_decay) w[i] *= 1.0f - lr * wd;
          else gi += wd * w[i];
          m[i] = b1 * m[i] + (1.0f - b1) * gi;
          v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
          float second = v[i];
          if (vmax) second = vmax[i] = std::max(vmax[i], v[i]);
          w[i] -= step_size * m[i] / (std::sqrt(second) / sqrt_bc2 + eps);
        }
      }
    }
  }

 private:
  AdamOptions opt_;
};

// AdamW: Adam with decoupled weight decay.
inline AdamOptions adamw_options(double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, bool amsgrad = false) {
  return AdamOptions{beta1, beta2, eps, amsgrad, true};
}

}  // namespace optim
}  // namespace lowbit
