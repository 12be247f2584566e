"""The pulse scheduler: a desired weight change ``dW`` becomes the pulse schedule a crossbar receives.

Every in-situ rule ends here (science.md section 2). Given ``dW`` ``[in, out]`` (weight units):

Pulse step. ``dw_pulse`` is the weight change of one pulse: ``scale * |dG| / window_norm`` with
``dG`` the mean device's step - at the middle of the window (``step="nominal"``), or at each
device's current conductance (``step="state_aware"``: the controller tracks conductances, and a
nonlinear device's shrinking steps are compensated with more pulses). Two more modes take the
device-to-device spread of the law into account:

- ``step="calibrated"``: the state-aware step times each device's measured SET / RESET gain
  (:func:`memsnn.crossbar.calibration.calibrate_steps`, run by :meth:`PulseScheduler.calibrate`
  on a crossbar's first update: pulses and reads counted, the weights written back), and the
  refresh's open-loop and verify pulse counts divided by the same gains. On srtio3 the gains
  spread by about 60 % (the law's ``R0, R1, c`` spread 15 % each), which SET-only pairs turn into
  weight drift: potentiation and depression SET different devices.
- ``step="device"``: each device's own law (its sampled parameters) at its conductance - a
  perfectly characterised array, the upper bound of what calibration can give.

Measured on digits (the ``memsnn compare`` setting, srtio3 defaults; README "Closing the gap"),
see the numbers there; ``memsnn ablate`` put the device-to-device spread at -5.8 points for SG and
-6.2 for STDP.

Quantisation of ``n = |dw| / dw_pulse`` into whole pulses ``k`` (then ``min(k, k_max)``):

- ``sign`` (Manhattan): ``k = 1`` if ``n > sign_threshold``;
- ``round``: ``k = round(n)``;
- ``stochastic``: ``k = floor(n) + Bernoulli(n - floor(n))`` - unbiased, ``E[k] = n``, so updates
  far smaller than one pulse (typical of SSDP, CSDP and SGD) still move the weights right on
  average;
- ``accumulate`` (mixed precision, dense updates only): a digital accumulator per weight (``chi``,
  weight units, held by the scheduler for each crossbar it updates) adds every requested change;
  a device gets ``k = floor(|chi| / dw_pulse)`` pulses (at most ``k_max``) once the accumulated
  change reaches a whole step, and ``chi`` keeps the part below one pulse,
  ``(|chi| / dw_pulse - floor(|chi| / dw_pulse)) * dw_pulse`` with its sign. No pulse is spent on
  rounding noise - the scheme of Nandakumar et al. (Front. Neurosci. 2020) for PCM, the "digital
  accumulation" of science.md section 2, at the cost of one high-precision word per synapse in
  the periphery. What ``k_max`` clips is dropped, not carried: a device at its bound (local step
  near zero with state-aware steps) would otherwise wind ``chi`` up without limit and then ignore
  every change the other way (measured: in-situ SG on digits fell to 32 % that way).

Scheme (differential pair; ``w ~ G_plus - G_minus``):

- ``set_only``: potentiation is SET on ``G_plus``, depression SET on ``G_minus``; both devices only
  climb, so the pair is refreshed (read ``w``, reset both, reprogram the difference) every
  ``refresh_every`` updates and whenever a device comes within ``refresh_margin`` of the *lowest
  likely* upper bound ``g_max - refresh_spread * g_max_dtod * window`` (the controller knows the
  nominal law and its spread, not each device's own bound). Measuring from the nominal ``g_max``
  alone left the ~30 % of srtio3 devices whose own bound lies below the trigger (``g_max_dtod`` =
  0.1) saturated and frozen: in-situ SG on digits reached 79 % that way and 88 % with the spread
  allowed for (64 hidden, T = 10, 8 epochs, state-aware steps, open-loop refresh).
  The refresh is open loop by default (a full RESET of both devices, then the nominal pulse count
  from ``g_min``). ``refresh_method="write_verify"`` also starts with that full RESET (a verify
  loop of ``k_max``-pulse steps alone cannot bring a device down from near ``g_max`` on srtio3,
  whose RESET steps are 0.2-0.7 % of the window) and then verifies upwards. Measured for in-situ SG
  on digits/srtio3 (128 hidden, T = 25, 10 epochs): 86 % with open-loop refresh, 38 % with
  reset + write-verify and 21-47 % with write-verify alone - why verify does so badly here
  (verify reads taken while the volatile part of each pulse is still present are one suspect)
  is not yet understood. CSDP's small logic tasks are the opposite case (OR on srtio3: 4/4 seeds
  with write-verify, 3/4 open loop), so CSDP keeps write-verify.
- ``bipolar``: each device takes half of the change: potentiation is SET on ``G_plus`` and RESET on
  ``G_minus`` (and the reverse), keeping both devices mid-window.

With one device per weight (``mapping="reference"`` / ``"unipolar"``) the single device gets SET
for potentiation and RESET for depression.

Phases. :meth:`PulseScheduler.rank1` emits a rank-1 update - rows gated (0/1 or small counts,
e.g. which inputs fired), columns carrying the per-column change - as one parallel outer-product
phase per stacked update (per polarity group): the crossbar does it in one step. :meth:`dense`
emits any ``dW`` as a dense phase, which hardware programs line by line (rows or columns, whichever
are fewer). The returned :class:`UpdateStats` counts pulses, energy and hardware phases - phases
are time on hardware.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

from .._random import as_generator
from ..crossbar.array import Crossbar
from ..crossbar.calibration import StepCalibration, calibrate_steps
from ..crossbar.schedule import DensePhase, OuterPhase, PulseSchedule
from ..params import Params, param

__all__ = ["SchedulerParams", "PulseScheduler", "UpdateStats", "QUANTISATIONS", "SCHEMES"]

Tensor = torch.Tensor
QUANTISATIONS = ("sign", "round", "stochastic", "accumulate")
SCHEMES = ("set_only", "bipolar")
STEPS = ("nominal", "state_aware", "calibrated", "device")


@dataclass(frozen=True)
class SchedulerParams(Params):
    """How desired weight changes become pulses (see the module docstring)."""

    _owner = "scheduler"

    quantisation: str = param("stochastic", check=None, choices=QUANTISATIONS, doc="sign (Manhattan), round, stochastic rounding, or accumulate (mixed precision: a digital accumulator per weight)")
    sign_threshold: float = param(0.5, unit="pulses", check=">=0", doc="sign: a pulse when |dw| exceeds this many pulse steps")
    scheme: str = param("set_only", check=None, choices=SCHEMES, doc="SET-only with refresh, or bipolar (differential pairs)")
    k_max: int = param(8, unit="pulses", check="int>=1", doc="pulses per device per update at most")
    step: str = param("nominal", check=None, choices=STEPS, doc="pulse step: nominal law at the window middle, at each device's state (state_aware), times each device's measured gain (calibrated), or each device's own law (device)")
    refresh_every: int | None = param(None, unit="updates", check="int>=1", optional=True, doc="SET-only: refresh every N updates (None: only near g_max)")
    refresh_margin: float = param(0.05, unit="1", check="prob", doc="SET-only: refresh pairs with a device within this fraction of the window below g_max")
    refresh_spread: float = param(2.0, unit="sigma", check=">=0", doc="SET-only: the trigger allows for this many standard deviations of the devices' g_max spread")
    refresh_method: str = param("open_loop", check=None, choices=("write_verify", "open_loop", "direct"), doc="how a refresh reprograms the pairs")
    refresh_tol: float = param(0.005, unit="1", check=">0", doc="write-verify tolerance of a refresh (fraction of the window)")
    calibration_reads: int = param(4, unit="reads", check="int>=1", doc="step='calibrated': reads averaged per point of the step calibration")
    calibration_segments: int = param(1, unit="1", check="int>=1", doc="step='calibrated': window segments measured per polarity (one gain each, interpolated at each device's conductance)")
    amplitude: float | None = param(None, unit="V", check=">0", optional=True, doc="pulse amplitude (None: the device's defaults)")
    width: float | None = param(None, unit="s", check=">0", optional=True, doc="pulse width (None: the device's default)")


@dataclass
class UpdateStats:
    """Cost of one scheduled update (refresh included)."""

    pulses: int = 0
    energy_J: float = 0.0
    phases: int = 0
    refreshed: int = 0  # weights refreshed

    def __iadd__(self, other: "UpdateStats") -> "UpdateStats":
        self.pulses += other.pulses
        self.energy_J += other.energy_J
        self.phases += other.phases
        self.refreshed += other.refreshed
        return self


class PulseScheduler:
    """Turns desired weight changes into pulse schedules for a crossbar; see the module docstring."""

    def __init__(self, params: SchedulerParams | None = None, **overrides):
        self.params = params.replace(**overrides) if params is not None and overrides else (params or SchedulerParams(**overrides))
        self.updates = 0
        # quantisation="accumulate": the change not yet written, per crossbar ([in, out], weight units)
        self.residuals: weakref.WeakKeyDictionary[Crossbar, Tensor] = weakref.WeakKeyDictionary()
        # step="calibrated": the measured per-device step gains of each crossbar it updates
        self.calibrations: weakref.WeakKeyDictionary[Crossbar, StepCalibration] = weakref.WeakKeyDictionary()

    def calibrate(self, xbar: Crossbar) -> StepCalibration:
        """Measure ``xbar``'s per-device SET / RESET step gains now
        (:func:`~memsnn.crossbar.calibration.calibrate_steps`; the weights are written back with
        write-verify) and keep them for ``step="calibrated"``. Called by the first update of a
        crossbar when none is kept; call it again to re-measure (devices age)."""
        if not hasattr(xbar, "plus") or not hasattr(xbar, "model"):
            raise ValueError(f"step='calibrated' needs native memsnn crossbars (it measures each device), "
                             f"got {type(xbar).__name__}")
        cal = calibrate_steps(xbar, reads=self.params.calibration_reads, segments=self.params.calibration_segments,
                              amplitude=self.params.amplitude)
        self.calibrations[xbar] = cal
        return cal

    # ------------------------------------------------------------------------------------------------
    # steps and quantisation
    # ------------------------------------------------------------------------------------------------
    def pulse_step(self, xbar: Crossbar, array: str, polarity: int) -> Tensor:
        """Weight change (weight units, > 0) of one pulse of ``polarity`` on ``array``: a 0-d tensor
        (nominal) or ``[in, out]`` (state-aware, from each device's current conductance)."""
        step = self.pulse_steps(xbar, (array,), polarity)
        return step if step.dim() == 0 else step[0]

    def pulse_steps(self, xbar: Crossbar, arrays: tuple[str, ...], polarity: int) -> Tensor:
        """:meth:`pulse_step` of several arrays and one polarity in one computation: a 0-d tensor
        (nominal) or ``[len(arrays), in, out]``."""
        model, p = xbar.model, self.params
        dev, cal = None, None
        if p.step == "calibrated":  # measured first: the calibration pulses the devices, then restores them
            cal = self.calibrations.get(xbar) or self.calibrate(xbar)
        if p.step == "nominal":
            g = torch.tensor((model.params.g_min + model.params.g_max) / 2, dtype=torch.float64)
        else:
            if "minus" in arrays and xbar.params.mapping != "differential":
                raise ValueError("a single-device mapping has no minus array to pulse")
            states = [getattr(xbar, a) for a in arrays]
            # in the arrays' dtype: the controller's estimate needs no more precision than the
            # devices' own arithmetic (float32: a step of 1 % of G to 1e-5 relative)
            g = torch.stack([model.conductance_longterm(s) for s in states])
            if p.step == "device":
                dev = {k: torch.stack([s.dev[k] for s in states]) for k in states[0].dev}
        dg = model.nominal_step(g, polarity, amplitude=p.amplitude, width=p.width, dev=dev).abs()
        if cal is not None:
            dg = dg * cal.gain(arrays, polarity, g).to(dg.device, dg.dtype)
        step = xbar.scale * dg / xbar._w_norm
        return step.clamp(min=1e-12 * xbar.scale).to(device=xbar.device, dtype=xbar.dtype)

    def quantise(self, n: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Whole pulse counts (int32, >= 0) for real numbers of pulses ``n`` (>= 0)."""
        p = self.params
        if p.quantisation == "sign":
            k = (n > p.sign_threshold).to(torch.int32)
        elif p.quantisation == "round":
            k = torch.round(n).to(torch.int32)
        elif p.quantisation == "accumulate":
            k = torch.floor(n).to(torch.int32)
        else:
            base = torch.floor(n)
            frac = n - base
            u = torch.rand(n.shape, generator=generator, device=n.device, dtype=n.dtype)
            k = (base + (u < frac).to(n.dtype)).to(torch.int32)
        return k.clamp_(0, p.k_max)

    def _check_dw(self, xbar: Crossbar, dw: Tensor, name: str = "dW") -> Tensor:
        if not isinstance(dw, torch.Tensor) or tuple(dw.shape) != xbar.shape:
            raise ValueError(f"{name} must be a tensor of shape {xbar.shape} = [in, out], got {tuple(getattr(dw, 'shape', ()))}")
        if not dw.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating tensor, got {dw.dtype}")
        if not torch.isfinite(dw).all():
            raise ValueError(f"{name} contains {int((~torch.isfinite(dw)).sum())} NaN or infinite values")
        return dw.to(device=xbar.device, dtype=xbar.dtype)

    # ------------------------------------------------------------------------------------------------
    # schedules
    # ------------------------------------------------------------------------------------------------
    def dense(self, xbar: Crossbar, dw: Tensor, *, generator: torch.Generator | int | None = None) -> PulseSchedule:
        """A dense phase realising ``dw`` ``[in, out]`` (weight units)."""
        dw = self._check_dw(xbar, dw)
        gen = as_generator(generator, xbar.device) if generator is not None else xbar.generator
        p = self.params
        accumulate = p.quantisation == "accumulate"
        if accumulate and xbar in self.residuals:
            dw = dw + self.residuals[xbar]
        up, down = dw.clamp(min=0), (-dw).clamp(min=0)
        # (array, pulse polarity, the change it realises): a single device takes SET for
        # potentiation and RESET for depression; a SET-only pair SETs G+ or G-; bipolar splits the
        # change over both devices with opposite polarities
        if xbar.params.mapping != "differential":
            terms = (("plus", +1, up), ("plus", -1, down))
        elif p.scheme == "set_only":
            terms = (("plus", +1, up), ("minus", +1, down))
        else:
            terms = (("plus", +1, up / 2), ("plus", -1, down / 2), ("minus", +1, down / 2), ("minus", -1, up / 2))
        # the steps of all terms of one polarity in one computation, then all terms quantised at
        # once (the same draws, in the same order, as term by term)
        steps = {}
        for polarity in dict.fromkeys(pol for _, pol, _ in terms):
            arrays = tuple(a for a, pol, _ in terms if pol == polarity)
            st = self.pulse_steps(xbar, arrays, polarity)
            steps.update({(a, polarity): st if st.dim() == 0 else st[i] for i, a in enumerate(arrays)})
        n_all = torch.stack([change / steps[(array, polarity)] for array, polarity, change in terms])
        k_all = self.quantise(n_all, gen)
        counts = {"plus": 0, "minus": 0}
        remainder = torch.zeros_like(dw)
        for (array, polarity, change), n, k in zip(terms, n_all, k_all):
            counts[array] = counts[array] + polarity * k
            if accumulate:  # the part below one pulse waits; + for SET on G+ / RESET on G-
                step = steps[(array, polarity)]
                remainder += (1 if (array == "plus") == (polarity > 0) else -1) * (n - torch.floor(n)) * step
        if accumulate:
            self.residuals[xbar] = remainder
        minus = counts["minus"] if xbar.params.mapping == "differential" else None
        return PulseSchedule([DensePhase(counts["plus"], minus, p.amplitude, p.width)])

    def rank1(self, xbar: Crossbar, rows: Tensor, dw_cols: Tensor, *,
              generator: torch.Generator | int | None = None) -> PulseSchedule:
        """Outer-product phases for ``dW[i, j] = rows[i] * dw_cols[j]`` with ``rows`` 0/1 gates
        (1 = the row takes part, e.g. the input fired). ``rows`` ``[in]`` or ``[B, in]`` and
        ``dw_cols`` ``[out]`` or ``[B, out]`` stack B sequential rank-1 updates. A gated row is
        driven for the whole phase (``k_max`` slots), so device ``(i, j)`` receives exactly column
        ``j``'s pulse count (aligned trains: ``min(row slots, column pulses)``). Per-column counts
        come from the nominal step: a rank-1 phase cannot give each device its own count."""
        p = self.params
        if not isinstance(rows, torch.Tensor) or not isinstance(dw_cols, torch.Tensor):
            raise TypeError("rows and dw_cols must be tensors")
        r2 = rows.unsqueeze(0) if rows.dim() == 1 else rows
        c2 = dw_cols.unsqueeze(0) if dw_cols.dim() == 1 else dw_cols
        if r2.dim() != 2 or r2.shape[1] != xbar.in_features:
            raise ValueError(f"rows must be [in] or [B, in] with in = {xbar.in_features}, got {tuple(rows.shape)}")
        if c2.dim() != 2 or c2.shape[1] != xbar.out_features or c2.shape[0] != r2.shape[0]:
            raise ValueError(f"dw_cols must be [out] or [B, out] matching rows, out = {xbar.out_features}, got {tuple(dw_cols.shape)}")
        if not bool(((r2 == 0) | (r2 == 1)).all()):
            raise ValueError("rows must be 0/1 gates (the sign and size of an update go in dw_cols); "
                             "use dense() for real-valued factors")
        if not torch.isfinite(c2).all():
            raise ValueError("dw_cols contains NaN or infinite values")
        gen = as_generator(generator, xbar.device) if generator is not None else xbar.generator
        rows_i = r2.to(device=xbar.device, dtype=torch.int32) * p.k_max  # gate held for the phase
        c2 = c2.to(device=xbar.device, dtype=xbar.dtype)
        up, down = c2.clamp(min=0), (-c2).clamp(min=0)
        if p.step != "nominal":
            raise ValueError("rank-1 phases use the nominal step: set step='nominal' or use dense()")
        if p.quantisation == "accumulate":
            raise ValueError("quantisation='accumulate' keeps a per-weight accumulator that a rank-1 phase "
                             "cannot honour (every device of a column gets the same count): use dense()")
        st = lambda arr, pol: self.pulse_step(xbar, arr, pol)
        if xbar.params.mapping != "differential":
            cols = self.quantise(up / st("plus", +1), gen) - self.quantise(down / st("plus", -1), gen)
            return PulseSchedule([OuterPhase(rows_i, cols, None, p.amplitude, p.width)])
        if p.scheme == "set_only":  # both columns SET: one phase per update
            plus = self.quantise(up / st("plus", +1), gen)
            minus = self.quantise(down / st("minus", +1), gen)
            return PulseSchedule([OuterPhase(rows_i, plus, minus, p.amplitude, p.width)])
        plus = self.quantise(up / 2 / st("plus", +1), gen) - self.quantise(down / 2 / st("plus", -1), gen)
        minus = self.quantise(down / 2 / st("minus", +1), gen) - self.quantise(up / 2 / st("minus", -1), gen)
        return PulseSchedule([OuterPhase(rows_i, plus, minus, p.amplitude, p.width)])

    # ------------------------------------------------------------------------------------------------
    # applying, with refresh
    # ------------------------------------------------------------------------------------------------
    def apply(self, xbar: Crossbar, schedule: PulseSchedule) -> UpdateStats:
        """Apply ``schedule`` to ``xbar``, then refresh SET-only pairs that need it."""
        res = xbar.apply_schedule(schedule)
        stats = UpdateStats(res.pulses + res.half_select_pulses, res.energy_J, res.hardware_phases)
        self.updates += 1
        stats += self.maybe_refresh(xbar)
        return stats

    def update(self, xbar: Crossbar, dw: Tensor, *, generator=None) -> UpdateStats:
        """Schedule and apply a dense ``dw`` (with ``step="calibrated"``, the first update of a
        crossbar measures it first and its stats include the calibration's pulses and energy)."""
        stats = UpdateStats()
        if self.params.step == "calibrated" and xbar not in self.calibrations:
            cal = self.calibrate(xbar)
            stats += UpdateStats(cal.pulses, cal.energy_J, 0)
        stats += self.apply(xbar, self.dense(xbar, dw, generator=generator))
        return stats

    def update_rank1(self, xbar: Crossbar, rows: Tensor, dw_cols: Tensor, *, generator=None) -> UpdateStats:
        """Schedule and apply a rank-1 (or stacked rank-1) update."""
        return self.apply(xbar, self.rank1(xbar, rows, dw_cols, generator=generator))

    def needs_refresh(self, xbar: Crossbar) -> Tensor:
        """Bool ``[in, out]``: pairs that a refresh would help (SET-only): one device within
        ``refresh_margin`` of the lowest likely upper bound ``g_max - refresh_spread * g_max_dtod
        * window``, and the other more than ``refresh_margin`` of the window above ``g_min``.

        A refresh frees the pair's common mode ``min(G+, G-) - g_min``; a pair whose smaller
        device already sits at ``g_min`` holds a weight that needs the high conductance itself,
        and refreshing it would only reprogram the same state - on every update, since it stays
        near the bound (measured: CSDP's weights near +-1 of the scale made every batch refresh
        with write-verify, 2 minutes per epoch on digits)."""
        mp = xbar.model.params
        spread = self.params.refresh_spread * getattr(mp, "g_max_dtod", 0.0)
        limit = mp.g_max - (self.params.refresh_margin + spread) * mp.window
        gp, gm = xbar.conductances()
        common = torch.minimum(gp, gm) - mp.g_min > self.params.refresh_margin * mp.window
        return ((gp > limit) | (gm > limit)) & common

    def maybe_refresh(self, xbar: Crossbar) -> UpdateStats:
        p = self.params
        if p.scheme != "set_only" or xbar.params.mapping != "differential":
            return UpdateStats()
        if p.refresh_every is not None and self.updates % p.refresh_every == 0:
            return self.refresh(xbar)
        mask = self.needs_refresh(xbar)
        return self.refresh(xbar, mask) if bool(mask.any()) else UpdateStats()

    def refresh(self, xbar: Crossbar, mask: Tensor | None = None) -> UpdateStats:
        """Read the weights, reset both devices of each (masked) pair, reprogram the difference."""
        p = self.params
        w = xbar.weights()
        pulses0, energy0 = xbar.total_pulses, xbar.energy
        phases = 0
        # step="calibrated": open-loop and verify pulse counts use the measured per-device steps too
        kw = {"step_gains": self.calibrations.get(xbar)} if p.step == "calibrated" and p.refresh_method != "direct" else {}
        if p.refresh_method == "write_verify":
            # reset both devices first (open loop: the full RESET train, nothing after it); a
            # verify loop alone cannot bring a device down from near g_max in k_max-pulse steps
            zero = torch.zeros_like(w)
            phases += xbar.program(zero, method="open_loop", mask=mask, amplitude=p.amplitude, check=False,
                                   **kw).hardware_phases
        report = xbar.program(w, method=p.refresh_method, mask=mask, tol=p.refresh_tol, amplitude=p.amplitude,
                              settle=0.0, max_iter=20, patience=4, check=False, **kw)
        n = xbar.in_features * xbar.out_features if mask is None else int(mask.sum())
        return UpdateStats(xbar.total_pulses - pulses0, xbar.energy - energy0, phases + report.hardware_phases, n)
