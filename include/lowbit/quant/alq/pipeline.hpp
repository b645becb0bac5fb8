// ALQ: the pipeline (docs/notes/alq.md §2.7-2.8, the paper's Alg. 5 and 6 as the authors' code
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
// x ld_final_coord before each final coordinate epoch (docs/notes/alq.md §2.7-2.8). The phase and
// the learning rate of an epoch follow from its index alone, so a resumed run continues
// exactly; the only other state is B_0 of the paper's pruning rule (state()).
//
// Defaults are the authors' VGG script (docs/notes/alq.md §2.7): lr 1e-3, R 5, 20 basis epochs
// (x0.8), 10 coordinate epochs (x0.8), 1 pruning epoch, 50 STE epochs (lr 1e-3, x0.95), 20
// coordinate epochs (x0.9): 225 epochs. Pruning follows the paper's rule to target_bits
// (0.66, Table 3) by default; prune_rule "authors" uses pr = prune_rate, top_k.
//
// Options: option_schema() below (config block "alq", e.g. --set alq.rounds=3).
#pragma once
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../../io/options.hpp"
#include "../../nn/bn_recalibrate.hpp"
#include "basis.hpp"
#include "optim.hpp"
#include "prune.hpp"
#include "report.hpp"
#include "../method.hpp"

namespace lowbit {
namespace quant {
namespace alq {

// The options of method alq (config block "alq"): the one place their defaults, ranges
// and docs are written.
inline io::OptionSchema option_schema() {
  const double inf = io::OptionSchema::kInf;
  io::OptionSchema s;
  s.number("lr", 1e-3, "AMSGrad lr, reset at the start of every round (the trainer's lr/schedule are not used)", 0.0,
           inf, true)
      .number("weight_decay", 0.0, "L2 on the coordinates in coordinate epochs (Sec. 3.3; authors' scripts: 0)", 0.0)
      .integer("rounds", 5, "R rounds of basis / coordinate / pruning epochs", 0)
      .integer("epoch_basis", 20, "basis epochs per round (Step 2a)", 0)
      .number("ld_basis", 0.8, "lr factor before each basis epoch", 0.0, 1.0, true)
      .integer("epoch_coord", 10, "coordinate epochs per round (Step 2b)", 0)
      .number("ld_coord", 0.8, "lr factor before each coordinate epoch", 0.0, 1.0, true)
      .integer("epoch_prune", 1, "pruning epochs per round (Step 1)", 0)
      .choice("prune_rule", "paper", {"paper", "authors"},
              "paper (uniform decrease to target_bits) | authors (prune_rate, top_k)")
      .number("target_bits", 0.66, "I_min: average weight bits after the last pruning epoch (paper rule)", 0.0)
      .number("prune_rate", 0.4, "pr (authors' rule)", 0.0)
      .number("top_k", 0.002, "top_k (authors' rule)", 0.0, 1.0, true)
      .integer("ste_epochs", 50, "'STE with loss-aware' epochs after the rounds (Sec. 5.2)", 0)
      .number("ste_lr", 1e-3, "lr of the STE epochs", 0.0, inf, true)
      .number("ld_ste", 0.95, "lr factor before each STE epoch", 0.0, 1.0, true)
      .integer("final_coord_epochs", 20, "coordinate epochs after the STE epochs", 0)
      .number("ld_final_coord", 0.9, "lr factor before each final coordinate epoch", 0.0, 1.0, true)
      .choice("alpha_moments", "derived", {"derived", "tracked"},
              "alpha-domain AMSGrad moments: derived (the authors: re-derived from the w-domain ones after every "
              "basis/STE step) | tracked (updated from g_alpha at every step)")
      .choice("first_basis_target", "w_hat", {"w_hat", "pretrained"},
              "the point the run's first basis step moves from: w_hat (Eq. 19) | pretrained (the authors: the FP32 "
              "weight sketched from)")
      .choice("first_grouping", "channel", {"channel", "pixel", "kernel"}, "groups of the first conv")
      .choice("conv_grouping", "pixel", {"pixel", "channel", "kernel"}, "groups of the other convs")
      .choice("fc_grouping", "subchannel", {"subchannel", "channel"}, "groups of linear layers")
      .integer("fc_group_size", 512, "sub-channel group size (largest divisor of in_features <= this)", 1)
      .integer("calibrate_batches", 0,
               "BN statistics re-estimated over N training batches after every epoch (0 = off; not in the paper)", 0);
  return s;
}

struct Options {
  double lr, weight_decay;
  int64_t rounds, epoch_basis, epoch_coord, epoch_prune;
  double ld_basis, ld_coord;
  std::string prune_rule;
  double target_bits, prune_rate, top_k;
  int64_t ste_epochs;
  double ste_lr, ld_ste;
  int64_t final_coord_epochs;
  double ld_final_coord;
  std::string alpha_moments, first_basis_target;
  std::string first_grouping, conv_grouping, fc_grouping;
  int64_t fc_group_size;
  // BN statistics re-estimated over this many training batches after every epoch (0 = off, the
  // authors' code). Not in the paper: pruning changes the weights faster than the running
  // averages follow (nn/bn_recalibrate.hpp, docs/alq.md).
  int64_t calibrate_batches;

