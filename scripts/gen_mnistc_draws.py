#!/usr/bin/python3
"""Writes the random draws of the MNIST-C reference statistics into corrupt/testdata/mnistc.

shared/testdata/corruptions/stats.json holds, for each MNIST-C corruption, the mean absolute
change per seed (mad_per_seed) of the Python reference (google-research/mnist-c corruptions.py at
bba57e4c) on the 16 images of inputs_gray28.npy. Before each (corruption, seed) pass over the 16
images the generator called

    np.random.seed((seed*100000 + corruption_index*100 + severity) % 2**32)

(corruption_index: position in CORRUPTIONS without identity; severity: the function's default,
0 when it has none). The draws a corruption makes do not depend on the image, so replaying the
same NumPy calls in the same order recovers them exactly. This script replays, per seed 0-4 and
image 0-15, only the random calls of each function (no image processing), so that the Go tests
can feed the reference's own random inputs to the Go port and compare per-seed statistics
almost exactly.

Output (run from the repository root with Debian's python3-numpy; 1.24.2 was used):

    /usr/bin/python3 scripts/gen_mnistc_draws.py

  draws.json         {"motion_blur": [[angle]*16]*5, "shear": [[sign]*16]*5, "rotate": ...,
                      "translate": [[[sx, sy]]*16]*5, "dotted_line": [[[r0, r1]]*16]*5,
                      "zigzag": [[[r0, r1]]*16]*5}
  glass_codes.npy    uint8 (5, 16, 1352): per visited pixel (pass, h = 27..2, w = 27..2)
                     bit 0 = swap, bit 1 = (dx == -1), bit 2 = (dy == -1)
  spatter_seed0.npy  float64 (16, 28, 28): the N(0.65, 0.3) liquid layers of seed 0
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corrupt", "testdata", "mnistc")
NAMES = ["shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate",
         "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag",
         "canny_edges"]
SEVERITY = {"glass_blur": 1, "motion_blur": 1, "shear": 2, "rotate": 2, "translate": 3,
            "spatter": 4}
SEEDS = range(5)
IMAGES = 16


def seed_for(name, seed):
    np.random.seed((seed * 100000 + NAMES.index(name) * 100 + SEVERITY.get(name, 0)) % 2**32)


def glass_codes():
    codes = []
    for _ in range(2):  # iterations
        for _h in range(27, 1, -1):
            for _w in range(27, 1, -1):
                c = 0
                if np.random.choice([True, False], 1)[0]:
                    dx, dy = np.random.randint(-1, 1, size=(2,))
                    c = 1 | (2 if dx == -1 else 0) | (4 if dy == -1 else 0)
                codes.append(c)
    return codes


def main():
    draws = {}
    per_image = {
        "motion_blur": lambda: float(np.random.uniform(-45, 45)),
        "shear": lambda: int(np.random.choice([-1, 1], 1)[0]),
        "rotate": lambda: int(np.random.choice([-1, 1], 1)[0]),
        "translate": lambda: [int(v) for v in np.random.choice([-1, 1], 2)],
        "dotted_line": lambda: [int(v) for v in np.random.randint(low=0, high=27, size=2)],
    }

    def zigzag():
        r0 = int(np.random.randint(low=0, high=27))
        return [r0, r0 + int(np.random.randint(low=-5, high=5))]

    per_image["zigzag"] = zigzag
    for name, fn in per_image.items():
        draws[name] = []
        for seed in SEEDS:
            seed_for(name, seed)
            draws[name].append([fn() for _ in range(IMAGES)])
    with open(os.path.join(OUT, "draws.json"), "w") as f:
        json.dump(draws, f, indent=0)
        f.write("\n")

    g = np.zeros((len(SEEDS), IMAGES, 2 * 26 * 26), np.uint8)
    for seed in SEEDS:
        seed_for("glass_blur", seed)
        for i in range(IMAGES):
            g[seed, i] = glass_codes()
    np.save(os.path.join(OUT, "glass_codes.npy"), g)

    seed_for("spatter", 0)
    layers = np.stack([np.random.normal(size=(28, 28), loc=0.65, scale=0.3) for _ in range(IMAGES)])
    np.save(os.path.join(OUT, "spatter_seed0.npy"), layers.astype(np.float64))


if __name__ == "__main__":
    main()
