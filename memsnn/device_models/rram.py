"""RRAM with soft bounds and asymmetry (preset ``rram``), after aihwkit's ``ReRamSBPresetDevice``.

Pulse law (soft bounds, exact for any real number ``k`` of nominal pulses)::

    SET:   G_max - G  ->  (G_max - G) * (1 - alpha_set) ** k
    RESET: G - G_min  ->  (G - G_min) * (1 - alpha_reset) ** k

so one SET pulse moves ``alpha_set * (G_max - G)`` and one RESET pulse ``alpha_reset * (G - G_min)``:
the step falls linearly to zero at the bound it approaches. ``alpha_*`` are fractions of the
device's window; ``alpha_set != alpha_reset`` makes the device asymmetric, with its symmetry point
(equal up and down steps) at ``x = alpha_set / (alpha_set + alpha_reset)`` of the window.

Defaults: aihwkit 1.1.0 ``ReRamSBPresetDevice`` (a loose soft-bounds fit to Gong et al.,
Nat. Commun. 2018), translated from aihwkit's unitless weights ``w in [w_min, w_max] = [-0.75, 1.25]``
(window 2.0, ``dw_min = 0.002``) to a conductance window:

- ``alpha_set = dw_min / w_max = 0.0016``, ``alpha_reset = dw_min / |w_min| = 0.002667``
  (symmetry point at w = 0, reference step ``dw_min`` = 0.1 % of the window);
- ``step_dtod = 0.3`` (``dw_min_dtod``), ``up_down_dtod = 0.01``;
- bound spreads ``w_max_dtod * w_max = w_min_dtod * |w_min| = 0.3`` weight units = 0.15 window;
- additive c2c noise ``step_std = 3.75`` reference steps (``dw_min_std``, ``mult_noise=False``);
- write noise ``write_noise_std = 56`` reference steps (``write_noise_std``).

aihwkit's weights are unitless, so the window ``[40 uS, 140 uS]`` is our choice (an analog RRAM
range; bound spreads of 15 uS stay positive). RRAM drift, read noise and volatility are off, as in
the aihwkit preset; pulse energy ``1 pJ`` is a placeholder order of magnitude, not a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from ..params import param
from .base import DeviceModel, DeviceParams, _normals_where_pulsed, g_like_cpu, pick
from .kernels import soft_bounds_run

__all__ = ["SoftBoundsParams", "SoftBoundsDevice"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class SoftBoundsParams(DeviceParams):
    """Soft-bounds device parameters (SI units); defaults are aihwkit's ReRAM SB preset."""

    _owner = "rram"

    alpha_set: float = param(0.0016, unit="1", check=">0", doc="SET step at g_min, fraction of the window")
    alpha_reset: float = param(0.002 / 0.75, unit="1", check=">0", doc="RESET step at g_max, fraction of the window")

    g_min: float = param(40e-6, unit="S", check=">=0", doc="lower conductance bound")
    g_max: float = param(140e-6, unit="S", check=">0", doc="upper conductance bound")
    g_min_dtod: float = param(0.15, unit="1", check=">=0", doc="d2d spread of g_min, window units")
    g_max_dtod: float = param(0.15, unit="1", check=">=0", doc="d2d spread of g_max, window units")
    g_init: float | None = param(None, unit="S", check=">=0", optional=True, doc="fresh-device conductance (None: g_min)")
    step_dtod: float = param(0.3, unit="1", check=">=0", doc="relative d2d spread of the step")
    up_down_dtod: float = param(0.01, unit="1", check=">=0", doc="relative d2d spread of the SET/RESET ratio")
    step_std: float = param(3.75, unit="1", check=">=0", doc="c2c noise per pulse, in reference steps (additive)")
    step_noise: str = param("additive", check=None, choices=("multiplicative", "additive"), doc="c2c noise mode")
    write_noise_std: float = param(56.0, unit="1", check=">=0", doc="apparent write noise, in reference steps")
    energy_set: float = param(1e-12, unit="J", check=">=0", doc="energy per SET pulse (placeholder)")
    energy_reset: float = param(1e-12, unit="J", check=">=0", doc="energy per RESET pulse (placeholder)")

    def _cross_checks(self) -> Iterator[str]:
        yield from super()._cross_checks()
        for name in ("alpha_set", "alpha_reset"):
            if getattr(self, name) >= 1:
                yield f"{name}={getattr(self, name)!r} must be < 1 (a fraction of the window per pulse)"


