"""Counter-based standard normals on the CPU: Philox4x32-10 bits and a Box-Muller transform (numba).

Why: torch's CPU normal sampler draws from one Mersenne Twister, one number after another, at
~3-5 ns a number on this project's CPU; a 784-512 crossbar layer read over ``T * B = 6400`` spike
rows needs 13.1 M read-noise normals (one per input row, row tile and output), which made the
sampler as costly as the layer's GEMM. Here every number is a pure function of ``(key, index)``:

- **bits**: Philox4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2,
  3", SC 2011; the counter-based generator of cuRAND and of JAX / TensorFlow's stateless RNGs).
  Counter ``j`` (64 bits, the high words zero) and the 64-bit ``key`` give four 32-bit words; the
  tests check the published known-answer vectors of the reference implementation (Random123).
- **normals**: the words ``(a, b)`` of each half give two normals by Box-Muller:
  ``u1 = ((a >> 8) + 1) / 2**24`` in ``(0, 1]``, ``r = sqrt(-2 ln u1)``; the angle is
  ``theta = q * pi/2 + x`` with ``x = ((b >> 8) / 2**24 - 1/2) * pi/2`` and the quarter turn
  ``q`` from ``b``'s two low bits, and the pair is ``r (cos theta, sin theta)``. The logarithm
  (exponent plus an atanh series on ``[sqrt(1/2), sqrt(2))``) and sin / cos on
  ``[-pi/4, pi/4)`` (Taylor series to x**9 / x**10) are evaluated in float32 with their series
  truncated below float32's rounding (errors < 1e-7 relative), so the loop vectorises (8 lanes)
  without a vector math library. Number ``i`` of the stream is lane ``i % 4`` of counter
  ``i // 4``: ``(r1 cos, r1 sin, r2 cos, r2 sin)``.
- **exactness**: compiled without fast-math, so the vectorised body and the scalar remainder give
  the same IEEE results: any split of a range into calls, on any thread count, yields bit-identical
  numbers.

Distribution: independent standard normals, except that ``u1`` has 24 bits, so ``|z| <= 5.77``
(a cut beyond probability 8e-9 per number; torch's float32 sampler has the same cut) and the
angle has 2**24 values. The tests check moments, a Kolmogorov-Smirnov test, tail frequencies and
the correlation of neighbouring numbers.

Cost (this project's 2-core VM, one thread): ~1 ns a number against ~3-5 ns for ``torch.randn``;
large requests are split over ``threads`` contiguous ranges on a thread pool (the kernel releases
the GIL). The first call in a process compiles the kernel (cached on disk by numba afterwards).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["philox4x32", "normals", "MAX_ABS"]

Tensor = torch.Tensor

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
#: the largest |z| the transform can return (u1 >= 2**-24)
MAX_ABS = math.sqrt(-2.0 * math.log(2.0 ** -24))
#: numbers below which a request is filled on the calling thread only (a pool hand-off costs ~20 us)
PARALLEL_MIN = 1 << 17

_F = np.float32
_U = np.uint32
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S8 = np.uint64(8)
_ONE = np.uint64(1)


@intrinsic
def _f32_bits(typingctx, x):
    """The IEEE bits of a float32 as an int32 (an LLVM bitcast: vectorises, unlike a view)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):
    """The float32 whose IEEE bits are the int32 ``x``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


_JIT = dict(nogil=True, fastmath=False, error_model="numpy", cache=True)
_I = np.int32


@numba.njit(inline="always", **_JIT)
def _philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on 32-bit words held in 64-bit integers (numba widens 32-bit arithmetic to
    64 bits anyway; masking instead of narrowing keeps the loop in 64-bit vector lanes, ~2x
    faster than uint32 casts). Returns the four words as 64-bit integers below ``2**32``."""
    c0, c1, c2, c3 = np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3)
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0 = c0 * _M0
        p1 = c2 * _M1
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _LO, (p0 >> _S32) ^ c3 ^ k1, p0 & _LO
        k0, k1 = (k0 + _W0) & _LO, (k1 + _W1) & _LO
    return c0, c1, c2, c3


