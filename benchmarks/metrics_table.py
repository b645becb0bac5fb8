#!/usr/bin/env python3
"""Markdown tables for docs/results.md from a train_cifar run folder's metrics.jsonl.

    benchmarks/metrics_table.py RUN [--epochs 1,10,20,...]

Prints, for the chosen epochs (default: 1, every tenth of the run, and the last logged),
one row each of train accuracy %, test accuracy %, test loss and the lr at epoch end; then
the best test accuracy with its epoch and the median images/s over the logged epochs.
Runs still in progress are fine (the last logged epoch is used). Standard library only.
"""
import argparse
import json
import os
import statistics
import sys


def load(run):
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.isfile(path):
        sys.exit(f"metrics_table: '{path}' is missing (expected a train_cifar output folder)")
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"metrics_table: '{path}' line {n} is not JSON: {e}")
    if not rows:
        sys.exit(f"metrics_table: '{path}' has no epochs yet")
    return {r["epoch"]: r for r in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--epochs", default="", help="comma-separated epochs (default: 1, every tenth, the last)")
    a = ap.parse_args()
    by_epoch = load(a.run)
    last = max(by_epoch)
    if a.epochs:
        try:
            epochs = [int(e) for e in a.epochs.split(",")]
        except ValueError:
            sys.exit(f"metrics_table: --epochs '{a.epochs}': expected comma-separated integers")
        missing = [e for e in epochs if e not in by_epoch]
        if missing:
            sys.exit(f"metrics_table: --epochs: {missing} not logged in '{a.run}' (epochs 1..{last})")
    else:
        step = max(1, last // 10)
        epochs = sorted({1, last} | set(range(step, last + 1, step)))
    cols = [by_epoch[e] for e in epochs]
    print("| epoch | " + " | ".join(str(e) for e in epochs) + " |")
    print("|---|" + "---|" * len(epochs))
    print("| train accuracy % | " + " | ".join(f"{100 * c['train_acc']:.2f}" for c in cols) + " |")
    print("| test accuracy % | " + " | ".join(f"{100 * c['test_acc']:.2f}" for c in cols) + " |")
    print("| test loss | " + " | ".join(f"{c['test_loss']:.3f}" for c in cols) + " |")
    print("| lr at epoch end | " + " | ".join(f"{c['lr']:.4f}" for c in cols) + " |")
    best = max(by_epoch.values(), key=lambda r: (r["test_acc"], -r["epoch"]))
    ips = [r["images_per_s"] for r in by_epoch.values() if "images_per_s" in r]
    print()
    print(f"epochs logged: {last}; best test accuracy {100 * best['test_acc']:.2f}% at epoch {best['epoch']}; "
          f"median images/s per epoch {statistics.median(ips):.0f}" if ips else "")


if __name__ == "__main__":
    main()
