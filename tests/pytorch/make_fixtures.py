#!/usr/bin/python3
"""Write PyTorch reference fixtures for lowbit's parity test (tests/pytorch/parity.cpp).

    /usr/bin/python3 tests/pytorch/make_fixtures.py OUTPUT_DIR

(Debian's python3-torch is importable only from /usr/bin/python3.) ctest runs this as the
`pytorch_fixtures` test before `pytorch_parity`; the fixtures are generated at test time and
never committed.

For every case: seeded float32 inputs, a seeded random cotangent `cotangent` of the output's
shape, and what PyTorch computes from them: the forward output `y` and the gradients
`grad_<input>` of <y, cotangent> (i.e. y.backward(cotangent)) with respect to every input and
parameter. Batch-norm cases in training also store the updated running statistics.

File format (OUTPUT_DIR/<case>.bin), read by tests/pytorch/parity.cpp:
  line 1:  one line of JSON, no newline inside:
           {"name": ..., "op": ..., "attrs": {...},
            "tensors": [{"name": "x", "shape": [2, 3, 7, 7]}, ...]}
  then:    the tensors' float32 little-endian row-major data, back to back, in that order.
OUTPUT_DIR/manifest.json lists the cases: {"torch_version": ..., "cases": [names]}.
"""
import json
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    sys.exit(f"make_fixtures: cannot import torch with {sys.executable} ({e}). Install PyTorch "
             "(Debian: apt-get install python3-torch, then use /usr/bin/python3) or point CMake's "
             "LOWBIT_PYTORCH_PYTHON at a python that has it.")

FORMAT_VERSION = 1


