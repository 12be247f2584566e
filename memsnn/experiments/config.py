"""Experiment configs: one TOML file describes one experiment completely.

An :class:`ExperimentConfig` holds everything :func:`memsnn.experiments.runner.run_experiment`
needs: the dataset, the input code, the network, the device and its non-idealities, the crossbar
and its periphery, the learning rule, the pulse scheduler, training and evaluation. It loads from
and saves to TOML (:func:`load_config`, :func:`save_config`, :meth:`ExperimentConfig.to_toml`);
:func:`example_toml` is a commented file listing every section, and loads to the defaults
(digits on the srtio3 preset, supervised STDP in-situ, 3 epochs).

Sections (``[section]`` in the file, ``section.key`` in messages and overrides)::

    name, seed            label (optional) and the seed of split, weights, devices and spikes
    [data]                dataset, path, label_column, test_fraction, scaling, limit, classes,
                          task_params (a table: the options of a generated temporal task)
    [encoder]             Encoder fields (kind, num_steps, ...); sg / ssdp only
    [network]             hidden (neurons per hidden layer), beta (LIF decay per step)
    [device]              preset, device-agnostic knobs, any field of the preset's parameters
    [periphery]           PeripheryParams fields (dac_bits, adc_bits, ...)
    [crossbar]            CrossbarParams fields (tile_rows, ir_drop, r_wire, ...)
    [rule]                name, insitu; [rule.params] the rule's fields
    [scheduler]           SchedulerParams fields (quantisation, k_max, ...)
    [training]            epochs, batch_size; input_noise, spike_drop, spike_insert (noisy training)
    [evaluation]          times (s after training), jitter (sigmas, time steps); input_noise,
                          spike_drop, spike_insert (metric acc_noisy; a sweep key like any other)

``[data]``, ``[network]``, ``[training]`` and ``[evaluation]`` always hold every field (defaults
filled in). ``[encoder]``, ``[device]``, ``[periphery]``, ``[crossbar]``, ``[rule.params]`` and
``[scheduler]`` hold only the keys you set: what is absent keeps the default of the class, the
preset or the rule, so that a sweep over ``device.preset`` or ``rule.name`` starts every point from
that point's own defaults. An absent ``[encoder]``, ``[periphery]``, ``[crossbar]`` or
``[scheduler]`` leaves the rule's own choice (e.g. sg / ssdp use
``SchedulerParams(step="state_aware", k_max=1)``, stdp on native crossbars
``step="state_aware"``); a present one is built from that choice plus its keys.

TOML has no null: an absent optional field means None and saving omits None values. Where None
is not the default (``device.g_init`` of srtio3 is 10 nS; None means g_min), write the string
``"none"``.

Device non-idealities, one key each on any preset where they exist::

    read noise        device.read_noise_std      (pcm: device.read_noise_scale, its 1/f noise)
    c2c spread        device.step_std
    levels            device.n_levels
    drift exponent    device.drift_nu            (pcm: device.drift_scale; its nu depends on G)
    volatile tau      device.tau_volatile
    d2d spread        device.d2d_scale           multiplies every *_dtod field of the preset
    stuck devices     device.stuck_fraction      p_stuck_min = p_stuck_max = stuck_fraction / 2
    nonlinearity      device.nonlinearity        srtio3 only (see DEVICE_KNOBS)
    asymmetry         device.asymmetry           srtio3 and rram (see DEVICE_KNOBS)

Validation (:meth:`ExperimentConfig.from_dict`, :func:`load_config`,
:meth:`ExperimentConfig.with_overrides`) reports every problem at once in one :class:`ConfigError`,
each message naming the dotted key, the bad value and what is allowed; an unknown key gets the
closest valid name.

Example::

    cfg = load_config("exp.toml")
    cfg = cfg.with_overrides({"device.read_noise_std": "0.02", "rule.params.a_plus": 0.1, "seed": 3})
    model = cfg.device_model()          # the configured DeviceModel
    save_config(cfg, "exp-2.toml")
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple

import tomli_w

from ..crossbar.array import CrossbarParams
from ..crossbar.coding import Encoder
from ..crossbar.periphery import PeripheryParams
from ..crossbar.perturb import InputNoise
from ..device_models import DeviceModel, DeviceParams, make_device, preset_names
from ..device_models.presets import PRESETS
from ..files import atomic_path
from ..learning.scheduler import SchedulerParams
from ..params import ParameterError, Params, _check_field, param, unknown_key_message
from .datasets import SCALINGS, _check_args, check_csv_header, dataset_names, dataset_time_steps
from .temporal import TASK_PARAMS, task_params_errors
from .methods import EXTRA_FIELDS, RULES, encoder_problem, rule_param_fields, rule_params_errors

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "DataSection",
    "NetworkSection",
    "DeviceSection",
    "RuleSection",
    "TrainingSection",
    "EvaluationSection",
    "DEVICE_KNOBS",
    "SECTIONS",
    "load_config",
    "save_config",
    "example_toml",
    "write_example",
]

#: sections of a config file, in the order they are written
SECTIONS = ("data", "encoder", "network", "device", "periphery", "crossbar", "rule", "scheduler",
            "training", "evaluation")
_TOP_KEYS = ("name", "seed")
#: sections that hold only the keys set, validated against these classes
_COMPONENTS: dict[str, type[Params]] = {
    "encoder": Encoder,
    "periphery": PeripheryParams,
    "crossbar": CrossbarParams,
    "scheduler": SchedulerParams,
}

#: device-agnostic knobs of ``[device]``: name -> (allowed, what it sets per preset)
DEVICE_KNOBS: dict[str, tuple[str, dict[str, str]]] = {
    "d2d_scale": ("a number >= 0", {p: "every *_dtod field x d2d_scale (after explicit overrides)" for p in PRESETS}),
    "stuck_fraction": ("a probability in [0, 1]",
                       {p: "p_stuck_min = p_stuck_max = stuck_fraction / 2" for p in PRESETS}),
    # srtio3: R(n) = R0 + R1 n**c with R0 << R1 n**c over the window, so G ~ n**(-c) / R1: linear in
    # the pulse count n for c = -1, saturating (steps shrink as G rises) for -1 < c < 0.
    "nonlinearity": ("a number < 1", {
        "srtio3": "c0 = nonlinearity - 1 - c1 * v_set, i.e. c(v_set) = nonlinearity - 1 and "
                  "G ~ n**(1 - nonlinearity): 0 linear in the pulse count, > 0 steps shrink as G "
                  "rises (default 0.377), < 0 steps grow; the mirrored RESET law follows (same c at "
                  "v_reset = v_set)",
    }),
    # the ratio of a RESET step to a SET step at the middle of the window, SET law unchanged
    "asymmetry": ("a number > 0", {
        "srtio3": "reset_efficiency = asymmetry (equivalent pulses per RESET pulse; RESET step ~ "
                  "asymmetry x SET step at mid-window; default 0.5)",
        "rram": "alpha_reset = asymmetry * alpha_set (RESET step = asymmetry x SET step at "
                "mid-window; default 1.667)",
    }),
}
#: why a preset lacks a knob (shown in the error)
_KNOB_MISSING = {
    ("nonlinearity", "rram"): "its soft-bounds law has a fixed shape (the step falls linearly with the distance "
                              "to the bound); alpha_set / alpha_reset set the step size, not the shape",
    ("nonlinearity", "pcm"): "its soft-bounds SET law has a fixed shape; alpha_set sets the step size, not the shape",
    ("nonlinearity", "ideal"): "it is linear by definition",
    ("asymmetry", "pcm"): "its RESET is abrupt (any RESET pulse returns the device to g_min)",
    ("asymmetry", "ideal"): "SET and RESET share one step by definition",
}
#: preset fields a knob sets (an explicit override of them too is a conflict)
_KNOB_TARGETS: dict[str, dict[str, tuple[str, ...]]] = {
    "stuck_fraction": {p: ("p_stuck_min", "p_stuck_max") for p in PRESETS},
    "nonlinearity": {"srtio3": ("c0",)},
    "asymmetry": {"srtio3": ("reset_efficiency",), "rram": ("alpha_reset",)},
}


class ConfigError(ParameterError):
    """An invalid experiment config; ``.errors`` lists every problem, each with its dotted key."""

    def __init__(self, errors: list[str], source: str = ""):
        self.errors = list(errors)
        self.source = str(source)
        head = f"invalid experiment config {self.source}" if self.source else "invalid experiment config"
        ValueError.__init__(self, head + ":\n  - " + "\n  - ".join(self.errors))

    def __reduce__(self):  # picklable across processes (sweeps) with its list of errors intact
        return (type(self), (self.errors, self.source))


# ----------------------------------------------------------------------------------------------------
# field specs, coercion and string parsing
# ----------------------------------------------------------------------------------------------------
class _Spec(NamedTuple):
    """What a key holds: ``kind`` is float, int, bool, str, tuple or any."""

    kind: str
    optional: bool = False
    default: Any = None
    choices: tuple | None = None


def _specs(cls: type) -> dict[str, _Spec]:
    """Field name -> spec of a Params dataclass (types are the annotation strings)."""
    out = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind = str(f.type).split("|")[0].strip()
        out[f.name] = _Spec(kind if kind in ("float", "int", "bool", "str", "tuple") else "any",
                            bool(f.metadata.get("optional")), f.default, f.metadata.get("choices"))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _coerce(key: str, spec: _Spec, value: Any) -> tuple[Any, str | None]:
    """``value`` in the field's canonical type (int -> float, integral float -> int, list -> tuple,
    ``"none"`` -> None where optional), or an error for types the field's own check does not see."""
    if value is None:
        return None, None
    if spec.optional and spec.kind != "str" and isinstance(value, str) and value.strip().lower() == "none":
        return None, None
    if spec.kind == "float" and _is_number(value):
        return float(value), None
    if spec.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value), None
    if spec.kind == "bool" and not isinstance(value, bool):
        return value, f"{key}={value!r} has type {type(value).__name__}: must be true or false"
    if spec.kind == "str" and isinstance(value, os.PathLike):
        return os.fspath(value), None
    if spec.kind == "str" and not isinstance(value, str) and spec.choices is None:
        return value, f"{key}={value!r} has type {type(value).__name__}: must be a string"
    if spec.kind == "tuple":
        if isinstance(value, (list, tuple)):
            return tuple(value), None
        return value, f"{key}={value!r} has type {type(value).__name__}: must be an array, e.g. [1, 2]"
    return value, None


