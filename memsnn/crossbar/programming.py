"""Programming target weights onto a crossbar with real pulses.

Three methods, all reporting the final error, the pulses and energy used, the read operations,
the hardware phases and the devices that did not reach the tolerance (stuck ones included):

``open_loop``
    Reset every device to the bottom of its window with one parallel RESET phase (the number of
    pulses the *nominal* device needs to fall from ``g_max`` to ``g_min``), then give each device
    the number of SET pulses the nominal law needs to reach its target. No reads: device-to-device
    spread, cycle-to-cycle noise and the nonlinear law all show up as error. With ``step_gains``
    (a :class:`~memsnn.crossbar.calibration.StepCalibration`) each device gets its RESET count
    over its measured RESET gain and its SET count over its SET gain, which removes the error of
    the step spread (write-verify divides its estimates the same way).

``write_verify``
    Starting from the current state: read the array (with read noise), compare each device with
    its target, and pulse the devices outside ``tol`` by the nominal law's estimate of the pulses
    needed (times a per-device gain, at least one, at most ``k_max`` per iteration). The gain
    starts at ``gain`` and halves for a device each time its error changes sign (an overshoot), so a
    device whose own law differs from the nominal one (d2d spread) settles instead of swinging
    from bound to bound; a device whose error has not improved by 10 % for ``patience`` iterations
    is left alone (its own bounds cannot reach the target). Then wait ``settle`` seconds
    (so that a volatile part has relaxed before the next verify read - the array clock advances and
    drift acts meanwhile); repeat until every working device is within tolerance or ``max_iter``
    is reached. ``settle`` defaults to five volatile time constants for devices with a volatile
    part and to 0 otherwise.

``direct``
    The statistical shortcut of inference simulators (:meth:`DeviceModel.program`): targets plus the
    model's programming error, no pulses counted. For fast ex-situ transfer of large layers.

Tolerance ``tol`` is a fraction of the nominal conductance window (``tol * (g_max - g_min)``
siemens per device).

``check=False`` skips the final comparison with the targets (the report then carries the cost
only: pulses, energy, reads, phases; its error fields are NaN and ``failed`` / ``stuck`` None) -
for callers that program often and only count the cost, such as a scheduler's refresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..device_models import DeviceModel, DeviceState
from .schedule import DensePhase, OuterPhase, sparse_phases

__all__ = ["ProgramReport", "program_weights", "merge_states", "METHODS"]

Tensor = torch.Tensor
METHODS = ("write_verify", "open_loop", "direct")


@dataclass
class ProgramReport:
    """Outcome of programming a crossbar."""

    method: str
    iterations: int
    pulses: int
    energy_J: float
    reads: int
    hardware_phases: int
    weight_rmse: float
    weight_max_error: float
    g_rmse_S: float
    tolerance_S: float
    converged_fraction: float  # of working (not stuck) devices within tolerance
    failed: Tensor | None = field(repr=False)  # [in, out] bool: a device of this weight is off target or stuck
    stuck: Tensor | None = field(repr=False)  # [in, out] bool: a device of this weight is stuck

    @property
    def checked(self) -> bool:
        """False for a report made with ``check=False`` (cost only, no comparison with the targets)."""
        return self.failed is not None

    @property
    def n_failed(self) -> int:
        return int(self.failed.sum()) if self.checked else -1

    @property
    def n_stuck(self) -> int:
        return int(self.stuck.sum()) if self.checked else -1

    @classmethod
    def cost_only(cls, method: str, iterations: int, pulses: int, energy_J: float, reads: int,
                  hardware_phases: int, tolerance_S: float) -> "ProgramReport":
        """The report of ``check=False``: the cost, NaN errors, no per-device outcome
        (``n_failed`` / ``n_stuck`` are -1)."""
        nan = float("nan")
        return cls(method, iterations, pulses, energy_J, reads, hardware_phases, nan, nan, nan, tolerance_S, nan,
                   None, None)

    def summary(self) -> dict:
        """Scalars only (for tables and JSON)."""
        return {
            "method": self.method, "iterations": self.iterations, "pulses": self.pulses,
            "energy_J": self.energy_J, "reads": self.reads, "hardware_phases": self.hardware_phases,
            "weight_rmse": self.weight_rmse, "weight_max_error": self.weight_max_error,
            "g_rmse_S": self.g_rmse_S, "tolerance_S": self.tolerance_S,
            "converged_fraction": self.converged_fraction, "n_failed": self.n_failed, "n_stuck": self.n_stuck,
        }


def _check_positive(name: str, value, integer: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "an integer >= 1" if integer else "a finite number > 0"
        raise ValueError(f"{name}={value!r} must be {kind}")


def check_program_args(xbar, *, method: str, tol: float, max_iter: int, k_max: int, gain: float,
                       settle: float | None, mask: Tensor | None, patience: int | None, check: bool = True) -> float:
    """Validate the arguments :func:`program_weights` (and every backend's ``program``) share,
    before any pulse; returns ``settle`` in seconds (None: 5 tau_volatile for devices with a
    volatile part, else 0)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed: use one of {', '.join(map(repr, METHODS))}")
    if not isinstance(check, bool):
        raise ValueError(f"check={check!r} must be True (compare with the targets) or False (cost only)")
    _check_positive("tol", tol)
    _check_positive("max_iter", max_iter, integer=True)
    _check_positive("k_max", k_max, integer=True)
    _check_positive("gain", gain)
    if patience is not None:
        _check_positive("patience", patience, integer=True)
    if settle is None:
        mp = xbar.model.params
        settle = 5.0 * mp.tau_volatile if mp.volatile_ratio > 0 else 0.0
    if not (isinstance(settle, (int, float)) and math.isfinite(settle) and settle >= 0):
        raise ValueError(f"settle={settle!r} must be a finite number of seconds >= 0")
    if mask is not None and (not isinstance(mask, torch.Tensor) or tuple(mask.shape) != xbar.shape
                             or mask.dtype != torch.bool):
        raise ValueError(f"mask must be a bool tensor of shape {xbar.shape}, got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")
    return float(settle)


def program_weights(
    xbar,
    w: Tensor,
    *,
    method: str = "write_verify",
    tol: float = 0.01,
    max_iter: int = 50,
    k_max: int = 1000,
    gain: float = 1.0,
    amplitude: float | None = None,
    settle: float | None = None,
    mask: Tensor | None = None,
    patience: int | None = 8,
    step_gains=None,
    check: bool = True,
) -> ProgramReport:
    """Program weights ``w`` ``[in, out]`` onto ``xbar`` (a :class:`~memsnn.crossbar.Crossbar`).

    Args:
        method: ``"write_verify"``, ``"open_loop"`` or ``"direct"`` (module docstring).
        tol: tolerance per device, fraction of the nominal window.
        max_iter: write-verify iterations at most.
        k_max: pulses per device per step at most.
        gain: fraction of the estimated pulses applied per write-verify step.
        amplitude: pulse amplitude (V); None: the device's defaults.
        settle: seconds between a write and its verify read (write-verify); None: 5 tau_volatile
            for devices with a volatile part, else 0.
        mask: bool ``[in, out]``: program only these weights (both devices of each pair); the
            other devices are left exactly as they were. The report covers the masked weights.
        patience: write-verify stops pulsing a device whose read error has not improved for this
            many iterations (a device whose own bounds cannot reach its target, say); None: never.
        step_gains: a :class:`~memsnn.crossbar.calibration.StepCalibration` of this crossbar:
            open-loop and write-verify pulse counts are divided by each device's measured SET or
            RESET gain (a device that moves 1.3x the nominal step gets 1/1.3 of the pulses).
        check: compare the result with the targets (False: a cost-only report, module docstring).
    """
    if amplitude is not None:
        _check_positive("amplitude", amplitude)
    settle = check_program_args(xbar, method=method, tol=tol, max_iter=max_iter, k_max=k_max, gain=gain,
                                settle=settle, mask=mask, patience=patience, check=check)
    g_plus_t, g_minus_t = xbar.target_conductances(w)  # validates w
    if mask is not None:
        mask = mask.to(xbar.device)
    model: DeviceModel = xbar.model
    tol_s = tol * model.params.window
    pulses0, energy0, reads0 = xbar.total_pulses, xbar.energy, xbar.reads
    targets = [("plus", g_plus_t)] + ([("minus", g_minus_t)] if g_minus_t is not None else [])
    iterations, phases = 0, 0
    if step_gains is not None and not all(hasattr(step_gains, a) for a in ("set_gain", "reset_gain")):
        raise TypeError(f"step_gains must be a StepCalibration (memsnn.crossbar.calibration), got {type(step_gains).__name__}")
    if method == "write_verify":
        iterations, phases = _write_verify(xbar, targets, tol_s, max_iter, k_max, gain, amplitude, settle, mask, patience,
                                           step_gains)
    if method == "open_loop":  # masked devices only get pulses: the others are left exactly as they were
        names = [n for n, _ in targets]
        states, phases = _open_loop(model, [getattr(xbar, n) for n in names], [t for _, t in targets], names,
                                    xbar.generator, k_max, amplitude, mask, step_gains)
        iterations = 1
        for name, state in zip(names, states):
            xbar._set_array(name, state)
    elif method == "direct":
        for name, target in targets:
            old: DeviceState = getattr(xbar, name)
            state = model.program(old, target, generator=xbar.generator)
            xbar._set_array(name, state if mask is None else merge_states(old, state, mask))
    if not check:
        return ProgramReport.cost_only(method, iterations, xbar.total_pulses - pulses0, xbar.energy - energy0,
                                       xbar.reads - reads0, phases, tol_s)

    # the truth: noise-free conductances and weights now
    bad = torch.zeros(xbar.shape, dtype=torch.bool, device=xbar.device)
    stuck = torch.zeros_like(bad)
    sq_err, n_dev, n_ok = 0.0, 0, 0
    sel = torch.ones(xbar.shape, dtype=torch.bool, device=xbar.device) if mask is None else mask
    for name, target in targets:
        state = getattr(xbar, name)
        err = (model.conductance_longterm(state) - target)[sel]
        is_stuck = (state.stuck != 0)[sel]
        off = err.abs() > tol_s
        bad[sel] |= off | is_stuck
        stuck[sel] |= is_stuck
        sq_err += float((err.double() ** 2).sum())
        n_dev += err.numel()
        n_ok += int((~off & ~is_stuck).sum())
    w_err = (xbar.weights() - w.to(xbar.device, xbar.dtype)).double()[sel]
    n_working = sum(int((getattr(xbar, n).stuck[sel] == 0).sum()) for n, _ in targets)
    return ProgramReport(
        method=method,
        iterations=iterations,
        pulses=xbar.total_pulses - pulses0,
        energy_J=xbar.energy - energy0,
        reads=xbar.reads - reads0,
        hardware_phases=phases,
        weight_rmse=float(w_err.pow(2).mean().sqrt()) if w_err.numel() else 0.0,  # an empty mask: nothing to do
        weight_max_error=float(w_err.abs().max()) if w_err.numel() else 0.0,
        g_rmse_S=math.sqrt(sq_err / max(n_dev, 1)),
        tolerance_S=tol_s,
        converged_fraction=n_ok / n_working if n_working else float(w_err.numel() == 0),
        failed=bad,
        stuck=stuck,
    )


def _open_loop(model: DeviceModel, states: list[DeviceState], targets: list[Tensor], names: list[str], gen,
               k_max: int, amplitude, mask=None, step_gains=None) -> tuple[list[DeviceState], int]:
    """The full RESET, then the nominal SET count from ``g_min`` to each target: one pulse
    sequence for every array together (nothing reads them in between), on the ``mask``ed devices
    (every device when None). With ``step_gains`` each device's SET count is divided by its SET
    gain half way up the path and its RESET count by its mean RESET gain over the window.
    Returns ``(new states, hardware phases)``."""
    if len({tuple(t.shape) for t in targets}) > 1:  # arrays of other shapes: one after the other
        out = [_open_loop(model, [s], [t], [n], gen, k_max, amplitude, mask, step_gains) for s, t, n in zip(states, targets, names)]
        return [o[0][0] for o in out], sum(o[1] for o in out)
    p = model.params
    n_reset = model.full_reset_pulses(amplitude)
    A, (rows, cols) = len(states), states[0].shape
    per, device, dtype = rows * cols, states[0].device, states[0].dtype
    tgt = torch.stack(targets) if A > 1 else targets[0].unsqueeze(0)  # [A, rows, cols]
    # the counts of the devices that get pulses: flat indices idx into [A * rows * cols] (None: all)
    idx = None
    if mask is not None:
        idx = mask.to(device).reshape(-1).nonzero().squeeze(1)
        idx = (idx + per * torch.arange(A, device=device).unsqueeze(1)).reshape(-1) if A > 1 else idx
        tgt = tgt.reshape(-1).index_select(0, idx)
    needed = model.pulses_needed(torch.tensor(p.g_min, dtype=torch.float64, device=tgt.device), tgt, amplitude=amplitude)
    if step_gains is not None:  # measured steps: a slow device gets more RESET pulses, a fast one fewer SET pulses
        arrays = tuple(names)
        needed = needed / step_gains.gain(arrays, +1, 0.5 * (p.g_min + tgt), index=idx).to(needed.device, needed.dtype)
        reset_gain = step_gains.gain(arrays, -1, index=idx).to(needed.device, torch.float64)
        k_reset = -torch.ceil(n_reset / reset_gain.clamp(min=0.05))
    else:
        k_reset = torch.full_like(needed, -float(n_reset))
    k = needed.round().clamp(0, k_max)
    counts = torch.zeros((2, A * per), dtype=dtype, device=device)
    if idx is None:
        counts[0], counts[1] = k_reset.reshape(-1), k.reshape(-1)
    else:
        counts[0].index_copy_(0, idx, k_reset.to(dtype))
        counts[1].index_copy_(0, idx, k.to(dtype))
    counts = counts.view(2, A, rows, cols)
    if step_gains is None and mask is None:  # one parallel RESET phase per array (rows driven for
        # all n_reset slots: an aligned phase gives min(row, column) pulses per device)
        reset = OuterPhase(torch.full((rows,), n_reset, dtype=torch.int32), torch.full((cols,), -n_reset, dtype=torch.int32))
        phases = sum(reset.hardware_phases() + DensePhase(counts[1, a].to(torch.int32)).hardware_phases() for a in range(A))
    elif idx is not None and idx.numel() <= _FEW:  # every masked device is RESET, some SET
        flat, on = idx.tolist(), (k > 0).tolist()
        phases = 0
        for a in range(A):
            mine = [(i - a * per, o) for i, o in zip(flat, on) if a * per <= i < (a + 1) * per]
            phases += sparse_phases([i for i, _ in mine], cols) + sparse_phases([i for i, o in mine if o], cols)
    else:
        phases = sum(DensePhase(counts[0, a].to(torch.int32)).hardware_phases()
                     + DensePhase(counts[1, a].to(torch.int32)).hardware_phases() for a in range(A))
    new = model.apply_sequences(states, [counts[:, a] for a in range(A)], amplitude=amplitude, generator=gen)
    return new, phases


#: masks of at most this many devices count their hardware phases in Python (sparse_phases)
_FEW = 256


def merge_states(old: DeviceState, new: DeviceState, mask: Tensor) -> DeviceState:
    """``new`` where ``mask`` holds, ``old`` elsewhere (every per-device tensor of the state)."""
    fields = {}
    for name, t_old in old.tensors().items():
        if name.startswith("dev.") or name == "stuck":
            continue
        fields[name] = torch.where(mask, getattr(new, name), t_old)
    return new.replace(**fields)


class VerifyTracker:
    """Per-device bookkeeping of a write-verify loop on one array, shared by every crossbar
    backend: the pulse gain halves when the error changes sign (overshoot), and with ``patience``
    a device that has not come 10 % closer for that many reads is given up on."""

    def __init__(self, target: Tensor, gain: float, patience: int | None):
        like = dict(device=target.device)
        self.gain = torch.full(target.shape, float(gain), dtype=torch.float64, **like)
        self.last_sign = torch.zeros(target.shape, dtype=torch.float64, **like)
        self.best = torch.full(target.shape, float("inf"), dtype=target.dtype, **like)
        self.stale = torch.zeros(target.shape, dtype=torch.int32, **like)
        self.patience = patience

    def update(self, err: Tensor, need: Tensor) -> Tensor:
        """Record this read's error ``target - G``; returns ``need`` less the given-up devices."""
        if self.patience is not None:
            better = err.abs() < 0.9 * self.best
            self.best = torch.where(better, err.abs(), self.best)
            self.stale = torch.where(better, torch.zeros_like(self.stale), self.stale + 1)
            need = need & (self.stale < self.patience)
        sign = torch.sign(err).double()
        self.gain = torch.where(sign * self.last_sign < 0, self.gain * 0.5, self.gain)
        self.last_sign = sign
        return need

    def pulses(self, needed: Tensor, need: Tensor, k_max: int) -> Tensor:
        """Signed pulse counts: ``needed`` (the model's estimate) times the gain, at least 1 and at
        most ``k_max`` in magnitude, 0 where ``need`` is False."""
        k = verify_counts(needed, self.gain, k_max)
        return torch.where(need, k, torch.zeros_like(k))


def verify_counts(needed: Tensor, gain: Tensor, k_max: int) -> Tensor:
    """``needed * gain`` rounded to whole pulses, at least 1 and at most ``k_max`` in magnitude
    (float, the sign of ``needed``)."""
    k = needed * gain
    return torch.sign(k) * k.abs().round().clamp(1, k_max)


#: a verify round in which fewer than this fraction of an array's devices still need pulses computes
#: the pulse counts of those devices only (the same numbers: every step is elementwise)
_SUBSET_FRACTION = 0.25


def _verify_pulses(model: DeviceModel, name: str, g_read: Tensor, target: Tensor, gain: Tensor, k_max: int,
                   amplitude, step_gains, index: Tensor | None = None) -> Tensor:
    """Signed int32 pulse counts of a verify round for devices read at ``g_read`` with targets
    ``target`` (the whole array, or the flat devices ``index``): the nominal law's estimate, divided
    by the measured step gains half way along the path when there are some, times the tracker's
    per-device ``gain``, rounded, at least 1 and at most ``k_max`` in magnitude."""
    needed = model.pulses_needed(g_read, target, amplitude=amplitude)
    if step_gains is not None:  # measured per-device SET / RESET steps (calibration)
        mid = 0.5 * (g_read + target)  # the gain half way along the path
        up = step_gains.gain(name, +1, mid, index=index).to(needed.device, needed.dtype)
        down = step_gains.gain(name, -1, mid, index=index).to(needed.device, needed.dtype)
        needed = torch.where(needed > 0, needed / up, needed / down)
    return verify_counts(needed, gain, k_max).to(torch.int32)


def _write_verify(xbar, targets, tol_s: float, max_iter: int, k_max: int, gain: float, amplitude, settle: float,
                  mask: Tensor | None = None, patience: int | None = None, step_gains=None):
    """Read, compare, pulse and settle, on all arrays together (they share the clock)."""
    model: DeviceModel = xbar.model
    phases = 0
    trackers = {name: VerifyTracker(target, gain, patience) for name, target in targets}
    for it in range(1, max_iter + 1):
        pending = []
        for name, target in targets:
            state = getattr(xbar, name)
            g_read = model.read(state, generator=xbar.generator)
            err = target - g_read
            need = (err.abs() > tol_s) & (state.stuck == 0)
            if mask is not None:
                need &= mask
            need = trackers[name].update(err, need)
            n_need = int(need.sum())
            if n_need:
                pending.append((name, target, g_read, need, n_need))
        xbar.reads += 1  # one verify read of the whole array (both devices of each pair)
        if not pending:
            return it, phases
        for name, target, g_read, need, n_need in pending:
            if n_need < _SUBSET_FRACTION * need.numel():  # the pulse counts of the few devices left
                idx = need.reshape(-1).nonzero().squeeze(1)
                k_few = _verify_pulses(model, name, g_read.reshape(-1).index_select(0, idx),
                                       target.reshape(-1).index_select(0, idx), trackers[name].gain.reshape(-1)[idx],
                                       k_max, amplitude, step_gains, idx)
                k = torch.zeros(need.numel(), dtype=torch.int32, device=need.device).index_copy_(0, idx, k_few)
                k = k.view(need.shape)
            else:
                k = _verify_pulses(model, name, g_read, target, trackers[name].gain, k_max, amplitude, step_gains)
                k = torch.where(need, k, torch.zeros_like(k))
            xbar._set_array(name, model.apply_pulses(getattr(xbar, name), k, amplitude=amplitude, generator=xbar.generator))
            if n_need <= _FEW and n_need < _SUBSET_FRACTION * need.numel():  # counted in Python
                flat, sign = idx.tolist(), torch.sign(k_few).tolist()  # a count may round to 0
                cols = need.shape[-1]
                phases += (sparse_phases([i for i, u in zip(flat, sign) if u > 0], cols)
                           + sparse_phases([i for i, u in zip(flat, sign) if u < 0], cols))
            else:
                phases += DensePhase(k.cpu()).hardware_phases()
        if settle > 0:
            xbar.advance(settle)
    return max_iter, phases
