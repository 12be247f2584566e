"""Timing of the exact IR-drop solve (scipy.sparse nodal analysis) against array size.

For square N x N arrays (N = 64, 128, 256 by default) and a batch of 64 input vectors, times
``solve_ir_drop_exact`` end to end (assembly + ``splu`` factorisation + one multi-RHS solve), for
1T1R and for 0T1R with every row driven (same matrix size; floating rows would only change which
rows are present), split into its three parts, and fits ``time ~ devices^k``. For reference it also
times ``ir_drop_approx`` (4 CG iterations) on the same problem, on the CPU and, when present, CUDA.

Run:  .venv/bin/python benchmarks/irdrop_scaling.py [--sizes 64 128 256] [--batch 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import time
import types

import numpy as np
import scipy
import scipy.sparse.linalg as spla
import torch

from memsnn.crossbar import irdrop
from memsnn.crossbar.irdrop import ir_drop_approx, solve_ir_drop_exact


class _Timed:
    """Stand-in for ``scipy.sparse.linalg`` inside irdrop: records factorisation and solve time."""

    def __init__(self):
        self.factor = 0.0
        self.solve = 0.0

    def splu(self, A, **kw):
        t0 = time.perf_counter()
        lu = spla.splu(A, **kw)
        self.factor += time.perf_counter() - t0
        self.n, self.nnz_lu = A.shape[0], lu.L.nnz + lu.U.nnz
        outer = self

        class _LU:
            def solve(self, rhs):
                t1 = time.perf_counter()
                x = lu.solve(rhs)
                outer.solve += time.perf_counter() - t1
                return x

        return _LU()


def time_exact(g, v, array_type, repeat):
    """Best-of-``repeat`` total time and its split (assembly = total - factor - solve)."""
    best = None
    for _ in range(repeat):
        timer = _Timed()
        irdrop.spla = types.SimpleNamespace(splu=timer.splu)
        try:
            t0 = time.perf_counter()
            solve_ir_drop_exact(g, v, r_row=1.0, r_col=1.0, array_type=array_type)
            total = time.perf_counter() - t0
        finally:
            irdrop.spla = spla
        if best is None or total < best[0]:
            best = (total, total - timer.factor - timer.solve, timer.factor, timer.solve, timer.n, timer.nnz_lu)
    return best


def time_approx(g, v, repeat, device):
    g, v = g.to(device), v.to(device)
    ir_drop_approx(g, v, r_row=1.0, r_col=1.0, iterations=4)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        ir_drop_approx(g, v, r_row=1.0, r_col=1.0, iterations=4)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    gen = torch.Generator().manual_seed(0)
    cuda = torch.cuda.is_available()
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"scipy {scipy.__version__}, torch {torch.__version__}" + (f", GPU {torch.cuda.get_device_name()}" if cuda else ""))
    print(f"exact solve, batch {args.batch}, r_row = r_col = 1 ohm, g ~ U[40, 140] uS, v ~ U[0, 0.2] V, "
          f"best of {args.repeat}; times in seconds\n")
    head = (f"{'N':>5} {'devices':>8} {'unknowns':>9} {'nnz(L+U)':>10} {'type':>5} {'total':>8} {'assemble':>9} "
            f"{'factor':>8} {'solve':>8} {'us/device':>10} {'approx cpu':>11}" + (f" {'approx gpu':>11}" if cuda else ""))
    print(head)
    print("-" * len(head))
    rows = {t: [] for t in ("1T1R", "0T1R")}
    for n in args.sizes:
        g = torch.rand(n, n, generator=gen, dtype=torch.float64) * 100e-6 + 40e-6
        v = torch.rand(args.batch, n, generator=gen, dtype=torch.float64) * 0.2 + 1e-6  # every row driven
        t_cpu = time_approx(g, v, args.repeat, "cpu")
        t_gpu = time_approx(g, v, args.repeat, "cuda") if cuda else None
        for array_type in rows:
            total, assemble, factor, solve, unknowns, nnz = time_exact(g, v, array_type, args.repeat)
            rows[array_type].append((n * n, total))
            print(f"{n:>5} {n * n:>8} {unknowns:>9} {nnz:>10} {array_type:>5} {total:>8.3f} {assemble:>9.3f} "
                  f"{factor:>8.3f} {solve:>8.3f} {1e6 * total / (n * n):>10.2f} {t_cpu:>11.4f}"
                  + (f" {t_gpu:>11.5f}" if cuda else ""))
    print()
    for array_type, data in rows.items():
        if len(data) >= 2:
            d, t = np.log(np.array(data)).T
            k = np.polyfit(d, t, 1)[0]
            print(f"{array_type}: time ~ devices^{k:.2f} (fit over N = {', '.join(map(str, args.sizes))})")
    print("(approx = ir_drop_approx with 4 CG iterations on the same batch; 'unknowns' = node voltages solved for)")


if __name__ == "__main__":
    main()
