"""Self-validating parameter dataclasses.

Every configurable part of memsnn (device models, periphery, schedulers, ...) keeps its settings in
a frozen dataclass whose fields are declared with :func:`param`. A field declares its unit, a
one-line description and the values it allows; ``__post_init__`` checks every field and every
cross-field rule and raises one :class:`ParameterError` that lists *all* problems, each naming the
field, the bad value and what is allowed.

Example::

    @dataclass(frozen=True)
    class Foo(Params):
        g_min: float = param(1e-9, unit="S", check=">=0", doc="lower conductance bound")
        g_max: float = param(1e-7, unit="S", check=">0", doc="upper conductance bound")

        def _cross_checks(self):
            if not self.g_min < self.g_max:
                yield f"g_min={self.g_min!r} must be < g_max={self.g_max!r}"
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Iterator, Mapping

__all__ = ["Params", "ParameterError", "param"]


class ParameterError(ValueError):
    """Raised when one or more parameters are invalid. ``.errors`` lists every message."""

    def __init__(self, errors: list[str], owner: str = ""):
        self.errors = list(errors)
        head = f"invalid {owner} parameters" if owner else "invalid parameters"
        super().__init__(head + ":\n  - " + "\n  - ".join(self.errors))


# check name -> (predicate, human text of what is allowed)
_CHECKS: dict[str, tuple[Any, str]] = {
    ">0": (lambda v: v > 0, "a number > 0"),
    ">=0": (lambda v: v >= 0, "a number >= 0"),
    "<0": (lambda v: v < 0, "a number < 0"),
    "<=0": (lambda v: v <= 0, "a number <= 0"),
    "prob": (lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]"),
    "any": (lambda v: True, "any finite number"),
    "int>=1": (lambda v: float(v).is_integer() and v >= 1, "an integer >= 1"),
    "int>=2": (lambda v: float(v).is_integer() and v >= 2, "an integer >= 2"),
    "int>=0": (lambda v: float(v).is_integer() and v >= 0, "an integer >= 0"),
}


def param(
    default: Any,
    *,
    unit: str = "",
    doc: str = "",
    check: str | None = "any",
    choices: tuple | None = None,
    optional: bool = False,
) -> Any:
    """Declare a dataclass field with its unit, description and allowed values.

    Args:
        default: default value.
        unit: SI unit (``"S"``, ``"V"``, ``"s"``, ``"J"``, ``"1"`` for dimensionless ...).
        doc: one-line description, shown in tables and error messages.
        check: one of ``>0``, ``>=0``, ``<0``, ``<=0``, ``prob``, ``any``, ``int>=0``,
            ``int>=1``, ``int>=2``; ``None`` skips the numeric check (strings, bools).
        choices: if given, the value must be one of these.
        optional: ``None`` is allowed (meaning "off").
    """
    meta = {"unit": unit, "doc": doc, "check": check, "choices": choices, "optional": optional}
    return dataclasses.field(default=default, metadata=meta)


class Params:
    """Mixin for frozen dataclasses of parameters; see the module docstring."""

    #: Name used in error messages (e.g. the preset name); subclasses override.
    _owner: str = ""

    def __post_init__(self) -> None:
        errors = self.validation_errors()
        if errors:
            raise ParameterError(errors, self._owner or type(self).__name__)

    # -- validation -------------------------------------------------------------------------
    def validation_errors(self) -> list[str]:
        """Every problem with this parameter set, one message each (empty when valid)."""
        errors: list[str] = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not f.init:
                continue
            errors.extend(_check_field(f, getattr(self, f.name)))
        if not errors:  # cross checks assume each field is individually sane
            errors.extend(self._cross_checks())
        return errors

    def _cross_checks(self) -> Iterator[str]:
        """Rules linking several fields; subclasses yield one message per broken rule."""
        return iter(())

    # -- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain ``{field: value}`` of the init fields (JSON/TOML friendly)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.init
        }

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Build from a mapping; unknown keys are errors that suggest the closest valid name."""
        unknown = [k for k in data if k not in cls.field_names()]
        if unknown:
            raise ParameterError(
                [unknown_key_message(k, cls.field_names()) for k in unknown],
                cls._owner or cls.__name__,
            )
        return cls(**dict(data))

    @classmethod
    def resolve(cls, params: Any, overrides: Mapping[str, Any]):
        """The parameters a constructor taking ``params=None, **overrides`` should use: defaults
        with ``overrides`` when ``params`` is None, else ``params`` with ``overrides`` applied
        (validated either way); anything but an instance of ``cls`` or None is a TypeError."""
        if params is None:
            return cls.from_dict(overrides)
        if not isinstance(params, cls):
            raise TypeError(f"params must be {cls.__name__} or None, got {type(params).__name__}")
        return params.replace(**overrides) if overrides else params

    def replace(self, **changes: Any):
        """A copy with some fields changed (validated; unknown names are errors)."""
        merged = self.to_dict()
        merged.update(changes)
        return type(self).from_dict(merged)

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """One row per field: name, default, unit, doc, allowed values (for tables/docs)."""
        rows = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if not f.init:
                continue
            rows.append(
                {
                    "name": f.name,
                    "default": f.default,
                    "unit": f.metadata.get("unit", ""),
                    "doc": f.metadata.get("doc", ""),
                    "allowed": _allowed_text(f),
                }
            )
        return rows


def unknown_key_message(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown parameter {key!r}{hint} (valid: {', '.join(valid)})"


def _allowed_text(f: dataclasses.Field) -> str:
    meta = f.metadata
    parts = []
    if meta.get("choices"):
        parts.append("one of " + ", ".join(repr(c) for c in meta["choices"]))
    elif meta.get("check"):
        parts.append(_CHECKS[meta["check"]][1])
    if meta.get("optional"):
        parts.append("or None")
    return " ".join(parts) if parts else "anything"


def _check_field(f: dataclasses.Field, value: Any) -> list[str]:
    meta = f.metadata
    unit = f" {meta['unit']}" if meta.get("unit") and meta["unit"] != "1" else ""
    where = f"{f.name}={value!r}"
    if value is None:
        if meta.get("optional"):
            return []
        return [f"{where} is not allowed: must be {_allowed_text(f)}"]
    choices = meta.get("choices")
    if choices is not None:
        if value not in choices:
            return [f"{where} is not allowed: must be one of {', '.join(map(repr, choices))}"]
        return []
    check = meta.get("check")
    if check is None:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{where} has type {type(value).__name__}: must be {_allowed_text(f)}{unit}"]
    if not math.isfinite(value):
        return [f"{where} is not finite: must be {_allowed_text(f)}{unit}"]
    ok, text = _CHECKS[check]
    if not ok(value):
        return [f"{where} is not allowed: must be {text}{unit}"]
    return []
