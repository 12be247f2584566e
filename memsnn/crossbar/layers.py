"""Synapse layers whose weights live on a crossbar.

:class:`CrossbarLinear` is an ``nn.Module`` computing ``y = x @ W`` (``x`` ``[B, in]``, ``y``
``[B, out]`` in weight units) through a :class:`~memsnn.crossbar.Crossbar`: input values drive the
row voltages, and the column currents, after read noise, IR drop and the periphery, are the output.
It is differentiable with respect to its input with a straight-through estimator: the backward
pass uses the noise-free effective weights the array holds now,

    dL/dx = dL/dy @ W_eff^T,

(the standard choice of analog-training simulators; quantisation and noise pass gradients
unchanged). With ``track_weight_grad=True`` it also accumulates ``dL/dW = x^T dL/dy`` into
``weight_grad`` (``[in, out]``), which in-situ training turns into programming pulses - the array's
weights are not ``nn.Parameter``s, because an optimiser cannot write them; only pulses can.

Global drift compensation (as in aihwkit's ``GlobalDriftCompensation``): right after programming,
:meth:`CrossbarLinear.calibrate_drift` reads the array with a reference input (every row at full
scale) and stores the summed absolute output. Later forwards read the reference again whenever the
array's clock or state changed and rescale the outputs by ``ref_then / ref_now``, a single digital
factor per layer that undoes the mean drift (not its device-to-device spread). Each reference read
counts as a read operation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .array import Crossbar

__all__ = ["CrossbarLinear"]

Tensor = torch.Tensor


class _CrossbarVMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, layer: "CrossbarLinear") -> Tensor:  # type: ignore[override]
        y = layer.crossbar.vmm(x.detach(), binary=layer.binary_inputs)
        ctx.layer = layer
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):  # type: ignore[override]
        layer: CrossbarLinear = ctx.layer
        (x,) = ctx.saved_tensors
        w = layer.effective_weight()
        if layer.track_weight_grad:
            g = x.detach().t().to(grad_y.dtype) @ grad_y
            layer.weight_grad = g if layer.weight_grad is None else layer.weight_grad + g
        grad_x = grad_y @ w.t().to(grad_y.dtype) if ctx.needs_input_grad[0] else None
        return grad_x, None


#: allowed values of ``compensate_drift``
DRIFT_MODES = (False, True, "global", "column")


class CrossbarLinear(nn.Module):
    """``y = x @ W`` on a crossbar; see the module docstring.

    Args:
        crossbar: the array holding ``W`` (``[in_features, out_features]``).
        bias: optional digital bias ``[out]`` (added after the ADC); ``None``: none.
        compensate_drift: drift compensation (call :meth:`calibrate_drift` after programming; it
            is called automatically on the first forward if not yet done): ``False`` (off),
            ``True`` or ``"global"`` (one digital gain for the layer: the all-inputs-on
            reference read then over now), or ``"column"`` (one gain per output column: each
            column's summed device conductances, both devices of each pair, then over now - the
            read of one column with every row at full scale, per array, averaged over repeats so
            noise-free). Per column undoes drift that differs between columns, e.g. because each
            column was last written at a different time (devices drift from their own last pulse);
            measured on in-situ STDP (digits, srtio3, 2 epochs): 72 % after training, after 1 h
            43 % with the global gain and 69 % with per-column gains.
        track_weight_grad: accumulate ``dL/dW`` into ``weight_grad`` during backward.
    """

    def __init__(self, crossbar: Crossbar, *, bias: Tensor | None = None, compensate_drift: bool = False,
                 track_weight_grad: bool = False):
        super().__init__()
        if not isinstance(crossbar, Crossbar):
            raise TypeError(f"crossbar must be a memsnn Crossbar, got {type(crossbar).__name__}")
        self.crossbar = crossbar
        self.in_features, self.out_features = crossbar.shape
        if bias is not None:
            bias = torch.as_tensor(bias, dtype=crossbar.dtype, device=crossbar.device)
            if bias.shape != (self.out_features,):
                raise ValueError(f"bias has shape {tuple(bias.shape)}, expected ({self.out_features},)")
        self.register_buffer("bias", bias)
        if compensate_drift not in DRIFT_MODES:
            raise ValueError(f"compensate_drift={compensate_drift!r} is not allowed: use one of "
                             f"{', '.join(map(repr, DRIFT_MODES))}")
        self.compensate_drift = compensate_drift
        self.track_weight_grad = track_weight_grad
        #: inputs are spikes (0 or x_max): lets the VMM get read-noise variances from the same GEMM
        self.binary_inputs = False
        self.weight_grad: Tensor | None = None
        self._ref0: float | Tensor | None = None
        self._ref_key: Any = None
        self._ref_factor = 1.0
        self._w_key: Any = None
        self._w: Tensor | None = None

    @classmethod
    def from_weight(cls, weight: Tensor, model="srtio3", *, method: str = "write_verify", scale: float | None = None,
                    bias: Tensor | None = None, compensate_drift: bool = False, program_kwargs: dict | None = None,
                    backend: str = "native", **crossbar_kwargs: Any) -> tuple["CrossbarLinear", Any]:
        """A layer whose crossbar is programmed with ``weight`` ``[in, out]``.

        ``scale`` defaults to ``max |weight|``; ``backend`` is ``"native"`` (:class:`Crossbar`) or
        ``"aihwkit"`` (:class:`~memsnn.interop.aihwkit_backend.AihwkitCrossbar`); returns
        ``(layer, program_report)``.
        """
        if weight.dim() != 2:
            raise ValueError(f"weight must be 2-D [in, out], got shape {tuple(weight.shape)}")
        if scale is None:
            scale = float(weight.detach().abs().max()) or 1.0
        from ..interop.aihwkit_backend import make_crossbar  # "native": a Crossbar; "aihwkit": an AnalogTile

        xbar = make_crossbar(weight.shape[0], weight.shape[1], model, backend=backend, scale=scale, **crossbar_kwargs)
        report = xbar.program(weight.detach().to(xbar.dtype), method=method, **(program_kwargs or {}))
        layer = cls(xbar, bias=bias, compensate_drift=compensate_drift)
        if compensate_drift:
            layer.calibrate_drift()
        return layer, report

    # ------------------------------------------------------------------------------------------------
    def _state_key(self) -> int:
        return self.crossbar.version

    def effective_weight(self) -> Tensor:
        """Noise-free weights ``[in, out]`` the array holds now (cached until its state changes)."""
        key = self._state_key()
        if key != self._w_key:
            self._w = self.crossbar.weights()
            self._w_key = key
        return self._w

    def _reference(self) -> float | Tensor:
        xbar = self.crossbar
        if self.compensate_drift == "column":
            gp, gm = xbar.conductances()
            total = gp.sum(dim=0)
            return total + gm.sum(dim=0) if gm is not None else total
        ref = torch.full((1, self.in_features), xbar.periphery.x_max, dtype=xbar.dtype, device=xbar.device)
        return float(xbar.vmm(ref).abs().sum())

    def calibrate_drift(self) -> float | Tensor:
        """Read the reference now (right after programming); returns it (a number, or ``[out]``
        per column)."""
        self._ref0 = self._reference()
        self._ref_key = self._state_key()
        self._ref_factor = 1.0
        return self._ref0

    def drift_factor(self) -> float | Tensor:
        """The current compensation factor: 1.0 when off, a number (global) or ``[out]`` gains
        (per column) that multiply the layer's output."""
        if not self.compensate_drift:
            return 1.0
        if self._ref0 is None:
            self.calibrate_drift()
        key = self._state_key()
        if key != self._ref_key:
            now = self._reference()
            if isinstance(now, Tensor):
                self._ref_factor = torch.where(now > 0, self._ref0 / now.clamp(min=1e-30), torch.ones_like(now))
            else:
                self._ref_factor = self._ref0 / now if now > 0 else 1.0
            self._ref_key = self._state_key()
        return self._ref_factor

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[B, in]`` -> ``[B, out]``."""
        scale = self.drift_factor()
        if self.track_weight_grad and torch.is_grad_enabled() and not x.requires_grad:
            x = x.detach().requires_grad_(True)  # so that backward reaches this layer's dL/dW
        y = _CrossbarVMM.apply(x, self)
        if isinstance(scale, Tensor) or scale != 1.0:
            y = y * scale.to(y.dtype) if isinstance(scale, Tensor) else y * scale
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        return f"{self.crossbar!r}, compensate_drift={self.compensate_drift}"
