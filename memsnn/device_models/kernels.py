"""Numba kernels of device steps on the CPU: a whole sequence of steps in one call.

The eager fused steps (``_fused_step`` of ``ideal``, ``rram``, ``srtio3``) cost a handful of
elementwise torch ops per step of a sequence, each a pass over the array, plus a
``count_nonzero`` to skip empty steps; a batch of 64 rank-1 updates of a 256x256 array is 64
steps, ~230 us each. :func:`linear_run` applies all steps of a sequence to the linear device in
one loop per step, with the c2c normals drawn inline from :mod:`memsnn.philox` (number
``b * N + j`` of a key drawn from the caller's generator for step ``b`` and device ``j``):

    G <- clamp(G + s_b,j * (k_b,j + step_std * sqrt(|k_b,j|) * xi_b,j), g_min_j, g_max_j)

with ``s`` the SET step where ``k > 0`` and the RESET step elsewhere: the eager fused step's
law, term for term (``ideal._fused_step``). A step without pulses (``k = 0``) leaves ``G`` as it
was. The same distribution as the eager step, other numbers.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from ..philox import _fill

__all__ = ["linear_run"]

Tensor = torch.Tensor

_JIT = dict(nogil=True, fastmath=False, error_model="numpy", cache=True)


@numba.njit(**_JIT)
def _linear_run(g, counts, st_set, st_reset, lo, hi, std, k0, k1):
    B, N = counts.shape
    z = np.zeros(N, np.float32)
    for b in range(B):
        kb = counts[b]
        if std > 0:
            _fill(z, k0, k1, np.uint64(b) * np.uint64(N))
        for j in range(N):
            k = kb[j]
            st = st_set[j] if k > 0 else st_reset[j]
            v = g[j] + st * (k + std * np.sqrt(abs(k)) * z[j])
            g[j] = min(max(v, lo[j]), hi[j])


def linear_run(g: Tensor, counts: Tensor, step_set: Tensor, step_reset: Tensor, g_min: Tensor, g_max: Tensor,
               step_std: float, generator: torch.Generator | None) -> Tensor:
    """``g`` after the steps ``counts`` ``[B, *g.shape]`` of the linear device (see the module
    docstring); ``step_set`` / ``step_reset`` (S per pulse), ``g_min`` / ``g_max`` broadcastable to
    ``g``. A new tensor; CPU, float32 or float64."""
    shape, dt = g.shape, g.dtype
    if g.numel() == 0 or counts.shape[0] == 0:
        return g.clone()
    flat = lambda t: torch.broadcast_to(torch.as_tensor(t, dtype=dt), shape).contiguous().reshape(-1).numpy()
    out = g.contiguous().clone().reshape(-1)
    key = int(torch.randint(0, 2**63 - 1, (1,), generator=generator)) if step_std > 0 else 0
    c = counts.to(dt).contiguous().reshape(counts.shape[0], g.numel())
    _linear_run(out.numpy(), c.numpy(), flat(step_set), flat(step_reset), flat(g_min), flat(g_max),
                np.float32(step_std) if dt == torch.float32 else np.float64(step_std),
                np.uint64(key & 0xFFFFFFFF), np.uint64(key >> 32))
    return out.view(shape)