class SoftBoundsDevice(DeviceModel):
    """Soft-bounds device (preset ``rram``); see the module docstring."""

    params_class = SoftBoundsParams
    preset = "rram"
    source = "aihwkit ReRamSBPresetDevice (Gong et al. 2018)"

    def _log_keep(self, set_f: Tensor, dtype: torch.dtype) -> Tensor:
        """log(1 - alpha) per device for its polarity, in ``dtype``."""
        p = self.params
        keep = torch.log1p(-torch.tensor([p.alpha_set, p.alpha_reset], dtype=torch.float64))
        return pick(set_f.to(dtype), keep[0].item(), keep[1].item())

    def _respond(self, g: Tensor, dn: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        # the distance to the bound approached shrinks by (1 - alpha) per nominal pulse
        factor = torch.exp(dn * self._log_keep(set_f, g.dtype))
        bound = pick(set_f, dev["g_max"], dev["g_min"])
        return bound + (g - bound) * factor

    def _coord(self, g: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        window = dev["g_max"] - dev["g_min"]
        dist = pick(set_f, dev["g_max"] - g, g - dev["g_min"])
        return torch.log(torch.maximum(dist, 1e-12 * window) / window) / self._log_keep(set_f, g.dtype)

    def _uncoord(self, n: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        window = dev["g_max"] - dev["g_min"]
        dist = window * torch.exp(n * self._log_keep(set_f, n.dtype))
        return pick(set_f, dev["g_max"] - dist, dev["g_min"] + dist)

    def _reference_step(self, dev: dict[str, Tensor]) -> Tensor:
        # the step at the symmetry point, where SET and RESET steps are equal (aihwkit's dw_min)
        p = self.params
        return (dev["g_max"] - dev["g_min"]) * (p.alpha_set * p.alpha_reset / (p.alpha_set + p.alpha_reset))

    def _fused_step(self, s_set: Tensor, s_reset: Tensor, dev: dict[str, Tensor], gen: torch.Generator | None,
                    amps: tuple[Tensor, Tensor] | None = None):
        """The soft-bounds step in 11 elementwise ops (and the caller's ``|k|``) instead of the generic ~20: the log of the
        per-pulse factor is folded into each device's SET / RESET rate once per sequence, and the
        move towards the bound is one ``lerp`` (exactly ``g`` where no pulse arrives: weight 1).
        The same arithmetic as the generic step up to rounding, the same random draws."""
        if type(self)._respond is not SoftBoundsDevice._respond or type(self)._post_pulse_noise is not DeviceModel._post_pulse_noise:
            return None
        p = self.params
        lo, hi = dev["g_min"], dev["g_max"]
        keep = torch.log1p(-torch.tensor([p.alpha_set, p.alpha_reset], dtype=torch.float64)).tolist()
        rate_set, rate_reset = s_set * keep[0], s_reset * keep[1]  # log of the distance's factor per pulse
        mult = p.step_std > 0 and p.step_noise == "multiplicative"
        additive = p.step_std > 0 and p.step_noise == "additive"
        if additive:
            ref = p.step_std * self._reference_step(dev)
            noise_set, noise_reset = ref * s_set, ref * s_reset
        std = p.step_std

        def step(g: Tensor, kf: Tensor, cnt: Tensor, n_on: int) -> Tensor:
            set_f = kf.clamp(0.0, 1.0)
            if mult:  # k pulses advance the coordinate by s (k + step_std sqrt(k) xi)
                root = cnt.sqrt()
                cnt = cnt.addcmul_(root, _normals_where_pulsed(root, gen, n_on), value=std)
            factor = torch.lerp(rate_reset, rate_set, set_f).mul_(cnt).exp_()
            g1 = torch.lerp(torch.lerp(lo, hi, set_f), g, factor)
            if additive:  # k pulses add step_std * dG_ref * s * sqrt(k) * xi siemens
                root = cnt.sqrt_()
                root.mul_(_normals_where_pulsed(root, gen, n_on))
                g1.addcmul_(torch.lerp(noise_reset, noise_set, set_f), root)
            return g1.clamp_(lo, hi)

        if g_like_cpu(lo, rate_set, rate_reset):  # the whole sequence in one numba call (kernels.soft_bounds_run)
            kind = "multiplicative" if mult else ("additive" if additive else None)
            a_set, a_reset = (noise_set, noise_reset) if additive else (0.0, 0.0)
            step.run = lambda g, counts: soft_bounds_run(g, counts, rate_set, rate_reset, lo, hi, std, kind, a_set,
                                                         a_reset, gen)
        return step

