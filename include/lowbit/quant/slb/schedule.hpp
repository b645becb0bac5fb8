// SLB temperature schedules (Sec. 4.1, Fig. 1). The paper writes T = 1/tau for the
// "temperature factor" that multiplies the logits of Eq. 5; T rises from T_s to T_e so the
// distributions sharpen and the quantization gap (Eq. 9) closes (Theorem 1). At iteration
// i of I:
//   linear  T = T_s + i/I (T_e - T_s)
//   sin     T = T_s + sin(i pi / (2 I)) (T_e - T_s)
//   exp     T = T_s (T_e / T_s)^(i/I)                 (the paper's choice; T_s = 0.01, T_e = 10)
//   sgdr    the exp schedule restarted `periods` times: period p covers iterations
//           (p I/periods, (p+1) I/periods], each rising from T_s to T_e. The rebuttal's
//           answer to Reviewer #2 ("we warmup the temperature for three times", +0.3% on
//           VGG-Small 1/1); its exact shape is not published, so exp within each period is
//           our reading.
//   geometric  the authors' code (docs/notes/slb.md §3.3, MindSpore TemperatureScheduler): per
//           epoch e = 1..E, with e_s = int(E start_frac), e_e = int(E end_frac),
//           T = T_0 factor^(min(e, e_e) - e_s) if e > e_s else T_0,
//           defaults factor 1.2, start_frac 0.2, end_frac 0.6 (T_0 = slb_t_start here; the
//           port's default is 1.0). Its switch to hard one-hot training weights at e >= e_e
//           is not implemented (A would get no gradient from then on).
//
// Iterations: Algorithm 1 updates the temperature at the start of iteration i = 1..I, so
// the training step with 0-based index `step` uses i = step + 1: the last step trains at
// exactly T_e and the first at the first increment above T_s. Pure functions, no state;
// tests in tests/test_slb.cpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "../../core/error.hpp"

namespace lowbit {
namespace quant {

inline double slb_temperature_linear(int64_t i, int64_t I, double ts, double te) {
  return ts + static_cast<double>(i) / static_cast<double>(I) * (te - ts);
}
inline double slb_temperature_sin(int64_t i, int64_t I, double ts, double te) {
  return ts + std::sin(static_cast<double>(i) * 3.14159265358979323846 / (2.0 * static_cast<double>(I))) * (te - ts);
}
inline double slb_temperature_exp(int64_t i, int64_t I, double ts, double te) {
  return ts * std::pow(te / ts, static_cast<double>(i) / static_cast<double>(I));
}
// exp restarted `periods` times over I iterations (i = 1..I).
inline double slb_temperature_sgdr(int64_t i, int64_t I, double ts, double te, int periods) {
  const double len = static_cast<double>(I) / periods;
  // Period p holds the i with p len < i <= (p + 1) len.
  int64_t p = static_cast<int64_t>(std::ceil(static_cast<double>(i) / len)) - 1;
  p = std::max<int64_t>(0, std::min<int64_t>(p, periods - 1));
  const double local = (static_cast<double>(i) - static_cast<double>(p) * len) / len;
  return ts * std::pow(te / ts, local);
}
// The authors' epoch-wise geometric rule; e = 1-based epoch of E.
inline double slb_temperature_geometric(int64_t e, int64_t E, double t0, double factor, double start_frac,
                                        double end_frac) {
  const int64_t es = static_cast<int64_t>(static_cast<double>(E) * start_frac);
  const int64_t ee = static_cast<int64_t>(static_cast<double>(E) * end_frac);
  return e > es ? t0 * std::pow(factor, static_cast<double>(std::min(e, ee) - es)) : t0;
}

struct SlbSchedule {
  std::string kind = "exp";  // linear | sin | exp | sgdr | geometric
  double t_start = 0.01, t_end = 10.0;
  int periods = 3;           // sgdr
  double geo_factor = 1.2, geo_start = 0.2, geo_end = 0.6;  // geometric

  void validate() const {
    LOWBIT_CHECK(kind == "linear" || kind == "sin" || kind == "exp" || kind == "sgdr" || kind == "geometric",
                 "SLB option schedule: unknown schedule '", kind, "' (expected linear, sin, exp, sgdr or geometric)");
    LOWBIT_CHECK(t_start > 0 && std::isfinite(t_start), "SLB option t_start = ", t_start, ", expected > 0");
    LOWBIT_CHECK(t_end > 0 && std::isfinite(t_end), "SLB option t_end = ", t_end, ", expected > 0");
    LOWBIT_CHECK(periods >= 1, "SLB option periods = ", periods, ", expected >= 1");
    LOWBIT_CHECK(geo_factor > 0, "SLB option geo_factor = ", geo_factor, ", expected > 0");
    LOWBIT_CHECK(geo_start >= 0 && geo_start <= geo_end && geo_end <= 1, "SLB options geo_start = ", geo_start,
                 ", geo_end = ", geo_end, ": expected 0 <= geo_start <= geo_end <= 1");
  }
  // T = 1/tau for the training step with 0-based index `step` of `total_steps`.
  double temperature(int64_t step, int64_t total_steps, int64_t steps_per_epoch) const {
    LOWBIT_CHECK(total_steps > 0 && step >= 0 && step < total_steps, "SlbSchedule: step ", step,
                 " outside a run of ", total_steps, " steps");
    const int64_t i = step + 1;  // Algorithm 1's 1-based iteration
    if (kind == "linear") return slb_temperature_linear(i, total_steps, t_start, t_end);
    if (kind == "sin") return slb_temperature_sin(i, total_steps, t_start, t_end);
    if (kind == "sgdr") return slb_temperature_sgdr(i, total_steps, t_start, t_end, periods);
    if (kind == "geometric") {
      LOWBIT_CHECK(steps_per_epoch > 0, "SlbSchedule: geometric needs steps_per_epoch > 0");
      const int64_t epochs = (total_steps + steps_per_epoch - 1) / steps_per_epoch;
      return slb_temperature_geometric(step / steps_per_epoch + 1, epochs, t_start, geo_factor, geo_start, geo_end);
    }
    return slb_temperature_exp(i, total_steps, t_start, t_end);
  }
};

}  // namespace quant
}  // namespace lowbit
