#!/usr/bin/python3
"""Generates the dtype conversion and safetensors layout test vectors.

Run from the repository root with Debian's python3-numpy and python3-torch:
    /usr/bin/python3 scripts/gen_dtype_vectors.py
Outputs (committed):
    tensor/testdata/narrowing.json   float32 bits -> F16 bits (numpy astype, round-to-nearest-even)
                                     and BF16 bits (torch .to(torch.bfloat16), round-to-nearest-even)
    tensor/testdata/f16_all.bin      float32 little-endian value of every F16 code 0..65535 (numpy)
    tensor/testdata/f8.json          float32 value of every F8_E4M3FN and F8_E5M2 code, computed
                                     here from the OCP FP8 specification (v1.0, 2023)
    safetensors/testdata/dtypes.safetensors  one tensor per dtype, written by hand from the
                                     raw layout (8-byte header length, JSON, data), in rws' canonical
                                     header form: keys in data order after a sorted __metadata__,
                                     compact separators, padded with spaces to 8 bytes.
    safetensors/testdata/dtypes.json the expected values of that file.
"""
import json
import math
import struct

import numpy as np
import torch

rng = np.random.RandomState(20261125)

# Values chosen to hit every rounding path: ties to even, subnormals, overflow, NaN, signed zero.
special = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, 1e6, -1e6, float("inf"), float("-inf"),
           2.0**-14, 2.0**-24, 2.0**-25, 2.0**-25 * 1.0000001, 3 * 2.0**-25, 2.0**-26, 6.1e-5, 5.96e-8,
           1.0009765625, 1.00048828125, 1.00146484375, 0.1, 0.2, 0.3, 1.0 / 3, 3.14159265, 1e-40,
           -1e-45, 3.4028235e38, 1.00390625, 1.001953125, 1.0078125, 255.5]
values = np.array(special + list(rng.randn(500) * 10.0 ** rng.uniform(-8, 6, 500)), dtype=np.float32)
# Exact ties for BF16 (low 16 bits = 0x8000) and F16 (low 13 bits = 0x1000), even and odd.
ties = []
for base in rng.randint(0x3000, 0x4700, 40):
    ties.append((int(base) << 16) | 0x8000)
    ties.append(((int(base) << 16) | 0x1000) & 0xFFFFE000 | 0x1000)
values = np.concatenate([values, np.array(ties, dtype=np.uint32).view(np.float32)])

bits = values.view(np.uint32)
f16 = values.astype(np.float16).view(np.uint16)
bf16 = torch.from_numpy(values.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
cases = []
for b, h, bh, v in zip(bits, f16, bf16, values):
    if np.isnan(v):
        continue
    cases.append({"f32": int(b), "f16": int(h), "bf16": int(bh)})
with open("tensor/testdata/narrowing.json", "w") as f:
    json.dump({"source": "numpy %s astype(float16); torch %s to(bfloat16)" % (np.__version__, torch.__version__),
               "cases": cases}, f, indent=0)

np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).astype("<f4").tofile("tensor/testdata/f16_all.bin")


def e4m3fn(code):
    s = -1.0 if code & 0x80 else 1.0
    e = (code >> 3) & 0xF
    m = code & 7
    if e == 0xF and m == 7:
        return None  # NaN
    if e == 0:
        return s * m / 8 * 2.0**-6
    return s * (1 + m / 8) * 2.0 ** (e - 7)


def e5m2(code):
    s = -1.0 if code & 0x80 else 1.0
    e = (code >> 2) & 0x1F
    m = code & 3
    if e == 0x1F:
        return "inf" if m == 0 else None
    if e == 0:
        return s * m / 4 * 2.0**-14
    return s * (1 + m / 4) * 2.0 ** (e - 15)


def enc(v, code):
    if v is None:
        return "nan"
    if v == "inf":
        return "-inf" if code & 0x80 else "inf"
    return v


with open("tensor/testdata/f8.json", "w") as f:
    json.dump({"source": "OCP 8-bit Floating Point Specification (OFP8) rev 1.0, computed by scripts/gen_dtype_vectors.py",
               "F8_E4M3": [enc(e4m3fn(c), c) for c in range(256)],
               "F8_E5M2": [enc(e5m2(c), c) for c in range(256)]}, f, indent=0)

# A safetensors file holding one tensor per dtype, written from the raw layout.
small = np.array([0.0, -1.5, 2.0**-24, 65504.0, 1.0 / 3, -0.0], dtype=np.float32)
tensors = [
    ("f64", "F64", [2, 3], small.astype("<f8").reshape(2, 3)),
    ("f32", "F32", [2, 3], small.astype("<f4").reshape(2, 3)),
    ("f16", "F16", [3, 2], small.astype("<f2").reshape(3, 2)),
    ("bf16", "BF16", [6], torch.from_numpy(small).to(torch.bfloat16).view(torch.int16).numpy().astype("<i2")),
    ("i64", "I64", [2], np.array([-(2**40), 2**40 + 1], dtype="<i8")),
    ("i32", "I32", [3], np.array([-7, 0, 2**31 - 1], dtype="<i4")),
    ("i16", "I16", [2], np.array([-32768, 32767], dtype="<i2")),
    ("i8", "I8", [2, 2], np.array([[-128, 127], [0, -1]], dtype="i1")),
    ("u8", "U8", [4], np.array([0, 1, 128, 255], dtype="u1")),
    ("bool", "BOOL", [3], np.array([1, 0, 1], dtype="u1")),
    ("f8_e4m3", "F8_E4M3", [4], np.array([0x38, 0xB8, 0x7E, 0x01], dtype="u1")),
    ("f8_e5m2", "F8_E5M2", [4], np.array([0x3C, 0xBC, 0x7B, 0x01], dtype="u1")),
    ("empty", "F32", [0, 4], np.zeros((0, 4), dtype="<f4")),
    ("scalar", "F32", [], np.array(2.5, dtype="<f4")),
]
meta = {"format": "pt", "source": "scripts/gen_dtype_vectors.py"}
header = '{"__metadata__":' + json.dumps(dict(sorted(meta.items())), separators=(",", ":"))
off = 0
data = b""
for name, dt, shape, arr in tensors:
    raw = arr.tobytes()
    header += ',"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (
        name, dt, json.dumps(shape, separators=(",", ":")), off, off + len(raw))
    off += len(raw)
    data += raw
header += "}"
header += " " * ((8 - len(header) % 8) % 8)
with open("safetensors/testdata/dtypes.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header.encode() + data)

expected = {}
for name, dt, shape, arr in tensors:
    if dt == "BF16":
        vals = torch.from_numpy(arr.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    elif dt == "F8_E4M3":
        vals = np.array([e4m3fn(int(c)) for c in arr], dtype=np.float64)
    elif dt == "F8_E5M2":
        vals = np.array([e5m2(int(c)) for c in arr], dtype=np.float64)
    else:
        vals = arr.astype(np.float64)
    expected[name] = {"dtype": dt, "shape": shape, "values": [float(v) for v in np.ravel(vals)]}
with open("safetensors/testdata/dtypes.json", "w") as f:
    json.dump({"metadata": meta, "tensors": expected}, f, indent=1)
print("wrote vectors:", len(cases), "narrowing cases")
