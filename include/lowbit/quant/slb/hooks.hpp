// SLB's training-loop hooks (quant/method.hpp), i.e. Algorithm 1 around an ordinary loop:
//   begin_step  line 2: tau = 1/T from the temperature schedule (quant/slb/schedule.hpp),
//               set on every SlbWeight; with SBN the continuous BN statistics are swapped in
//               for the training forward (line 4);
//   end_step    line 5: the discrete pass of state batch-norm (quant/slb/sbn.hpp);
//   end_epoch   optional BN calibration with W_q, then the epoch's log values:
//                 tau                 the temperature of the epoch's last step
//                 mean_max_p          mean over all SLB weights of max_i P_i (Eq. 5)
//                 frac_max_p_gt_0999  fraction of them with max_i P_i > 0.999 (Sec. 3.3.2)
//                 gap_rel             ||W_q - W_c|| / ||W_c|| over all SLB weights (Eq. 9)
// Evaluation needs nothing from the hooks: eval mode makes SlbWeight give W_q and, with SBN,
// the BN buffers hold the discrete statistics between steps (line 8 of Algorithm 1).
//
// Options: slb_option_schema() below (config block "slb", e.g. --set slb.schedule=sin).
#pragma once
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "../../io/options.hpp"
#include "../method.hpp"
#include "slb.hpp"
#include "sbn.hpp"
#include "schedule.hpp"

namespace lowbit {
namespace quant {

// The options of method slb (config block "slb"); the schema is the one place their
// defaults, ranges and docs are written.
inline io::OptionSchema slb_option_schema() {
  const double inf = io::OptionSchema::kInf;
  io::OptionSchema s;
  s.choice("schedule", "exp", {"exp", "linear", "sin", "sgdr", "geometric"},
           "temperature T = 1/tau per step (SLB Sec. 4.1; sgdr: exp with warm restarts; geometric: the "
           "authors' per-epoch rule)")
      .number("t_start", 0.01, "T_s (geometric: its T_0)", 0.0, inf, true)
      .number("t_end", 10.0, "T_e", 0.0, inf, true)
      .integer("periods", 3, "sgdr: warm restarts of the temperature", 1)
      .number("geo_factor", 1.2, "geometric: T *= factor per epoch ...", 0.0, inf, true)
      .number("geo_start", 0.2, "... from this fraction of the epochs ...", 0.0, 1.0)
      .number("geo_end", 0.6, "... to this one", 0.0, 1.0)
      .boolean("sbn", true, "state batch-norm: discrete BN statistics from a no-grad W_q pass each step (SLB Sec. 3.3.2)")
      .integer("calibrate_batches", 0, "BN calibration with W_q after every epoch, in batches (0 = off)", 0)
      .boolean("integer_pass", true, "the discrete pass convolves integer codes where it can (false: float conv)")
      .choice("init", "kaiming", {"kaiming", "weight"},
              "logits A: kaiming | weight (favour the value nearest the initial float weight)")
      .choice("values", "unit", {"unit", "he", "he_rms"},
              "weight scale: unit (V in [-1, 1], the paper's, for networks with BN after every conv) | he (V times the "
              "layer's He factor h = sqrt(2 / fan_in)) | he_rms (W_c and W_q rescaled to a root mean square of h, "
              "whatever the temperature: networks without BN such as VDSR; docs/slb.md)");
  return s;
}

struct SlbOptions {
  SlbSchedule schedule;
  bool sbn;
  int64_t calibrate_batches;
  bool integer_pass;
  SlbInit init;
  SlbValues values;  // "values"

  // Reads the options (a partial object is completed with the schema's defaults; unknown
  // keys, wrong types and values out of range are errors naming the key).
  static SlbOptions from_json(const nlohmann::json& given) {
    const nlohmann::json j = slb_option_schema().resolve(given, "slb");
    SlbOptions o;
    o.schedule.kind = j.at("schedule").get<std::string>();
    o.schedule.t_start = j.at("t_start").get<double>();
    o.schedule.t_end = j.at("t_end").get<double>();
    o.schedule.periods = j.at("periods").get<int>();
    o.schedule.geo_factor = j.at("geo_factor").get<double>();
    o.schedule.geo_start = j.at("geo_start").get<double>();
    o.schedule.geo_end = j.at("geo_end").get<double>();
    o.sbn = j.at("sbn").get<bool>();
    o.calibrate_batches = j.at("calibrate_batches").get<int64_t>();
    o.integer_pass = j.at("integer_pass").get<bool>();
    o.init = parse_slb_init(j.at("init").get<std::string>());
    o.values = parse_slb_values(j.at("values").get<std::string>());
    o.schedule.validate();  // geo_start <= geo_end
    return o;
  }
};

class SlbHooks : public MethodHooks {
 public:
  explicit SlbHooks(const nlohmann::json& options) : opt_(SlbOptions::from_json(options)) {}

  void begin_step(nn::Module& model, const StepContext& ctx) override {
    const SlbModules mods = modules(model);
    const double T = opt_.schedule.temperature(ctx.step, ctx.total_steps, ctx.steps_per_epoch);
    for (auto* w : mods.weights) w->set_tau(1.0 / T);  // Algorithm 1, line 2
    if (opt_.sbn) sbn_.begin_step(mods);
  }
  void end_step(nn::Module& model, const Tensorf& images, const StepContext& /*ctx*/) override {
    if (opt_.sbn) sbn_.end_step(model, modules(model), images, opt_.integer_pass);  // Algorithm 1, line 5
  }
  nlohmann::json end_epoch(nn::Module& model, const BatchSource& train, int64_t /*epoch*/) override {
    const SlbModules mods = modules(model);
    nlohmann::json log = nlohmann::json::object();
    if (opt_.calibrate_batches > 0) log["calibrated_batches"] = slb_calibrate_bn(model, mods, train, opt_.calibrate_batches, opt_.integer_pass);
    SlbSharpness s;
    for (auto* w : mods.weights) s.add(w->sharpness());
    log["tau"] = mods.weights.empty() ? 0.0 : mods.weights.front()->tau();
    log["mean_max_p"] = s.weights ? s.sum_max_p / static_cast<double>(s.weights) : 0.0;
    log["frac_max_p_gt_0999"] = s.weights ? static_cast<double>(s.max_p_gt_0999) / static_cast<double>(s.weights) : 0.0;
    log["gap_rel"] = s.wc_sq > 0 ? std::sqrt(s.gap_sq / s.wc_sq) : 0.0;
    return log;
  }
  nlohmann::json state() const override { return {{"sbn_continuous", sbn_.state()}}; }
  void load_state(const nlohmann::json& s) override {
    if (s.contains("sbn_continuous")) sbn_.load_state(s.at("sbn_continuous"));
  }

  const SlbOptions& options() const { return opt_; }
  const StateBatchNorm& state_batch_norm() const { return sbn_; }

 private:
  // The model's SLB weights and BN layers; collected on every call (a few dozen
  // dynamic_casts, negligible next to a step) so no pointer into a model is kept.
  SlbModules modules(nn::Module& model) const { return slb_modules(model); }
  SlbOptions opt_;
  StateBatchNorm sbn_;
};

}  // namespace quant
}  // namespace lowbit
