// ALQ: the pipeline (method-notes §2.7-2.8, the paper's Alg. 5 and 6 as the authors' code
// runs them), its options, and the training-loop hooks (quant/method.hpp).
//
//   pretrained FP32 weights --structured sketching (Sec. 5.1)--> I_max bases per group
//   R rounds of:  epoch_basis basis epochs       Step 2a: B by exhaustive search + alpha closed form
//                 epoch_coord coordinate epochs  Step 2b: alpha by AMSGrad (+ L2)
//                 epoch_prune pruning epochs     Step 1:  remove the smallest loss increments
//   then ste_epochs "STE with loss-aware" epochs (Sec. 5.2 / 5.4.3)
//   and final_coord_epochs coordinate epochs.
//
// Learning rate: reset to lr at the start of every round and multiplied by ld_basis before
// each basis epoch, then by ld_coord before each coordinate epoch (pruning epochs keep the
// last one); the STE part restarts at ste_lr, x ld_ste before each STE epoch, then
// x ld_final_coord before each final coordinate epoch (method-notes §2.7-2.8). The phase and
// the learning rate of an epoch follow from its index alone, so a resumed run continues
// exactly; the only other state is B_0 of the paper's pruning rule (state()).
//
// Defaults are the authors' VGG script (method-notes §2.7): lr 1e-3, R 5, 20 basis epochs
// (x0.8), 10 coordinate epochs (x0.8), 1 pruning epoch, 50 STE epochs (lr 1e-3, x0.95), 20
// coordinate epochs (x0.9): 225 epochs. Pruning follows the paper's rule to target_bits
// (0.66, Table 3) by default; prune_rule "authors" uses pr = prune_rate, top_k.
//
// Options (trainer keys alq_<name>; unknown names are errors): see Options below.
#pragma once
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../io/checkpoint.hpp"
#include "../nn/bn_recalibrate.hpp"
#include "alq_basis.hpp"
#include "alq_optim.hpp"
#include "alq_prune.hpp"
#include "alq_report.hpp"
#include "method.hpp"

namespace lowbit {
namespace quant {
namespace alq {

struct Options {
  double lr = 1e-3;              // AMSGrad learning rate (the trainer's lr/schedule are not used)
  double weight_decay = 0.0;     // L2 on alpha in coordinate epochs (Sec. 3.3; authors' scripts: 0)
  int64_t rounds = 5;            // R
  int64_t epoch_basis = 20, epoch_coord = 10, epoch_prune = 1;
  double ld_basis = 0.8, ld_coord = 0.8;
  std::string prune_rule = "paper";  // paper | authors
  double target_bits = 0.66;     // I_min (paper rule)
  double prune_rate = 0.4, top_k = 0.002;  // pr and top_k (authors' rule)
  int64_t ste_epochs = 50;
  double ste_lr = 1e-3, ld_ste = 0.95;
  int64_t final_coord_epochs = 20;
  double ld_final_coord = 0.9;
  std::string first_grouping = "channel";   // first conv
  std::string conv_grouping = "pixel";      // other convs
  std::string fc_grouping = "subchannel";   // linear layers
  int64_t fc_group_size = 512;              // sub-channel chunk (largest divisor of in_features <= this)
  std::string init;                          // FP32 checkpoint to sketch from ("" = the model's own init)
  std::string first_layer = "same", last_layer = "same";  // layer policies (train_cifar reads them)
  // BN statistics re-estimated over this many training batches after every epoch (0 = off, the
  // authors' code). Not in the paper: pruning changes the weights faster than the running
  // averages follow (nn/bn_recalibrate.hpp, docs/alq.md).
  int64_t calibrate_batches = 0;

  int64_t round_epochs() const { return epoch_basis + epoch_coord + epoch_prune; }
  int64_t total_epochs() const { return rounds * round_epochs() + ste_epochs + final_coord_epochs; }

