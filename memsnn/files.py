"""File writing rules shared by every export: never overwrite silently, write atomically."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["check_writable", "atomic_path", "FileExistsRefusal"]


class FileExistsRefusal(FileExistsError):
    """Raised instead of overwriting an existing result or export."""


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path; refuse if it exists and ``overwrite`` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsRefusal(f"{path} already exists; refusing to overwrite it (pass overwrite=True / --overwrite)")
    return path


@contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path`` atomically.

    A crash half-way leaves no partial file behind under the final name.
    """
    final = check_writable(path, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if final.exists() and not overwrite:  # appeared while we were writing
            raise FileExistsRefusal(f"{final} appeared while writing; refusing to overwrite it")
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
