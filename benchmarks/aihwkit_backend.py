"""Native crossbar vs aihwkit-backed crossbar on the same training task: forward and pulsed update.

Run:  .venv/bin/python benchmarks/aihwkit_backend.py [--epochs 1] [--limit N] [--hidden 128] [--steps 25] [--repeats 3]

The task is the in-situ surrogate-gradient training of the validation (sklearn digits, an SNN
``[64, hidden, 10]`` with ``steps`` time steps, memsnn's ``rram`` soft-bounds device, bipolar
pulses on balanced pairs, state-aware stochastic rounding), run on both backends with the same
seed, with an ideal periphery and with aihwkit's default IO (7-bit DAC and ADC, bound 12, output
noise 0.06: ``PeripheryParams.aihwkit_default()``). Every crossbar's ``vmm`` (forward: all time steps of a batch in one call, through aihwkit's
IO on the aihwkit side) and ``apply_schedule`` (the scheduler's dense update, through
``tile.update`` slots on the aihwkit side) is timed; the rest (neurons, BPTT, the scheduler's
arithmetic) is the same code on both sides. The initial programming (``direct``) is not timed.
Each backend runs ``repeats`` times, alternately; the medians are printed with the ratio
aihwkit / native (> 1: native is faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict

import torch


def _instrument(method, totals: dict) -> None:
    """Accumulate the wall time of every crossbar's vmm and apply_schedule into ``totals``."""
    for xbar in method.crossbars():
        for name, key in (("vmm", "forward"), ("apply_schedule", "update")):
            inner = getattr(xbar, name)

            def timed(*a, _inner=inner, _key=key, **kw):
                t = time.perf_counter()
                try:
                    return _inner(*a, **kw)
                finally:
                    totals[_key] += time.perf_counter() - t

            setattr(xbar, name, timed)


def run_once(backend: str, periphery: str, args) -> dict:
    from memsnn.crossbar.array import CrossbarParams
    from memsnn.crossbar.periphery import PeripheryParams
    from memsnn.crossbar.coding import Encoder
    from memsnn.crossbar.network import SpikingNetwork
    from memsnn.crossbar.neurons import LIFParams
    from memsnn.experiments.datasets import load_dataset
    from memsnn.learning.loop import fit
    from memsnn.learning.scheduler import SchedulerParams
    from memsnn.learning.sg import InSituSGParams
    from memsnn.interop.validation import insitu_sg

    data = load_dataset("digits", seed=0, limit=args.limit)
    net = SpikingNetwork([data.n_features, args.hidden, data.n_classes], neuron=LIFParams(beta=0.9), seed=0)
    method = insitu_sg(net, "rram", Encoder(num_steps=args.steps), backend=backend,
                       params=InSituSGParams(lr=0.02, init_method="direct", lr_final=None),
                       scheduler=SchedulerParams(step="state_aware", scheme="bipolar"),
                       crossbar=CrossbarParams(pair_mode="balanced"), seed=0,
                       periphery=PeripheryParams.aihwkit_default() if periphery == "aihwkit" else PeripheryParams())
    totals: dict = defaultdict(float)
    _instrument(method, totals)
    pulses0 = method.counters()["pulses"]
    t0 = time.perf_counter()
    hist = fit(method, data, epochs=args.epochs, batch_size=32, seed=0, progress=False, num_steps=args.steps)
    total = time.perf_counter() - t0
    return {"forward": totals["forward"], "update": totals["update"], "total": total,
            "pulses": method.counters()["pulses"] - pulses0, "test_acc": float(hist.test_acc.iloc[-1])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="training samples (default: all 1347)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    for name in ("epochs", "hidden", "steps", "repeats", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit must be >= 1, got {args.limit}")
    torch.set_num_threads(args.threads)
    for periphery in ("ideal", "aihwkit"):
        runs: dict = {"native": [], "aihwkit": []}
        for _ in range(args.repeats):  # alternate: this shared VM's speed drifts
            for backend in runs:
                runs[backend].append(run_once(backend, periphery, args))
        med = {b: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for b, rs in runs.items()}
        print(f"\nin-situ SG, digits ({args.limit or 'all'} samples), [64, {args.hidden}, 10], T = {args.steps}, rram, "
              f"periphery {periphery}, {args.epochs} epoch(s), {args.threads} thread(s), median of {args.repeats}")
        print(f"{'':10s} {'native':>12s} {'aihwkit':>12s} {'ratio':>8s}")
        for key in ("forward", "update", "total"):
            n, a = med["native"][key], med["aihwkit"][key]
            print(f"{key:10s} {n:11.3f}s {a:11.3f}s {a / n:7.2f}x")
        print(f"{'pulses':10s} {med['native']['pulses']:12.0f} {med['aihwkit']['pulses']:12.0f}")
        print(f"{'test acc':10s} {med['native']['test_acc']:12.3f} {med['aihwkit']['test_acc']:12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
