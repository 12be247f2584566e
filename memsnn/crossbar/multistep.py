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

Measured on this project's 2-core CPU (``benchmarks/lif_kernels.py``, ``[50, 128, 512]``): the
step loop 22 ms, this loop 4.7 ms, the same loop under ``torch.jit.script`` 4.3 ms (within this
VM's noise, so the eager loop is kept); with backward 86 ms against 16 ms.
"""

from __future__ import annotations

import torch

from .neurons import LIFParams, LIFState, lif_step

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


def _forward_loop(cur: Tensor, beta: float, thr: float, reset: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes, v, u)`` ``[T, B, N]``: spikes (float 0/1), membrane after and before the reset."""
    T = cur.shape[0]
    u = torch.empty_like(cur)
    v = u if reset == "none" else torch.empty_like(cur)
    spikes = torch.empty_like(cur)
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
        spikes, v, _ = _forward_loop(cur, p.beta, p.threshold, p.reset)
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
