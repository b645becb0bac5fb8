#!/usr/bin/env python3
"""Tables, rows and the per-layer bits plot of `BUDGET=paper benchmarks/reproduce_alq.sh`.

usage: alq_paper_table.py RUNS COMMIT

Reads RUNS/{fp32,alq,uniform_1,bwn_1}/summary.json (a run without one is listed as missing)
and writes
  RUNS/alq_paper.md     the markdown table of docs/results.md (also printed)
  RUNS/alq_paper.json   one object per row, the format of docs/results/alq_paper.json
  RUNS/alq_layer_bits.svg  the average bits of every layer of the ALQ rows and the layer's
                        weight count (the paper's Fig. 2)
Only the standard library: it runs wherever the trainer does.
"""
import json
import os
import sys

ROWS = [
    ("fp32", "FP32 (the authors' SGD pretraining)"),
    ("alq", "ALQ (I_max 6, authors' pruning pr 0.8)"),
    ("uniform_1", "uniform 1 bit (ALQ, I_max 1, no pruning)"),
    ("bwn_1", "BWN 1 bit, all layers (method ste)"),
]


def load(runs, name):
    path = os.path.join(runs, name, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def command(runs, name):
    """The command that makes (or resumes) the run; its full configuration is RUNS/name/config.json."""
    return f"BUDGET=paper RUNS={runs} benchmarks/reproduce_alq.sh  (run {name})"


def narrower(s):
    """'20-50-500-10 -> 18-45-231-10': output channels left once fully pruned ones go."""
    if "alq" not in s:
        return "-"
    layers = s["alq"]["layers"]
    before = "-".join(str(l["out_channels"]) for l in layers)
    after = "-".join(str(l["out_channels"] - l["pruned_out_channels"]) for l in layers)
    return f"{before} -> {after}"


def svg_layer_bits(rows, path):
    """Bars of each layer's average bits per ALQ row, the layer's weight count under it."""
    alq = [(label, s) for label, s in rows if s is not None and "alq" in s]
    if not alq:
        return False
    layers = alq[0][1]["alq"]["layers"]
    W, H, left, bottom, top = 640, 320, 60, 60, 30
    plot_h = H - bottom - top
    ymax = max(max(l["avg_bits"] for l in s["alq"]["layers"]) for _, s in alq)
    ymax = max(1.0, float(int(ymax) + 1))
    slot = (W - left - 20) / len(layers)
    bar = slot * 0.8 / len(alq)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">ALQ: average bits per layer (Fig. 2)</text>']
    for k in range(int(ymax) + 1):
        y = top + plot_h * (1 - k / ymax)
        out.append(f'<line x1="{left}" x2="{W - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{k}</text>')
    for i, l in enumerate(layers):
        x0 = left + i * slot + slot * 0.1
        for r, (label, s) in enumerate(alq):
            b = s["alq"]["layers"][i]["avg_bits"]
            h = plot_h * b / ymax
            out.append(f'<rect x="{x0 + r * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                       f'fill="{colors[r % len(colors)]}"><title>{label}: {b:.3f}</title></rect>')
            out.append(f'<text x="{x0 + r * bar + bar / 2:.1f}" y="{top + plot_h - h - 3:.1f}" '
                       f'text-anchor="middle">{b:.2f}</text>')
        out.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{H - bottom + 16}" text-anchor="middle">'
                   f'{l["name"]}</text>')
        out.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{H - bottom + 30}" text-anchor="middle" '
                   f'fill="#555">{l["weights"]:,} weights</text>')
    for r, (label, _) in enumerate(alq):
        out.append(f'<rect x="{left + 10}" y="{top + 4 + 14 * r}" width="10" height="10" fill="{colors[r % len(colors)]}"/>'
                   f'<text x="{left + 24}" y="{top + 13 + 14 * r}">{label}</text>')
    out.append('</svg>')
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def main():
    if len(sys.argv) != 3:
        print("usage: alq_paper_table.py RUNS COMMIT", file=sys.stderr)
        sys.exit(2)
    runs, commit = sys.argv[1:]
    loaded = [(name, label, load(runs, name)) for name, label in ROWS]
    lines = ["| row | epochs | final test acc | test acc at best val (epoch) | avg weight bits | "
             "weights (CR vs FP32) | per-layer bits | channels | wall time | images/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    objects = []
    for name, label, s in loaded:
        if s is None:
            lines.append(f"| {label} | - | missing | | | | | | | |")
            continue
        w = s["weight_storage"]
        bits = "/".join(f"{l['avg_bits']:.2f}" for l in s["alq"]["layers"]) if "alq" in s else "-"
        lines.append(
            f"| {label} | {s['epochs']} | {100 * s['final_test_acc']:.2f}% | "
            f"{100 * s['test_acc_at_best_val']:.2f}% ({s['best_val_epoch']}) | {w['avg_weight_bits']:.3f} | "
            f"{w['weight_bytes'] / 1000:.1f} KB ({w['compression_ratio']:.1f}x) | {bits} | {narrower(s)} | "
            f"{s['wall_s'] / 3600:.2f} h | {s['images_per_s']:.0f} |")
        objects.append({
            "model": s["model"], "dataset": s["config"]["dataset"], "row": name,
            "label": label, "avg_weight_bits": w["avg_weight_bits"], "weight_bytes": w["weight_bytes"],
            "compression_ratio": w["compression_ratio"], "final_test_acc": s["final_test_acc"],
            # chosen on the validation split (10,000 held-out training images), never on the test set
            "best_test_acc": s["test_acc_at_best_val"], "best_val_epoch": s["best_val_epoch"],
            "layer_bits": [l["avg_bits"] for l in s["alq"]["layers"]] if "alq" in s else None,
            "channels": narrower(s), "wall_s": s["wall_s"], "images_per_s": s["images_per_s"],
            "threads": s["threads"], "model_file": os.path.join(runs, name, "checkpoint.bin"),
            "command": command(runs, name), "commit": commit})
    table = "\n".join(lines) + "\n"
    print(table)
    with open(os.path.join(runs, "alq_paper.md"), "w") as f:
        f.write(table)
    with open(os.path.join(runs, "alq_paper.json"), "w") as f:
        json.dump(objects, f, indent=1)
        f.write("\n")
    if svg_layer_bits([(label, s) for _, label, s in loaded], os.path.join(runs, "alq_layer_bits.svg")):
        print(f"plot: {os.path.join(runs, 'alq_layer_bits.svg')}")


if __name__ == "__main__":
    main()
