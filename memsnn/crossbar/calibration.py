"""Per-device step calibration: measure how far each device moves per pulse, relative to the nominal law.

Why. A pulse scheduler knows the nominal pulse law (and, with ``step="state_aware"``, each device's
present conductance), not each device's own law. On srtio3 the law's parameters ``R0, R1`` and the
exponent ``c`` spread by 15 % from device to device (Tiotto et al. 2021, science.md section 1.1),
so one SET pulse moves one device much more than its neighbour. With SET-only differential pairs a
weight's potentiation is a SET on ``G+`` and its depression a SET on ``G-``: when the two devices'
steps differ, a sequence of updates that should cancel drifts the weight instead - the per-device
form of the symmetric-point problem of asymmetric devices. Measured with ``memsnn ablate`` on
digits (seed 0): device-to-device spread costs in-situ SG 5.8 points and STDP 6.2, and switching
off the spread of the law alone (``device.r_dtod = device.c_dtod = 0``) brings SG from 88.2 to
93.8 %.

What this measures (:func:`calibrate_steps`), for every device of every array at once (the array
is read row by row, so one read of the whole array costs ``rows`` read operations on hardware; the
counter ``Crossbar.reads`` adds one per whole-array read, as write-verify does):

1. remember the weights, RESET every device to its bottom (the open-loop RESET train) and lift it
   off the bound with ``pulses // 10`` SET pulses (at the bound the law's pulse coordinate is not
   defined: the nominal law only approaches ``g_min`` asymptotically);
2. let the volatile part relax (``settle`` seconds), read every device ``reads`` times and average
   (``G_a``);
3. apply ``pulses`` SET pulses (default: the nominal count from ``g_min`` to the window's middle),
   settle, read (``G_b``); the SET gain is the nominal number of pulses that would take the mean
   device from ``G_a`` to ``G_b`` (:meth:`~memsnn.device_models.DeviceModel.pulses_needed`),
   divided by ``pulses``;
4. apply ``pulses // 2`` RESET pulses, settle, read (``G_c``); the RESET gain is the nominal
   count from ``G_b`` down to ``G_c`` over that number (half the way back, so that a device
   whose RESET outpaces its SET does not reach the bottom, where the change would stop);
5. reprogram the remembered weights (write-verify by default, with the gains just measured).

A gain of 1.2 means the device moves as far as the mean device would with 1.2 pulses; a scheduler
with ``step="calibrated"`` divides each device's pulse count by it. The gains are averages over the
lower half of the window (where the measurement runs): a device whose exponent ``c`` differs also
differs in shape, which one number per polarity cannot hold (``step="device"`` - the scheduler
using each device's own law - is the upper bound of what a calibration can reach). The estimate's
noise: ``step_std / sqrt(pulses)`` from cycle-to-cycle spread and the read noise over the measured
change. Drift during the settling shrinks a read by ``((settle + t0) / t0) ** -nu`` (2.9 % on
srtio3 with the default 5 tau_volatile settle: without a correction that biased the RESET gains by
+14 %, since it is a fraction of the whole conductance, not of the change); the reads after pulses
are divided by that factor with the nominal ``nu``, leaving the devices' spread of ``nu``.
Every pulse, read and joule is counted on the crossbar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .schedule import DensePhase
from ..device_models.base import _memo_of

__all__ = ["StepCalibration", "calibrate_steps"]

Tensor = torch.Tensor


@dataclass
class StepCalibration:
    """Measured per-device step gains (equivalent nominal pulses per pulse) and what they cost.

    ``set_gain[name]`` / ``reset_gain[name]`` are ``[S, in, out]`` tensors per array (``"plus"``,
    and ``"minus"`` for differential pairs), one per measured segment of the window, and
    ``set_level`` / ``reset_level`` the conductance (S) at the middle of each segment, per device.
    Stuck devices and segments whose measured change was not above the read noise get the mean of
    the device's valid segments (gain 1, the nominal law, when none is valid)."""

    set_gain: dict[str, Tensor]
    reset_gain: dict[str, Tensor]
    set_level: dict[str, Tensor] = field(default_factory=dict)
    reset_level: dict[str, Tensor] = field(default_factory=dict)
    pulses: int = 0
    energy_J: float = 0.0
    reads: int = 0
    seconds: float = 0.0  # clock time the settling took
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # segments in increasing conductance per device, once (gain() runs on every scheduled update)
        for gains, levels in ((self.set_gain, self.set_level), (self.reset_gain, self.reset_level)):
            for name, lv in levels.items():
                order = lv.argsort(dim=0)
                levels[name], gains[name] = lv.gather(0, order), gains[name].gather(0, order)

    def _stacked(self, which: str, names: tuple[str, ...]) -> Tensor:
        """``getattr(self, which)[name]`` of every array in ``names``, stacked on dim 1:
        ``[S, len(names), in, out]`` (made once)."""
        src = getattr(self, which)
        memo = self.__dict__.setdefault("_stacks", {})
        if (which, names) not in memo:
            memo[(which, names)] = torch.stack([src[n] for n in names], dim=1)
        return memo[(which, names)]

    @property
    def segments(self) -> int:
        return int(next(iter(self.set_gain.values())).shape[0])

    def gain(self, name: str | tuple[str, ...], polarity: int, g: Tensor | None = None, *,
             index: Tensor | None = None) -> Tensor:
        """Gains ``[in, out]`` of array ``name`` for SET (``polarity = +1``) or RESET (``-1``): with
        one segment its gain; with several, linearly interpolated over each device's own segment
        levels at conductances ``g`` (S, broadcastable to ``[in, out]``; extrapolated linearly
        beyond the end segments, within half to twice the end segment's gain), or the mean over
        segments when ``g`` is None. ``index``: flat indices (into ``[in * out]``) of the devices
        wanted; the gains ``[n]`` of those alone, with ``g`` ``[n]`` (or a number). A tuple of
        array names gives ``[len(name), in, out]`` (``g`` shaped so; ``index`` then counts into
        ``[len(name) * in * out]``)."""
        def table(which: str) -> Tensor:  # the measured table, in g's dtype when g is a float tensor
            t = getattr(self, which)[name] if isinstance(name, str) else self._stacked(which, tuple(name))
            if isinstance(g, torch.Tensor) and g.dtype.is_floating_point and g.dtype != t.dtype:
                t = _memo_of(t, ("as", g.dtype), lambda: t.to(g.dtype))  # converted once
            return t

        gains = table("set_gain" if polarity > 0 else "reset_gain")
        if gains.shape[0] == 1:
            return gains[0] if index is None else gains[0].reshape(-1).index_select(0, index)
        if g is None:  # the same on every update: computed once per measured gains
            mean = _memo_of(gains, "mean", lambda: gains.mean(dim=0))
            return mean if index is None else mean.reshape(-1).index_select(0, index)
        levels = table("set_level" if polarity > 0 else "reset_level").to(gains.dtype)
        if index is not None:
            gains = gains.reshape(gains.shape[0], -1).index_select(1, index)
            levels = levels.reshape(levels.shape[0], -1).index_select(1, index)
        g = torch.as_tensor(g, dtype=gains.dtype, device=gains.device).expand(gains.shape[1:])
        hi = (g.unsqueeze(0) > levels).sum(dim=0).clamp(1, gains.shape[0] - 1).unsqueeze(0)
        lo = hi - 1
        l0, l1 = levels.gather(0, lo)[0], levels.gather(0, hi)[0]
        a, b = gains.gather(0, lo)[0], gains.gather(0, hi)[0]
        # linear between segment levels and extrapolated beyond the end segments (the law's gain
        # varies smoothly), kept within [1/2, 2] of the end segment's gain
        t = (g - l0) / (l1 - l0).clamp(min=1e-30)
        out = a + t * (b - a)
        end = torch.where(t < 0, a, b)
        return torch.minimum(torch.maximum(out, 0.5 * end), 2.0 * end)


