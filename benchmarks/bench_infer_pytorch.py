#!/usr/bin/python3
"""PyTorch's inference speed on lowbit's models, the baselines of benchmarks/compare_infer.sh:
FP32 eval in its fastest form (eager NCHW, eager channels_last, or TorchScript frozen with
torch.jit.optimize_for_inference: all three timed, the fastest kept) and int8
static post-training quantization of the same architecture (FX graph mode: conv + BN + ReLU
fused, per-channel weights, calibrated on random images: only the speed is measured).

    /usr/bin/python3 benchmarks/bench_infer_pytorch.py --model resnet20 --threads 1 --batch 128 [--reps 5]

Prints one JSON object: model, threads, batch, pytorch_fp32_img_s, pytorch_fp32_layout,
pytorch_int8_img_s, int8_engine. The int8 engine is fbgemm where this PyTorch has it, else
oneDNN (x86), else QNNPACK: Debian's PyTorch 1.13 is built without fbgemm, so on the dev box
it is oneDNN, the engine PyTorch itself recommends for x86 from 2.0 on.
"""
import argparse
import json
import statistics
import time

import torch
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

import pytorch_models


def images_per_s(model, x, reps):
    with torch.no_grad():
        model(x)  # warm-up (oneDNN builds its primitives on the first call)
        per = max(1, 64 // x.shape[0])  # batch 1: several forwards per timing
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(per):
                model(x)
            times.append((time.perf_counter() - t0) / per)
    return x.shape[0] / statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=["resnet20", "vgg_small"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = pytorch_models.build(a.model).eval()
    x = torch.randn(a.batch, 3, 32, 32)
    assert model.training is False

    fp32 = {}
    fp32["nchw"] = images_per_s(model, x, a.reps)
    cl = pytorch_models.build(a.model).eval().to(memory_format=torch.channels_last)
    cl.load_state_dict(model.state_dict())
    fp32["channels_last"] = images_per_s(cl, x.contiguous(memory_format=torch.channels_last), a.reps)
    # TorchScript frozen and optimized for inference (oneDNN convolutions with BN folded): at
    # batch 1 Debian's PyTorch otherwise takes its slow_conv2d path on a generic BLAS (900 us
    # for one 16->16 3x3 convolution of a 32x32 image).
    with torch.no_grad():
        traced = torch.jit.trace(pytorch_models.build(a.model).eval(), x[:1])
    traced = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    with torch.no_grad():
        fp32["jit_frozen"] = images_per_s(traced, x, a.reps)
    layout = max(fp32, key=fp32.get)

    engines = torch.backends.quantized.supported_engines
    engine = next(e for e in ("fbgemm", "x86", "onednn", "qnnpack") if e in engines)
    torch.backends.quantized.engine = engine
    qmodel = prepare_fx(pytorch_models.build(a.model).eval(), get_default_qconfig_mapping(engine), (x[:1],))
    with torch.no_grad():
        for _ in range(4):  # calibration: observers see a few batches of the input distribution
            qmodel(torch.randn(32, 3, 32, 32))
    qmodel = convert_fx(qmodel)
    int8 = images_per_s(qmodel, x, a.reps)

    print(json.dumps({"model": a.model, "threads": a.threads, "batch": a.batch,
                      "pytorch_fp32_img_s": fp32[layout], "pytorch_fp32_layout": layout,
                      "pytorch_int8_img_s": int8, "int8_engine": engine}))


if __name__ == "__main__":
    main()
