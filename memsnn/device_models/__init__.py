"""Device models: the physics of one memristor type, vectorised over an array of devices.

See ``README.md`` in this folder for what lives where and how to add a preset.
"""

from .base import DeviceModel, DeviceParams, DeviceState
from .ideal import LinearDevice, LinearParams
from .pcm import PCMDevice, PCMParams
from .presets import PRESETS, make_device, model_class, preset_names
from .rram import SoftBoundsDevice, SoftBoundsParams
from .srtio3 import SrTiO3Device, SrTiO3Params
from .storage import load_devices, save_devices

__all__ = [
    "DeviceModel", "DeviceParams", "DeviceState",
    "LinearDevice", "LinearParams", "PCMDevice", "PCMParams",
    "SoftBoundsDevice", "SoftBoundsParams", "SrTiO3Device", "SrTiO3Params",
    "PRESETS", "make_device", "model_class", "preset_names",
    "save_devices", "load_devices",
]
