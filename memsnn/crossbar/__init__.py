"""Crossbar arrays: mapping, periphery, IR drop, tiling, programming, pulse schedules, maps.

See ``README.md`` in this folder for what lives where.
"""

from .array import Crossbar, CrossbarParams, ScheduleResult
from .mapping import conductances_to_weights, from_linear_weight, to_linear_weight, weights_to_conductances
from .periphery import PeripheryParams
from .programming import ProgramReport, program_weights
from .schedule import DensePhase, OuterPhase, PulseSchedule

__all__ = [
    "Crossbar", "CrossbarParams", "ScheduleResult", "PeripheryParams",
    "ProgramReport", "program_weights", "DensePhase", "OuterPhase", "PulseSchedule",
    "conductances_to_weights", "weights_to_conductances", "from_linear_weight", "to_linear_weight",
]
