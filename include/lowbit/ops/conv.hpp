// 2-d convolution, NCHW, weight [O, C, KH, KW] (PyTorch's layout), stride, zero padding,
// optional bias. Kernels (fast AVX2 path + reference twin): kernels/conv.hpp.
// Row in docs/gradients.md.
#pragma once
#include <vector>

#include "../autograd/node.hpp"
#include "../kernels/conv.hpp"

namespace lowbit {

struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  static Conv2dOptions make(int64_t stride, int64_t pad) { return {stride, stride, pad, pad}; }
};

namespace detail {

// The kernel shape of conv2d(x, w, b, opt), with every argument checked.
template <class T>
kernels::ConvShape conv2d_shape(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, const Conv2dOptions& opt) {
  LOWBIT_CHECK(x.dim() == 4 && w.dim() == 4 && x.shape()[1] == w.shape()[1], "conv2d: input ",
               shape_str(x.shape()), " and weight ", shape_str(w.shape()),
               " do not match (expected [N, C, H, W] and [O, C, KH, KW])");
  LOWBIT_CHECK(opt.stride_h > 0 && opt.stride_w > 0 && opt.pad_h >= 0 && opt.pad_w >= 0,
               "conv2d: stride (", opt.stride_h, ", ", opt.stride_w, ") must be positive and padding (",
               opt.pad_h, ", ", opt.pad_w, ") non-negative");
  kernels::ConvShape s;
  s.N = x.shape()[0], s.C = x.shape()[1], s.H = x.shape()[2], s.W = x.shape()[3];
  s.O = w.shape()[0], s.KH = w.shape()[2], s.KW = w.shape()[3];
  s.SH = opt.stride_h, s.SW = opt.stride_w, s.PH = opt.pad_h, s.PW = opt.pad_w;
  LOWBIT_CHECK(s.H + 2 * s.PH >= s.KH && s.W + 2 * s.PW >= s.KW, "conv2d: kernel ", s.KH, "x", s.KW,
               " is larger than the padded input ", shape_str(x.shape()), " with padding (", s.PH,
               ", ", s.PW, ")");
  LOWBIT_CHECK(!b.defined() || b.shape() == Shape{s.O}, "conv2d: bias ", shape_str(b.shape()),
               " does not match weight ", shape_str(w.shape()), " (expected [", s.O, "])");
  return s;
}

// The backward of conv2d: {dx, dw, db}, each computed only when asked for (gx, gw, gb).
// x is needed for dw and db, w for dx.
template <class T>
std::vector<Tensor<T>> conv2d_grads(const kernels::ConvShape& s, const Tensor<T>& x, const Tensor<T>& w,
                                    const Tensor<T>& g, bool gx, bool gw, bool gb) {
  Tensor<T> dx, dw, db;
  if (gx) {
    dx = Tensor<T>::empty({s.N, s.C, s.H, s.W});
    kernels::conv2d_backward_input(s, g.data(), w.data(), dx.data(), /*accumulate=*/false);
  }
  if (gw || gb) {
    dw = Tensor<T>::zeros({s.O, s.C, s.KH, s.KW});
    if (gb) db = Tensor<T>::zeros({s.O});
    kernels::conv2d_backward_weight(s, x.data(), g.data(), dw.data(), gb ? db.data() : nullptr);
    if (!gw) dw = Tensor<T>();
  }
  return {dx, dw, db};
}

}  // namespace detail

// y[n, o] = sum_c x[n, c] (*) w[o, c] + b[o]   (cross-correlation, as every framework)
// dx = transposed convolution of dy with w;  dw[o, c] = sum_n x[n, c] (*) dy[n, o];  db = sum dy.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b = Tensor<T>(),
                 const Conv2dOptions& opt = {}) {
  const kernels::ConvShape s = detail::conv2d_shape(x, w, b, opt);
  Tensor<T> y = Tensor<T>::empty({s.N, s.O, s.OH(), s.OW()});
  kernels::conv2d_forward(s, x.data(), w.data(), b.defined() ? b.data() : nullptr, y.data());
  if (autograd::needs_grad({&x, &w, &b})) {
    const bool gx = x.requires_grad(), gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
    autograd::record(y, "conv2d", {&x, &w, &b},
                     [xd = (gw || gb) ? x.detach() : Tensor<T>(), wd = gx ? w.detach() : Tensor<T>(), s, gx, gw,
                      gb](const Tensor<T>& g) { return detail::conv2d_grads(s, xd, wd, g, gx, gw, gb); });
  }
  return y;
}

}  // namespace lowbit
