"""PCM-like device (preset ``pcm``): gradual SET, abrupt RESET, conductance-dependent drift, 1/f noise.

Pulse law. SET (crystallisation) is gradual and saturating: soft bounds,
``G_max - G -> (G_max - G) * (1 - alpha_set) ** k``. RESET (melt-quench amorphisation) is abrupt:
any RESET pulse returns the device to ``g_min`` plus ``reset_std * window * |xi|``. A PCM synapse is
therefore used as a SET-only differential pair with refresh.

Statistics of aihwkit's ``PCMLikeNoiseModel`` (aihwkit 1.1.0; Nandakumar et al., ICECS 2019), with
conductances relative to ``g_max = 25 uS`` and ``t_0 = 20 s``:

- drift exponent drawn at every programming event from the programmed conductance
  ``g_r = G / g_max``::

      mu_nu  = clip(-0.0155 ln g_r + 0.0244, 0.049, 0.1)
      sig_nu = clip(-0.0125 ln g_r - 0.0059, 0.008, 0.045)
      nu     = |mu_nu + sig_nu xi| * drift_scale

- accumulated 1/f read noise for a read ``t`` seconds after programming::

      Q_s = clip(0.0088 / clip(g_r ** 0.65, min=1e-3), max=0.2)
      sigma_rel = Q_s * sqrt(ln((t + t_0 + t_read) / (2 t_read))) * read_noise_scale,  t_read = 250 ns

- programming error of :meth:`~memsnn.device_models.base.DeviceModel.program`, a polynomial in
  ``g_T / g_max`` in uS: ``sigma = 0.26348 + 1.9650 x - 1.1731 x**2`` (scaled by ``g_max / 25 uS``).

Pulse-response defaults follow aihwkit's ``PCMPresetDevice`` (Nandakumar et al., Front. Neurosci.
2020): c2c spread ``step_std = 0.6``, step d2d ``0.2``, up/down d2d ``0.05``, ``g_max`` d2d 0.1 of
the window, RESET spread 0.02. ``alpha_set = 0.1`` approximates that preset's exponential step
(about 14 % of the window at ``g_min``, falling steeply towards ``g_max``) with soft bounds, about 20
SET pulses from ``g_min`` to 90 % of the window. Pulse energies (10 pJ SET, 50 pJ RESET) are
placeholder orders of magnitude, not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from ..params import param
from ..philox import randn as _randn
from .base import DeviceModel, DeviceParams, DeviceState, Sampler, pick

__all__ = ["PCMParams", "PCMDevice"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class PCMParams(DeviceParams):
    """PCM-like device parameters (SI units); statistics from aihwkit's PCMLikeNoiseModel."""

    _owner = "pcm"

    alpha_set: float = param(0.1, unit="1", check=">0", doc="SET step at g_min, fraction of the window")
    reset_std: float = param(0.02, unit="1", check=">=0", doc="spread of the RESET level above g_min, window units")
    prog_coeff: tuple = param((0.26348, 1.9650, -1.1731), check=None, doc="programming-noise polynomial in g_T/g_max (uS)")
    prog_g_ref: float = param(25e-6, unit="S", check=">0", doc="g_max the polynomial was fitted at")
    t_read: float = param(250e-9, unit="s", check=">0", doc="1/f noise read time parameter")
    read_noise_scale: float = param(1.0, unit="1", check=">=0", doc="scale of the 1/f read noise")
    drift_scale: float = param(1.0, unit="1", check=">=0", doc="scale of the drift exponent")

    g_min: float = param(0.0, unit="S", check=">=0", doc="lower conductance bound (RESET level)")
    g_max: float = param(25e-6, unit="S", check=">0", doc="upper conductance bound")
    g_max_dtod: float = param(0.1, unit="1", check=">=0", doc="d2d spread of g_max, window units")
    step_dtod: float = param(0.2, unit="1", check=">=0", doc="relative d2d spread of the step")
    up_down_dtod: float = param(0.05, unit="1", check=">=0", doc="relative d2d spread of SET/RESET ratio")
    step_std: float = param(0.6, unit="1", check=">=0", doc="relative c2c spread of each SET step")
    drift_nu: float = param(0.05, unit="1", check=">=0", doc="nominal drift exponent (the actual one depends on G)")
    drift_t0: float = param(20.0, unit="s", check=">0", doc="drift reference time t_0")
    energy_set: float = param(10e-12, unit="J", check=">=0", doc="energy per SET pulse (placeholder)")
    energy_reset: float = param(50e-12, unit="J", check=">=0", doc="energy per RESET pulse (placeholder)")

    def __post_init__(self) -> None:
        if isinstance(self.prog_coeff, list):  # JSON/TOML give lists; keep equality exact
            object.__setattr__(self, "prog_coeff", tuple(self.prog_coeff))
        super().__post_init__()

    def _cross_checks(self) -> Iterator[str]:
        yield from super()._cross_checks()
        if self.alpha_set >= 1:
            yield f"alpha_set={self.alpha_set!r} must be < 1 (a fraction of the window per pulse)"
        coeff = self.prog_coeff
        if not (isinstance(coeff, (tuple, list)) and len(coeff) >= 1 and all(isinstance(c, (int, float)) for c in coeff)):
            yield f"prog_coeff={coeff!r} must be a non-empty sequence of numbers (uS)"


