"""Run directories: every run writes into a new directory; an old one is never reused."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

__all__ = ["new_run_dir"]


def new_run_dir(base: str | os.PathLike = "runs", name: str = "run") -> Path:
    """Create and return ``base/<name>-YYYYmmdd-HHMMSS[-N]``; ``N`` makes it unique if needed.

    The directory is created with ``exist_ok=False``, so two processes can never share one.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"run name {name!r} may only contain letters, digits, '.', '_' and '-'")
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = base / (f"{name}-{stamp}" if i == 0 else f"{name}-{stamp}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory under {base}")
