#!/usr/bin/python3
"""The quickstart recipe (examples/configs/quickstart.json) in PyTorch, for comparing
accuracy and time with `examples/quickstart.sh` on the same machine.

    /usr/bin/python3 benchmarks/pytorch_quickstart.py [--data DIR] [--threads N] [--epochs E]
                                                      [--per-class K] [--cutout L]
                                                      [--save FILE.safetensors]

(Needs python3-torch and python3-pil, both installed by scripts/install_deps.sh bench.)
--per-class 0 trains on all 50,000 images, the recipe of docs/results.md's full FP32 run when
--epochs 160 (or that recipe shortened, for a side-by-side run with train_cifar
--set train_per_class=0 --set epochs=E).

Recipe, as train_cifar's: ResNet-20 option A (He et al. CIFAR; the model of
benchmarks/pytorch_train.py), 500 training images per class (--per-class) drawn with seed 0 (a different
draw than lowbit's generator, same size and balance), the full 10,000-image test set,
10 epochs, batch 128, SGD momentum 0.9 + Nesterov, lr 0.1 with one epoch of linear warmup
then cosine to 0 per step, weight decay 5e-4 on conv/linear weights only, pad-4 random
crop + horizontal flip, CIFAR mean/std normalization; --cutout L adds Cutout with an LxL
square as train_cifar's `cutout` key (examples/configs/resnet20_fp32_cutout.json). DATA is the image-folder layout
(train/<class>/*.jpg, test/<class>/*.jpg), default ../shared/data/cifar10-jpg.
Prints one JSON line per epoch and a final summary line. --save writes the trained model as
safetensors under the common CIFAR ResNet names (benchmarks/pytorch_models.py, docs/pytorch.md),
which `train_cifar --eval FILE --set data=DIR` evaluates in lowbit.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_models import ResNetCifar, save_safetensors  # noqa: E402  (pytorch_train's ResNet20, PyTorch's names)

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32).reshape(1, 3, 1, 1)


def load_split(root, split, per_class, rng):
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        folder = os.path.join(root, split, name)
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png", ".bmp")))
        if per_class > len(files):
            sys.exit(f"pytorch_quickstart: --per-class {per_class}, but {folder} has only {len(files)} images")
        if per_class:
            files = [files[i] for i in sorted(rng.choice(len(files), per_class, replace=False))]
        for f in files:
            img = np.asarray(Image.open(os.path.join(folder, f)).convert("RGB"), dtype=np.uint8)
            if img.shape != (32, 32, 3):
                sys.exit(f"pytorch_quickstart: {os.path.join(folder, f)} is {img.shape}, expected 32x32x3")
            images.append(img.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.int64)


def normalize(u8):
    return torch.from_numpy(((u8.astype(np.float32) / 255.0) - MEAN) / STD)


def augment(u8, rng):
    n = len(u8)
    padded = np.zeros((n, 3, 40, 40), dtype=np.uint8)
    padded[:, :, 4:36, 4:36] = u8
    out = np.empty_like(u8)
    dy, dx, flip = rng.integers(0, 9, n), rng.integers(0, 9, n), rng.random(n) < 0.5
    for i in range(n):
        crop = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        out[i] = crop[:, :, ::-1] if flip[i] else crop
    return out


def cutout(x, length, rng):
    """Cutout (DeVries & Taylor 2017) on a normalized batch, as lowbit's data/augment.hpp: a
    centre uniform over the 32x32 pixels, rows and columns [c - L//2, c + L//2) clipped to the
    image, set to 0 (the channel mean)."""
    n, h = x.shape[0], length // 2
    cy, cx = rng.integers(0, 32, n), rng.integers(0, 32, n)
    for i in range(n):
        x[i, :, max(0, cy[i] - h):min(32, cy[i] + h), max(0, cx[i] - h):min(32, cx[i] + h)] = 0
    return x


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "cifar10-jpg"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--per-class", type=int, default=500, help="training images per class; 0: all")
    ap.add_argument("--cutout", type=int, default=0, help="Cutout square side in pixels; 0: off")
    ap.add_argument("--save", default="", help="write the trained model here (safetensors)")
    args = ap.parse_args()
    if args.epochs < 1 or args.per_class < 0:
        sys.exit(f"pytorch_quickstart: --epochs {args.epochs} --per-class {args.per_class}: expected "
                 "epochs >= 1 and per-class >= 0")
    if not 0 <= args.cutout <= 32:
        sys.exit(f"pytorch_quickstart: --cutout {args.cutout}: expected a square side in pixels, 0..32 (0 = off)")
    if not os.path.isdir(os.path.join(args.data, "train")):
        sys.exit(f"pytorch_quickstart: no train/ folder under --data {args.data}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    t0 = time.time()
    xtr, ytr = load_split(args.data, "train", args.per_class, rng)
    xte, yte = load_split(args.data, "test", 0, rng)
    decode_s = time.time() - t0
    model = ResNetCifar(20, "A").to(memory_format=torch.channels_last)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=0.1, momentum=0.9, nesterov=True)
    batch, steps_per_epoch = 128, math.ceil(len(xtr) / 128)
    total, warmup = args.epochs * steps_per_epoch, steps_per_epoch

    def lr_at(step):  # train_cifar's optim::Schedule (cosine with linear warmup)
        if step < warmup:
            return 0.1 * (step + 1) / warmup
        return 0.05 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    xte_t, yte_t = normalize(xte).contiguous(memory_format=torch.channels_last), torch.from_numpy(yte)
    step, train_s, best = 0, 0.0, 0.0
    for epoch in range(args.epochs):
        model.train()
        t = time.time()
        order = rng.permutation(len(xtr))
        loss_sum, hits = 0.0, 0
        for b in range(steps_per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            x = normalize(augment(xtr[idx], rng))
            if args.cutout:
                x = cutout(x, args.cutout, rng)
            x = x.contiguous(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            opt.zero_grad()
            y = torch.from_numpy(ytr[idx])
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            hits += (logits.argmax(1) == y).sum().item()
            step += 1
        epoch_s = time.time() - t
        train_s += epoch_s
        model.eval()
        correct = 0
        with torch.no_grad():
            for b in range(0, len(xte_t), 500):
                correct += (model(xte_t[b:b + 500]).argmax(1) == yte_t[b:b + 500]).sum().item()
        acc = correct / len(yte)
        best = max(best, acc)
        print(json.dumps({"epoch": epoch + 1, "train_loss": loss_sum / len(xtr), "train_acc": hits / len(xtr),
                          "test_acc": acc, "epoch_s": round(epoch_s, 2),
                          "images_per_s": round(len(xtr) / epoch_s, 1)}), flush=True)
    if args.save:
        save_safetensors(args.save, model.state_dict())
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "threads": args.threads,
                      "train_images": len(xtr), "test_images": len(yte), "epochs": args.epochs,
                      "final_test_acc": acc, "best_test_acc": best, "decode_s": round(decode_s, 1),
                      "wall_s": round(time.time() - t0, 1), "images_per_s": round(step * batch / train_s, 1),
                      "saved": args.save or None}))


if __name__ == "__main__":
    main()
