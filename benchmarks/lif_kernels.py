"""LIF time loop over [T, B, N] = [50, 128, 512] currents: the step loop (``lif_step`` per step),
the fused multi-step loop (:func:`memsnn.crossbar.multistep.run_lif`) and a TorchScript version of
the same fused loop, forward alone (no grad) and forward + backward.

Run:  .venv/bin/python benchmarks/lif_kernels.py [--threads 2] [--device cpu|cuda]

Prints medians of alternating calls (ms).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from memsnn.crossbar.multistep import run_lif, run_lif_steps
from memsnn.crossbar.neurons import LIFParams


@torch.jit.script
def lif_script(cur: torch.Tensor, beta: float, thr: float):
    u = torch.empty_like(cur)
    v = torch.empty_like(cur)
    s = torch.empty_like(cur)
    vt = torch.zeros_like(cur[0])
    for t in range(cur.shape[0]):
        torch.mul(vt, beta, out=u[t])
        u[t].add_(cur[t])
        torch.gt(u[t], thr, out=s[t])
        torch.sub(u[t], s[t], alpha=thr, out=v[t])
        vt = v[t]
    return s, v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = LIFParams(beta=0.9)
    cur = (torch.randn(50, 128, 512, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.2).to(args.device)

    def with_grad(f):
        c = cur.clone().requires_grad_()
        s, _ = f(c, p)
        s.sum().backward()

    def no_grad(f):
        with torch.no_grad():
            f()

    runs = {
        "step loop": lambda: no_grad(lambda: run_lif_steps(cur, p)),
        "fused": lambda: no_grad(lambda: run_lif(cur, p)),
        "TorchScript": lambda: no_grad(lambda: lif_script(cur, p.beta, p.threshold)),
        "step loop + backward": lambda: with_grad(run_lif_steps),
        "fused + backward": lambda: with_grad(run_lif),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for f in runs.values():
        f()
    for _ in range(args.repeats):
        for k, f in runs.items():
            t = time.perf_counter()
            f()
            if cur.is_cuda:
                torch.cuda.synchronize()
            times[k].append(time.perf_counter() - t)
    print(f"[T, B, N] = {list(cur.shape)}, {args.threads} threads, {cur.device}")
    for k, v in times.items():
        print(f"{k:22s} {statistics.median(v) * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
