"""Find and load saved crossbars: one crossbar file, a multi-layer file, or a run directory."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .array import Crossbar

__all__ = ["load_crossbars", "save_crossbars", "read_payload"]

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


def read_payload(path: str | os.PathLike, what: str = "saved memsnn crossbar") -> dict:
    """The dict a memsnn ``torch.save`` wrote to ``path`` (read with ``weights_only=True``);
    ValueError naming the file when it is not a torch file or does not hold a dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file (text, empty, truncated), or unsafe content
        raise ValueError(f"{path} is not a {what} (not a torch file: {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'unreadable'})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a {what} (it holds a {type(data).__name__}, not a dict)")
    return data


def crossbar_from_payload(path: Path, data: dict, device) -> Crossbar:
    """:meth:`Crossbar.from_state_dict`, with any malformed content reported as a ValueError
    naming ``path``."""
    try:
        return Crossbar.from_state_dict(data, device)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise ValueError(f"{path} is not a valid saved memsnn crossbar: {type(err).__name__}: {err}") from None


def _from_file(path: Path, device) -> dict[str, Crossbar]:
    data = read_payload(path)
    if data.get("format") == "memsnn.crossbar":
        return {path.stem: crossbar_from_payload(path, data, device)}
    if data.get("format") == _MULTI:
        layers = data.get("layers")
        if not isinstance(layers, dict) or not layers:
            raise ValueError(f"{path} is a multi-layer crossbar file without layers")
        return {name: crossbar_from_payload(path, d, device) for name, d in layers.items()}
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
