"""Find and load saved crossbars: one crossbar file, a multi-layer file, or a run directory."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .array import Crossbar

__all__ = ["load_crossbars", "save_crossbars"]

_MULTI = "memsnn.crossbars"


def save_crossbars(path: str | os.PathLike, layers: dict[str, Crossbar], *, overwrite: bool = False) -> Path:
    """Save several named crossbars (e.g. the layers of a network) in one file."""
    from ..files import atomic_path

    if not layers:
        raise ValueError("no crossbars to save")
    payload = {"format": _MULTI, "version": 1, "layers": {name: x.state_dict() for name, x in layers.items()}}
    with atomic_path(path, overwrite) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _from_file(path: Path, device) -> dict[str, Crossbar]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, or unsafe content
        raise ValueError(f"{path} is not a saved memsnn crossbar: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a saved memsnn crossbar")
    if data.get("format") == "memsnn.crossbar":
        return {path.stem: Crossbar.from_state_dict(data, device)}
    if data.get("format") == _MULTI:
        return {name: Crossbar.from_state_dict(d, device) for name, d in data["layers"].items()}
    raise ValueError(f"{path} is not a saved memsnn crossbar (format={data.get('format')!r})")


def load_crossbars(source: str | os.PathLike, device: torch.device | str = "cpu") -> dict[str, Crossbar]:
    """``{name: Crossbar}`` from a crossbar file, a multi-layer file, or every such ``*.pt`` file
    below a directory (a run directory); names are file stems (joined with the layer name for
    multi-layer files found in a directory)."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if source.is_file():
        return _from_file(source, device)
    found: dict[str, Crossbar] = {}
    for path in sorted(source.rglob("*.pt")):
        try:
            layers = _from_file(path, device)
        except ValueError:
            continue  # other torch files in a run directory
        for name, xbar in layers.items():
            key = name if name == path.stem else f"{path.stem}.{name}"
            found[key] = xbar
    if not found:
        raise ValueError(f"no saved memsnn crossbar found under {source}")
    return found
