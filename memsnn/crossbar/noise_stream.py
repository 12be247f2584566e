"""A crossbar's read-noise normals: a counter-based stream of fixed chunks, drawn on several threads.

A VMM of ``B`` input vectors needs one standard normal per (input row, row tile, output): 13 M
numbers for a 784-512 layer over ``T * B = 6400`` rows, and torch's CPU generator makes them one
after another (~3 ns each on this project's CPU: the Mersenne Twister, not the Box-Muller step, is
the floor). :class:`NoiseStream` splits the stream into chunks of ``chunk_rows`` rows, each drawn
from its own generator, so that the chunks of one call can be filled on ``torch.get_num_threads()``
threads at once (torch's ``normal_`` releases the GIL).

What the numbers depend on: row ``r`` of a crossbar's read history (rows counted over every VMM
since the crossbar was built, :attr:`NoiseStream.position`) lies in chunk ``c = r // chunk_rows``,
whose numbers come from a fresh CPU generator seeded with ``(key + c) mod 2**32``, in row-major
order. So the draws depend only on the crossbar's seed and the row's position in that history -
not on the thread count, not on how rows are split into calls (a per-step network and a multi-step
network read exactly the same numbers), not on the machine's load. A call that starts or ends
inside a chunk draws the whole chunk and keeps the unused rows for the next call
(:meth:`NoiseStream.draw`), so nothing is drawn twice in the usual sequential use.

Independence: consecutive 32-bit seeds of torch's ``mt19937`` (it uses the low 32 bits of a seed),
the scheme of PyTorch's ``DataLoader`` (``base_seed + worker_id``); the tests check the chunks'
mean, variance and the correlation of neighbouring chunks. Within one crossbar no chunk repeats
before ``2**32`` chunks (``1.4e11`` rows of a 784-512 layer); two crossbars' streams overlap only
if their keys lie within one history's chunk count of each other (probability about
``2 * chunks / 2**32`` per pair, e.g. ``5e-4`` after ``10**6`` chunks).

Per read the distribution is what it was with one generator: independent standard normals.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["NoiseStream", "stream_key"]

Tensor = torch.Tensor

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
#: normals per chunk (about 0.2 ms of work: large against the per-chunk overhead of ~5 us)
CHUNK_NORMALS = 1 << 16

_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_pid = 0
_pool_lock = threading.Lock()


def stream_key(seed: int) -> int:
    """The 32-bit key of the stream of a crossbar seeded with ``seed`` (splitmix64's finaliser,
    so that neighbouring seeds get keys far apart)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z ^ (z >> 32)) & _MASK32


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool of ``workers`` threads (a new one after a fork: a forked child has no
    threads of its parent's pool, and submitting to it would wait forever)."""
    global _pool, _pool_workers, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_workers != workers or _pool_pid != os.getpid():
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="memsnn-noise")
            _pool_workers, _pool_pid = workers, os.getpid()
        return _pool


_local = threading.local()  # one reusable CPU generator per thread (re-seeded for every chunk)


def _fill(tasks: list[tuple[int, Tensor]]) -> None:
    g = getattr(_local, "generator", None)
    if g is None:
        g = _local.generator = torch.Generator()
    for seed, out in tasks:
        g.manual_seed(seed)
        out.normal_(generator=g)


class NoiseStream:
    """Standard normals ``[rows, width]`` for successive rows of a crossbar's reads (CPU).

    Args:
        key: 32-bit stream key (:func:`stream_key` of the crossbar's seed).
        width: numbers per row (``n_row_tiles * out_features``).
        position: rows already drawn (restored from a saved crossbar).
    """

    def __init__(self, key: int, width: int, position: int = 0):
        if not (isinstance(width, int) and width >= 1):
            raise ValueError(f"width={width!r} must be an integer >= 1 (numbers per row)")
        if not (isinstance(position, int) and position >= 0):
            raise ValueError(f"position={position!r} must be an integer >= 0 (rows already drawn)")
        self.key = int(key) & _MASK32
        self.width = width
        self.chunk_rows = max(1, math.ceil(CHUNK_NORMALS / width))
        self.position = position
        self._tail: tuple[int, Tensor] | None = None  # (chunk index, its numbers) of a partly used chunk

    def chunk_seed(self, c: int) -> int:
        """Seed of chunk ``c``'s generator."""
        return (self.key + c) & _MASK32

    def draw(self, rows: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """The next ``rows`` rows of the stream, ``[rows, width]`` standard normals; advances
        :attr:`position`. Chunks are filled on ``torch.get_num_threads()`` threads."""
        if rows < 0:
            raise ValueError(f"rows={rows!r} must be >= 0")
        out = torch.empty((rows, self.width), dtype=dtype)
        if rows == 0:
            return out
        R, p0, p1 = self.chunk_rows, self.position, self.position + rows
        tasks: list[tuple[int, Tensor]] = []
        partial: list[tuple[int, Tensor, int, int]] = []  # (chunk, its numbers, first row used, rows used)
        for c in range(p0 // R, (p1 - 1) // R + 1):
            a, b = max(p0, c * R), min(p1, (c + 1) * R)  # the rows of chunk c this call uses
            if a == c * R and b == (c + 1) * R:
                tasks.append((self.chunk_seed(c), out[a - p0:b - p0]))  # whole chunk: drawn in place
                continue
            tail = self._tail
            if tail is not None and tail[0] == c and tail[1].dtype == dtype:
                full = tail[1]
            else:
                full = torch.empty((R, self.width), dtype=dtype)
                tasks.append((self.chunk_seed(c), full))
            partial.append((c, full, a - c * R, b - a))
        workers = min(torch.get_num_threads(), len(tasks))
        if workers <= 1:
            _fill(tasks)
        else:  # contiguous groups of chunks, one per worker
            bounds = [len(tasks) * k // workers for k in range(workers + 1)]
            list(_executor(workers).map(_fill, [tasks[bounds[k]:bounds[k + 1]] for k in range(workers)]))
        self._tail = None
        for c, full, first, n in partial:
            dst = (c * R + first) - p0
            out[dst:dst + n].copy_(full[first:first + n])
            if first + n < R:  # rows of this chunk left for the next call
                self._tail = (c, full)
        self.position = p1
        return out