def _parse_scalar(text: str) -> Any:
    """A number if ``text`` reads as one (int before float), else the stripped string."""
    t = text.strip()
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def _parse_text(key: str, spec: _Spec, text: str) -> Any:
    """Parse a command-line string into the field's type; raises ValueError naming the key."""
    t = text.strip()
    if spec.choices is not None and t in spec.choices:  # e.g. crossbar.ir_drop = "none" is a choice, not None
        return t
    if t.lower() in ("none", "null"):
        return None
    if spec.kind == "str":
        return text
    if spec.kind == "bool":
        low = t.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"{key}={text!r} is not a boolean: use true or false")
    if spec.kind == "int":
        try:
            return int(t)
        except ValueError:
            raise ValueError(f"{key}={text!r} is not an integer") from None
    if spec.kind == "float":
        try:
            return float(t)
        except ValueError:
            raise ValueError(f"{key}={text!r} is not a number") from None
    if spec.kind == "tuple":
        if t.startswith("["):
            try:
                return tuple(tomllib.loads(f"v = {t}")["v"])
            except tomllib.TOMLDecodeError as err:
                raise ValueError(f"{key}={text!r} is not an array: {err}") from None
        return tuple(_parse_scalar(p) for p in re.split(r"[,;\s]+", t) if p)
    try:  # anything else: a TOML literal if it is one
        return tomllib.loads(f"v = {t}")["v"]
    except tomllib.TOMLDecodeError:
        return text


_FIELD_MSG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")


def _prefixed(prefix: str, errors: list[str], names: list[str] | dict, note: str = "") -> list[str]:
    """Messages of a Params class rewritten with dotted keys: ``field=...`` -> ``prefix.field=...``;
    messages about several fields become ``prefix: ...``."""
    out = []
    for e in errors:
        m = _FIELD_MSG.match(e)
        if m and m.group(1) in names:
            out.append(f"{prefix}.{e}{note}")
        else:
            out.append(f"{prefix}{note}: {e}")
    return out


