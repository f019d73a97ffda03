"""PyTorch definitions of the rws model zoo (internal/nn), for golden vectors and parity checks.

The modules are named and ordered exactly like the rws state_dicts:
  cnn       features.{0,2,5,7} Conv2d, features.{4,9} MaxPool2d(2), classifier.{0,2} Linear
  vgg11/16  features.i (conv, ReLU, MaxPool2d(2, ceil_mode=True) each one index), global
            average pool, one Linear head named classifier
  resnet20  conv1, bn1, layer{1,2,3}.{0,1,2} basic blocks (conv1, bn1, conv2, bn2, and
            shortcut.0 / shortcut.1 = 1x1 conv + BN where the shape changes), linear

Also: the deterministic weights both sides compute (hash_fill), and a minimal safetensors
reader/writer (the Debian system has no python3-safetensors).
"""
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- models


def cnn(in_ch, h, w, classes):
    return _Named([
        ("features", nn.Sequential(
            nn.Conv2d(in_ch, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2))),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(nn.Linear(64 * (h // 4) * (w // 4), 128), nn.ReLU(), nn.Linear(128, classes))),
    ])


class _Named(nn.Module):
    """Sequential with named children."""

    def __init__(self, children):
        super().__init__()
        self._order = []
        for name, m in children:
            self.add_module(name, m)
            self._order.append(name)

    def forward(self, x):
        for name in self._order:
            x = getattr(self, name)(x)
        return x


VGG_CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def vgg(arch, in_ch, classes):
    layers, c = [], in_ch
    for v in VGG_CFG[arch]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return _Named([("features", nn.Sequential(*layers)), ("pool", nn.AdaptiveAvgPool2d(1)),
                   ("flatten", nn.Flatten()), ("classifier", nn.Linear(c, classes))])


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, in_ch, classes, n=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        planes_in = 16
        for i, planes in enumerate([16, 32, 64]):
            blocks = []
            for b in range(n):
                stride = 2 if i > 0 and b == 0 else 1
                blocks.append(BasicBlock(planes_in, planes, stride))
                planes_in = planes
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def build(arch, cfg):
    """cfg: dict with in_channels, height, width, classes (rws.arch_config)."""
    c, h, w, k = cfg["in_channels"], cfg["height"], cfg["width"], cfg["classes"]
    if arch == "cnn":
        return cnn(c, h, w, k)
    if arch in VGG_CFG:
        return vgg(arch, c, k)
    if arch == "resnet20":
        return ResNet(c, k)
    raise ValueError("unknown arch %r" % arch)


def preprocess(images_nhwc_u8, pre):
    """uint8 N,H,W,C -> float N,C,H,W with rws.preprocess {scale, mean, std}."""
    x = images_nhwc_u8.astype(np.float32) / np.float32(pre["scale"])
    x = (x - np.array(pre["mean"], np.float32)) / np.array(pre["std"], np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

# ---------------------------------------------------------------- deterministic values

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def splitmix64(x):
    """x: numpy uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hash_uniform(name, n):
    """n float32 values in [-1, 1): u_i = (splitmix64(fnv1a64(name) + i) >> 40) / 2^23 - 1, exact in
    float32. internal/nn/golden_test.go computes the same."""
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a64(name)) + np.arange(n, dtype=np.uint64)
    return ((splitmix64(x) >> np.uint64(40)).astype(np.float64) / 2 ** 23 - 1).astype(np.float32)


def hash_value(name, shape, fan_in):
    """The deterministic value of a state_dict entry, by the rule of its name (see golden_test.go)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = hash_uniform(name, n)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        v = np.zeros(n, np.float32)
    elif leaf == "running_mean":
        v = u * np.float32(0.1)
    elif leaf == "running_var":
        v = np.float32(1.25) + u * np.float32(0.25)
    elif leaf == "weight" and len(shape) == 1:  # batch norm scale
        v = np.float32(1) + u * np.float32(0.1)
    elif leaf == "bias":
        v = u * np.float32(0.1)
    else:  # conv / linear weight: He-uniform bound sqrt(6/fan_in), rounded to float32
        v = (u * np.float32(np.sqrt(6.0 / fan_in))).astype(np.float32)
    return v.reshape(shape)


def hash_state(model):
    """Fills model's state_dict with hash_value and returns it."""
    sd = model.state_dict()
    new = {}
    for name, t in sd.items():
        shape = tuple(t.shape)
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        v = hash_value(name, shape, fan_in)
        new[name] = torch.from_numpy(v.astype(np.int64) if t.dtype == torch.int64 else v).to(t.dtype)
    model.load_state_dict(new)
    return new


def hash_images(name, n, h, w, c):
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a64(name)) + np.arange(n * h * w * c, dtype=np.uint64)
    return (splitmix64(x) >> np.uint64(56)).astype(np.uint8).reshape(n, h, w, c)

# ---------------------------------------------------------------- safetensors

_DT = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64", np.dtype("uint8"): "U8"}
_NP = {v: k for k, v in _DT.items()}


def save_safetensors(path, tensors, metadata=None):
    """tensors: ordered dict name -> numpy array (little-endian), written in that order."""
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _DT[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """Returns (dict name -> numpy array, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        s, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + s:base + e], dtype=_NP[info["dtype"]]).reshape(info["shape"]).copy()
    return out, meta
