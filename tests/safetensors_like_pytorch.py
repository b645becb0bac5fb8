#!/usr/bin/python3
"""A second, independent safetensors writer and reader for tests/test_safetensors.cpp, with the
standard library only (json + struct), so lowbit's C++ is checked against code that shares
nothing with it.

  safetensors_like_pytorch.py write PATH   writes PATH the way safetensors.torch.save_file lays a
                                           file out: compact JSON, "__metadata__" {"format": "pt"},
                                           the data ordered by dtype width, widest first, then by
                                           name, the header padded with spaces to 8 bytes.
  safetensors_like_pytorch.py read PATH    checks PATH (written by lowbit) and prints, as JSON, its
                                           header length, metadata, the CRC-32Cs of its data section
                                           and of its header (docs/safetensors.md) computed here,
                                           and each tensor's dtype, shape and bytes in hex. Exits
                                           non-zero on any problem.
"""
import json
import struct
import sys

WIDTH = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2,
         "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1}

# name: (dtype, shape, struct format of one element, values). test_safetensors.cpp holds the
# same values; keep both in step. BF16 is packed as F32 and cut to its top two bytes: the
# values are chosen exact in bfloat16, so cutting equals rounding.
TENSORS = {
    "conv1.weight": ("F32", [2, 1, 2, 2], "f", [0.1, -0.2, 0.3, -0.4, 1.5, -2.25, 1e-8, 3.4e38]),
    "bn1.running_var": ("F32", [2], "f", [1.0, 0.5]),
    "bn1.num_batches_tracked": ("I64", [], "q", [781]),
    "fc.bias": ("F16", [4], "e", [1.0, -2.0, 65504.0, 2.0 ** -24]),
    "fc.scale": ("BF16", [3], "f", [1.0, -123.5, 2.0 ** -100]),
    "steps": ("I64", [2], "q", [-(2 ** 40), 2 ** 62]),
}


def crc32c(data):  # bit by bit, unlike the C++ table: the Castagnoli polynomial, reflected
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def write(path):
    header = {"__metadata__": {"format": "pt"}}
    data = b""
    for name in sorted(TENSORS, key=lambda n: (-WIDTH[TENSORS[n][0]], n)):
        dtype, shape, fmt, values = TENSORS[name]
        blob = struct.pack("<%d%s" % (len(values), fmt), *values)
        if dtype == "BF16":
            blob = b"".join(blob[i + 2:i + 4] for i in range(0, len(blob), 4))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "duplicate key in %r" % keys
    return dict(pairs)


def read(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0, "header length %d is not a multiple of 8" % n
    text = blob[8:8 + n].decode("utf-8")
    assert text.rstrip(" ") == text.strip(), "header padded with something other than trailing spaces"
    header = json.loads(text, object_pairs_hook=no_duplicates)
    # The header checksum covers the parsed header without the two checksum keys, written as
    # compact JSON with sorted keys (docs/safetensors.md).
    canonical = json.loads(text)
    for key in ("lowbit.crc32c", "lowbit.header_crc32c"):
        canonical.get("__metadata__", {}).pop(key, None)
    canonical = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    assert all(isinstance(v, str) for v in meta.values()), "metadata values must be strings"
    pos, out = 0, {}
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, end = t["data_offsets"]
        count = 1
        for d in t["shape"]:
            count *= d
        assert begin == pos, "%s starts at %d, expected %d" % (name, begin, pos)
        assert end - begin == count * WIDTH[t["dtype"]], "%s has the wrong byte length" % name
        assert begin % WIDTH[t["dtype"]] == 0, "%s is not aligned to its element size" % name
        out[name] = {"dtype": t["dtype"], "shape": t["shape"], "hex": data[begin:end].hex()}
        pos = end
    assert pos == len(data), "the tensors end at %d, the data section at %d" % (pos, len(data))
    order = list(header)  # the header's order (json keeps it)
    print(json.dumps({"header_length": n, "metadata": meta, "crc32c": "%08x" % crc32c(data),
                      "header_crc32c": "%08x" % crc32c(canonical),
                      "order": order, "tensors": out}))


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](sys.argv[2])
