#!/usr/bin/python3
"""Writes the .npy test vectors of package npy into npy/testdata.

Run from the repository root with Debian's python3-numpy (1.24.2 was used):

    /usr/bin/python3 scripts/gen_npy_vectors.py

Valid vectors are named <name>.npy and hold values given by a formula of the flat index i
(i = 0, 1, ... in C order), which npy/npy_test.go recomputes:

    u1: (i*37 + 11) % 256             uint8
    i1: (i*37 + 11) % 256 - 128       int8
    i2: i*1009 - 30000                int16
    i4: i*7919 - 100000               int32
    i8: i*1000003 - 5000000000        int64
    f2: (i - 3.5) * 0.1, rounded to float16
    f4: (i - 3.5) * 0.1, computed in float64 then rounded to float32
    f8: (i - 3.5) * 0.1               float64
    b1: i % 3 == 0                    bool

Invalid vectors are named bad_<name>.npy; the error each must give is in the test table.
"""
import io
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "npy", "testdata")


def values(code, shape):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    if code == "u1":
        v = ((i * 37 + 11) % 256).astype(np.uint8)
    elif code == "i1":
        v = ((i * 37 + 11) % 256 - 128).astype(np.int8)
    elif code == "i2":
        v = (i * 1009 - 30000).astype(np.int16)
    elif code == "i4":
        v = (i * 7919 - 100000).astype(np.int32)
    elif code == "i8":
        v = (i * 1000003 - 5000000000).astype(np.int64)
    elif code == "f2":
        v = ((i - 3.5) * 0.1).astype(np.float16)
    elif code == "f4":
        v = ((i - 3.5) * 0.1).astype(np.float32)
    elif code == "f8":
        v = (i - 3.5) * 0.1
    elif code == "b1":
        v = i % 3 == 0
    else:
        raise ValueError(code)
    return v.reshape(shape)


def save(name, arr, version=None):
    path = os.path.join(OUT, name + ".npy")
    with open(path, "wb") as f:
        if version is None:
            np.save(f, arr)
        else:
            np.lib.format.write_array(f, arr, version=version)


def raw(name, data):
    with open(os.path.join(OUT, name + ".npy"), "wb") as f:
        f.write(data)


def header_bytes(header, version=(1, 0), align=64):
    """Wraps a header dict literal like numpy's _wrap_header, with a chosen alignment."""
    h = header.encode("latin1")
    fmt = "<H" if version[0] == 1 else "<I"
    pre = b"\x93NUMPY" + bytes(version)
    hlen = len(h) + 1
    pad = align - ((len(pre) + struct.calcsize(fmt) + hlen) % align)
    return pre + struct.pack(fmt, hlen + pad) + h + b" " * pad + b"\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".npy"):
            os.remove(os.path.join(OUT, f))

    # Valid: every supported dtype in a few shapes, numpy's default version (1.0).
    shapes = {"s0": (), "s5": (5,), "s2x3": (2, 3), "s2x3x4": (2, 3, 4), "s0x3": (0, 3)}
    for code in ["u1", "i1", "i2", "i4", "i8", "f2", "f4", "f8", "b1"]:
        for sname, shape in shapes.items():
            save("%s_%s" % (code, sname), values(code, shape))
    # Image-like arrays: N×H×W and N×H×W×C uint8.
    save("u1_images_3x4x5", values("u1", (3, 4, 5)))
    save("u1_images_2x4x5x3", values("u1", (2, 4, 5, 3)))
    # Versions 2.0 and 3.0, written explicitly.
    save("v2_f4_s2x3", values("f4", (2, 3)), version=(2, 0))
    save("v3_u1_s2x3x4", values("u1", (2, 3, 4)), version=(3, 0))
    # A long shape (header grows past 64 bytes) and a big first dimension.
    save("u1_s1x1x1x1x1x1x1x1x1x1x1x1x2", values("u1", (1,) * 12 + (2,)))
    save("u1_s100000x1", values("u1", (100000, 1)))
    # Valid but written by older numpy: 16-byte alignment, keys in another order, no trailing
    # comma, no growth padding.
    d = values("i4", (2, 3)).tobytes()
    raw("old16_i4_s2x3",
        header_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", align=16) + d)
    raw("reordered_i4_s2x3",
        header_bytes("{'shape': (2, 3), 'fortran_order': False, 'descr': '<i4'}") + d)

    # Invalid or unsupported.
    save("bad_fortran", np.asfortranarray(values("f4", (2, 3))))
    save("bad_bigendian", values("f4", (2, 3)).astype(">f4"))
    save("bad_complex", np.arange(4, dtype=np.complex64))
    save("bad_structured", np.zeros(3, dtype=[("a", "<i4"), ("b", "<f4")]))
    save("bad_u2", np.arange(4, dtype=np.uint16))
    good = io.BytesIO()
    np.save(good, values("u1", (2, 3, 4)))
    good = good.getvalue()
    raw("bad_magic", b"\x93NUMPZ" + good[6:])
    raw("bad_version", good[:6] + b"\x04\x00" + good[8:])
    raw("bad_truncated_data", good[:-1])
    raw("bad_extra_data", good + b"\x00")
    raw("bad_truncated_header", good[:40])
    raw("bad_short", good[:7])
    raw("bad_no_newline", good[:127] + b" " + good[128:])
    raw("bad_shape_not_tuple",
        header_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': 5, }") + bytes(5))
    raw("bad_negative_dim",
        header_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (-1, 5), }"))
    raw("bad_missing_key", header_bytes("{'descr': '|u1', 'shape': (5,), }") + bytes(5))
    raw("bad_extra_key",
        header_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), 'x': 1, }") + bytes(5))
    raw("bad_duplicate_key",
        header_bytes("{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (5,), }")
        + bytes(5))
    raw("bad_overflow",
        header_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"))


if __name__ == "__main__":
    main()
