"""Spike encoders: turn data scaled to [0, 1] into spike trains ``[T, *data.shape]``.

Signatures, shapes and formulas follow ``snntorch.spikegen`` so that results compare; every
stochastic encoder takes ``generator=`` (a ``torch.Generator`` or an int seed; the same seed gives
the same spikes on the same device).

========== =================================================================================
encoder    what it does (``x`` = one input value, ``T`` = ``num_steps``)
========== =================================================================================
rate       Bernoulli spike each step with ``p = clamp(gain * x + offset, 0, 1)``
poisson    Poisson process at ``x * max_rate`` Hz sampled every ``dt`` s:
           ``p = 1 - exp(-x * max_rate * dt)`` per step (at most one spike per step)
latency    one spike at the time-to-first-spike of an RC neuron charged by ``x``:
           log code    ``t = tau * ln(x / (x - threshold))`` (``x`` floored at
           ``threshold + epsilon``), linear code ``t = tau * (1 - x)`` (capped at
           ``tau * (1 - threshold)``), each plus ``first_spike_time``; ``normalize`` rescales so
           the latest possible time is ``T - 1``; ``clip`` drops the spikes of inputs below
           ``threshold``; times are rounded (half to even) to whole steps
delta      for a time series ``[T, ...]``: spike where ``x[t] - x[t-1] >= threshold``
           (``-1`` where ``<= -threshold`` with ``off_spike``)
sequence   for sequences flattened time-major ``[B, T * C]``: step ``t`` of channel ``c`` is
           ``x[:, t * C + c]``; a value in {0, 1} is used as the spike itself, any other value
           as a Bernoulli probability (clamped to [0, 1]) of a spike at that step (ours; no
           snnTorch twin)
========== =================================================================================

Differences from snnTorch: a latency time beyond ``T - 1`` is clamped to ``T - 1`` (snnTorch
raises, or drops the spike with ``bypass=True``), so that inputs below the threshold fire at the
last step as snnTorch's docs describe; ``rate`` takes ``num_steps`` for static data only (for
time-varying probabilities pass ``num_steps=1`` per step or use ``torch.bernoulli``); invalid
arguments raise ``ValueError`` naming the value.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._random import as_generator

__all__ = ["rate", "poisson", "latency", "delta", "sequence"]

Tensor = torch.Tensor


# --------------------------------------------------------------------------------------- checks
def _float_data(data: Any, name: str = "data") -> Tensor:
    if not isinstance(data, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(data).__name__}")
    if not data.is_floating_point():
        data = data.to(torch.get_default_dtype())
    if torch.isnan(data).any():
        raise ValueError(f"{name} contains NaN ({int(torch.isnan(data).sum())} of {data.numel()} values)")
    return data


def _unit_range(data: Tensor, what: str) -> None:
    if data.numel() and (data.min() < 0 or data.max() > 1):
        raise ValueError(
            f"{what} must lie in [0, 1], but it spans [{data.min().item():g}, {data.max().item():g}]; "
            f"scale the data to [0, 1] first"
        )


def _num_steps(num_steps: Any) -> int:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps={num_steps!r} is not allowed: must be an integer >= 1")
    return num_steps


def _number(name: str, value: Any, *, low: float | None = None, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is not allowed: must be a finite number")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name}={value!r} is not allowed: must be {'>' if low_open else '>='} {low:g}")
    return value


def _bernoulli(p: Tensor, num_steps: int, generator) -> Tensor:
    """``[T, *p.shape]`` independent Bernoulli(p) draws, in ``p``'s dtype."""
    g = as_generator(generator, p.device)
    u = torch.rand((num_steps,) + tuple(p.shape), generator=g, device=p.device, dtype=p.dtype)
    return (u < p).to(p.dtype)


# ------------------------------------------------------------------------------------- encoders
def rate(
    data: Tensor,
    num_steps: int,
    gain: float = 1.0,
    offset: float = 0.0,
    generator: torch.Generator | int | None = None,
) -> Tensor:
    """Rate code: a Bernoulli spike per step with probability ``clamp(gain * data + offset, 0, 1)``.

    As in ``snntorch.spikegen.rate`` the probability is clamped, not checked.

    Args:
        data: any shape (usually ``[B, N]``), normally in [0, 1].
        num_steps: T, the number of steps (>= 1).
        gain, offset: affine map applied before clamping.
        generator: ``torch.Generator`` or int seed (None: torch's global RNG).

    Returns:
        spikes ``[T, *data.shape]`` of 0.0 / 1.0.
    """
    data = _float_data(data)
    num_steps = _num_steps(num_steps)
    gain = _number("gain", gain)
    offset = _number("offset", offset)
    p = (data * gain + offset).clamp(0.0, 1.0)
    return _bernoulli(p, num_steps, generator)


