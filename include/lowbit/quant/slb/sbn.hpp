// SLB state batch-norm (Sec. 3.3.2, Eqs. 12-15) and the BN calibration alternative.
//
// Training uses W_c, so ordinary BN statistics describe y_c = x (*) W_c (Eq. 13), while
// inference runs y_q = x (*) W_q (Eq. 14). SBN keeps two sets of running statistics per BN
// layer, the continuous (mu_c, sigma_c) and the discrete (mu_q, sigma_q), both updated every
// training step (Algorithm 1, lines 4-5), sharing gamma and beta (Eq. 15); inference uses
// the discrete set.
//
// How, for every model: a second, no-grad forward of the whole network in discrete mode
// after each training step. Every SlbWeight gives W_q and every BatchNorm normalizes its
// input with the batch statistics of that discrete pass and updates the discrete running
// statistics. Why a whole-network pass and not an SBN layer type:
//   * models create their nn::BatchNorm layers themselves (only convs and linears come from
//     the LayerFactory), and VGG-Small puts a max-pool *between* conv and BN, so a conv
//     cannot hand "its" BN a second output; the network itself is the only place where
//     y_q reaches every BN through whatever sits in between;
//   * the input of layer l in the discrete pass is the discrete network's own activation, so
//     mu_q, sigma_q are the statistics inference will see (a per-layer y_q = x_c (*) W_q
//     computed from the continuous input would not be);
//   * its cost is one extra forward conv per layer and no backward, the cost budget docs/performance.md ("SLB: the cost of the search") measures;
//     those convs run on integer codes where both operands allow it (integer_conv.hpp).
// The two sets live in the BN layer's own buffers, swapped: "at rest" (between steps, during
// evaluation, in checkpoints and exports) running_mean / running_var hold the DISCRETE
// statistics, so evaluation and the exported model use them with no special code; the
// continuous set is held here and swapped in only for the training forward. state() saves
// it so a resumed run continues bit-exactly. The discrete statistics of layers that do not
// follow an SLB weight (the first conv's BN) simply equal the continuous ones.
//
// BN calibration (the rebuttal; docs/notes/slb.md §3.4, the authors' README and MindSpore's
// BNCalibrationCallback): after an epoch, run N batches of (un-augmented) training images
// through the discrete network in training mode, so BN's running statistics move toward
// those of W_q with the layer's usual momentum; no second set is kept. Like the MindSpore
// callback the statistics are not reset first: N momentum updates from the current values.
// Tests in tests/test_slb.cpp.
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "../../nn/layers.hpp"
#include "../layers.hpp"
#include "slb.hpp"

