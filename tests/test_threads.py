"""memsnn's import-time torch thread default (memsnn/_threads.py), in fresh interpreters."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _threads_after_import(**env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("MEMSNN_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    clean.update(env)
    clean["PYTHONPATH"] = str(ROOT)
    code = "import torch; torch.set_num_threads(2); import memsnn; print(torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


def test_import_sets_one_thread_unless_the_environment_says_otherwise():
    assert _threads_after_import() == "1"
    assert _threads_after_import(MEMSNN_THREADS="2") == "2"
    assert _threads_after_import(OMP_NUM_THREADS="2") == "2"  # torch's own choice is left alone
    assert "MEMSNN_THREADS='x' is not allowed" in _threads_after_import(MEMSNN_THREADS="x")
