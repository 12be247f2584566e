"""Numba kernels of device steps on the CPU: a whole sequence of steps in one call.

The eager fused steps (``_fused_step`` of ``ideal``, ``rram``, ``srtio3``) cost a handful of
elementwise torch ops per step of a sequence, each a pass over the array, plus a
``count_nonzero`` to skip empty steps; a batch of 64 rank-1 updates of a 256x256 array is 64
steps, ~230 us each. :func:`linear_run` applies all steps of a sequence to the linear device in
one loop per step, and :func:`soft_bounds_run` those of the soft-bounds (``rram``) device. The c2c
normals are drawn inline from :mod:`memsnn.philox`: number ``b * N + j`` of a key drawn from the
caller's generator for step ``b`` and device ``j``, computed for the pulsed devices only when
fewer than :data:`SPARSE_DRAW_FRACTION` of a block's devices are pulsed in a step (a scalar
Philox block of 4 numbers per device then, ~40 ns, against ~1 ns a number for the vectorised
fill of the whole block). Either way the numbers are the same. Devices are taken in blocks of
:data:`BLOCK` through all steps (their parameters stay in cache), the blocks split over threads
for long sequences; neither changes a number.

Linear device (``ideal._fused_step``)::

    G <- clamp(G + s_b,j * (k_b,j + step_std * sqrt(|k_b,j|) * xi_b,j), g_min_j, g_max_j)

with ``s`` the SET step where ``k > 0`` and the RESET step elsewhere.

Soft bounds (``rram._fused_step``), with ``r`` the log of the per-pulse factor of the distance to
the bound approached (``log(1 - alpha)`` times the pulse amplitude's scale) and ``T`` that bound::

    multiplicative c2c:  c = |k| + step_std * sqrt(|k|) * xi,   G <- T + (G - T) * exp(r c)
    additive c2c:        G <- T + (G - T) * exp(r |k|) + a * sqrt(|k|) * xi

then clamped to ``[g_min, g_max]`` (``a``: step_std times the reference step, per polarity). The
move is computed as ``torch.lerp(T, G, factor)`` computes it, so that without noise the kernel
gives the eager step's numbers to the last bits of ``exp``.

Each is the eager fused step's law, term for term. A device without a pulse (``k = 0``) keeps
its ``G``, clamped to its bounds where its block has pulses in that step (the eager step clamps
the whole array in a step with any pulse; the two differ only for a device outside its bounds,
and the callers do not use the fused steps when a device is below ``g_min``). The same
distribution as the eager step, other numbers.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from ..philox import _executor, _fill, _four
from ..vecmath import vexp

__all__ = ["linear_run", "soft_bounds_run"]

Tensor = torch.Tensor

_JIT = dict(nogil=True, fastmath=False, error_model="numpy", cache=True)


#: a block of a step draws its c2c normals device by device (one scalar Philox block each, ~40x
#: the cost of a number of the vectorised fill) when fewer than this fraction of its devices are
#: pulsed, and fills the whole block's numbers otherwise (measured break-even: ~2 %)
SPARSE_DRAW_FRACTION = 0.02


@numba.njit(inline="always", **_JIT)
def _normal_at(i, k0, k1):
    """Number ``i`` of the Philox stream of key ``(k0, k1)`` (as :func:`memsnn.philox._fill` gives it)."""
    z = _four(i // np.uint64(4), k0, k1)
    lane = i % np.uint64(4)
    return z[0] if lane == 0 else (z[1] if lane == 1 else (z[2] if lane == 2 else z[3]))


#: devices per block: a kernel takes a block of devices through every step before the next
#: block, so that their parameters (bounds, steps: ~6 arrays) stay in the core's cache while the
#: counts stream by; 2048 devices x 8 arrays x 4 bytes = 64 kB
BLOCK = 2048


@numba.njit(inline="always", **_JIT)
def _step_normals(z, kb, k0, k1, first, frac, noisy):
    """Fill ``z`` (``kb.size`` long) with the normals numbered ``first`` on if ``noisy`` and at
    least ``frac`` of the devices in ``kb`` (a block of one step's counts) are pulsed; returns
    ``(n_on, dense)``: the number of pulsed devices and whether the block is dense."""
    n = kb.size
    n_on = 0
    for j in range(n):
        n_on += kb[j] != 0
    dense = n_on >= frac * n
    if noisy and dense and n_on > 0:
        _fill(z, k0, k1, first)
    return n_on, dense


@numba.njit(**_JIT)
def _linear_run(g, counts, st_set, st_reset, lo, hi, std, k0, k1, frac, j_start, j_stop):
    """Devices ``j_start .. j_stop - 1`` through every step (see the module docstring)."""
    B, N = counts.shape
    z0 = np.zeros(BLOCK, np.float32)
    for a in range(j_start, j_stop, BLOCK):
        e = min(a + BLOCK, j_stop)
        z = z0[:e - a]
        gb, sb, rb, lb, hb = g[a:e], st_set[a:e], st_reset[a:e], lo[a:e], hi[a:e]
        for b in range(B):
            kb = counts[b, a:e]
            first = np.uint64(b) * np.uint64(N) + np.uint64(a)
            dense = True
            if std > 0:
                n_on, dense = _step_normals(z, kb, k0, k1, first, frac, True)
                if n_on == 0:
                    continue
            if dense:  # branch-free: the loop vectorises
                for j in range(e - a):
                    k = kb[j]
                    st = sb[j] if k > 0 else rb[j]
                    v = gb[j] + st * (k + std * np.sqrt(abs(k)) * z[j])
                    gb[j] = min(max(v, lb[j]), hb[j])
            else:
                for j in range(e - a):
                    k = kb[j]
                    v = gb[j]
                    if k != 0:
                        st = sb[j] if k > 0 else rb[j]
                        v = v + st * (k + std * np.sqrt(abs(k)) * _normal_at(first + np.uint64(j), k0, k1))
                    gb[j] = min(max(v, lb[j]), hb[j])


@numba.njit(inline="always", **_JIT)
def _soft_bounds_move(v, k, xi, r_set, r_reset, lo, hi, std, mode, a_set, a_reset):
    """One device's soft-bounds step (branch-free but for ``mode``, which is loop-invariant): with
    ``k = 0`` the factor is ``exp(0) = 1`` and ``v`` comes back unchanged, then clamped."""
    up = k > 0
    c = abs(k)
    root = np.sqrt(c)
    if mode == 1:
        c = c + std * root * xi
    w = vexp((r_set if up else r_reset) * c)
    t = hi if up else lo
    d = v - t
    v = t + w * d if abs(w) < 0.5 else v - d * (np.float32(1.0) - w)  # torch.lerp(t, v, w)
    if mode == 2:
        v = v + (a_set if up else a_reset) * (root * xi)
    return min(max(v, lo), hi)


@numba.njit(**_JIT)
def _soft_bounds_run(g, counts, r_set, r_reset, lo, hi, std, mode, a_set, a_reset, k0, k1, frac, j_start, j_stop):
    """Devices ``j_start .. j_stop - 1`` through every step; ``mode``: 0 no c2c noise, 1
    multiplicative, 2 additive (see the module docstring)."""
    B, N = counts.shape
    z0 = np.zeros(BLOCK, np.float32)
    for a in range(j_start, j_stop, BLOCK):
        e = min(a + BLOCK, j_stop)
        z = z0[:e - a]
        gb, sb, rb, lb, hb, ab, cb = g[a:e], r_set[a:e], r_reset[a:e], lo[a:e], hi[a:e], a_set[a:e], a_reset[a:e]
        for b in range(B):
            kb = counts[b, a:e]
            first = np.uint64(b) * np.uint64(N) + np.uint64(a)
            n_on, dense = _step_normals(z, kb, k0, k1, first, frac if mode > 0 else -1.0, mode > 0)
            if n_on == 0:
                continue
            if dense:  # every device (vectorised; z is 0 without noise)
                for j in range(e - a):
                    gb[j] = _soft_bounds_move(gb[j], kb[j], z[j], sb[j], rb[j], lb[j], hb[j], std, mode, ab[j], cb[j])
            else:  # the pulsed devices, each with its own normal; the rest clamped
                for j in range(e - a):
                    if kb[j] != 0:
                        gb[j] = _soft_bounds_move(gb[j], kb[j], _normal_at(first + np.uint64(j), k0, k1), sb[j], rb[j],
                                                  lb[j], hb[j], std, mode, ab[j], cb[j])
                    else:
                        gb[j] = min(max(gb[j], lb[j]), hb[j])


#: device-steps (devices x steps) below which a sequence runs on the calling thread only
PARALLEL_MIN = 1 << 20


def _split(kernel, n: int, steps: int, *args) -> None:
    """``kernel(*args, j_start, j_stop)`` over the ``n`` devices: on the shared pool's threads
    (``torch.get_num_threads()`` of them, each a contiguous run of whole blocks) for long
    sequences, else in one call. The devices are independent, so the split changes nothing."""
    workers = max(1, min(torch.get_num_threads(), (n * steps) // PARALLEL_MIN, -(-n // BLOCK)))
    if workers == 1:
        kernel(*args, 0, n)
        return
    blocks = -(-n // BLOCK)
    cuts = [min(n, blocks * w // workers * BLOCK) for w in range(workers)] + [n]
    list(_executor(workers).map(lambda w: kernel(*args, cuts[w], cuts[w + 1]), range(workers)))


def _flat(t, shape: torch.Size, dt: torch.dtype) -> np.ndarray:
    return torch.broadcast_to(torch.as_tensor(t, dtype=dt), shape).contiguous().reshape(-1).numpy()


def _key(generator: torch.Generator | None, noisy: bool) -> tuple[np.uint64, np.uint64]:
    key = int(torch.randint(0, 2**63 - 1, (1,), generator=generator)) if noisy else 0
    return np.uint64(key & 0xFFFFFFFF), np.uint64(key >> 32)


def linear_run(g: Tensor, counts: Tensor, step_set: Tensor, step_reset: Tensor, g_min: Tensor, g_max: Tensor,
               step_std: float, generator: torch.Generator | None) -> Tensor:
    """``g`` after the steps ``counts`` ``[B, *g.shape]`` of the linear device (see the module
    docstring); ``step_set`` / ``step_reset`` (S per pulse), ``g_min`` / ``g_max`` broadcastable to
    ``g``. A new tensor; CPU, float32 or float64."""
    shape, dt = g.shape, g.dtype
    if g.numel() == 0 or counts.shape[0] == 0:
        return g.clone()
    out = g.contiguous().clone().reshape(-1)
    c = counts.to(dt).contiguous().reshape(counts.shape[0], g.numel())
    _split(_linear_run, g.numel(), counts.shape[0], out.numpy(), c.numpy(),
           *(_flat(t, shape, dt) for t in (step_set, step_reset, g_min, g_max)), _real(step_std, dt),
           *_key(generator, step_std > 0), SPARSE_DRAW_FRACTION)
    return out.view(shape)


def _real(x: float, dt: torch.dtype):
    return np.float32(x) if dt == torch.float32 else np.float64(x)


_MODES = {None: 0, "multiplicative": 1, "additive": 2}


def soft_bounds_run(g: Tensor, counts: Tensor, rate_set: Tensor, rate_reset: Tensor, g_min: Tensor, g_max: Tensor,
                    step_std: float, noise: str | None, noise_set: Tensor | float, noise_reset: Tensor | float,
                    generator: torch.Generator | None) -> Tensor:
    """``g`` after the steps ``counts`` ``[B, *g.shape]`` of the soft-bounds device (see the module
    docstring). ``rate_set`` / ``rate_reset``: log of the distance's factor per nominal pulse
    (< 0); ``noise``: ``None`` (no c2c noise), ``"multiplicative"`` or ``"additive"`` (then
    ``noise_set`` / ``noise_reset``, S per sqrt(pulse), are the additive noise's scales; ignored
    otherwise). Every tensor broadcastable to ``g``. A new tensor; CPU, float32 or float64."""
    if noise not in _MODES:
        raise ValueError(f"noise must be None, 'multiplicative' or 'additive', got {noise!r}")
    shape, dt = g.shape, g.dtype
    if g.numel() == 0 or counts.shape[0] == 0:
        return g.clone()
    mode = _MODES[noise] if step_std > 0 else 0
    out = g.contiguous().clone().reshape(-1)
    c = counts.to(dt).contiguous().reshape(counts.shape[0], g.numel())
    _split(_soft_bounds_run, g.numel(), counts.shape[0], out.numpy(), c.numpy(),
           *(_flat(t, shape, dt) for t in (rate_set, rate_reset, g_min, g_max)), _real(step_std, dt), mode,
           *(_flat(t if mode == 2 else 0.0, shape, dt) for t in (noise_set, noise_reset)),
           *_key(generator, mode > 0), SPARSE_DRAW_FRACTION)
    return out.view(shape)