  static Options from_json(const nlohmann::json& j) {
    Options o;
    LOWBIT_CHECK(j.is_object(), "alq options: expected a JSON object, got ", j.dump());
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const nlohmann::json& v = it.value();
      try {
        if (k == "lr") o.lr = v.get<double>();
        else if (k == "weight_decay") o.weight_decay = v.get<double>();
        else if (k == "rounds") o.rounds = v.get<int64_t>();
        else if (k == "epoch_basis") o.epoch_basis = v.get<int64_t>();
        else if (k == "epoch_coord") o.epoch_coord = v.get<int64_t>();
        else if (k == "epoch_prune") o.epoch_prune = v.get<int64_t>();
        else if (k == "ld_basis") o.ld_basis = v.get<double>();
        else if (k == "ld_coord") o.ld_coord = v.get<double>();
        else if (k == "prune_rule") o.prune_rule = v.get<std::string>();
        else if (k == "target_bits") o.target_bits = v.get<double>();
        else if (k == "prune_rate") o.prune_rate = v.get<double>();
        else if (k == "top_k") o.top_k = v.get<double>();
        else if (k == "ste_epochs") o.ste_epochs = v.get<int64_t>();
        else if (k == "ste_lr") o.ste_lr = v.get<double>();
        else if (k == "ld_ste") o.ld_ste = v.get<double>();
        else if (k == "final_coord_epochs") o.final_coord_epochs = v.get<int64_t>();
        else if (k == "ld_final_coord") o.ld_final_coord = v.get<double>();
        else if (k == "first_grouping") o.first_grouping = v.get<std::string>();
        else if (k == "conv_grouping") o.conv_grouping = v.get<std::string>();
        else if (k == "fc_grouping") o.fc_grouping = v.get<std::string>();
        else if (k == "fc_group_size") o.fc_group_size = v.get<int64_t>();
        else if (k == "init") o.init = v.get<std::string>();
        else if (k == "first_layer") o.first_layer = v.get<std::string>();
        else if (k == "last_layer") o.last_layer = v.get<std::string>();
        else if (k == "calibrate_batches") o.calibrate_batches = v.get<int64_t>();
        else lowbit::detail::fail("alq options: unknown option '", k, "'");
      } catch (const nlohmann::json::exception&) {
        lowbit::detail::fail("alq options: option '", k, "' has the wrong type: ", v.dump());
      }
    }
    o.validate();
    return o;
  }

