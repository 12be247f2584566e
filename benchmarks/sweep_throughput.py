"""Sweep throughput: runs per hour of the default STDP and SG experiments, local pool vs Dask.

For each rule (``stdp``, ``sg``) the default experiment config (``ExperimentConfig()`` with only
``rule.name`` changed: digits, srtio3, the rule's default epochs and scheduler) runs as a sweep of
``--runs`` seeds through :func:`memsnn.experiments.sweep.run_sweep`, once with
``executor="local"`` (a process pool) and once with ``executor="dask"`` (a fresh
``LocalCluster``), both with ``--workers`` workers (default 2). Printed per rule and executor: the
wall time (pool or cluster start-up included: what a user waits for), the mean time of one run
inside its worker, and runs per hour = runs / wall time. Use it to size a cluster: a Dask
cluster of N such workers gives about N / 2 times the two-worker figure when runs outnumber
workers.

Run:  .venv/bin/python benchmarks/sweep_throughput.py [--runs 4] [--workers 2] [--rules stdp sg]
      [--limit N] [--epochs N] [--out DIR]

``--limit`` / ``--epochs`` shrink the runs for a quick look (then the numbers are not the default
config's). Each sweep goes to ``DIR/<rule>-<executor>`` (default DIR: a new
``runs/sweep-throughput-*``); an existing sweep there is resumed, so give a new DIR for timings.
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


def config(rule: str, limit: int | None, epochs: int | None) -> ExperimentConfig:
    overrides = {"rule.name": rule}
    if limit is not None:
        overrides["data.limit"] = str(limit)
    if epochs is not None:
        overrides["training.epochs"] = str(epochs)
    return ExperimentConfig().with_overrides(overrides)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4, help="runs (seeds) per rule and executor")
    ap.add_argument("--workers", type=int, default=2, help="workers of both executors")
    ap.add_argument("--rules", nargs="+", default=["stdp", "sg"], choices=["stdp", "sg", "ssdp", "csdp"])
    ap.add_argument("--executors", nargs="+", default=["local", "dask"], choices=["local", "dask"])
    ap.add_argument("--limit", type=int, default=None, help="training samples per run (default: the config's)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the config's)")
    ap.add_argument("--out", type=Path, default=None, help="directory of the sweeps (default: a new runs/sweep-throughput-*)")
    args = ap.parse_args()
    if args.runs < 1 or args.workers < 1:
        raise SystemExit(f"--runs {args.runs} and --workers {args.workers} must be >= 1")
    out = args.out or new_run_dir("runs", "sweep-throughput")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{args.runs} runs per sweep, {args.workers} workers"
          + ("" if args.limit is None and args.epochs is None else f" (limit {args.limit}, epochs {args.epochs}: not the default config)"))
    print(f"{'rule':6s} {'executor':8s} {'wall s':>8s} {'run s':>8s} {'runs/hour':>10s}")
    for rule in args.rules:
        cfg = config(rule, args.limit, args.epochs)
        for ex in args.executors:
            sweep_dir = out / f"{rule}-{ex}"
            t0 = time.perf_counter()
            run_sweep(cfg, None, sweep_dir, seeds=tuple(range(args.runs)), executor=ex, workers=args.workers, progress=False)
            wall = time.perf_counter() - t0
            per_run = [json.loads(p.joinpath("sweep_point.json").read_text())["wall_s"]
                       for p in (sweep_dir / "runs").iterdir() if not p.name.startswith(".")]
            mean_run = sum(per_run) / max(1, len(per_run))
            print(f"{rule:6s} {ex:8s} {wall:8.1f} {mean_run:8.1f} {3600.0 * args.runs / wall:10.1f}", flush=True)
    print(f"sweeps in {out}")


if __name__ == "__main__":
    main()
