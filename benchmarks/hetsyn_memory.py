"""Time and peak memory of the HetSyn forms (forward + backward) against a plain LIF layer.

Run:  .venv/bin/python benchmarks/hetsyn_memory.py [--device cpu|cuda] [--threads 1] [--repeats 5]
          [--bins 2 4 8] [--naive-batches 1 2 4] [--full-naive]

One layer of ``in x out`` = 784 x 512 synapses, batch B = 128, T = 50 steps, Bernoulli input spikes
(``--rate``, 0.2), loss = the sum of the output spikes, backward into the weights and (learnable)
time constants. Cases (``memsnn.crossbar.hetsyn.HetSynLinear`` unless said):

- ``naive``: the per-synapse state ``[B, out, in]`` stepped in time with autograd (the public
  reference code's formulation); autograd keeps one ``[B, out, in]`` state per step, about
  ``T * B * out * in * 4`` bytes (10.3 GB here), so it is run at full T with the reduced batches
  ``--naive-batches`` and its time and memory are extrapolated linearly in ``T * B`` (a least-squares
  line through those points; the points and the fit's largest relative residual are printed, and
  the row is marked "extrapolated"). ``--full-naive`` runs it at full size instead (needs > 10 GB).
- ``exact``: the FFT form (any tau per synapse, memory independent of B).
- ``binned K=..``: K bins of tau (straight-through learnable tau), and ``binned K=2, tau frozen``.
- ``one tau per neuron``: ``granularity="neuron"`` (HomNeu, learnable tau), for comparison.
- ``plain LIF``: ``nn.Linear`` over all ``T * B`` rows + memsnn's fused LIF loop
  (:func:`memsnn.crossbar.multistep.run_lif`, hand-written backward), the fastest plain layer here.

Time: medians of ``--repeats`` alternating calls in this process (after one warm-up call each).
Peak memory: each case runs in a fresh subprocess of this script, model and input built and one
tiny call made first (library and autograd initialisation). On CPU two numbers: "allocated", the
peak of the bytes torch allocated during the call above those live before it (the running sum of
``torch.profiler``'s memory events, ``profile_memory=True``; exact, allocator caching excluded),
and "RSS", the rise of the process's peak resident set (``VmHWM`` in ``/proc/self/status``, reset
through ``/proc/self/clear_refs`` just before the call) - what the operating system gave the call,
which also counts glibc's heap caching and varied by up to 2x between runs for the naive form. On
CUDA both are ``torch.cuda.max_memory_allocated`` minus the allocation before the call. Ratios
printed: memory (allocated) binned / naive (issue 14's target <= 1/20) and time binned / plain
LIF (target <= 2x).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

import torch
from torch import nn


def _case_names(bins: list[int]) -> list[str]:
    return ["exact", *[f"binned K={k}" for k in bins], "binned K=2, tau frozen", "one tau per neuron", "plain LIF"]


def build(case: str, n_in: int, n_out: int, device: str):
    """A closure running forward + backward of ``case`` on spikes ``x`` ``[T, B, n_in]``."""
    from memsnn.crossbar.hetsyn import HetSynLinear
    from memsnn.crossbar.multistep import run_lif
    from memsnn.crossbar.neurons import LIFParams

    if case == "plain LIF":
        lin = nn.Linear(n_in, n_out).to(device)
        p = LIFParams(beta=math.exp(-1e-3 / 20e-3))

        def run(x):
            lin.zero_grad(set_to_none=True)
            T, B, _ = x.shape
            s, _ = run_lif(lin(x.reshape(T * B, n_in)).reshape(T, B, n_out), p)
            s.sum().backward()
        return run
    if case.startswith("binned"):
        k = int(re.match(r"binned K=(\d+)", case).group(1))
        layer = HetSynLinear(n_in, n_out, form="binned", n_bins=k, learn_tau="frozen" not in case)
    elif case in ("exact", "naive"):
        layer = HetSynLinear(n_in, n_out, form=case)
    elif case == "one tau per neuron":
        layer = HetSynLinear(n_in, n_out, granularity="neuron")
    else:
        raise ValueError(f"unknown case {case!r}")
    layer.to(device)

    def run(x):
        layer.zero_grad(set_to_none=True)
        z, _ = layer(x)
        z.sum().backward()
    return run


def spikes(T: int, B: int, n_in: int, rate: float, device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(T, B, n_in, generator=g) < rate).float().to(device)


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1))


def profiled_peak(run, x) -> int:
    """Peak of the bytes torch allocated on the CPU during ``run(x)`` above those live before it:
    the running sum of the profiler's ``[memory]`` events (+ allocation, - free) in time order."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run(x)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and str(e.device_type()).endswith("CPU"))
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def measure_memory(args) -> None:
    """Subprocess body: one call of one case; prints ``{"peak_mb": ..., "alloc_peak_mb": ...}``."""
    torch.set_num_threads(args.threads)
    run = build(args.measure, args.n_in, args.n_out, args.device)
    run(spikes(2, 1, args.n_in, args.rate, args.device))  # one-time initialisation (libraries, autograd) outside the peak
    x = spikes(args.steps, args.batch, args.n_in, args.rate, args.device)
    if args.device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run(x)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        base = _status_kb("VmRSS")
        run(x)
        peak = (_status_kb("VmHWM") - base) * 1024
    alloc = profiled_peak(run, x) if args.device == "cpu" else peak
    print(json.dumps({"peak_mb": peak / 2**20, "alloc_peak_mb": alloc / 2**20}))