def poisson(
    data: Tensor,
    num_steps: int,
    dt: float = 1e-3,
    max_rate: float = 100.0,
    generator: torch.Generator | int | None = None,
) -> Tensor:
    """Poisson code: each input fires as a Poisson process at ``data * max_rate`` Hz.

    Sampled in steps of ``dt`` seconds: a step holds a spike with probability
    ``p = 1 - exp(-data * max_rate * dt)`` (the chance of at least one event; at most one spike per
    step), so the expected count over T steps is ``T * p ~ T * dt * rate`` for ``rate * dt << 1``.

    Args:
        data: any shape, values in [0, 1] (checked).
        num_steps: T (>= 1).
        dt: step length in seconds (> 0).
        max_rate: firing rate in Hz of an input equal to 1 (>= 0).
        generator: ``torch.Generator`` or int seed.

    Returns:
        spikes ``[T, *data.shape]`` of 0.0 / 1.0.
    """
    data = _float_data(data)
    num_steps = _num_steps(num_steps)
    dt = _number("dt", dt, low=0.0, low_open=True)
    max_rate = _number("max_rate", max_rate, low=0.0)
    _unit_range(data, "poisson data")
    p = -torch.expm1(-data * (max_rate * dt))
    return _bernoulli(p, num_steps, generator)


def _latency_times(
    data: Tensor,
    num_steps: int,
    threshold: float,
    tau: float,
    first_spike_time: int,
    normalize: bool,
    linear: bool,
    epsilon: float,
) -> Tensor:
    """Real-valued spike times (before rounding), the same arithmetic as snnTorch's latency code."""
    t0 = first_spike_time
    if linear:
        # t = tau * (1 - x), capped at the time of an input equal to the threshold
        scale = (num_steps - 1 - t0) if normalize else tau
        latest = -scale * (threshold - 1)
        return torch.clamp_max(-scale * (data - 1), latest) + t0
    # RC charging: v(t) = x (1 - exp(-t / tau)) reaches the threshold at t = tau ln(x / (x - thr))
    x = torch.clamp(data, threshold + epsilon)
    times = tau * torch.log(x / (x - threshold))
    if t0 > 0:
        times = times + t0
    if normalize:
        span = times - t0
        times = span * (num_steps - t0 - 1) / torch.max(span) + t0
    return times


def latency(
    data: Tensor,
    num_steps: int,
    threshold: float = 0.01,
    tau: float = 1.0,
    first_spike_time: int = 0,
    clip: bool = False,
    normalize: bool = False,
    linear: bool = False,
    epsilon: float = 1e-7,
) -> Tensor:
    """Latency (time-to-first-spike) code: one spike per input, earlier for larger inputs.

    Times, with ``x`` the input and ``t0 = first_spike_time``:

    - log code (default): ``t = tau * ln(x / (x - threshold)) + t0``, ``x`` floored at
      ``threshold + epsilon`` (so inputs at or below the threshold get the latest time);
      ``normalize``: ``t = (t - t0) * (T - 1 - t0) / max(t - t0) + t0``.
    - linear code: ``t = min(tau * (1 - x), tau * (1 - threshold)) + t0``; ``normalize`` sets
      ``tau = T - 1 - t0``.

    Times are rounded to whole steps (half to even, as ``torch.round``) and clamped to ``T - 1``.
    ``clip=True`` removes the spikes of inputs below ``threshold``.

    Args:
        data: any shape, values in [0, 1] (checked).
        num_steps: T (>= 1).
        threshold: in (0, 1).
        tau: time constant in steps (> 0; ignored by the linear code with ``normalize``).
        first_spike_time: earliest step, in [0, T - 1].
        clip, normalize, linear, epsilon: as above.

    Returns:
        spikes ``[T, *data.shape]``, exactly one 1.0 per input (none for clipped inputs).
    """
    data = _float_data(data)
    num_steps = _num_steps(num_steps)
    _unit_range(data, "latency data")
    threshold = _number("threshold", threshold)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold={threshold!r} is not allowed: must be in (0, 1)")
    tau = _number("tau", tau, low=0.0, low_open=True)
    epsilon = _number("epsilon", epsilon, low=0.0, low_open=True)
    if isinstance(first_spike_time, bool) or not isinstance(first_spike_time, int) or not 0 <= first_spike_time <= num_steps - 1:
        raise ValueError(
            f"first_spike_time={first_spike_time!r} is not allowed: must be an integer in [0, num_steps - 1 = {num_steps - 1}]"
        )

    times = _latency_times(data, num_steps, threshold, tau, first_spike_time, bool(normalize), bool(linear), epsilon)
    steps = torch.round(torch.clamp_max(times, num_steps - 1)).long()
    spikes = torch.zeros((num_steps,) + tuple(data.shape), dtype=data.dtype, device=data.device)
    spikes.scatter_(0, steps.unsqueeze(0), 1.0)
    if clip:
        spikes = spikes * (data >= threshold).to(data.dtype)
    return spikes


