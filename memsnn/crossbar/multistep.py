"""LIF neurons over all ``T`` time steps at once: the fast time loop of multi-step execution.

A feed-forward layer's synaptic currents for every time step come from one VMM
(:class:`~memsnn.crossbar.network.SpikingNetwork`, ``mode="multi"``); what is left per step is the
neurons' recurrence, which is elementwise. :func:`run_lif` runs it over ``[T, B, N]`` currents and
returns the spikes and the membrane (after reset) ``[T, B, N]``, the same numbers as looping
:func:`~memsnn.crossbar.neurons.lif_step` (:func:`run_lif_steps`, kept as the reference):

- no gradient needed: 3-4 in-place ops per step into preallocated ``[T, B, N]`` outputs (no
  per-step allocation, no refractory or adaptation bookkeeping when those are off);
- gradient needed: a custom autograd function with the same forward loop and a hand-written
  backward, the reverse recursion of the LIF equations (the reset uses the detached spike, as in
  :func:`lif_step`)::

      dL/du[t] = dL/ds[t] * sigma'(u[t] - theta) + (dL/dv[t] + beta * dL/du[t+1]) * dv/du[t]
      dv/du[t] = 1 (reset "subtract" / "none"),  1 - s[t] (reset "zero");   dL/dI[t] = dL/du[t]

  with ``u[t] = beta v[t-1] + I[t]`` the membrane before the reset. Autograd through the step loop
  builds ~10 graph nodes per step; this is two ops per step backward.

The fast path covers neurons without refractory period and without threshold adaptation
(``refractory == 0``, ``adapt_increment == 0``: every preset network in this project); others
fall back to :func:`run_lif_steps`. Forward results are bitwise those of the step loop (the same
float operations in the same order: ``beta * v`` then ``+ I``; ``u - s * theta`` with ``s`` 0/1);
input gradients agree to float rounding (autograd sums the same terms in another order).

On the CPU both loops are numba kernels (``_NUMBA_LOOPS``): one pass over blocks of ``_BLOCK``
neurons (a block's time loop runs while its rows stay in cache), with the torch loops' float
operations in the same order, so the numbers are bitwise theirs (tested on float32 / float64,
every reset, one and two threads); without a backward coming, ``u`` is not kept. Other
devices run the torch loops.

Measured (``benchmarks/lif_kernels.py``, ``[50, 128, 512]``): on the AMD 2-core VM the step loop
22 ms, the torch loop 4.7 ms, the same under ``torch.jit.script`` 4.3 ms (within noise, so no
TorchScript); on the Intel 2-core VM, one thread, the torch loop 9.6 ms and with backward 36.7 ms,
the numba loops 5.0 ms (4.1 ms of it the kernel on filled buffers: the pass over ~40 MB is
memory-bound) and 29.1 ms with backward (the surrogate's torch ops are the rest).
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from .neurons import LIFParams, LIFState, lif_step
from .read_kernel import _JIT, dt_scalar, run_rows

__all__ = ["run_lif", "run_lif_steps", "leaky_integrate", "fast_path_applies"]

Tensor = torch.Tensor


def fast_path_applies(p: LIFParams) -> bool:
    """True when :func:`run_lif` can use its fused loop for neurons ``p``."""
    return p.refractory == 0 and p.adapt_increment == 0.0


def run_lif_steps(cur: Tensor, p: LIFParams) -> tuple[Tensor, Tensor]:
    """Reference: :func:`lif_step` looped over ``cur`` ``[T, B, N]``; returns spikes and the
    membrane after reset, both ``[T, B, N]``."""
    state: LIFState | None = None
    spikes, mems = [], []
    for t in range(cur.shape[0]):
        s, state = lif_step(cur[t], state, p, check=False)
        spikes.append(s)
        mems.append(state.v)
    return torch.stack(spikes), torch.stack(mems)


#: CPU loops in one numba pass over ``[T, B * N]`` (the same float operations in the same order as
#: the torch loops below, so bitwise the same numbers); False: the torch loops (for A/B tests)
_NUMBA_LOOPS = True
#: neurons per block of the numba loops: a block's ``[T, block]`` recursion stays in the core's cache
_BLOCK = 2048
_RESETS = {"subtract": 0, "zero": 1, "none": 2}


@numba.njit(**_JIT)
def _lif_cols(cur, beta, thr, reset, spikes, v, u, k0, k1):
    """Blocks ``k0 .. k1 - 1`` of ``_BLOCK`` neurons of the forward loop (see :func:`_forward_loop`);
    ``cur``, ``spikes``, ``v``, ``u`` ``[T, M]``; ``v`` is ``u`` when ``reset`` is 2 ("none")."""
    T, M = cur.shape
    for blk in range(k0, k1):
        j0, j1 = blk * _BLOCK, min((blk + 1) * _BLOCK, M)
        for t in range(T):
            ct, ut, st, vt = cur[t, j0:j1], u[t, j0:j1], spikes[t, j0:j1], v[t, j0:j1]
            n = j1 - j0
            if t == 0:
                for j in range(n):
                    ut[j] = ct[j]
            else:
                vp = v[t - 1, j0:j1]
                for j in range(n):
                    ut[j] = vp[j] * beta + ct[j]
            for j in range(n):
                sj = ut[j] > thr
                st[j] = sj
                if reset == 0:  # u - thr * s; thr * s is exact for s in {0, 1}
                    vt[j] = ut[j] - thr * st[j]
                elif reset == 1:  # (1 - s) * u, as (s * -1 + 1) * u
                    vt[j] = (st[j] * -1.0 + 1.0) * ut[j]


@numba.njit(**_JIT)
def _lif_grad_cols(h, keep, gvk, beta, g_in, k0, k1):
    """Blocks ``k0 .. k1 - 1`` of the backward recursion (see :meth:`_LIFMultiStep.backward`):
    ``g_in[t] = h[t] + g_in[t + 1] * beta * keep[t] + gvk[t]``, ``g_in[T - 1] = h[T - 1] + gvk[T - 1]``;
    ``keep`` / ``gvk`` of zero rows: absent (no factor / no term)."""
    T, M = h.shape
    has_keep, has_gv = keep.shape[0] > 0, gvk.shape[0] > 0
    for blk in range(k0, k1):
        j0, j1 = blk * _BLOCK, min((blk + 1) * _BLOCK, M)
        n = j1 - j0
        for t in range(T - 1, -1, -1):
            ht, gt = h[t, j0:j1], g_in[t, j0:j1]
            if t == T - 1:
                for j in range(n):
                    gt[j] = ht[j]
            else:
                gn = g_in[t + 1, j0:j1]
                if has_keep:
                    kt = keep[t, j0:j1]
                    for j in range(n):
                        gt[j] = ht[j] + (gn[j] * beta) * kt[j]
                else:
                    for j in range(n):
                        gt[j] = ht[j] + gn[j] * beta
            if has_gv:
                gv = gvk[t, j0:j1]
                for j in range(n):
                    gt[j] = gt[j] + gv[j]


def _numba_ok(*ts: Tensor) -> bool:
    return _NUMBA_LOOPS and all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)
                                and t.is_contiguous() and t.dtype == ts[0].dtype for t in ts)


def _cols(t: Tensor) -> np.ndarray:
    """A ``[T, ...]`` tensor as the ``[T, M]`` array the numba loops take."""
    return t.detach().reshape(t.shape[0], -1).numpy()


def _run_blocks(kernel, args: tuple, T: int, M: int) -> None:
    run_rows(kernel, args, -(-M // _BLOCK), T * M, None)


def _forward_loop(cur: Tensor, beta: float, thr: float, reset: str, keep_u: bool = True
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes, v, u)`` ``[T, B, N]``: spikes (float 0/1), membrane after and before the reset.
    ``keep_u=False`` (no backward to come): the numba loop writes ``u`` into ``v``'s memory just
    before the reset overwrites it (one ``[T, B, N]`` buffer less to fill); ``u`` is then ``v``."""
    T = cur.shape[0]
    v = torch.empty_like(cur)
    spikes = torch.empty_like(cur)
    if _numba_ok(cur) and T > 0:
        u = torch.empty_like(cur) if keep_u and reset != "none" else v
        dt = cur.dtype
        args = (_cols(cur), dt_scalar(beta, dt), dt_scalar(thr, dt), _RESETS[reset], _cols(spikes), _cols(v), _cols(u))
        _run_blocks(_lif_cols, args, T, cur[0].numel())
        return spikes, v, u
    u = v if reset == "none" else torch.empty_like(cur)
    for t in range(T):
        ut = u[t]
        if t == 0:  # v[-1] = 0: beta * 0 + I = I
            ut.copy_(cur[0])
        else:
            torch.mul(v[t - 1], beta, out=ut).add_(cur[t])
        st = torch.gt(ut, thr, out=spikes[t])  # 1.0 / 0.0 in the currents' dtype
        if reset == "subtract":  # u - s * theta, s * theta exact
            torch.sub(ut, st, alpha=thr, out=v[t])
        elif reset == "zero":  # u * (1 - s)
            torch.mul(st, -1.0, out=v[t]).add_(1.0).mul_(ut)
    return spikes, v, u


