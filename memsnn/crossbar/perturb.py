"""Perturbations of input spike trains for robustness tests: spike-time jitter and event noise.

Both act on a spike raster ``[T, B, N]`` (time steps, batch, inputs; values 0/1) and return a new
raster of the same shape, dtype and device. Random numbers come from ``generator`` (a CPU
``torch.Generator``; None: torch's global generator), so a fixed seed gives every method the same
perturbation.

- :func:`jitter`: every spike moves by ``round(N(0, sigma))`` steps, clipped to the window
  ``[0, T-1]`` (sigma in time steps). Two spikes of one input that land in the same step merge
  into one, as on a binary event bus.
- :func:`event_noise`: each spike is dropped with probability ``drop`` and a spurious spike
  appears in each empty (step, sample, input) slot with probability ``spurious``.

Input noise as one setting, usable at training and at evaluation (:class:`InputNoise`):

- :func:`feature_noise`: additive Gaussian noise on the features ``[B, F]`` *before* encoding,
  with a standard deviation of ``sigma`` times each feature's range (``hi - lo``, the training
  split's minimum and maximum: :func:`feature_bounds`), clipped back to ``[lo, hi]``. With minmax
  scaling every range is 1, so ``sigma = 0.2`` is "20 % input noise". Features whose range is 0
  stay unchanged. The supervised in-situ STDP paper (arXiv 2507.20998) reports 93.4 % under
  "20 % input noise" without saying how the noise was made; this is memsnn's reading of it.
- spike deletion and insertion on the encoded raster (:func:`event_noise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..params import Params, param

__all__ = ["jitter", "event_noise", "feature_noise", "feature_bounds", "InputNoise"]

Tensor = torch.Tensor


def _check_raster(spikes: Tensor) -> None:
    if not isinstance(spikes, torch.Tensor) or spikes.dim() != 3:
        raise ValueError(f"spikes must be a tensor [T, B, N], got {tuple(getattr(spikes, 'shape', ()))}")


def jitter(spikes: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """Move each spike of ``spikes`` ``[T, B, N]`` by ``round(N(0, sigma))`` steps (clipped to the window)."""
    _check_raster(spikes)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma >= 0:
        raise ValueError(f"sigma={sigma!r} must be a number >= 0 (time steps)")
    if sigma == 0:
        return spikes.clone()
    T = spikes.shape[0]
    t, b, n = torch.nonzero(spikes, as_tuple=True)
    shift = torch.round(torch.randn(len(t), generator=generator) * sigma).long().to(spikes.device)
    out = torch.zeros_like(spikes)
    out[(t + shift).clamp(0, T - 1), b, n] = 1.0
    return out


def event_noise(spikes: Tensor, drop: float = 0.0, spurious: float = 0.0,
                generator: torch.Generator | None = None) -> Tensor:
    """Drop each spike with probability ``drop``; add a spike to each slot with probability ``spurious``."""
    _check_raster(spikes)
    for name, p in (("drop", drop), ("spurious", spurious)):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{name}={p!r} must be a probability in [0, 1]")
    keep = (torch.rand(spikes.shape, generator=generator) >= drop).to(spikes.device, spikes.dtype)
    extra = (torch.rand(spikes.shape, generator=generator) < spurious).to(spikes.device, spikes.dtype)
    return (spikes * keep + extra).clamp(max=1.0)


def feature_bounds(x_train: Tensor) -> tuple[Tensor, Tensor]:
    """Per-feature minimum and maximum ``([F], [F])`` of the training features ``[N, F]``."""
    if not isinstance(x_train, torch.Tensor) or x_train.dim() != 2 or x_train.shape[0] == 0:
        raise ValueError(f"x_train must be a non-empty tensor [N, F], got {tuple(getattr(x_train, 'shape', ()))}")
    return x_train.min(dim=0).values, x_train.max(dim=0).values


def feature_noise(x: Tensor, sigma: float, lo: Tensor, hi: Tensor,
                  generator: torch.Generator | None = None) -> Tensor:
    """``clip(x + N(0, (sigma * (hi - lo))**2), lo, hi)`` per feature, for features ``x`` ``[B, F]``
    and bounds ``lo``, ``hi`` ``[F]`` (see the module docstring); ``sigma`` is a fraction of the range."""
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma >= 0:
        raise ValueError(f"sigma={sigma!r} must be a number >= 0 (fraction of each feature's range)")
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a tensor [B, F], got {tuple(getattr(x, 'shape', ()))}")
    if lo.shape != (x.shape[1],) or hi.shape != (x.shape[1],):
        raise ValueError(f"lo and hi must be [F] = [{x.shape[1]}] tensors, got {tuple(lo.shape)} and {tuple(hi.shape)}")
    if sigma == 0:
        return x.clone()
    lo, hi = lo.to(x), hi.to(x)
    noise = torch.randn(x.shape, generator=generator).to(x)
    return torch.maximum(torch.minimum(x + sigma * (hi - lo) * noise, hi), lo)


@dataclass(frozen=True)
class InputNoise(Params):
    """Input noise of one experiment: feature noise before encoding, spike deletion and insertion
    after it (module docstring). All zero: no noise."""

    _owner = "input noise"

    feature: float = param(0.0, unit="1", check=">=0",
                           doc="Gaussian feature noise, std as a fraction of each feature's training range")
    drop: float = param(0.0, unit="1", check="prob", doc="probability that each input spike is deleted")
    insert: float = param(0.0, unit="1", check="prob",
                          doc="probability of a spurious spike in each empty (step, sample, input) slot")

    @property
    def active(self) -> bool:
        """True when any part of the noise is on."""
        return self.feature > 0 or self.drop > 0 or self.insert > 0

    @property
    def on_spikes(self) -> bool:
        """True when spikes are deleted or inserted."""
        return self.drop > 0 or self.insert > 0

    def features(self, x: Tensor, lo: Tensor, hi: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Features ``[B, F]`` with the feature noise (unchanged when ``feature`` is 0)."""
        return feature_noise(x, self.feature, lo, hi, generator) if self.feature > 0 else x

    def spikes(self, spikes: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A raster ``[T, B, N]`` with spikes deleted / inserted (unchanged when both are 0)."""
        return event_noise(spikes, self.drop, self.insert, generator) if self.on_spikes else spikes

    def describe(self) -> str:
        """Short text, e.g. ``"feature 0.2, drop 0.1"`` (``"none"`` when off)."""
        parts = [f"{k} {getattr(self, k):g}" for k in ("feature", "drop", "insert") if getattr(self, k) > 0]
        return ", ".join(parts) or "none"