def delta(
    data: Tensor,
    threshold: float = 0.1,
    padding: bool = False,
    off_spike: bool = False,
) -> Tensor:
    """Delta (change) code of a time series ``data [T, ...]``.

    ``d[t] = data[t] - data[t-1]``, with ``data[-1] = 0`` (or ``data[-1] = data[0]`` when
    ``padding``, so the first step never fires). A spike ``+1`` where ``d[t] >= threshold``; with
    ``off_spike`` also ``-1`` where ``d[t] <= -threshold``. As ``snntorch.spikegen.delta``.

    Args:
        data: ``[T, ...]``, time first.
        threshold: > 0.

    Returns:
        spikes with ``data``'s shape, values in {0, 1} (or {-1, 0, 1} with ``off_spike``).
    """
    data = _float_data(data)
    if data.dim() < 1 or data.shape[0] < 1:
        raise ValueError(f"data must be a time series [T, ...] with T >= 1, got shape {tuple(data.shape)}")
    threshold = _number("threshold", threshold, low=0.0, low_open=True)
    first = data[:1] if padding else torch.zeros_like(data[:1])
    previous = torch.cat((first, data[:-1]), dim=0)
    change = data - previous
    spikes = (change >= threshold).to(data.dtype)
    if off_spike:
        spikes = spikes - (change <= -threshold).to(data.dtype)
    return spikes


def sequence(data: Tensor, num_steps: int, generator: torch.Generator | int | None = None) -> Tensor:
    """Spikes of sequences given flattened time-major: ``data [B, T * C]`` -> ``[T, B, C]``.

    ``data[b, t * C + c]`` is channel ``c`` at step ``t`` (the layout of a temporal
    :class:`~memsnn.experiments.datasets.Dataset`). Each value ``p`` gives a spike with
    probability ``clamp(p, 0, 1)`` at its step: values in {0, 1} are spikes and come out unchanged
    whatever the draw, values strictly between are Bernoulli probabilities (e.g. the pixel
    intensities of sequential Fashion-MNIST), drawn independently per value. As in :func:`rate`
    the probability is clamped, not checked: a test split scaled with the training split's
    statistics may leave [0, 1] slightly.

    Args:
        data: ``[B, T * C]``, normally in [0, 1].
        num_steps: T (>= 1); must divide the number of columns.
        generator: ``torch.Generator`` or int seed (None: torch's global RNG).

    Returns:
        spikes ``[T, B, C]`` of 0.0 / 1.0.
    """
    data = _float_data(data)
    num_steps = _num_steps(num_steps)
    if data.dim() != 2 or data.shape[1] % num_steps:
        raise ValueError(
            f"sequence data must be [batch, T * channels] with T = num_steps = {num_steps} dividing the columns, "
            f"got shape {tuple(data.shape)}"
        )
    steps = data.reshape(data.shape[0], num_steps, -1).transpose(0, 1).clamp(0.0, 1.0)
    g = as_generator(generator, data.device)
    u = torch.rand(steps.shape, generator=g, device=data.device, dtype=data.dtype)
    return (u < steps).to(data.dtype)  # u in [0, 1): p = 1 always fires, p = 0 never
