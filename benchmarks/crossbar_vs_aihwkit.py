"""memsnn crossbar vs aihwkit AnalogTile, side by side in one process: forward and pulsed update.

Run:  .venv/bin/python benchmarks/crossbar_vs_aihwkit.py [--sizes 256 1024] [--batch 64] [--threads 2] [--device cpu|cuda]

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

Every timing is the median of several repeats after a warm-up, the two packages called alternately
(this shared VM's speed drifts); the ratio is aihwkit time / memsnn time (> 1: memsnn is faster).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch


DEVICE = torch.device("cpu")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timeit_pair(fa, fm, repeats: int) -> tuple[float, float]:
    """Median times of ``fa`` and ``fm``, called alternately so that both see the same machine
    state (this shared VM's speed drifts by up to 2x between minutes)."""
    fa(), fm()
    _sync()
    ta, tm = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        fa()
        _sync()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        fm()
        _sync()
        tm.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tm)


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


def memsnn_crossbar(n: int, device: str, *, forward: bool):
    from memsnn.crossbar import Crossbar, CrossbarParams, PeripheryParams
    from memsnn.device_models import make_device

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


def bench_forward(n: int, batch: int, repeats: int) -> tuple[float, float]:
    tile, _ = aihwkit_tile(n, "linear", forward_noise=True)
    xbar = memsnn_crossbar(n, "linear", forward=True)
    x = torch.rand(batch, n) * 2 - 1
    xa, xm = _for_aihwkit(x), x.to(DEVICE)
    with torch.no_grad():
        return timeit_pair(lambda: tile.forward(xa), lambda: xbar.vmm(xm), repeats)


def _for_aihwkit(t: torch.Tensor) -> torch.Tensor:
    return t.to(DEVICE) if DEVICE.type == "cuda" and _aihwkit_cuda() else t


def bench_update(n: int, batch: int, device: str, lr: float, repeats: int) -> tuple[float, float]:
    from memsnn.crossbar import OuterPhase

    tile, dw_min = aihwkit_tile(n, device, forward_noise=False, lr=lr)
    xbar = memsnn_crossbar(n, device, forward=False)
    x = torch.rand(batch, n) * 2 - 1
    d = torch.rand(batch, n) * 2 - 1
    bl = 31
    a = math.sqrt(lr / (dw_min * bl))
    phase = OuterPhase((a * x).clamp(-1, 1).to(DEVICE), (a * d).clamp(-1, 1).to(DEVICE), train="stochastic", length=bl)
    xa, da = _for_aihwkit(x), _for_aihwkit(d)
    return timeit_pair(lambda: tile.update(xa, da), lambda: xbar.apply_schedule(phase), repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="torch device of memsnn's crossbar (cpu, cuda)")
    args = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "CPU"
    if DEVICE.type == "cuda" and not _aihwkit_cuda():
        print("note: this aihwkit is not a CUDA build; its tiles run on the CPU")
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, memsnn on {where}")
    print(f"{'benchmark':44s} {'aihwkit':>11s} {'memsnn':>11s} {'ratio':>7s}")
    for n in args.sizes:
        rep = max(2, args.repeats if n <= 256 else args.repeats // 2)
        t_a, t_m = bench_forward(n, args.batch, rep * 20)
        print(f"{f'forward {n}x{n}':44s} {t_a * 1e3:9.2f}ms {t_m * 1e3:9.2f}ms {t_a / t_m:6.1f}x")
        for device in ("linear", "rram"):
            for lr in (0.1, 0.01):
                t_a, t_m = bench_update(n, args.batch, device, lr, rep)
                label = f"update {n}x{n} {device:6s} lr={lr:g}"
                print(f"{label:44s} {t_a * 1e3:9.1f}ms {t_m * 1e3:9.1f}ms {t_a / t_m:6.1f}x")


if __name__ == "__main__":
    main()
