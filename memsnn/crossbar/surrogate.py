"""Surrogate gradients: a Heaviside spike forward, a smooth derivative backward.

A spiking neuron fires when its membrane ``v`` exceeds its threshold ``theta``. With
``x = v - theta`` the spike is the step function

    forward:   S(x) = H(x) = 1 if x > 0 else 0          (exactly 0 at x = 0)

whose true derivative is zero almost everywhere. The backward pass replaces ``dS/dx`` with a
smooth bump ``sigma'(x)`` centred on the threshold (Neftci, Mostafa & Zenke 2019):

    backward:  dL/dx = dL/dS * sigma'(x)

The bumps offered here, each with one shape parameter (names and defaults as in snnTorch):

========================  ========================================================  ==========
factory                   sigma'(x)                                                 default
========================  ========================================================  ==========
``atan(alpha)``           ``(alpha / 2) / (1 + (pi / 2 * alpha * x)**2)``            alpha = 2
``fast_sigmoid(slope)``   ``1 / (slope * |x| + 1)**2``                              slope = 25
``triangular(width)``     ``max(0, 1 - |x| / width) / width``                       width = 1
========================  ========================================================  ==========

(``atan`` is the derivative of ``1/2 + arctan(pi/2 * alpha * x) / pi``; ``triangular`` has unit
area; note snnTorch's own ``triangular(threshold)`` uses a different parameterisation.)

Each factory returns a :class:`Surrogate`: call it on ``x`` to get spikes, or call
``.derivative(x)`` to evaluate ``sigma'(x)`` directly. :func:`get_surrogate` turns a name, a
:class:`Surrogate` or any callable ``grad(x) -> tensor`` into a :class:`Surrogate`;
:func:`spike_fn` is the one-line form ``spike_fn(x, "atan")``.
"""

from __future__ import annotations

import math
from typing import Callable, Union

import torch

__all__ = [
    "Surrogate",
    "SURROGATES",
    "atan",
    "fast_sigmoid",
    "triangular",
    "get_surrogate",
    "spike_fn",
]

Tensor = torch.Tensor
GradFn = Callable[[Tensor], Tensor]


class _HeavisideSurrogate(torch.autograd.Function):
    """Forward ``H(x)``; backward ``grad_output * derivative(x)``."""

    @staticmethod
    def forward(ctx, x: Tensor, derivative: GradFn) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * ctx.derivative(x), None


class Surrogate:
    """A spike function with a surrogate derivative.

    ``s = Surrogate(name, derivative, parameter)``; ``s(x)`` returns ``H(x)`` (1.0 where
    ``x > 0``, else 0.0, in ``x``'s dtype) and back-propagates ``grad * derivative(x)``.

    Args:
        name: a label (``"atan"``, ``"fast_sigmoid"``, ``"triangular"`` or ``"custom"``).
        derivative: ``sigma'(x)``, a function from a tensor to a tensor of the same shape.
        parameter: the shape parameter (alpha, slope or width), or None for a custom one.
    """

    __slots__ = ("name", "_derivative", "parameter")

    def __init__(self, name: str, derivative: GradFn, parameter: float | None = None):
        if not callable(derivative):
            raise TypeError(f"derivative={derivative!r} must be callable: grad(x) -> tensor")
        self.name = name
        self._derivative = derivative
        self.parameter = parameter

    def derivative(self, x: Tensor) -> Tensor:
        """``sigma'(x)``, the surrogate derivative used in the backward pass."""
        out = self._derivative(x)
        if not isinstance(out, Tensor):
            out = torch.as_tensor(out, dtype=x.dtype, device=x.device)
        return out

    def __call__(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"spike function input must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"spike function input must be floating point, got dtype {x.dtype}")
        return _HeavisideSurrogate.apply(x, self.derivative)

    def __repr__(self) -> str:
        if self.parameter is None:
            return f"Surrogate({self.name!r})"
        return f"Surrogate({self.name!r}, {self.parameter!r})"


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not allowed: must be a finite number > 0")
    return float(value)


def atan(alpha: float = 2.0) -> Surrogate:
    """Arctangent surrogate: ``sigma'(x) = (alpha / 2) / (1 + (pi / 2 * alpha * x)**2)``.

    Peak ``alpha / 2`` at the threshold; ``alpha`` > 0 sets how narrow the bump is.
    """
    alpha = _positive("alpha", alpha)

    def derivative(x: Tensor) -> Tensor:
        return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)

    return Surrogate("atan", derivative, alpha)


def fast_sigmoid(slope: float = 25.0) -> Surrogate:
    """Fast-sigmoid surrogate (SuperSpike): ``sigma'(x) = 1 / (slope * |x| + 1)**2``.

    Peak 1 at the threshold; ``slope`` > 0 sets how fast it falls off.
    """
    slope = _positive("slope", slope)

    def derivative(x: Tensor) -> Tensor:
        return 1.0 / (slope * x.abs() + 1.0) ** 2

    return Surrogate("fast_sigmoid", derivative, slope)


def triangular(width: float = 1.0) -> Surrogate:
    """Triangular surrogate: ``sigma'(x) = max(0, 1 - |x| / width) / width`` (unit area).

    Non-zero only for ``|x| < width``; peak ``1 / width`` at the threshold.
    """
    width = _positive("width", width)

    def derivative(x: Tensor) -> Tensor:
        return (1.0 - x.abs() / width).clamp_min(0.0) / width

    return Surrogate("triangular", derivative, width)


#: name -> factory; the names :func:`get_surrogate` (and ``LIFParams.surrogate``) accept.
SURROGATES: dict[str, Callable[..., Surrogate]] = {
    "atan": atan,
    "fast_sigmoid": fast_sigmoid,
    "triangular": triangular,
}

SurrogateSpec = Union[str, Surrogate, GradFn]


def get_surrogate(spec: SurrogateSpec = "atan", parameter: float | None = None) -> Surrogate:
    """Resolve ``spec`` into a :class:`Surrogate`.

    Args:
        spec: a name (``"atan"``, ``"fast_sigmoid"``, ``"triangular"``), a :class:`Surrogate`
            (returned as is), or any callable ``grad(x) -> tensor`` giving ``sigma'(x)``
            (wrapped as a ``"custom"`` surrogate).
        parameter: the shape parameter passed to a named factory (alpha / slope / width);
            None uses the factory's default. Only allowed with a name.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
        TypeError: ``spec`` is none of the above.
    """
    if isinstance(spec, str):
        factory = SURROGATES.get(spec.lower())
        if factory is None:
            raise ValueError(
                f"unknown surrogate {spec!r}: valid names are {', '.join(repr(k) for k in SURROGATES)}"
            )
        return factory() if parameter is None else factory(parameter)
    if parameter is not None:
        raise ValueError(
            f"parameter={parameter!r} applies only to a surrogate given by name, not to {spec!r}"
        )
    if isinstance(spec, Surrogate):
        return spec
    if callable(spec):
        return Surrogate("custom", spec)
    raise TypeError(
        f"surrogate={spec!r} must be a name ({', '.join(SURROGATES)}), a Surrogate or a "
        f"callable grad(x) -> tensor"
    )


def spike_fn(x: Tensor, surrogate: SurrogateSpec = "atan") -> Tensor:
    """``H(x)`` forward (1.0 where ``x > 0``), ``sigma'(x)`` of ``surrogate`` backward.

    ``x`` is the membrane minus the threshold.
    """
    return get_surrogate(surrogate)(x)
