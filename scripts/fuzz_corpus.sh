#!/usr/bin/env bash
# Seed corpora for the libFuzzer harnesses of tests/fuzz/ (docs/fuzzing.md): one folder per
# harness under OUT (default build-fuzz/corpus), each with a few small valid inputs, so the
# fuzzer starts from files the readers accept instead of from nothing.
#
#   scripts/fuzz_corpus.sh [OUT]
#
# Everything is generated here (Python 3, standard library only), except a few CIFAR-10 JPEGs
# and MNIST's first images copied from ../shared/data when it exists. Nothing goes into git:
# OUT is a build folder (or /tmp). Existing files in OUT are kept (libFuzzer adds to them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/build-fuzz/corpus}"
SHARED="$ROOT/../shared/data"
mkdir -p "$OUT"

python3 - "$OUT" "$SHARED" "$ROOT" <<'PY'
import glob, json, os, struct, sys, zlib

out, shared, root = sys.argv[1:4]

def put(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# CIFAR binary: 2 CIFAR-10 records (1 label byte + 3072 pixels), 2 CIFAR-100 records (2 labels).
pix = bytes((i * 7) % 256 for i in range(3072))
put("fuzz_cifar_binary", "cifar10_2.bin", bytes([3]) + pix + bytes([9]) + pix)
put("fuzz_cifar_binary", "cifar100_2.bin", bytes([1, 42]) + pix + bytes([19, 99]) + pix)

# MNIST: first byte = length of the label file, then the label file, then the image file.
def idx_pair(labels, rows, cols, pixels):
    lab = struct.pack(">II", 0x801, len(labels)) + bytes(labels)
    img = struct.pack(">IIII", 0x803, len(labels), rows, cols) + pixels
    return bytes([len(lab)]) + lab + img
put("fuzz_mnist_idx", "tiny_2x4x4.bin", idx_pair([3, 7], 4, 4, bytes(range(32))))
mn = os.path.join(shared, "mnist")
if os.path.exists(os.path.join(mn, "t10k-images-idx3-ubyte")):  # 3 real 28x28 images
    with open(os.path.join(mn, "t10k-images-idx3-ubyte"), "rb") as f:
        f.seek(16); px = f.read(3 * 784)
    with open(os.path.join(mn, "t10k-labels-idx1-ubyte"), "rb") as f:
        f.seek(8); lb = list(f.read(3))
    put("fuzz_mnist_idx", "mnist_3.bin", idx_pair(lb, 28, 28, px))

# Images: first byte = mode (fuzz_image.cpp), then the file.
def png(w, h, color_type, channels, interlace=0):
    passes = [(w, h)] if not interlace else [  # Adam7: each pass's width and height
        ((w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy)
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]]
    raw = b"".join(b"\x00" + bytes((x * 16 + y * 3 + c * 50) % 256 for x in range(pw) for c in range(channels))
                   for pw, ph in passes if pw and ph for y in range(ph))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
def bmp(w, h):
    row = (3 * w + 3) // 4 * 4
    px = b"".join(bytes((x * 20 + y + c * 60) % 256 for x in range(w) for c in range(3)).ljust(row, b"\0")
                  for y in range(h))
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(px), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(px), 0, 0, 54) + info + px
files = {"rgb32.png": png(32, 32, 2, 3), "grey8.png": png(8, 8, 0, 1), "rgba5.png": png(5, 3, 6, 4), "adam7_9x7.png": png(9, 7, 2, 3, 1),
         "rgb32.bmp": bmp(32, 32), "rgb6.bmp": bmp(6, 2)}
for p in sorted(glob.glob(os.path.join(shared, "cifar10-jpg", "train", "*", "000[0-1].jpg")))[:6]:
    files["cifar_" + os.path.basename(os.path.dirname(p)) + "_" + os.path.basename(p)] = open(p, "rb").read()
for name, data in files.items():
    for mode in range(4):
        put("fuzz_image", f"m{mode}_{name}", bytes([mode]) + data)

# Config: the shipped configs and a few small ones.
for p in sorted(glob.glob(os.path.join(root, "examples", "configs", "*.json"))):
    put("fuzz_config", os.path.basename(p), open(p, "rb").read())
put("fuzz_config", "small.json", b'{"model": "resnet20", "epochs": 2, "lr": 0.1, "batch": 64}')
put("fuzz_config", "method.json", b'{"method": "apot", "w_bits": 3, "a_bits": 3, "epochs": 1}')

# Framed files (checkpoint, .lbq): "<JSON header>\0<data section>" (tests/fuzz/fuzz_framed.hpp).
def floats(n, v=0.5):
    return struct.pack("<%df" % n, *([v] * n))
def framed(header, data):
    return json.dumps(header).encode() + b"\0" + data
def raw_framed(magic, header, data):  # the file itself, for the framing
    text = json.dumps(header).encode()
    body = magic + struct.pack("<IQ", 1, len(text)) + text + data
    return body + struct.pack("<Q", len(body) + 8)