  void validate() const {
    LOWBIT_CHECK(lr > 0 && ste_lr > 0, "alq options: lr = ", lr, ", ste_lr = ", ste_lr, ", expected > 0");
    LOWBIT_CHECK(weight_decay >= 0, "alq options: weight_decay = ", weight_decay, ", expected >= 0");
    LOWBIT_CHECK(rounds >= 0 && epoch_basis >= 0 && epoch_coord >= 0 && epoch_prune >= 0 && ste_epochs >= 0 &&
                     final_coord_epochs >= 0,
                 "alq options: rounds and epoch counts must be >= 0 (rounds ", rounds, ", epoch_basis ", epoch_basis,
                 ", epoch_coord ", epoch_coord, ", epoch_prune ", epoch_prune, ", ste_epochs ", ste_epochs,
                 ", final_coord_epochs ", final_coord_epochs, ")");
    LOWBIT_CHECK(total_epochs() > 0, "alq options: the pipeline has no epochs");
    for (double d : {ld_basis, ld_coord, ld_ste, ld_final_coord})
      LOWBIT_CHECK(d > 0 && d <= 1, "alq options: learning-rate decay factors must be in (0, 1], got ", d);
    LOWBIT_CHECK(prune_rule == "paper" || prune_rule == "authors", "alq options: prune_rule '", prune_rule,
                 "' is unknown (expected paper or authors)");
    LOWBIT_CHECK(target_bits >= 0, "alq options: target_bits = ", target_bits, ", expected >= 0");
    LOWBIT_CHECK(prune_rate >= 0 && top_k > 0 && top_k <= 1, "alq options: prune_rate = ", prune_rate, ", top_k = ",
                 top_k, ", expected prune_rate >= 0 and top_k in (0, 1]");
    LOWBIT_CHECK(first_grouping == "channel" || first_grouping == "pixel" || first_grouping == "kernel",
                 "alq options: first_grouping '", first_grouping, "' is unknown (expected channel, pixel or kernel)");
    LOWBIT_CHECK(conv_grouping == "channel" || conv_grouping == "pixel" || conv_grouping == "kernel",
                 "alq options: conv_grouping '", conv_grouping, "' is unknown (expected channel, pixel or kernel)");
    LOWBIT_CHECK(fc_grouping == "subchannel" || fc_grouping == "channel", "alq options: fc_grouping '", fc_grouping,
                 "' is unknown (expected subchannel or channel)");
    LOWBIT_CHECK(fc_group_size >= 1, "alq options: fc_group_size = ", fc_group_size, ", expected >= 1");
    LOWBIT_CHECK(calibrate_batches >= 0, "alq options: calibrate_batches = ", calibrate_batches, ", expected >= 0");
  }
};

// The phase and learning rate of epoch e (0-based); epochs past the pipeline continue its
// last phase at its last learning rate.
struct EpochPlan {
  Phase phase = Phase::Basis;
  double lr = 0;
  int64_t prune_epochs_before = 0;  // pruning epochs that precede this one
  bool first_ste_epoch = false;
};

inline EpochPlan plan_epoch(const Options& o, int64_t e) {
  EpochPlan p;
  const int64_t R = o.round_epochs(), main = o.rounds * R;
  if (e < main) {
    const int64_t r = e / R, k = e % R;
    p.prune_epochs_before = r * o.epoch_prune;
    const double after_basis = o.lr * std::pow(o.ld_basis, static_cast<double>(o.epoch_basis));
    if (k < o.epoch_basis) {
      p.phase = Phase::Basis;
      p.lr = o.lr * std::pow(o.ld_basis, static_cast<double>(k + 1));
    } else if (k < o.epoch_basis + o.epoch_coord) {
      p.phase = Phase::Coordinate;
      p.lr = after_basis * std::pow(o.ld_coord, static_cast<double>(k - o.epoch_basis + 1));
    } else {
      p.phase = Phase::Prune;
      p.lr = after_basis * std::pow(o.ld_coord, static_cast<double>(o.epoch_coord));
      p.prune_epochs_before += k - o.epoch_basis - o.epoch_coord;
    }
    return p;
  }
  if (o.ste_epochs + o.final_coord_epochs == 0) return plan_epoch(o, main - 1);  // keep the last phase
  p.prune_epochs_before = o.rounds * o.epoch_prune;
  const int64_t k = std::min(e - main, o.ste_epochs + o.final_coord_epochs - 1);
  if (k < o.ste_epochs) {
    p.phase = Phase::Ste;
    p.lr = o.ste_lr * std::pow(o.ld_ste, static_cast<double>(k + 1));
    p.first_ste_epoch = e - main == 0;
  } else {
    p.phase = Phase::Coordinate;
    p.lr = o.ste_lr * std::pow(o.ld_ste, static_cast<double>(o.ste_epochs)) *
           std::pow(o.ld_final_coord, static_cast<double>(k - o.ste_epochs + 1));
  }
  return p;
}

// The weight quantizer of one layer: the grouping follows the layer's kind and role.
inline std::shared_ptr<AlqWeight> make_weight(const Tensorf& init, nn::LayerRole role, const nlohmann::json& options,
                                              int max_bits) {
  const Options o = Options::from_json(options);
  const std::string grouping =
      init.dim() == 4 ? (role == nn::LayerRole::First ? o.first_grouping : o.conv_grouping) : o.fc_grouping;
  return std::make_shared<AlqWeight>(init, make_layout(init.shape(), grouping, o.fc_group_size), max_bits);
}

// Every AlqWeight of a model with its module name ("features.0.wq"), depth first.
inline void find_weights(const std::shared_ptr<nn::Module>& m, const std::string& prefix,
                         std::vector<NamedAlqWeight>& out) {
  if (auto q = std::dynamic_pointer_cast<AlqWeight>(m)) out.emplace_back(prefix, q);
  for (auto& [n, c] : m->children()) find_weights(c, prefix.empty() ? n : prefix + "." + n, out);
}
inline std::vector<NamedAlqWeight> find_weights(nn::Module& model) {
  std::vector<NamedAlqWeight> out;
  for (auto& [n, c] : model.children()) find_weights(c, n, out);
  return out;
}

// Loads an FP32 checkpoint of the same architecture (io/checkpoint.hpp, tensors
// "model/<name>", as train_cifar writes) into an ALQ model: each ALQ layer's weight
// "<layer>.weight" is sketched into its bases (Sec. 5.1), every other parameter and buffer
// (BN, biases) copied. Activation-quantizer parameters may be absent (they keep their init).
inline void load_pretrained(nn::Module& model, const std::string& path) {
  const io::Checkpoint ck = io::load_checkpoint(path);
  auto get = [&](const std::string& name) -> const Tensorf* {
    auto it = ck.tensors.find("model/" + name);
    return it == ck.tensors.end() ? nullptr : &it->second;
  };
  const std::vector<NamedAlqWeight> ws = find_weights(model);
  std::vector<std::string> prefixes;
  std::string problems;
  for (auto& [name, q] : ws) {
    prefixes.push_back(name);
    const std::string layer = name.size() > 3 && name.compare(name.size() - 3, 3, ".wq") == 0
                                  ? name.substr(0, name.size() - 3) : name;
    const Tensorf* t = get(layer + ".weight");
    if (!t) problems += "\n  missing: " + layer + ".weight";
    else if (t->shape() != q->weight_shape()) problems += "\n  shape mismatch: " + layer + ".weight";
    else q->initialize(*t);
  }
  NoGradGuard no_grad;
  for (auto& [name, t] : model.state_dict()) {
    if (quant::detail::under(name, prefixes)) continue;
    const Tensorf* src = get(name);
    if (!src) {
      if (name.find(".aq.") == std::string::npos) problems += "\n  missing: " + name;
      continue;
    }
    if (src->shape() != t.shape()) problems += "\n  shape mismatch: " + name;
    else Tensorf(t).copy_(*src);
  }
  LOWBIT_CHECK(problems.empty(), "alq: FP32 checkpoint '", path, "' does not match the model:", problems);
}

class AlqHooks : public MethodHooks {
 public:
  explicit AlqHooks(const nlohmann::json& options) : o_(Options::from_json(options)), ctl_(std::make_shared<Control>()) {
    ctl_->prune_rule = o_.prune_rule;
    ctl_->target_bits = o_.target_bits;
    ctl_->top_k = o_.top_k;
  }