@numba.njit(inline="always", **_JIT)
def _minus_2_log(u):
    """``-2 ln u`` for a float32 ``u`` in ``(0, 1]``: ``u = m 2**e`` with ``m`` in
    ``[sqrt(1/2), sqrt(2))``, ``ln m = 2 atanh(s)``, ``s = (m - 1) / (m + 1)``, ``|s| <= 0.172``
    (the series' first omitted term, ``2 s**11 / 11``, is below 7e-10)."""
    b = _f32_bits(u)  # u > 0: the sign bit is 0
    e = _F((b >> _I(23)) - _I(127))
    m = _bits_f32((b & _I(0x7FFFFF)) | _I(0x3F800000))  # [1, 2)
    big = _F(m > _F(1.4142135))
    m = m * (_F(1.0) - _F(0.5) * big)
    e = e + big
    s = (m - _F(1.0)) / (m + _F(1.0))
    s2 = s * s
    ln_m = _F(2.0) * s * (_F(1.0) + s2 * (_F(1 / 3) + s2 * (_F(0.2) + s2 * (_F(1 / 7) + s2 * _F(1 / 9)))))
    return _F(-2.0) * (e * _F(0.6931472) + ln_m)


@numba.njit(inline="always", **_JIT)
def _box_muller(a, b):
    """Two standard normals from two 32-bit words (branch-free, so the loop vectorises; the
    24-bit fields go through int32, whose conversion to float vectorises)."""
    u1 = _F(_I(a >> _S8) + _I(1)) * _F(5.9604645e-08)  # (0, 1]
    r = math.sqrt(_minus_2_log(u1))
    x = (_F(_I(b >> _S8)) * _F(5.9604645e-08) - _F(0.5)) * _F(1.5707964)  # [-pi/4, pi/4)
    x2 = x * x
    s = x * (_F(1.0) + x2 * (_F(-1 / 6) + x2 * (_F(1 / 120) + x2 * (_F(-1 / 5040) + x2 * _F(1 / 362880)))))
    c = _F(1.0) + x2 * (_F(-0.5) + x2 * (_F(1 / 24) + x2 * (_F(-1 / 720) + x2 * (_F(1 / 40320)
                                                                           + x2 * _F(-1 / 3628800)))))
    # a quarter turn q = b & 3: odd q maps (cos, sin) to (-sin, cos), q >= 2 negates both
    odd = _F(_I(b & _ONE))
    sign = r * (_F(1.0) - _F(2.0) * _F(_I((b >> _ONE) & _ONE)))
    return (c - odd * (s + c)) * sign, (s + odd * (c - s)) * sign


@numba.njit(inline="always", **_JIT)
def _four(j, k0, k1):
    w0, w1, w2, w3 = _philox(np.uint32(j & _LO), np.uint32(j >> _S32), _U(0), _U(0), k0, k1)
    z0, z1 = _box_muller(w0, w1)
    z2, z3 = _box_muller(w2, w3)
    return z0, z1, z2, z3


