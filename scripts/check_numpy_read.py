#!/usr/bin/python3
"""Reads a safetensors file written by rws with NumPy alone, from the raw layout, and compares
every tensor with the expected values.

usage: check_numpy_read.py FILE.safetensors EXPECTED.json
EXPECTED.json: {"metadata": {...}, "tensors": {name: {"dtype", "shape", "values": [...]}}}
Exit 0 when everything matches; prints the first mismatch and exits 1 otherwise.
"""
import json
import struct
import sys

import numpy as np

NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
      "U8": "u1", "BOOL": "u1"}


def main(path, expected_path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0, "data area not aligned to 8 bytes"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    expected = json.load(open(expected_path))
    meta = header.pop("__metadata__", {})
    if meta != expected["metadata"]:
        sys.exit("metadata %r != %r" % (meta, expected["metadata"]))
    if set(header) != set(expected["tensors"]):
        sys.exit("tensor names %r != %r" % (sorted(header), sorted(expected["tensors"])))
    end = 0
    for name, info in header.items():
        want = expected["tensors"][name]
        b, e = info["data_offsets"]
        end = max(end, e)
        if info["dtype"] != want["dtype"] or info["shape"] != want["shape"]:
            sys.exit("%s: %s %s != %s %s" % (name, info["dtype"], info["shape"], want["dtype"], want["shape"]))
        if info["dtype"] == "BF16":
            bits = np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(data[b:e], dtype=NP[info["dtype"]])
        arr = arr.reshape(info["shape"]).astype(np.float64).ravel()
        if not np.array_equal(arr, np.array(want["values"], dtype=np.float64), equal_nan=True):
            sys.exit("%s: values %r != %r" % (name, arr[:8], want["values"][:8]))
    if end != len(data):
        sys.exit("data area has %d bytes, tensors end at %d" % (len(data), end))
    print("numpy read %d tensors from %s: all match" % (len(header), path))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
