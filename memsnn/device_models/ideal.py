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
from ..philox import randn as _randn
from . import base
from .base import DeviceModel, DeviceParams, _normals_where_pulsed, g_like_cpu, pick
from .kernels import linear_run

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

    def _fused_step(self, s_set: Tensor, s_reset: Tensor, dev: dict[str, Tensor], gen: torch.Generator | None,
                    amps: tuple[Tensor, Tensor] | None = None):
        """``k`` signed pulses move ``G`` by ``step * s * (k + step_std * sqrt(|k|) * xi)`` (``s`` of
        the pulses' polarity), clipped to the device's bounds: 4 elementwise ops per step (and the
        caller's ``|k|``) instead of the generic 17. The same distribution as the generic step, whose noise term carries the
        polarity's sign (``xi`` and ``-xi`` are equally distributed), for both noise modes: on a
        linear device the reference step is ``step``, so multiplicative and additive noise agree."""
        if type(self)._respond is not LinearDevice._respond or type(self)._post_pulse_noise is not DeviceModel._post_pulse_noise:
            return None
        p = self.params
        lo, hi = dev["g_min"], dev["g_max"]
        step_set, step_reset = s_set * p.step, s_reset * p.step  # siemens per nominal pulse
        one_step = step_set.shape == step_reset.shape and torch.equal(step_set, step_reset)
        std = p.step_std

        def step(g: Tensor, kf: Tensor, cnt: Tensor, n_on: int) -> Tensor:
            st = step_set if one_step else torch.lerp(step_reset, step_set, kf.clamp(0.0, 1.0))
            if std > 0:
                root = cnt.sqrt_()
                xi = _normals_where_pulsed(root, gen, n_on)
                kf = torch.addcmul(kf, root, xi, value=std)
            return torch.addcmul(g, st, kf).clamp_(lo, hi)

        if g_like_cpu(lo, step_set):  # the whole sequence in one numba call (kernels.linear_run)
            step.run = lambda g, counts: linear_run(g, counts, step_set, step_reset, lo, hi, std, gen)
        return step

    def _combined_step(self, g: Tensor, counts: Tensor, abs_sum: Tensor, s_set: Tensor, s_reset: Tensor,
                       dev: dict[str, Tensor], gen: torch.Generator | None) -> tuple[Tensor, Tensor] | None:
        """A sequence of signed counts ``k_b`` as one step: without clipping, linear steps add up,
        ``G_B = G_0 + sum_b m_b k_b + sd * xi`` with ``m_b`` the step of ``k_b``'s polarity and
        ``sd**2 = step_std**2 * sum_b m_b**2 |k_b|`` (the c2c draws of all pulses are independent
        Gaussians, so their sum is one Gaussian). A device is ``safe`` when its noise-free partial
        sums ``G_0 + sum_{b' <= b} m_b' k_b'`` keep ``COALESCE_Z * sd`` inside its bounds; for it
        the sequence is clipped with probability below ``4 Q(COALESCE_Z)``. The partial sums cost
        3 small elementwise ops per step (5 with different SET / RESET steps), the fused step 5
        and a Gaussian draw."""
        if type(self)._respond is not LinearDevice._respond or type(self)._post_pulse_noise is not DeviceModel._post_pulse_noise:
            return None
        p = self.params
        step_set, step_reset = s_set * p.step, s_reset * p.step
        one_step = step_set.shape == step_reset.shape and torch.equal(step_set, step_reset)
        path, high, low = torch.zeros_like(g), torch.zeros_like(g), torch.zeros_like(g)
        var = None if one_step else torch.zeros_like(g)
        for kf in counts:  # noise-free partial sums (in pulses when both polarities step alike)
            if one_step:
                path += kf
            else:
                m = torch.lerp(step_reset, step_set, kf.clamp(0.0, 1.0))
                path.addcmul_(m, kf)
                var.addcmul_(m.square_(), kf.abs())
            torch.maximum(high, path, out=high)
            torch.minimum(low, path, out=low)
        if one_step:
            path, high, low = path * step_set, high.mul_(step_set), low.mul_(step_set)
            sd = abs_sum.sqrt().mul_(step_set).mul_(p.step_std)
        else:
            sd = var.sqrt_().mul_(p.step_std)
        g_end = g + path
        if p.step_std > 0:
            g_end.addcmul_(sd, _randn(g.shape, generator=gen, device=g.device, dtype=g.dtype))
        band = sd.mul_(base.COALESCE_Z)
        safe = (g + high + band <= dev["g_max"]) & (g + low - band >= dev["g_min"])
        return g_end, safe
