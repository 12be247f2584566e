"""memsnn crossbar vs aihwkit AnalogTile, side by side in one process: forward and pulsed update.

Run:  .venv/bin/python benchmarks/crossbar_vs_aihwkit.py [--sizes 256 1024] [--batch 64] [--threads 2] [--device cpu|cuda]
      [--baseline COMMIT]

``--baseline COMMIT`` adds memsnn as of that commit (its ``memsnn`` package extracted with
``git archive`` into a temporary directory and imported as ``memsnn_baseline``; nothing in the
work tree changes), timed in the same rotation: a before / after of memsnn under the same load.

``--device cuda`` puts memsnn's crossbar and inputs on the GPU, and aihwkit's tile too when the
installed aihwkit is a CUDA build (otherwise the script says so and aihwkit stays on the CPU).

Forward. Both get a 7-bit DAC, a 7-bit ADC with bound 12, output noise 0.06 (aihwkit's IO
defaults; memsnn's ``PeripheryParams.aihwkit_default()``) and read noise: aihwkit's additive
per-MVM weight noise ``w_noise = 0.02`` (``WeightNoiseType.ADDITIVE_CONSTANT``), memsnn's device
read noise of 2 % per read (applied per input vector). One tile of the full size on each side.

Pulsed update. The same per-sample semantics: B sequential rank-1 updates of a batch (x, d) with
stochastic pulse trains of BL = 31 slots, one device per weight (aihwkit ``SingleRPUConfig``;
memsnn ``mapping="reference"``), state-dependent steps and per-pulse cycle-to-cycle noise. memsnn
draws row / column trains with the probabilities aihwkit uses without update management,
``p_x = min(1, A |x|)``, ``p_d = min(1, A |d|)`` with ``A = sqrt(lr / (dw_min * BL))``, so both apply
the same expected number of pulses. Devices: aihwkit ``ConstantStepDevice`` vs memsnn ``ideal``
with its c2c and d2d spreads switched on (linear steps), and aihwkit ``ReRamSBPresetDevice`` vs
memsnn ``rram`` (its translation). Two learning rates: aihwkit's cost grows with the number of
pulses (lr), memsnn's does not (k pulses are applied in closed form).

Unit of work of the update: one ``tile.update(x, d)`` call of aihwkit (64 rank-1 updates, each
drawing its 31-slot row and column trains and applying every coincidence as one pulse with its own
c2c draw) against one ``Crossbar.apply_schedule(OuterPhase(..., train="stochastic"))`` of memsnn (the
same 64 rank-1 updates, trains and per-pulse c2c statistics; k coincident pulses of one update are
applied in closed form, and a linear device's whole batch where it cannot reach a bound).

Every timing is the median of several repeats after a warm-up, the packages called in rotation
(this shared VM's speed drifts); the ratio is aihwkit time / memsnn time (> 1: memsnn is faster).
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import torch


DEVICE = torch.device("cpu")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timeit_rotation(fns, repeats: int) -> list[float]:
    """Median times of ``fns``, called in rotation so that all see the same machine state (this
    shared VM's speed drifts by up to 2x between minutes). The order starts one place later each
    repeat: whichever call follows another package's pays for the caches that one left behind
    (~7 % measured with two identical memsnn packages), and rotating spreads that over all."""
    for f in fns:
        f()
    _sync()
    times: list[list[float]] = [[] for _ in fns]
    n = len(fns)
    for r in range(repeats):
        for k in range(n):
            j = (k + r) % n
            t = time.perf_counter()
            fns[j]()
            _sync()
            times[j].append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def load_baseline(commit: str, into: Path):
    """memsnn as of ``commit``, imported as the package ``memsnn_baseline`` (from ``git archive``)."""
    root = Path(__file__).resolve().parents[1]
    blob = subprocess.run(["git", "-C", str(root), "archive", commit, "memsnn"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    (into / "memsnn").rename(into / "memsnn_baseline")
    sys.path.insert(0, str(into))
    return importlib.import_module("memsnn_baseline")


def aihwkit_tile(n: int, device: str, *, forward_noise: bool, lr: float = 0.1):
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.configs.devices import ConstantStepDevice
    from aihwkit.simulator.parameters.enums import WeightNoiseType
    from aihwkit.simulator.presets import ReRamSBPresetDevice
    from aihwkit.simulator.tiles import AnalogTile

    dev = ConstantStepDevice() if device == "linear" else ReRamSBPresetDevice()
    cfg = SingleRPUConfig(device=dev)
    if forward_noise:
        cfg.forward.w_noise = 0.02
        cfg.forward.w_noise_type = WeightNoiseType.ADDITIVE_CONSTANT
    cfg.update.update_management = False
    cfg.update.update_bl_management = False
    tile = AnalogTile(n, n, cfg)
    tile.set_learning_rate(lr)
    tile.set_weights(torch.rand(n, n) * 0.4 - 0.2)
    if DEVICE.type == "cuda" and _aihwkit_cuda():
        tile = tile.cuda()
    return tile, dev.dw_min


def _aihwkit_cuda() -> bool:
    from aihwkit.simulator.rpu_base import cuda

    return bool(cuda.is_compiled())


def memsnn_crossbar(n: int, device: str, *, forward: bool, pkg: str = "memsnn"):
    """The memsnn side; ``pkg``: ``"memsnn"`` or ``"memsnn_baseline"`` (see ``--baseline``)."""
    Crossbar, CrossbarParams, PeripheryParams = (getattr(importlib.import_module(f"{pkg}.crossbar"), k)
                                                 for k in ("Crossbar", "CrossbarParams", "PeripheryParams"))
    make_device = importlib.import_module(f"{pkg}.device_models").make_device

    if device == "linear":
        model = make_device("ideal", step=1e-10, step_std=0.3, step_dtod=0.3, read_noise_std=0.02 if forward else 0.0,
                            read_noise_type="absolute")
    else:
        model = make_device("rram", read_noise_std=0.02 if forward else 0.0)
    params = CrossbarParams(mapping="reference", tile_rows=n, tile_cols=n)
    per = PeripheryParams.aihwkit_default() if forward else PeripheryParams()
    xbar = Crossbar(n, n, model, params=params, periphery=per, seed=0, device=DEVICE)
    xbar.program(torch.rand(n, n) * 0.4 - 0.2, method="direct")
    return xbar


def bench_forward(n: int, batch: int, repeats: int, pkgs: list[str]) -> list[float]:
    """Times of aihwkit, then of each memsnn package in ``pkgs``."""
    tile, _ = aihwkit_tile(n, "linear", forward_noise=True)
    xbars = [memsnn_crossbar(n, "linear", forward=True, pkg=pkg) for pkg in pkgs]
    x = torch.rand(batch, n) * 2 - 1
    xa, xm = _for_aihwkit(x), x.to(DEVICE)
    with torch.no_grad():
        return timeit_rotation([lambda: tile.forward(xa)] + [lambda xb=xb: xb.vmm(xm) for xb in xbars], repeats)


def _for_aihwkit(t: torch.Tensor) -> torch.Tensor:
    return t.to(DEVICE) if DEVICE.type == "cuda" and _aihwkit_cuda() else t


def bench_update(n: int, batch: int, device: str, lr: float, repeats: int, pkgs: list[str]) -> list[float]:
    """Times of aihwkit, then of each memsnn package in ``pkgs``: one batch of ``batch`` rank-1 updates."""
    tile, dw_min = aihwkit_tile(n, device, forward_noise=False, lr=lr)
    x = torch.rand(batch, n) * 2 - 1
    d = torch.rand(batch, n) * 2 - 1
    bl = 31
    a = math.sqrt(lr / (dw_min * bl))
    calls = [lambda xa=_for_aihwkit(x), da=_for_aihwkit(d): tile.update(xa, da)]
    for pkg in pkgs:
        xbar = memsnn_crossbar(n, device, forward=False, pkg=pkg)
        phase = importlib.import_module(f"{pkg}.crossbar").OuterPhase(
            (a * x).clamp(-1, 1).to(DEVICE), (a * d).clamp(-1, 1).to(DEVICE), train="stochastic", length=bl)
        calls.append(lambda xbar=xbar, phase=phase: xbar.apply_schedule(phase))
    return timeit_rotation(calls, repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="torch device of memsnn's crossbar (cpu, cuda)")
    ap.add_argument("--baseline", default=None, metavar="COMMIT", help="also time memsnn as of this commit")
    args = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    importlib.import_module("memsnn")  # its import sets one thread: --threads must come after it
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "CPU"
    if DEVICE.type == "cuda" and not _aihwkit_cuda():
        print("note: this aihwkit is not a CUDA build; its tiles run on the CPU")
    with tempfile.TemporaryDirectory() as tmp:
        pkgs = ["memsnn"]
        if args.baseline:
            load_baseline(args.baseline, Path(tmp))
            pkgs.append("memsnn_baseline")
        torch.set_num_threads(args.threads)  # importing memsnn sets its own default
        print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, memsnn on {where}")
        head = f"{'benchmark':44s} {'aihwkit':>11s} {'memsnn':>11s} {'ratio':>7s}"
        if args.baseline:
            head += f" {'@' + args.baseline[:9]:>11s} {'ratio':>7s} {'speed-up':>8s}"
        print(head)

        def line(label: str, ts: list[float], unit: float, fmt: str) -> None:
            out = f"{label:44s} {ts[0] * unit:{fmt}}ms {ts[1] * unit:{fmt}}ms {ts[0] / ts[1]:6.1f}x"
            if len(ts) > 2:
                out += f" {ts[2] * unit:{fmt}}ms {ts[0] / ts[2]:6.1f}x {ts[2] / ts[1]:7.2f}x"
            print(out, flush=True)

        for n in args.sizes:
            rep = max(2, args.repeats if n <= 256 else args.repeats // 2)
            line(f"forward {n}x{n}", bench_forward(n, args.batch, rep * 20, pkgs), 1e3, "9.2f")
            for device in ("linear", "rram"):
                for lr in (0.1, 0.01):
                    ts = bench_update(n, args.batch, device, lr, rep, pkgs)
                    line(f"update {n}x{n} {device:6s} lr={lr:g}", ts, 1e3, "9.1f")


if __name__ == "__main__":
    main()
