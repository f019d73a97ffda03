#!/usr/bin/python3
"""Writes signature/testdata/parity/: checkpoints and the expected signature for a parity test.

Four float32 checkpoints of one small layout (init, clean, robust1, robust2: PyTorch-style names,
stored sorted as safetensors writers do) and expected.safetensors (F64) holding, for every
parameter of the first two weight layers (conv 0 and conv 3, with the batch norm 1 after conv 0):
    d = mean(robust1, robust2) - init,  a = clean - init
    RWS = d - (<d,a>/<a,a>) a
computed by numpy in float64 from the float32 values, independently of the Go code. One tensor
has clean == init (a = 0), where RWS must be d. Seeded; reruns give the same files.

Usage (from the repository root): /usr/bin/python3 scripts/gen_signature_vectors.py
"""
import json
import os
import struct

import numpy as np

LAYOUT = [
    ("features.0.weight", (8, 3, 3, 3)),
    ("features.0.bias", (8,)),
    ("features.1.weight", (8,)),
    ("features.1.bias", (8,)),
    ("features.1.running_mean", (8,)),
    ("features.1.running_var", (8,)),
    ("features.3.weight", (16, 8, 3, 3)),
    ("features.3.bias", (16,)),
    ("classifier.weight", (10, 16)),
    ("classifier.bias", (10,)),
]
SELECTED = ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
            "features.3.weight", "features.3.bias"]


def write_safetensors(path, tensors, dtype="F32"):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        arr = tensors[name]
        raw = arr.astype("<f4" if dtype == "F32" else "<f8").tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    rng = np.random.default_rng(31337)
    init = {n: (rng.standard_normal(s) * 0.1).astype(np.float32) for n, s in LAYOUT}
    def moved(scale):
        return {n: (v + rng.standard_normal(v.shape) * scale).astype(np.float32) for n, v in init.items()}
    clean, r1, r2 = moved(0.01), moved(0.02), moved(0.02)
    clean["features.0.bias"] = init["features.0.bias"].copy()  # a = 0 here
    out = os.path.join(os.path.dirname(__file__), "..", "signature", "testdata", "parity")
    os.makedirs(out, exist_ok=True)
    for name, m in (("init", init), ("clean", clean), ("robust1", r1), ("robust2", r2)):
        write_safetensors(os.path.join(out, name + ".safetensors"), m)
    expected = {}
    for n in SELECTED:
        z = init[n].astype(np.float64).ravel()
        d = (r1[n].astype(np.float64).ravel() + r2[n].astype(np.float64).ravel()) / 2 - z
        a = clean[n].astype(np.float64).ravel() - z
        aa = a @ a
        rws = d - (d @ a / aa) * a if aa > 0 else d
        expected[n] = rws.reshape(init[n].shape)
    write_safetensors(os.path.join(out, "expected.safetensors"), expected, "F64")


if __name__ == "__main__":
    main()