namespace lowbit {
namespace quant {

// The SLB weight quantizers, BN layers and quantized convs of a model, in traversal order.
struct SlbModules {
  std::vector<SlbWeight*> weights;
  std::vector<nn::BatchNorm*> bns;
  std::vector<QConv2d*> convs;
};

inline void collect_slb_modules(nn::Module& m, SlbModules& out) {
  if (auto* w = dynamic_cast<SlbWeight*>(&m)) out.weights.push_back(w);
  if (auto* b = dynamic_cast<nn::BatchNorm*>(&m)) out.bns.push_back(b);
  if (auto* c = dynamic_cast<QConv2d*>(&m)) out.convs.push_back(c);
  for (auto& c : m.children()) collect_slb_modules(*c.second, out);
}
inline SlbModules slb_modules(nn::Module& model) {
  SlbModules s;
  collect_slb_modules(model, s);
  return s;
}

// One no-grad forward of the discrete network (every SlbWeight gives W_q, Eq. 7) in
// training mode, so every BN normalizes with the batch statistics of y_q and updates its
// running statistics with them (Eq. 14). With `integer`, every quantized conv whose input
// and weight are both on uniform integer grids (k-bit DoReFa activations times W_q) runs on
// their integer codes (quant/integer_conv.hpp: the same y_q up to float rounding, about
// twice as fast, docs/performance.md); the rest keep the float conv. The model's mode and the layers'
// flags are restored afterwards, also when the forward throws.
inline void slb_discrete_pass(nn::Module& model, const SlbModules& mods, const Tensorf& images, bool integer = true) {
  struct Restore {
    nn::Module& model;
    const SlbModules& mods;
    bool was_training;
    std::vector<bool> was_integer;
    ~Restore() {
      for (auto* w : mods.weights) w->set_discrete(false);
      for (size_t k = 0; k < was_integer.size(); ++k) mods.convs[k]->set_integer_forward(was_integer[k]);
      model.train(was_training);
    }
  } restore{model, mods, model.is_training(), {}};
  NoGradGuard no_grad;
  for (auto* w : mods.weights) w->set_discrete(true);
  for (auto* c : mods.convs) restore.was_integer.push_back(c->integer_forward()), c->set_integer_forward(integer);
  model.train();
  model(images);
}

// BN calibration: up to `batches` discrete passes over `next` (returns false when done).
// Returns the number of batches run.
inline int64_t slb_calibrate_bn(nn::Module& model, const SlbModules& mods, const std::function<bool(Tensorf&)>& next,
                                int64_t batches, bool integer = true) {
  int64_t done = 0;
  Tensorf images;
  while (done < batches && next(images)) {
    slb_discrete_pass(model, mods, images, integer);
    ++done;
  }
  return done;
}

class StateBatchNorm {
 public:
  // Before the training forward: the continuous statistics go into the BN buffers (the
  // training forward updates them, Eq. 13), the discrete ones are held here.
  void begin_step(const SlbModules& mods) {
    NoGradGuard no_grad;
    if (cmean_.empty()) {  // first step of a run: both sets start from the layers' initial values
      for (auto* b : mods.bns) cmean_.push_back(b->running_mean.clone()), cvar_.push_back(b->running_var.clone());
    }
    check(mods, "begin_step");
    if (!hmean_.empty()) return;  // already swapped (begin_step twice without end_step)
    for (size_t k = 0; k < mods.bns.size(); ++k) {
      nn::BatchNorm* b = mods.bns[k];
      hmean_.push_back(b->running_mean.clone()), hvar_.push_back(b->running_var.clone());
      b->running_mean.copy_(cmean_[k]), b->running_var.copy_(cvar_[k]);
    }
  }
  // After the optimizer step: keep the updated continuous statistics, put the discrete ones
  // back, and update them with a discrete pass over the step's images (Eq. 14).
  void end_step(nn::Module& model, const SlbModules& mods, const Tensorf& images, bool integer = true) {
    LOWBIT_CHECK(hmean_.size() == mods.bns.size(), "StateBatchNorm::end_step without begin_step");
    {
      NoGradGuard no_grad;
      for (size_t k = 0; k < mods.bns.size(); ++k) {
        nn::BatchNorm* b = mods.bns[k];
        cmean_[k].copy_(b->running_mean), cvar_[k].copy_(b->running_var);
        b->running_mean.copy_(hmean_[k]), b->running_var.copy_(hvar_[k]);
      }
    }
    hmean_.clear(), hvar_.clear();
    // A model without batch-norm (VDSR, examples/train_sr.cpp) has no statistics to keep:
    // state BN is then nothing, and the discrete pass would only cost time.
    if (!mods.bns.empty()) slb_discrete_pass(model, mods, images, integer);
  }

  // The continuous statistics of BN layer k (the discrete ones are the layer's buffers).
  const Tensorf& continuous_mean(size_t k) const { return cmean_.at(k); }
  const Tensorf& continuous_var(size_t k) const { return cvar_.at(k); }

  nlohmann::json state() const {
    nlohmann::json s = nlohmann::json::array();
    for (size_t k = 0; k < cmean_.size(); ++k) s.push_back({{"mean", cmean_[k].to_vector()}, {"var", cvar_[k].to_vector()}});
    return s;
  }
  void load_state(const nlohmann::json& s) {
    LOWBIT_CHECK(s.is_array(), "StateBatchNorm::load_state: expected an array, got ", s.dump().substr(0, 80));
    cmean_.clear(), cvar_.clear();
    for (auto& e : s) {
      const auto m = e.at("mean").get<std::vector<float>>(), v = e.at("var").get<std::vector<float>>();
      cmean_.push_back(Tensorf::from_vector({static_cast<int64_t>(m.size())}, m));
      cvar_.push_back(Tensorf::from_vector({static_cast<int64_t>(v.size())}, v));
    }
  }

 private:
  void check(const SlbModules& mods, const char* who) const {
    LOWBIT_CHECK(cmean_.size() == mods.bns.size(), "StateBatchNorm::", who, ": the model has ", mods.bns.size(),
                 " BatchNorm layers, the saved continuous statistics ", cmean_.size());
    for (size_t k = 0; k < cmean_.size(); ++k)
      LOWBIT_CHECK(cmean_[k].shape() == mods.bns[k]->running_mean.shape(), "StateBatchNorm::", who,
                   ": BatchNorm layer ", k, " has ", shape_str(mods.bns[k]->running_mean.shape()),
                   " channels, the saved statistics ", shape_str(cmean_[k].shape()));
  }
  std::vector<Tensorf> cmean_, cvar_;  // continuous running statistics (Eq. 13)
  std::vector<Tensorf> hmean_, hvar_;  // the discrete ones, held during the training forward
};

}  // namespace quant
}  // namespace lowbit
