"""Save and load a device array (model parameters + full state) with an exact round trip."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..files import atomic_path
from .base import DeviceModel, DeviceState
from .presets import make_device

__all__ = ["save_devices", "load_devices", "device_payload", "devices_from_payload"]

_FORMAT = "memsnn.devices"
_VERSION = 1


def device_payload(model: DeviceModel, state: DeviceState) -> dict:
    """A plain dict (tensors, numbers, strings) holding the model's parameters and the state."""
    return {
        "format": _FORMAT,
        "version": _VERSION,
        "preset": model.preset,
        "params": model.params.to_dict(),
        "time": state.time,
        "tensors": {k: v.detach().cpu() for k, v in state.tensors().items()},
    }


def devices_from_payload(payload: dict, device: torch.device | str = "cpu") -> tuple[DeviceModel, DeviceState]:
    if payload.get("format") != _FORMAT:
        raise ValueError(f"not a memsnn device file: format={payload.get('format')!r}, expected {_FORMAT!r}")
    if payload.get("version") != _VERSION:
        raise ValueError(f"device file version {payload.get('version')!r} is not supported (expected {_VERSION})")
    model = make_device(payload["preset"], params=dict(payload["params"]))
    tensors = {k: v.to(device) for k, v in payload["tensors"].items()}
    return model, DeviceState.from_tensors(tensors, payload["time"])


def save_devices(path: str | os.PathLike, model: DeviceModel, state: DeviceState, *, overwrite: bool = False) -> Path:
    """Write ``model`` and ``state`` to ``path`` (a torch file); refuses to overwrite by default."""
    with atomic_path(path, overwrite) as tmp:
        torch.save(device_payload(model, state), tmp)
    return Path(path)


def load_devices(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[DeviceModel, DeviceState]:
    """Read what :func:`save_devices` wrote; tensors land on ``device``."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    return devices_from_payload(payload, device)
