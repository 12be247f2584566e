"""A crossbar's read-noise normals: a counter-based stream addressed by the row's place in the read history.

A VMM of ``B`` input vectors needs one standard normal per (input row, row tile, output): 13 M
numbers for a 784-512 layer over ``T * B = 6400`` rows. torch's CPU generator makes them one after
another (~3-5 ns each on this project's CPU, as much as the layer's GEMM); :mod:`memsnn.philox`
makes them at ~1 ns each on one thread, vectorised, and on ``torch.get_num_threads()`` threads.

What the numbers depend on: row ``r`` of a crossbar's read history (rows counted over every VMM
since the crossbar was built, :attr:`NoiseStream.position`) holds numbers
``r * width .. (r + 1) * width - 1`` of the Philox stream of the crossbar's 64-bit key
(:func:`stream_key` of its seed), in row-major order. So the draws depend only on the seed and
the row's position in that history - not on the thread count, not on how rows are split into
calls (a per-step network and a multi-step network read exactly the same numbers), not on the
machine's load. Distinct keys give independent streams; one stream has ``2**64`` numbers.

Per read the distribution is independent standard normals (float32, ``|z| <= 5.77``; see
:mod:`memsnn.philox` for the transform and its checks).
"""

from __future__ import annotations

import torch

from ..philox import normals

__all__ = ["NoiseStream", "stream_key"]

Tensor = torch.Tensor

_MASK64 = 0xFFFFFFFFFFFFFFFF


def stream_key(seed: int) -> int:
    """The 64-bit key of the stream of a crossbar seeded with ``seed`` (splitmix64's finaliser,
    so that neighbouring seeds get unrelated keys)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class NoiseStream:
    """Standard normals ``[rows, width]`` for successive rows of a crossbar's reads (CPU).

    Args:
        key: 64-bit stream key (:func:`stream_key` of the crossbar's seed; taken modulo ``2**64``).
        width: numbers per row (``n_row_tiles * out_features``).
        position: rows already drawn (restored from a saved crossbar).
    """

    def __init__(self, key: int, width: int, position: int = 0):
        if not (isinstance(width, int) and width >= 1):
            raise ValueError(f"width={width!r} must be an integer >= 1 (numbers per row)")
        if not (isinstance(position, int) and position >= 0):
            raise ValueError(f"position={position!r} must be an integer >= 0 (rows already drawn)")
        self.key = int(key) & _MASK64
        self.width = width
        self.position = position

    def draw(self, rows: int, dtype: torch.dtype = torch.float32, out: Tensor | None = None) -> Tensor:
        """The next ``rows`` rows of the stream, ``[rows, width]`` standard normals; advances
        :attr:`position`. ``out``: a contiguous float32 CPU tensor of ``rows * width`` elements to
        fill instead of a new one (a caller's reused buffer: large fresh tensors cost page faults);
        ``dtype`` other than float32 returns the float32 numbers converted."""
        if not (isinstance(rows, int) and rows >= 0):
            raise ValueError(f"rows={rows!r} must be an integer >= 0")
        z = normals(self.key, self.position * self.width, rows * self.width, out=out)
        self.position += rows
        z = z.view(rows, self.width)
        return z if dtype == torch.float32 else z.to(dtype)
