"""Interoperability with IBM's aihwkit (see ``README.md`` in this folder).

Importing this package does not import aihwkit; the functions that need it import it when called.
"""

from .aihwkit_backend import BACKENDS, AihwkitCrossbar, make_crossbar
from .aihwkit_export import AihwkitExport, FidelityReport, export_device, fidelity_report
from .aihwkit_import import (
    SUPPORTED_DEVICES, SUPPORTED_NOISE_MODELS, ImportResult, PiecewiseStepDevice, PiecewiseStepParams,
    UnsupportedDeviceError, import_device, import_noise_model,
)

__all__ = [
    "BACKENDS", "AihwkitCrossbar", "make_crossbar",
    "AihwkitExport", "FidelityReport", "export_device", "fidelity_report",
    "SUPPORTED_DEVICES", "SUPPORTED_NOISE_MODELS", "ImportResult", "PiecewiseStepDevice", "PiecewiseStepParams",
    "UnsupportedDeviceError", "import_device", "import_noise_model",
]
