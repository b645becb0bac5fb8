#!/usr/bin/python3
"""PyTorch (CPU, oneDNN) timings of the conv passes that benchmarks/bench_kernels.cpp times,
on the same shapes, so lowbit's kernels can be compared side by side.

    /usr/bin/python3 benchmarks/bench_conv_pytorch.py [--threads 1 2] [--quick]
        [--lowbit build/bin/bench_kernels] [--json] [--filter SUBSTR]
        [--layout best|nchw|channels_last]

With --lowbit, runs that binary with the same --threads/--quick after each PyTorch pass and
prints one table with both and the lowbit/PyTorch ratio (same run, same machine state as far as
a shared machine allows). Needs PyTorch, so use /usr/bin/python3 on the dev box.

Passes: fwd = F.conv2d with bias; bwd_input / bwd_weight = aten.convolution_backward with
output_mask selecting only that gradient (bwd_weight also computes the bias gradient, as
lowbit's does). --filter keeps the rows whose "group/layer/pass" contains SUBSTR (passed on
to bench_kernels too). GFLOP/s counts 2*N*O*C*KH*KW*OH*OW per pass, as bench_kernels does.

--layout: PyTorch's tensors in NCHW, in channels_last, or (default, "best") both, keeping the
faster per pass, as compare_pytorch.sh does for the whole step. channels_last matters: oneDNN
reorders NCHW tensors around every conv, and on ResNet-20's 16-channel layers that made
PyTorch's NCHW pass up to 2.7x slower than its channels_last one (the ratios in
docs/performance.md were once taken against NCHW alone).
"""
import argparse
import json
import re
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F


def shapes(n):
    # (group, C, HW, O, k, stride, pad) — the same list, in the same order, as bench_kernels.cpp
    r = [("resnet20", 3, 32, 16, 3, 1, 1), ("resnet20", 16, 32, 16, 3, 1, 1),
         ("resnet20", 16, 32, 32, 3, 2, 1), ("resnet20", 32, 16, 32, 3, 1, 1),
         ("resnet20", 32, 16, 64, 3, 2, 1), ("resnet20", 64, 8, 64, 3, 1, 1),
         ("resnet20", 16, 32, 32, 1, 2, 0), ("resnet20", 32, 16, 64, 1, 2, 0)]
    v = [("vgg_small", 3, 32, 128, 3, 1, 1), ("vgg_small", 128, 32, 128, 3, 1, 1),
         ("vgg_small", 128, 16, 256, 3, 1, 1), ("vgg_small", 256, 16, 256, 3, 1, 1),
         ("vgg_small", 256, 8, 512, 3, 1, 1), ("vgg_small", 512, 8, 512, 3, 1, 1)]
    return [(g, n, c, hw, o, k, s, p) for (g, c, hw, o, k, s, p) in r + v]


def layer_name(c, o, k, s, hw):
    return f"{c}->{o} {k}x{k} s{s} @{hw}"


