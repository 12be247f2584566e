"""Fit a device model to measured pulse-response data, with honest uncertainties.

Data format (CSV or a pandas DataFrame), one row per read, in the order measured:

=============  ========================================================================
column         meaning
=============  ========================================================================
``pulse``      pulse index, strictly increasing (integers; per device)
``polarity``   the pulse applied *before* this read: ``+1`` / ``set`` (potentiation),
               ``-1`` / ``reset`` (depression), ``0`` / ``none`` (no pulse: a read only)
``conductance``  conductance read after that pulse, siemens (> 0)
``amplitude``  optional: pulse amplitude magnitude in volts (default: the preset's)
``width``      optional: pulse width in seconds (default: the preset's)
``time``       optional: time of the read (and of the pulse just before it), seconds,
               non-decreasing per device. With it the model advances between reads - the
               volatile part relaxes, the long-term part drifts - so a trace taken at any pace
               is fitted with that physics, and ``tau_volatile`` and ``drift_nu`` are fitted
               too (where the preset has a volatile part / drift). Without it the reads are
               taken as relaxed and drift-free.
``device``     optional: a device label. Each device is fitted on its own, and the spread of
               the fits over devices becomes the population's ``*_dtod`` fields
               (:func:`fit_population`).
=============  ========================================================================

Method. The first row of each device is its starting state. The fit maximises the Gaussian
likelihood of the reads under the model with process noise (:mod:`.likelihood`): every read is
scored against its one-step-ahead prediction from the previous read, the cycle-to-cycle noise
(``step_std``) enters as process noise and the read noise (``read_noise_std``) as measurement
noise, both estimated from the data with the law's parameters (BFGS on log-parameters).

The noise levels are then re-estimated by the **restricted (REML) likelihood** with the law held
at its maximum-likelihood values: the likelihood plus ``log det(X' S^-1 X) / 2``, ``X`` the
derivatives of the one-step predictions by the law's parameters (taken once at the ML optimum),
``S`` the residuals' covariance - Cox and Reid's adjusted profile likelihood, exact REML for a law
linear in its parameters. Why: on srtio3 traces only the first SET block's reads (about 13
effective ones) carry the step noise, and the law's parameters, fitted to the same reads, absorb
part of it, so ML put ``step_std`` about 10 % low (mean 0.177 for a true 0.2 over 40 traces,
0.195 with the law held at the truth). At the truth the likelihood itself checks out (over 200
traces: mean score ~0 and score variance / Fisher information 0.9-1.1 for every parameter), so
neither a different predictive variance nor a bootstrap was needed. The extra stage costs a
2-parameter BFGS (about 30 likelihood evaluations): about 2.1 s instead of 1.7 s per fit of 241
reads on the 2-core VM shared with other jobs.

The uncertainties are the square roots of the diagonal of the inverse expected (Fisher)
information at the estimate (from central differences of the predictions and of their
covariance, :func:`.likelihood.fisher_information`; second differences of the likelihood itself
are too inaccurate where srtio3's r1 and c0 correlate at about -0.99), with the noise levels'
block the REML information ``tr(P dS_i P dS_j) / 2``, propagated to the parameters by the delta
method. Because the likelihood accounts for the noise accumulating along the trace the errors
are honest: on 40 synthetic srtio3 traces with ``step_std = 0.2`` and 1 % read noise every
fitted parameter's +-2 sigma interval covered the truth in 88-100 % of the traces, every mean bias
under 0.2 stated errors (``step_std``: 88 %, bias -0.19; under plain ML it was 80 %, -0.76).
Numbers and the command in the folder README. A free run of the noise-free law fitted by least
squares (:func:`predict_pulse_data`) gives the starting point.
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
from .likelihood import Trace, fisher_information, neg_log_likelihood, one_step, prediction_jacobian
from .presets import make_device, model_class

__all__ = ["FitResult", "fit_device", "fit_population", "DTOD_FIELDS", "NOISE_FIT", "load_pulse_data", "validate_pulse_data", "predict_pulse_data", "DEFAULT_FIT"]

REQUIRED = ("pulse", "polarity", "conductance")
OPTIONAL = ("amplitude", "width", "time", "device")
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

    numeric = ("pulse", "conductance") + tuple(c for c in ("amplitude", "width", "time") if c in df.columns)
    for col in numeric:
        out[col] = _numeric(df, col, source).to_numpy()
    if "device" in df.columns:
        if df["device"].isna().any():
            i = int(np.flatnonzero(df["device"].isna().to_numpy())[0])
            raise PulseDataError(f"{source}: column 'device' has a missing value in row {i + 2}")
        out["device"] = df["device"].astype(str).str.strip().to_numpy()
    group = out["device"] if "device" in out else np.zeros(len(out))
    per = " (within a device)" if "device" in out else ""
    for col, strict in (("pulse", True),) + ((("time", False),) if "time" in out else ()):
        d = out[col].groupby(group, sort=False).diff().to_numpy()  # NaN on each device's first row
        prev = out[col].groupby(group, sort=False).shift().to_numpy()
        bad = (d <= 0) if strict else (d < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PulseDataError(
                f"{source}: {col} must {'increase strictly' if strict else 'not decrease'}{per}; row {i + 2} has "
                f"{_plain(out[col].iloc[i])!r} after {_plain(prev[i])!r}"
            )
    if "time" in out and (out["time"].to_numpy() < 0).any():
        i = int(np.flatnonzero(out["time"].to_numpy() < 0)[0])
        raise PulseDataError(f"{source}: time {_plain(out['time'].iloc[i])!r} in row {i + 2} must be >= 0 (seconds)")
    if "device" in out:
        counts = out.groupby("device", sort=False).size()
        if (counts < 3).any():
            raise PulseDataError(f"{source}: device {counts.index[counts < 3][0]!r} has {int(counts.min())} rows; "
                                 "each device needs at least 3")
    for col in ("conductance",) + tuple(c for c in ("amplitude", "width") if c in out.columns):
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
    """Outcome of :func:`fit_device` (one device) or :func:`fit_population` (``devices`` set)."""

    preset: str
    model: DeviceModel
    values: dict[str, float]
    stderr: dict[str, float]
    rmse: float  # S, one-step-ahead
    data: pd.DataFrame  # with ``predicted`` (one step ahead) and ``free_run`` columns
    success: bool
    message: str
    fixed: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    log_likelihood: float = float("nan")
    #: population fits: device label -> that device's FitResult
    devices: dict[str, "FitResult"] = field(default_factory=dict)
    #: population fits: per fitted parameter, mean, spread between devices and the *_dtod field set
    population: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "preset": self.preset,
            "method": self.method,
            "fitted": {k: {"value": self.values[k], "stderr": _finite(self.stderr[k])} for k in self.values},
            "fixed": self.fixed,
            "params": _jsonable(self.model.params.to_dict()),
            "rmse_S": self.rmse,
            "log_likelihood": _finite(self.log_likelihood),
            "n_points": int(len(self.data)),
            "success": self.success,
            "message": self.message,
        }
        if self.devices:
            out["population"] = {k: {kk: _finite(vv) for kk, vv in v.items()} for k, v in self.population.items()}
            out["devices"] = {name: r.to_dict()["fitted"] for name, r in self.devices.items()}
        return out

    def save_json(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        with atomic_path(path, overwrite) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return Path(path)

    def plot(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Data against fit: conductance (nS) against pulse index, coloured by polarity, with the
        one-step-ahead prediction and the noise-free free run; one panel per device."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        parts = list(self.devices.items()) if self.devices else [("", self)]
        cols = min(3, len(parts))
        rows = math.ceil(len(parts) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.8 * rows), squeeze=False)
        for ax, (name, res) in zip(axes.flat, parts):
            d = res.data
            for pol, colour, label in ((1, "tab:red", "SET (+)"), (-1, "tab:blue", "RESET (-)"), (0, "k", "read only")):
                sel = d["polarity"] == pol
                if sel.any():
                    ax.scatter(d["pulse"][sel], d["conductance"][sel] * 1e9, s=8, c=colour, label=f"measured, {label}")
            ax.plot(d["pulse"], d["predicted"] * 1e9, "-", color="0.4", lw=0.8, label="one step ahead")
            ax.plot(d["pulse"], d["free_run"] * 1e9, "k-", lw=1.5, label="free run (noise-free)")
            ax.set_xlabel("pulse index")
            ax.set_ylabel("conductance (nS)")
            text = "\n".join(f"{k} = {v:.4g} ± {res.stderr[k]:.2g}" for k, v in res.values.items())
            ax.text(0.02, 0.98, text + f"\nRMSE (one step) = {res.rmse * 1e9:.3g} nS", transform=ax.transAxes,
                    va="top", fontsize=7, family="monospace", bbox=dict(fc="white", alpha=0.8, lw=0))
            ax.set_title(f"{self.preset} fit" + (f", device {name}" if name else ""), fontsize=9)
        axes.flat[0].legend(loc="lower right", fontsize=7)
        for ax in list(axes.flat)[len(parts):]:
            ax.axis("off")
        fig.tight_layout()
        with atomic_path(path, overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        return Path(path)


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


#: noise parameters estimated with the law unless held fixed
NOISE_FIT = ("step_std", "read_noise_std")


def _transforms(names, start, cls):
    """Unconstrained coordinates: log for positive parameters, log(-v) for negative ones."""
    checks = {f.name: f.metadata.get("check") for f in dataclasses.fields(cls.params_class)}
    kind = {n: ("log" if checks.get(n) in (">0", ">=0") and start[n] > 0 else
                "neglog" if checks.get(n) in ("<0", "<=0") and start[n] < 0 else "lin") for n in names}

    def to_x(values):
        return np.array([math.log(values[n]) if kind[n] == "log" else math.log(-values[n]) if kind[n] == "neglog"
                         else float(values[n]) for n in names])

    def from_x(x):
        return {n: (math.exp(v) if kind[n] == "log" else -math.exp(v) if kind[n] == "neglog" else float(v))
                for n, v in zip(names, x)}

    return kind, to_x, from_x


def _free_run_fit(df: pd.DataFrame, model: str, names: list[str], p0) -> tuple[dict[str, float], Any]:
    """Least squares of the noise-free law run free from the first read (the starting point)."""
    cls = model_class(model)
    g_meas = df["conductance"].to_numpy(dtype=float)
    start = {n: float(getattr(p0, n)) for n in names}
    if "g_max" in start:  # start the window where the data can live
        start["g_max"] = max(start["g_max"], 1.02 * g_meas.max())
    if "g_min" in start:
        start["g_min"] = min(start["g_min"], 0.98 * g_meas.min())
    _, to_x, from_x = _transforms(names, start, cls)
    scale = float(np.median(g_meas))
    penalty = np.full(len(g_meas), 1e3)

    def residuals(x: np.ndarray) -> np.ndarray:
        try:
            trial = make_device(model, params=p0.replace(**from_x(x)))
        except (ParameterError, ValueError):
            return penalty
        r = (predict_pulse_data(trial, df) - g_meas) / scale
        return r if np.isfinite(r).all() else penalty

    x0 = to_x(start)
    if (residuals(x0) == penalty).all():
        raise ValueError(f"the starting parameters {start} are invalid for preset {model!r}; pass better values in fixed=")
    sol = scipy.optimize.least_squares(residuals, x0, x_scale="jac", method="trf", max_nfev=2000)
    return from_x(sol.x), sol


def fit_device(
    data: pd.DataFrame | str | os.PathLike,
    model: str = "srtio3",
    *,
    fit: Sequence[str] | None = None,
    fixed: dict[str, Any] | None = None,
    noise: bool = True,
) -> FitResult:
    """Fit preset ``model`` to measured data by maximum likelihood (module docstring).

    Args:
        data: a DataFrame or a CSV path in the format of the module docstring. With a ``device``
            column the result is :func:`fit_population`'s.
        model: preset name whose law is fitted (``srtio3``, ``rram``, ``pcm``, ``ideal``).
        fit: the law's parameters to fit (default :data:`DEFAULT_FIT` for the preset; for
            ``srtio3`` with several amplitudes in the data, ``c1`` is added; with a ``time``
            column ``tau_volatile`` and ``drift_nu`` where the preset has a volatile part /
            drift). The noise parameters :data:`NOISE_FIT` are added unless ``noise=False`` or
            they are in ``fixed``.
        fixed: parameter values to hold (overrides of the preset defaults).
        noise: estimate ``step_std`` and ``read_noise_std`` from the data (default). False holds
            them at the preset's (or ``fixed``) values.

    Returns:
        :class:`FitResult`: fitted values and standard errors (noise parameters included),
        the one-step-ahead RMSE, per-read predictions (``predicted``: one step ahead from the
        previous read; ``free_run``: the noise-free law from the first read).
    """
    df = load_pulse_data(data) if isinstance(data, (str, os.PathLike)) else validate_pulse_data(data)
    if "device" in df:
        return fit_population(df, model, fit=fit, fixed=fixed, noise=noise)
    cls = model_class(model)
    fixed = dict(fixed or {})
    names = list(fit) if fit is not None else list(DEFAULT_FIT.get(model, ()))
    base = make_device(model, params=fixed)
    p0 = base.params
    if fit is None and model == "srtio3" and "amplitude" in df and df["amplitude"].nunique() > 1:
        names.append("c1")
    if fit is None and "time" in df:
        names += [n for n, on in (("tau_volatile", p0.volatile_ratio > 0), ("drift_nu", p0.drift_nu > 0))
                  if on and n not in fixed]
    valid = cls.params_class.field_names()
    unknown = [n for n in names + list(fixed) if n not in valid]
    if unknown:
        raise ParameterError([f"unknown parameter {n!r} for preset {model!r}" for n in unknown], model)
    if not names:
        raise ValueError("nothing to fit: give at least one parameter name")
    law_names = [n for n in names if n not in NOISE_FIT]
    noise_names = [n for n in NOISE_FIT if noise and n not in fixed and n not in law_names] + \
                  [n for n in names if n in NOISE_FIT]
    start, _ = _free_run_fit(df, model, [n for n in law_names if n not in ("tau_volatile", "drift_nu")], p0)
    for n in law_names:
        start.setdefault(n, float(getattr(p0, n)))
    for n in noise_names:  # a positive start, so that the log coordinate exists
        start[n] = float(getattr(p0, n)) or {"step_std": 0.05, "read_noise_std": 0.01}[n]
    all_names = law_names + [n for n in noise_names if n not in law_names]
    kind, to_x, from_x = _transforms(all_names, start, cls)
    trace_base = Trace.from_frame(df, base)
    scale = float(np.median(df["conductance"]))

    def nll(x: np.ndarray, restrict: np.ndarray | None = None) -> float:
        try:
            trial = make_device(model, params=p0.replace(**from_x(x)))
        except (ParameterError, ValueError, OverflowError):
            return 1e30
        value = neg_log_likelihood(trial, trace_base, scale, restrict)
        return value if math.isfinite(value) else 1e30

    def build_at(x: np.ndarray) -> DeviceModel:
        return make_device(model, params=p0.replace(**from_x(x)))

    x0 = to_x(start)
    if nll(x0) >= 1e30:
        raise ValueError(f"the starting parameters {start} are invalid for preset {model!r}; pass better values in fixed=")
    # BFGS: L-BFGS-B's line search stalls where the likelihood has walls (invalid parameters)
    sol = scipy.optimize.minimize(nll, x0, method="BFGS", options={"maxiter": 3000, "gtol": 1e-5})
    law_idx = [i for i, n in enumerate(all_names) if n not in NOISE_FIT]
    noise_idx = [i for i, n in enumerate(all_names) if n in NOISE_FIT]
    X = None
    if law_idx and noise_idx:
        # the noise levels by the restricted likelihood, the law held at its ML values: ML's
        # step_std came out ~10 % low because the law's parameters absorb part of the step noise
        # (module docstring); the derivatives of the predictions by the law are taken at the ML
        # optimum and held fixed
        X = prediction_jacobian(build_at, sol.x, law_idx, trace_base, scale)
        x_ml = sol.x.copy()

        def nll_noise(xn: np.ndarray) -> float:
            x = x_ml.copy()
            x[noise_idx] = xn
            return nll(x, X)

        noise_sol = scipy.optimize.minimize(nll_noise, x_ml[noise_idx], method="BFGS", jac="3-point",
                                            options={"maxiter": 500, "gtol": 1e-5})
        if noise_sol.fun < 1e30:
            sol.x[noise_idx] = noise_sol.x
    floor = {"step_std": 1e-5, "read_noise_std": 1e-6}  # "no noise of this kind": held at this floor
    at_bound = [n for i, n in enumerate(all_names) if n in floor and kind[n] == "log" and sol.x[i] < math.log(floor[n])]
    for n in at_bound:
        sol.x[all_names.index(n)] = math.log(floor[n])
    free = [i for i, n in enumerate(all_names) if n not in at_bound]
    values = from_x(sol.x)

    def build(xf: np.ndarray) -> DeviceModel:
        x = sol.x.copy()
        x[free] = xf
        return build_at(x)

    reml = [k for k, i in enumerate(free) if i in noise_idx] if X is not None else None
    H = fisher_information(build, sol.x[free], trace_base, scale, restricted=reml)
    try:
        cov = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        cov = scipy.linalg.pinv(H)
    sd_x = np.full(len(all_names), np.nan)
    sd_x[free] = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    stderr = {n: float(abs(values[n]) * sd) if kind[n] != "lin" else float(sd)
              for n, sd in zip(all_names, sd_x)}
    fitted_model = make_device(model, params=p0.replace(**values))
    steps = one_step(fitted_model, Trace.from_frame(df, fitted_model))
    out = df.copy()
    out["predicted"] = np.where(np.isfinite(steps["pred"]), steps["pred"], df["conductance"])
    out["free_run"] = predict_pulse_data(fitted_model, df)
    resid = (df["conductance"].to_numpy() - out["predicted"].to_numpy())[1:]
    rmse = float(np.sqrt(np.mean(resid**2)))
    message = str(sol.message) + (f"; at the lower bound (none of this noise found): {', '.join(at_bound)}"
                                  if at_bound else "")
    # BFGS on finite-difference gradients often ends with "precision loss" at the maximum
    # (a slope under 1 per unit log-parameter moves the likelihood by far less than one error bar)
    success = bool(sol.success or (len(free) and np.max(np.abs(np.asarray(sol.jac)[free])) < 1.0))
    return FitResult(model, fitted_model, values, stderr, rmse, out, success, message, fixed,
                     method=METHOD, log_likelihood=-nll(sol.x))  # the plain (not restricted) likelihood


#: how :func:`fit_device` estimates and states its errors (written to the JSON)
METHOD = ("maximum likelihood of the one-step-ahead predictions with c2c process noise and read noise "
          "(memsnn.device_models.likelihood), the noise levels then by the restricted (REML) likelihood with "
          "the law held; errors from the inverse expected (Fisher) information, REML information for the noise")


#: fitted parameter -> (its device-to-device field, how the spread is expressed): ``rel`` relative
#: to the mean, ``window`` in units of the mean window ``g_max - g_min``, ``exponent`` relative to
#: the power law's exponent at ``v_set`` (srtio3's ``c_dtod`` scales c(V) = c0 + c1 V)
DTOD_FIELDS: dict[str, tuple[str, str]] = {
    "r1": ("r_dtod", "rel"), "c0": ("c_dtod", "exponent"), "g_max": ("g_max_dtod", "window"),
    "g_min": ("g_min_dtod", "window"), "tau_volatile": ("tau_volatile_dtod", "rel"),
    "drift_nu": ("drift_nu_dtod", "rel"), "g_init": ("g_init_dtod", "rel"),
}


def fit_population(
    data: pd.DataFrame | str | os.PathLike,
    model: str = "srtio3",
    *,
    fit: Sequence[str] | None = None,
    fixed: dict[str, Any] | None = None,
    noise: bool = True,
) -> FitResult:
    """Fit every device of data with a ``device`` column on its own (:func:`fit_device`), then
    the population: the mean of each fitted parameter over devices and its spread between
    devices, ``sqrt(max(0, var(estimates) - mean(stderr**2)))`` (the spread of the estimates less
    what their own errors explain), written into the matching ``*_dtod`` field
    (:data:`DTOD_FIELDS`) so that ``make_device(preset, params=result.model.params.to_dict())``
    samples devices with that spread. Parameters without a d2d field in the preset (e.g. srtio3's
    ``reset_efficiency``, the noise levels) get their mean; their spread is reported in
    ``population`` only. ``values`` / ``stderr`` are the means and their standard errors
    (between-device standard deviation / sqrt(devices)).
    """
    df = load_pulse_data(data) if isinstance(data, (str, os.PathLike)) else validate_pulse_data(data)
    if "device" not in df:
        raise ValueError("fit_population needs a 'device' column; use fit_device for one device")
    devices: dict[str, FitResult] = {}
    for name, part in df.groupby("device", sort=False):
        devices[str(name)] = fit_device(part.drop(columns="device").reset_index(drop=True), model, fit=fit,
                                        fixed=fixed, noise=noise)
    if len(devices) < 2:
        raise ValueError(f"the device column names {len(devices)} device; a population needs at least 2")
    first = next(iter(devices.values()))
    names = list(first.values)
    est = pd.DataFrame({n: [r.values[n] for r in devices.values()] for n in names})
    err = pd.DataFrame({n: [r.stderr[n] for r in devices.values()] for n in names})
    means = est.mean()
    between = np.sqrt(np.clip(est.var(ddof=1) - (err**2).mean(), 0.0, None))
    base = make_device(model, params=dict(fixed or {})).params
    mean_params = base.replace(**{n: float(means[n]) for n in names})
    window = mean_params.g_max - mean_params.g_min
    dtod, population = {}, {}
    valid = set(base.field_names())
    for n in names:
        field_name, how = DTOD_FIELDS.get(n, (None, None))
        spread = float(between[n])
        if how == "rel":
            value = spread / abs(float(means[n]))
        elif how == "window":
            value = spread / window
        elif how == "exponent":
            value = spread / abs(mean_params.c_of(mean_params.v_set))
        else:
            value = None
        if field_name is not None and field_name in valid:
            dtod[field_name] = value
        else:
            field_name = None
        population[n] = {"mean": float(means[n]), "sd_between": spread, "sd_estimates": float(est[n].std(ddof=1)),
                         "mean_stderr": float(err[n].mean()), "dtod_field": field_name,
                         "dtod": value if field_name else None}
    fitted = make_device(model, params=mean_params.replace(**dtod))
    data_out = pd.concat([r.data.assign(device=name) for name, r in devices.items()], ignore_index=True)
    n_dev = len(devices)
    stderr = {n: float(est[n].std(ddof=1)) / math.sqrt(n_dev) for n in names}
    rmse = float(np.sqrt(np.mean([r.rmse**2 for r in devices.values()])))
    ok = all(r.success for r in devices.values())
    msg = f"{n_dev} devices fitted one by one; population spread written to {', '.join(dtod) or 'no *_dtod field'}"
    return FitResult(model, fitted, {n: float(means[n]) for n in names}, stderr, rmse, data_out, ok, msg,
                     dict(fixed or {}), method=METHOD + "; population: per-device fits",
                     log_likelihood=float(sum(r.log_likelihood for r in devices.values())),
                     devices=devices, population=population)