def _unknown(prefix: str, key: str, valid: list[str]) -> str:
    dotted = f"{prefix}.{key}" if prefix else key
    return unknown_key_message(key, valid).replace(repr(key), repr(dotted), 1)


def _check_overrides(prefix: str, specs: dict[str, _Spec], values: Mapping[str, Any],
                     valid: list[str] | None = None, note: str = "") -> tuple[dict[str, Any], list[str]]:
    """Coerce the known keys of an overrides mapping; a None whose default is None is dropped.
    Returns ``(known values, errors)``; unknown keys are errors (closest valid name)."""
    out, errors = {}, []
    valid = list(specs) if valid is None else valid
    for k, v in values.items():
        if k not in specs:
            errors.append(_unknown(prefix, k, valid) + note)
            continue
        v, err = _coerce(f"{prefix}.{k}", specs[k], v)
        if err:
            errors.append(err)
        elif not (v is None and specs[k].default is None):
            out[k] = v
    return out, errors


def _class_errors(cls: type[Params], prefix: str, values: dict[str, Any], note: str = "") -> list[str]:
    """Every problem of ``cls(**values)``, with dotted keys."""
    try:
        cls(**values)
    except ParameterError as err:
        return _prefixed(prefix, err.errors, cls.field_names(), note)
    return []


def _toml_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides in TOML form: tuples as lists, None (not the default here) as ``"none"``."""
    return {k: ("none" if v is None else list(v) if isinstance(v, tuple) else v) for k, v in values.items()}


# ----------------------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------------------
class _Section(Params):
    """A Params section whose messages carry dotted keys and whose values are coerced to their
    field's type (int -> float, list -> tuple, ``"none"`` -> None) before the checks."""

    _section = ""

    def __post_init__(self) -> None:
        errors, bad = [], set()
        specs = _specs(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value, err = _coerce(f"{self._section}.{f.name}", specs[f.name], getattr(self, f.name))
            if err:
                errors.append(err)
                bad.add(f.name)
            else:
                object.__setattr__(self, f.name, value)
        fields_errors = [e for f in dataclasses.fields(self) if f.name not in bad  # type: ignore[arg-type]
                         for e in _check_field(f, getattr(self, f.name))]
        errors.extend(_prefixed(self._section, fields_errors, self.field_names()))
        if not errors:
            self._normalise()
            errors.extend(_prefixed(self._section, list(self._cross_checks()), self.field_names()))
        if errors:
            raise ConfigError(errors)

    def _normalise(self) -> None:
        """Canonical values after the field checks (subclasses)."""

    def to_toml_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.to_dict().items() if v is not None}


@dataclass(frozen=True)
class DataSection(_Section):
    """``[data]``: arguments of :func:`memsnn.experiments.datasets.load_dataset` (its seed is the
    config's ``seed``)."""

    _section = "data"

    dataset: str = param("digits", check=None, choices=tuple(dataset_names()), doc="dataset name")
    path: str | None = param(None, check=None, optional=True,
                             doc="csv: the file; fashion_mnist: directory of the IDX files (relative to the working directory)")
    label_column: str | None = param(None, check=None, optional=True, doc="csv only: the column holding the labels")
    test_fraction: float = param(0.25, unit="1", check=">0", doc="fraction of the samples in the test split, in (0, 1)")
    scaling: str = param("minmax", check=None, choices=SCALINGS, doc="feature scaling fitted on the training split")
    limit: int | None = param(None, unit="samples", check="int>=1", optional=True,
                              doc="keep the first N training samples and N // 6 test samples (None: all)")
    classes: tuple | None = param(None, check=None, optional=True,
                                  doc="keep only these class indices, relabelled 0..k-1 in this order (None: all)")
    task_params: dict | None = param(None, check=None, optional=True,
                                     doc="generated temporal tasks (dmts, spike_patterns): their options, e.g. "
                                         "{delay = 50} (None: the defaults)")

    def __post_init__(self) -> None:
        errors = []
        try:
            super().__post_init__()
        except ConfigError as err:
            errors = list(err.errors)
        errors.extend(self._task_params_messages())
        if errors:
            raise ConfigError(errors)
        if self.task_params is not None:  # canonical: the keys given, integral floats of int fields as ints
            cls = TASK_PARAMS.get(self.dataset)
            ints = {f.name for f in dataclasses.fields(cls) if f.type == "int"} if cls else set()
            canon = {k: int(v) if k in ints else v for k, v in self.task_params.items()}
            object.__setattr__(self, "task_params", canon or None)

    def _task_params_messages(self) -> list[str]:
        """Every problem of ``task_params``, with the dotted key ``data.task_params.<option>``."""
        if not isinstance(self.dataset, str) or self.dataset not in dataset_names():
            return []  # the dataset's own message says it
        out = []
        for e in task_params_errors(self.dataset, self.task_params):
            m = _FIELD_MSG.match(e)
            if e.startswith("unknown parameter '"):
                out.append(e.replace("unknown parameter '", "unknown parameter 'data.task_params.", 1))
            elif m and self.dataset in TASK_PARAMS and m.group(1) in TASK_PARAMS[self.dataset].field_names():
                out.append(f"data.task_params.{e}")
            else:
                out.append(f"data.{e}")
        return out

    def _cross_checks(self) -> Iterator[str]:
        try:  # the loader's own argument rules (csv needs path and label_column, ...); task_params: above
            _check_args(self.dataset, 0, self.test_fraction, self.scaling, self.path, self.label_column, self.limit,
                        self.classes)
            if self.dataset == "csv":  # the header only: a missing label column is found before any run
                check_csv_header(self.path, self.label_column)
        except (ValueError, TypeError, FileNotFoundError) as err:
            yield str(err)

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``load_dataset`` (without ``seed``)."""
        d = self.to_dict()
        return {"name": d.pop("dataset"), **d}


@dataclass(frozen=True)
class NetworkSection(_Section):
    """``[network]``: the surrogate-gradient network (sg, ssdp) and CSDP's layers; STDP has one
    layer of ``neurons_per_class`` neurons per class and ignores it."""

    _section = "network"

    hidden: tuple = param((64,), check=None, doc="neurons per hidden layer, e.g. [128] or [256, 128]")
    beta: float = param(0.9, unit="1", check="prob", doc="LIF membrane decay per time step")

    def _cross_checks(self) -> Iterator[str]:
        h = self.hidden
        if not h or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in h):
            yield f"hidden={list(h)!r} is not allowed: must be a non-empty list of integers >= 1 (neurons per layer)"


@dataclass(frozen=True)
class _InputNoiseFields(_Section):
    """Input-noise fields shared by ``[training]`` (noisy training) and ``[evaluation]`` (metric
    ``acc_noisy``); see :class:`~memsnn.crossbar.perturb.InputNoise`."""

    input_noise: float = param(0.0, unit="1", check=">=0",
                               doc="Gaussian feature noise, std as a fraction of each feature's training range")
    spike_drop: float = param(0.0, unit="1", check="prob", doc="each input spike deleted with this probability")
    spike_insert: float = param(0.0, unit="1", check="prob",
                                doc="a spurious input spike in each empty slot with this probability")

    def noise(self) -> InputNoise | None:
        """The section's input noise, or None when it is off."""
        noise = InputNoise(feature=self.input_noise, drop=self.spike_drop, insert=self.spike_insert)
        return noise if noise.active else None


