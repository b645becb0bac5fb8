#!/usr/bin/python3
"""PyTorch twin of benchmarks/bench_train.cpp: images/s of one full training step
(zero_grad, forward, cross-entropy, backward, SGD step) and peak RSS, on CPU.

    /usr/bin/python3 benchmarks/pytorch_train.py --model resnet20|vgg_small --threads N \\
        --layout nchw|channels_last [--batch 128] [--steps 10] [--warmup 2]

Prints ONE JSON line: {"model", "threads", "layout", "img_s", "peak_rss_mb"}.
img_s = batch / median step time (as bench_train). peak_rss_mb is this process's
ru_maxrss (KiB on Linux) / 1024, so run one process per configuration.
(Debian's python3-torch imports only under /usr/bin/python3.)

Models (no conv bias; FC with bias, as lowbit's nn::resnet20 / nn::vgg_small):
  resnet20   He et al. 2016, CIFAR version: conv3x3 16, BN, ReLU; 3 stages x 3 BasicBlocks
             (16/32/64 channels, stride 2 at the start of stages 2 and 3, shortcut option A:
             identity subsampled with ::2 and zero-padded channels); global avg pool; FC 64->10.
  vgg_small  LQ-Nets' VGG-Small: conv 128, BN, ReLU, conv 128, maxpool, BN, ReLU, conv 256,
             BN, ReLU, conv 256, maxpool, BN, ReLU, conv 512, BN, ReLU, conv 512, maxpool, BN,
             ReLU, FC 8192->10 (each max-pool sits between its conv and BN).
Optimizer: SGD, lr 0.01, momentum 0.9, weight decay 5e-4. Inputs: random 3x32x32, labels 0..9.
"""
import argparse
import json
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    sys.exit(f"pytorch_train: cannot import torch with {sys.executable} ({e}); use /usr/bin/python3 "
             "with Debian's python3-torch")


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.pad = cout - cin  # option A: extra channels are zeros
        self.stride = stride

    def shortcut(self, x):
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv, self.bn = conv3x3(3, 16), nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(x.mean(dim=(2, 3)))


class VGGSmall(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        layers, cin = [], 3
        for i, cout in enumerate((128, 128, 256, 256, 512, 512)):
            layers.append(conv3x3(cin, cout))
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
            layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(512 * 4 * 4, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


MODELS = {"resnet20": ResNet20, "vgg_small": VGGSmall}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, choices=sorted(MODELS))
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--layout", default="nchw", choices=["nchw", "channels_last"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args()
    if a.threads < 1 or a.batch < 1 or a.steps < 1 or a.warmup < 0:
        p.error("--threads, --batch and --steps must be >= 1 and --warmup >= 0")

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if a.layout == "channels_last" else torch.contiguous_format
    model = MODELS[a.model]().to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 32, 32).contiguous(memory_format=fmt)
    labels = torch.randint(0, 10, (a.batch,))

    step_s = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)  # as bench_train
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if step >= a.warmup:
            step_s.append(t1 - t0)
    if not torch.isfinite(loss):
        sys.exit(f"pytorch_train: loss is {loss.item()}")

    img_s = a.batch / statistics.median(step_s)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"model": a.model, "threads": a.threads, "layout": a.layout, "img_s": round(img_s, 2),
                      "peak_rss_mb": round(peak_rss_mb, 1)}))


if __name__ == "__main__":
    main()
