// Gradient checker. Compares backward() with central differences, in double:
//
//   L(x) = sum_i c_i f(x)_i            with a random cotangent c (so every output counts),
//   numeric dL/dx_j = (L(x + h e_j) - L(x - h e_j)) / 2h,
//   pass when |analytic - numeric| <= atol + rtol |numeric| for every checked element.
//
// It also proves that backward *adds* into existing gradients: each input's .grad is
// pre-seeded with random values, and the check is on (grad after - seed).
// Ops that are not smooth everywhere (relu, max, abs) must be checked away from their
// kinks; the caller chooses inputs accordingly.
#pragma once
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "../core/compare.hpp"
#include "backward.hpp"

namespace lowbit {

struct GradcheckOptions {
  double eps = 1e-6;       // finite-difference step
  double rtol = 1e-5;
  double atol = 1e-7;
  uint64_t seed = 1234;    // cotangent and pre-seeded gradients
  int64_t max_elements = 2000;  // per input; beyond this a random subset is checked
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_err = 0, max_rel_err = 0;
  std::string report;  // the worst element of each input, and why it failed
};

// f maps the inputs to one output tensor; inputs with requires_grad are checked.
inline GradcheckResult gradcheck(
    const std::function<Tensor<double>(const std::vector<Tensor<double>>&)>& f,
    std::vector<Tensor<double>> inputs, const GradcheckOptions& opt = {}) {
  GradcheckResult res;
  std::ostringstream rep;
  Generator gen(opt.seed);

  Tensor<double> y0;
  {
    EnableGradGuard grad_on;
    y0 = f(inputs);
  }
  LOWBIT_CHECK(y0.requires_grad(), "gradcheck: the output (shape ", shape_str(y0.shape()),
               ") does not require grad; mark at least one input with set_requires_grad()");
  const Tensor<double> cot = Tensor<double>::randn(y0.shape(), gen);

  // Pre-seed every gradient: backward must add to it, not overwrite it.
  std::vector<Tensor<double>> seeds(inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].requires_grad()) continue;
    seeds[k] = Tensor<double>::randn(inputs[k].shape(), gen);
    inputs[k].set_grad(seeds[k].clone());
  }
  y0.backward(cot);

  auto loss = [&](const std::vector<Tensor<double>>& xs) {
    NoGradGuard no_grad;
    Tensor<double> y = f(xs);
    LOWBIT_CHECK(y.shape() == cot.shape(), "gradcheck: output shape changed from ",
                 shape_str(cot.shape()), " to ", shape_str(y.shape()), " when an input moved");
    double s = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s += y.data()[i] * cot.data()[i];
    return s;
  };

  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].requires_grad()) continue;
    Tensor<double> g = inputs[k].grad();
    if (!g.defined()) {
      res.ok = false;
      rep << "input " << k << " " << shape_str(inputs[k].shape()) << ": backward left no gradient\n";
      continue;
    }
    // Work on a detached copy so the perturbation does not touch the caller's tensor.
    std::vector<Tensor<double>> xs = inputs;
    Tensor<double> xk = inputs[k].detach().clone();
    xs[k] = xk;
    const int64_t n = xk.numel();
    std::vector<int64_t> idx;
    if (n <= opt.max_elements) {
      for (int64_t j = 0; j < n; ++j) idx.push_back(j);
    } else {
      for (int64_t j = 0; j < opt.max_elements; ++j) idx.push_back(static_cast<int64_t>(gen.randint(n)));
    }
    double worst_excess = -1, w_an = 0, w_nu = 0;
    int64_t w_j = -1;
    for (int64_t j : idx) {
      double* p = xk.data() + j;
      const double orig = *p;
      *p = orig + opt.eps;
      const double lp = loss(xs);
      *p = orig - opt.eps;
      const double lm = loss(xs);
      *p = orig;
      const double numeric = (lp - lm) / (2 * opt.eps);
      const double analytic = g.data()[j] - seeds[k].data()[j];
      const double abs_err = std::abs(analytic - numeric);
      const double rel_err = abs_err / std::max(std::abs(numeric), 1e-300);
      const double excess = abs_err - (opt.atol + opt.rtol * std::abs(numeric));
      res.max_abs_err = std::max(res.max_abs_err, abs_err);
      if (abs_err > opt.atol) res.max_rel_err = std::max(res.max_rel_err, rel_err);
      if (!(excess <= 0)) res.ok = false;
      if (excess > worst_excess || w_j < 0 || std::isnan(excess)) {
        worst_excess = excess;
        w_j = j;
        w_an = analytic;
        w_nu = numeric;
      }
    }
    if (w_j >= 0) {
      // Multi-index of the worst element, for the report.
      Shape mi(inputs[k].shape().size());
      int64_t r = w_j;
      for (int64_t d = static_cast<int64_t>(mi.size()) - 1; d >= 0; --d) {
        const int64_t s = inputs[k].shape()[static_cast<size_t>(d)];
        mi[static_cast<size_t>(d)] = s ? r % s : 0;
        r = s ? r / s : 0;
      }
      rep << "input " << k << " " << shape_str(inputs[k].shape()) << ": worst element "
          << shape_str(mi) << " analytic " << w_an << " numeric " << w_nu << " abs err "
          << std::abs(w_an - w_nu) << (worst_excess > 0 || std::isnan(worst_excess) ? "  FAIL" : "  ok")
          << " (" << idx.size() << " of " << n << " elements checked)\n";
    }
  }
  res.report = rep.str();
  return res;
}

}  // namespace lowbit
