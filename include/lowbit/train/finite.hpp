// Stopping a diverged run where it broke (issue 34): a training loop checks, once per step,
// the loss, every gradient (before the optimizer step) and every parameter and buffer (after
// the step and the method's end_step), and stops with one error naming the epoch, the step
// and the first tensor or layer that holds NaN or inf. Only the loss was checked before, and
// a NaN weight can hide from it: ReLU turns NaN into 0 in many kernels, so a run at lr = 1e4
// finished with exit 0 and 93 of 97 weight tensors NaN.
//
// Cost: one vectorized pass over the gradients and one over the weights per step
// (nn::first_nonfinite; measured in docs/performance.md, "Non-finite checks").
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../core/error.hpp"
#include "../nn/finite_watch.hpp"
#include "../nn/module.hpp"

namespace lowbit {
namespace train {

class FiniteCheck {
 public:
  // `model` must outlive the check; its tensors are handles, so later in-place updates are seen.
  explicit FiniteCheck(const nn::Module& model) : params_(model.named_parameters()), buffers_(model.named_buffers()) {
    for (auto& [name, m] : model.named_modules()) names_.emplace(m, name);
  }

  // `where`: the step and what it means, e.g. "at epoch 3, step 17 of 390: the run diverged ...".
  void gradients(const std::string& where) const {
    for (auto& [name, p] : params_) {
      const Tensor<float> g = p.grad();
      const int64_t i = nn::first_nonfinite(g);
      LOWBIT_CHECK(i < 0, "the gradient of '", name, "' holds ", g.data()[i], " at element ", i, " ", where);
    }
  }
  // Parameters and buffers (batch-norm running statistics, a method's state) after the step.
  void weights(const std::string& where) const {
    for (auto* list : {&params_, &buffers_})
      for (auto& [name, t] : *list) {
        const int64_t i = nn::first_nonfinite(t);
        LOWBIT_CHECK(i < 0, "'", name, "' holds ", t.data()[i], " at element ", i, " after the optimizer step ", where);
      }
  }
  // After a non-finite loss with finite weights: the first layer whose output breaks, from one
  // diagnostic forward of the same batch. It updates batch-norm running statistics once more,
  // which is harmless: the caller stops the run without saving.
  std::string first_bad_output(nn::Module& model, const Tensor<float>& images) const {
    nn::FiniteWatch watch(names_);
    NoGradGuard no_grad;
    model(images);
    return watch.first();
  }

 private:
  std::vector<std::pair<std::string, Tensor<float>>> params_, buffers_;
  std::map<const void*, std::string> names_;
};

}  // namespace train
}  // namespace lowbit
