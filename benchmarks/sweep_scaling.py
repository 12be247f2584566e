"""Sweep throughput on a Dask LocalCluster: 1 worker against 2 workers.

Runs the same 16 short real experiments (digits, 300 training samples, 1 epoch of supervised
STDP in-situ on srtio3; read noise 0, 0.01, 0.02, 0.05 x seeds 0-3; a few seconds each) through
:func:`memsnn.experiments.sweep.run_sweep` with ``executor="dask"`` on a fresh
``LocalCluster(n_workers=W, threads_per_worker=1, processes=True)`` for W = 1 and W = 2, and prints
both wall times (cluster start-up included: that is what a user waits for), the summed run time
inside the workers, and the speed-up (target >= 1.7x with 2 workers on >= 2 free cores).

Run:  .venv/bin/python benchmarks/sweep_scaling.py [--out DIR] [--workers 1 2] [--limit 300]

Each sweep goes to ``DIR/workers-<W>`` (default DIR: a new ``runs/sweep-scaling-*``); an existing
sweep there is resumed, not overwritten, so give a new DIR for fresh timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from memsnn.experiments.config import ExperimentConfig
from memsnn.experiments.rundir import new_run_dir
from memsnn.experiments.sweep import run_sweep

GRID = {"device.read_noise_std": ["0.0", "0.01", "0.02", "0.05"]}
SEEDS = (0, 1, 2, 3)


def base_config(limit: int) -> ExperimentConfig:
    return ExperimentConfig().with_overrides({
        "data.dataset": "digits", "data.limit": str(limit), "training.epochs": "1", "rule.name": "stdp",
        "evaluation.times": "[0.0, 3600.0]", "evaluation.jitter": "[1.0]"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="directory of the two sweeps (default: a new runs/sweep-scaling-*)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    ap.add_argument("--limit", type=int, default=300, help="training samples per run")
    args = ap.parse_args()
    out = args.out or new_run_dir("runs", "sweep-scaling")
    base = base_config(args.limit)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; {len(GRID['device.read_noise_std']) * len(SEEDS)} runs per sweep")
    walls = {}
    for w in args.workers:
        t0 = time.perf_counter()
        summary = run_sweep(base, GRID, out / f"workers-{w}", seeds=SEEDS, executor="dask", workers=w, progress=False)
        walls[w] = time.perf_counter() - t0
        busy = sum(json.loads(p.joinpath("sweep_point.json").read_text())["wall_s"]
                   for p in (out / f"workers-{w}" / "runs").iterdir() if not p.name.startswith("."))
        print(f"{w} worker(s): {walls[w]:6.1f} s wall, {busy:6.1f} s of runs in the workers, {summary}")
    if len(walls) > 1:
        first, last = min(walls), max(walls)
        print(f"speed-up {last} vs {first} worker(s): {walls[first] / walls[last]:.2f}x (target >= 1.7x)")
    print(f"sweeps in {out}")


if __name__ == "__main__":
    main()