class _LIFMultiStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cur: Tensor, p: LIFParams):  # type: ignore[override]
        spikes, v, u = _forward_loop(cur, p.beta, p.threshold, p.reset)
        ctx.p = p
        ctx.save_for_backward(u, spikes)
        return spikes, (v.clone() if v is u else v)

    @staticmethod
    def backward(ctx, g_spikes: Tensor | None, g_v: Tensor | None):  # type: ignore[override]
        u, spikes = ctx.saved_tensors
        p: LIFParams = ctx.p
        h = torch.zeros_like(u) if g_spikes is None else g_spikes * p.spike_function().derivative(u - p.threshold)
        if p.reset == "zero":  # dv/du = 1 - s: the membrane path is cut where the neuron fired
            keep = 1.0 - spikes
            g_v_kept = None if g_v is None else g_v * keep
        else:
            keep, g_v_kept = None, g_v
        g_in = torch.empty_like(u)
        T = u.shape[0]
        opt = [t for t in (keep, g_v_kept) if t is not None]
        if _numba_ok(h, *opt):
            none = np.empty((0, 0), h.numpy().dtype)
            args = (_cols(h), none if keep is None else _cols(keep), none if g_v_kept is None else _cols(g_v_kept),
                    dt_scalar(p.beta, h.dtype), _cols(g_in))
            _run_blocks(_lif_grad_cols, args, T, h[0].numel())
            return g_in, None
        for t in range(T - 1, -1, -1):
            gt = g_in[t]
            if t == T - 1:
                gt.copy_(h[t])
                if g_v_kept is not None:
                    gt.add_(g_v_kept[t])
                continue
            carry = g_in[t + 1] * p.beta
            if keep is not None:
                carry.mul_(keep[t])
            torch.add(h[t], carry, out=gt)
            if g_v_kept is not None:
                gt.add_(g_v_kept[t])
        return g_in, None


