#!/usr/bin/python3
"""Loads a checkpoint written by rws into PyTorch and checks that PyTorch computes the logits rws
computes (max |torch - rws| / max |torch| <= 1e-4).

    /usr/bin/python3 scripts/check_torch_logits.py MODEL.safetensors [--images X.npy] [--n 256]
        [--rws "go run ./cmd/rws"]

The model is rebuilt from its rws.arch and rws.arch_config metadata with the PyTorch definitions
in scripts/rws_torch.py, loaded with load_state_dict(strict=True) and run in eval mode on the
images (a uint8 N×H×W[×C] .npy, or --n seeded random images of the model's size) preprocessed as
rws.preprocess says. rws computes its logits with `rws predict`. Prints a JSON report and exits 1
when the logits differ or the module list does not match.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rws_torch as R  # noqa: E402

TOL = 1e-4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--images", help="uint8 .npy N×H×W or N×H×W×C")
    ap.add_argument("--n", type=int, default=256, help="random images when --images is not given")
    ap.add_argument("--rws", default="go run ./cmd/rws", help="command that runs rws")
    a = ap.parse_args()

    tensors, meta = R.load_safetensors(a.model)
    arch, cfg = meta["rws.arch"], json.loads(meta["rws.arch_config"])
    pre = json.loads(meta["rws.preprocess"])
    model = R.build(arch, cfg)
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    with_params = [n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    modules_ok = with_params == json.loads(meta["rws.modules"])

    with tempfile.TemporaryDirectory() as tmp:
        if a.images:
            images = np.load(a.images)
            path = a.images
        else:
            rng = np.random.default_rng(0)
            shape = (a.n, cfg["height"], cfg["width"]) + ((cfg["in_channels"],) if cfg["in_channels"] > 1 else ())
            images = rng.integers(0, 256, size=shape, dtype=np.uint8)
            path = os.path.join(tmp, "images.npy")
            np.save(path, images)
        out = os.path.join(tmp, "logits.npy")
        subprocess.run(shlex.split(a.rws) + ["predict", "--quiet", a.model, "--input", path, "-o", out], check=True)
        got = np.load(out)
    if images.ndim == 3:
        images = images[..., None]
    with torch.no_grad():
        want = model(R.preprocess(images, pre)).numpy()
    err = float(np.abs(got - want).max() / np.abs(want).max())
    agree = float((got.argmax(1) == want.argmax(1)).mean())
    report = {"model": a.model, "arch": arch, "arch_config": cfg, "images": int(images.shape[0]),
              "max_rel_error": err, "tolerance": TOL, "argmax_agreement": agree,
              "modules_match": modules_ok, "ok": bool(err <= TOL and modules_ok)}
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