@dataclass(frozen=True)
class TrainingSection(_InputNoiseFields):
    """``[training]``: arguments of :func:`memsnn.learning.loop.fit`."""

    _section = "training"

    epochs: int = param(3, unit="epochs", check="int>=1", doc="passes over the training split")
    batch_size: int = param(32, unit="samples", check="int>=1", doc="mini-batch size")


@dataclass(frozen=True)
class EvaluationSection(_InputNoiseFields):
    """``[evaluation]``: arguments of :func:`memsnn.experiments.methods.evaluate`."""

    _section = "evaluation"

    times: tuple = param((0.0, 3600.0, 86400.0), check=None,
                         doc="seconds after training at which to measure accuracy (increasing, >= 0)")
    jitter: tuple = param((2.0,), check=None, doc="input spike-time jitter sigmas to test, in time steps (>= 0)")

    def _cross_checks(self) -> Iterator[str]:
        t = self.times
        if any(not _is_number(v) or not math.isfinite(v) or v < 0 for v in t) or any(
                b <= a for a, b in zip(t, t[1:])):
            yield f"times={list(t)!r} is not allowed: must be strictly increasing numbers >= 0 (seconds)"
        j = self.jitter
        if any(not _is_number(v) or not math.isfinite(v) or v < 0 for v in j) or len(set(j)) != len(j):
            yield f"jitter={list(j)!r} is not allowed: must be distinct numbers >= 0 (time steps)"

    def _normalise(self) -> None:
        for name in ("times", "jitter"):
            v = getattr(self, name)
            if all(_is_number(x) for x in v):
                object.__setattr__(self, name, tuple(float(x) for x in v))


_FULL_SECTIONS: dict[str, type[_Section]] = {
    "data": DataSection,
    "network": NetworkSection,
    "training": TrainingSection,
    "evaluation": EvaluationSection,
}


@dataclass(frozen=True)
class DeviceSection:
    """``[device]``: a preset, device-agnostic knobs (:data:`DEVICE_KNOBS`) and overrides of the
    preset's own parameters (``params``; flat in the TOML table)."""

    preset: str = "srtio3"
    params: dict = field(default_factory=dict)
    d2d_scale: float | None = None
    stuck_fraction: float | None = None
    nonlinearity: float | None = None
    asymmetry: float | None = None

    def __post_init__(self) -> None:
        errors = self._validate()
        if errors:
            raise ConfigError(errors)

    @property
    def knobs(self) -> dict[str, float]:
        """The knobs that are set."""
        return {k: getattr(self, k) for k in DEVICE_KNOBS if getattr(self, k) is not None}

    def _validate(self) -> list[str]:
        if not isinstance(self.preset, str) or self.preset not in PRESETS:
            msg = unknown_key_message(str(self.preset), preset_names()).replace("unknown parameter", "unknown preset", 1)
            return [f"device.preset={self.preset!r} is not allowed: {msg}"]
        if not isinstance(self.params, Mapping):
            return [f"device params must be a mapping of {self.preset!r} parameters, got {type(self.params).__name__}"]
        cls = PRESETS[self.preset].params_class
        specs = _specs(cls)
        note = f" (preset {self.preset!r})"
        errors, errs = [], []
        for k in self.params:
            if k in specs:
                continue
            owners = [p for p, m in PRESETS.items() if k in m.params_class.field_names()]
            if owners:
                errs.append(f"device.{k} is a parameter of preset {', '.join(map(repr, owners))}, not of preset "
                            f"{self.preset!r} (its parameters: {', '.join(specs)})")
            else:
                errs.append(_unknown_device(k, self.preset, specs))
        known, coerce_errs = _check_overrides("device", specs, {k: v for k, v in self.params.items() if k in specs})
        errors.extend(errs + coerce_errs)
        object.__setattr__(self, "params", known)
        good_knobs = {}
        for knob, (allowed, per_preset) in DEVICE_KNOBS.items():
            value = getattr(self, knob)
            if isinstance(value, str) and value.strip().lower() == "none":
                value = None
                object.__setattr__(self, knob, None)
            if value is None:
                continue
            if not _is_number(value) or not math.isfinite(value):
                errors.append(f"device.{knob}={value!r} is not allowed: must be {allowed}")
                continue
            value = float(value)
            object.__setattr__(self, knob, value)
            ok = {"d2d_scale": value >= 0, "stuck_fraction": 0 <= value <= 1, "nonlinearity": value < 1,
                  "asymmetry": value > 0}[knob]
            if not ok:
                errors.append(f"device.{knob}={value!r} is not allowed: must be {allowed}")
                continue
            if self.preset not in per_preset:
                why = _KNOB_MISSING.get((knob, self.preset), "")
                errors.append(f"device.{knob}={value!r}: preset {self.preset!r} has no {knob} knob"
                              f"{' (' + why + ')' if why else ''}; presets with it: {', '.join(per_preset)}")
                continue
            clash = [t for t in _KNOB_TARGETS.get(knob, {}).get(self.preset, ()) if t in known]
            if clash:
                errors.append(f"device.{knob}={value!r} sets {', '.join(clash)}; do not also set "
                              f"{', '.join('device.' + c for c in clash)}")
                continue
            good_knobs[knob] = value
        resolved = _resolve_device(cls, known, good_knobs)
        if "asymmetry" in good_knobs and resolved.get("alpha_reset", 0.0) >= 1:  # rram
            errors.append(f"device.asymmetry={good_knobs['asymmetry']!r} is too large for alpha_set="
                          f"{resolved.get('alpha_set', _default(cls, 'alpha_set'))!r}: alpha_reset = asymmetry * "
                          f"alpha_set = {resolved['alpha_reset']!r} must be < 1")
            resolved.pop("alpha_reset")
        errors.extend(_class_errors(cls, "device", resolved, note))
        return errors

    def resolved_params(self) -> dict[str, Any]:
        """The preset overrides with the knobs applied (what :meth:`model` passes to the preset)."""
        return _resolve_device(PRESETS[self.preset].params_class, self.params, self.knobs)

    def model(self) -> DeviceModel:
        """The configured device model."""
        return make_device(self.preset, **self.resolved_params())

    def to_toml_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, **self.knobs, **_toml_overrides(self.params)}