@numba.njit(**_JIT)
def _fill(out, k0, k1, start):
    """``out[i]`` = number ``start + i`` of the stream of key ``(k0, k1)``; ``out`` float32, 1-D."""
    n = out.size
    if n == 0:
        return
    i = 0
    head = np.uint64(start) % np.uint64(4)
    if head != 0:  # the first counter's lanes from ``head`` on
        z = _four(np.uint64(start) // np.uint64(4), k0, k1)
        for lane in range(int(head), 4):
            if i < n:
                out[i] = z[lane]
                i += 1
    j0 = (np.uint64(start) + np.uint64(i)) // np.uint64(4)
    full = (n - i) // 4
    done = 0
    while done < full:  # segments in which the counter's low word does not wrap (one, in practice)
        j = j0 + np.uint64(done)
        lo, hi = j & _LO, j >> _S32
        seg = min(full - done, int(np.uint64(1) << _S32) - int(lo))
        # a view starting at 0, indexed by 4 q, and a 32-bit counter: the loop vectorises
        body = out[i + 4 * done:i + 4 * (done + seg)]
        for q in range(seg):
            w0, w1, w2, w3 = _philox(lo + np.uint64(q), hi, _U(0), _U(0), k0, k1)
            z0, z1 = _box_muller(w0, w1)
            z2, z3 = _box_muller(w2, w3)
            body[4 * q] = z0
            body[4 * q + 1] = z1
            body[4 * q + 2] = z2
            body[4 * q + 3] = z3
        done += seg
    i += 4 * full
    if i < n:
        z = _four(j0 + np.uint64(full), k0, k1)
        for lane in range(n - i):
            out[i + lane] = z[lane]


@numba.njit(**_JIT)
def _words(out, c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of one counter / key (for the known-answer tests)."""
    w = _philox(np.uint32(c0), np.uint32(c1), np.uint32(c2), np.uint32(c3), np.uint32(k0), np.uint32(k1))
    for t in range(4):
        out[t] = w[t]


def philox4x32(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, int, int, int]:
    """The four 32-bit output words of Philox4x32-10 for one 128-bit counter and 64-bit key."""
    out = np.empty(4, np.uint32)
    _words(out, *(int(c) & _MASK32 for c in counter), *(int(k) & _MASK32 for k in key))
    return tuple(int(v) for v in out)


_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_pid = 0
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool of ``workers`` threads (a new one after a fork: a forked child has no
    threads of its parent's pool, and submitting to it would wait forever)."""
    global _pool, _pool_workers, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_workers != workers or _pool_pid != os.getpid():
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="memsnn-philox")
            _pool_workers, _pool_pid = workers, os.getpid()
        return _pool


def normals(key: int, start: int, n: int, *, out: Tensor | None = None, dtype: torch.dtype = torch.float32,
            threads: int | None = None) -> Tensor:
    """Numbers ``start .. start + n - 1`` of the standard-normal stream of ``key`` (CPU).

    Args:
        key: 64-bit stream key (taken modulo ``2**64``); distinct keys give independent streams.
        start: index of the first number, ``0 <= start``, ``start + n <= 2**64``.
        n: how many numbers.
        out: a contiguous float32 CPU tensor of ``n`` elements to fill (any shape); else a new one.
        dtype: of the returned tensor when ``out`` is not given (float32 numbers, converted).
        threads: ranges filled at once (default ``torch.get_num_threads()``); the numbers do not
            depend on it.

    Returns:
        ``out``, or a new 1-D tensor ``[n]``.
    """
    if not (isinstance(n, int) and n >= 0):
        raise ValueError(f"n={n!r} must be an integer >= 0")
    if not (isinstance(start, int) and 0 <= start and start + n <= 1 << 64):
        raise ValueError(f"start={start!r} must be an integer with 0 <= start and start + n <= 2**64 (n={n})")
    if out is None:
        buf = torch.empty(n, dtype=torch.float32)
    else:
        if out.dtype != torch.float32 or out.device.type != "cpu" or not out.is_contiguous() or out.numel() != n:
            raise ValueError(f"out must be a contiguous float32 CPU tensor of {n} elements, got "
                             f"{out.dtype} on {out.device}, shape {tuple(out.shape)}")
        buf = out
    flat = buf.view(-1).numpy()
    k0, k1 = np.uint32(int(key) & _MASK32), np.uint32((int(key) >> 32) & _MASK32)
    workers = max(1, min(torch.get_num_threads() if threads is None else int(threads), n // PARALLEL_MIN))
    if workers == 1:
        _fill(flat, k0, k1, np.uint64(start))
    else:  # contiguous ranges, one per worker, split on whole counters
        cuts = [0] + [(n * w // workers) // 4 * 4 for w in range(1, workers)] + [n]
        list(_executor(workers).map(lambda w: _fill(flat[cuts[w]:cuts[w + 1]], k0, k1, np.uint64(start + cuts[w])),
                                    range(workers)))
    if out is None and dtype != torch.float32:
        return buf.to(dtype)
    return buf


#: fewer numbers than this come from torch.randn (its call costs less than a key draw plus a kernel call)
RANDN_MIN = 4096


def randn(shape, *, generator: torch.Generator | None = None, device: torch.device | str | None = None,
          dtype: torch.dtype = torch.float32) -> Tensor:
    """Standard normals of ``shape``, like ``torch.randn(shape, generator=generator, ...)``.

    On the CPU, for float32 / float64 and at least :data:`RANDN_MIN` numbers, they are the first
    numbers of the Philox stream whose key is one 63-bit integer drawn from ``generator`` (torch's
    default generator when ``None``): seeded runs repeat, every call gets its own stream, and the
    generator advances by one draw instead of one per number. Elsewhere (other devices, small or
    other-dtype requests) this is ``torch.randn``. float64 requests get float32 numbers converted
    (``|z| <= 5.77``)."""
    dev = torch.device("cpu") if device is None else torch.device(device)
    n = math.prod(shape) if not isinstance(shape, int) else shape
    if dev.type != "cpu" or n < RANDN_MIN or dtype not in (torch.float32, torch.float64):
        return torch.randn(shape, generator=generator, device=dev, dtype=dtype)
    key = int(torch.randint(0, 2**63 - 1, (1,), generator=generator))
    z = normals(key, 0, n, dtype=dtype)
    return z.view(shape) if not isinstance(shape, int) else z
