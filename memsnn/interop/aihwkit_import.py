"""aihwkit pulsed devices, presets and ``PCMLikeNoiseModel`` as memsnn device models.

aihwkit describes a pulsed device by its *step-versus-weight curve*: the change one pulse makes at
weight ``w`` in its unitless weight range ``[w_min, w_max]``, with device-to-device (``*_dtod``)
and cycle-to-cycle (``dw_min_std``) spread. memsnn's device models act on conductances, so an
imported device maps that range affinely onto a conductance window ``[g_min, g_max]`` (siemens, the
caller's choice - aihwkit weights have no unit)::

    G = g_min + (w - w_min) * (g_max - g_min) / (w_max - w_min)

:func:`import_device` returns an :class:`ImportResult`: the memsnn model, the range map and the
list of what did not carry over. Two targets:

- soft-bounds devices (``SoftBoundsDevice``, ``SoftBoundsPmaxDevice``,
  ``SoftBoundsReferenceDevice`` and their presets such as ``ReRamSBPresetDevice``) whose range
  straddles ``w = 0`` become memsnn's ``rram`` law exactly: one SET pulse moves
  ``alpha_set (g_max - G)`` with ``alpha_set = dw_up / w_max``, one RESET pulse
  ``alpha_reset (G - g_min)`` with ``alpha_reset = dw_down / |w_min|``;
- every other supported device (``ConstantStepDevice``, ``LinearStepDevice``, ``ExpStepDevice``,
  ``PowStepDevice``, ``PowStepReferenceDevice``, ``PiecewiseStepDevice`` and their presets such as
  ``ReRamESPresetDevice``, ``PCMPresetDevice``, ``CapacitorPresetDevice``) becomes a
  :class:`PiecewiseStepDevice` (preset name ``piecewise``): the mean device's step curve
  tabulated on ``n_nodes`` equally spaced weights (aihwkit's own ``PiecewiseStepDevice`` nodes are
  taken as they are).

:class:`PiecewiseStepDevice` is memsnn's version of aihwkit's ``PiecewiseStepDevice``. In the
normalised coordinate ``x = (G - g_min_d) / (g_max_d - g_min_d)`` of each device, one SET pulse adds
``dw_min * f_set(x)`` and one RESET pulse subtracts ``dw_min * f_reset(x)``, ``f`` interpolated
linearly between the nodes. ``k`` pulses: the first is applied exactly, the other ``k - 1`` along
the mean device's trajectory from each bound, iterated once (``x_{k+1} = x_k + dw_min f(x_k)``)
and stored; a real number of pulses is a fractional position in that table. Its default cycle-to-cycle noise, ``step_noise="local"``,
is aihwkit's multiplicative noise: each pulse's change is ``step(G) (1 + step_std xi)`` (the
law's own step, before the bounds clip), unbiased however large ``step_std`` is (memsnn's ``"multiplicative"`` mode spreads the pulse *coordinate*,
which biases the mean step of a curved law by ``step'' step_std**2 / 2``; aihwkit's
``ReRamESPresetDevice`` has ``dw_min_std = 5``).

aihwkit 1.1.0's up/down asymmetry, measured on its tiles (the docs' formula differs):
``dw_up = dw_min * min(1, 1 + up_down)``, ``dw_down = dw_min * min(1, 1 - up_down)``.

What does not carry over is listed in ``ImportResult.not_carried`` (one sentence per item, only
for settings that are on): diffusion, decay (``lifetime``), reset columns (``reset*``), corrupt
devices, aihwkit's reference device (``reference_*``, ``subtract_symmetry_point``), drift
dependence on the weight (``nu_k``), the extra ``ExpStepDevice`` noise terms
(``dw_min_std_add`` / ``_slope``), d2d spread of the law's own shape parameters (``gamma_*_dtod``,
``pow_gamma_dtod``, ``slope_*_dtod``), log-normal step spread, and the dependence of the law on
each device's own bounds (memsnn scales the mean curve to each device's window).

:func:`import_noise_model` turns aihwkit's ``PCMLikeNoiseModel`` into memsnn's ``pcm`` preset with
the noise model's ``g_max``, programming polynomial (times ``prog_noise_scale``), ``t_0``,
``t_read`` and scales. Not carried: the conductance converter (memsnn maps weights itself), and
two sampling conventions - aihwkit draws ``nu`` from the *target* conductance and redraws
everything on every ``apply_noise`` call, memsnn draws ``nu`` from the programmed conductance once
per programming event and keeps one trajectory per device. ``CustomDriftPCMLikeNoiseModel`` and
the other noise models are not supported.

aihwkit is imported lazily, inside the functions that need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from ..device_models import DeviceModel, DeviceParams, PCMDevice, PCMParams, SoftBoundsDevice, SoftBoundsParams
from ..params import ParameterError, param

__all__ = [
    "PiecewiseStepParams", "PiecewiseStepDevice", "ImportResult", "import_device", "import_noise_model",
    "step_curve", "SUPPORTED_DEVICES", "SUPPORTED_NOISE_MODELS", "UnsupportedDeviceError",
]

Tensor = torch.Tensor

#: aihwkit device classes (and every preset derived from them) that :func:`import_device` knows
SUPPORTED_DEVICES = (
    "ConstantStepDevice", "LinearStepDevice", "SoftBoundsDevice", "SoftBoundsPmaxDevice",
    "SoftBoundsReferenceDevice", "ExpStepDevice", "PowStepDevice", "PowStepReferenceDevice",
    "PiecewiseStepDevice",
)
#: aihwkit inference noise models that :func:`import_noise_model` knows
SUPPORTED_NOISE_MODELS = ("PCMLikeNoiseModel",)

_MAX_TABLE = 2_000_000  # pulses a trajectory table may hold (dw_min >= 5e-7 of the window)


class UnsupportedDeviceError(ValueError):
    """An aihwkit device or noise model that memsnn cannot import (the message lists the supported ones)."""


# ====================================================================================================
# memsnn's piecewise-step device model
# ====================================================================================================
def _as_tuple(v: Any) -> Any:
    return tuple(float(x) for x in v) if isinstance(v, (list, np.ndarray)) else v


@dataclass(frozen=True)
class PiecewiseStepParams(DeviceParams):
    """Tabulated step curve (aihwkit ``PiecewiseStepDevice``'s law); SI units."""

    _owner = "piecewise"

    dw_min: float = param(1e-3, unit="1", check=">0", doc="reference step, fraction of the window (aihwkit dw_min)")
    steps_set: tuple = param((1.0,), check=None, doc="SET step in units of dw_min on equally spaced nodes from g_min to g_max")
    steps_reset: tuple = param((1.0,), check=None, doc="RESET step in units of dw_min on equally spaced nodes from g_min to g_max")
    step_noise: str = param("local", check=None, choices=("local", "multiplicative", "additive"),
                            doc="c2c noise: relative to each pulse's own step (aihwkit), on the pulse coordinate, or additive in dw_min")
    g_min: float = param(0.0, unit="S", check=">=0", doc="lower conductance bound")
    g_max: float = param(100e-6, unit="S", check=">0", doc="upper conductance bound")

    def __post_init__(self) -> None:
        for name in ("steps_set", "steps_reset"):  # JSON/TOML give lists; keep equality exact
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        super().__post_init__()

    def _cross_checks(self) -> Iterator[str]:
        yield from super()._cross_checks()
        if self.dw_min >= 1:
            yield f"dw_min={self.dw_min!r} must be < 1 (a fraction of the window per pulse)"
        for name in ("steps_set", "steps_reset"):
            v = getattr(self, name)
            ok = isinstance(v, tuple) and len(v) >= 1 and all(
                isinstance(x, (int, float)) and math.isfinite(x) and x >= 0 for x in v)
            if not ok:
                yield f"{name}={v!r} must be a non-empty sequence of finite numbers >= 0 (steps in units of dw_min)"
            elif max(v) == 0:
                yield f"{name}={v!r} must have a step > 0 somewhere"


class PiecewiseStepDevice(DeviceModel):
    """Tabulated step-versus-conductance law (preset ``piecewise``); see the module docstring."""

    params_class = PiecewiseStepParams
    preset = "piecewise"
    source = "aihwkit PiecewiseStepDevice law (imported or exported step curves)"

    def __init__(self, params: PiecewiseStepParams | None = None, **overrides: Any):
        super().__init__(params, **overrides)
        self._tables: dict[tuple, tuple[Tensor, Tensor]] = {}
        self._noise_std: Tensor | None = None

    # --- the trajectory tables -----------------------------------------------------------------
    @staticmethod
    def _trajectory(nodes: tuple, dw: float, upward: bool) -> np.ndarray:
        """Normalised position after k = 0, 1, ... pulses of the mean device, from the bound it
        leaves, until the other bound is reached or the step vanishes (float64)."""
        v = list(nodes)
        n = len(v)
        x = 0.0 if upward else 1.0
        out = [x]
        tiny = 1e-12
        for _ in range(_MAX_TABLE):
            if n == 1:
                f = v[0]
            else:
                pos = x * (n - 1)
                i = min(int(pos), n - 2)
                q = pos - i
                f = v[i] + q * (v[i + 1] - v[i])
            step = dw * f
            if step <= tiny:
                break
            if upward:
                x = x + step
                if x >= 1.0 - 1e-9:
                    out.append(1.0)
                    break
            else:
                x = x - step
                if x <= 1e-9:
                    out.append(0.0)
                    break
            out.append(x)
            if (1.0 - x if upward else x) < 1e-7:  # a soft bound, reached only asymptotically
                break
        else:
            raise ValueError(f"dw_min={dw!r} is too small: the trajectory needs more than {_MAX_TABLE} pulses")
        return np.asarray(out, dtype=np.float64)

    def tables(self, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """``(x_set, x_reset)``: normalised position of the mean device after k SET pulses from
        ``g_min`` (increasing) and after k RESET pulses from ``g_max`` (decreasing), float64."""
        key = (str(torch.device(device)),)
        if key not in self._tables:
            p = self.params
            up = torch.as_tensor(self._trajectory(p.steps_set, p.dw_min, True), device=device)
            down = torch.as_tensor(self._trajectory(p.steps_reset, p.dw_min, False), device=device)
            self._tables[key] = (up, down)
        return self._tables[key]

    @staticmethod
    def _pos_to_count(x: Tensor, table: Tensor) -> Tensor:
        """Fractional pulse count at normalised position ``x`` on an increasing ``table``."""
        k = table.numel()
        if k == 1:
            return torch.zeros_like(x)
        idx = torch.searchsorted(table, x.contiguous()).clamp(1, k - 1)
        x0, x1 = table[idx - 1], table[idx]
        t = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
        return (idx - 1).to(x.dtype) + t

    @staticmethod
    def _count_to_pos(n: Tensor, table: Tensor) -> Tensor:
        k = table.numel()
        if k == 1:
            return table[0].expand_as(n).clone()
        n = n.clamp(0.0, k - 1.0)
        i = n.floor().clamp(max=k - 2)
        t = n - i
        i = i.long()
        return table[i] + t * (table[i + 1] - table[i])

    def _coord(self, g: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        up, down = self.tables(g.device)
        lo, hi = dev["g_min"].double(), dev["g_max"].double()
        x = ((g.double() - lo) / (hi - lo)).clamp(0.0, 1.0)
        x = torch.broadcast_to(x, torch.broadcast_shapes(x.shape, set_f.shape))
        n_set = self._pos_to_count(x, up)
        n_reset = self._pos_to_count(-x, -down)  # counted from g_max downwards
        return torch.lerp(n_reset, n_set, set_f.double()).to(g.dtype)

    def _uncoord(self, n: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        up, down = self.tables(n.device)
        lo, hi = dev["g_min"].double(), dev["g_max"].double()
        x = torch.lerp(self._count_to_pos(n.double(), down), self._count_to_pos(n.double(), up), set_f.double())
        return (lo + x * (hi - lo)).to(n.dtype)

    def _node_value(self, x: Tensor, nodes: tuple) -> Tensor:
        """The step curve ``f(x)`` (units of dw_min) at normalised positions ``x``."""
        v = torch.as_tensor(nodes, dtype=x.dtype, device=x.device)
        if v.numel() == 1:
            return v[0].expand_as(x)
        pos = x.clamp(0.0, 1.0) * (v.numel() - 1)
        i = pos.floor().clamp(max=v.numel() - 2)
        q = pos - i
        i = i.long()
        return v[i] + q * (v[i + 1] - v[i])

    def _respond(self, g: Tensor, dn: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        # the first whole pulse exactly (x + s dw f(x)), the rest along the table: a table position
        # between two iterates interpolates their steps, which a steep law (srtio3 near g_min)
        # would otherwise get wrong by about 1 % of a step
        p = self.params
        lo, hi = dev["g_min"].double(), dev["g_max"].double()
        win = hi - lo
        sf = set_f.double()
        s = torch.lerp(dev["scale_reset"].double(), dev["scale_set"].double(), sf)
        x0 = (g.double() - lo) / win
        f0 = torch.lerp(self._node_value(x0, p.steps_reset), self._node_value(x0, p.steps_set), sf)
        g_first = (lo + (x0 + (2.0 * sf - 1.0) * s * p.dw_min * f0) * win).to(g.dtype)
        first = dn.double() >= s - 1e-9
        rest = torch.where(first, dn.double() - s, dn.double()).to(dn.dtype)
        g1 = self._uncoord(self._coord(torch.where(first, g_first, g), set_f, amp, dev) + rest, set_f, amp, dev)
        g1 = torch.where(first & (rest.abs() < 1e-9), g_first, g1)  # one pulse: the law's own step, unclipped
        if p.step_noise == "local" and p.step_std > 0:
            # aihwkit's c2c: each pulse moves by step(G) (1 + step_std xi) before the bounds clip,
            # so k pulses add noise of std step_std sqrt(k) * (rms step along the way); the step
            # is the law's own (unclipped) value at the start and end. Drawn in _post_pulse_noise,
            # which the pulse loop calls right after this method, with its generator.
            k = (dn.double().abs() / s.clamp(min=1e-12)).clamp(min=1.0)
            steps = []
            for gg in (g, g1):
                x = (gg.double() - lo) / win
                f = torch.lerp(self._node_value(x, p.steps_reset), self._node_value(x, p.steps_set), set_f.double())
                steps.append(p.dw_min * f * win * s)
            one = k <= 1.0 + 1e-9
            rms = torch.where(one, steps[0], ((steps[0] ** 2 + steps[1] ** 2) / 2).sqrt())
            self._noise_std = (p.step_std * k.sqrt() * rms).to(g.dtype)
        return g1

    def _post_pulse_noise(self, g1, set_f, pulsed_f, gen, dev):
        std, self._noise_std = self._noise_std, None
        if std is None:
            return g1
        xi = torch.randn(g1.shape, generator=gen, device=g1.device, dtype=g1.dtype)
        return g1 + std.to(g1.dtype) * xi * pulsed_f

    def _reference_step(self, dev: dict[str, Tensor]) -> Tensor:
        return self.params.dw_min * (dev["g_max"] - dev["g_min"])


# ====================================================================================================
# aihwkit step curves
# ====================================================================================================
def _aihwkit_classes() -> dict[str, type]:
    from aihwkit.simulator.configs import devices as d

    return {name: getattr(d, name) for name in SUPPORTED_DEVICES}


def _family(device: Any) -> str:
    """The supported aihwkit class ``device`` derives from; an error naming it otherwise."""
    classes = _aihwkit_classes()
    # most specific first: SoftBoundsPmaxDevice derives from SoftBoundsDevice
    for name in ("SoftBoundsPmaxDevice", "SoftBoundsReferenceDevice", "SoftBoundsDevice", "LinearStepDevice",
                 "ExpStepDevice", "PowStepReferenceDevice", "PowStepDevice", "PiecewiseStepDevice",
                 "ConstantStepDevice"):
        if isinstance(device, classes[name]):
            return name
    raise UnsupportedDeviceError(
        f"aihwkit device {type(device).__name__} cannot be imported: memsnn imports single pulsed devices "
        f"of the classes {', '.join(SUPPORTED_DEVICES)} and their presets (e.g. ReRamESPresetDevice, "
        "ReRamSBPresetDevice, PCMPresetDevice, CapacitorPresetDevice, EcRamPresetDevice, "
        "IdealizedPresetDevice); unit cells, compounds, IdealDevice and FloatingPointDevice have no single "
        "pulse response"
    )


def _softbounds_params(device: Any) -> dict[str, float]:
    """``w_min, w_max, dw_min, up_down`` of a soft-bounds device (SoftBoundsPmaxDevice converted
    as its ``as_bindings`` does)."""
    if _family(device) == "SoftBoundsPmaxDevice":
        b = (device.range_max - device.range_min) / (1 - math.exp(-device.p_max * device.alpha))
        return {"w_min": device.range_min, "w_max": device.range_min + b, "dw_min": b * device.alpha,
                "up_down": 1 + 2 * device.range_min / b}
    return {"w_min": device.w_min, "w_max": device.w_max, "dw_min": device.dw_min, "up_down": device.up_down}


def _range(device: Any) -> tuple[float, float, float, float]:
    """``(w_min, w_max, dw_up, dw_down)`` of the mean device."""
    if _family(device) == "SoftBoundsPmaxDevice":
        sb = _softbounds_params(device)
        w_min, w_max, dw, ud = sb["w_min"], sb["w_max"], sb["dw_min"], sb["up_down"]
    else:
        w_min, w_max, dw, ud = device.w_min, device.w_max, device.dw_min, device.up_down
    if not (math.isfinite(w_min) and math.isfinite(w_max) and w_min < w_max):
        raise ValueError(f"{type(device).__name__}: w_min={w_min!r} must be < w_max={w_max!r}")
    if not dw > 0:
        raise ValueError(f"{type(device).__name__}: dw_min={dw!r} must be > 0")
    return w_min, w_max, dw * min(1.0, 1.0 + ud), dw * min(1.0, 1.0 - ud)


def step_curve(device: Any, w: np.ndarray | float, polarity: int) -> np.ndarray:
    """Noise-free step (aihwkit weight units, >= 0) of one pulse of ``polarity`` (+1 up, -1 down)
    of the *mean* aihwkit device at weights ``w``; the hard bounds are not applied."""
    if polarity not in (1, -1):
        raise ValueError(f"polarity={polarity!r} must be +1 (up) or -1 (down)")
    fam = _family(device)
    w = np.asarray(w, dtype=np.float64)
    w_min, w_max, dw_up, dw_down = _range(device)
    dw = dw_up if polarity > 0 else dw_down
    if fam == "ConstantStepDevice":
        return np.full_like(w, dw)
    if fam in ("SoftBoundsDevice", "SoftBoundsPmaxDevice", "SoftBoundsReferenceDevice", "LinearStepDevice"):
        if getattr(device, "reverse_up", False) or getattr(device, "reverse_down", False):
            raise UnsupportedDeviceError(f"{type(device).__name__} with reverse_up/reverse_down is not supported")
        gamma = 1.0 if fam != "LinearStepDevice" else abs(device.gamma_up if polarity > 0 else device.gamma_down)
        bound = w_max if polarity > 0 else w_min
        f = 1.0 - gamma * w / bound
        if fam != "LinearStepDevice" or not device.allow_increasing:
            f = np.maximum(f, 0.0)
        return dw * f
    if fam == "ExpStepDevice":
        z = 2.0 * device.a * w / (w_max - w_min) + device.b
        if polarity > 0:
            y = 1.0 - device.A_up * np.exp(device.gamma_up * z)
        else:
            y = 1.0 - device.A_down * np.exp(-device.gamma_down * z)
        return dw * np.maximum(y, 0.0)
    if fam in ("PowStepDevice", "PowStepReferenceDevice"):
        omega = np.clip((w_max - w) / (w_max - w_min), 0.0, 1.0)
        gam = device.pow_gamma * (1.0 + polarity * device.pow_up_down)
        return dw * (omega**gam if polarity > 0 else (1.0 - omega) ** gam)
    # PiecewiseStepDevice: nodes equally spaced over [w_min, w_max]
    nodes = np.asarray(device.piecewise_up if polarity > 0 else device.piecewise_down, dtype=np.float64)
    if nodes.size == 1:
        return np.full_like(w, dw * nodes[0])
    x = np.clip((w - w_min) / (w_max - w_min), 0.0, 1.0)
    return dw * np.interp(x, np.linspace(0.0, 1.0, nodes.size), nodes)


# ====================================================================================================
# import
# ====================================================================================================
@dataclass
class ImportResult:
    """A memsnn model built from an aihwkit device (or noise model), with its range map.

    Attributes:
        model: the memsnn :class:`~memsnn.device_models.DeviceModel`.
        source: aihwkit class name.
        w_min, w_max: aihwkit weight range mapped onto ``[model.params.g_min, g_max]`` (None for a
            noise model, which is already in conductances).
        not_carried: one sentence per aihwkit setting that is on but has no memsnn counterpart.
    """

    model: DeviceModel
    source: str
    w_min: float | None = None
    w_max: float | None = None
    not_carried: list[str] = field(default_factory=list)

    def to_conductance(self, w: Tensor | np.ndarray | float):
        """aihwkit weights -> conductances (S)."""
        p = self.model.params
        return p.g_min + (w - self.w_min) * (p.window / (self.w_max - self.w_min))

    def to_weight(self, g: Tensor | np.ndarray | float):
        """Conductances (S) -> aihwkit weights."""
        p = self.model.params
        return self.w_min + (g - p.g_min) * ((self.w_max - self.w_min) / p.window)


def _check_window(g_min: float, g_max: float) -> None:
    for name, v in (("g_min", g_min), ("g_max", g_max)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}={v!r} must be a finite conductance >= 0 (siemens)")
    if not g_min < g_max:
        raise ValueError(f"g_min={g_min!r} must be < g_max={g_max!r} (siemens)")


def _lost(device: Any, fam: str) -> list[str]:
    """Sentences for every setting of ``device`` that is on and does not carry over."""
    name = type(device).__name__
    out = []

    def on(attr: str) -> Any:
        v = getattr(device, attr, 0)
        return v if v not in (0, 0.0, None, False) else None

    checks = [
        ("diffusion", "diffusion (weight random walk) is not modelled in memsnn"),
        ("lifetime", "decay towards the reset value (lifetime) is not modelled in memsnn"),
        ("corrupt_devices_prob", "corrupt devices (fixed at a random weight) differ from memsnn's stuck-at-bound faults"),
        ("reset", "the reset value of reset_columns has no memsnn counterpart (memsnn resets by pulses)"),
        ("reset_dtod", "the d2d spread of the reset value has no memsnn counterpart"),
        ("reference_mean", "aihwkit's reference device is not carried: memsnn's crossbar mapping provides the reference"),
        ("reference_std", "aihwkit's reference device spread is not carried: memsnn's crossbar mapping provides the reference"),
        ("subtract_symmetry_point", "subtracting the symmetry point on a reference device is not carried"),
        ("dw_min_std_add", "the additive part of ExpStepDevice's c2c noise is not carried (multiplicative part only)"),
        ("dw_min_std_slope", "the weight-proportional part of ExpStepDevice's c2c noise is not carried"),
        ("gamma_up_dtod", "the d2d spread of the linear-step slope is not carried (step and bound spreads are)"),
        ("gamma_down_dtod", "the d2d spread of the linear-step slope is not carried (step and bound spreads are)"),
        ("pow_gamma_dtod", "the d2d spread of the power-step exponent is not carried"),
        ("pow_up_down_dtod", "the d2d spread of the power-step up/down exponent bias is not carried"),
        ("slope_up_dtod", "the d2d spread of the soft-bounds slope is not carried (step and bound spreads are)"),
        ("slope_down_dtod", "the d2d spread of the soft-bounds slope is not carried (step and bound spreads are)"),
        ("dw_min_dtod_log_normal", "the log-normal step spread becomes a (truncated) normal one"),
    ]
    for attr, text in checks:
        if attr == "gamma_up_dtod" and fam != "LinearStepDevice":
            continue
        if attr == "gamma_down_dtod" and fam != "LinearStepDevice":
            continue
        v = on(attr)
        if v is not None:
            out.append(f"{name}.{attr}={v!r}: {text}")
    drift = getattr(device, "drift", None)
    if drift is not None:
        for attr, text in (("nu_k", "the weight dependence of the drift exponent is not carried"),
                           ("nu_std", "the cycle-to-cycle spread of the drift exponent is not carried"),
                           ("w_noise_std", "the weight noise added with drift is not carried")):
            v = getattr(drift, attr, 0)
            if v:
                out.append(f"{name}.drift.{attr}={v!r}: {text}")
    if (getattr(device, "w_min_dtod", 0) or getattr(device, "w_max_dtod", 0)) and fam not in ("ConstantStepDevice",):
        out.append(f"{name}: the law follows each device's own bounds in aihwkit; memsnn scales the mean "
                   "device's curve to each device's window (bound spreads are carried)")
    return out


def import_device(
    device: Any,
    *,
    g_min: float = 0.0,
    g_max: float = 100e-6,
    n_nodes: int = 129,
    law: str = "auto",
) -> ImportResult:
    """A memsnn device model with the pulse response, spreads and bounds of an aihwkit device.

    Args:
        device: an aihwkit pulsed device config (see :data:`SUPPORTED_DEVICES`), e.g.
            ``ReRamESPresetDevice()``.
        g_min, g_max: conductance window (S) that the device's weight range ``[w_min, w_max]``
            maps onto.
        n_nodes: nodes of the tabulated step curve (``law="piecewise"``).
        law: ``"auto"`` (soft bounds -> memsnn ``rram`` law when the range straddles 0, else
            piecewise), or ``"piecewise"`` (always tabulate).

    Raises:
        UnsupportedDeviceError: ``device`` is not a supported aihwkit device (the message names it
            and lists the supported classes).
    """
    fam = _family(device)
    _check_window(g_min, g_max)
    if law not in ("auto", "piecewise"):
        raise ValueError(f"law={law!r} is not allowed: use 'auto' or 'piecewise'")
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or n_nodes < 2:
        raise ValueError(f"n_nodes={n_nodes!r} must be an integer >= 2")
    w_min, w_max, dw_up, dw_down = _range(device)
    span = w_max - w_min
    window = g_max - g_min
    name = type(device).__name__
    not_carried = _lost(device, fam)

    # spreads and noise shared by both targets (memsnn units: window fractions, relative spreads)
    common: dict[str, Any] = {
        "g_min": g_min, "g_max": g_max,
        "g_min_dtod": abs(device.w_min_dtod * w_min) / span,
        "g_max_dtod": abs(device.w_max_dtod * w_max) / span,
        "step_dtod": device.dw_min_dtod,
        "up_down_dtod": device.up_down_dtod,
        "energy_set": 0.0, "energy_reset": 0.0,
    }
    if w_min <= 0.0 <= w_max:  # aihwkit devices start (and reset) around w = 0
        common["g_init"] = g_min + (0.0 - w_min) * window / span
    drift = getattr(device, "drift", None)
    if drift is not None and getattr(drift, "nu", 0) > 0:
        common.update(drift_nu=float(drift.nu), drift_nu_dtod=float(drift.nu_dtod), drift_t0=float(drift.t_0))
        not_carried.append(f"{name}.drift: aihwkit counts drift time in the units you pass to drift_weights; "
                           "memsnn reads drift.t_0 as seconds")
    mult = bool(getattr(device, "mult_noise", True))  # ExpStep / PowStep / Piecewise / Constant: relative to the step
    write_noise = float(getattr(device, "write_noise_std", 0.0))
    if write_noise and getattr(device, "apply_write_noise_on_set", False):
        not_carried.append(f"{name}.apply_write_noise_on_set=True: aihwkit adds write noise when weights are set; memsnn "
                           "adds it with pulses only (direct programming leaves none)")
    not_carried.append(f"{name}: aihwkit has no pulse energy; energy_set and energy_reset are 0 (set them)")

    soft = fam in ("SoftBoundsDevice", "SoftBoundsPmaxDevice", "SoftBoundsReferenceDevice")
    if law == "auto" and soft and w_min < 0.0 < w_max:
        alpha_set, alpha_reset = dw_up / w_max, dw_down / (-w_min)
        if not (alpha_set < 1 and alpha_reset < 1):
            raise ValueError(f"{name}: dw_min / bound = ({alpha_set:.3g}, {alpha_reset:.3g}) must be < 1 per pulse")
        # memsnn's rram reference step is the step at the symmetry point; aihwkit's unit is dw_min
        ref = window * alpha_set * alpha_reset / (alpha_set + alpha_reset)
        unit = _softbounds_params(device)["dw_min"] * window / span  # aihwkit's dw_min in siemens
        kw = dict(common, alpha_set=alpha_set, alpha_reset=alpha_reset,
                  step_std=float(device.dw_min_std) * (1.0 if mult else unit / ref),
                  step_noise="multiplicative" if mult else "additive",
                  write_noise_std=write_noise * unit / ref)
        try:
            model: DeviceModel = SoftBoundsDevice(SoftBoundsParams(**kw))
        except ParameterError as err:
            raise ParameterError(err.errors, f"rram imported from {name}") from None
        return ImportResult(model, name, w_min, w_max, not_carried)

    # tabulated law: the mean device's step curve in units of dw_min, over the weight range
    dw_ref = _softbounds_params(device)["dw_min"] if soft else device.dw_min
    if fam == "PiecewiseStepDevice":  # its own nodes, exactly
        w_nodes = np.linspace(w_min, w_max, max(len(device.piecewise_up), len(device.piecewise_down), 2))
    else:
        w_nodes = np.linspace(w_min, w_max, n_nodes)
    steps_set = step_curve(device, w_nodes, +1) / dw_ref
    steps_reset = step_curve(device, w_nodes, -1) / dw_ref
    kw = dict(common, dw_min=dw_ref / span, steps_set=tuple(steps_set.tolist()), steps_reset=tuple(steps_reset.tolist()),
              step_std=float(device.dw_min_std), step_noise="local" if mult else "additive", write_noise_std=write_noise)
    try:
        model = PiecewiseStepDevice(PiecewiseStepParams(**kw))
    except ParameterError as err:
        raise ParameterError(err.errors, f"piecewise imported from {name}") from None
    return ImportResult(model, name, w_min, w_max, not_carried)


def import_noise_model(noise_model: Any, **overrides: Any) -> ImportResult:
    """memsnn's ``pcm`` device with the statistics of an aihwkit ``PCMLikeNoiseModel``.

    ``overrides`` change any :class:`~memsnn.device_models.PCMParams` field of the result (the
    pulse response, say). Raises :class:`UnsupportedDeviceError` for any other noise model.
    """
    from aihwkit.inference.noise.pcm import CustomDriftPCMLikeNoiseModel, PCMLikeNoiseModel

    if isinstance(noise_model, CustomDriftPCMLikeNoiseModel) or not isinstance(noise_model, PCMLikeNoiseModel):
        raise UnsupportedDeviceError(
            f"aihwkit noise model {type(noise_model).__name__} cannot be imported: memsnn imports "
            f"{', '.join(SUPPORTED_NOISE_MODELS)} (its drift, 1/f read noise and programming noise are "
            "memsnn's pcm preset); a tabulated custom drift model has no memsnn counterpart"
        )
    nm = noise_model
    g_max_us = float(nm.g_max)
    g_ref_us = float(getattr(nm, "prog_coeff_g_max_reference", g_max_us))
    kw: dict[str, Any] = {
        "g_max": g_max_us * 1e-6,
        "prog_coeff": tuple(float(c) * float(nm.prog_noise_scale) for c in nm.prog_coeff),
        "prog_g_ref": g_ref_us * 1e-6,
        "t_read": float(nm.t_read),
        "drift_t0": float(nm.t_0),
        "read_noise_scale": float(nm.read_noise_scale),
        "drift_scale": float(nm.drift_scale),
    }
    kw.update(overrides)
    try:
        model = PCMDevice(PCMParams(**kw))
    except ParameterError as err:
        raise ParameterError(err.errors, "pcm imported from PCMLikeNoiseModel") from None
    not_carried = [
        f"PCMLikeNoiseModel.g_converter ({type(nm.g_converter).__name__}): memsnn maps weights to conductances "
        "with its crossbar mapping, not with aihwkit's converter",
        "PCMLikeNoiseModel draws nu from the target conductance; memsnn draws it from the programmed one",
        "PCMLikeNoiseModel redraws programming noise and nu on every apply_noise call; memsnn keeps one "
        "trajectory per device (nu drawn once per programming event)",
        "PCMLikeNoiseModel has no pulse response; the pulse law is memsnn's pcm preset (soft-bounds SET, abrupt RESET)",
    ]
    return ImportResult(model, type(nm).__name__, None, None, not_carried)