def _unknown_device(key: str, preset: str, specs: Mapping[str, _Spec]) -> str:
    msg = _unknown("device", key, [*specs, *DEVICE_KNOBS, "preset"])
    return msg.replace(repr(f"device.{key}"), f"{f'device.{key}'!r} of preset {preset!r}", 1)


def _resolve_device(cls: type[DeviceParams], overrides: Mapping[str, Any], knobs: Mapping[str, float]) -> dict[str, Any]:
    """Preset overrides with the knobs of :data:`DEVICE_KNOBS` applied (see there)."""
    out = dict(overrides)

    def value(name: str) -> Any:
        return out[name] if name in out else _default(cls, name)

    if "d2d_scale" in knobs:
        for name in cls.field_names():
            if name.endswith("_dtod"):
                out[name] = value(name) * knobs["d2d_scale"]
    if "stuck_fraction" in knobs:
        out["p_stuck_min"] = out["p_stuck_max"] = knobs["stuck_fraction"] / 2
    if "nonlinearity" in knobs:  # srtio3: c(v_set) = nonlinearity - 1
        out["c0"] = knobs["nonlinearity"] - 1.0 - value("c1") * value("v_set")
    if "asymmetry" in knobs:
        if "reset_efficiency" in cls.field_names():
            out["reset_efficiency"] = knobs["asymmetry"]
        else:
            out["alpha_reset"] = knobs["asymmetry"] * value("alpha_set")
    return out


def _default(cls: type, name: str) -> Any:
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


@dataclass(frozen=True)
class RuleSection:
    """``[rule]``: the learning rule (:data:`memsnn.experiments.methods.RULES`), in-situ or on
    float weights, and ``params`` (``[rule.params]``, see :mod:`memsnn.experiments.methods`)."""

    name: str = "stdp"
    insitu: bool = True
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        errors = []
        if not isinstance(self.name, str) or self.name not in RULES:
            errors.append(f"rule.name={self.name!r} is not allowed: must be one of {', '.join(map(repr, RULES))}")
        if not isinstance(self.insitu, bool):
            errors.append(f"rule.insitu={self.insitu!r} is not allowed: must be true (crossbars) or false (float weights)")
        if not isinstance(self.params, Mapping):
            errors.append(f"rule.params must be a table ([rule.params]), got {type(self.params).__name__}")
        elif self.name in RULES:
            specs = _rule_specs(self.name)
            known, errs = _check_overrides("rule.params", specs, self.params, rule_param_fields(self.name),
                                           note=f" [rule {self.name!r}]")
            object.__setattr__(self, "params", known)
            insitu = self.insitu if isinstance(self.insitu, bool) else True
            errors.extend(errs + _prefixed("rule.params", rule_params_errors(self.name, known, insitu=insitu), specs))
        if errors:
            raise ConfigError(errors)

    def to_toml_dict(self) -> dict[str, Any]:
        return {"name": self.name, "insitu": self.insitu, "params": _toml_overrides(self.params)}


def _rule_specs(rule: str) -> dict[str, _Spec]:
    specs = {}
    for cls in RULES[rule][0]:
        specs.update(_specs(cls))
    for k, (default, _, _) in EXTRA_FIELDS.get(rule, {}).items():
        specs[k] = _Spec("float" if isinstance(default, float) else "str", False, default, None)
    return specs


def _component(name: str, values: Any) -> tuple[dict[str, Any], list[str]]:
    """Validated overrides of a component section (encoder, periphery, crossbar, scheduler)."""
    if not isinstance(values, Mapping):
        return {}, [f"{name} must be a table ([{name}]) of {_COMPONENTS[name].__name__} fields, got "
                    f"{type(values).__name__}"]
    cls = _COMPONENTS[name]
    known, errors = _check_overrides(name, _specs(cls), values)
    return known, errors + _class_errors(cls, name, known)


def _top_errors(name: Any, seed: Any) -> list[str]:
    errors = []
    if name is not None and not isinstance(name, str):
        errors.append(f"name={name!r} has type {type(name).__name__}: must be a string (a label) or absent")
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        errors.append(f"seed={seed!r} is not allowed: must be an integer in [0, 2**32)")
    return errors


