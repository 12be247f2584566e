"""memsnn and aihwkit on a shared machine: slowdown when CPU-bound processes run on the same cores.

Run:  .venv/bin/python benchmarks/shared_load.py [--threads 2 1] [--hogs 2] [--repeats 7]

For each torch thread count (default: one per core - torch's own default - then 1), every workload is timed with
the machine as it is ("idle": whatever else already runs on it) and again while ``--hogs``
processes spin a pure-Python loop each (default: one per core). Workloads, each on both packages:

- ``forward``: one 256x256 tile read of a batch of 64 (7-bit DAC / ADC, output and read noise);
- ``update``: 64 sequential rank-1 pulsed updates of a 256x256 tile (stochastic trains of 31 slots,
  lr 0.01) - :mod:`crossbar_vs_aihwkit`'s workloads;
- ``train``: one epoch of in-situ surrogate-gradient training on Iris (4-32-3, T = 10, batch 32)
  through memsnn's training loop, on the native crossbars and on the aihwkit backend.

Slowdown = loaded median / idle median (medians of ``--repeats`` timings, the packages called
alternately). The load average before and after is printed: the machine may be shared already.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import memsnn  # noqa: F401  (its import-time thread default applies first; each run below sets its own)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crossbar_vs_aihwkit import aihwkit_tile, memsnn_crossbar  # noqa: E402


def _spin(stop) -> None:
    x = 1.0
    while not stop.is_set():
        for _ in range(100_000):
            x = x * 1.0000001 + 1e-9


def workloads(n: int = 256, batch: int = 64):
    """name -> (aihwkit callable, memsnn callable)."""
    import math

    from memsnn.crossbar import OuterPhase
    from memsnn.experiments.datasets import load_dataset
    from memsnn.experiments.methods import build_method
    from memsnn.crossbar.coding import Encoder
    from memsnn.learning.loop import fit

    x = torch.rand(batch, n) * 2 - 1
    tile_f, _ = aihwkit_tile(n, "linear", forward_noise=True)
    xbar_f = memsnn_crossbar(n, "linear", forward=True)
    lr = 0.01
    tile_u, dw_min = aihwkit_tile(n, "linear", forward_noise=False, lr=lr)
    xbar_u = memsnn_crossbar(n, "linear", forward=False)
    d = torch.rand(batch, n) * 2 - 1
    a = math.sqrt(lr / (dw_min * 31))
    phase = OuterPhase((a * x).clamp(-1, 1), (a * d).clamp(-1, 1), train="stochastic", length=31)
    data = load_dataset("iris", seed=0)

    def train(backend: str):
        def run():
            m = build_method("sg", True, data, device="srtio3", encoder=Encoder(num_steps=10), hidden=(32,),
                             backend=backend, seed=0)
            fit(m, data, epochs=1, batch_size=32, progress=False, num_steps=10)
        return run

    def forward_a():
        with torch.no_grad():
            tile_f.forward(x)

    def forward_m():
        with torch.no_grad():
            xbar_f.vmm(x)

    return {
        "forward 256x256, batch 64": (forward_a, forward_m),
        "update 256x256, 64 rank-1": (lambda: tile_u.update(x, d), lambda: xbar_u.apply_schedule(phase)),
        "train sg in-situ, Iris epoch": (train("aihwkit"), train("native")),
    }


def median_pair(fa, fm, repeats: int) -> tuple[float, float]:
    fa(), fm()
    ta, tm = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        fa()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        fm()
        tm.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count(), 1],
                    help="torch threads to measure (default: one per core - torch's own default - and 1)")
    ap.add_argument("--hogs", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{args.hogs} spinning processes when loaded; load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{'workload':30s} {'threads':>7s} {'package':>8s} {'idle':>10s} {'loaded':>10s} {'slowdown':>9s}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        work = workloads()
        reps = {name: (max(3, args.repeats // 3) if name.startswith("train") else args.repeats * 5) for name in work}
        idle = {name: median_pair(fa, fm, reps[name]) for name, (fa, fm) in work.items()}
        stop = mp.Event()
        hogs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.hogs)]
        for h in hogs:
            h.start()
        time.sleep(1.0)
        try:
            loaded = {name: median_pair(fa, fm, reps[name]) for name, (fa, fm) in work.items()}
        finally:
            stop.set()
            for h in hogs:
                h.join(timeout=5)
        for name in work:
            for k, pkg in enumerate(("aihwkit", "memsnn")):
                t0, t1 = idle[name][k], loaded[name][k]
                print(f"{name:30s} {threads:7d} {pkg:>8s} {t0 * 1e3:8.2f}ms {t1 * 1e3:8.2f}ms {t1 / t0:8.1f}x",
                      flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
