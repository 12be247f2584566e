"""The likelihood of a measured pulse-response trace under a device model, with process noise.

A trace is a sequence of reads ``y_0, y_1, ...`` (siemens), read ``k`` taken after pulse ``k``
(SET, RESET or none) at time ``t_k``. Under a :class:`~memsnn.device_models.DeviceModel` the mean
device evolves as (module docstring of :mod:`memsnn.device_models.base`)::

    long-term part   G_lt   drifts as ((t - t_prog + t0) / t0) ** -nu between pulses and follows
                            the pulse law at each pulse, its step scattered by the c2c noise
                            (``step_std``: the pulse coordinate advances by s (1 + step_std xi));
    volatile part    G_vol  gains volatile_ratio times each pulse's step, relaxes as exp(-dt / tau);
    read             y = G_lt + G_vol + read noise (``read_noise_std``, relative or absolute).

The c2c noise enters the *state*: it accumulates along the trace, so residuals against a free
run of the noise-free law are correlated and least squares on them understates every error. This
module therefore scores each read against its **one-step-ahead prediction** from the previous
*measured* read: ``v_k = y_k - E[y_k | y_{k-1}]``. Linearised about the measured trajectory,

    v_k = (1 + volatile_ratio) J_k step_std xi_k + e_k - c_k e_{k-1}

with ``J_k`` the change of the new conductance per unit relative change of the pulse coordinate,
``e_k`` the read noise of read ``k`` and ``c_k = d E[y_k | y_{k-1}] / d y_{k-1}``. The process
terms are independent, so ``v`` is Gaussian with a *tridiagonal* covariance, and since
``dv / dy`` is unit lower triangular the likelihood of the reads is exactly that of ``v``: a banded
Cholesky factor (:func:`scipy.linalg.cholesky_banded`) gives it in O(N). This is the exact
Gaussian likelihood of the linearised state-space model, except for two approximations: the
volatile part is carried forward from the measured reads (its dependence on reads before
``k - 1`` is left out of ``c_k``, exact when the volatile part relaxes between pulses), and the
step noise is linearised (``J_k`` from a finite difference).

``neg_log_likelihood(..., restrict=X)`` is the restricted (REML) version used for the noise
levels, and ``fisher_information(..., restricted=...)`` its information (see those functions and
:mod:`.fitting` for why).

Without a time column the reads are taken as if the volatile part had relaxed and nothing drifted
between them (``volatile_ratio`` and ``drift_nu`` play no part). With one, the first read starts
with no volatile conductance and its drift clock at ``t_0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from .base import DeviceModel

__all__ = ["Trace", "clipped_normal_moments", "one_step", "moments", "neg_log_likelihood", "prediction_jacobian",
           "fisher_information"]

_DELTA = 1e-4  # relative finite-difference step of J_k and c_k


@dataclass(frozen=True)
class Trace:
    """One device's reads as arrays ``[N]``: ``polarity`` (+1 SET, -1 RESET, 0 none), ``amplitude``
    (V), ``width`` (s), ``time`` (s; None: no time dynamics), ``conductance`` (S)."""

    polarity: np.ndarray
    amplitude: np.ndarray
    width: np.ndarray
    time: np.ndarray | None
    conductance: np.ndarray

    @classmethod
    def from_frame(cls, df, model: DeviceModel) -> "Trace":
        p = model.params
        pol = df["polarity"].to_numpy(dtype=np.int64)
        amp = (df["amplitude"].to_numpy(dtype=float) if "amplitude" in df
               else np.where(pol >= 0, p.v_set, p.v_reset).astype(float))
        width = df["width"].to_numpy(dtype=float) if "width" in df else np.full(len(pol), p.pulse_width)
        time = df["time"].to_numpy(dtype=float) if "time" in df else None
        return cls(pol, amp, width, time, df["conductance"].to_numpy(dtype=float))


def _strength(model: DeviceModel, dev: dict, tr: Trace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: SET mask, amplitude and the nominal pulses one pulse counts as (``s``)."""
    p = model.params
    set_f = torch.as_tensor(tr.polarity > 0, dtype=torch.float64)
    amp = torch.tensor(tr.amplitude, dtype=torch.float64)
    scale = torch.where(set_f > 0, dev["scale_set"], dev["scale_reset"])
    return set_f, amp, model._amplitude_factor(amp, set_f) * torch.as_tensor(tr.width / p.width_ref) * scale


