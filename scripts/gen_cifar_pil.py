#!/usr/bin/python3
"""Writes corrupt/testdata/cifar10c/pil_*.npy: Pillow's JPEG round trip and BOX/NEAREST resizes on
an image whose size is not a multiple of 16, for corrupt/digital_test.go.

The input (pil_input.npy, uint8 (37, 45, 3)) tiles the reference inputs (inputs_rgb32.npy); its
grey version is PIL's convert('L'). Outputs, each stacked over the listed settings:

* pil_jpeg_rgb.npy (3, 37, 45, 3) and pil_jpeg_gray.npy (3, 37, 45): Image.save(format='JPEG',
  quality=q) then Image.open, for q = 80, 25, 7 (Pillow 9.4 with libjpeg-turbo 2.1.5, defaults:
  4:2:0 for RGB, islow DCT, fancy upsampling).
* pil_pixelate_box.npy and pil_pixelate_nearest.npy (2, 37, 45, 3): resize to
  (int(45c), int(37c)) with BOX, then back to (45, 37) with BOX or NEAREST, for c = 0.65, 0.3.

Run from the repository root: /usr/bin/python3 scripts/gen_cifar_pil.py
"""
import io
import os

import numpy as np
from PIL import Image

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corrupt", "testdata", "cifar10c")
H, W = 37, 45


def jpeg(img, q):
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=q)
    return np.array(Image.open(buf))


def main():
    x = np.load(os.path.join(DIR, "inputs_rgb32.npy"))
    src = np.zeros((H, W, 3), dtype=np.uint8)
    for y in range(H):
        for c in range(W):
            src[y, c] = x[(y // 32) * 2 + c // 32][y % 32, c % 32]
    np.save(os.path.join(DIR, "pil_input.npy"), src)
    rgb = Image.fromarray(src, mode="RGB")
    gray = rgb.convert("L")
    np.save(os.path.join(DIR, "pil_jpeg_rgb.npy"), np.stack([jpeg(rgb, q) for q in (80, 25, 7)]))
    np.save(os.path.join(DIR, "pil_jpeg_gray.npy"), np.stack([jpeg(gray, q) for q in (80, 25, 7)]))
    for name, up in (("box", Image.BOX), ("nearest", Image.NEAREST)):
        out = []
        for c in (0.65, 0.3):
            small = rgb.resize((int(W * c), int(H * c)), Image.BOX)
            out.append(np.array(small.resize((W, H), up)))
        np.save(os.path.join(DIR, "pil_pixelate_%s.npy" % name), np.stack(out))


if __name__ == "__main__":
    main()
