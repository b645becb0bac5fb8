// SGD with momentum, dampening, Nesterov and L2 weight decay — PyTorch's torch.optim.SGD
// numerics, step for step:
//   d = g + wd p
//   momentum:  b = d on the first step, else b = mu b + (1 - dampening) d
//              d = d + mu b (nesterov)  or  d = b
//   p = p - lr d
#pragma once
#include "optimizer.hpp"

namespace lowbit {
namespace optim {

struct SgdOptions {
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SgdOptions opt = {}) : Optimizer(std::move(groups)), opt_(opt) {
    LOWBIT_CHECK(!opt.nesterov || (opt.momentum > 0 && opt.dampening == 0),
                 "SGD: nesterov needs momentum > 0 and dampening = 0 (got momentum ", opt.momentum,
                 ", dampening ", opt.dampening, ")");
  }
  void step() override {
    NoGradGuard no_grad;
    for (auto& grp : groups_) {
      const float lr = static_cast<float>(grp.lr), wd = static_cast<float>(grp.weight_decay);
      const float mu = static_cast<float>(opt_.momentum), damp = static_cast<float>(1 - opt_.dampening);
      for (auto& [name, p] : grp.params) {
        Tensorf g = p.grad();
        if (!g.defined()) continue;  // parameter not reached by this backward
        const int64_t n = p.numel();
        float* w = p.data();
        const float* gd = g.data();
        if (mu == 0.0f) {
          for (int64_t i = 0; i < n; ++i) w[i] -= lr * (gd[i] + wd * w[i]);
          continue;
        }
        const bool first = !has_slot(name, "momentum");
        float* b = slot(name, "momentum", p.shape()).data();
        for (int64_t i = 0; i < n; ++i) {
          const float d = gd[i] + wd * w[i];
          b[i] = first ? d : mu * b[i] + damp * d;
          w[i] -= lr * (opt_.nesterov ? d + mu * b[i] : b[i]);
        }
      }
    }
  }

 private:
  SgdOptions opt_;
};

}  // namespace optim
}  // namespace lowbit
