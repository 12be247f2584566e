"""Ideal linear device: the digital reference (preset ``ideal``).

Every pulse moves the conductance by the same step ``step`` (siemens), up for SET and down for
RESET, with hard clipping at ``[g_min, g_max]`` and nothing else: no nonlinearity, no noise, no
spread, no drift, no volatile part, no faults, zero energy. Half-selected pulses (``|V| <= 0.5 V``
with the default ``v_threshold``) do nothing. A network on this device is the same network on float
weights quantised to ``step``; with stochastic rounding in the scheduler it is unbiased.

Defaults: the window ``[0, 100 nS]`` spans the ``srtio3`` preset's window so that the same weight
scale maps to comparable currents; ``step = 0.1 nS`` gives 1000 steps across it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from ..params import param
from .base import DeviceModel, DeviceParams, _normals_where_pulsed, pick

__all__ = ["LinearParams", "LinearDevice"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class LinearParams(DeviceParams):
    """Linear-step device parameters (SI units)."""

    _owner = "ideal"

    step: float = param(1e-10, unit="S", check=">0", doc="conductance change per nominal pulse")

    g_min: float = param(0.0, unit="S", check=">=0", doc="lower conductance bound")
    g_max: float = param(1e-7, unit="S", check=">0", doc="upper conductance bound")

    def _cross_checks(self) -> Iterator[str]:
        yield from super()._cross_checks()
        if self.step > self.g_max - self.g_min:
            yield f"step={self.step!r} must be <= the window g_max - g_min = {self.g_max - self.g_min!r} S"


class LinearDevice(DeviceModel):
    """Linear device with hard bounds (preset ``ideal``)."""

    params_class = LinearParams
    preset = "ideal"
    source = "digital reference (linear, noise-free)"

    def _respond(self, g: Tensor, dn: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        sign = 2.0 * set_f - 1.0
        return g + (self.params.step * dn) * sign

    def _coord(self, g: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        x = pick(set_f, g - dev["g_min"], dev["g_max"] - g)
        return x / self.params.step

    def _uncoord(self, n: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        x = n * self.params.step
        return pick(set_f, dev["g_min"] + x, dev["g_max"] - x)

    def _reference_step(self, dev: dict[str, Tensor]) -> Tensor:
        return torch.full_like(dev["g_min"], self.params.step)

    def _fused_step(self, s_set: Tensor, s_reset: Tensor, dev: dict[str, Tensor], gen: torch.Generator | None):
        """``k`` signed pulses move ``G`` by ``step * s * (k + step_std * sqrt(|k|) * xi)`` (``s`` of
        the pulses' polarity), clipped to the device's bounds: 5 elementwise ops per step instead of
        the generic 17. The same distribution as the generic step, whose noise term carries the
        polarity's sign (``xi`` and ``-xi`` are equally distributed), for both noise modes: on a
        linear device the reference step is ``step``, so multiplicative and additive noise agree."""
        if type(self)._respond is not LinearDevice._respond or type(self)._post_pulse_noise is not DeviceModel._post_pulse_noise:
            return None
        p = self.params
        lo, hi = dev["g_min"], dev["g_max"]
        step_set, step_reset = s_set * p.step, s_reset * p.step  # siemens per nominal pulse
        one_step = step_set.shape == step_reset.shape and torch.equal(step_set, step_reset)
        std = p.step_std

        def step(g: Tensor, kf: Tensor, n_on: int) -> Tensor:
            st = step_set if one_step else torch.lerp(step_reset, step_set, kf.clamp(0.0, 1.0))
            if std > 0:
                root = kf.abs().sqrt_()
                xi = _normals_where_pulsed(root, gen, n_on)
                kf = torch.addcmul(kf, root, xi, value=std)
            return torch.addcmul(g, st, kf).clamp_(lo, hi)

        return step

