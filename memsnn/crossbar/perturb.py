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
"""

from __future__ import annotations

import torch

__all__ = ["jitter", "event_noise"]

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
