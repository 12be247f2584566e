"""One torch CPU thread by default: memsnn's many small ops stall on a shared machine otherwise.

memsnn's arrays are small (a 256x256 crossbar is 65k elements, just over torch's grain for
splitting an op over threads), and a training step is hundreds of such ops. With torch's default
of one thread per core, every op waits at a barrier for all its threads; when another CPU-bound
process runs on the same cores, some thread is usually descheduled and every op waits for it.
Measured on the project's 2-core VM (``benchmarks/shared_load.py``, numbers in
``benchmarks/README.md``) with two spinning processes beside it: a 256x256 pulsed update took
12.6x longer at 2 threads and 2.0x at 1 thread (aihwkit's own C++ update: 2.0x and 2.2x); an
in-situ training epoch 10.3x at 2 threads and 2.3x at 1. Alone on the machine, 2 threads were at
most 1.3x faster than 1 on these sizes.

So importing memsnn sets ``torch.set_num_threads(1)`` - unless ``MEMSNN_THREADS=N`` is set (then
N threads), or ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` is set (then torch's choice from them is
left alone). ``torch.set_num_threads(n)`` after the import overrides it as usual; the ``memsnn``
command line has ``--threads``.
"""

from __future__ import annotations

import os

_ENV = "MEMSNN_THREADS"


def default_threads() -> int | None:
    """Apply the default of the module docstring; returns the thread count set, or None when
    the environment chose (``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``)."""
    import torch

    value = os.environ.get(_ENV)
    if value is not None:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{_ENV}={value!r} is not allowed: must be an integer >= 1 (torch CPU threads)")
        torch.set_num_threads(n)
        return n
    if "OMP_NUM_THREADS" in os.environ or "MKL_NUM_THREADS" in os.environ:
        return None
    torch.set_num_threads(1)
    return 1
