"""The registry of device presets: name -> model class (whose parameter defaults are the preset)."""

from __future__ import annotations

from typing import Any

from ..params import ParameterError, unknown_key_message
from .base import DeviceModel, DeviceParams
from .ideal import LinearDevice
from .pcm import PCMDevice
from .rram import SoftBoundsDevice
from .srtio3 import SrTiO3Device

__all__ = ["PRESETS", "make_device", "preset_names", "model_class"]

#: preset name -> device model class; the class's parameter defaults are the preset.
PRESETS: dict[str, type[DeviceModel]] = {
    "srtio3": SrTiO3Device,
    "ideal": LinearDevice,
    "pcm": PCMDevice,
    "rram": SoftBoundsDevice,
}


#: models that are not presets (their defaults mean nothing alone: they are built from imported or
#: fitted data) but that saved devices and crossbars name: name -> "module:class", imported on use.
BUILT_MODELS: dict[str, str] = {
    "piecewise": "memsnn.interop.aihwkit_import:PiecewiseStepDevice",
}


def preset_names() -> list[str]:
    return list(PRESETS)


def model_class(preset: str) -> type[DeviceModel]:
    """The model class of a preset name (or of a built model such as ``piecewise``, so that saved
    files naming it load); unknown names raise an error listing the valid presets."""
    if preset in PRESETS:
        return PRESETS[preset]
    if preset in BUILT_MODELS:
        import importlib

        module, name = BUILT_MODELS[preset].split(":")
        return getattr(importlib.import_module(module), name)
    raise ValueError(unknown_key_message(preset, preset_names()).replace("parameter", "device preset"))


def make_device(preset: str | DeviceModel = "srtio3", params: DeviceParams | dict | None = None, **overrides: Any) -> DeviceModel:
    """Build a device model from a preset name, overriding any parameter.

    >>> model = make_device("srtio3", read_noise_std=0.0, drift_nu=0.1)

    Args:
        preset: ``"srtio3"``, ``"ideal"``, ``"pcm"`` or ``"rram"`` (or a model, returned as is
            unless overrides are given).
        params: a full parameter set or a dict of overrides (merged with ``overrides``).
        overrides: individual parameter values; an unknown name is an error that suggests the
            closest valid one.
    """
    if isinstance(preset, DeviceModel):
        return type(preset)(preset.params, **overrides) if overrides else preset
    cls = model_class(preset)
    if isinstance(params, DeviceParams):
        return cls(params, **overrides)
    merged = dict(params or {})
    merged.update(overrides)
    try:
        return cls(**merged)
    except ParameterError as err:
        raise ParameterError(err.errors, preset) from None
