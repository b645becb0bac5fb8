// Method "alq": Adaptive Loss-aware Quantization (Qu, Zhou, Cheng and Thiele, CVPR 2020).
// w_bits is I_max, the most binary bases a group may hold; a_bits < 32 quantizes layer
// inputs with {-1,+1} bases (quant/alq/activation.hpp). ALQ trains with its own optimizer
// and epoch plan (quant/alq/pipeline.hpp: basis / coordinate / pruning / STE epochs), so the
// trainer's lr, schedule and optimizer are not used and the run's epochs must equal the
// pipeline's length. It quantizes every layer by default, as the paper does. An FP32 run's
// weights are sketched into bases by --init-from (AlqWeight::load_float_weight). docs/alq.md.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../method.hpp"
#include "../registry.hpp"
#include "activation.hpp"
#include "pipeline.hpp"
#include "report.hpp"

namespace lowbit {
namespace quant {
namespace alq {

class AlqMethod : public Method {
 public:
  std::string name() const override { return "alq"; }
  std::string doc() const override {
    return "ALQ: per-group binary bases (w_bits = I_max) with loss-aware basis/coordinate steps and pruning";
  }
  io::OptionSchema options() const override { return option_schema(); }
  void validate(const QuantSpec& s) const override {
    LOWBIT_CHECK(s.w_bits >= 1 && s.w_bits <= 8, "config key 'w_bits' = ", s.w_bits,
                 ": method alq expects I_max 1..8, the most binary bases per group (6 for the CIFAR VGG, 8 for "
                 "ResNets)");
    LOWBIT_CHECK((s.a_bits >= 1 && s.a_bits <= 8) || s.a_bits == 32, "config key 'a_bits' = ", s.a_bits,
                 ": method alq expects 1..8 or 32");
    Options::from_json(s.options);
  }
  void check_epochs(const QuantSpec& s, int64_t epochs) const override {
    const Options o = Options::from_json(s.options);
    LOWBIT_CHECK(epochs == o.total_epochs(), "config key 'epochs' = ", epochs,
                 ", but the ALQ pipeline (alq.rounds, alq.epoch_*, alq.ste_epochs, alq.final_coord_epochs) has ",
                 o.total_epochs(), " epochs");
  }
  LayerPolicy default_policy(nn::LayerRole) const override { return LayerPolicy::Same; }
  std::shared_ptr<WeightQuantizer> make_weight(const Tensorf& init, int bits, nn::LayerRole role,
                                               const QuantSpec& s) const override {
    return alq::make_weight(init, role, s.options, bits);
  }
  std::shared_ptr<ActivationQuantizer> make_activation(int bits, nn::LayerRole, const QuantSpec&) const override {
    return std::make_shared<AlqActivation>(bits);
  }
  std::unique_ptr<MethodHooks> make_hooks(const QuantSpec& s) const override {
    return std::make_unique<AlqHooks>(s.options);
  }
  // ALQ's accounting per layer and overall (quant/alq/report.hpp).
  nlohmann::json summary(const nn::Module& model, const QuantSpec&) const override {
    return {{"alq", report(model).to_json()}};
  }
  std::vector<ReportPlot> report_plots() const override {
    return {{"Average weight bits (ALQ Sec. 3.1)", "bits", {"alq_avg_bits"}, false},
            {"Weight compression vs FP32", "ratio", {"alq_compression_ratio"}, false}};
  }
  std::string lr_metric() const override { return "alq_lr"; }
};

inline const bool registered = register_method(std::make_shared<AlqMethod>());

}  // namespace alq
}  // namespace quant
}  // namespace lowbit