def run_lif(cur: Tensor, p: LIFParams) -> tuple[Tensor, Tensor]:
    """LIF neurons ``p`` over currents ``cur`` ``[T, B, N]``; returns ``(spikes, membrane)``
    ``[T, B, N]`` (membrane after the reset). See the module docstring."""
    if not fast_path_applies(p) or cur.shape[0] == 0:
        return run_lif_steps(cur, p)
    if torch.is_grad_enabled() and cur.requires_grad:
        return _LIFMultiStep.apply(cur, p)
    with torch.no_grad():
        spikes, v, _ = _forward_loop(cur, p.beta, p.threshold, p.reset, keep_u=False)
    return spikes, v


def leaky_integrate(cur: Tensor, beta: float) -> Tensor:
    """Non-spiking integrator over ``[T, B, N]``: ``v[t] = beta * v[t-1] + I[t]``, ``v[-1] = 0``."""
    if torch.is_grad_enabled() and cur.requires_grad:
        v = torch.zeros_like(cur[0])
        out = []
        for t in range(cur.shape[0]):
            v = beta * v + cur[t]
            out.append(v)
        return torch.stack(out) if out else torch.zeros_like(cur)
    out = torch.empty_like(cur)
    for t in range(cur.shape[0]):
        if t == 0:
            out[0].copy_(cur[0])
        else:
            torch.mul(out[t - 1], beta, out=out[t]).add_(cur[t])
    return out
