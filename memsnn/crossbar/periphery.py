"""Periphery of a crossbar tile: DAC, read voltage, output noise and ADC.

Signal chain of one tile (each stage switchable)::

    x (input units, [B, rows])
      -> DAC: clip to [-x_max, x_max], round to 2**dac_bits - 2 steps    (dac_bits=None: off)
      -> row voltages V = x_q * v_read / x_max                            (volts)
      -> column currents I = V @ G                                        (amperes; crossbar)
      -> output noise: I += output_noise * I_unit * xi                    (output_noise=0: off)
      -> ADC: clip to [-adc_bound, adc_bound] * I_unit, round to 2**adc_bits - 2 steps
                                                                          (adc_bits=None: off)

``I_unit = v_read * (g_max - g_min)`` is the current of one device spanning the full window at
full-scale input: the normalised output unit, as in aihwkit's IO parameters (``out_bound``,
``out_noise`` and ``inp_res`` / ``out_res = 1 / (2**bits - 2)`` there), so that settings compare
one to one. :meth:`PeripheryParams.aihwkit_default` reproduces aihwkit 1.1.0's defaults
(7-bit DAC and ADC, ``out_bound = 12``, ``out_noise = 0.06``).

Quantisation error bounds (used by the tests): a DAC step is ``2 x_max / (2**dac_bits - 2)``, so
each input is off by at most half of it; an unclipped ADC output is off by at most half of
``2 adc_bound I_unit / (2**adc_bits - 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from ..params import Params, param

__all__ = ["PeripheryParams", "dac", "dac_codes", "adc", "quantise"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class PeripheryParams(Params):
    """DAC / ADC / read-voltage settings of every tile. Default: ideal (all conversions off)."""

    _owner = "periphery"

    v_read: float = param(0.2, unit="V", check=">0", doc="row voltage for a full-scale input |x| = x_max")
    x_max: float = param(1.0, unit="1", check=">0", doc="input full scale (inputs are clipped to +-x_max when the DAC is on)")
    dac_bits: int | None = param(None, unit="1", check="int>=2", optional=True, doc="DAC resolution (None: ideal, no clipping)")
    adc_bits: int | None = param(None, unit="1", check="int>=2", optional=True, doc="ADC resolution (None: ideal)")
    adc_bound: float = param(12.0, unit="I_unit", check=">0", doc="ADC full scale, in units of v_read * (g_max - g_min)")
    adc_clip: bool = param(True, check=None, choices=(True, False), doc="clip at +-adc_bound when the ADC is on")
    output_noise: float = param(0.0, unit="I_unit", check=">=0", doc="Gaussian output noise std before the ADC")

    @classmethod
    def ideal(cls) -> "PeripheryParams":
        return cls()

    @classmethod
    def aihwkit_default(cls) -> "PeripheryParams":
        """aihwkit 1.1.0 ``IOParameters`` defaults: 7-bit DAC/ADC, out_bound 12, out_noise 0.06."""
        return cls(dac_bits=7, adc_bits=7, adc_bound=12.0, output_noise=0.06)

    def dac_step(self) -> float | None:
        """Input quantisation step (input units), or None when the DAC is off."""
        return None if self.dac_bits is None else 2.0 * self.x_max / (2**self.dac_bits - 2)

    def adc_step(self, i_unit: float) -> float | None:
        """Output quantisation step (A) for a tile whose unit current is ``i_unit``."""
        return None if self.adc_bits is None else 2.0 * self.adc_bound * i_unit / (2**self.adc_bits - 2)

    def _cross_checks(self) -> Iterator[str]:
        return iter(())


def quantise(x: Tensor, step: float, bound: float | None) -> Tensor:
    """Round ``x`` to multiples of ``step`` after clipping to ``[-bound, bound]`` (None: no clip)."""
    if bound is not None:
        x = x.clamp(-bound, bound)
    return torch.round(x / step) * step


def dac_codes(x: Tensor, p: PeripheryParams) -> tuple[Tensor, float]:
    """``(codes, volts per code)``: the DAC's integer codes for inputs ``x`` (input units; clipped
    to ``+-x_max`` and rounded to steps) and the row voltage of one code (V), so that the row
    voltages are ``codes * volts_per_code``. DAC off: ``x`` itself (not a copy) and ``v_read /
    x_max``. The crossbar's VMM folds the scale into its conductance matrix (one pass fewer)."""
    step = p.dac_step()
    if step is None:
        return x, p.v_read / p.x_max
    return torch.round(x.clamp(-p.x_max, p.x_max).mul_(1.0 / step)), step * p.v_read / p.x_max


def dac(x: Tensor, p: PeripheryParams) -> Tensor:
    """Row voltages (V) for inputs ``x`` (input units): clip, quantise, scale by v_read / x_max."""
    codes, volts = dac_codes(x, p)
    return codes * volts


def adc(i: Tensor, p: PeripheryParams, i_unit: float, generator: torch.Generator | None = None) -> Tensor:
    """Digitised column currents (A): output noise, then clipping and quantisation."""
    if p.output_noise > 0:
        i = i + (p.output_noise * i_unit) * torch.randn(i.shape, generator=generator, device=i.device, dtype=i.dtype)
    step = p.adc_step(i_unit)
    if step is not None:
        i = quantise(i, step, p.adc_bound * i_unit if p.adc_clip else None)
    return i
