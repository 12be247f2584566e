"""An encoder as a configuration: turns static samples ``[B, F]`` (scaled to [0, 1]) into spikes
``[T, B, F]`` with one of the functions of :mod:`memsnn.crossbar.encoders`, or (kind
``"sequence"``) sequences flattened time-major ``[B, T * C]`` into their spikes ``[T, B, C]``.

Kind ``"sequence"`` is the input of a temporal dataset (``Dataset.time_steps`` set); the
surrogate-gradient methods choose it, with ``num_steps = time_steps``, by themselves on such a
dataset (:func:`memsnn.experiments.methods.encoder_for`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from ..params import Params, param
from . import encoders

__all__ = ["Encoder", "ENCODINGS"]

ENCODINGS = ("rate", "poisson", "latency", "sequence")


@dataclass(frozen=True)
class Encoder(Params):
    """Spike encoding of static inputs (see :mod:`memsnn.crossbar.encoders` for the formulas)."""

    _owner = "encoder"

    kind: str = param("rate", check=None, choices=ENCODINGS, doc="rate (Bernoulli), poisson, latency (time to first spike), or sequence (temporal data: x[t * C + c] is step t of channel c, 0/1 as spikes, else a spike probability)")
    num_steps: int = param(25, unit="steps", check="int>=1", doc="time steps T")
    gain: float = param(1.0, unit="1", check=">0", doc="rate: firing probability per step = gain * x")
    max_rate: float = param(100.0, unit="Hz", check=">0", doc="poisson: rate of an input of 1")
    dt: float = param(1e-3, unit="s", check=">0", doc="poisson: time step")
    tau: float = param(5.0, unit="steps", check=">0", doc="latency: time constant of the code")
    threshold: float = param(0.01, unit="1", check=">0", doc="latency: inputs below this never fire when clip is on (0 < threshold < 1)")
    linear: bool = param(True, check=None, choices=(True, False), doc="latency: linear (t = tau (1 - x)) or log code")
    normalize: bool = param(True, check=None, choices=(True, False), doc="latency: stretch the code over all num_steps")
    clip: bool = param(True, check=None, choices=(True, False), doc="latency: drop spikes of inputs below threshold")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | int | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise ValueError(f"encoder input must be [batch, features], got {tuple(getattr(x, 'shape', ()))}")
        if self.kind == "rate":
            return encoders.rate(x, self.num_steps, gain=self.gain, generator=generator)
        if self.kind == "sequence":
            return encoders.sequence(x, self.num_steps, generator=generator)
        if self.kind == "poisson":
            return encoders.poisson(x, self.num_steps, dt=self.dt, max_rate=self.max_rate, generator=generator)
        return encoders.latency(x, self.num_steps, threshold=self.threshold, tau=self.tau, clip=self.clip,
                                normalize=self.normalize, linear=self.linear)

    def _cross_checks(self) -> Iterator[str]:
        return iter(())
