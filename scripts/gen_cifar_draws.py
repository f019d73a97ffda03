#!/usr/bin/python3
"""Writes the cifar10-c reference draws and ImageMagick outputs used by corrupt/cifar_draws_test.go.

stats.json (shared/testdata/corruptions) was made by make_cifar_c.py with
np.random.seed((seed*100000 + corruption_index*100 + severity) % 2**32) before each pass over the 16
inputs. For corruptions whose only randomness is plain NumPy calls in a known order, replaying those
calls after the same seed recovers the draws the reference made. This script does that for seed 0:

* glass_blur (index 4): for every image, iteration, row h = 31..2 and column w = 31..2 the pair
  dx, dy = np.random.randint(-1, 1, size=(2,)). Written to corrupt/testdata/cifar10c/glass_draws.npy,
  int8, shape (5, 16, 1800, 2) (severity, image, draw; severities with one iteration use the first
  900 draws).
* motion_blur (index 5): one angle np.random.uniform(-45, 45) per image. Written to
  corrupt/testdata/cifar10c/draws.json as {"motion_blur": [[16 angles] × 5 severities]}.

It also writes corrupt/testdata/cifar10c/motion_blur_seed0.npy, uint8 (5, 16, 32, 32, 3): the 16
inputs through make_cifar_c's motion blur at those angles, done as the reference does it (PIL writes
a PNG, ImageMagick blurs it, the 8-bit PNG result is decoded), with the `convert` command of
ImageMagick 6.9.11-60 Q16 (`convert in.png -motion-blur RADIUSxSIGMA+ANGLE out.png`) instead of
Wand's MagickMotionBlurImage on the same library.

No reference code is copied: the parameters and the order of the calls are those documented in
shared/CORRUPTIONS.md §2.1. Needs python3-numpy, python3-pil and imagemagick. Run from the
repository root:

    /usr/bin/python3 scripts/gen_cifar_draws.py
"""
import json
import os
import subprocess
import tempfile

import numpy as np
from PIL import Image

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corrupt", "testdata", "cifar10c")
GLASS_ITERS = [1, 1, 1, 2, 2]
MOTION = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)]


def seed_rule(seed, index, severity):
    np.random.seed((seed * 100000 + index * 100 + severity) % 2**32)


def main():
    x = np.load(os.path.join(DIR, "inputs_rgb32.npy"))
    n = len(x)

    glass = np.zeros((5, n, 1800, 2), dtype=np.int8)
    for s in range(1, 6):
        seed_rule(0, 4, s)
        for i in range(n):
            k = 0
            for _ in range(GLASS_ITERS[s - 1]):
                for _h in range(31, 1, -1):
                    for _w in range(31, 1, -1):
                        glass[s - 1, i, k] = np.random.randint(-1, 1, size=(2,))
                        k += 1
    np.save(os.path.join(DIR, "glass_draws.npy"), glass)

    angles = []
    for s in range(1, 6):
        seed_rule(0, 5, s)
        angles.append([float(np.random.uniform(-45, 45)) for _ in range(n)])
    with open(os.path.join(DIR, "draws.json"), "w") as f:
        json.dump({"motion_blur": angles}, f, indent=1)

    out = np.zeros((5, n, 32, 32, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.png"), os.path.join(tmp, "out.png")
        for s in range(1, 6):
            r, sigma = MOTION[s - 1]
            for i in range(n):
                Image.fromarray(x[i], mode="RGB").save(src, format="PNG")
                arg = "%gx%g%+.17g" % (r, sigma, angles[s - 1][i])
                subprocess.check_call(["convert", src, "-motion-blur", arg, dst])
                out[s - 1, i] = np.array(Image.open(dst).convert("RGB"))
            mad = np.abs(out[s - 1].astype(int) - x.astype(int)).mean()
            print("motion_blur severity %d: mean absolute change %.4f" % (s, mad))
    np.save(os.path.join(DIR, "motion_blur_seed0.npy"), out)


if __name__ == "__main__":
    main()
