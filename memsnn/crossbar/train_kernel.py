"""Stochastic pulse trains on the CPU (numba): Bernoulli bits packed in words, coincidences by popcount.

A stochastic outer-product update (:class:`~memsnn.crossbar.schedule.OuterPhase` with
``train="stochastic"``, as aihwkit's pulsed update) drives row ``i`` of update ``b`` in each of
``L`` slots with probability ``|r[b, i]|`` and column ``j`` with ``|c[b, j]|``; device ``(i, j)``
receives a pulse in every slot where both lines fire. In torch that is ``B * (R + C) * L``
uniforms and a ``[B, R, L] @ [B, L, C]`` batched matmul of 0/1 floats. Here a line's ``L <= 32``
bits are one 32-bit word, drawn from the Philox stream of a key taken from the caller's
generator (:mod:`memsnn.philox`: slot ``l`` of line ``n`` fires when word ``l`` of the line's 8
counters, as a 24-bit uniform in ``[0, 1)``, is below ``|p|``), and a device's coincidence count is
``popcount(bits_row & bits_col)``, signed by the two lines' signs. The same distribution as the
torch path (independent Bernoulli slots, a row's slots shared by all its devices), other numbers.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ..philox import PARALLEL_MIN, _executor, _philox

__all__ = ["MAX_SLOTS", "coincidences"]

Tensor = torch.Tensor

#: the most slots a train may have (one 32-bit word per line)
MAX_SLOTS = 32

_JIT = dict(nogil=True, fastmath=False, error_model="numpy", cache=True)
_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S8 = np.uint64(8)


@intrinsic
def _popcount(typingctx, x):
    """Set bits of a 32-bit word as an int32 (LLVM's ctpop: vectorises)."""
    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(32)])
        return builder.call(fn, [args[0]])
    return types.int32(types.uint32), codegen


@numba.njit(**_JIT)
def _pack(thr, k0, k1, L, out):
    """``out[n]``: the ``L`` slots of line ``n`` as bits (slot ``l`` = bit ``l``), slot ``l`` firing
    when the 24-bit uniform ``u`` of word ``l`` of the line's Philox counters ``8 n .. 8 n + 7``
    (key ``(k0, k1)``) is below ``thr[n] = ceil(|p| 2**24)``: probability ``|p|`` to 2**-24, as
    ``torch.rand(...) < |p|`` with float32 uniforms."""
    N = thr.shape[0]
    for n in range(N):
        out[n] = 0
    for q in range(8):
        if 4 * q >= L:
            break
        for n in range(N):
            j = np.uint64(8 * n + q)
            w0, w1, w2, w3 = _philox(j & _LO, j >> _S32, np.uint64(0), np.uint64(0), k0, k1)
            t = thr[n]
            bits = ((np.uint32(np.int64(w0 >> _S8) < t) << np.uint32(4 * q))
                    | (np.uint32(np.int64(w1 >> _S8) < t) << np.uint32(4 * q + 1))
                    | (np.uint32(np.int64(w2 >> _S8) < t) << np.uint32(4 * q + 2))
                    | (np.uint32(np.int64(w3 >> _S8) < t) << np.uint32(4 * q + 3)))
            out[n] = np.uint32(out[n] | bits)
    mask = np.uint32((1 << L) - 1)
    for n in range(N):
        out[n] = np.uint32(out[n] & mask)


@numba.njit(**_JIT)
def _counts(br, sr, bc, sc, out, b0, b1):
    """``out[b, i, j] = sr[b, i] * sc[b, j] * popcount(br[b, i] & bc[b, j])`` for ``b0 <= b < b1``."""
    R = br.shape[1]
    C = bc.shape[1]
    for b in range(b0, b1):
        cb, scb = bc[b], sc[b]
        for i in range(R):
            ri, si = br[b, i], sr[b, i]
            o = out[b, i]
            for j in range(C):
                o[j] = si * scb[j] * _popcount(np.uint32(ri & cb[j]))


def coincidences(r: Tensor, c: Tensor, length: int, generator: torch.Generator | None, dtype: torch.dtype,
                 threads: int | None = None) -> Tensor:
    """Signed coincidence counts ``[B, R, C]`` of stochastic trains (CPU).

    Args:
        r: ``[B, R]`` row probabilities with signs (``|r| <= 1``).
        c: ``[B, C]`` column probabilities with signs.
        length: slots per train, ``1 <= length <= MAX_SLOTS``.
        generator: the key of the trains' Philox stream is one draw from it.
        dtype: of the counts (float32 / float64: whole numbers).
        threads: update ranges counted at once (default ``torch.get_num_threads()``).
    """
    if not (isinstance(length, int) and 1 <= length <= MAX_SLOTS):
        raise ValueError(f"length={length!r} must be an integer in 1..{MAX_SLOTS} for packed trains")
    B, R = r.shape
    C = c.shape[1]
    key = int(torch.randint(0, 2**63 - 1, (1,), generator=generator))
    k0, k1 = np.uint64(key & 0xFFFFFFFF), np.uint64(key >> 32)
    lines = torch.cat([r.reshape(-1), c.reshape(-1)]).to(torch.float64).abs()
    thr = torch.ceil(lines.clamp(max=1.0) * 2.0**24).to(torch.int64)
    bits = np.empty(lines.numel(), np.uint32)
    _pack(thr.numpy(), k0, k1, length, bits)
    br, bc = bits[:B * R].reshape(B, R), bits[B * R:].reshape(B, C)
    sr = torch.sign(r).to(dtype).contiguous().numpy()
    sc = torch.sign(c).to(dtype).contiguous().numpy()
    out = torch.empty((B, R, C), dtype=dtype)
    no = out.numpy()
    workers = max(1, min(torch.get_num_threads() if threads is None else int(threads), B * R * C // PARALLEL_MIN, B))
    if workers == 1:
        _counts(br, sr, bc, sc, no, 0, B)
    else:
        cuts = [B * w // workers for w in range(workers + 1)]
        list(_executor(workers).map(lambda w: _counts(br, sr, bc, sc, no, cuts[w], cuts[w + 1]), range(workers)))
    return out