# ----------------------------------------------------------------------------------------------------
# the config
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment, completely (see the module docstring for the sections).

    Build it with :meth:`from_dict`, :func:`load_config` or :meth:`with_overrides`; the
    constructor validates too (every section checks itself). The ``encoder``, ``periphery``,
    ``crossbar`` and ``scheduler`` fields hold only the keys set; treat the dicts as read-only.
    """

    name: str | None = None
    seed: int = 0
    data: DataSection = field(default_factory=DataSection)
    encoder: dict = field(default_factory=dict)
    network: NetworkSection = field(default_factory=NetworkSection)
    device: DeviceSection = field(default_factory=DeviceSection)
    periphery: dict = field(default_factory=dict)
    crossbar: dict = field(default_factory=dict)
    rule: RuleSection = field(default_factory=RuleSection)
    scheduler: dict = field(default_factory=dict)
    training: TrainingSection = field(default_factory=TrainingSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)

    def __post_init__(self) -> None:
        errors = _top_errors(self.name, self.seed)
        if not errors and isinstance(self.seed, float):
            object.__setattr__(self, "seed", int(self.seed))
        kinds = {**_FULL_SECTIONS, "device": DeviceSection, "rule": RuleSection}
        for sec, cls in kinds.items():
            if not isinstance(getattr(self, sec), cls):
                errors.append(f"{sec} must be a {cls.__name__}, got {type(getattr(self, sec)).__name__} "
                              "(build configs from dicts with ExperimentConfig.from_dict)")
        for sec in _COMPONENTS:
            known, errs = _component(sec, getattr(self, sec))
            errors.extend(errs)
            object.__setattr__(self, sec, known)
        if not errors and self.encoder:  # a temporal dataset is fed as its sequence (methods.encoder_for)
            problem = encoder_problem(self.data.dataset, dataset_time_steps(self.data.dataset, self.data.task_params),
                                      Encoder(**self.encoder))
            if problem:
                errors.append(f"encoder: {problem}")
        if errors:
            raise ConfigError(errors)

    # -- building -----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "") -> "ExperimentConfig":
        """Build from the nested mapping of a TOML file (``{"seed": 0, "data": {...}, ...}``).

        Raises :class:`ConfigError` listing every problem (``source``, e.g. the file name, heads
        the message).
        """
        if not isinstance(d, Mapping):
            raise ConfigError([f"a config must be a mapping of sections, got {type(d).__name__}"], source)
        errors = [unknown_key_message(k, [*_TOP_KEYS, *SECTIONS]).replace("unknown parameter", "unknown key", 1)
                  for k in d if k not in _TOP_KEYS and k not in SECTIONS]
        errors.extend(_top_errors(d.get("name"), d.get("seed", 0)))
        kwargs: dict[str, Any] = {"name": d.get("name"), "seed": d.get("seed", 0)}
        for sec in SECTIONS:
            raw = d.get(sec, {})
            if raw is None:
                raw = {}
            if not isinstance(raw, Mapping):
                errors.append(f"{sec} must be a table ([{sec}]), got {type(raw).__name__} {raw!r}")
                continue
            try:
                if sec in _FULL_SECTIONS:
                    kwargs[sec] = _build_full(sec, raw)
                elif sec == "device":
                    raw = dict(raw)
                    kwargs[sec] = DeviceSection(preset=raw.pop("preset", "srtio3"),
                                                **{k: raw.pop(k) for k in list(raw) if k in DEVICE_KNOBS},
                                                params=raw)
                elif sec == "rule":
                    kwargs[sec] = _build_rule(raw)
                else:
                    known, errs = _component(sec, raw)
                    errors.extend(errs)
                    kwargs[sec] = known
            except ConfigError as err:
                errors.extend(err.errors)
        if errors:
            raise ConfigError(errors, source)
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise ConfigError(err.errors, source) from None

    def with_overrides(self, overrides: Mapping[str, Any]) -> "ExperimentConfig":
        """A new, validated config with dotted keys changed, e.g.
        ``{"device.read_noise_std": 0.02, "rule.params.a_plus": "0.1", "seed": 3}``.

        String values (from a command line) are parsed to the key's type: ``int``, ``float``,
        ``bool`` (true/false/yes/no/1/0), ``"none"`` for None, lists as ``"[64, 32]"`` or
        ``"64,32"`` / ``"64 32"`` / ``"64;32"`` (spaces or semicolons fit inside a sweep grid,
        whose values are comma-separated). ``device.preset`` and ``rule.name`` apply first, so the other keys are
        checked against the new preset / rule. Every problem is reported in one
        :class:`ConfigError`.
        """
        if not isinstance(overrides, Mapping):
            raise TypeError(f"overrides must be a mapping of dotted keys to values, got {type(overrides).__name__}")
        d = self.to_dict()
        errors = []
        first = [k for k in overrides if k in ("device.preset", "rule.name")]
        for key in first + [k for k in overrides if k not in first]:
            value = overrides[key]
            if not isinstance(key, str):
                errors.append(f"override key {key!r} must be a dotted string such as 'device.read_noise_std'")
                continue
            try:
                container, leaf, spec = _locate(d, key)
                if isinstance(value, str):
                    value = _parse_text(key, spec, value)
            except ValueError as err:
                errors.append(str(err))
                continue
            container[leaf] = value
        try:
            cfg = ExperimentConfig.from_dict(d)
        except ConfigError as err:
            errors.extend(err.errors)
        if errors:
            raise ConfigError(errors, "after overrides " + ", ".join(f"{k}={v!r}" for k, v in overrides.items()))
        return cfg

    # -- using ------------------------------------------------------------------------------------
    def device_model(self) -> DeviceModel:
        """The configured :class:`~memsnn.device_models.DeviceModel` (preset, knobs, overrides)."""
        return self.device.model()

    def encoder_params(self) -> Encoder | None:
        """The ``[encoder]`` section as an :class:`Encoder`, or None when it is empty (the rule's default)."""
        return Encoder(**self.encoder) if self.encoder else None

    def periphery_params(self) -> PeripheryParams | None:
        """The ``[periphery]`` section, or None when it is empty (ideal periphery)."""
        return PeripheryParams(**self.periphery) if self.periphery else None

    def crossbar_params(self) -> CrossbarParams | None:
        """The ``[crossbar]`` section, or None when it is empty (the rule's default)."""
        return CrossbarParams(**self.crossbar) if self.crossbar else None

    def scheduler_params(self) -> SchedulerParams | None:
        """The ``[scheduler]`` section, or None when it is empty (the rule's default scheduler)."""
        return SchedulerParams(**self.scheduler) if self.scheduler else None

    # -- saving -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The nested plain mapping written to TOML (None values omitted, lists for tuples);
        ``from_dict(cfg.to_dict()) == cfg``."""
        d: dict[str, Any] = {}
        if self.name is not None:
            d["name"] = self.name
        d["seed"] = self.seed
        for sec in SECTIONS:
            value = getattr(self, sec)
            d[sec] = _toml_overrides(value) if isinstance(value, dict) else value.to_toml_dict()
        return d

    def to_toml(self) -> str:
        """The config as TOML text; loads back equal (floats exact)."""
        head = "# memsnn experiment config; example_toml() / memsnn config --example explains every key\n"
        return head + tomli_w.dumps(self.to_dict())


def _build_full(sec: str, raw: Mapping[str, Any]) -> _Section:
    cls = _FULL_SECTIONS[sec]
    errors = [_unknown(sec, k, cls.field_names()) for k in raw if k not in cls.field_names()]
    try:
        built = cls(**{k: v for k, v in raw.items() if k in cls.field_names() and v is not None})
    except ConfigError as err:
        errors.extend(err.errors)
    if errors:
        raise ConfigError(errors)
    return built


def _build_rule(raw: Mapping[str, Any]) -> RuleSection:
    valid = ("name", "insitu", "params")
    errors = [_unknown("rule", k, list(valid)) for k in raw if k not in valid]
    try:
        built = RuleSection(**{k: v for k, v in raw.items() if k in valid})
    except ConfigError as err:
        errors.extend(err.errors)
    if errors:
        raise ConfigError(errors)
    return built


def _locate(d: dict[str, Any], key: str) -> tuple[dict[str, Any], str, _Spec]:
    """The mapping inside ``d`` (TOML form) that holds dotted ``key``, its leaf name and its spec;
    ValueError with the closest valid key when there is no such key."""
    parts = key.split(".")
    if len(parts) == 1:
        if key == "name":
            return d, key, _Spec("str", True)
        if key == "seed":
            return d, key, _Spec("int")
        if key in SECTIONS:
            raise ValueError(f"{key!r} is a section: set one of its keys, e.g. {key}.<field>")
        raise ValueError(unknown_key_message(key, [*_TOP_KEYS, *SECTIONS]).replace("unknown parameter", "unknown key", 1))
    sec, rest = parts[0], parts[1:]
    if sec not in SECTIONS:
        raise ValueError(_unknown("", sec, list(SECTIONS)).replace(repr(sec), repr(key), 1)
                         .replace("unknown parameter", "unknown section in key", 1))
    table = d.setdefault(sec, {})
    if sec == "rule":
        if rest == ["name"]:
            return table, "name", _Spec("str")
        if rest == ["insitu"]:
            return table, "insitu", _Spec("bool")
        if len(rest) == 2 and rest[0] == "params":
            rule = table.get("name", "stdp")
            if rule not in RULES:
                raise ValueError(f"rule.name={rule!r} is not allowed: must be one of {', '.join(map(repr, RULES))}")
            specs = _rule_specs(rule)
            if rest[1] not in specs:
                raise ValueError(_unknown("rule.params", rest[1], rule_param_fields(rule))
                                 + f" [rule {rule!r}]")
            return table.setdefault("params", {}), rest[1], specs[rest[1]]
        raise ValueError(_unknown("rule", ".".join(rest), ["name", "insitu", "params.<field>"]))
    if sec == "data" and len(rest) == 2 and rest[0] == "task_params":
        dataset = table.get("dataset", "digits")
        if dataset not in TASK_PARAMS:
            raise ValueError(f"{key}: data.dataset={dataset!r} takes no task_params; only "
                             f"{', '.join(map(repr, TASK_PARAMS))} do")
        specs = _specs(TASK_PARAMS[dataset])
        if rest[1] not in specs:
            raise ValueError(_unknown("data.task_params", rest[1], list(specs)) + f" [dataset {dataset!r}]")
        if not isinstance(table.get("task_params"), dict):
            table["task_params"] = {}
        return table["task_params"], rest[1], specs[rest[1]]
    if len(rest) != 1:
        raise ValueError(f"unknown key {key!r}: [{sec}] has no sub-tables except data.task_params")
    leaf = rest[0]
    if sec in _FULL_SECTIONS or sec in _COMPONENTS:
        cls = _FULL_SECTIONS.get(sec) or _COMPONENTS[sec]
        specs = _specs(cls)
        if leaf not in specs:
            raise ValueError(_unknown(sec, leaf, list(specs)))
        return table, leaf, specs[leaf]
    # device
    if leaf == "preset":
        return table, leaf, _Spec("str")
    if leaf in DEVICE_KNOBS:
        return table, leaf, _Spec("float", True)
    preset = table.get("preset", "srtio3")
    if preset not in PRESETS:
        raise ValueError(f"device.preset={preset!r} is not allowed: must be one of {', '.join(map(repr, PRESETS))}")
    specs = _specs(PRESETS[preset].params_class)
    if leaf not in specs:
        owners = [p for p, m in PRESETS.items() if leaf in m.params_class.field_names()]
        if owners:
            raise ValueError(f"device.{leaf} is a parameter of preset {', '.join(map(repr, owners))}, not of "
                             f"preset {preset!r}")
        raise ValueError(_unknown_device(leaf, preset, specs))
    return table, leaf, specs[leaf]


# ----------------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------------
def load_config(path: str | os.PathLike) -> ExperimentConfig:
    """Read and validate a TOML config; syntax errors name the file and line, every other
    problem is listed in one :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist or is not a file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:  # the message ends with "(at line L, column C)"
        raise ConfigError([f"TOML syntax error: {err}"], str(path)) from None
    except UnicodeDecodeError as err:
        raise ConfigError([f"not UTF-8 text: {err}"], str(path)) from None
    return ExperimentConfig.from_dict(data, source=str(path))


def save_config(cfg: ExperimentConfig, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``cfg`` as TOML (atomically); refuses to overwrite unless ``overwrite``."""
    if not isinstance(cfg, ExperimentConfig):
        raise TypeError(f"cfg must be an ExperimentConfig, got {type(cfg).__name__}")
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(cfg.to_toml(), encoding="utf-8")
    return Path(path)


def write_example(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write :func:`example_toml` to ``path`` (atomically); refuses to overwrite unless ``overwrite``."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(example_toml(), encoding="utf-8")
    return Path(path)


def example_toml() -> str:
    """A commented config listing every section, its units and allowed values; it loads to the
    defaults (``ExperimentConfig()``). Commented-out lines show optional keys."""
    return _EXAMPLE


_EXAMPLE = f'''\
# memsnn experiment config: one experiment, completely. memsnn.experiments.runner.run_experiment
# runs it into a new or empty directory; sweeps change dotted keys such as device.read_noise_std.
# Units are SI (siemens, volts, seconds, joules). TOML has no null: leave a key out for "none",
# or write "none" where the default is something else. Loading reports every bad key at once.
# This file loads to the defaults: digits on the srtio3 preset, supervised STDP in-situ, 3 epochs.

# name = "my-experiment"   # optional label
seed = 0                   # integer >= 0: train/test split, initial weights, device spread, spikes

[data]
dataset = "digits"         # {", ".join(dataset_names())}
test_fraction = 0.25       # fraction of samples in the test split, in (0, 1) (fashion_mnist: official split)
scaling = "minmax"         # {", ".join(SCALINGS)} - fitted on the training split only
# limit = 300              # keep the first N training samples and N // 6 test samples (absent: all)
# path = "data.csv"        # csv: the file (required); fashion_mnist: directory of the IDX files
# label_column = "label"   # csv only (required there): the column holding the class labels
# classes = [0, 1, 2, 3, 4]  # keep only these class indices, relabelled 0..k-1 in this order (absent: all)
# task_params = {{delay = 50, noise_rate = 0.05}}  # dmts / spike_patterns: options of the generated task

[encoder]
# Input spike code of the surrogate-gradient rules (sg, ssdp); absent keys take the Encoder
# defaults below. stdp and csdp have their own codes (time-to-first-spike, rate) and take their
# number of time steps from [rule.params] num_steps instead.
# kind = "rate"            # rate (Bernoulli), poisson, latency (time to first spike)
# num_steps = 25           # time steps T per sample
# gain = 1.0               # rate: firing probability per step = gain * x
# max_rate = 100.0         # poisson: rate of an input of 1, Hz
# dt = 0.001               # poisson: time step, s
# tau = 5.0                # latency: time constant of the code, steps

[network]
# Surrogate-gradient network (sg, ssdp) and CSDP's layers; stdp has one layer of
# neurons_per_class neurons per class ([rule.params]) and ignores this section.
hidden = [64]              # neurons per hidden layer, e.g. [128] or [256, 128]
beta = 0.9                 # LIF membrane decay per time step, in [0, 1]

[device]
# Crossbar device (used when rule.insitu = true). Presets: {", ".join(preset_names())}.
preset = "srtio3"
# Device-agnostic knobs (absent: off):
# d2d_scale = 1.0          # multiplies every *_dtod (device-to-device spread) field; 0: no spread
# stuck_fraction = 0.01    # fraction of stuck devices, half at g_min and half at g_max
# nonlinearity = 0.377     # srtio3 only: G ~ n**(1 - nonlinearity) over n pulses; 0 = linear, < 1
# asymmetry = 0.5          # srtio3, rram: RESET step / SET step at mid-window (1 = symmetric), > 0
# Any parameter of the preset (memsnn devices lists them with units):
# read_noise_std = 0.01    # read noise, relative to G (pcm: read_noise_scale scales its 1/f noise)
# step_std = 0.2           # cycle-to-cycle spread of each pulse's step
# n_levels = 64            # finite number of conductance levels (absent: continuous), >= 2
# drift_nu = 0.05          # drift exponent, G ~ (t / t0)**-nu (pcm: drift_scale; its nu depends on G)
# tau_volatile = 3.16      # relaxation time of the volatile part at zero bias, s
# g_init = "none"          # srtio3: fresh devices at g_min instead of 10 nS

[periphery]
# DAC / ADC of every tile (absent keys: ideal, no conversion).
# dac_bits = 7             # DAC resolution, >= 2
# adc_bits = 8             # ADC resolution, >= 2
# adc_bound = 12.0         # ADC full scale, in units of v_read * (g_max - g_min)
# output_noise = 0.0       # Gaussian output noise before the ADC, same units
# v_read = 0.2             # row voltage of a full-scale input, V

[crossbar]
# Array settings (absent: the rule's choice; stdp picks its own weight mapping).
# tile_rows = 256          # rows (inputs) per tile
# tile_cols = 256          # columns (outputs) per tile
# ir_drop = "none"         # none, approx, exact
# r_wire = 1.0             # wire resistance per segment, ohm (with ir_drop)
# array_type = "1T1R"      # 1T1R or 0T1R (passive, sneak paths; exact IR drop)
# half_select = false      # V/2 disturb of half-selected devices in outer-product phases

[rule]
# {"; ".join(f"{k}: {v[1]}" for k, v in RULES.items())}
name = "stdp"              # {", ".join(RULES)}
insitu = true              # true: weights on crossbars of [device]; false: the float/digital baseline

[rule.params]
# The rule's own parameters (absent: its defaults; memsnn.experiments.methods documents them):
#   stdp: STDPParams (a_plus, a_minus, num_steps, neurons_per_class, ...; input coding per dataset)
#   sg:   InSituSGParams (lr, lr_final, anneal_epochs, scale_factor, init_method, grad_clip)
#         and digital_lr (Adam, float runs)
#   ssdp: the sg keys plus SSDPParams (A_plus, A_base, sigma, gate, ...)
#   csdp: CSDPParams (num_steps, eta, theta, ...) and optimizer (sgd, sign; adam float only)
# a_plus = 0.05
# num_steps = 32

[scheduler]
# Pulse scheduler of in-situ rules. Keys set here change the rule's default scheduler
# (sg / ssdp: step = "state_aware", k_max = 1; stdp on native crossbars and csdp:
# step = "state_aware"; the rest SchedulerParams' defaults below).
# quantisation = "stochastic"   # sign, round, stochastic, accumulate
# scheme = "set_only"           # set_only (with refresh) or bipolar
# k_max = 8                     # pulses per device per update at most
# step = "nominal"              # nominal, state_aware, calibrated (measured per-device steps) or device

[training]
epochs = 3                 # passes over the training split, >= 1
batch_size = 32            # samples per mini-batch, >= 1
input_noise = 0.0          # train on noisy inputs: Gaussian feature noise, std / feature range (training split)
spike_drop = 0.0           # train with each input spike deleted with this probability
spike_insert = 0.0         # train with a spurious spike in each empty (step, sample, input) slot, probability

[evaluation]
times = [0.0, 3600.0, 86400.0]   # seconds after training to measure accuracy (drift), increasing
jitter = [2.0]                   # input spike-time jitter sigmas to test, in time steps
input_noise = 0.0                # metric acc_noisy: Gaussian feature noise, std / feature range, clipped
spike_drop = 0.0                 # metric acc_noisy: each input spike deleted with this probability
spike_insert = 0.0               # metric acc_noisy: spurious spike per empty slot, probability
'''
