#!/usr/bin/python3
"""Writes quant/testdata/vectors.json: byte-exact vectors for quant's bit packing and linear codec.

An implementation independent of the Go code (Python integers as bit streams, numpy float64
arithmetic), from the layout in quant/doc.go:
  pack:   code i's b bits occupy stream bits i*b .. i*b+b-1, LSB first; stream bit k is bit k%8
          of byte k//8; padding bits of the last byte are zero.
  linear: per group, min/max of the float32 values; q = round((x-min)/(max-min)*(2^b-1)) (0 when
          max == min); decoded = float32(min + q*(max-min)/(2^b-1)) evaluated in float64, with
          q == 0 giving min and q == 2^b-1 giving max exactly.
Floats are written as the hex of their float32 bits. Seeded, so reruns give the same file.

Usage (from the repository root): /usr/bin/python3 scripts/gen_quant_vectors.py
"""
import json
import os

import numpy as np

rng = np.random.default_rng(20240603)


def pack(codes, bits):
    stream = 0
    for i, c in enumerate(codes):
        assert 0 <= c < (1 << bits)
        stream |= int(c) << (i * bits)
    n = (len(codes) * bits + 7) // 8
    return stream.to_bytes(n, "little").hex()


def f32hex(v):
    return "%08x" % np.float32(v).view(np.uint32)


def linear(x, groups, bits):
    per = len(x) // groups
    L = (1 << bits) - 1
    codes, params, dec = [], [], []
    for g in range(groups):
        xs = x[g * per:(g + 1) * per]
        lo, hi = np.float32(xs.min()), np.float32(xs.max())
        params += [f32hex(lo), f32hex(hi)]
        for v in xs:
            if hi > lo:
                q = int(np.round((np.float64(v) - np.float64(lo)) / (np.float64(hi) - np.float64(lo)) * L))
            else:
                q = 0
            q = min(max(q, 0), L)
            if q == 0:
                d = lo
            elif q == L:
                d = hi
            else:
                d = np.float32(np.float64(lo) + q * (np.float64(hi) - np.float64(lo)) / L)
            codes.append(q)
            dec.append(f32hex(d))
    return codes, params, dec


def main():
    out = {"source": "scripts/gen_quant_vectors.py", "pack": [], "linear": []}
    for bits in range(1, 9):
        for n in (0, 1, 3, 7, 8, 9, 17, 33):
            codes = [int(c) for c in rng.integers(0, 1 << bits, size=n)]
            out["pack"].append({"bits": bits, "codes": codes, "packed": pack(codes, bits)})
    # The worked example of quant/doc.go.
    out["pack"].append({"bits": 3, "codes": [5, 3, 7], "packed": pack([5, 3, 7], 3)})
    for bits in (1, 2, 3, 5, 8):
        for groups in (1, 4):
            x = (rng.standard_normal(32) * 0.01).astype(np.float32)
            if groups == 4:
                x[8:16] = np.float32(0.5)  # a constant channel
            codes, params, dec = linear(x, groups, bits)
            out["linear"].append({
                "bits": bits, "groups": groups,
                "x": [f32hex(v) for v in x],
                "params": params, "packed": pack(codes, bits), "decoded": dec,
            })
    path = os.path.join(os.path.dirname(__file__), "..", "quant", "testdata", "vectors.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
