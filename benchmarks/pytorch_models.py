"""PyTorch definitions of lowbit's models under the common PyTorch names, and safetensors files
written and read with the standard library (json + struct) and numpy, no extra package.
docs/pytorch.md has the name table; lowbit's side is include/lowbit/nn/pytorch_names.hpp.

  ResNetCifar(depth, shortcut)  akamaster/pytorch_resnet_cifar10's names: conv1, bn1,
                                layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2[,shortcut.0,shortcut.1]},
                                linear. Shortcut "A": stride-2 subsampling and zero channels
                                split evenly before and after (no parameters); "B": 1x1 conv +
                                BN where the shape changes.
  VGGSmall()                    IR-Net's / RBNN's vgg_small names: conv0..conv5, bn0..bn5, fc;
                                each max-pool sits between its conv and BN (LQ-Nets' order).
  LeNet5()                      conv1, conv2, fc1, fc2 (ALQ's lenet5.py): conv -> pool -> ReLU.

PyTorch's default initialization throughout (benchmarks/pytorch_quickstart.py relies on it
matching benchmarks/pytorch_train.py's ResNet20 draw for draw).
"""
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class PadShortcut(nn.Module):
    """Option A: x[:, :, ::s, ::s] with (cout - cin) zero channels, half before, half after."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.pad, self.stride = cout - cin, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, shortcut):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = PadShortcut(cin, cout, stride) if shortcut == "A" else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(self, depth=20, shortcut="A", num_classes=10, in_channels=3):
        super().__init__()
        assert (depth - 2) % 6 == 0 and shortcut in ("A", "B")
        n = (depth - 2) // 6
        self.conv1, self.bn1 = conv3x3(in_channels, 16), nn.BatchNorm2d(16)
        cin = 16
        for s, (cout, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1, shortcut))
                cin = cout
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(x.mean(dim=(2, 3)))


class VGGSmall(nn.Module):
    def __init__(self, num_classes=10, in_channels=3):
        super().__init__()
        cin = in_channels
        for i, cout in enumerate((128, 128, 256, 256, 512, 512)):
            setattr(self, "conv%d" % i, conv3x3(cin, cout))
            setattr(self, "bn%d" % i, nn.BatchNorm2d(cout))
            cin = cout
        self.pooling = nn.MaxPool2d(2)
        self.fc = nn.Linear(512 * 4 * 4, num_classes)

    def forward(self, x):
        for i in range(6):
            x = getattr(self, "conv%d" % i)(x)
            if i % 2 == 1:
                x = self.pooling(x)
            x = F.relu(getattr(self, "bn%d" % i)(x))
        return self.fc(torch.flatten(x, 1))


class LeNet5(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, size=28):
        super().__init__()
        side = ((size - 4) // 2 - 4) // 2
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * side * side, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def build(model, shortcut="A"):
    """The model a lowbit config names ("resnet20", "vgg_small", "lenet5"; shortcut A or B)."""
    if model.startswith("resnet"):
        return ResNetCifar(int(model[6:]), shortcut)
    return {"vgg_small": VGGSmall, "lenet5": LeNet5}[model]()


# safetensors, as safetensors.torch.save_file lays it out: compact JSON header padded with
# spaces to 8 bytes, "__metadata__" first, data ordered by dtype width (widest first).
DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8"), torch.float64: ("F64", "<f8"),
          torch.float16: ("F16", "<f2"), torch.int32: ("I32", "<i4"), torch.uint8: ("U8", "u1")}
NUMPY = {name: np_type for name, np_type in DTYPES.values()}


def save_safetensors(path, state, metadata=None):
    items = [(name, t.detach().contiguous().cpu()) for name, t in state.items()]
    items.sort(key=lambda kv: -kv[1].element_size())
    header, blobs, offset = {"__metadata__": metadata or {"format": "pt"}}, [], 0
    for name, t in items:
        dtype, np_type = DTYPES[t.dtype]
        blob = t.numpy().astype(np_type, copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_safetensors(path):
    """(state dict of tensors, metadata); lowbit's checksums are left to lowbit."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    metadata = header.pop("__metadata__", {})
    data, state = blob[8 + n:], {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        values = np.frombuffer(data[begin:end], dtype=NUMPY[e["dtype"]]).reshape(e["shape"])
        state[name] = torch.from_numpy(values.copy())
    return state, metadata
