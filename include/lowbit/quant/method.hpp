// A quantization method as the framework sees it: one Method descriptor per method (its
// name, its typed options, makers for its weight and activation quantizers, its training
// hooks, its parameter groups and its extras for summaries and reports), registered by
// name (quant/registry.hpp). The framework, the trainer and the report loop over the
// registry and never name a method; a user adds one from their own translation unit
// (docs/quantization.md, "Adding a method").
//
// MethodHooks: the work of a method that does not fit inside a layer's forward/backward,
// called by a training loop at fixed points. A method that needs none of it (fp32, ste)
// uses the base class, whose hooks do nothing.
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
//   auto hooks = quant::make_hooks(spec);            // quant/factory.hpp
//   for each step:  hooks->begin_step(model, ctx);  forward; backward; opt.step();
//                   hooks->end_step(model, images, ctx);
//   each epoch:     json extra = hooks->end_epoch(model, train_batches, epoch);
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../io/options.hpp"
#include "../nn/factory.hpp"
#include "../nn/module.hpp"
#include "../optim/optimizer.hpp"
#include "quantizer.hpp"
#include "spec.hpp"

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


// Parameters a module tagged (nn::Module::tag_parameter) get their own optimizer group:
// e.g. PACT's alpha with its own weight decay, APoT's alphas with their own learning rates.
struct ParamGroupRule {
  std::string tag;
  double lr = -1;            // the group's peak learning rate (scaled by the schedule like the
                             // base lr); < 0: the base lr
  double weight_decay = 0;
};

// A curve the HTML report draws from metrics.jsonl for runs of this method.
struct ReportPlot {
  std::string title, ylabel;
  std::vector<std::string> keys;  // metrics.jsonl keys, one line each
  bool log_y = false;
};

class Method {
 public:
  virtual ~Method() = default;
  // The config name ("slb"): the value of the "method" key and the name of the option block.
  virtual std::string name() const = 0;
  // One line for --help-config and the docs.
  virtual std::string doc() const = 0;
  // Every option with its type, default, doc and range (io/options.hpp).
  virtual io::OptionSchema options() const { return {}; }
  // Checks what the schema cannot: the bits the method accepts and options that depend on
  // each other. spec.options is resolved. Throws naming the config key.
  virtual void validate(const QuantSpec& /*spec*/) const {}
  // The policy of the first / last layer when the config leaves it at "default".
  virtual LayerPolicy default_policy(nn::LayerRole role) const {
    return role == nn::LayerRole::Middle ? LayerPolicy::Same : LayerPolicy::FP32;
  }
  // The quantizer of a layer's weight at `bits` < 32 (8 for an 8bit-policy layer).
  virtual std::shared_ptr<WeightQuantizer> make_weight(const Tensorf& init, int bits, nn::LayerRole role,
                                                       const QuantSpec& spec) const = 0;
  // The quantizer of a layer's input at `bits` < 32.
  virtual std::shared_ptr<ActivationQuantizer> make_activation(int bits, nn::LayerRole role,
                                                               const QuantSpec& spec) const = 0;
  // Per-step / per-epoch work (none by default).
  virtual std::unique_ptr<MethodHooks> make_hooks(const QuantSpec& /*spec*/) const {
    return std::make_unique<MethodHooks>();
  }
  // Optimizer groups for tagged parameters, in this order after the decay / no-decay groups.
  virtual std::vector<ParamGroupRule> param_groups(const QuantSpec& /*spec*/) const { return {}; }
  // A method whose own epoch plan fixes the run's length (ALQ's pipeline) checks the
  // config's epochs here.
  virtual void check_epochs(const QuantSpec& /*spec*/, int64_t /*epochs*/) const {}
  // Extra entries of a finished run's summary.json (e.g. ALQ's per-layer bit report).
  virtual nlohmann::json summary(const nn::Module& /*model*/, const QuantSpec& /*spec*/) const {
    return nlohmann::json::object();
  }
  // The report's section for this method, drawn from metrics.jsonl.
  virtual std::vector<ReportPlot> report_plots() const { return {}; }
  // The metrics.jsonl key of the learning rate the optimizer really used (ALQ's AMSGrad
  // ignores the schedule), for the report's lr curve.
  virtual std::string lr_metric() const { return "lr"; }
};

}  // namespace quant
}  // namespace lowbit
