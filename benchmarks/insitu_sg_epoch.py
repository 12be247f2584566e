"""One epoch of in-situ surrogate-gradient training on digits (``memsnn compare``'s default SG
method: srtio3, 64-128-10, T = 25, batch 32, lr 0.05), today's code against a pinned older commit.

Run:  .venv/bin/python benchmarks/insitu_sg_epoch.py [--baseline b79cf29] [--repeats 3] [--threads 2] [--device cpu]

The baseline's ``memsnn`` package is extracted with ``git archive`` into a temporary directory
(nothing in the work tree changes); each side runs in its own subprocess, alternately, and times
``fit(..., epochs=1)`` twice on the same network (the build and the initial programming are not
timed): the first epoch of a fresh process, which pays one-time costs (numba loads its compiled
kernels from the on-disk cache on their first call, ~0.35 s in all here), and the next epoch, a
steady-state epoch of a multi-epoch run (the default compare trains 10). Prints the medians and
the ratios baseline / today of both (the target of issue 15 is >= 2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from memsnn.crossbar.coding import Encoder
from memsnn.experiments.datasets import load_dataset
from memsnn.experiments.methods import build_method
from memsnn.learning.loop import fit
torch.manual_seed(0)
data = load_dataset("digits", seed=0)
m = build_method("sg", True, data, device="srtio3", encoder=Encoder(num_steps=25), hidden=(128,),
                 rule_params={"lr": 0.05, "digital_lr": 2e-3}, seed=0, epochs=10)
dev = sys.argv[2]
if dev != "cpu":
    raise SystemExit("the in-situ SG method is built on the CPU; --device cuda is not supported by this benchmark")
ts = []
for epoch in range(2):
    t = time.perf_counter()
    hist = fit(m, data, epochs=1, batch_size=32, seed=epoch, progress=False, num_steps=25)
    ts.append(time.perf_counter() - t)
print(ts[0], ts[1], float(hist["test_acc"].iloc[-1]))
"""


def extract(commit: str, into: Path) -> Path:
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "memsnn"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into


def run(pythonpath: Path, threads: int, device: str) -> tuple[float, float, float]:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), device], env=env, check=True,
                         capture_output=True, text=True, cwd=pythonpath).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="b79cf29", help="commit whose memsnn is the baseline")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    kinds = ("first", "next")
    times = {(k, e): [] for k in ("baseline", "today") for e in kinds}
    acc: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        old = extract(args.baseline, Path(tmp))
        for _ in range(args.repeats):
            for name, path in (("baseline", old), ("today", ROOT)):
                t1, t2, a = run(path, args.threads, args.device)
                times[name, "first"].append(t1)
                times[name, "next"].append(t2)
                acc[name] = a
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"one epoch of in-situ SG on digits (srtio3, 64-128-10, T=25, batch 32), {args.threads} threads, {args.device}")
    for e in kinds:
        label = "first epoch of a fresh process" if e == "first" else "next epoch (steady state)"
        print(label)
        for k in ("baseline", "today"):
            runs = ", ".join(f"{t:.2f}" for t in times[k, e])
            print(f"  {k:9s} {med[k, e]:7.2f} s  (runs {runs}; test acc after 2 epochs {acc[k]:.3f})")
        print(f"  speed-up baseline / today: {med['baseline', e] / med['today', e]:.2f}x")


if __name__ == "__main__":
    main()
