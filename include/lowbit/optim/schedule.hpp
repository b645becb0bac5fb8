// Learning-rate schedules as pure functions of the global step (0-based), so a resumed run
// gets exactly the rate an uninterrupted one would, with no scheduler state to save.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace lowbit {
namespace optim {

struct Schedule {
  enum class Kind { Constant, MultiStep, Cosine, Exponential };
  Kind kind = Kind::Constant;
  double base_lr = 0.1;
  int64_t warmup_steps = 0;        // linear warmup (all kinds): lr * (step + 1) / warmup_steps
  int64_t total_steps = 1;         // Cosine: decays to final_lr at total_steps
  double final_lr = 0.0;           // Cosine
  std::vector<int64_t> milestones; // MultiStep: multiply by gamma at each milestone step
  double gamma = 0.1;              // MultiStep and Exponential factor
  int64_t steps_per_decay = 1;     // Exponential: lr * gamma^(floor(step / steps_per_decay))

  double lr_at(int64_t step) const {
    LOWBIT_CHECK(step >= 0, "Schedule::lr_at: negative step ", step);
    if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    switch (kind) {
      case Kind::Constant:
        return base_lr;
      case Kind::MultiStep: {
        double lr = base_lr;
        for (int64_t m : milestones)
          if (step >= m) lr *= gamma;
        return lr;
      }
      case Kind::Cosine: {
        const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
        const double t = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
        return final_lr + (base_lr - final_lr) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * t));
      }
      case Kind::Exponential:
        return base_lr * std::pow(gamma, static_cast<double>(step / std::max<int64_t>(1, steps_per_decay)));
    }
    return base_lr;
  }

  static Kind parse_kind(const std::string& s) {
    if (s == "constant") return Kind::Constant;
    if (s == "multistep") return Kind::MultiStep;
    if (s == "cosine") return Kind::Cosine;
    if (s == "exp" || s == "exponential") return Kind::Exponential;
    detail::fail("schedule: unknown kind '", s, "' (expected constant, multistep, cosine or exp)");
  }
};

}  // namespace optim
}  // namespace lowbit
