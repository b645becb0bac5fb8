// conv2d(aq(x), w, b) that keeps x, not aq(x), for the backward and quantizes x again there.
//
// Why: in a quantized network the input x of a middle conv is the output of a fused
// BN + ReLU or add + ReLU, which those ops keep anyway for their own backward. Keeping x
// costs nothing more; keeping the quantized copy aq(x) (what conv2d(aq(x), w, b) does, since
// dL/dw needs its input) costs one more activation-sized tensor per layer from the forward
// to the backward: 94 MB in a ResNet-20 batch-128 step, half again FP32's live memory
// (docs/performance.md, "SLB: the cost of the search"). The price is one elementwise pass of aq per layer in
// the backward.
//
// The gradients are the same numbers as those of conv2d(aq(x), w, b), bit for bit: the
// backward recomputes aq(x) under autograd (so dL/dx and the quantizer's own parameter
// gradients, e.g. PACT's or APoT's alpha, come from aq's recorded backward exactly as in
// the unfused graph), takes dL/d aq(x), dL/dw and dL/db from the same conv kernels
// (lowbit::detail::conv2d_grads in ops/conv.hpp), then runs aq's little graph backward with
// dL/d aq(x). aq's parameters are leaves, so their gradients accumulate into .grad() there.
// This is only right when aq is a pure function of x and its parameters (no running
// statistics updated in the forward): ActivationQuantizer::pure(). QConv2d uses it then.
// In a profile (autograd/profiler.hpp) this node's backward time includes aq's recomputed
// forward and its backward, which are also listed under their own names.
//
// Row in docs/gradients.md ("conv2d_requantized"); test in tests/test_quant_ops.cpp.
#pragma once
#include <memory>
#include <vector>

#include "../autograd/backward.hpp"
#include "../autograd/grad_mode.hpp"
#include "../ops/conv.hpp"
#include "quantizer.hpp"

namespace lowbit {
namespace quant {

inline Tensorf conv2d_requantized(const Tensorf& x, const std::shared_ptr<ActivationQuantizer>& aq, const Tensorf& w,
                                  const Tensorf& b = Tensorf(), const Conv2dOptions& opt = {}) {
  LOWBIT_CHECK(aq != nullptr, "conv2d_requantized: no activation quantizer (use conv2d)");
  LOWBIT_CHECK(aq->pure(), "conv2d_requantized: the ", aq->type_name(),
               " activation quantizer is not pure (its forward updates state), so it cannot be recomputed "
               "in the backward; use conv2d((*aq)(x), w, b)");
  bool aq_grad = false;
  for (const Tensorf& p : aq->parameters()) aq_grad = aq_grad || p.requires_grad();
  const bool record = is_grad_enabled() && (aq_grad || autograd::needs_grad({&x, &w, &b}));
  if (!record) return conv2d((*aq)(x), w, b, opt);

  const kernels::ConvShape s = lowbit::detail::conv2d_shape(x, w, b, opt);
  Tensorf y;
  {
    NoGradGuard no_grad;  // aq(x) lives only until the convolution has read it
    y = conv2d((*aq)(x), w, b, opt);
  }
  const bool gx = x.requires_grad(), gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
  autograd::record(y, "conv2d_requantized", {&x, &w, &b},
                   [xd = x.detach(), wd = w.detach(), aq, s, gx, gw, gb](const Tensorf& g) {
                     Tensorf xr = xd.detach();
                     if (gx) xr.set_requires_grad(true);
                     Tensorf xq;
                     {
                       EnableGradGuard grad_on;  // records aq's graph (input xr, aq's parameters)
                       xq = (*aq)(xr);
                     }
                     const bool gq = xq.requires_grad();
                     std::vector<Tensorf> d = lowbit::detail::conv2d_grads(s, xq, wd, g, gq, gw, gb);
                     Tensorf dx;
                     if (gq) {
                       xq.backward(d[0]);  // dL/dx into xr.grad(), dL/dalpha into aq's parameters
                       if (gx) dx = xr.grad();
                     }
                     return std::vector<Tensorf>{dx, d[1], d[2]};
                   });
  return y;
}

}  // namespace quant
}  // namespace lowbit
