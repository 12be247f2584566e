"""Fit a device model's pulse response to measured potentiation / depression data.

Data format (CSV or a pandas DataFrame), one row per read, in the order measured:

=============  ========================================================================
column         meaning
=============  ========================================================================
``pulse``      pulse index, strictly increasing (integers)
``polarity``   the pulse applied *before* this read: ``+1`` / ``set`` (potentiation),
               ``-1`` / ``reset`` (depression), ``0`` / ``none`` (no pulse: a read only)
``conductance``  conductance read after that pulse, siemens (> 0)
``amplitude``  optional: pulse amplitude magnitude in volts (default: the preset's)
``width``      optional: pulse width in seconds (default: the preset's)
=============  ========================================================================

The first row is the starting state. The model is run *free* (not one step ahead) from the first
measured conductance through the whole pulse sequence with the mean device's noise-free law, and
``scipy.optimize.least_squares`` minimises the squared conductance error, normalised by the median
measured conductance. Parameter uncertainties are the square roots of the diagonal of
``s^2 (J^T J)^-1`` at the optimum (``s^2`` the residual variance), propagated through the
log-transform used for positive parameters. Read the data after the volatile part has relaxed, or
it is absorbed into the long-term law.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.optimize
import torch

from ..files import atomic_path
from ..params import ParameterError
from .base import DeviceModel
from .presets import make_device, model_class

__all__ = ["FitResult", "fit_device", "load_pulse_data", "validate_pulse_data", "predict_pulse_data", "DEFAULT_FIT"]

REQUIRED = ("pulse", "polarity", "conductance")
OPTIONAL = ("amplitude", "width")
_POLARITY_WORDS = {"set": 1, "+": 1, "+1": 1, "1": 1, "reset": -1, "-": -1, "-1": -1, "none": 0, "0": 0, "read": 0}

#: parameters fitted by default, per preset
DEFAULT_FIT: dict[str, tuple[str, ...]] = {
    "srtio3": ("r1", "c0", "reset_efficiency", "g_max"),
    "rram": ("alpha_set", "alpha_reset", "g_min", "g_max"),
    "pcm": ("alpha_set", "g_max"),
    "ideal": ("step",),
}


class PulseDataError(ValueError):
    """The measured data cannot be used; the message says which column / row and why."""


def load_pulse_data(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a pulse-response CSV (see the module docstring for the format)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise PulseDataError(f"{path} is empty: expected a header with columns {', '.join(REQUIRED)} and data rows") from None
    except pd.errors.ParserError as err:
        raise PulseDataError(f"{path} is not a readable CSV: {err}") from None
    return validate_pulse_data(df, source=str(path))


def validate_pulse_data(df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Check columns, types and values; return a clean copy with numeric columns."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{source} must be a pandas DataFrame, got {type(df).__name__}")
    df = df.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise PulseDataError(
            f"{source} lacks column(s) {', '.join(missing)}; required: {', '.join(REQUIRED)} "
            f"(optional: {', '.join(OPTIONAL)}); found: {', '.join(map(str, df.columns)) or 'none'}"
        )
    if len(df) == 0:
        raise PulseDataError(f"{source} has a header but no data rows")
    if len(df) < 3:
        raise PulseDataError(f"{source} has {len(df)} rows; at least 3 are needed to fit a pulse response")
    out = pd.DataFrame(index=range(len(df)))

    pol = df["polarity"]
    if not pd.api.types.is_numeric_dtype(pol):
        words = pol.astype(str).str.strip().str.lower()
        mapped = words.map(_POLARITY_WORDS)
        bad = mapped.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise PulseDataError(
                f"{source}: polarity {pol.iloc[i]!r} in row {i + 2} (line of the file) is not allowed; "
                "use +1/-1/0 or set/reset/none"
            )
        out["polarity"] = mapped.astype(int).to_numpy()
    else:
        out["polarity"] = _numeric(df, "polarity", source).to_numpy()
        bad = ~np.isin(out["polarity"], (-1, 0, 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PulseDataError(f"{source}: polarity {_plain(df['polarity'].iloc[i])!r} in row {i + 2} must be +1, -1 or 0")
        out["polarity"] = out["polarity"].astype(int)

    for col in ("pulse", "conductance") + tuple(c for c in OPTIONAL if c in df.columns):
        out[col] = _numeric(df, col, source).to_numpy()
    if not (np.diff(out["pulse"].to_numpy()) > 0).all():
        i = int(np.flatnonzero(np.diff(out["pulse"].to_numpy()) <= 0)[0]) + 1
        raise PulseDataError(
            f"{source}: pulse index must increase strictly; row {i + 2} has "
            f"{_plain(out['pulse'].iloc[i])!r} after {_plain(out['pulse'].iloc[i - 1])!r}"
        )
    for col in ("conductance",) + tuple(c for c in OPTIONAL if c in out.columns):
        bad = out[col].to_numpy() <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            unit = {"conductance": "siemens", "amplitude": "volts", "width": "seconds"}[col]
            raise PulseDataError(f"{source}: {col} {_plain(out[col].iloc[i])!r} in row {i + 2} must be > 0 ({unit})")
    if (out["polarity"].iloc[1:] == 0).all():
        raise PulseDataError(f"{source}: no row applies a pulse (all polarities are 0)")
    return out[[c for c in ("pulse", "polarity", "conductance") + OPTIONAL if c in out.columns]]


def _plain(value: Any) -> Any:
    """A numpy scalar as a plain Python value (for readable messages)."""
    return value.item() if hasattr(value, "item") else value


def _numeric(df: pd.DataFrame, col: str, source: str) -> pd.Series:
    values = pd.to_numeric(df[col], errors="coerce")
    raw_missing = df[col].isna()
    if raw_missing.any():
        i = int(np.flatnonzero(raw_missing.to_numpy())[0])
        raise PulseDataError(f"{source}: column {col!r} has a missing value (NaN) in row {i + 2}")
    bad = values.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PulseDataError(f"{source}: column {col!r} has a non-numeric value {_plain(df[col].iloc[i])!r} in row {i + 2}")
    if not np.isfinite(values.to_numpy(dtype=float)).all():
        i = int(np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)))[0])
        raise PulseDataError(f"{source}: column {col!r} has a non-finite value in row {i + 2}")
    return values


def predict_pulse_data(model: DeviceModel, data: pd.DataFrame) -> np.ndarray:
    """Noise-free conductance of the mean device run through ``data``'s pulses from its first read.

    Consecutive pulses of one polarity, amplitude and width form a segment evaluated in closed form
    (the pulse coordinate advances linearly), so this is fast for long sequences.
    """
    p = model.params
    dev = model.nominal_device_params(dtype=torch.float64)
    pol = data["polarity"].to_numpy()
    amp = data["amplitude"].to_numpy(dtype=float) if "amplitude" in data else np.where(pol >= 0, p.v_set, p.v_reset)
    width = data["width"].to_numpy(dtype=float) if "width" in data else np.full(len(pol), p.pulse_width)
    g = torch.tensor(float(data["conductance"].iloc[0]), dtype=torch.float64)
    pred = np.empty(len(pol))
    pred[0] = float(g)
    i = 1
    while i < len(pol):
        j = i
        while j + 1 < len(pol) and pol[j + 1] == pol[i] and amp[j + 1] == amp[i] and width[j + 1] == width[i]:
            j += 1
        n = j - i + 1
        if pol[i] == 0:
            pred[i:j + 1] = float(g)
        else:
            set_f = torch.full((n,), 1.0 if pol[i] > 0 else 0.0, dtype=torch.float64)
            a = torch.full((n,), float(amp[i]), dtype=torch.float64)
            scale = dev["scale_set"] if pol[i] > 0 else dev["scale_reset"]
            strength = model._amplitude_factor(a, set_f) * (float(width[i]) / p.width_ref) * scale
            dn = torch.arange(1, n + 1, dtype=torch.float64) * strength
            lower = dev["g_min"] if pol[i] > 0 else torch.minimum(dev["g_min"], g)
            seg = model._respond(g.expand(n), dn, set_f, a, dev)
            seg = model._quantise(torch.minimum(torch.maximum(seg, lower), dev["g_max"]), dev, mean=True)
            pred[i:j + 1] = seg.numpy()
            g = seg[-1]
        i = j + 1
    return pred


@dataclass
class FitResult:
    """Outcome of :func:`fit_device`."""

    preset: str
    model: DeviceModel
    values: dict[str, float]
    stderr: dict[str, float]
    rmse: float  # S
    data: pd.DataFrame  # with a ``predicted`` column
    success: bool
    message: str
    fixed: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "fitted": {k: {"value": self.values[k], "stderr": self.stderr[k]} for k in self.values},
            "fixed": self.fixed,
            "params": _jsonable(self.model.params.to_dict()),
            "rmse_S": self.rmse,
            "n_points": int(len(self.data)),
            "success": self.success,
            "message": self.message,
        }

    def save_json(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        with atomic_path(path, overwrite) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return Path(path)

    def plot(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Data against fit: conductance (nS) against pulse index, coloured by polarity."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        d = self.data
        fig, ax = plt.subplots(figsize=(7, 4))
        for pol, colour, label in ((1, "tab:red", "SET (+)"), (-1, "tab:blue", "RESET (-)"), (0, "k", "read only")):
            sel = d["polarity"] == pol
            if sel.any():
                ax.scatter(d["pulse"][sel], d["conductance"][sel] * 1e9, s=10, c=colour, label=f"measured, {label}")
        ax.plot(d["pulse"], d["predicted"] * 1e9, "k-", lw=1.5, label=f"{self.preset} fit")
        ax.set_xlabel("pulse index")
        ax.set_ylabel("conductance (nS)")
        text = "\n".join(f"{k} = {v:.4g} ± {self.stderr[k]:.2g}" for k, v in self.values.items())
        ax.text(0.02, 0.98, text + f"\nRMSE = {self.rmse * 1e9:.3g} nS", transform=ax.transAxes,
                va="top", fontsize=8, family="monospace", bbox=dict(fc="white", alpha=0.8, lw=0))
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"pulse-response fit ({self.preset})")
        fig.tight_layout()
        with atomic_path(path, overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)
        return Path(path)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def fit_device(
    data: pd.DataFrame | str | os.PathLike,
    model: str = "srtio3",
    *,
    fit: Sequence[str] | None = None,
    fixed: dict[str, Any] | None = None,
) -> FitResult:
    """Fit the pulse-response parameters of preset ``model`` to measured data.

    Args:
        data: a DataFrame or a CSV path in the format of the module docstring.
        model: preset name whose law is fitted (``srtio3``, ``rram``, ``pcm``, ``ideal``).
        fit: names of the parameters to fit (default :data:`DEFAULT_FIT` for the preset; for
            ``srtio3`` with several amplitudes in the data, ``c1`` is added).
        fixed: parameter values to hold (overrides of the preset defaults).

    Returns:
        :class:`FitResult` with fitted values, standard errors, RMSE and predictions.
    """
    df = load_pulse_data(data) if isinstance(data, (str, os.PathLike)) else validate_pulse_data(data)
    cls = model_class(model)
    fixed = dict(fixed or {})
    names = list(fit) if fit is not None else list(DEFAULT_FIT.get(model, ()))
    if fit is None and model == "srtio3" and "amplitude" in df and df["amplitude"].nunique() > 1:
        names.append("c1")
    valid = cls.params_class.field_names()
    unknown = [n for n in names + list(fixed) if n not in valid]
    if unknown:
        raise ParameterError([f"unknown parameter {n!r} for preset {model!r}" for n in unknown], model)
    if not names:
        raise ValueError("nothing to fit: give at least one parameter name")
    base = make_device(model, params=fixed)
    p0 = base.params
    g_meas = df["conductance"].to_numpy(dtype=float)
    # start the window where the data can live
    start = {n: float(getattr(p0, n)) for n in names}
    if "g_max" in start:
        start["g_max"] = max(start["g_max"], 1.02 * g_meas.max())
    if "g_min" in start:
        start["g_min"] = min(start["g_min"], 0.98 * g_meas.min())
    checks = {f.name: f.metadata.get("check") for f in dataclasses.fields(cls.params_class)}
    log_names = [n for n in names if checks.get(n) in (">0", ">=0") and start[n] > 0]
    neg_names = [n for n in names if checks.get(n) in ("<0", "<=0") and start[n] < 0]

    def to_x(values: dict[str, float]) -> np.ndarray:
        return np.array([
            math.log(values[n]) if n in log_names else (math.log(-values[n]) if n in neg_names else values[n])
            for n in names
        ])

    def from_x(x: np.ndarray) -> dict[str, float]:
        return {
            n: (math.exp(v) if n in log_names else (-math.exp(v) if n in neg_names else float(v)))
            for n, v in zip(names, x)
        }

    scale = float(np.median(g_meas))
    penalty = np.full(len(g_meas), 1e3)

    def residuals(x: np.ndarray) -> np.ndarray:
        try:
            trial = make_device(model, params=p0.replace(**from_x(x)))
        except (ParameterError, ValueError):
            return penalty
        pred = predict_pulse_data(trial, df)
        r = (pred - g_meas) / scale
        return r if np.isfinite(r).all() else penalty

    x0 = to_x(start)
    if (residuals(x0) == penalty).all():
        raise ValueError(f"the starting parameters {start} are invalid for preset {model!r}; pass better values in fixed=")
    sol = scipy.optimize.least_squares(residuals, x0, x_scale="jac", method="trf", max_nfev=2000)
    values = from_x(sol.x)
    fitted_model = make_device(model, params=p0.replace(**values))
    pred = predict_pulse_data(fitted_model, df)
    dof = max(len(g_meas) - len(names), 1)
    s2 = float(np.sum(sol.fun**2)) / dof
    cov_x = scipy.linalg.pinv(sol.jac.T @ sol.jac) * s2
    sd_x = np.sqrt(np.clip(np.diag(cov_x), 0.0, None))
    stderr = {}
    for n, v, sd in zip(names, sol.x, sd_x):
        stderr[n] = float(abs(values[n]) * sd) if (n in log_names or n in neg_names) else float(sd)
    out = df.copy()
    out["predicted"] = pred
    rmse = float(np.sqrt(np.mean((pred - g_meas) ** 2)))
    return FitResult(model, fitted_model, values, stderr, rmse, out, bool(sol.success), str(sol.message), fixed)