state = [("optim/conv.weight.momentum", [4, 3, 3, 3]), ("optim/conv.bias.momentum", [4]),
         ("model/conv.weight", [4, 3, 3, 3]), ("model/conv.bias", [4])]
def ck_header(tensors):
    table, off = [], 0
    for name, shape in tensors:
        n = 1
        for d in shape: n *= d
        table.append({"name": name, "shape": shape, "offset": off}); off += 4 * n
    meta = {"format": "lowbit.train_cifar", "config": {"model": "resnet20", "epochs": 2},
            "run": {"epoch": 1, "step": 10}, "loader": "0 1 2", "method_state": {}}
    return {"meta": meta, "tensors": table}, floats(off // 4)
h, d = ck_header(state)
put("fuzz_checkpoint", "run.txt", framed(h, d))
put("fuzz_checkpoint", "run_raw.bin", raw_framed(b"LOWBITCK", h, d))
for k, name in enumerate(["sgd", "nesterov", "adam", "amsgrad"]):
    adam = [("optim/conv.weight.step", [1]), ("optim/conv.weight.exp_avg", [4, 3, 3, 3]),
            ("optim/conv.weight.exp_avg_sq", [4, 3, 3, 3]), ("optim/conv.weight.max_exp_avg_sq", [4, 3, 3, 3]),
            ("optim/conv.bias.step", [1]), ("optim/conv.bias.exp_avg", [4]), ("optim/conv.bias.exp_avg_sq", [4])]
    h, d = ck_header(state if k < 2 else adam)
    put("fuzz_optimizer_state", name + ".txt", framed(h, d) + bytes([k]))
# .lbq: one 2-bit conv weight (codebook of 4 levels, one scale) and one float bias.
codes = bytes([0b11100100] * 27)  # 108 codes of 2 bits
lbq_data = codes + floats(1, 0.1) + floats(4, 0.0)
lbq = {"meta": {"model": "tiny"}, "data_bytes": len(lbq_data),
       "quantized": [{"name": "conv.wq", "quantizer": "apot", "shape": [4, 3, 3, 3], "bits": 2,
                      "rule": "scaled_codebook", "group_size": 108, "levels": [-1.0, -0.5, 0.5, 1.0],
                      "n_scales": 1, "offset": 0, "code_bytes": 27}],
       "tensors": [{"name": "conv.bias", "shape": [4], "offset": 31}]}
put("fuzz_export_lbq", "tiny.txt", framed(lbq, lbq_data))
put("fuzz_export_lbq", "tiny_raw.lbq", raw_framed(b"LOWBITQM", lbq, lbq_data))

# Checkpoint and .lbq as lowbit writes them now: safetensors with lowbit's metadata (the
# harness recomputes the two checksums, tests/fuzz/fuzz_framed.hpp).
def st_file(header, data):
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data
def st_checkpoint(tensors):
    header, data = {}, b""
    for name, shape in tensors:
        n = 1
        for d in shape: n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
        data += floats(n)
    meta = {"format": "lowbit.train_cifar", "config": {"model": "resnet20", "epochs": 2},
            "run": {"epoch": 1, "step": 10}, "loader": "0 1 2", "method_state": {}}
    header["__metadata__"] = {"lowbit.format": "lowbit.checkpoint", "lowbit.meta": json.dumps(meta)}
    return st_file(header, data)
put("fuzz_checkpoint", "run.safetensors", st_checkpoint(state))
lbq_table = [{"name": "conv.wq", "quantizer": "apot", "shape": [4, 3, 3, 3], "bits": 2,
              "rule": "scaled_codebook", "group_size": 108, "levels": [-1.0, -0.5, 0.5, 1.0]}]
put("fuzz_export_lbq", "tiny.safetensors", st_file(
    {"__metadata__": {"lowbit.format": "lowbit.quantized_model", "lowbit.meta": '{"model": "tiny"}',
                      "lowbit.quantized": json.dumps(lbq_table)},
     "conv.wq.scales": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
     "conv.bias": {"dtype": "F32", "shape": [4], "data_offsets": [4, 20]},
     "conv.wq.codes": {"dtype": "U8", "shape": [27], "data_offsets": [20, 47]}},
    floats(1, 0.1) + floats(4, 0.0) + codes))

# safetensors: 8-byte little-endian header length, JSON header, data.
def safetensors(tensors, meta=None):
    header, data = {}, b""
    if meta is not None: header["__metadata__"] = meta
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data
put("fuzz_safetensors", "two.safetensors",
    safetensors([("w", "F32", [2, 3], floats(6)), ("b", "F16", [2], b"\0\x3c\0\x3c")], {"format": "pt"}))
put("fuzz_safetensors", "ints.safetensors",
    safetensors([("i", "I64", [2], struct.pack("<qq", 1, -2)), ("u", "U8", [3], b"abc"), ("e", "F32", [0], b"")]))
PY
for d in "$OUT"/*/; do echo "fuzz_corpus: $(ls "$d" | wc -l) seeds in $d"; done