def _law(model: DeviceModel, dev: dict, g: torch.Tensor, tr: Trace, rel: float = 1.0) -> np.ndarray:
    """The mean device's long-term conductance after each row's pulse from ``g`` ``[N]``, its
    pulse coordinate step scaled by ``rel``, *before* the window bounds clip it (rows without a
    pulse: ``g``)."""
    set_f, amp, strength = _strength(model, dev, tr)
    out = model._respond(g, strength * rel, set_f, amp, dev)
    return torch.where(torch.as_tensor(tr.polarity != 0), out, g).numpy()


def clipped_normal_moments(m: np.ndarray, s: np.ndarray, lo: np.ndarray, hi: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``clip(X, lo, hi)`` for ``X ~ N(m, s**2)`` (elementwise; ``s = 0``
    gives the hard clip and no variance). A pulse's scattered result is clipped to the device's
    window, so near a bound the step noise is censored: these moments keep the likelihood smooth
    in the parameters there."""
    from scipy.stats import norm

    safe = np.where(s > 0, s, 1.0)
    with np.errstate(invalid="ignore"):
        a, b = (lo - m) / safe, (hi - m) / safe
    Pa, Pb, pa, pb = norm.cdf(a), norm.sf(b), norm.pdf(a), norm.pdf(b)
    inner = 1.0 - Pa - Pb
    fa, fb = np.isfinite(a), np.isfinite(b)
    a0, b0 = np.where(fa, a, 0.0), np.where(fb, b, 0.0)  # the infinite-bound terms vanish
    mean1 = a0 * Pa + b0 * Pb + pa - pb
    sq = a0 * a0 * Pa + b0 * b0 * Pb + inner + a0 * pa - b0 * pb
    var1 = np.clip(sq - mean1**2, 0.0, None)
    hard = np.clip(m, lo, hi)
    return np.where(s > 0, m + safe * mean1, hard), np.where(s > 0, safe**2 * var1, 0.0)


def _read_sd(model: DeviceModel, g: np.ndarray) -> np.ndarray:
    """Read-noise std (S) of reads of conductance ``g``."""
    p = model.params
    if p.read_noise_type == "absolute":
        return np.full(len(g), p.read_noise_std * p.window)
    return p.read_noise_std * np.abs(g)


def one_step(model: DeviceModel, tr: Trace) -> dict[str, np.ndarray]:
    """One-step-ahead predictions of reads ``1 .. N-1`` (module docstring) and their noise terms.

    Returns arrays ``[N]`` (row 0 holds no prediction: NaN / 0): ``pred`` (S), ``q`` (variance of
    the read's process noise, S^2: ``(1 + volatile_ratio)**2`` times that of the long-term
    conductance, ``(step_std J_k)**2`` away from the window bounds and the censored normal's
    variance near them, :func:`clipped_normal_moments`), ``coef`` (``c_k``), ``mean`` (noise-free
    conductance of the read, for the relative read noise).
    """
    p = model.params
    y = tr.conductance
    n = len(y)
    timed = tr.time is not None
    ratio = float(p.volatile_ratio) if timed else 0.0
    nu = float(p.drift_nu) if timed else 0.0
    tau, t0 = float(p.tau_volatile), float(p.drift_t0)
    gd, gvb, decay, dfac, beta_prev = (np.zeros(n) for _ in range(5))
    beta = ratio / (1.0 + ratio)
    # the volatile part and drift clock, carried forward from the measured reads (a recursion in time)
    g_vol, t_prog, last_beta = 0.0, (tr.time[0] if timed else 0.0), 0.0
    for k in range(1, n):
        if timed:
            dt = tr.time[k] - tr.time[k - 1]
            a = math.exp(-dt / tau) if ratio > 0 else 0.0
            d = ((tr.time[k] - t_prog + t0) / (tr.time[k - 1] - t_prog + t0)) ** (-nu) if nu > 0 else 1.0
        else:
            a, d = 0.0, 1.0
        gd[k], gvb[k], decay[k], dfac[k], beta_prev[k] = (y[k - 1] - g_vol) * d, g_vol * a, a, d, last_beta
        if tr.polarity[k] != 0:
            step = (y[k] - gd[k] - gvb[k]) / (1.0 + ratio)  # the step this pulse made, as measured
            g_vol = gvb[k] + ratio * step
            t_prog, last_beta = (tr.time[k] if timed else 0.0), beta
        else:
            g_vol, last_beta = gvb[k], 0.0
    dev = model.nominal_device_params(dtype=torch.float64)
    g = torch.as_tensor(gd)
    pulsed = tr.polarity != 0
    g_min, g_max = float(dev["g_min"]), float(dev["g_max"])
    lo = np.where(tr.polarity > 0, g_min, np.minimum(g_min, gd))
    hi = np.full(n, g_max)
    law = _law(model, dev, g, tr)
    law_up = _law(model, dev, g * (1 + _DELTA), tr)  # d law / d G
    if p.step_noise == "additive":  # k pulses add step_std * dG_ref * s * sqrt(k) * xi siemens
        sd = p.step_std * float(model._reference_step(dev)) * _strength(model, dev, tr)[2].numpy()
    else:  # the coordinate advances by s (1 + step_std xi)
        sd = p.step_std * np.abs(_law(model, dev, g, tr, rel=1 + _DELTA) - law) / _DELTA
    sd = np.where(pulsed, sd, 0.0)
    # the previous read's noise passes through the law and is clipped with the step noise: near a
    # bound both are censored together (sd_read: that noise as it reaches the new conductance)
    slope = (law_up - law) / np.maximum(_DELTA * gd, 1e-300)
    prev = np.concatenate(([0.0], y[:-1]))
    sd_read = np.where(pulsed, _read_sd(model, prev) * np.abs(slope) * dfac * (1 - beta_prev), 0.0)
    sd_tot = np.sqrt(sd**2 + sd_read**2)
    mean_lt, var_tot = clipped_normal_moments(law, sd_tot, lo, hi)
    mean_up, _ = clipped_normal_moments(law_up, sd_tot, lo, hi)
    mean_lt, mean_up = np.where(pulsed, mean_lt, gd), np.where(pulsed, mean_up, gd * (1 + _DELTA))
    if p.n_levels is not None:
        mean_lt = model._quantise(torch.as_tensor(mean_lt), dev, mean=True).numpy()
    pred = (1 + ratio) * mean_lt - ratio * gd + gvb
    dlaw = (mean_up - mean_lt) / np.maximum(_DELTA * gd, 1e-300)
    coef = np.where(pulsed, (1 + ratio) * dlaw - ratio, 1.0) * dfac * (1 - beta_prev) + decay * beta_prev
    # what is left for the step noise once the previous read's part (coef, in the covariance) is out
    var_lt = np.clip(var_tot - (dlaw * dfac * (1 - beta_prev) * _read_sd(model, prev)) ** 2, 0.0, None)
    q = (1 + ratio) ** 2 * var_lt
    pred[0], q[0], coef[0] = np.nan, 0.0, 0.0
    mean = np.where(np.isfinite(pred), pred, y)
    return {"pred": pred, "q": q, "coef": coef, "mean": np.maximum(mean, 0.0)}


def moments(model: DeviceModel, tr: Trace, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The one-step-ahead residuals ``v`` ``[N-1]`` (in units of ``scale`` siemens) and their
    tridiagonal covariance (``diag`` ``[N-1]``, ``off`` ``[N-2]``: cov(v_k, v_{k+1})), or None
    when the model cannot produce the trace (non-finite predictions)."""
    p = model.params
    o = one_step(model, tr)
    v = (tr.conductance[1:] - o["pred"][1:]) / scale
    if not np.isfinite(v).all():
        return None
    sig = _read_sd(model, o["mean"]) / scale
    q = o["q"][1:] / scale**2
    c = o["coef"][1:]
    floor = 1e-12  # keeps the covariance positive definite when a row has neither noise
    diag = q + sig[1:] ** 2 + (c * sig[:-1]) ** 2 + floor
    off = -c[1:] * sig[1:-1] ** 2  # cov(v_k, v_{k+1}) = -c_{k+1} sigma_k^2
    return v, diag, off


def _banded(m: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(v, lower banded Cholesky factor of the covariance)`` of :func:`moments`' output, or None
    when the covariance is not positive definite."""
    v, diag, off = m
    ab = np.zeros((2, len(v)))
    ab[0], ab[1, :-1] = diag, off
    try:
        return v, scipy.linalg.cholesky_banded(ab, lower=True)
    except np.linalg.LinAlgError:
        return None


def neg_log_likelihood(model: DeviceModel, tr: Trace, scale: float = 1.0, restrict: np.ndarray | None = None) -> float:
    """``-log p(y_1 .. y_{N-1} | y_0)`` of the trace under ``model`` (module docstring), with
    conductances in units of ``scale`` siemens (the value shifts by a constant only). ``inf``
    when the model cannot produce the trace (non-finite predictions).

    ``restrict`` ``[N-1, P]``: the derivatives of the predictions by the law's parameters (units of
    ``scale`` per unit coordinate, :func:`prediction_jacobian`). With it the value is the
    *restricted* (REML) negative log-likelihood, ``+ log det(X' S^-1 X) / 2``: the likelihood of
    the part of the residuals that the law's parameters cannot absorb, whose maximum over the noise
    parameters is free of the downward bias ML has when the law is fitted to the same reads. ``X``
    is held fixed (evaluated once near the optimum): the adjusted profile likelihood of Cox and
    Reid, exact REML for a model linear in the law's parameters."""
    m = moments(model, tr, scale)
    fac = None if m is None else _banded(m)
    if fac is None:
        return math.inf
    v, chol = fac
    z = scipy.linalg.cho_solve_banded((chol, True), v)
    value = float(0.5 * (v @ z) + np.log(chol[0]).sum() + 0.5 * len(v) * math.log(2 * math.pi))
    if restrict is not None and restrict.shape[1]:
        w = scipy.linalg.solve_banded((1, 0), chol, restrict)  # L^-1 X
        sign, logdet = np.linalg.slogdet(w.T @ w)
        if sign <= 0:
            return math.inf
        value += 0.5 * logdet
    return value


def _parts(build, x: np.ndarray, tr: Trace, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Predictions minus data ``[N-1]`` and the dense covariance ``[N-1, N-1]`` at coordinates ``x``."""
    v, diag, off = moments(build(x), tr, scale)
    return -v, np.diag(diag) + np.diag(off, -1) + np.diag(off, 1)


def prediction_jacobian(build, x: np.ndarray, idx: list[int], tr: Trace, scale: float = 1.0, h: float = 1e-5
                        ) -> np.ndarray:
    """``X`` ``[N-1, len(idx)]``: central differences of the one-step predictions (units of ``scale``)
    by the coordinates ``x[idx]`` (``build(x)`` -> DeviceModel); the ``restrict`` argument of
    :func:`neg_log_likelihood`."""
    cols = []
    for i in idx:
        e = np.zeros(len(x))
        e[i] = h
        v_p, _, _ = moments(build(x + e), tr, scale)
        v_m, _, _ = moments(build(x - e), tr, scale)
        cols.append((v_m - v_p) / (2 * h))  # prediction = data - v
    return np.array(cols).T.reshape(len(tr.conductance) - 1, len(idx))


def fisher_information(build, x: np.ndarray, tr: Trace, scale: float = 1.0, h: float = 1e-5,
                       restricted: list[int] | None = None) -> np.ndarray:
    """Expected information ``[P, P]`` of the Gaussian one-step likelihood at coordinates ``x``:
    ``dmu_i' S^-1 dmu_j + tr(S^-1 dS_i S^-1 dS_j) / 2`` with the derivatives of the predictions
    ``mu`` and of the covariance ``S`` by central differences (``build(x)`` -> DeviceModel).
    First differences of vectors are far better conditioned than second differences of the
    likelihood where parameters correlate strongly (srtio3's r1 and c0).

    ``restricted``: indices of the noise coordinates estimated by the restricted likelihood
    (:func:`neg_log_likelihood`'s ``restrict``); their block becomes the REML information
    ``tr(P dS_i P dS_j) / 2`` with ``P = S^-1 - S^-1 X (X' S^-1 X)^-1 X' S^-1`` and ``X`` the
    derivatives of ``mu`` by the other coordinates - the information left once the law's
    parameters have taken their share of the residuals."""
    mu0, S0 = _parts(build, x, tr, scale)
    Si = np.linalg.inv(S0)
    dmu, dS = [], []
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h
        (mp, Sp), (mm, Sm) = _parts(build, x + e, tr, scale), _parts(build, x - e, tr, scale)
        dmu.append((mp - mm) / (2 * h))
        dS.append((Sp - Sm) / (2 * h))
    M = np.array(dmu)
    info = M @ Si @ M.T
    SidS = [Si @ d for d in dS]
    info += 0.5 * np.array([[np.sum(a * b.T) for b in SidS] for a in SidS])
    if restricted:
        law = [i for i in range(len(x)) if i not in restricted]
        X = M[law].T
        SiX = Si @ X
        P = Si - SiX @ np.linalg.solve(X.T @ SiX, SiX.T)
        PdS = {i: P @ dS[i] for i in restricted}
        for i in restricted:
            for j in restricted:
                info[i, j] = 0.5 * np.sum(PdS[i] * PdS[j].T)
    return info
