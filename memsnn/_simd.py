"""Let numba use 512-bit vectors on CPUs with AVX-512 (LLVM's Intel tuning keeps it at 256 bits).

memsnn's CPU kernels (numba: the Philox normals, the read and update kernels, the LIF loops) are
written so that LLVM vectorises them. On Intel CPUs with AVX-512, LLVM's tuning for the CPU model
("prefer-256-bit", chosen for the clock throttling of early AVX-512 parts) caps the vectors at 256
bits. Lifting the cap changes no number - the kernels are compiled without fast-math, so every lane
does the same IEEE operations in the same order at any width (the tests compare the outputs of
both settings bit for bit) - and measured on the project's Intel 2-core VM (one thread) it took
13.1 M read-noise normals from 25.5 to 16.0 ms and a 784x512 spike read over 6400 rows from 45.5
to 41.8 ms. On CPUs without AVX-512 nothing changes. (Not measured on the AMD Zen 4 VM, where
LLVM's own tuning for the model decides; the flag only lifts a cap.)

Done once, when memsnn is imported, by setting numba's ``CPU_FEATURES`` to the host's features
plus ``-prefer-256-bit`` - for the whole process, so other numba code compiled after the import
gets it too. Not done when ``NUMBA_CPU_FEATURES`` is set (the user chose) or when
``MEMSNN_NUMBA_WIDE=0`` (``1``, the default, allows it; other values are an error); it has no
effect on code numba compiled before memsnn was imported.
"""

from __future__ import annotations

import os

_ENV = "MEMSNN_NUMBA_WIDE"
_FLAG = "-prefer-256-bit"


def wide_vectors() -> bool:
    """Apply the setting of the module docstring; returns True when it was applied now or before."""
    value = os.environ.get(_ENV, "1")
    if value not in ("0", "1"):
        raise ValueError(f"{_ENV}={value!r} is not allowed: use 0 (numba's default vector width) or 1 (allow 512 bits)")
    if value == "0" or os.environ.get("NUMBA_CPU_FEATURES"):
        return False
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    if config.CPU_FEATURES is not None:
        return config.CPU_FEATURES.endswith(_FLAG)
    features = get_host_cpu_features()
    if "+avx512f" not in features.split(","):
        return False
    config.CPU_FEATURES = f"{features},{_FLAG}"
    return True
