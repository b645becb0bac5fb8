// SLB's training-loop hooks (quant/method.hpp), i.e. Algorithm 1 around an ordinary loop:
//   begin_step  line 2: tau = 1/T from the temperature schedule (quant/slb_schedule.hpp),
//               set on every SlbWeight; with SBN the continuous BN statistics are swapped in
//               for the training forward (line 4);
//   end_step    line 5: the discrete pass of state batch-norm (quant/slb_sbn.hpp);
//   end_epoch   optional BN calibration with W_q, then the epoch's log values:
//                 tau                 the temperature of the epoch's last step
//                 mean_max_p          mean over all SLB weights of max_i P_i (Eq. 5)
//                 frac_max_p_gt_0999  fraction of them with max_i P_i > 0.999 (Sec. 3.3.2)
//                 gap_rel             ||W_q - W_c|| / ||W_c|| over all SLB weights (Eq. 9)
// Evaluation needs nothing from the hooks: eval mode makes SlbWeight give W_q and, with SBN,
// the BN buffers hold the discrete statistics between steps (line 8 of Algorithm 1).
//
// Options (QuantSpec::options; train_cifar's config keys slb_<name>), with defaults:
//   schedule "exp"   linear | sin | exp | sgdr | geometric (slb_schedule.hpp)
//   t_start 0.01, t_end 10.0          T_s and T_e (Sec. 4.1)
//   periods 3                          sgdr restarts (rebuttal)
//   geo_factor 1.2, geo_start 0.2, geo_end 0.6   the authors' geometric rule (method-notes §3.3)
//   sbn true                           state batch-norm (false: the rebuttal's "w/o SBN")
//   calibrate_batches 0                BN calibration batches after every epoch (0 = off)
//   integer_pass true                  the discrete pass (SBN, calibration) convolves integer
//                                      codes where it can (quant/integer_conv.hpp); false
//                                      keeps the float conv (same values up to rounding)
//   init "kaiming"                     kaiming | weight (SlbWeight: logits from the layer's
//                                      initial float weight, nearest value favoured)
#pragma once
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "method.hpp"
#include "slb.hpp"
#include "slb_sbn.hpp"
#include "slb_schedule.hpp"

namespace lowbit {
namespace quant {

struct SlbOptions {
  SlbSchedule schedule;
  bool sbn = true;
  int64_t calibrate_batches = 0;
  bool integer_pass = true;
  SlbInit init = SlbInit::Kaiming;

  // Reads the options with their defaults; unknown keys and wrong types are errors.
  static SlbOptions from_json(const nlohmann::json& j) {
    LOWBIT_CHECK(j.is_object(), "SLB options must be a JSON object, got ", j.dump());
    SlbOptions o;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const nlohmann::json& v = it.value();
      auto number = [&]() {
        LOWBIT_CHECK(v.is_number(), "SLB option ", k, " must be a number, got ", v.dump());
        return v.get<double>();
      };
      auto integer = [&]() {
        LOWBIT_CHECK(v.is_number_integer(), "SLB option ", k, " must be an integer, got ", v.dump());
        return v.get<int64_t>();
      };
      auto text = [&]() {
        LOWBIT_CHECK(v.is_string(), "SLB option ", k, " must be a string, got ", v.dump());
        return v.get<std::string>();
      };
      if (k == "schedule") o.schedule.kind = text();
      else if (k == "t_start") o.schedule.t_start = number();
      else if (k == "t_end") o.schedule.t_end = number();
      else if (k == "periods") o.schedule.periods = static_cast<int>(integer());
      else if (k == "geo_factor") o.schedule.geo_factor = number();
      else if (k == "geo_start") o.schedule.geo_start = number();
      else if (k == "geo_end") o.schedule.geo_end = number();
      else if (k == "sbn") {
        LOWBIT_CHECK(v.is_boolean(), "SLB option sbn must be true or false, got ", v.dump());
        o.sbn = v.get<bool>();
      } else if (k == "integer_pass") {
        LOWBIT_CHECK(v.is_boolean(), "SLB option integer_pass must be true or false, got ", v.dump());
        o.integer_pass = v.get<bool>();
      } else if (k == "calibrate_batches") o.calibrate_batches = integer();
      else if (k == "init") o.init = parse_slb_init(text());
      else
        lowbit::detail::fail("SLB options: unknown option '", k,
                             "' (expected schedule, t_start, t_end, periods, geo_factor, geo_start, geo_end, sbn, "
                             "calibrate_batches, integer_pass or init)");
    }
    o.schedule.validate();
    LOWBIT_CHECK(o.calibrate_batches >= 0, "SLB option calibrate_batches = ", o.calibrate_batches, ", expected >= 0");
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
