"""Weights <-> conductances (science.md section 2).

Differential pair (default)::

    w = scale * (G_plus - G_minus) / (g_max - g_min)

A weight in ``[-scale, scale]`` is written one-sided (``pair_mode="one_sided"``, the default): a
positive weight raises ``G_plus`` above ``g_min`` and leaves ``G_minus`` at ``g_min``, a negative
one the other way round - the natural start for SET-only updates. ``pair_mode="balanced"`` writes
both devices around the middle of the window, ``G_plus/minus = g_mid +- w / scale * window / 2``,
so that both can move either way - the start bipolar updates need (a RESET on a device already at
``g_min`` does nothing). Potentiation is a SET on ``G_plus`` or a RESET on ``G_minus``.

Single device against a reference column (``mapping="reference"``)::

    w = scale * (G - G_ref) / ((g_max - g_min) / 2),    G_ref = (g_min + g_max) / 2

so the device's whole window spans ``[-scale, scale]``; each tile has one column of reference
devices programmed to ``G_ref``, whose current is subtracted from every column of that tile.

Single device for a non-negative weight (``mapping="unipolar"``, e.g. STDP with weights in
``[0, scale]``)::

    w = scale * (G - G_ref) / (g_max - g_min),    G_ref = g_min

with a reference column at ``g_min`` per tile; negative weights are clipped to 0.

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
MAPPINGS = ("differential", "reference", "unipolar")


def _check_mapping(mapping: str) -> None:
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping={mapping!r} is not allowed: use one of {', '.join(map(repr, MAPPINGS))}")


def weights_to_conductances(
    w: Tensor, *, scale: float, g_min: float, g_max: float, mapping: str = "differential", balanced: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Target conductances (S) for weights ``w`` ``[in, out]``; weights beyond +-scale are clipped.

    Returns ``(g_plus, g_minus)`` for the differential pair, ``(g, None)`` for the single-device
    mappings.
    """
    _check_mapping(mapping)
    if not scale > 0:
        raise ValueError(f"scale={scale!r} must be > 0")
    window = g_max - g_min
    u = (w / scale).clamp(-1.0, 1.0)
    if mapping == "differential":
        if balanced:
            mid = (g_min + g_max) / 2
            return mid + u * (window / 2), mid - u * (window / 2)
        return g_min + u.clamp(min=0) * window, g_min + (-u).clamp(min=0) * window
    if mapping == "unipolar":
        return g_min + u.clamp(min=0) * window, None
    return (g_min + g_max) / 2 + u * (window / 2), None


def conductances_to_weights(
    g_plus: Tensor, g_minus: Tensor, *, scale: float, g_min: float, g_max: float, mapping: str = "differential"
) -> Tensor:
    """Weights from conductances. For the single-device mappings ``g_minus`` is the reference
    conductance (broadcastable to ``g_plus``)."""
    _check_mapping(mapping)
    window = g_max - g_min
    if mapping in ("differential", "unipolar"):
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