class Writer:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.names = []

    def case(self, name, op, attrs, inputs, outputs, grads):
        """inputs/outputs/grads: dicts name -> tensor (grads are stored as grad_<name>)."""
        assert name not in self.names, f"duplicate case name {name}"
        tensors = list(inputs.items()) + list(outputs.items())
        tensors += [("grad_" + k, v) for k, v in grads.items()]
        header = {
            "format": FORMAT_VERSION,
            "name": name,
            "op": op,
            "attrs": attrs,
            "tensors": [{"name": k, "shape": list(v.shape)} for k, v in tensors],
        }
        with open(os.path.join(self.out_dir, name + ".bin"), "wb") as f:
            f.write(json.dumps(header).encode("ascii") + b"\n")
            for _, v in tensors:
                f.write(v.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes())
        self.names.append(name)

    def finish(self):
        manifest = {"format": FORMAT_VERSION, "torch_version": torch.__version__, "cases": self.names}
        with open(os.path.join(self.out_dir, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)


# Each case also runs in float64 from the same (float32-representable) inputs. If PyTorch's
# own float32 result is not within CONDITIONING_TOL of that, the case is ill-conditioned in
# float32 (e.g. batch norm over 2 values, whose input gradient is pure rounding noise) and
# comparing two float32 implementations on it would test nothing: the script refuses it.
CONDITIONING_TOL = 1e-5


def rel_err(a, b):
    """The parity test's metric: max |a - b| / max(max |b|, 1e-30)."""
    return float((a.double() - b.double()).abs().max() / max(float(b.double().abs().max()), 1e-30))


def forward_backward(fn, inputs, grad_names, cot, dtype):
    leaves = {k: v.detach().clone().to(dtype).requires_grad_(k in grad_names) for k, v in inputs.items()}
    y = fn(**leaves)
    y.backward(cot.to(dtype))
    grads = {k: leaves[k].grad for k in grad_names}
    for k, g in grads.items():
        assert g is not None, f"no gradient reached {k}"
    return y.detach(), grads, {k: v.detach() for k, v in leaves.items()}


def run(name, fn, inputs, grad_names, gen):
    """y = fn(**inputs) and y.backward(cotangent) in float32 with a seeded random cotangent;
    gradients for grad_names. Returns (inputs incl. cotangent, y, grads, inputs after the call
    (batch norm updates its running stats in place))."""
    with torch.no_grad():
        y_shape = fn(**{k: v.clone() for k, v in inputs.items()}).shape
    cot = torch.randn(y_shape, generator=gen, dtype=torch.float32)
    y, grads, after = forward_backward(fn, inputs, grad_names, cot, torch.float32)
    y64, grads64, after64 = forward_backward(fn, inputs, grad_names, cot, torch.float64)
    checks = [("y", y, y64)] + [("grad_" + k, grads[k], grads64[k]) for k in grads]
    checks += [(k, after[k], after64[k]) for k in after if k.startswith("running_")]
    for what, a, b in checks:
        err = rel_err(a, b)
        if not err <= CONDITIONING_TOL:
            sys.exit(f"make_fixtures: case {name}: PyTorch float32 {what} is {err:.2e} away from float64 "
                     f"(> {CONDITIONING_TOL}); the case is ill-conditioned in float32, pick other shapes/values")
    stored_inputs = dict(inputs)
    stored_inputs["cotangent"] = cot
    return stored_inputs, y, grads, after


def randn(gen, *shape, scale=1.0):
    return torch.randn(*shape, generator=gen, dtype=torch.float32) * scale


def uniform(gen, lo, hi, *shape):
    return torch.rand(*shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo


def with_exact_values(gen, x, values):
    """Overwrite a few random positions of x with exact values (kinks, clamp boundaries)."""
    flat = x.reshape(-1)
    idx = torch.randperm(flat.numel(), generator=gen)[: 2 * len(values)]
    for i, j in enumerate(idx.tolist()):
        flat[j] = values[i % len(values)]
    return x


def conv_cases(out, gen):
    # (name, x shape [N,C,H,W], weight shape [O,C,KH,KW], bias?, stride (h,w), pad (h,w))
    specs = [
        ("conv2d_3x3_s1_p1_bias", (2, 3, 7, 7), (4, 3, 3, 3), True, (1, 1), (1, 1)),
        ("conv2d_3x3_s2_p0_batch1_c5", (1, 5, 9, 8), (6, 5, 3, 3), False, (2, 2), (0, 0)),
        ("conv2d_3x3_s2_p1_c16", (2, 16, 8, 8), (16, 16, 3, 3), False, (2, 2), (1, 1)),
        ("conv2d_1x1_s1_c10_o12_bias", (3, 10, 5, 6), (12, 10, 1, 1), True, (1, 1), (0, 0)),
        ("conv2d_1x1_s2_c17_o9", (2, 17, 7, 7), (9, 17, 1, 1), False, (2, 2), (0, 0)),
        ("conv2d_3x3_s1_p1_c3_o16_32x32", (2, 3, 32, 32), (16, 3, 3, 3), False, (1, 1), (1, 1)),
        ("conv2d_3x3_s1_p1_c20_o24_odd", (1, 20, 11, 13), (24, 20, 3, 3), True, (1, 1), (1, 1)),
        ("conv2d_5x3_s2x1_p2x0_asym", (2, 3, 11, 6), (7, 3, 5, 3), True, (2, 1), (2, 0)),
        ("conv2d_kernel_covers_input", (2, 4, 3, 3), (5, 4, 3, 3), True, (1, 1), (0, 0)),
        ("conv2d_3x3_s1_p1_c13_o30_16x16", (2, 13, 16, 16), (30, 13, 3, 3), True, (1, 1), (1, 1)),
        ("conv2d_3x3_s2_p1_c32_o64_odd15", (2, 32, 15, 15), (64, 32, 3, 3), False, (2, 2), (1, 1)),
    ]
    for name, xs, ws, bias, (sh, sw), (ph, pw) in specs:
        inputs = {"x": randn(gen, *xs), "w": randn(gen, *ws, scale=0.3)}
        if bias:
            inputs["b"] = randn(gen, ws[0])
        names = list(inputs)
        ins, y, grads, _ = run(
            name, lambda x, w, b=None: F.conv2d(x, w, b, stride=(sh, sw), padding=(ph, pw)), inputs, names, gen)
        attrs = {"stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw}
        out.case(name, "conv2d", attrs, ins, {"y": y}, grads)


def linear_cases(out, gen):
    specs = [("linear_4x7_o5_bias", 4, 7, 5, True), ("linear_batch1_no_bias", 1, 9, 3, False),
             ("linear_6x64_o10_bias", 6, 64, 10, True), ("linear_128x33_o17", 128, 33, 17, False)]
    for name, n, i, o, bias in specs:
        inputs = {"x": randn(gen, n, i), "w": randn(gen, o, i, scale=0.3)}
        if bias:
            inputs["b"] = randn(gen, o)
        ins, y, grads, _ = run(name, lambda x, w, b=None: F.linear(x, w, b), inputs, list(inputs), gen)
        out.case(name, "linear", {}, ins, {"y": y}, grads)


def batch_norm_cases(out, gen):
    specs = [  # name, x shape, training, affine
        ("batch_norm_2d_train", (8, 5), True, True),
        ("batch_norm_2d_eval", (8, 5), False, True),
        # Smallest well-conditioned training batch: with 2 values per channel the input
        # gradient is 0 up to eps, i.e. rounding noise (run() refuses such a case).
        ("batch_norm_2d_train_batch3", (3, 3), True, True),
        ("batch_norm_4d_train", (2, 3, 5, 7), True, True),
        ("batch_norm_4d_eval", (2, 3, 5, 7), False, True),
        ("batch_norm_4d_train_batch1_c6", (1, 6, 3, 3), True, True),
        ("batch_norm_4d_train_no_affine", (4, 10, 4, 4), True, False),
        ("batch_norm_4d_eval_no_affine", (3, 4, 2, 3), False, False),
        ("batch_norm_4d_train_large", (4, 16, 24, 24), True, True),  # > kParallelGrain: OpenMP path
    ]
    momentum, eps = 0.1, 1e-5
    for name, xs, training, affine in specs:
        c = xs[1]
        # An offset and scale per channel, so normalization does visible work.
        shift = randn(gen, c, scale=2.0).reshape((1, c) + (1,) * (len(xs) - 2))
        inputs = {"x": randn(gen, *xs, scale=1.5) + shift}
        if affine:
            inputs["gamma"] = uniform(gen, 0.5, 1.5, c)
            inputs["beta"] = randn(gen, c, scale=0.5)
        inputs["running_mean"] = randn(gen, c, scale=0.5)
        inputs["running_var"] = uniform(gen, 0.5, 2.0, c)
        grad_names = ["x"] + (["gamma", "beta"] if affine else [])

        def fn(x, running_mean, running_var, gamma=None, beta=None):
            # run() passes clones; the updated buffers come back in its 4th result.
            return F.batch_norm(x, running_mean, running_var, gamma, beta, training=training,
                                momentum=momentum, eps=eps)

        ins, y, grads, after = run(name, fn, inputs, grad_names, gen)
        outputs = {"y": y, "running_mean_out": after["running_mean"], "running_var_out": after["running_var"]}
        attrs = {"training": training, "momentum": momentum, "eps": eps}
        out.case(name, "batch_norm", attrs, ins, outputs, grads)


def pool_cases(out, gen):
    specs = [  # name suffix, x shape, kh, kw, sh, sw
        ("2x2_s2", (2, 3, 8, 8), 2, 2, 2, 2),
        ("3x3_s2_odd_batch1", (1, 5, 7, 9), 3, 3, 2, 2),
        ("3x3_s1_overlap", (2, 4, 6, 6), 3, 3, 1, 1),
        ("2x3_s1x2", (2, 3, 7, 8), 2, 3, 1, 2),
        ("2x2_s2_odd_size", (3, 6, 5, 7), 2, 2, 2, 2),
        ("2x2_s2_large", (4, 16, 32, 32), 2, 2, 2, 2),  # > kParallelGrain elements: OpenMP path
    ]
    for op, fn in (("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)):
        for suffix, xs, kh, kw, sh, sw in specs:
            name = f"{op}_{suffix}"
            ins, y, grads, _ = run(name, lambda x: fn(x, (kh, kw), (sh, sw)), {"x": randn(gen, *xs)}, ["x"], gen)
            attrs = {"kh": kh, "kw": kw, "sh": sh, "sw": sw}
            out.case(name, op, attrs, ins, {"y": y}, grads)
    for suffix, xs in (("2x5x7x7", (2, 5, 7, 7)), ("1x3x1x1", (1, 3, 1, 1)), ("3x8x4x5", (3, 8, 4, 5)), ("large", (4, 16, 32, 32))):
        name = f"global_avg_pool2d_{suffix}"
        ins, y, grads, _ = run(name, lambda x: x.mean(dim=(2, 3)), {"x": randn(gen, *xs)}, ["x"], gen)
        out.case(name, "global_avg_pool2d", {}, ins, {"y": y}, grads)


def activation_cases(out, gen):
    for name, shape in (("relu_with_zeros", (3, 4, 5)), ("relu_with_zeros_large", (4, 16, 32, 32))):
        x = with_exact_values(gen, randn(gen, *shape), [0.0])
        ins, y, grads, _ = run(name, lambda x: F.relu(x), {"x": x}, ["x"], gen)
        out.case(name, "relu", {}, ins, {"y": y}, grads)
    # Exact boundary values: hardtanh's gradient is 0 on them, clamp's is 1.
    for op, fn in (("hardtanh", F.hardtanh), ("clamp", torch.clamp)):
        for suffix, lo, hi, shape in (("m1_1", -1.0, 1.0, (4, 6, 5)), ("m0p5_2", -0.5, 2.0, (2, 3, 3, 3)),
                                      ("0_6", 0.0, 6.0, (7, 9))):
            x = with_exact_values(gen, randn(gen, *shape, scale=2.0 if hi > 1 else 1.5), [lo, hi])
            name = f"{op}_{suffix}"
            ins, y, grads, _ = run(name, lambda x: fn(x, lo, hi), {"x": x}, ["x"], gen)
            out.case(name, op, {"lo": lo, "hi": hi}, ins, {"y": y}, grads)


def softmax_cases(out, gen):
    specs = [("4x10_axis_last", (4, 10), -1), ("4x10_axis0", (4, 10), 0),
             ("2x3x4_axis1", (2, 3, 4), 1), ("1x5x3x2_axis3", (1, 5, 3, 2), 3), ("3x1_axis1", (3, 1), 1),
             ("512x100_axis_last_large", (512, 100), -1)]
    for op, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        for suffix, shape, axis in specs:
            name = f"{op}_{suffix}"
            ins, y, grads, _ = run(name, lambda x: fn(x, dim=axis), {"x": randn(gen, *shape, scale=3.0)}, ["x"],
                                   gen)
            out.case(name, op, {"axis": axis}, ins, {"y": y}, grads)


def cross_entropy_cases(out, gen):
    for name, n, k, smoothing in (("cross_entropy_8x10", 8, 10, 0.0), ("cross_entropy_5x7_smooth0p1", 5, 7, 0.1),
                                  ("cross_entropy_batch1_smooth0p2", 1, 3, 0.2),
                                  ("cross_entropy_32x100_smooth0p05", 32, 100, 0.05),
                                  ("cross_entropy_512x100_large", 512, 100, 0.1)):
        labels = torch.randint(0, k, (n,), generator=gen)
        ins, y, grads, _ = run(name, lambda logits: F.cross_entropy(logits, labels, label_smoothing=smoothing),
                               {"logits": randn(gen, n, k, scale=2.0)}, ["logits"], gen)
        attrs = {"labels": labels.tolist(), "label_smoothing": smoothing}
        out.case(name, "cross_entropy", attrs, ins, {"y": y}, grads)


class _ResNet20(torch.nn.Module):
    """ResNet-20 option A with lowbit's parameter names (nn::resnet20): conv1, bn1,
    layer{1,2,3}.{0,1,2}.{conv1,bn1,conv2,bn2}, fc. The shortcut subsamples by the stride and
    pads the extra channels half before, half after, as ops/shortcut.hpp."""

    class Block(torch.nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = torch.nn.BatchNorm2d(cout)
            self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = torch.nn.BatchNorm2d(cout)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            h = self.bn2(self.conv2(h))
            s = x
            if self.stride != 1 or self.extra:
                s = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.extra // 2, self.extra // 2))
            return F.relu(h + s)

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(16)
        cin = 16
        for s, width in enumerate((16, 32, 64)):
            blocks = []
            for b in range(3):
                blocks.append(self.Block(cin, width, 2 if s > 0 and b == 0 else 1))
                cin = width
            setattr(self, f"layer{s + 1}", torch.nn.Sequential(*blocks))
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.fc(h.mean(dim=(2, 3)))


def model_cases(out, gen):
    """One whole ResNet-20 training step at the trainer's shapes (batch 128, 32x32): the
    logits, the mean cross-entropy loss, the gradient of that loss for every parameter, and
    every BN's updated running statistics. This exercises the fast kernels' batch-128 paths
    (thread splits, fused BN + ReLU, add + ReLU) that the small per-op cases do not reach."""
    model = _ResNet20()
    params, buffers = {}, {}
    for name, p in model.named_parameters():
        if name.endswith("bn1.weight") or name.endswith("bn2.weight"):
            params[name] = uniform(gen, 0.5, 1.5, *p.shape)
        elif p.dim() == 4:
            params[name] = randn(gen, *p.shape, scale=(2.0 / (p.shape[1] * p.shape[2] * p.shape[3])) ** 0.5)
        else:
            params[name] = randn(gen, *p.shape, scale=0.1)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            buffers[name] = randn(gen, *b.shape, scale=0.1)
        elif name.endswith("running_var"):
            buffers[name] = uniform(gen, 0.5, 1.5, *b.shape)
    x = randn(gen, 128, 3, 32, 32)
    labels = torch.randint(0, 10, (128,), generator=gen)

    def step(dtype):
        m = _ResNet20().to(dtype)
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.copy_(params[name])
            for name, b in m.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
        m.train()
        logits = m(x.to(dtype))
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        grads = {n: p.grad.detach() for n, p in m.named_parameters()}
        after = {n: b.detach() for n, b in m.named_buffers() if n in buffers}
        return logits.detach(), loss.detach().reshape(1), grads, after

    # Unlike the single ops, a whole step's weight gradients are ill-conditioned in float32 by
    # nature: each is a sum over 128*32*32 positions that train-mode BN's backward makes cancel
    # down to ~1/sqrt(131072) of its terms, and a ReLU mask that flips where a pre-activation is
    # within rounding of 0 changes one term. PyTorch's own float32 gradients are up to ~1e-2
    # (max-normalised) from float64, a lowbit build with another summation order or kernel
    # path lands elsewhere in that noise (up to ~4e-3 seen where PyTorch's was < 1e-5). So the
    # reference is float64 (rounded to float32 for storage) and the tolerances are: 1e-4 for
    # the forward results (logits, loss, running statistics: well conditioned), and for each
    # gradient max(2e-2, 10 x PyTorch float32's error). A wiring error (a wrong shortcut,
    # momentum convention, fused op or parameter name) gives errors of order 1; the kernels
    # themselves are held to 1e-4 by the per-op cases above and the fast-vs-reference tests.
    y, loss, grads, after = step(torch.float32)
    y64, loss64, grads64, after64 = step(torch.float64)
    checks = [("y", y, y64), ("loss_out", loss, loss64)] + [("grad_" + k, grads[k], grads64[k]) for k in grads]
    checks += [("buffer." + k + "_out", after[k], after64[k]) for k in after]
    err32 = {what: rel_err(a, b) for what, a, b in checks}
    tolerance = {what: max(2e-2, 10 * e) if what.startswith("grad_") else 1e-4 for what, e in err32.items()}
    for what, e in err32.items():
        if not what.startswith("grad_") and not e <= CONDITIONING_TOL:
            sys.exit(f"make_fixtures: case resnet20_step: PyTorch float32 {what} is {e:.2e} "
                     f"away from float64 (> {CONDITIONING_TOL}); pick other values")
    inputs = {"x": x}
    inputs.update({"param." + k: v for k, v in params.items()})
    inputs.update({"buffer." + k: v for k, v in buffers.items()})
    outputs = {"y": y64, "loss_out": loss64}
    outputs.update({"buffer." + k + "_out": v for k, v in after64.items()})
    out.case("resnet20_step", "resnet20_step", {"labels": labels.tolist(), "tolerance": tolerance}, inputs,
             outputs, grads64)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 tests/pytorch/make_fixtures.py OUTPUT_DIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):  # no stale cases from an older version of this script
        if f.endswith(".bin") or f == "manifest.json":
            os.remove(os.path.join(out_dir, f))
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(20240611)
    out = Writer(out_dir)
    for make in (conv_cases, linear_cases, batch_norm_cases, pool_cases, activation_cases, softmax_cases,
                 cross_entropy_cases, model_cases):
        make(out, gen)
    out.finish()
    print(f"make_fixtures: wrote {len(out.names)} cases (torch {torch.__version__}) to {out_dir}")


if __name__ == "__main__":
    main()
