"""Where the fast IR-drop approximation departs from the exact solve, and how big sneak paths are.

For square N x N 1T1R arrays (N = 32, 64, 128, 256), wire resistances 0.1, 1, 3, 10 ohm per segment
(rows and columns alike), conductances uniform in [4 nS, 100 nS] (SrTiO3-like, low conductance) and
in [40 uS, 140 uS] (RRAM-like), and random inputs uniform in [0, 0.2] V, it prints the relative
error ``||I_approx - I_exact|| / ||I_exact||`` (Frobenius norm over inputs and columns) of
``ir_drop_approx`` with 1, 2 and 4 CG iterations against ``solve_ir_drop_exact``; next to it the
size of the IR drop itself (the error of the ideal ``v_in @ g``) and, for comparison, 4 steps of the plain fixed point ``u <- v_in - K(G u)`` that the CG replaces. The dimensionless load
is ``lambda = r_wire * g_max * N^2``. Then, for one size, it compares a passive 0T1R array with half
of its rows floating against the 1T1R answer (sneak paths).

Run:  .venv/bin/python benchmarks/irdrop_accuracy.py [--sizes 32 64 128 256] [--batch 16]
"""

from __future__ import annotations

import argparse
import textwrap
import time

import numpy as np
import torch

from memsnn.crossbar.irdrop import _wire_operator, ir_drop_approx, solve_ir_drop_exact

MATERIALS = {  # name: (g_min, g_max) in siemens
    "SrTiO3-like": (4e-9, 100e-9),
    "RRAM-like": (40e-6, 140e-6),
}
RESISTANCES = (0.1, 1.0, 3.0, 10.0)  # ohm per wire segment
ITERATIONS = (1, 2, 4)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def fixed_point(g, v, r, steps):
    """Plain (undamped) fixed point u <- v - K(G u) from the ideal start, for comparison."""
    G = g.unsqueeze(-3) * (v != 0).to(g.dtype).unsqueeze(-1)
    vv = v.unsqueeze(-1)
    u = vv.expand_as(G)
    for _ in range(steps):
        u = vv - _wire_operator(G * u, r, r)
    return (G * u).sum(-2)


