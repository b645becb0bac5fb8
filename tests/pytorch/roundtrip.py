#!/usr/bin/python3
"""PyTorch's side of the state-file round trip (tests/pytorch/roundtrip.cpp, docs/pytorch.md).

    /usr/bin/python3 tests/pytorch/roundtrip.py write DIR   for every case, a seeded random model
        (BN statistics and affine parameters random too, so evaluation is not the identity)
        saved as DIR/<case>.torch.safetensors, and its eval-mode logits on the fixed input as
        DIR/<case>.torch.json
    /usr/bin/python3 tests/pytorch/roundtrip.py check DIR   loads every DIR/<case>.lowbit.safetensors
        (written by lowbit) with load_state_dict(strict=True), and compares its logits with
        DIR/<case>.lowbit.json (lowbit's); prints one JSON line per case, exits 1 on a mismatch

The fixed input is x[i] = ((37 i) mod 101) / 50 - 1 over the batch in row-major order: exact
in float32 on both sides. Logits agree when max |a - b| <= 1e-5 * max(1, max |a|).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks"))
try:
    import torch
except ImportError as e:
    sys.exit(f"roundtrip: cannot import torch with {sys.executable} ({e})")
import pytorch_models as pm  # noqa: E402

# case: (lowbit model, shortcut, input shape)
CASES = {"resnet20_a": ("resnet20", "A", (4, 3, 32, 32)), "resnet20_b": ("resnet20", "B", (4, 3, 32, 32)),
         "vgg_small": ("vgg_small", "A", (2, 3, 32, 32)), "lenet5": ("lenet5", "A", (4, 1, 28, 28))}
TOLERANCE = 1e-5


def fixed_input(shape):
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.int64)
    return (((37 * i) % 101).to(torch.float64) / 50 - 1).to(torch.float32).reshape(shape)


def write(folder):
    for k, (case, (model, shortcut, shape)) in enumerate(CASES.items()):
        torch.manual_seed(k)
        m = pm.build(model, shortcut)
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.normal_(0, 0.2)
                    mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.normal_(1, 0.2)
                    mod.bias.normal_(0, 0.2)
                    mod.num_batches_tracked.fill_(7)
        m.eval()
        with torch.no_grad():
            logits = m(fixed_input(shape))
        pm.save_safetensors(os.path.join(folder, case + ".torch.safetensors"), m.state_dict())
        with open(os.path.join(folder, case + ".torch.json"), "w") as f:
            json.dump(logits.flatten().tolist(), f)


def check(folder):
    ok = True
    for case, (model, shortcut, shape) in CASES.items():
        state, meta = pm.load_safetensors(os.path.join(folder, case + ".lowbit.safetensors"))
        m = pm.build(model, shortcut)
        m.load_state_dict(state, strict=True)  # raises on a missing, unexpected or misshapen tensor
        m.eval()
        with torch.no_grad():
            logits = m(fixed_input(shape)).flatten()
        theirs = torch.tensor(json.load(open(os.path.join(folder, case + ".lowbit.json"))), dtype=torch.float32)
        diff = (logits - theirs).abs().max().item()
        scale = max(1.0, theirs.abs().max().item())
        good = logits.shape == theirs.shape and diff <= TOLERANCE * scale
        ok = ok and good
        print(json.dumps({"case": case, "tensors": len(state), "max_abs_diff": diff, "max_abs_logit": scale,
                          "format": meta.get("format"), "ok": good}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