def median_ms(fn, reps):
    """(median wall ms, median process-CPU ms): CPU time is what a shared, overloaded machine
    distorts least, so the table compares GFLOP per CPU-second (GF/core-s) as well."""
    fn()
    ts, cs = [], []
    for _ in range(reps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
        cs.append((time.process_time() - c0) * 1e3)
    return statistics.median(ts), statistics.median(cs)


def bench_torch(n, reps, filt="", layout="best"):
    """{(group, layer, pass): (ms, GFLOP/s, GFLOP per CPU-s, layout)}; with layout "best" both
    layouts are timed and the faster (by wall time) is kept."""
    rows = {}
    torch.manual_seed(0)
    layouts = ["nchw", "channels_last"] if layout == "best" else [layout]
    for (g, n_, c, hw, o, k, s, p) in shapes(n):
        oh = (hw + 2 * p - k) // s + 1
        base = (torch.randn(n_, c, hw, hw), torch.randn(o, c, k, k), torch.randn(o), torch.randn(n_, o, oh, oh))
        flops = 2.0 * n_ * o * c * k * k * oh * oh
        conv_bwd = torch.ops.aten.convolution_backward
        args = ([o], [s, s], [p, p], [1, 1], False, [0, 0], 1)
        for lay in layouts:
            fmt = torch.channels_last if lay == "channels_last" else torch.contiguous_format
            x, w, dy = (t.contiguous(memory_format=fmt) for t in (base[0], base[1], base[3]))
            b = base[2]
            passes = {
                "fwd": lambda: F.conv2d(x, w, b, stride=s, padding=p),
                "bwd_input": lambda: conv_bwd(dy, x, w, *args, [True, False, False]),
                "bwd_weight": lambda: conv_bwd(dy, x, w, *args, [False, True, True]),
            }
            with torch.no_grad():
                for name, fn in passes.items():
                    if filt and filt not in f"{g}/{layer_name(c, o, k, s, hw)}/{name}":
                        continue
                    ms, cpu = median_ms(fn, reps)
                    key = (g, layer_name(c, o, k, s, hw), name)
                    if key not in rows or ms < rows[key][0]:
                        rows[key] = (ms, flops / (ms * 1e6), flops / (cpu * 1e6), lay)
    return rows


def bench_lowbit(binary, threads, quick, reps, filt=""):
    cmd = [binary, "--threads", str(threads), "--json", "--reps", str(reps)] + (["--quick"] if quick else [])
    cmd += ["--filter", filt] if filt else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            rows[(d["group"], d["layer"], d["pass"])] = (d["ms"], d["gflops"], d["gflops_per_core"])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quick", action="store_true", help="batch 32, 3 reps")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--lowbit", default="", help="path of bench_kernels to run alongside")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--filter", default="", help="only rows whose group/layer/pass contains this")
    ap.add_argument("--layout", choices=["best", "nchw", "channels_last"], default="best",
                    help="PyTorch's memory format; best = the faster of the two per pass")
    a = ap.parse_args()
    n = 32 if a.quick else 128
    reps = a.reps or (3 if a.quick else 5)
    print(f"torch {torch.__version__}, batch {n}, median of {reps}, layout {a.layout}; "
          f"mkldnn={torch.backends.mkldnn.is_available()}")
    for t in a.threads:
        torch.set_num_threads(t)
        pt = bench_torch(n, reps, a.filter, a.layout)
        lb = bench_lowbit(a.lowbit, t, a.quick, reps, a.filter) if a.lowbit else {}
        print(f"\n== {t} thread(s) ==")
        # GF: GFLOP per wall second; GFc: GFLOP per CPU second of the process (all threads).
        hdr = f"{'group':<10} {'layer':<22} {'pass':<11} {'layout':<6} {'torch ms':>9} {'torch GF':>9} {'GFc':>6}"
        if lb:
            hdr += f" {'lowbit ms':>10} {'lowbit GF':>10} {'GFc':>6} {'lb/t wall':>9} {'lb/t cpu':>9}"
        print(hdr)
        tot_pt = tot_lb = 0.0
        cpu_pt = cpu_lb = 0.0
        for key, (ms, gf, gfc, lay) in pt.items():
            short = "cl" if lay == "channels_last" else lay
            line = f"{key[0]:<10} {key[1]:<22} {key[2]:<11} {short:<6} {ms:9.3f} {gf:9.1f} {gfc:6.1f}"
            tot_pt += ms
            if key in lb:
                lms, lgf, lgfc = lb[key]
                tot_lb += lms
                cpu_pt += gf * ms / gfc
                cpu_lb += lgf * lms / lgfc
                line += f" {lms:10.3f} {lgf:10.1f} {lgfc:6.1f} {lgf / gf:9.2f} {lgfc / gfc:9.2f}"
            print(line)
            if a.json:
                d = {"bench": "conv_pytorch", "group": key[0], "layer": key[1], "pass": key[2],
                     "batch": n, "threads": t, "torch_layout": lay, "torch_ms": ms, "torch_gflops": gf,
                     "torch_gflops_per_core": gfc}
                if key in lb:
                    d.update(lowbit_ms=lb[key][0], lowbit_gflops=lb[key][1],
                             lowbit_gflops_per_core=lb[key][2])
                print(json.dumps(d))
        if lb:
            print(f"total conv time: torch {tot_pt:.1f} ms, lowbit {tot_lb:.1f} ms "
                  f"(lowbit/torch speed {tot_pt / tot_lb:.2f}); CPU time: torch {cpu_pt:.1f} ms, "
                  f"lowbit {cpu_lb:.1f} ms (lowbit/torch {cpu_pt / cpu_lb:.2f})")


if __name__ == "__main__":
    main()