def memory_in_subprocess(args, case: str, T: int, B: int) -> dict[str, float]:
    cmd = [sys.executable, os.path.abspath(__file__), "--measure", case, "--steps", str(T), "--batch", str(B),
           "--in", str(args.n_in), "--out", str(args.n_out), "--rate", str(args.rate),
           "--device", args.device, "--threads", str(args.threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if res.returncode != 0:
        raise RuntimeError(f"memory run of {case!r} (T={T}, B={B}) failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def linear_fit(n: list[float], y: list[float]) -> tuple[float, float, float]:
    """Least squares ``y = a + b n``; returns ``(a, b, largest relative residual)``."""
    import numpy as np

    b, a = np.polyfit(np.asarray(n, float), np.asarray(y, float), 1)
    resid = max(abs(a + b * ni - yi) / max(abs(yi), 1e-12) for ni, yi in zip(n, y))
    return float(a), float(b), float(resid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (memsnn's default is 1)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--in", dest="n_in", type=int, default=784)
    ap.add_argument("--out", dest="n_out", type=int, default=512)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rate", type=float, default=0.2, help="input spike probability per step")
    ap.add_argument("--bins", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--naive-batches", type=int, nargs="+", default=[1, 2, 4],
                    help="reduced batches at which the naive form runs (full T); extrapolated to --batch")
    ap.add_argument("--full-naive", action="store_true", help="run the naive form at full size (> 10 GB here)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # subprocess mode
    args = ap.parse_args()
    errors = [f"--{k}={getattr(args, k)} must be >= 1" for k in ("threads", "repeats", "batch", "steps", "n_in", "n_out")
              if getattr(args, k) < 1]
    errors += [f"--bins {k} must be >= 1" for k in args.bins if k < 1]
    errors += [f"--naive-batches {b} must be >= 1" for b in args.naive_batches if b < 1]
    if not 0.0 < args.rate <= 1.0:
        errors.append(f"--rate={args.rate} must be in (0, 1]")
    if len(set(args.naive_batches)) < 2 and not args.full_naive:
        errors.append("--naive-batches needs at least two different batches to extrapolate")
    if args.device == "cuda" and not torch.cuda.is_available():
        errors.append("--device cuda: no CUDA device here")
    if errors:
        ap.error("; ".join(errors))
    if args.measure is not None:
        measure_memory(args)
        return
    torch.set_num_threads(args.threads)
    T, B = args.steps, args.batch
    naive_points = [B] if args.full_naive else sorted(set(args.naive_batches))
    cases = {name: (build(name, args.n_in, args.n_out, args.device), B) for name in _case_names(args.bins)}
    for b in naive_points:
        cases[f"naive B={b}"] = (build("naive", args.n_in, args.n_out, args.device), b)
    inputs = {b: spikes(T, b, args.n_in, args.rate, args.device) for b in {B, *naive_points}}

    def call(name):
        run, b = cases[name]
        t0 = time.perf_counter()
        run(inputs[b])
        if args.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for name in cases:
        call(name)  # warm-up
    times = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name in cases:
            times[name].append(call(name))
    t_ms = {name: statistics.median(v) * 1e3 for name, v in times.items()}
    mem = {}
    if not args.no_memory:
        for name, (_, b) in cases.items():
            mem[name] = memory_in_subprocess(args, "naive" if name.startswith("naive") else name, T, b)

    keys = ("alloc_peak_mb", "peak_mb")  # profiler's allocation peak, rise of peak RSS
    rows = []  # (form, B, time ms, {key: MB}, note)
    for b in naive_points:
        rows.append(("naive", b, t_ms[f"naive B={b}"], mem.get(f"naive B={b}", {}), "measured"))
    if args.full_naive:
        naive_t, naive_m = t_ms[f"naive B={B}"], mem.get(f"naive B={B}", {})
    else:
        n = [T * b for b in naive_points]
        at, bt, rt = linear_fit(n, [t_ms[f"naive B={b}"] for b in naive_points])
        naive_t = at + bt * T * B
        note = f"extrapolated in T*B (time fit residual {rt:.1%}"
        naive_m = {}
        for key in keys if mem else ():
            am, bm, rm = linear_fit(n, [mem[f"naive B={b}"][key] for b in naive_points])
            naive_m[key] = am + bm * T * B
            note += f"; {'allocated' if key == keys[0] else 'RSS'}: {bm:.2f} MB per T*B, fit residual {rm:.1%}"
        rows.append(("naive", B, naive_t, naive_m, note + ")"))
    for name in _case_names(args.bins):
        rows.append((name, B, t_ms[name], mem.get(name, {}), "measured"))

    print(f"HetSyn forms, {args.n_in} x {args.n_out}, T = {T}, forward + backward (loss = sum of spikes), input rate "
          f"{args.rate}, {args.device}, {args.threads} thread(s), time = median of {args.repeats}")
    if args.device == "cuda":
        print("peak memory: torch.cuda.max_memory_allocated above the allocation before the call (both columns)")
    else:
        print("peak memory, one call in a fresh subprocess: 'allocated' = peak of torch's CPU allocations "
              "(torch.profiler memory events), 'RSS' = rise of the peak resident set (VmHWM)")
    print("| form | B | time | peak allocated | peak RSS rise | |")
    print("|---|---|---|---|---|---|")
    for form, b, tm, m, note in rows:
        cols = " | ".join("-" if key not in m else f"{m[key]:.4g} MB" for key in keys)
        print(f"| {form} | {b} | {tm:.1f} ms | {cols} | {note} |")
    lif_t = t_ms["plain LIF"]
    print(f"\nratios (naive at B={B} {'measured' if args.full_naive else 'extrapolated'}; memory = peak allocated; "
          "targets: memory binned / naive <= 1/20, time binned / plain LIF <= 2x):")
    for name in _case_names(args.bins)[:-1]:
        m = "" if keys[0] not in naive_m else f"memory / naive = {_ratio(mem[name][keys[0]], naive_m[keys[0]])}, "
        print(f"  {name:24s} {m}time / plain LIF = {_ratio(t_ms[name], lif_t)}, time / naive = {_ratio(t_ms[name], naive_t)}")


def _ratio(a: float, b: float) -> str:
    """``a / b`` as ``1/N`` below 1, else ``N.NNx``."""
    return f"1/{b / a:.0f}" if a < b else f"{a / b:.2f}x"


if __name__ == "__main__":
    main()