def _read_mean(xbar, name: str, reads: int) -> Tensor:
    state = getattr(xbar, name)
    g = sum(xbar.model.read(state, generator=xbar.generator).double() for _ in range(reads)) / reads
    return g


def calibrate_steps(xbar, *, pulses: int | None = None, segments: int = 1, reads: int = 4, settle: float | None = None,
                    restore: str = "write_verify", amplitude: float | None = None) -> StepCalibration:
    """Measure every device's SET and RESET step gain on ``xbar`` (see the module docstring).

    Args:
        xbar: a native :class:`~memsnn.crossbar.Crossbar`.
        pulses: SET pulses per device in the measurement; None: the nominal count from ``g_min``
            to the middle of the window with one segment, to 90 % of it with several (at least 4
            per segment).
        segments: the SET and the RESET excursion are each read after every ``1 / segments`` of
            their pulses, giving one gain per segment and device; the scheduler interpolates them
            at each device's conductance (a device whose exponent differs has a differently
            shaped law, which one gain per polarity cannot follow).
        reads: reads averaged per measurement point (read noise shrinks as ``1/sqrt(reads)``).
        settle: seconds between the pulses and a read, so the volatile part has relaxed; None:
            ``5 * tau_volatile`` for a device with a volatile part, else 0.
        restore: how the weights held before the calibration are written back: ``"write_verify"``,
            ``"open_loop"``, ``"direct"`` or ``"none"`` (leave the devices where the measurement
            ended).
        amplitude: pulse amplitude (V); None: the device's defaults.

    Returns:
        :class:`StepCalibration` with gains ``[in, out]`` per array; its cost is also on the
        crossbar's counters.
    """
    model = getattr(xbar, "model", None)
    if model is None or not hasattr(xbar, "plus"):
        raise TypeError(f"calibrate_steps needs a native memsnn Crossbar, got {type(xbar).__name__}")
    if isinstance(reads, bool) or not isinstance(reads, int) or reads < 1:
        raise ValueError(f"reads={reads!r} must be an integer >= 1")
    if restore not in ("write_verify", "open_loop", "direct", "none"):
        raise ValueError(f"restore={restore!r} is not allowed: use 'write_verify', 'open_loop', 'direct' or 'none'")
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"segments={segments!r} must be an integer >= 1")
    p = model.params
    f64 = lambda v: torch.tensor(float(v), dtype=torch.float64)
    top = p.g_min + (0.5 if segments == 1 else 0.9) * p.window
    if pulses is None:
        pulses = max(4 * segments, int(round(float(model.pulses_needed(f64(p.g_min), f64(top), amplitude=amplitude)))))
    if isinstance(pulses, bool) or not isinstance(pulses, int) or pulses < segments:
        raise ValueError(f"pulses={pulses!r} must be an integer >= segments = {segments}")
    if settle is None:
        settle = 5.0 * float(getattr(p, "tau_volatile", 0.0)) if getattr(p, "volatile_ratio", 0.0) > 0 else 0.0
    if not (isinstance(settle, (int, float)) and math.isfinite(settle) and settle >= 0):
        raise ValueError(f"settle={settle!r} must be a number of seconds >= 0")

    pulses0, energy0, reads0, t0 = xbar.total_pulses, xbar.energy, xbar.reads, xbar.time
    w_before = xbar.weights()
    names = [name for name, _ in xbar._arrays()]
    n_reset = max(1, int(math.ceil(-float(model.pulses_needed(f64(p.g_max), f64(p.g_min), amplitude=amplitude)))))
    full = torch.full(xbar.shape, 1, dtype=torch.int32)

    def pulse_all(k: int, wait: bool = True) -> None:
        counts = (full * k).to(xbar.device)
        minus = counts if "minus" in names else None
        xbar.apply_schedule(DensePhase(counts, minus, amplitude))
        if settle > 0 and wait:
            xbar.advance(settle)

    def read_all() -> dict[str, Tensor]:
        out = {name: _read_mean(xbar, name, reads) for name in names}
        xbar.reads += reads
        return out

    def chunks(total: int) -> list[int]:
        return [total // segments + (1 if i < total % segments else 0) for i in range(segments)]

    # a read taken ``settle`` s after a pulse sees the new state drifted by the nominal factor
    # ((settle + t0) / t0) ** -nu; the next pulses start from the drifted value the read saw
    nu, t0_drift = float(getattr(p, "drift_nu", 0.0)), float(getattr(p, "drift_t0", 1.0))
    f_drift = ((settle + t0_drift) / t0_drift) ** (-nu) if nu > 0 else 1.0
    pulse_all(-n_reset, wait=False)
    pulse_all(max(1, pulses // 10))  # off the bottom, where the law's coordinate is well defined
    up_reads, up_k = [read_all()], chunks(pulses)
    for k in up_k:
        pulse_all(k)
        up_reads.append(read_all())
    # RESET: half way back with one segment, else down to 15 % of the window (nominal count), so
    # that a device whose RESET outpaces its SET does not reach the bottom, where the change stops
    k_down = max(segments, pulses // 2 if segments == 1 else
                 int(round(-float(model.pulses_needed(f64(top), f64(p.g_min + 0.15 * p.window), amplitude=amplitude)))))
    down_reads, down_k = [up_reads[-1]], chunks(k_down)
    for k in down_k:
        pulse_all(-k)
        down_reads.append(read_all())

    def segment_gains(name: str, path: list[dict[str, Tensor]], ks: list[int], sign: int) -> tuple[Tensor, Tensor]:
        state = getattr(xbar, name)
        gains, levels, valid = [], [], []
        for s_i, k in enumerate(ks):
            start, end = path[s_i][name], path[s_i + 1][name] / f_drift
            noise = 3.0 * float(getattr(p, "read_noise_std", 0.0)) * start.abs() / math.sqrt(reads)
            n = sign * model.pulses_needed(start, end, amplitude=amplitude) / k
            valid.append((sign * (end - start) > noise) & (state.stuck == 0) & (n > 0))
            gains.append(n)
            levels.append(0.5 * (start + end))
        gains, levels, valid = torch.stack(gains), torch.stack(levels), torch.stack(valid)
        n_valid = valid.sum(dim=0)
        mean = torch.where(n_valid > 0, (gains * valid).sum(dim=0) / n_valid.clamp(min=1), torch.ones_like(gains[0]))
        return torch.where(valid, gains, mean.expand_as(gains)).to(xbar.dtype), levels.to(xbar.dtype)

    set_gain, reset_gain, set_level, reset_level = {}, {}, {}, {}
    for name in names:
        set_gain[name], set_level[name] = segment_gains(name, up_reads, up_k, +1)
        reset_gain[name], reset_level[name] = segment_gains(name, down_reads, down_k, -1)

    cal = StepCalibration(set_gain, reset_gain, set_level, reset_level,
                          details={"pulses_per_device": pulses, "segments": segments, "reads": reads, "settle_s": settle})
    if restore != "none":  # with the gains just measured: fewer verify rounds, so less drift meanwhile
        kw = {} if restore == "direct" else {"step_gains": cal}
        xbar.program(w_before, method=restore, amplitude=amplitude, **kw)
    cal.pulses, cal.energy_J = xbar.total_pulses - pulses0, xbar.energy - energy0
    cal.reads, cal.seconds = xbar.reads - reads0, xbar.time - t0
    return cal
