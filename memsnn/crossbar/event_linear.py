"""Event-driven float synapses: a spiking layer's ``x @ W.T`` summed over the active inputs only.

A spiking layer's inputs are spikes, mostly zeros (20 % of the inputs and 3 % of the hidden
spikes in ``benchmarks/snn_vs_snntorch.py``). A dense GEMM multiplies every zero; this CPU kernel
(numba) sums, per input vector ``b``, the weight rows of its non-zero inputs::

    y[b, :] = sum_{i : x[b, i] != 0} x[b, i] * Wt[i, :]        Wt = W.T  [in, out], contiguous

the same products as ``x @ W.T``, summed in increasing ``i`` in groups of four: the result
agrees with the GEMM to float rounding, and does not depend on how the rows are batched or split
over threads (every row is summed the same way), so a per-step network (``B`` rows a call) and a
multi-step one (``T * B`` rows) get bitwise the same currents. Its cost grows with the active
inputs; the GEMM's does not. Measured on this project's 2-core CPU, ``[6400, 784] @ [784, 512]``
float32 (``benchmarks/snn_vs_snntorch.py``'s first layer, 2 threads): 3 % active 4.8 ms against
MKL's 39 ms, 20 % 16 ms against 29 ms, 30 % 23 ms against 29 ms, 50 % 44 ms against 30 ms.

:class:`EventLinear` is an ``nn.Linear`` (the same parameters and ``state_dict``; the default
synapse of :class:`~memsnn.crossbar.network.SpikingNetwork`) that chooses per call: the kernel
when the inputs' density, estimated on up to :data:`SAMPLE_ROWS` evenly spaced rows, is at most
:data:`MAX_DENSITY`; otherwise (and on other devices, other dtypes, or ``spike_read="dense"``)
``nn.Linear``'s GEMM. Gradients flow: the backward is the dense one (``dL/dx = g W``,
``dL/dW = g.T x``), so surrogate-gradient training gets the cheaper forward with the same
gradients. Module hooks fire as for any layer. The kernel reads ``W.T``, made per call; inside
:func:`frozen_weights` (a per-step network's forward: ``T`` calls a layer) it is made once. The kernel reuses the event-driven crossbar read's
row gather (:func:`~memsnn.crossbar.read_kernel.spike_read`), without its tiles, noise and ADC.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import numba
import numpy as np
import torch
from torch import nn

from .read_kernel import _JIT, _active, _gather, run_rows

__all__ = ["EventLinear", "event_mm", "frozen_weights", "uses_events", "weight_t", "MAX_DENSITY", "SAMPLE_ROWS",
           "SPIKE_READS"]

Tensor = torch.Tensor

MAX_DENSITY = 0.3  # above it the GEMM is as fast (break-even measured at 35-40 % active, 1 and 2 threads)
SAMPLE_ROWS = 32  # rows whose non-zeros estimate a call's density (evenly spaced, so deterministic)
SPIKE_READS = ("sparse", "dense")


@numba.njit(**_JIT)
def _event_rows(x, wt, out, b0, b1):
    """Rows ``b0 .. b1 - 1`` of :func:`event_mm`."""
    n_in = x.shape[1]
    idx = np.empty(n_in, np.int64)
    for b in range(b0, b1):
        xb = x[b]
        na = _active(xb, idx)
        acc = out[b]
        acc[:] = 0
        _gather(acc, wt, xb, idx, 0, na, 0, False)


def event_mm(x: Tensor, wt: Tensor, out: Tensor | None = None, threads: int | None = None) -> Tensor:
    """``x @ wt`` summed over the non-zero entries of each row of ``x`` (see the module docstring).

    Args:
        x: ``[B, in]`` contiguous CPU float32 / float64 inputs (any values; fast when mostly 0).
        wt: ``[in, out]`` contiguous weights of ``x``'s dtype (a layer's ``weight.T``).
        out: ``[B, out]`` contiguous result (new if ``None``).
        threads: row ranges computed at once (default ``torch.get_num_threads()``); the result
            does not depend on it.
    Returns ``out`` ``[B, out]``.
    """
    if x.dim() != 2 or wt.dim() != 2 or x.shape[1] != wt.shape[0]:
        raise ValueError(f"event_mm needs x [B, in] and wt [in, out]; got {tuple(x.shape)} and {tuple(wt.shape)}")
    if x.dtype != wt.dtype or x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"event_mm needs float32 or float64 operands of one dtype; got {x.dtype} and {wt.dtype}")
    if x.device.type != "cpu" or wt.device.type != "cpu" or not (x.is_contiguous() and wt.is_contiguous()):
        raise ValueError("event_mm needs contiguous CPU tensors")
    B, n_out = x.shape[0], wt.shape[1]
    if out is None:
        out = torch.empty((B, n_out), dtype=x.dtype)
    elif tuple(out.shape) != (B, n_out) or out.dtype != x.dtype or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous {x.dtype} tensor of shape ({B}, {n_out}); got {tuple(out.shape)}")
    args = (x.numpy(), wt.numpy(), out.numpy())
    run_rows(_event_rows, args, B, B * (x.shape[1] + n_out), threads)
    return out


def weight_t(layer: nn.Linear) -> Tensor:
    """``layer.weight.T`` as a contiguous tensor ``[in, out]`` (what :func:`event_mm` reads)."""
    return layer.weight.detach().t().contiguous()


class _EventLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, wt: Tensor):  # type: ignore[override]
        ctx.save_for_backward(x, w)
        return event_mm(x.detach(), wt)

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        gx = g @ w if ctx.needs_input_grad[0] else None
        gw = g.t() @ x if ctx.needs_input_grad[1] else None
        return gx, gw, None


def _density(x: Tensor) -> float:
    """The fraction of non-zero entries on up to :data:`SAMPLE_ROWS` evenly spaced rows of ``x``
    (numpy: a torch op here would leave its OpenMP threads spinning on the cores the kernel's
    threads then need, measured at 4-9 ms a call on 2 cores)."""
    xn = x.detach().numpy()
    B = xn.shape[0]
    rows = xn if B <= SAMPLE_ROWS else xn[np.linspace(0, B - 1, SAMPLE_ROWS).astype(np.int64)]
    return np.count_nonzero(rows) / max(1, rows.size)


def uses_events(x: Tensor, layer: nn.Linear, spike_read: str = "sparse") -> bool:
    """Whether ``x`` ``[B, in]`` is read event-driven through ``layer``: ``spike_read="sparse"``,
    CPU float32 / float64 operands of one dtype, and at most :data:`MAX_DENSITY` of the
    (sampled) inputs non-zero."""
    if spike_read not in SPIKE_READS:
        raise ValueError(f"spike_read={spike_read!r} is not allowed: use one of {', '.join(map(repr, SPIKE_READS))}")
    w = layer.weight
    return (spike_read == "sparse" and x.dim() == 2 and x.device.type == "cpu" and w.device.type == "cpu"
            and x.dtype == w.dtype and x.dtype in (torch.float32, torch.float64) and x.shape[0] > 0
            and _density(x) <= MAX_DENSITY)


class EventLinear(nn.Linear):
    """``nn.Linear`` whose CPU forward reads sparse inputs event-driven (see the module docstring).

    Attributes:
        spike_read: ``"sparse"`` (default: the event-driven kernel where :func:`uses_events`) or
            ``"dense"`` (always ``nn.Linear``'s GEMM).
    """

    spike_read = "sparse"
    _frozen_wt: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1]) if x.dim() != 2 else x
        if x.dim() == 0 or not uses_events(flat, self, self.spike_read):
            return super().forward(x)
        wt = self._frozen_wt if self._frozen_wt is not None else weight_t(self)
        y = _EventLinear.apply(flat.contiguous(), self.weight, wt)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features) if x.dim() != 2 else y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", spike_read={self.spike_read!r}"


@contextmanager
def frozen_weights(layers: Iterable[nn.Module]) -> Iterator[None]:
    """Within the block, each :class:`EventLinear` of ``layers`` reads the transpose of its weight
    as it was on entry (made once, not per call): for a forward pass that calls a layer many times
    and does not change its weights."""
    event = [m for m in layers if isinstance(m, EventLinear)]
    for m in event:
        m._frozen_wt = weight_t(m)
    try:
        yield
    finally:
        for m in event:
            m._frozen_wt = None
