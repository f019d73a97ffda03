#!/usr/bin/python3
"""PyTorch CPU baseline for the rws engine benchmarks (internal/nn BenchmarkTrainStep and
BenchmarkInfer): the same `cnn` model, batch and optimizer on random 28x28 grey images
(--arch resnet20: 32x32 RGB images, as BenchmarkTrainStepResNet20).

Prints one JSON object: examples/s for training steps and for inference, and the peak resident
memory of the process. Used by scripts/bench_nn.sh, which runs the Go side in the same session.

    /usr/bin/python3 scripts/torch_bench.py --threads 2 --batch 128 --seconds 10
"""
import argparse
import json
import resource
import time

import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rws_torch as R  # noqa: E402


def timed(step, seconds, warmup=3):
    for _ in range(warmup):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--mode", choices=["train", "infer", "both"], default="both")
    ap.add_argument("--arch", choices=["cnn", "resnet20"], default="cnn")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    c, hw = (1, 28) if a.arch == "cnn" else (3, 32)
    model = R.build(a.arch, dict(in_channels=c, height=hw, width=hw, classes=10))
    gen = torch.Generator().manual_seed(2)
    pix = torch.randint(0, 256, (a.batch, c, hw, hw), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (a.batch,), generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    out = {"torch": torch.__version__, "arch": a.arch, "threads": torch.get_num_threads(), "batch": a.batch}

    def train_step():
        x = pix.float() / 255
        opt.zero_grad()
        loss_fn(model(x), labels).backward()
        opt.step()

    def infer_step():
        with torch.no_grad():
            model(pix.float() / 255)

    if a.mode in ("train", "both"):
        model.train()
        out["train_examples_per_sec"] = timed(train_step, a.seconds) * a.batch
    if a.mode in ("infer", "both"):
        model.eval()
        out["infer_examples_per_sec"] = timed(infer_step, a.seconds) * a.batch
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
