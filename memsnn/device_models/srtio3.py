"""SrTiO3-like memristor: power-law pulse response, volatile short-term part, drift (preset ``srtio3``).

Pulse law
---------
SET follows the power law fitted to measured Nb-doped SrTiO3 devices by Tiotto et al.,
"Learning to approximate functions using Nb-doped SrTiO3 memristors", Front. Neurosci. 2021
(arXiv 2011.02794)::

    R(n) = R0 + R1 * n**c(V),   c(V) = c0 + c1 * V,   G = 1 / R

where ``n`` is the number of equivalent SET pulses. A device's current resistance fixes its ``n``
(``n = ((R - R0) / R1) ** (1 / c)``), a pulse advances it, so the conductance step shrinks as the
device is potentiated - the strong nonlinearity that makes in-situ learning hard. The amplitude
enters through ``c(V)``; a pulse of width ``w`` counts as ``w / width_ref`` equivalent pulses
(an assumption: width dependence is not published).

RESET: no RESET law for these devices is published in reachable form, so memsnn mirrors the fitted
SET law about the middle of each device's window, ``G -> g_min + g_max - G``, with the RESET
amplitude in ``c(V)`` and an efficiency ``reset_efficiency`` (equivalent pulses per RESET pulse).
RESET steps are therefore largest near ``g_max`` and shrink towards ``g_min``, and SET and RESET
differ in both shape and size (asymmetry). Fit ``reset_efficiency`` to your own data with
:func:`memsnn.device_models.fit_device`.

Sources of the defaults (science.md section 1)
----------------------------------------------
- ``r0 = 200 ohm``, ``r1 = 2.3e8 ohm``, ``c0 = -0.093``, ``c1 = -0.53 1/V`` (so ``c = -0.146`` at
  0.1 V), 15 % device-to-device spread on R0, R1, c and the initial resistance (about 1e8 ohm,
  ``g_init = 10 nS``): Tiotto et al. 2021.
- Low-conductance, non-filamentary regime; volatile short-term plasticity; meta-plasticity through a
  bias-set decay time: Weilenmann et al., Nat. Commun. 15 (2024), arXiv 2402.16628.
- Volatile decay ``tau`` of about 1-10 s set by electrical bias, under 1 pJ per (optical) pulse:
  arXiv 2509.22767. Default ``tau_volatile = sqrt(10) s`` at zero bias and
  ``tau_bias_coeff = ln(10)/2 1/V`` so that a bias of -1 V .. +1 V spans 1 s .. 10 s (the
  exponential form is our assumption). ``energy_set = energy_reset = 1 pJ`` uses the follow-up's
  sub-pJ figure as an upper reference point; the electrical pulse energy is not published.
- Drift ``nu = 0.05 +- 0.01`` (``drift_nu_dtod = 0.2``): not published for SrTiO3; the PCM
  literature's reference point (science.md 1.3). ``drift_t0 = 20 s`` as in aihwkit's PCM model
  (drift counts from the first read after programming), so a pulse train at 1 Hz loses under
  0.3 % per pulse interval to drift, while a day costs about a third of the conductance.
- ``g_min = 1 / (R0 + R1) = 4.35 nS`` (the law at n = 1); ``g_max = 100 nS`` is our choice: about
  150 SET pulses at 1 V reach it from ``g_min``, keeping the array in the low-conductance regime.
- Not published, documented defaults to sweep: pulse amplitude 1 V and width 1 us, c2c spread
  ``step_std = 0.2``, read noise 1 %, ``volatile_ratio = 0.3``, ``reset_efficiency = 0.5``,
  bound spreads, no stuck devices, continuous levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

from ..params import param
from .base import DeviceModel, DeviceParams, Sampler, _normals_where_pulsed, pick

__all__ = ["SrTiO3Params", "SrTiO3Device"]

Tensor = torch.Tensor

_R0, _R1 = 200.0, 2.3e8


@dataclass(frozen=True)
class SrTiO3Params(DeviceParams):
    """SrTiO3-like device parameters (SI units). See the module docstring for every source."""

    _owner = "srtio3"

    # power law of the SET response (Tiotto et al. 2021)
    r0: float = param(_R0, unit="ohm", check=">=0", doc="R0 of R(n) = R0 + R1 n**c")
    r1: float = param(_R1, unit="ohm", check=">0", doc="R1 of R(n) = R0 + R1 n**c")
    c0: float = param(-0.093, unit="1", check="any", doc="c(V) = c0 + c1 V")
    c1: float = param(-0.53, unit="1/V", check="any", doc="c(V) = c0 + c1 V")
    r_dtod: float = param(0.15, unit="1", check=">=0", doc="relative d2d spread of R0 and R1")
    c_dtod: float = param(0.15, unit="1", check=">=0", doc="relative d2d spread of c")
    reset_efficiency: float = param(0.5, unit="1", check=">0", doc="equivalent pulses per RESET pulse of the mirrored law")

    # overridden defaults of DeviceParams
    g_min: float = param(1.0 / (_R0 + _R1), unit="S", check=">=0", doc="lower conductance bound (the law at n = 1)")
    g_max: float = param(1e-7, unit="S", check=">0", doc="upper conductance bound")
    g_min_dtod: float = param(0.007, unit="1", check=">=0", doc="d2d spread of g_min in window units (~15 % of g_min)")
    g_max_dtod: float = param(0.1, unit="1", check=">=0", doc="d2d spread of g_max in window units")
    g_init: float | None = param(1e-8, unit="S", check=">=0", optional=True, doc="fresh-device conductance (1/1e8 ohm)")
    g_init_dtod: float = param(0.15, unit="1", check=">=0", doc="relative d2d spread of g_init")
    v_threshold: float = param(0.0, unit="V", check=">=0", doc="pulses with |V| <= this do nothing")
    step_std: float = param(0.2, unit="1", check=">=0", doc="c2c spread of each pulse's step, relative")
    read_noise_std: float = param(0.01, unit="1", check=">=0", doc="relative Gaussian read noise per read")
    volatile_ratio: float = param(0.3, unit="1", check=">=0", doc="volatile conductance per pulse, relative to its step")
    tau_volatile: float = param(math.sqrt(10.0), unit="s", check=">0", doc="volatile relaxation time at zero bias")
    tau_volatile_dtod: float = param(0.1, unit="1", check=">=0", doc="relative d2d spread of tau_volatile")
    tau_bias_coeff: float = param(math.log(10.0) / 2.0, unit="1/V", check="any", doc="tau = tau_volatile exp(coeff V_bias)")
    drift_nu: float = param(0.05, unit="1", check=">=0", doc="mean drift exponent")
    drift_nu_dtod: float = param(0.2, unit="1", check=">=0", doc="relative d2d spread of nu")
    drift_t0: float = param(20.0, unit="s", check=">0", doc="drift reference time t0 after programming")
    energy_set: float = param(1e-12, unit="J", check=">=0", doc="energy per SET pulse at v_ref, width_ref")
    energy_reset: float = param(1e-12, unit="J", check=">=0", doc="energy per RESET pulse at v_ref, width_ref")

    def c_of(self, volts: float) -> float:
        """Power-law exponent at pulse amplitude ``volts`` (mean device)."""
        return self.c0 + self.c1 * volts

    def _cross_checks(self) -> Iterator[str]:
        yield from super()._cross_checks()
        for name in ("v_set", "v_reset"):
            c = self.c_of(getattr(self, name))
            if not c < 0:
                yield (
                    f"c0 + c1 * {name} = {c!r} must be < 0 for a potentiating power law "
                    f"(c0={self.c0!r}, c1={self.c1!r} 1/V, {name}={getattr(self, name)!r} V)"
                )
        if self.g_max >= 1.0 / max(self.r0, 1e-30):
            yield f"g_max={self.g_max!r} must be < 1/r0 = {1.0 / max(self.r0, 1e-30)!r} S (the power law's limit)"


class SrTiO3Device(DeviceModel):
    """SrTiO3-like memristor array (preset ``srtio3``); physics and sources in the module docstring."""

    params_class = SrTiO3Params
    preset = "srtio3"
    source = "Tiotto et al. 2021 (arXiv 2011.02794); Weilenmann et al. 2024; arXiv 2509.22767"
    _fused_below = True

    def _sample_extra(self, sample: Sampler, dev: dict[str, Tensor]) -> dict[str, Tensor]:
        p = self.params
        return {
            "r0": sample.spread(p.r0, p.r_dtod),
            "r1": sample.spread(p.r1, p.r_dtod),
            "c_scale": sample.spread(1.0, p.c_dtod),
        }

    def _nominal_extra(self, one: Tensor) -> dict[str, Tensor]:
        p = self.params
        return {"r0": p.r0 * one, "r1": p.r1 * one, "c_scale": one.clone()}

    def _amplitude_factor(self, amp: Tensor, set_f: Tensor) -> Tensor:
        # the amplitude acts through c(V); here only the threshold and the RESET efficiency
        on = (amp > self.params.v_threshold).to(amp.dtype)
        return on * pick(set_f.to(amp.dtype), 1.0, self.params.reset_efficiency)

    def _exponent(self, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        return (self.params.c0 + self.params.c1 * amp) * dev["c_scale"]

    def _mirror(self, g: Tensor, set_f: Tensor, dev: dict[str, Tensor]) -> Tensor:
        """``g`` for SET, ``g_min + g_max - g`` for RESET (the mirrored law)."""
        return pick(set_f, g, dev["g_min"] + dev["g_max"] - g)

    def _respond(self, g: Tensor, dn: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        # R_new - R0 = (R - R0) * (1 + dn / n) ** c, written with log1p so that a huge n (small
        # amplitude) keeps its increment in float32.
        c = self._exponent(amp, dev)
        r0, r1 = dev["r0"], dev["r1"]
        gm = self._mirror(g, set_f, dev).clamp(min=1e-30)
        excess = (1.0 / gm - r0).clamp(min=1e-30)
        log_n = torch.log(excess / r1) / c
        ratio = (dn * torch.exp(-log_n)).clamp(min=-0.9)
        r_new = r0 + excess * torch.exp(c * torch.log1p(ratio))
        return self._mirror(1.0 / r_new, set_f, dev)

    def _fused_step(self, s_set: Tensor, s_reset: Tensor, dev: dict[str, Tensor], gen: torch.Generator | None,
                    amps: tuple[Tensor, Tensor] | None = None):
        """The power-law step of :meth:`_respond` with multiplicative c2c noise in about 25
        elementwise ops, most of them in place, instead of the generic step's ~45: each device's
        SET and RESET exponents and the mirror's ``g_min + g_max`` are computed once per sequence.
        The same operations in the same order as the generic step, so the same numbers (tested
        equal), and the same random draws. The lower bound is ``min(g_min, g)`` (a device that
        drifted below ``g_min`` stays there; otherwise it is ``g_min``: one op either way)."""
        p = self.params
        if (type(self)._respond is not SrTiO3Device._respond or type(self)._post_pulse_noise is not DeviceModel._post_pulse_noise
                or amps is None or (p.step_std > 0 and p.step_noise != "multiplicative")):
            return None
        lo, hi, r0, r1 = dev["g_min"], dev["g_max"], dev["r0"], dev["r1"]
        both = lo + hi  # the mirror: G -> g_min + g_max - G for RESET
        c_set, c_reset = self._exponent(amps[0], dev), self._exponent(amps[1], dev)
        std = p.step_std

        def step(g: Tensor, kf: Tensor, cnt: Tensor, n_on: int) -> Tensor:
            set_f = kf.clamp(0.0, 1.0)
            c = torch.lerp(c_reset, c_set, set_f)
            if std > 0:  # k pulses advance the coordinate by s (k + step_std sqrt(k) xi)
                xi = _normals_where_pulsed(cnt, gen, n_on)
                dn = torch.addcmul(cnt, cnt.sqrt(), xi, value=std).mul_(torch.lerp(s_reset, s_set, set_f))
            else:
                dn = torch.lerp(s_reset, s_set, set_f).mul_(cnt)
            excess = torch.lerp(both - g, g, set_f).clamp_(min=1e-30).reciprocal_().sub_(r0).clamp_(min=1e-30)
            ratio = dn.mul_((excess / r1).log_().div_(c).neg_().exp_()).clamp_(min=-0.9)
            g1 = ratio.log1p_().mul_(c).exp_().mul_(excess).add_(r0).reciprocal_()
            # a device that drifted below g_min is not lifted to it by a pulse (as the generic step)
            g1 = torch.lerp(both - g1, g1, set_f).clamp_(torch.minimum(lo, g), hi)
            return torch.lerp(g, g1, cnt.clamp_(max=1.0))

        return step

    def _coord(self, g: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        c = self._exponent(amp, dev)
        gm = self._mirror(g, set_f, dev).clamp(min=1e-30)
        excess = (1.0 / gm - dev["r0"]).clamp(min=1e-30)
        return torch.exp(torch.log(excess / dev["r1"]) / c)

    def _uncoord(self, n: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        c = self._exponent(amp, dev)
        r = dev["r0"] + dev["r1"] * n.clamp(min=1e-30) ** c
        return self._mirror(1.0 / r, set_f, dev)

    def _reference_step(self, dev: dict[str, Tensor]) -> Tensor:
        # nominal SET step at the middle of each device's window
        g_mid = 0.5 * (dev["g_min"] + dev["g_max"])
        amp = torch.full_like(g_mid, self.params.v_set)
        return self._respond(g_mid, torch.ones_like(g_mid), torch.ones_like(g_mid), amp, dev) - g_mid
