// MethodHooks: the work of a quantization method that does not fit inside a layer's
// forward/backward, called by a training loop at fixed points. A method that needs none of
// it (fp32, ste) uses the base class, whose hooks do nothing.
//
// Why hooks and not a training loop per method: the loop (data, loss, logging, checkpoints,
// resume) is the same for every method; what differs is small and happens at a few moments:
//   * SLB: the temperature is set before every step (SLB Algorithm 1), the discrete
//     statistics of state batch-norm are gathered after it, BN calibration and the
//     sharpness statistics come at the end of an epoch;
//   * ALQ: its own optimizer (AMSGrad over bases and coordinates) and a phase per epoch
//     (basis / coordinate / pruning / STE epochs);
//   * APoT: nothing per step (alpha is an ordinary parameter); per-epoch alpha values.
// A user's own loop calls the same hooks in the same places (docs/quantization.md):
//
//   auto hooks = quant::make_hooks(spec);
//   for each step:  hooks->begin_step(model, ctx);  forward; backward; opt.step();
//                   hooks->end_step(model, images, ctx);
//   each epoch:     json extra = hooks->end_epoch(model, train_batches, epoch);
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "../nn/module.hpp"
#include "../optim/optimizer.hpp"

namespace lowbit {
namespace quant {

// Where the training loop is: step counts from 0 over the whole run.
struct StepContext {
  int64_t step = 0;             // global step index, 0-based
  int64_t total_steps = 0;      // steps in the whole run (epochs * steps_per_epoch)
  int64_t steps_per_epoch = 0;
  int64_t epoch = 0;            // 0-based epoch of this step
};

// Fills `images` with the next training batch WITHOUT augmentation, returns false when the
// pass is over (BN calibration and similar statistics passes use it).
using BatchSource = std::function<bool(Tensorf& images)>;

class MethodHooks {
 public:
  virtual ~MethodHooks() = default;
  // Before the forward pass of a training step.
  virtual void begin_step(nn::Module& /*model*/, const StepContext& /*ctx*/) {}
  // After the optimizer step; `images` is the step's input batch.
  virtual void end_step(nn::Module& /*model*/, const Tensorf& /*images*/, const StepContext& /*ctx*/) {}
  // After an epoch's training, before evaluation. Returns values for the epoch's log line
  // (metrics.jsonl), e.g. SLB's temperature; an empty object when there is nothing to log.
  virtual nlohmann::json end_epoch(nn::Module& /*model*/, const BatchSource& /*train*/, int64_t /*epoch*/) {
    return nlohmann::json::object();
  }
  // The method's own optimizer over these parameter groups, or null for the loop's choice.
  virtual std::unique_ptr<optim::Optimizer> make_optimizer(nn::Module& /*model*/,
                                                           std::vector<optim::ParamGroup> /*groups*/) {
    return nullptr;
  }
  // State that is neither a parameter, a buffer nor optimizer state, saved in checkpoints
  // so that a resumed run continues bit-exactly.
  virtual nlohmann::json state() const { return nlohmann::json::object(); }
  virtual void load_state(const nlohmann::json& /*s*/) {}
};

}  // namespace quant
}  // namespace lowbit
