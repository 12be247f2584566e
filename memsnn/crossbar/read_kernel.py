"""The read path's output stage in one pass (CPU, numba): noise, the per-tile ADC, the tile sum.

After the per-tile GEMMs a crossbar read has currents ``i`` ``[n_rt, B, out]`` in ADC code units
and, per (row tile, input vector) or per (row tile, input vector, output), the standard deviation
of the read and output noise. In eager torch the rest is five or six passes over ``i``
(``addcmul`` with the normals, ``clamp_``, ``round_``, the sum over row tiles, the scale), each
through memory: for the 784-512 layer over 6400 spike rows that is 13 M elements a pass, ~15 ms
of a ~60 ms read on this project's CPU. :func:`read_out` does them in one vectorised loop per
output row:

    y[b, c] = scale * sum_t ADC(i[t, b, c] + s[t, b, c] * z[b, t, c])
    ADC(v)  = rint(clamp(v, -bound, bound))   (round half to even, as torch.round; no clamp
                                               without clipping, no rounding without an ADC)

with ``s = std[t, b]`` (noise that depends on the input vector only: absolute read noise, output
noise) or ``s = sqrt(var[t, b, c] + out_var)`` (relative read noise: the per-output variance of
the second GEMM). The same operations in the same order as the eager path, without fast-math, so
the result is the eager one up to the rounding of a product-sum that torch's kernels may fuse
(an ulp of a current before rounding to a code). Rows are split over ``threads`` pool threads
for large reads (the kernels release the GIL); the numbers do not depend on the split. Given the
noise stream's key instead of drawn normals, each row's numbers are computed inside the loop (the
same numbers, no buffer).

:func:`dac_in` is the input stage of a dense read in one pass: DAC codes, the non-finite check
and the codes' norm per row tile (the absolute read noise's scale), in place of five torch calls;
with it and the inline noise a 64 x 256 x 256 read costs the GEMM plus ~0.1 ms (0.23 -> 0.21 ms).
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from ..philox import PARALLEL_MIN, _executor, _fill

__all__ = ["DenseRead", "dac_in", "read_out", "spike_read"]

Tensor = torch.Tensor

_JIT = dict(nogil=True, fastmath=False, error_model="numpy", cache=True)


@numba.njit(inline="always", **_JIT)
def _adc(v, bound, clip, adc):
    """One tile's ADC code of the noisy current ``v`` (codes): clipped to ``+-bound`` when ``clip``,
    rounded half to even when ``adc``; ``v`` itself without an ADC."""
    if adc:
        if clip:
            v = min(max(v, -bound), bound)
        v = np.rint(v)
    return v


@numba.njit(inline="always", **_JIT)
def _row_normals(z, scratch, b, inline, k0, k1, pos0):
    """Row ``b``'s normals ``[n_rt, out]``: ``z[b]`` as drawn by the caller, or (``inline``) numbers
    ``(pos0 + b) * width ..`` of the Philox stream ``(k0, k1)`` filled into ``scratch`` now."""
    if not inline:
        return z[b]
    flat = scratch.reshape(-1)
    _fill(flat, k0, k1, np.uint64(pos0 + b) * np.uint64(flat.size))
    return scratch


@numba.njit(**_JIT)
def _rows_std(i, z, inline, k0, k1, pos0, std, std_mul, std_add, bound, clip, adc, scale, out, b0, b1):
    """``std`` ``[n_rt, B]``: one standard deviation per (row tile, input vector), used as
    ``sqrt((std * std_mul)**2 + std_add)`` unless ``std_mul == 1`` and ``std_add == 0``."""
    plain = std_mul == 1 and std_add == 0
    n_rt, _, n_out = i.shape
    scratch = np.zeros((n_rt, n_out), z.dtype)  # the type of z[b]
    for b in range(b0, b1):
        zb = _row_normals(z, scratch, b, inline, k0, k1, pos0)
        y = out[b]
        for c in range(n_out):
            y[c] = 0.0
        for t in range(n_rt):
            cur, zz, s = i[t, b], zb[t], std[t, b]
            if not plain:
                s = s * std_mul
                s = np.sqrt(s * s + std_add) if std_add > 0 else s
            for c in range(n_out):
                v = cur[c] + zz[c] * s
                y[c] += _adc(v, bound, clip, adc)
        for c in range(n_out):
            y[c] *= scale


@numba.njit(**_JIT)
def _full_var(i, z, inline, k0, k1, pos0, var, out_var, bound, clip, adc, scale, out, b0, b1):
    """``var`` ``[n_rt, B, out]``: the read-noise variance of every output; ``out_var`` added."""
    n_rt, _, n_out = i.shape
    scratch = np.zeros((n_rt, n_out), z.dtype)  # the type of z[b]
    for b in range(b0, b1):
        zb = _row_normals(z, scratch, b, inline, k0, k1, pos0)
        y = out[b]
        for c in range(n_out):
            y[c] = 0.0
        for t in range(n_rt):
            cur, zz, vv = i[t, b], zb[t], var[t, b]
            for c in range(n_out):
                v = cur[c] + zz[c] * np.sqrt(vv[c] + out_var)
                y[c] += _adc(v, bound, clip, adc)
        for c in range(n_out):
            y[c] *= scale


@numba.njit(**_JIT)
def _dac_in(x, inv_step, x_max, tile_rows, codes, norms):
    """Codes ``rint(clamp(x, -x_max, x_max) * inv_step)`` into ``codes`` and each row tile's
    code norm into ``norms`` ``[n_rt, B]``; returns the number of non-finite inputs. Three
    branch-free loops per row (they vectorise)."""
    B, n = x.shape
    n_rt = norms.shape[0]
    bad = 0
    for b in range(B):
        xb, cb = x[b], codes[b]
        row_bad = 0  # a per-row counter and the tile as a view from 0: all three loops vectorise
        for c in range(n):  # (2.6x faster than one counter and an offset range, measured)
            v = xb[c]
            row_bad += (v - v) != 0  # NaN and +-inf give NaN
        bad += row_bad
        for c in range(n):
            cb[c] = np.rint(min(max(xb[c], -x_max), x_max) * inv_step)
        for t in range(n_rt):
            lo = t * tile_rows
            seg = cb[lo:min(lo + tile_rows, n)]
            ss = 0  # integer codes: an exact integer sum (and it vectorises, a float sum does not)
            for c in range(seg.shape[0]):
                q = np.int64(seg[c])
                ss += q * q
            norms[t, b] = np.sqrt(np.float64(ss))
    return bad


def dac_in(x: Tensor, inv_step: float, x_max: float, tile_rows: int, n_rt: int) -> tuple[Tensor, Tensor, int]:
    """The DAC stage of a dense read in one pass: ``(codes, norms, n_bad)`` for inputs ``x``
    ``[B, in]`` (contiguous, CPU, float32 / float64): the DAC codes ``round(clamp(x, +-x_max) *
    inv_step)`` (half to even, as :func:`~memsnn.crossbar.periphery.dac_codes`), the codes' norm
    per (row tile of ``tile_rows`` inputs, vector) ``[n_rt, B, 1]`` (the absolute read noise's
    scale, as ``Crossbar._row_norms``) and the number of NaN / infinite inputs (the caller
    raises). Replaces five torch calls (finiteness sum, clamp, scale, round, norm)."""
    B = x.shape[0]
    codes = torch.empty_like(x)
    norms = torch.empty((n_rt, B, 1), dtype=x.dtype)
    bad = _dac_in(x.numpy(), dt_scalar(inv_step, x.dtype), dt_scalar(x_max, x.dtype), tile_rows, codes.numpy(),
                  norms.view(n_rt, B).numpy())
    return codes, norms, int(bad)


def read_out(i: Tensor, z: Tensor | None, *, std: Tensor | None = None, var: Tensor | None = None,
             out_var: float = 0.0, bound: float | None, adc: bool, scale: float, out: Tensor,
             noise_key: int | None = None, noise_row: int = 0, std_mul: float = 1.0, std_add: float = 0.0,
             threads: int | None = None) -> Tensor:
    """``out[b, c] = scale * sum_t ADC(i[t, b, c] + s * z[b, t, c])`` (see the module docstring).

    Args:
        i: ``[n_rt, B, out]`` contiguous currents in ADC code units (CPU, float32 or float64).
        z: ``[B, n_rt, out]`` contiguous standard normals (float32 or ``i``'s dtype); or ``None``
            and ``noise_key``: row ``b``'s normals are numbers ``(noise_row + b) * n_rt * out ..``
            of that Philox stream, computed in the loop (the numbers
            :class:`~memsnn.crossbar.noise_stream.NoiseStream` would draw at ``noise_row``).
        std: ``[n_rt, B]`` (or ``[n_rt, B, 1]``) noise standard deviations per input vector, used as
            ``sqrt((std * std_mul)**2 + std_add)`` (an input norm times the read noise's scale,
            with the output noise's variance added); or
        var: ``[n_rt, B, out]`` noise variances per output, ``out_var`` added before the root.
        bound: the ADC's clipping bound in codes, ``None`` for no clipping.
        adc: round to integer codes (an ADC); ``False`` leaves the noisy currents as they are.
        scale: the factor from summed codes to weight units.
        out: ``[B, out]`` contiguous output (may be a row slice of a larger contiguous tensor).
        threads: row ranges computed at once (default ``torch.get_num_threads()``).
    """
    n_rt, B, n_out = i.shape
    if (std is None) == (var is None):
        raise ValueError("read_out needs exactly one of std (per input vector) or var (per output)")
    if (z is None) == (noise_key is None):
        raise ValueError("read_out needs exactly one of z (drawn normals) or noise_key (normals drawn inline)")
    dt = i.dtype
    ni, no = i.numpy(), out.numpy()
    key = 0 if noise_key is None else int(noise_key)
    noise = (np.empty((0, 0, 0), np.float32) if z is None else z.numpy(), z is None, np.uint32(key & 0xFFFFFFFF),
             np.uint32((key >> 32) & 0xFFFFFFFF), np.int64(noise_row))
    clip, b = bound is not None, 0.0 if bound is None else float(bound)
    if std is not None:
        ns = std.reshape(n_rt, B).numpy()
        args = (ni, *noise, ns, dt_scalar(std_mul, dt), dt_scalar(std_add, dt), dt_scalar(b, dt), clip, adc,
                dt_scalar(scale, dt), no)
        kernel = _rows_std
    else:
        args = (ni, *noise, var.numpy(), dt_scalar(out_var, dt), dt_scalar(b, dt), clip, adc, dt_scalar(scale, dt),
                no)
        kernel = _full_var
    run_rows(kernel, args, B, i.numel(), threads)
    return out


def run_rows(kernel, args: tuple, B: int, work: int, threads: int | None) -> None:
    """``kernel(*args, b0, b1)`` over rows ``0 .. B - 1``, split into contiguous ranges on up to
    ``threads`` pool threads (default ``torch.get_num_threads()``; one per ``PARALLEL_MIN`` of
    ``work``). The kernels compute each row alone, so the result does not depend on the split."""
    workers = max(1, min(torch.get_num_threads() if threads is None else int(threads), work // PARALLEL_MIN, B))
    if workers == 1:
        kernel(*args, 0, B)
    else:
        cuts = [B * w // workers for w in range(workers + 1)]
        list(_executor(workers).map(lambda w: kernel(*args, cuts[w], cuts[w + 1]), range(workers)))


@numba.njit(inline="always", **_JIT)
def _active(xb, idx):
    """The indices of ``xb``'s non-zero entries into ``idx``, in order (branch-free compaction);
    returns their count."""
    na = 0
    for i in range(xb.shape[0]):
        idx[na] = i
        na += xb[i] != 0
    return na


def dt_scalar(v: float, dtype: torch.dtype):
    """``v`` as a numpy scalar of the arrays' dtype (so float32 arithmetic stays float32)."""
    return np.float32(v) if dtype == torch.float32 else np.float64(v)


@numba.njit(inline="always", **_JIT)
def _gather(acc, rows, xb, idx, k0, k1, lo, square):
    """``acc += sum_k w_k rows[idx[k] - lo]`` over ``k0 <= k < k1`` with ``w = x`` (or ``x**2``
    when ``square``): four rows per pass, so the accumulator is loaded and stored once per four."""
    n = acc.shape[0]
    k = k0
    while k + 4 <= k1:
        i0, i1, i2, i3 = idx[k], idx[k + 1], idx[k + 2], idx[k + 3]
        w0, w1, w2, w3 = xb[i0], xb[i1], xb[i2], xb[i3]
        if square:
            w0, w1, w2, w3 = w0 * w0, w1 * w1, w2 * w2, w3 * w3
        r0, r1, r2, r3 = rows[i0 - lo], rows[i1 - lo], rows[i2 - lo], rows[i3 - lo]
        for c in range(n):
            acc[c] += (w0 * r0[c] + w1 * r1[c]) + (w2 * r2[c] + w3 * r3[c])
        k += 4
    while k < k1:
        i0 = idx[k]
        w0 = xb[i0] * xb[i0] if square else xb[i0]
        r0 = rows[i0 - lo]
        for c in range(n):
            acc[c] += w0 * r0[c]
        k += 1


#: input vectors per chunk of :func:`_spike_rows` with per-device variances: their conductance
#: gathers, then their variance gathers, so that one array at a time is read from the core's cache
#: (each row of a 784-row layer is read by ~26 of 128 vectors at 20 % density). Measured on the
#: Intel VM (2 MB per-core cache; ``g`` and ``var`` 1.6 MB each), one thread, 6400 x 784 -> 512:
#: both gathers 113 ms vector by vector, 89 / 82 / 79 / 76 ms in chunks of 32 / 64 / 128 / 256
SPIKE_CHUNK = 128


@numba.njit(**_JIT)
def _spike_rows(x, g, var, var_const, out_var, noisy, k0, k1, pos0, bound, clip, adc, scale, chunk, out, b0, b1):
    """Rows ``b0 .. b1 - 1`` of :func:`spike_read` (see there), ``chunk`` input vectors at a time:
    their active inputs and per-tile ranges, the gathers of ``g`` for all of them, then those of
    ``var`` (so each phase reads one array, which a core's cache can hold where both cannot), then
    their noise, ADC and tile sum. Every sum is over the same terms in the same order for any
    ``chunk``, so the result does not depend on it."""
    B, n_in = x.shape
    n_rt, tr, n_out = g.shape
    width = n_rt * n_out
    relative = var.shape[0] > 0
    chunk = max(1, min(chunk, b1 - b0))
    acc = np.empty((chunk, n_rt, n_out), g.dtype)
    acc2 = np.empty((chunk, n_rt, n_out if relative else 1), g.dtype)
    sq = np.empty((chunk, n_rt), g.dtype)
    z = np.zeros(width, np.float32)
    idx = np.empty((chunk, n_in), np.int64)
    ends = np.empty((chunk, n_rt + 1), np.int64)
    for s0 in range(b0, b1, chunk):
        m = min(chunk, b1 - s0)
        for j in range(m):
            xb, ij = x[s0 + j], idx[j]
            na = _active(xb, ij)
            k = 0
            ends[j, 0] = 0
            for t in range(n_rt):
                lo = t * tr
                k_end = k
                while k_end < na and ij[k_end] < lo + tr:
                    k_end += 1
                s = 0.0
                for kk in range(k, k_end):
                    s += xb[ij[kk]] * xb[ij[kk]]
                sq[j, t] = s
                ends[j, t + 1] = k_end
                k = k_end
            for t in range(n_rt):
                a = acc[j, t]
                a[:] = 0
                _gather(a, g[t], xb, ij, ends[j, t], ends[j, t + 1], t * tr, False)
        if relative:
            for j in range(m):
                xb, ij = x[s0 + j], idx[j]
                for t in range(n_rt):
                    a2 = acc2[j, t]
                    a2[:] = 0
                    _gather(a2, var[t], xb, ij, ends[j, t], ends[j, t + 1], t * tr, True)
        for j in range(m):
            b = s0 + j
            if noisy:
                _fill(z, k0, k1, np.uint64(pos0 + b) * np.uint64(width))
            y = out[b]
            y[:] = 0
            for t in range(n_rt):
                a, zt = acc[j, t], z[t * n_out:(t + 1) * n_out]
                base = sq[j, t] * var_const + out_var
                if relative:
                    a2 = acc2[j, t]
                    for c in range(n_out):
                        v = a[c] + zt[c] * np.sqrt(a2[c] + base)
                        y[c] += _adc(v, bound, clip, adc)
                else:
                    sd = np.sqrt(base)
                    for c in range(n_out):
                        v = a[c] + zt[c] * sd
                        y[c] += _adc(v, bound, clip, adc)
            for c in range(n_out):
                y[c] *= scale


def spike_read(x: Tensor, g: Tensor, *, var: Tensor | None, var_const: float, out_var: float, noise_key: int | None,
               noise_row: int, bound: float | None, adc: bool, scale: float, out: Tensor,
               threads: int | None = None, chunk: int | None = None) -> Tensor:
    """An event-driven read of sparse inputs: for each input vector only the rows of its non-zero
    inputs are summed, per row tile, then noise, ADC and tile sum as in :func:`read_out`.

    ``x`` ``[B, in]`` (spikes: mostly zeros); ``g`` ``[n_rt, tile_rows, out]`` the tile-shaped
    conductances in ADC codes per unit of ``x`` (zero-padded rows never read); ``var`` the
    per-device read-noise variances in the same layout (per unit of ``x**2``) or ``None``;
    ``var_const`` the device-independent variance per unit of ``x**2``; ``out_var`` the output
    noise variance per tile (codes**2). Per input vector ``b``, row tile ``t`` and output ``c``:

        I = sum_i x_i g[t, i, c],   s**2 = sum_i x_i**2 var[t, i, c] + var_const sum_i x_i**2 + out_var
        y[b, c] = scale * sum_t ADC(I + s z),   z = number (noise_row + b) * n_rt * out + t * out + c
                                                    of the Philox stream of ``noise_key``

    (``noise_key=None``: no noise; the stream is not read). The same numbers as the dense path
    (GEMM then :func:`read_out`) but sums in another order: the currents agree to float rounding.
    The cost grows with the number of active inputs (the dense GEMM's does not): at 20 % density a
    784x512 read costs ~0.6 of MKL's GEMM on one thread (AMD VM), and rows run on ``threads`` pool
    threads without torch's OpenMP pool, so no hand-off between the two. With ``var``, ``chunk``
    vectors (default :data:`SPIKE_CHUNK`) gather ``g`` first and ``var`` after, so each phase
    reads one array from the core's cache; the result does not depend on ``chunk``.
    """
    B = x.shape[0]
    n_rt, _, n_out = g.shape
    dt = g.dtype
    nx, ng, no = x.numpy(), g.numpy(), out.numpy()
    nv = var.numpy() if var is not None else np.empty((0, 0, 0), ng.dtype)
    key = 0 if noise_key is None else int(noise_key)
    k0, k1 = np.uint32(key & 0xFFFFFFFF), np.uint32((key >> 32) & 0xFFFFFFFF)
    args = (nx, ng, nv, dt_scalar(var_const, dt), dt_scalar(out_var, dt), noise_key is not None, k0, k1,
            np.int64(noise_row), dt_scalar(0.0 if bound is None else bound, dt), bound is not None, adc,
            dt_scalar(scale, dt), int((SPIKE_CHUNK if var is not None else 1) if chunk is None else chunk), no)
    work = B * x.shape[1] + B * n_rt * n_out
    run_rows(_spike_rows, args, B, work, threads)
    return out


class DenseRead:
    """A crossbar's whole dense CPU read with a DAC and read / output noise that depends on the
    input vector only (absolute read noise): :func:`dac_in`'s kernel, the per-tile GEMMs and
    :func:`read_out`'s kernel, with every constant converted once and the intermediate buffers
    (codes, norms, currents) kept per batch size instead of allocated per call.

    The same operations and numbers as ``Crossbar._vmm_block`` with ``dac=`` (the crossbar builds
    one per state, so a change of the devices or the periphery builds a new one). With
    :func:`dac_in`'s vectorised loops (15 -> 4.4 us) it took the ``64 x 256 x 256`` read of
    ``benchmarks/crossbar_vs_aihwkit.py`` from 0.22 to 0.17 ms on one thread (0.25 -> 0.18 ms on
    two), measured in one run; the rest is MKL's GEMM (~0.09-0.10 ms) and the inline normals
    (~0.03 ms). Not thread-safe: one crossbar's reads run one at a time, as its noise stream
    requires anyway.

    Args:
        g: ``[n_rt, tile_rows, out]`` tile-shaped conductances in ADC codes per DAC code.
        in_features: real rows (the last tile's padding is never read).
        inv_step, x_max: the DAC's codes per input unit and its clipping bound.
        std_mul, std_add: the noise's std per (row tile, vector) is
            ``sqrt((code norm * std_mul)**2 + std_add)``.
        bound: the ADC's clipping bound in codes (``None``: no clipping); adc: round to codes.
        scale: summed codes to weight units.
        noise_key: the crossbar's noise stream key.
    """

    _KEEP = 4  # batch sizes whose buffers are kept

    def __init__(self, g: Tensor, in_features: int, *, inv_step: float, x_max: float, std_mul: float, std_add: float,
                 bound: float | None, adc: bool, scale: float, noise_key: int):
        self.g, self.in_features = g, in_features
        self.n_rt, self.tile_rows, self.n_out = g.shape
        self.dtype = g.dtype
        dt = g.dtype
        self._dac = (dt_scalar(inv_step, dt), dt_scalar(x_max, dt), self.tile_rows)
        key = int(noise_key)
        self._k = (np.uint32(key & 0xFFFFFFFF), np.uint32((key >> 32) & 0xFFFFFFFF))
        self._out = (dt_scalar(std_mul, dt), dt_scalar(std_add, dt), dt_scalar(0.0 if bound is None else bound, dt),
                     bound is not None, adc, dt_scalar(scale, dt))
        self._z = np.empty((0, 0, 0), np.float32)
        self._bufs: dict[int, tuple] = {}
        self._tile_g = [g[t, : min(self.tile_rows, in_features - t * self.tile_rows)] for t in range(self.n_rt)]

    def _buffers(self, B: int) -> tuple:
        bufs = self._bufs.get(B)
        if bufs is None:
            if len(self._bufs) >= self._KEEP:
                self._bufs.pop(next(iter(self._bufs)))
            codes = torch.empty((B, self.in_features), dtype=self.dtype)
            norms = torch.empty((self.n_rt, B), dtype=self.dtype)
            i = torch.empty((self.n_rt, B, self.n_out), dtype=self.dtype)
            cols = [codes[:, t * self.tile_rows: t * self.tile_rows + gt.shape[0]] for t, gt in enumerate(self._tile_g)]
            bufs = (codes, norms, i, cols, codes.numpy(), norms.numpy(), i.numpy())
            self._bufs[B] = bufs
        return bufs

    def __call__(self, x: Tensor, noise_row: int, threads: int | None = None) -> Tensor:
        """Outputs ``[B, out]`` of inputs ``x`` ``[B, in]`` (contiguous CPU, the plan's dtype),
        reading the noise stream's rows ``noise_row ..`` (the caller advances its position).
        Raises ``ValueError`` naming the count of NaN / infinite inputs before any GEMM."""
        B = x.shape[0]
        codes, norms, i, cols, nc, nn, ni = self._buffers(B)
        bad = _dac_in(x.numpy(), *self._dac, nc, nn)
        if bad:
            raise ValueError(f"inputs contain {int(bad)} NaN or infinite values")
        if self.n_rt == 1:
            torch.mm(codes, self._tile_g[0], out=i[0])
        else:
            for t, (c, gt) in enumerate(zip(cols, self._tile_g)):
                torch.mm(c, gt, out=i[t])
        y = torch.empty((B, self.n_out), dtype=self.dtype)
        args = (ni, self._z, True, *self._k, np.int64(noise_row), nn, *self._out, y.numpy())
        run_rows(_rows_std, args, B, i.numel(), threads)
        return y
