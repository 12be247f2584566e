"""memsnn device models as aihwkit pulsed-device configs, fitted from the pulse response.

:func:`export_device` turns any memsnn :class:`~memsnn.device_models.DeviceModel` into an aihwkit
device config for ``SingleRPUConfig(device=...)``, so that memsnn's devices (the SrTiO3-like
``srtio3`` preset above all) run in aihwkit's DNN training. aihwkit weights are unitless: the
conductance window ``[g_min, g_max]`` maps affinely onto the device's weight range
``[w_min, w_max]`` (``AihwkitExport.to_weight`` / ``to_conductance``). Two kinds:

``"piecewise"`` (default, any law)
    aihwkit's ``PiecewiseStepDevice``: the mean device's step-versus-conductance curve tabulated on
    ``n_nodes`` equally spaced conductances (SET = aihwkit "up", RESET = "down"), in units of the
    model's reference step, on the weight range ``w_range`` (default ``[-1, 1]``). aihwkit
    interpolates linearly between nodes, so the error is the curvature of the law times the node
    spacing squared (the fidelity report measures it). ``n_nodes <= 63`` keeps the config usable on
    aihwkit's GPU tiles (their limit is 64 nodes).

``"softbounds"`` (laws whose steps fall linearly to zero at the bounds)
    aihwkit's ``SoftBoundsDevice``: least-squares slopes ``a_set``, ``a_reset`` of the SET step
    against ``g_max - G`` and of the RESET step against ``G - g_min`` (both through zero at the
    bound), placed on a weight range of width ``w_range[1] - w_range[0]`` whose zero is the
    symmetry point, so ``up_down = 0`` (the layout of aihwkit's ``ReRamSBPresetDevice``). Exact for
    memsnn's ``rram`` law; an approximation elsewhere, which the fidelity report quantifies.

Spreads and noise carried over: step d2d (``dw_min_dtod``), up/down d2d, bound d2d (``w_min_dtod``,
``w_max_dtod`` relative to each bound), cycle-to-cycle spread (``dw_min_std``: memsnn's
``"local"`` and ``"multiplicative"`` noise become aihwkit's multiplicative noise, ``"additive"``
becomes ``mult_noise=False`` for soft bounds), write noise (in units of ``dw_min``; resampled by
every pulse, not by ``set_weights``: ``apply_write_noise_on_set=False``, as memsnn's direct
programming leaves none), and drift
(``DriftParameter`` with ``nu``, ``nu_dtod``, ``t_0`` in seconds, acting on the conductance, not on
the weight). Not carried - listed in ``AihwkitExport.not_carried`` when they are on: read noise
(a crossbar/IO setting: ``IOParameters.w_noise``, see :mod:`memsnn.interop.aihwkit_backend`), the
volatile (short-term) part, amplitude and width dependence (aihwkit pulses are unit pulses), the
conductance dependence of pcm's drift exponent (the mean ``drift_nu`` is used), stuck devices,
finite levels, pcm's programming noise and RESET spread, and pulse energy.

:func:`fidelity_report` steps both with the same pulse trains - ``n_set`` SET pulses from ``g_min``
then ``n_reset`` RESET pulses - twice: the noise-free mean device of each (the law alone), and a
population of devices with every spread on (mean and spread of the conductance per pulse). Errors
are in units of the window ``g_max - g_min``.

aihwkit is imported lazily, inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..device_models import DeviceModel, PCMDevice, make_device
from ..files import atomic_path

__all__ = ["AihwkitExport", "FidelityReport", "export_device", "fidelity_report", "law_step", "noise_free",
           "EXPORT_KINDS"]

EXPORT_KINDS = ("piecewise", "softbounds")


def law_step(model: DeviceModel, g: np.ndarray | torch.Tensor, polarity: int) -> np.ndarray:
    """Noise-free change (S, >= 0) of one nominal pulse of ``polarity`` of the mean device at
    conductances ``g``, before clipping to the bounds (the law's own step at the bound).

    Same as :meth:`DeviceModel.nominal_step` at the default amplitude and width, without the clip.
    """
    if polarity not in (1, -1):
        raise ValueError(f"polarity={polarity!r} must be +1 (SET) or -1 (RESET)")
    p = model.params
    g = torch.as_tensor(np.asarray(g, dtype=np.float64))
    dev = model.nominal_device_params(g.device, torch.float64)
    set_f = torch.full(g.shape, 1.0 if polarity > 0 else 0.0, dtype=torch.float64)
    amp = torch.full(g.shape, float(p.v_set if polarity > 0 else p.v_reset), dtype=torch.float64)
    s = model._amplitude_factor(amp, set_f) * (p.pulse_width / p.width_ref)
    g1 = model._respond(g, s * torch.ones_like(g), set_f, amp, dev)
    return ((g1 - g) * polarity).clamp(min=0.0).numpy()


def noise_free(device: Any) -> Any:
    """A copy of an aihwkit device config with every spread and noise switched off (its mean device)."""
    zero = {}
    for f in dataclasses.fields(device):
        if f.name.endswith("_dtod") or f.name in ("dw_min_std", "write_noise_std", "dw_min_std_add", "dw_min_std_slope",
                                                   "corrupt_devices_prob", "diffusion", "lifetime", "reference_std"):
            if isinstance(getattr(device, f.name), (int, float)) and not isinstance(getattr(device, f.name), bool):
                zero[f.name] = 0.0
    return dataclasses.replace(device, **zero)


@dataclass
class FidelityReport:
    """How closely an exported aihwkit device follows the memsnn model; see :func:`fidelity_report`.

    Errors are in units of the conductance window. ``curves`` has one row per pulse: ``pulse``,
    ``polarity`` (+1 SET, -1 RESET, 0 start), and in siemens ``nominal_memsnn``,
    ``nominal_aihwkit`` (mean device, noise free), ``mean_memsnn``, ``mean_aihwkit``,
    ``std_memsnn``, ``std_aihwkit`` (population with every spread on).
    """

    n_set: int
    n_reset: int
    n_devices: int
    nominal_rmse: float
    nominal_max: float
    mean_rmse: float
    mean_max: float
    std_ratio: float  # median over pulses of std_aihwkit / std_memsnn (1 = same spread)
    curves: pd.DataFrame = field(repr=False)

    def summary(self) -> dict[str, float]:
        """Scalars only (for tables and JSON)."""
        return {k: getattr(self, k) for k in ("n_set", "n_reset", "n_devices", "nominal_rmse", "nominal_max",
                                               "mean_rmse", "mean_max", "std_ratio")}

    def plot(self, path: str | Path, *, title: str = "", overwrite: bool = False) -> Path:
        """PNG of both curves (conductance in uS against pulse number); refuses to overwrite."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        c = self.curves
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(c.pulse, 1e6 * c.nominal_memsnn, "k-", lw=1.5, label="memsnn mean device")
        ax.plot(c.pulse, 1e6 * c.nominal_aihwkit, "r--", lw=1.2, label="aihwkit export, mean device")
        ax.fill_between(c.pulse, 1e6 * (c.mean_memsnn - c.std_memsnn), 1e6 * (c.mean_memsnn + c.std_memsnn),
                        color="k", alpha=0.15, label=f"memsnn {self.n_devices} devices, mean +- std")
        ax.fill_between(c.pulse, 1e6 * (c.mean_aihwkit - c.std_aihwkit), 1e6 * (c.mean_aihwkit + c.std_aihwkit),
                        color="r", alpha=0.15, label=f"aihwkit {self.n_devices} devices, mean +- std")
        ax.set_xlabel("pulse (SET, then RESET)")
        ax.set_ylabel("conductance (uS)")
        ax.set_title(title or f"pulse response: nominal rmse {100 * self.nominal_rmse:.2f} % of the window", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_path(path, overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        return Path(path)


@dataclass
class AihwkitExport:
    """An aihwkit device config made from a memsnn model, with its range map.

    Attributes:
        device: the aihwkit device config (``PiecewiseStepDevice`` or ``SoftBoundsDevice``).
        model: the memsnn model it was made from.
        kind: ``"piecewise"`` or ``"softbounds"``.
        w_min, w_max: the weight range that ``[g_min, g_max]`` maps onto.
        not_carried: one sentence per memsnn setting that is on but has no aihwkit counterpart.
        fidelity: the :class:`FidelityReport`, or None when not computed.
    """

    device: Any
    model: DeviceModel
    kind: str
    w_min: float
    w_max: float
    not_carried: list[str] = field(default_factory=list)
    fidelity: FidelityReport | None = None

    @property
    def siemens_per_weight(self) -> float:
        """Conductance (S) of one aihwkit weight unit."""
        return self.model.params.window / (self.w_max - self.w_min)

    def to_weight(self, g):
        """Conductances (S) -> aihwkit weights."""
        return self.w_min + (g - self.model.params.g_min) / self.siemens_per_weight

    def to_conductance(self, w):
        """aihwkit weights -> conductances (S)."""
        return self.model.params.g_min + (w - self.w_min) * self.siemens_per_weight


def _not_carried(model: DeviceModel, kind: str) -> list[str]:
    p = model.params
    name = model.preset
    out = []
    if p.read_noise_std > 0:
        out.append(f"{name}.read_noise_std={p.read_noise_std!r}: read noise is an IO setting in aihwkit "
                   "(IOParameters.w_noise; the aihwkit backend sets it)")
    if p.volatile_ratio > 0:
        out.append(f"{name}.volatile_ratio={p.volatile_ratio!r}: the volatile short-term part has no aihwkit counterpart")
    if p.v_set != p.v_ref or p.v_reset != p.v_ref or p.pulse_width != p.width_ref:
        out.append(f"{name}: pulses at v_set={p.v_set!r} V / v_reset={p.v_reset!r} V, width {p.pulse_width!r} s are "
                   "exported; aihwkit has no amplitude or width dependence")
    if isinstance(model, PCMDevice):
        out.append(f"{name}: the conductance-dependent drift exponent and 1/f read noise of PCMLikeNoiseModel "
                   "statistics are not pulsed-device features; the mean drift_nu is exported")
        if getattr(p, "reset_std", 0) > 0:
            out.append(f"{name}.reset_std={p.reset_std!r}: the spread of the RESET level is not carried")
    if p.p_stuck_min > 0 or p.p_stuck_max > 0:
        out.append(f"{name}: stuck devices (p_stuck_min={p.p_stuck_min!r}, p_stuck_max={p.p_stuck_max!r}) are not carried")
    if p.n_levels is not None:
        out.append(f"{name}.n_levels={p.n_levels!r}: finite conductance levels are not carried")
    if p.energy_set > 0 or p.energy_reset > 0:
        out.append(f"{name}: aihwkit has no pulse energy (energy_set={p.energy_set!r} J is not carried; the "
                   "aihwkit backend counts it itself)")
    shape_dtod = [n for n in p.field_names() if n.endswith("_dtod") and getattr(p, n) > 0 and n not in (
        "g_min_dtod", "g_max_dtod", "step_dtod", "up_down_dtod", "g_init_dtod", "tau_volatile_dtod", "drift_nu_dtod")]
    if shape_dtod:
        out.append(f"{name}: the d2d spread of the law's own parameters ({', '.join(f'{n}={getattr(p, n)!r}' for n in shape_dtod)}) "
                   "is not carried - every aihwkit device has the mean curve, scaled by its step (dw_min_dtod) and "
                   "bounds; the fidelity report's population curves show the difference")
    if isinstance(model, PCMDevice):
        out.append(f"{name}: the abrupt RESET becomes one down step as large as the distance to g_min; aihwkit's "
                   "step spread and c2c noise apply to it, so some RESETs fall short")
    if p.g_init_dtod > 0:
        out.append(f"{name}.g_init_dtod={p.g_init_dtod!r}: aihwkit tiles start from the weights you set")
    if p.step_noise == "additive" and p.step_std > 0 and kind == "piecewise":
        out.append(f"{name}: additive c2c noise (step_std={p.step_std!r} reference steps) becomes multiplicative "
                   "noise of the same size at the reference step (PiecewiseStepDevice has no additive mode)")
    if p.step_noise == "multiplicative" and p.step_std > 0:
        out.append(f"{name}: memsnn spreads the pulse coordinate (step_std={p.step_std!r}); aihwkit spreads each "
                   "step - the same to first order in step_std")
    return out


def _drift(model: DeviceModel, w_min: float, w_max: float):
    """aihwkit DriftParameter acting on the conductance: aihwkit drifts ``g = w + w_offset``
    (with ``g_offset = 0``, ``wg_ratio = 1``; measured on aihwkit 1.1.0 tiles), so ``w_offset``
    puts ``g = 0`` at zero conductance."""
    from aihwkit.simulator.parameters.inference import DriftParameter

    p = model.params
    if p.drift_nu == 0:
        return DriftParameter()
    per_w = p.window / (w_max - w_min)
    return DriftParameter(nu=float(p.drift_nu), nu_dtod=float(p.drift_nu_dtod), t_0=float(p.drift_t0),
                          w_offset=float(-w_min + p.g_min / per_w), g_offset=0.0, wg_ratio=1.0)


def export_device(
    model: str | DeviceModel,
    *,
    kind: str = "piecewise",
    n_nodes: int = 63,
    w_range: tuple[float, float] = (-1.0, 1.0),
    fidelity: bool = True,
    n_devices: int = 256,
    max_pulses: int = 1000,
    seed: int = 0,
) -> AihwkitExport:
    """An aihwkit pulsed-device config fitted from ``model``'s pulse response.

    Args:
        model: a memsnn preset name or :class:`~memsnn.device_models.DeviceModel`.
        kind: ``"piecewise"`` (any law) or ``"softbounds"`` (see the module docstring).
        n_nodes: nodes of the piecewise curve (``<= 63`` for aihwkit's GPU tiles).
        w_range: ``(w_min, w_max)`` for piecewise; for soft bounds only its width is used.
        fidelity: also compute the :class:`FidelityReport` (a second or two on a CPU core).
        n_devices, max_pulses, seed: of the fidelity report.
    """
    from aihwkit.simulator.configs.devices import PiecewiseStepDevice, SoftBoundsDevice

    model = make_device(model) if isinstance(model, str) else model
    if not isinstance(model, DeviceModel):
        raise TypeError(f"model must be a memsnn preset name or DeviceModel, got {type(model).__name__}")
    if kind not in EXPORT_KINDS:
        raise ValueError(f"kind={kind!r} is not allowed: use one of {', '.join(map(repr, EXPORT_KINDS))}")
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or n_nodes < 2:
        raise ValueError(f"n_nodes={n_nodes!r} must be an integer >= 2")
    lo, hi = (float(v) for v in w_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < 0.0 < hi):
        raise ValueError(f"w_range={w_range!r} must be (w_min, w_max) with w_min < 0 < w_max")
    p = model.params
    window, span = p.window, hi - lo
    x = np.linspace(0.0, 1.0, n_nodes)
    g = p.g_min + x * window
    up, down = law_step(model, g, +1) / window, law_step(model, g, -1) / window  # window fractions
    ref = float(model._reference_step(model.nominal_device_params()) / window)

    if kind == "softbounds":
        # slopes through zero at the bound each polarity approaches: step = a (1 - x), a x
        a_set = float((up * (1 - x)).sum() / ((1 - x) ** 2).sum())
        a_reset = float((down * x).sum() / (x**2).sum())
        if not (a_set > 0 and a_reset > 0):
            raise ValueError(f"{model.preset}: no soft-bounds fit (slopes {a_set:.3g}, {a_reset:.3g}); use kind='piecewise'")
        lo, hi = -span * a_set / (a_set + a_reset), span * a_reset / (a_set + a_reset)  # zero at the symmetry point
        dw = a_set * hi  # = a_reset * |lo|: up_down = 0
        if p.step_noise == "additive":
            c2c, mult = p.step_std * ref * span / dw, False
        else:
            c2c, mult = p.step_std, True
        extra: dict[str, Any] = {"mult_noise": mult}
        cls = SoftBoundsDevice
    else:
        dw = ref * span
        c2c = p.step_std
        extra = {"piecewise_up": (up / ref).tolist(), "piecewise_down": (down / ref).tolist()}
        cls = PiecewiseStepDevice
    device = cls(
        dw_min=float(dw), up_down=0.0, w_min=float(lo), w_max=float(hi),
        dw_min_dtod=float(p.step_dtod), up_down_dtod=float(p.up_down_dtod),
        w_min_dtod=float(p.g_min_dtod * span / abs(lo)), w_max_dtod=float(p.g_max_dtod * span / abs(hi)),
        dw_min_std=float(c2c), write_noise_std=float(p.write_noise_std * ref * span / dw),
        apply_write_noise_on_set=False,  # memsnn: write noise comes with pulses; programming clears it
        drift=_drift(model, lo, hi), **extra,
    )
    out = AihwkitExport(device, model, kind, float(lo), float(hi), _not_carried(model, kind))
    if fidelity:
        out.fidelity = fidelity_report(out, n_devices=n_devices, max_pulses=max_pulses, seed=seed)
    return out


def _pulse_counts(model: DeviceModel, max_pulses: int) -> tuple[int, int]:
    """SET pulses the mean device needs from g_min to 99 % of the window, then RESET back to 1 %
    (at most ``max_pulses`` each)."""
    p = model.params
    lo, hi = torch.tensor(p.g_min + 0.01 * p.window, dtype=torch.float64), torch.tensor(p.g_max - 0.01 * p.window, dtype=torch.float64)
    n_set = float(model.pulses_needed(torch.tensor(p.g_min, dtype=torch.float64), hi))
    n_reset = -float(model.pulses_needed(hi, lo))
    return (max(1, min(max_pulses, int(math.ceil(n_set)))), max(1, min(max_pulses, int(math.ceil(n_reset)))))


def fidelity_report(export: AihwkitExport, *, n_devices: int = 256, max_pulses: int = 1000, seed: int = 0,
                    n_set: int | None = None, n_reset: int | None = None) -> FidelityReport:
    """Step the memsnn model and its aihwkit export with the same pulse trains; see the module docstring.

    ``n_set`` / ``n_reset`` default to what the mean device needs to cross 98 % of the window
    (at most ``max_pulses``). aihwkit 1.1.0 has no seed for its cycle-to-cycle noise, so the
    population curves vary a little from run to run (the noise-free ones do not).
    """
    from .aihwkit_backend import apply_slots, make_tile

    for name, v in (("n_devices", n_devices), ("max_pulses", max_pulses)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} must be an integer >= 1")
    model = export.model
    p = model.params
    auto = _pulse_counts(model, max_pulses)
    n_set = auto[0] if n_set is None else int(n_set)
    n_reset = auto[1] if n_reset is None else int(n_reset)
    signs = [1] * n_set + [-1] * n_reset

    def memsnn_curve(m: DeviceModel, n: int) -> np.ndarray:
        state = m.init_state((n,), generator=seed, dtype=torch.float64)
        state = state.replace(g=torch.minimum(torch.maximum(torch.full_like(state.g, p.g_min), state.dev["g_min"]),
                                              state.dev["g_max"]))
        gen = torch.Generator().manual_seed(seed + 1)
        rows = [m.conductance_longterm(state)]
        for s in signs:
            state = m.apply_pulses(state, torch.full((n,), s, dtype=torch.int32), generator=gen)
            rows.append(m.conductance_longterm(state))
        return torch.stack(rows).numpy()  # [pulses + 1, n]

    def aihwkit_curve(device: Any, n: int) -> np.ndarray:
        tile = make_tile(device, 1, n)
        tile.set_weights(torch.full((1, n), export.to_weight(p.g_min), dtype=torch.float32))
        x = torch.ones(1, n)
        rows = [_persistent(tile)]
        for s in signs:
            apply_slots(tile, x, torch.full((1, 1), float(s)))
            rows.append(_persistent(tile))
        return export.to_conductance(np.stack(rows).astype(np.float64))

    quiet = type(model)(model.params.replace(**_memsnn_noise_free(model)))
    nom_m = memsnn_curve(quiet, 1)[:, 0]
    nom_a = aihwkit_curve(noise_free(export.device), 1)[:, 0]
    pop_m = memsnn_curve(model, n_devices)
    pop_a = aihwkit_curve(export.device, n_devices)
    window = p.window
    d_nom = (nom_a - nom_m) / window
    d_mean = (pop_a.mean(1) - pop_m.mean(1)) / window
    std_m, std_a = pop_m.std(1), pop_a.std(1)
    ok = std_m > 1e-6 * window
    ratio = float(np.median(std_a[ok] / std_m[ok])) if ok.any() else float("nan")
    curves = pd.DataFrame({
        "pulse": np.arange(len(signs) + 1), "polarity": [0] + signs,
        "nominal_memsnn": nom_m, "nominal_aihwkit": nom_a,
        "mean_memsnn": pop_m.mean(1), "mean_aihwkit": pop_a.mean(1), "std_memsnn": std_m, "std_aihwkit": std_a,
    })
    return FidelityReport(n_set, n_reset, n_devices, float(np.sqrt((d_nom**2).mean())), float(np.abs(d_nom).max()),
                          float(np.sqrt((d_mean**2).mean())), float(np.abs(d_mean).max()), ratio, curves)


def _memsnn_noise_free(model: DeviceModel) -> dict[str, Any]:
    """Overrides that reduce a memsnn model to its mean device (no spread, no noise, no drift)."""
    names = model.params.field_names()
    zero = {n: 0.0 for n in names if n.endswith("_dtod") or n in (
        "step_std", "write_noise_std", "read_noise_std", "volatile_ratio", "drift_nu", "p_stuck_min", "p_stuck_max",
        "reset_std", "read_noise_scale", "drift_scale")}
    return zero


def _persistent(tile) -> np.ndarray:
    """The devices' own weights (without write noise) of a 1-row tile, ``[in]``."""
    hp = tile.get_hidden_parameters()
    w = hp["persistent_weights"] if "persistent_weights" in hp else tile.get_weights()[0]
    return w.reshape(-1).numpy().astype(np.float64)
