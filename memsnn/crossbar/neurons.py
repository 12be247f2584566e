"""Discrete-time leaky integrate-and-fire (LIF) neurons, Norse style.

The pieces: :class:`LIFParams` (frozen, self-validating), :class:`LIFState` (a NamedTuple of
``[B, N]`` tensors), the pure step function :func:`lif_step`, and :class:`LIF`, a thin
``nn.Module`` that loops :func:`lif_step` over ``[T, B, N]`` input currents. Plus the two
read-outs that local learning rules use: :func:`exponential_trace` and :func:`first_spike_times`.

One step (``v``, ``refrac``, ``a`` are the state before the step, ``I`` the input current)::

    v'     = beta * v + I                      where refrac == 0
    v'     = 0                                 where refrac >  0 (held at rest, input ignored)
    theta  = threshold + a                     (adaptive threshold)
    s      = H(v' - theta)                     (1 where v' > theta; surrogate gradient backward)
    v_new  = v' - sg(s) * theta                reset = "subtract"
           = v' * (1 - sg(s))                  reset = "zero"
           = v'                                reset = "none"
    refrac_new = refractory                    where s == 1
               = max(refrac - 1, 0)            elsewhere
    a_new  = adapt_decay * a + adapt_increment * s

``sg`` is stop-gradient: the reset uses the detached spike (snnTorch's default), so gradients
flow only through the spike output and the membrane leak, not through the reset. ``beta =
exp(-dt / tau_mem)`` (:meth:`LIFParams.from_tau`). With ``refractory = r`` a neuron that fires at
step ``t`` is held at 0 for steps ``t+1 .. t+r`` and integrates again from ``t+r+1``. The
adaptation ``a`` starts at 0 and is the only place a spike affects later thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, NamedTuple

import torch
from torch import nn

from ..params import ParameterError, Params, param
from .surrogate import SURROGATES, Surrogate, get_surrogate

__all__ = [
    "LIFParams",
    "LIFState",
    "lif_step",
    "LIF",
    "exponential_trace",
    "first_spike_times",
]

Tensor = torch.Tensor

RESETS = ("subtract", "zero", "none")


@dataclass(frozen=True)
class LIFParams(Params):
    """Parameters of a discrete-time LIF neuron (see the module docstring for the equations)."""

    _owner = "LIF"

    beta: float = param(0.9, unit="1", check="prob", doc="membrane decay per step, beta = exp(-dt / tau_mem)")
    threshold: float = param(1.0, unit="current units", check=">0", doc="firing threshold of the membrane")
    reset: str = param("subtract", check=None, choices=RESETS, doc="what a spike does to the membrane")
    refractory: int = param(0, unit="steps", check="int>=0", doc="steps the membrane is held at 0 after a spike (inputs ignored)")
    adapt_increment: float = param(0.0, unit="current units", check=">=0", doc="threshold increase per spike (0: no adaptation)")
    adapt_decay: float = param(0.9, unit="1", check="prob", doc="decay per step of the threshold increase a")
    surrogate: str = param("atan", check=None, choices=tuple(SURROGATES), doc="surrogate gradient of the spike (surrogate.py)")
    surrogate_slope: float = param(2.0, unit="1", check=">0", doc="surrogate shape parameter: atan alpha, fast_sigmoid slope (snnTorch uses 25), triangular width")

    @classmethod
    def from_tau(cls, tau_mem: float, dt: float, **kw: Any) -> "LIFParams":
        """Parameters with ``beta = exp(-dt / tau_mem)``; ``tau_mem`` and ``dt`` in seconds (> 0)."""
        errors = []
        for name, value in (("tau_mem", tau_mem), ("dt", dt)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                errors.append(f"{name}={value!r} is not allowed: must be a finite number > 0 s")
        if "beta" in kw:
            errors.append("beta is set by from_tau(tau_mem, dt); do not pass it too")
        if errors:
            raise ParameterError(errors, cls._owner)
        return cls(beta=math.exp(-dt / tau_mem), **kw)

    def spike_function(self) -> Surrogate:
        """The :class:`~memsnn.crossbar.surrogate.Surrogate` named by ``surrogate``/``surrogate_slope``."""
        return _cached_surrogate(self.surrogate, float(self.surrogate_slope))

    def _cross_checks(self) -> Iterator[str]:
        return iter(())


@lru_cache(maxsize=64)
def _cached_surrogate(name: str, slope: float) -> Surrogate:
    return get_surrogate(name, slope)


class LIFState(NamedTuple):
    """State of a population of LIF neurons; every field has the shape of one step's input
    (``[B, N]``)."""

    v: Tensor
    """membrane potential (after the reset of the last step)"""
    refrac: Tensor
    """remaining refractory steps (int32)"""
    a: Tensor
    """adaptive threshold increase (the threshold is ``threshold + a``)"""

    @classmethod
    def zeros_like(cls, x: Tensor) -> "LIFState":
        """The resting state for inputs shaped (and typed, placed) like ``x``."""
        return cls(
            v=torch.zeros_like(x),
            refrac=torch.zeros(x.shape, dtype=torch.int32, device=x.device),
            a=torch.zeros_like(x),
        )


def _check_current(current: Any, name: str = "current") -> None:
    if not isinstance(current, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(current).__name__}")
    if not current.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {current.dtype}")
    if torch.isnan(current).any():
        raise ValueError(f"{name} contains NaN ({int(torch.isnan(current).sum())} of {current.numel()} values)")


def _check_state(state: Any, shape: torch.Size) -> LIFState:
    if not isinstance(state, tuple) or len(state) != 3:
        raise TypeError(f"state must be a LIFState(v, refrac, a) or None, got {type(state).__name__}")
    state = LIFState(*state)
    for field, t in zip(LIFState._fields, state):
        if not isinstance(t, Tensor):
            raise TypeError(f"state.{field} must be a torch.Tensor, got {type(t).__name__}")
        if t.shape != shape:
            raise ValueError(
                f"state.{field} has shape {tuple(t.shape)} but the input current has shape "
                f"{tuple(shape)}; they must match"
            )
    return state


def lif_step(
    current: Tensor,
    state: LIFState | None = None,
    p: LIFParams | None = None,
    *,
    check: bool = True,
) -> tuple[Tensor, LIFState]:
    """One time step of a population of LIF neurons (equations in the module docstring).

    Args:
        current: input current of this step, ``[B, N]`` (any shape works; the state matches it).
        state: the state before the step; None starts at rest (all zeros).
        p: parameters; None uses ``LIFParams()``.
        check: validate ``current`` (type, NaN) and ``state`` (shapes). The :class:`LIF` module
            checks the whole ``[T, B, N]`` input once and turns this off (a NaN check costs a
            device sync per step).

    Returns:
        ``(spikes, new_state)``; ``spikes`` has ``current``'s shape and dtype, values 0.0 / 1.0.
    """
    if p is None:
        p = LIFParams()
    elif not isinstance(p, LIFParams):
        raise TypeError(f"p must be LIFParams, got {type(p).__name__}")
    if check:
        _check_current(current)
    if state is None:
        state = LIFState.zeros_like(current)
    elif check:
        state = _check_state(state, current.shape)
    v, refrac, a = state

    integrating = refrac <= 0
    v_pre = torch.where(integrating, p.beta * v + current, torch.zeros_like(current))
    theta = p.threshold + a
    spikes = p.spike_function()(v_pre - theta)

    s = spikes.detach()
    if p.reset == "subtract":
        v_new = v_pre - s * theta
    elif p.reset == "zero":
        v_new = v_pre * (1.0 - s)
    else:  # "none"
        v_new = v_pre

    fired = s > 0
    refrac_new = torch.where(fired, torch.full_like(refrac, int(p.refractory)), (refrac - 1).clamp_min(0))
    a_new = p.adapt_decay * a + p.adapt_increment * spikes
    return spikes, LIFState(v_new, refrac_new, a_new)


class LIF(nn.Module):
    """A population of LIF neurons run over time: a thin loop over :func:`lif_step`.

    Args:
        params: :class:`LIFParams`; None uses the defaults.
        return_membrane: also return the membrane ``v`` (after reset) at every step.
        **overrides: fields of :class:`LIFParams` to change, e.g. ``LIF(beta=0.8, reset="zero")``.

    ``forward(currents [T, B, N], state=None)`` returns ``(spikes [T, B, N], final_state)``, or
    ``(spikes, final_state, membrane [T, B, N])`` when ``return_membrane`` is on.
    """

    def __init__(self, params: LIFParams | None = None, *, return_membrane: bool = False, **overrides: Any):
        super().__init__()
        self.params = LIFParams.resolve(params, overrides)
        self.return_membrane = bool(return_membrane)

    def forward(self, currents: Tensor, state: LIFState | None = None, *, return_membrane: bool | None = None):
        _check_current(currents, "currents")
        if currents.dim() < 2:
            raise ValueError(
                f"currents must be time first, [T, B, N]; got shape {tuple(currents.shape)}"
            )
        if state is not None:
            state = _check_state(state, currents.shape[1:])
        want_v = self.return_membrane if return_membrane is None else bool(return_membrane)
        spikes, membrane = [], []
        for t in range(currents.shape[0]):
            s, state = lif_step(currents[t], state, self.params, check=False)
            spikes.append(s)
            if want_v:
                membrane.append(state.v)
        if state is None:  # T == 0
            state = LIFState.zeros_like(currents.new_zeros(currents.shape[1:]))
        out = torch.stack(spikes) if spikes else currents.new_zeros(currents.shape)
        if want_v:
            v = torch.stack(membrane) if membrane else currents.new_zeros(currents.shape)
            return out, state, v
        return out, state

    def extra_repr(self) -> str:
        p = self.params
        return (
            f"beta={p.beta:g}, threshold={p.threshold:g}, reset={p.reset!r}, refractory={p.refractory}, "
            f"adapt_increment={p.adapt_increment:g}, surrogate={p.surrogate}({p.surrogate_slope:g})"
        )


def _check_spikes(spikes: Any) -> None:
    if not isinstance(spikes, Tensor):
        raise TypeError(f"spikes must be a torch.Tensor [T, B, N], got {type(spikes).__name__}")
    if spikes.dim() < 1:
        raise ValueError("spikes must be time first, [T, B, N]; got a scalar")
    if spikes.is_floating_point() and torch.isnan(spikes).any():
        raise ValueError("spikes contain NaN")


def exponential_trace(spikes: Tensor, tau_steps: float) -> Tensor:
    """Exponentially decaying spike trace, the pre/post trace of local learning rules.

    ``x[t] = x[t-1] * exp(-1 / tau_steps) + spikes[t]`` with ``x[-1] = 0``.

    Args:
        spikes: ``[T, B, N]`` (time first; any trailing shape).
        tau_steps: time constant in steps, > 0 (``math.inf``: a running count).

    Returns:
        traces ``[T, B, N]`` (floating point; ``spikes``' dtype if it is floating).
    """
    _check_spikes(spikes)
    if isinstance(tau_steps, bool) or not isinstance(tau_steps, (int, float)) or math.isnan(tau_steps) or tau_steps <= 0:
        raise ValueError(f"tau_steps={tau_steps!r} is not allowed: must be a number > 0 (steps)")
    x_in = spikes if spikes.is_floating_point() else spikes.to(torch.get_default_dtype())
    decay = math.exp(-1.0 / tau_steps)
    out = torch.empty_like(x_in)
    if x_in.shape[0] == 0:
        return out
    x = x_in[0]
    out[0] = x
    for t in range(1, x_in.shape[0]):
        x = x * decay + x_in[t]
        out[t] = x
    return out


def first_spike_times(spikes: Tensor) -> Tensor:
    """Index of each neuron's first spike; ``T`` where it never fires.

    Args:
        spikes: ``[T, B, N]`` (time first; any trailing shape); any non-zero value is a spike.

    Returns:
        ``[B, N]`` float tensor of step indices in ``[0, T]``.
    """
    _check_spikes(spikes)
    T = spikes.shape[0]
    dtype = spikes.dtype if spikes.is_floating_point() else torch.get_default_dtype()
    steps = torch.arange(T, device=spikes.device, dtype=dtype).reshape((T,) + (1,) * (spikes.dim() - 1))
    never = torch.tensor(float(T), device=spikes.device, dtype=dtype)
    times = torch.where(spikes != 0, steps, never)
    if T == 0:
        return torch.full(spikes.shape[1:], float(T), device=spikes.device, dtype=dtype)
    return times.amin(dim=0)
