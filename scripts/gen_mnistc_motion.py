#!/usr/bin/python3
"""Writes corrupt/testdata/mnistc/motion_blur_seed0.npy: MNIST-C's motion_blur through ImageMagick.

MNIST-C's motion_blur saves the PIL 'L' image as PNG, runs ImageMagick's MotionBlurImage(radius 10,
sigma 3, angle) on it through Wand, writes the result as PNG and decodes it. This script does the
same with the `convert` command of the same ImageMagick (Debian 12 imagemagick 6.9.11-60 Q16,
which the reference statistics used): PIL writes the PNG, `convert in.png -motion-blur
10x3+ANGLE out.png` blurs it, PIL reads the 8-bit result. The angles are the reference's seed-0
draws from draws.json (scripts/gen_mnistc_draws.py); the mean absolute change of the output
equals mad_per_seed[0] of stats.json (28.2204).

Needs: apt-get install imagemagick python3-pil python3-numpy. Run from the repository root:

    /usr/bin/python3 scripts/gen_mnistc_motion.py
"""
import json
import os
import subprocess
import tempfile

import numpy as np
from PIL import Image

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corrupt", "testdata", "mnistc")


def main():
    x = np.load(os.path.join(DIR, "inputs_gray28.npy"))
    with open(os.path.join(DIR, "draws.json")) as f:
        angles = json.load(f)["motion_blur"][0]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.png"), os.path.join(tmp, "out.png")
        for img, a in zip(x, angles):
            Image.fromarray(img, mode="L").save(src, format="PNG")
            subprocess.check_call(["convert", src, "-motion-blur", "10x3%+.17g" % a, dst])
            out.append(np.array(Image.open(dst).convert("L")))
    out = np.stack(out).astype(np.uint8)
    print("mean absolute change:", np.abs(out.astype(int) - x.astype(int)).mean())
    np.save(os.path.join(DIR, "motion_blur_seed0.npy"), out)


if __name__ == "__main__":
    main()