def fmt(x: float) -> str:
    return f"{x:9.1e}" if np.isfinite(x) and x < 1e3 else f"{'diverged':>9}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--batch", type=int, default=16, help="input vectors per case")
    ap.add_argument("--sneak-size", type=int, default=64)
    args = ap.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    t_start = time.perf_counter()

    print("relative error of ir_drop_approx vs the exact 1T1R solve (float64, "
          f"{args.batch} inputs ~ U[0, 0.2] V, r_row = r_col = r)\n")
    head = (f"{'material':<12} {'N':>4} {'r/ohm':>6} {'r*gmax*N^2':>10} {'lost':>9} "
            + " ".join(f"{'CG it=' + str(k):>9}" for k in ITERATIONS) + f" {'fixpt x4':>9}")
    print(head)
    print("-" * len(head))
    results = []  # (material, N, r, lam, drop, {k: err}, fixed)
    for name, (lo, hi) in MATERIALS.items():
        for n in args.sizes:
            g = torch.rand(n, n, generator=gen, dtype=torch.float64) * (hi - lo) + lo
            v = torch.rand(args.batch, n, generator=gen, dtype=torch.float64) * 0.2
            ideal = v @ g
            for r in RESISTANCES:
                exact = solve_ir_drop_exact(g, v, r_row=r, r_col=r, array_type="1T1R")
                errs = {k: rel(ir_drop_approx(g, v, r_row=r, r_col=r, iterations=k), exact) for k in ITERATIONS}
                with np.errstate(all="ignore"):
                    fp = rel(fixed_point(g, v, r, 4), exact)
                lam = r * hi * n * n
                drop = ((ideal - exact).norm() / ideal.norm()).item()
                results.append((name, n, r, lam, drop, errs, fp))
                print(f"{name:<12} {n:>4} {r:>6g} {lam:>10.3g} {drop:>9.1e} "
                      + " ".join(fmt(errs[k]) for k in ITERATIONS) + f" {fmt(fp)}")
        print()

    # ---- conclusion, from the numbers above
    def worst_below(k, tol):
        """Largest lambda whose error stays below tol, and the smallest lambda exceeding it."""
        ok = [lam for (_, _, _, lam, _, e, _) in results if e[k] <= tol]
        bad = [lam for (_, _, _, lam, _, e, _) in results if e[k] > tol]
        return (max(ok) if ok else float("nan")), (min(bad) if bad else float("inf"))

    lines = []
    for k in ITERATIONS:
        ok1, bad1 = worst_below(k, 1e-3)
        ok2, bad2 = worst_below(k, 1e-2)
        lines.append(f"it={k}: error < 0.1 % up to lambda = {ok1:.3g} (first > 0.1 % at {bad1:.3g}), "
                     f"< 1 % up to {ok2:.3g} (first > 1 % at {bad2:.3g})")
    fp_bad = [lam for (*_, lam, _, _, fp) in results if not (fp < 1e-2)]
    fp_ok = [lam for (*_, lam, _, _, fp) in results if fp < 1e-2]
    small = [r for r in results if r[3] < 0.1]
    big = [r for r in results if r[3] > 3]
    srto = [r for r in results if r[0] == "SrTiO3-like"]
    print("conclusion")
    for line in lines:
        print("  " + line)
    text = (
        "The controlling number is lambda = r_wire * g_max * N^2: the wire-to-device conductance ratio "
        "times the N^2 growth of the drop accumulated along a row and a column. Below lambda ~ 0.1 the "
        f"wires cost at most {max(r[4] for r in small):.1%} of the ideal current and two CG iterations "
        f"match the exact solve to {max(r[5][2] for r in small):.0e}; every SrTiO3-like case is there "
        f"(lambda <= {max(r[3] for r in srto):.3g}, error <= {max(r[5][2] for r in srto):.0e} at it=2), so "
        "for such low-conductance arrays the approximation is as good as the exact solve. At small lambda "
        "the error of k iterations grows like lambda^(k+1), so it rises steeply with wire resistance, "
        "conductance and size: on the RRAM-like array the wires cost up to "
        f"{max(r[4] for r in results):.0%} of the ideal current, and for lambda > 3 two iterations leave "
        f"up to {max(r[5][2] for r in big):.0%} error and four up to {max(r[5][4] for r in big):.0%}. "
        "Rule of thumb: it=2 is within 1 % while lambda < ~2 and it=4 while lambda < ~10; beyond that "
        "use more iterations (CG converges for any lambda, roughly sqrt(lambda) iterations per decade) "
        "or the exact solve. The plain fixed point u <- v - K(G u) that CG replaces is within 1 % only "
        f"up to lambda ~ {max(fp_ok):.2g}, and diverges once the spectral radius of K G (~0.82 r g N^2, g a typical conductance) exceeds 1, "
        "from lambda ~ 2 here."
    )
    print(textwrap.fill(text, width=110, initial_indent="  ", subsequent_indent="  "))

    # ---- sneak paths: passive array with half of the rows floating
    n = args.sneak_size
    print(f"\nsneak paths: {n}x{n}, half of the rows floating (input exactly 0), {args.batch} inputs ~ U[0, 0.2] V "
          "on the driven rows\n")
    head = (f"{'material':<12} {'r/ohm':>6} {'r*gmax*N^2':>10} {'lost 1T1R':>13} {'0T1R vs 1T1R':>13} "
            f"{'max |col| diff':>15} {'0T1R total/1T1R':>16}")
    print(head)
    print("-" * len(head))
    for name, (lo, hi) in MATERIALS.items():
        g = torch.rand(n, n, generator=gen, dtype=torch.float64) * (hi - lo) + lo
        v = torch.rand(args.batch, n, generator=gen, dtype=torch.float64) * 0.2
        floating = torch.randperm(n, generator=gen)[: n // 2]
        v[:, floating] = 0.0
        for r in RESISTANCES:
            one = solve_ir_drop_exact(g, v, r_row=r, r_col=r, array_type="1T1R")
            zero = solve_ir_drop_exact(g, v, r_row=r, r_col=r, array_type="0T1R")
            col = ((zero - one).abs() / one.abs()).max().item()
            print(f"{name:<12} {r:>6g} {r * hi * n * n:>10.3g} {((v @ g - one).norm() / (v @ g).norm()).item():>13.1e} {rel(zero, one):>13.1e} "
                  f"{col:>15.1e} {(zero.sum() / one.sum()).item():>16.6f}")
    print("(lost: fraction of the ideal current lost to the wires; 0T1R vs 1T1R: relative Frobenius difference"
          " of the column currents;\n max |col| diff: largest relative change of one column current)")
    print(f"\ntotal time {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
