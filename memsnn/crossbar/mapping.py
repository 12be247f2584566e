"""Weights <-> conductances (science.md section 2).

Differential pair (default)::

    w = scale * (G_plus - G_minus) / (g_max - g_min)

A weight in ``[-scale, scale]`` is written one-sided: a positive weight raises ``G_plus`` above
``g_min`` and leaves ``G_minus`` at ``g_min``, a negative one the other way round. Potentiation is a
SET on ``G_plus`` or a RESET on ``G_minus``.

Single device against a reference column (``mapping="reference"``)::

    w = scale * (G - G_ref) / ((g_max - g_min) / 2),    G_ref = (g_min + g_max) / 2

so the device's whole window spans ``[-scale, scale]``; each tile has one column of reference
devices programmed to ``G_ref``, whose current is subtracted from every column of that tile.

``g_min`` / ``g_max`` are the preset's nominal window: the periphery cannot know each device's own
bounds, so devices whose bounds differ (d2d spread) carry a weight error, as in hardware.

Layout: conductances and crossbar weights are ``[rows = inputs, cols = outputs]``;
``nn.Linear.weight`` is ``[out, in]`` - convert with :func:`from_linear_weight` /
:func:`to_linear_weight` (a transpose, never implicit).
"""

from __future__ import annotations

import torch

__all__ = [
    "MAPPINGS", "weights_to_conductances", "conductances_to_weights",
    "from_linear_weight", "to_linear_weight",
]

Tensor = torch.Tensor
MAPPINGS = ("differential", "reference")


def _check_mapping(mapping: str) -> None:
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping={mapping!r} is not allowed: use one of {', '.join(map(repr, MAPPINGS))}")


def weights_to_conductances(
    w: Tensor, *, scale: float, g_min: float, g_max: float, mapping: str = "differential"
) -> tuple[Tensor, Tensor | None]:
    """Target conductances (S) for weights ``w`` ``[in, out]``; weights beyond +-scale are clipped.

    Returns ``(g_plus, g_minus)`` for the differential pair, ``(g, None)`` for the reference mapping.
    """
    _check_mapping(mapping)
    if not scale > 0:
        raise ValueError(f"scale={scale!r} must be > 0")
    window = g_max - g_min
    u = (w / scale).clamp(-1.0, 1.0)
    if mapping == "differential":
        return g_min + u.clamp(min=0) * window, g_min + (-u).clamp(min=0) * window
    return (g_min + g_max) / 2 + u * (window / 2), None


def conductances_to_weights(
    g_plus: Tensor, g_minus: Tensor, *, scale: float, g_min: float, g_max: float, mapping: str = "differential"
) -> Tensor:
    """Weights from conductances. For ``reference``, ``g_minus`` is the reference conductance
    (broadcastable to ``g_plus``)."""
    _check_mapping(mapping)
    window = g_max - g_min
    if mapping == "differential":
        return scale * (g_plus - g_minus) / window
    return scale * (g_plus - g_minus) / (window / 2)


def from_linear_weight(weight: Tensor) -> Tensor:
    """``nn.Linear.weight`` ``[out, in]`` -> crossbar weights ``[in, out]``."""
    if weight.dim() != 2:
        raise ValueError(f"nn.Linear weight must be 2-D [out, in], got shape {tuple(weight.shape)}")
    return weight.detach().t().contiguous()


def to_linear_weight(w: Tensor) -> Tensor:
    """Crossbar weights ``[in, out]`` -> ``nn.Linear.weight`` layout ``[out, in]``."""
    if w.dim() != 2:
        raise ValueError(f"crossbar weights must be 2-D [in, out], got shape {tuple(w.shape)}")
    return w.t().contiguous()
