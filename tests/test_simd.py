"""memsnn's import-time numba vector-width setting (memsnn/_simd.py), in fresh interpreters: when it
applies, and that it changes no number (Philox normals, a noisy relative-noise spike read, the LIF
loops: bit for bit the same with and without it)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUN = """
import hashlib, sys, torch, memsnn
from numba.core import config
from memsnn.philox import normals
from memsnn.crossbar.read_kernel import spike_read
from memsnn.crossbar.multistep import run_lif
from memsnn.crossbar.neurons import LIFParams
g0 = torch.Generator().manual_seed(0)
z = normals(12345, 7, 100_003)
x = (torch.rand(200, 300, generator=g0) < 0.2).float()
g, var = torch.randn(2, 160, 96, generator=g0), torch.rand(2, 160, 96, generator=g0) * 0.05
y = torch.empty(200, 96)
spike_read(x, g, var=var, var_const=0.01, out_var=0.02, noise_key=3, noise_row=0, bound=4.0, adc=True, scale=0.5, out=y)
s, v = run_lif(torch.randn(20, 16, 96, generator=g0), LIFParams(beta=0.9))
h = hashlib.sha256(b"".join(t.numpy().tobytes() for t in (z, y, s, v))).hexdigest()
print(config.CPU_FEATURES is not None and config.CPU_FEATURES.endswith("-prefer-256-bit"), h)
"""


def _after_import(**env) -> tuple[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("MEMSNN_NUMBA_WIDE", "NUMBA_CPU_FEATURES")}
    clean.update(env, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _RUN], env=clean, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return "error", out.stderr.strip().splitlines()[-1]
    applied, digest = out.stdout.split()
    return applied, digest


def test_wide_vectors_apply_on_avx512_only_and_change_no_number():
    from numba.core.codegen import get_host_cpu_features

    avx512 = "+avx512f" in get_host_cpu_features().split(",")
    wide, h_wide = _after_import()
    narrow, h_narrow = _after_import(MEMSNN_NUMBA_WIDE="0")
    assert wide == str(avx512) and narrow == "False"
    assert h_wide == h_narrow  # the same normals, read codes and spikes at either vector width


def test_a_bad_setting_is_named():
    status, message = _after_import(MEMSNN_NUMBA_WIDE="yes")
    assert status == "error"
    assert "MEMSNN_NUMBA_WIDE='yes' is not allowed: use 0" in message