  void begin_step(nn::Module& model, const StepContext& ctx) override {
    // The FP32 weights are sketched before the first step of a run (never on resume, whose
    // first step is later: the checkpoint then holds the bases).
    if (ctx.step == 0 && !o_.init.empty() && !loaded_) load_pretrained(model, o_.init), loaded_ = true;
    const EpochPlan p = plan_epoch(o_, ctx.epoch);
    const int64_t in_epoch = ctx.step - ctx.epoch * ctx.steps_per_epoch;
    ctl_->phase = p.phase;
    ctl_->lr = p.lr;
    ctl_->ste_start = p.first_ste_epoch && in_epoch == 0;
    ctl_->prune_iter = p.prune_epochs_before * ctx.steps_per_epoch + in_epoch;
    ctl_->prune_iters = std::max<int64_t>(1, o_.rounds * o_.epoch_prune * ctx.steps_per_epoch);
    ctl_->mp = (o_.prune_rate / o_.top_k) / static_cast<double>(std::max<int64_t>(1, o_.epoch_prune * ctx.steps_per_epoch));
  }

  // ALQ layers by the ALQ framework, every other parameter by Adam.
  std::unique_ptr<optim::Optimizer> make_optimizer(nn::Module& model, std::vector<optim::ParamGroup> groups) override {
    std::vector<NamedAlqWeight> ws = find_weights(model);
    LOWBIT_CHECK(!ws.empty(), "alq: the model has no ALQ-quantized layer");
    std::vector<std::string> prefixes;
    for (auto& w : ws) prefixes.push_back(w.first);
    std::vector<optim::ParamGroup> others;
    for (auto& g : groups) {
      optim::ParamGroup k = g;
      k.params.clear();
      for (auto& p : g.params)
        if (!quant::detail::under(p.first, prefixes)) k.params.push_back(p);
      if (!k.params.empty()) others.push_back(k);
    }
    std::vector<NamedAlqWeight> named;
    for (auto& [n, q] : ws) named.emplace_back(n + ".w_hat", q);  // optimizer state keys
    OptimOptions oo;
    oo.weight_decay = o_.weight_decay;
    return std::make_unique<AlqOptimizer>(std::move(others), std::move(named), oo, ctl_);
  }

  nlohmann::json end_epoch(nn::Module& model, const BatchSource& train, int64_t epoch) override {
    const EpochPlan p = plan_epoch(o_, epoch);
    const int64_t calibrated = o_.calibrate_batches > 0 ? nn::recalibrate_batch_norm(model, train, o_.calibrate_batches) : 0;
    const Report r = report(model);
    nlohmann::json layer_bits = nlohmann::json::array();
    for (auto& l : r.layers) layer_bits.push_back(l.avg_bits);
    return {{"alq_phase", phase_name(p.phase)},
            {"alq_calibrated_batches", calibrated},
            {"alq_lr", p.lr},
            {"alq_avg_bits", r.avg_weight_bits},
            {"alq_weight_bytes", r.weight_bytes},
            {"alq_compression_ratio", r.compression_ratio},
            {"alq_pruned_groups", r.pruned_groups},
            {"alq_pruned_out_channels", r.pruned_out_channels},
            {"alq_layer_bits", layer_bits}};
  }

  nlohmann::json state() const override { return {{"bits0", ctl_->bits0}}; }
  void load_state(const nlohmann::json& s) override {
    if (s.contains("bits0")) ctl_->bits0 = s.at("bits0").get<double>();
  }

  const Options& options() const { return o_; }
  const std::shared_ptr<Control>& control() const { return ctl_; }

 private:
  Options o_;
  std::shared_ptr<Control> ctl_;
  bool loaded_ = false;
};

}  // namespace alq
}  // namespace quant
}  // namespace lowbit