  int64_t round_epochs() const { return epoch_basis + epoch_coord + epoch_prune; }
  int64_t total_epochs() const { return rounds * round_epochs() + ste_epochs + final_coord_epochs; }

  // Reads the options (a partial object is completed with the schema's defaults; unknown
  // keys, wrong types and values out of range are errors naming the key).
  static Options from_json(const nlohmann::json& given) {
    const nlohmann::json j = option_schema().resolve(given, "alq");
    Options o;
    o.lr = j.at("lr").get<double>(), o.weight_decay = j.at("weight_decay").get<double>();
    o.rounds = j.at("rounds").get<int64_t>(), o.epoch_basis = j.at("epoch_basis").get<int64_t>(), o.epoch_coord = j.at("epoch_coord").get<int64_t>();
    o.epoch_prune = j.at("epoch_prune").get<int64_t>();
    o.ld_basis = j.at("ld_basis").get<double>(), o.ld_coord = j.at("ld_coord").get<double>();
    o.prune_rule = j.at("prune_rule").get<std::string>();
    o.target_bits = j.at("target_bits").get<double>(), o.prune_rate = j.at("prune_rate").get<double>(), o.top_k = j.at("top_k").get<double>();
    o.ste_epochs = j.at("ste_epochs").get<int64_t>();
    o.ste_lr = j.at("ste_lr").get<double>(), o.ld_ste = j.at("ld_ste").get<double>();
    o.final_coord_epochs = j.at("final_coord_epochs").get<int64_t>();
    o.ld_final_coord = j.at("ld_final_coord").get<double>();
    o.alpha_moments = j.at("alpha_moments").get<std::string>();
    o.first_basis_target = j.at("first_basis_target").get<std::string>();
    o.first_grouping = j.at("first_grouping").get<std::string>(), o.conv_grouping = j.at("conv_grouping").get<std::string>();
    o.fc_grouping = j.at("fc_grouping").get<std::string>();
    o.fc_group_size = j.at("fc_group_size").get<int64_t>();
    o.calibrate_batches = j.at("calibrate_batches").get<int64_t>();
    o.validate();
    return o;
  }

  // What the schema cannot check: the pipeline has at least one epoch.
  void validate() const { LOWBIT_CHECK(total_epochs() > 0, "config block 'alq': the pipeline has no epochs"); }
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

class AlqHooks : public MethodHooks {
 public:
  explicit AlqHooks(const nlohmann::json& options) : o_(Options::from_json(options)), ctl_(std::make_shared<Control>()) {
    ctl_->prune_rule = o_.prune_rule;
    ctl_->target_bits = o_.target_bits;
    ctl_->top_k = o_.top_k;
  }

  void begin_step(nn::Module& /*model*/, const StepContext& ctx) override {
    const EpochPlan p = plan_epoch(o_, ctx.epoch);
    const int64_t in_epoch = ctx.step - ctx.epoch * ctx.steps_per_epoch;
    ctl_->phase = p.phase;
    ctl_->lr = p.lr;
    ctl_->ste_start = p.first_ste_epoch && in_epoch == 0;
    ctl_->prune_iter = p.prune_epochs_before * ctx.steps_per_epoch + in_epoch;
    ctl_->prune_iters = std::max<int64_t>(1, o_.rounds * o_.epoch_prune * ctx.steps_per_epoch);
    ctl_->mp = (o_.prune_rate / o_.top_k) / static_cast<double>(std::max<int64_t>(1, o_.epoch_prune * ctx.steps_per_epoch));
    // The authors' rule removes M_p of the top_k proposals per step, so at most top_k of the
    // active coordinates: with M_p > 1 it prunes less than prune_rate per pruning epoch, a
    // silently different schedule (their top_k = 0.002 assumes about 350 steps per epoch).
    if (o_.prune_rule == "authors" && o_.rounds * o_.epoch_prune > 0)
      LOWBIT_CHECK(ctl_->mp <= 1.0, "config key 'alq.top_k' = ", o_.top_k, ": with ", ctx.steps_per_epoch,
                   " steps per epoch the authors' pruning rule needs top_k >= prune_rate / pruning steps = ",
                   o_.prune_rate / static_cast<double>(std::max<int64_t>(1, o_.epoch_prune * ctx.steps_per_epoch)),
                   " to prune prune_rate = ", o_.prune_rate, " per pruning epoch");
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
    oo.derived_alpha_moments = o_.alpha_moments == "derived";
    oo.first_basis_from_pretrained = o_.first_basis_target == "pretrained";
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
};

}  // namespace alq
}  // namespace quant
}  // namespace lowbit