class PCMDevice(DeviceModel):
    """PCM-like device (preset ``pcm``); see the module docstring."""

    params_class = PCMParams
    preset = "pcm"
    source = "aihwkit PCMLikeNoiseModel (Nandakumar et al. 2019) and PCMPresetDevice (2020)"

    def _respond(self, g: Tensor, dn: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        keep = torch.log1p(torch.tensor(-self.params.alpha_set, dtype=torch.float64)).item()
        up = dev["g_max"] - (dev["g_max"] - g) * torch.exp(dn * keep)
        reset = torch.lerp(g, dev["g_min"].expand_as(g), (dn > 0).to(g.dtype))  # abrupt: any effective pulse
        return pick(set_f, up, reset)

    def _coord(self, g: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        if not bool((set_f > 0.5).all()):
            raise ValueError("a PCM RESET is abrupt and has no pulse coordinate; count SET pulses from g_min")
        keep = torch.log1p(torch.tensor(-self.params.alpha_set, dtype=torch.float64)).item()
        window = dev["g_max"] - dev["g_min"]
        return torch.log(((dev["g_max"] - g) / window).clamp(min=1e-12)) / keep

    def _uncoord(self, n: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        keep = torch.log1p(torch.tensor(-self.params.alpha_set, dtype=torch.float64)).item()
        return dev["g_max"] - (dev["g_max"] - dev["g_min"]) * torch.exp(n * keep)

    def pulses_needed(self, g_now, g_target, *, amplitude=None, width=None) -> Tensor:
        """SET pulses up the soft-bound law; going down needs one abrupt RESET (-1), after which
        the device climbs from ``g_min`` again."""
        p = self.params
        g_now = torch.as_tensor(g_now).to(torch.float64)
        g_target = torch.as_tensor(g_target).to(dtype=torch.float64, device=g_now.device)
        eps = 1e-3 * p.window
        now = g_now.clamp(p.g_min + eps, p.g_max - eps)
        tgt = g_target.clamp(p.g_min + eps, p.g_max - eps)
        dev = self.nominal_device_params(g_now.device, torch.float64)
        ones = torch.ones_like(now)
        amp = ones * (p.v_set if amplitude is None else float(amplitude))
        w = p.pulse_width if width is None else width
        s = self._amplitude_factor(amp, ones) * (w / p.width_ref)
        up = (self._coord(tgt, ones, amp, dev) - self._coord(now, ones, amp, dev)) / s.clamp(min=1e-12)
        return torch.where(tgt >= now, up, -ones)

    def _reference_step(self, dev: dict[str, Tensor]) -> Tensor:
        g_mid = 0.5 * (dev["g_min"] + dev["g_max"])
        return self.params.alpha_set * (dev["g_max"] - g_mid)

    def _post_pulse_noise(self, g1, set_f, pulsed_f, gen, dev):
        p = self.params
        if p.reset_std == 0:
            return g1
        xi = _randn(g1.shape, generator=gen, device=g1.device, dtype=g1.dtype).abs()
        level = dev["g_min"] + p.reset_std * (dev["g_max"] - dev["g_min"]) * xi
        return torch.lerp(g1, level, pulsed_f * (1.0 - set_f))

    # --- conductance-dependent drift and 1/f read noise (aihwkit PCMLikeNoiseModel) ---------------
    def drift_statistics(self, g: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and std of the drift exponent for devices programmed to ``g`` (S)."""
        g_rel = (g.abs() / self.params.g_max).clamp(min=1e-7)
        log_g = torch.log(g_rel)
        mu = (-0.0155 * log_g + 0.0244).clamp(min=0.049, max=0.1)
        sig = (-0.0125 * log_g - 0.0059).clamp(min=0.008, max=0.045)
        return mu, sig

    def _sample_nu(self, g: Tensor, xi: Tensor) -> Tensor:
        mu, sig = self.drift_statistics(g)
        return (mu + sig * xi).abs() * self.params.drift_scale

    def _has_dynamic_nu(self) -> bool:
        return True

    def _initial_nu(self, g: Tensor, sample: Sampler) -> Tensor:
        return self._sample_nu(g, sample.normal())

    def _on_programmed(self, state: DeviceState, g_new: Tensor, touched: Tensor, gen) -> Tensor:
        xi = _randn(state.shape, generator=gen, device=state.device, dtype=state.dtype)
        return torch.where(touched, self._sample_nu(g_new, xi), state.nu)

    def read_noise_std(self, state: DeviceState, g: Tensor, elapsed: Tensor) -> Tensor | float:
        """Accumulated 1/f read noise (S), relative to the read conductance ``g``."""
        p = self.params
        if p.read_noise_scale == 0:
            return 0.0
        g_rel = state.g.abs() / p.g_max
        q_s = (0.0088 / (g_rel**0.65).clamp(min=1e-3)).clamp(max=0.2)
        t = elapsed + p.drift_t0
        sig = torch.sqrt(torch.log((t + p.t_read) / (2 * p.t_read)))
        return g.abs() * q_s * sig.to(q_s.dtype) * p.read_noise_scale

    def programming_noise_std(self, g_target: Tensor, dev: dict[str, Tensor]) -> Tensor:
        p = self.params
        x = g_target / p.g_max
        sigma_us = torch.zeros_like(g_target)
        for i, c in enumerate(p.prog_coeff):
            sigma_us = sigma_us + c * x**i
        return sigma_us * 1e-6 * (p.g_max / p.prog_g_ref)
