"""Characterisation plots of a device preset: pulse response, volatile relaxation, drift.

Each function simulates a small population of devices with the preset's full non-idealities
(d2d and c2c spread, read noise) and writes one PNG; nothing is drawn from formulas alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_path
from .base import DeviceModel

__all__ = ["plot_pulse_response", "plot_volatile", "plot_drift", "plot_device", "sweep_pulse_counts"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike, overwrite: bool) -> Path:
    plt = _plt()
    with atomic_path(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def sweep_pulse_counts(model: DeviceModel) -> tuple[int, int]:
    """Nominal SET pulses to cross 95 % of the window from g_min, and RESET pulses back (capped)."""
    p = model.params
    dev = model.nominal_device_params()
    lo = torch.tensor(p.g_min + 0.02 * p.window, dtype=torch.float64)
    hi = torch.tensor(p.g_min + 0.95 * p.window, dtype=torch.float64)
    amp_s = torch.tensor(p.v_set, dtype=torch.float64)
    amp_r = torch.tensor(p.v_reset, dtype=torch.float64)
    t = torch.tensor(1.0, dtype=torch.float64)
    f = torch.tensor(0.0, dtype=torch.float64)
    s_set = float(model._amplitude_factor(amp_s, t))
    s_reset = float(model._amplitude_factor(amp_r, f))
    n_set = float(model._coord(hi, t, amp_s, dev) - model._coord(lo, t, amp_s, dev)) / max(s_set, 1e-12)
    try:
        lo_r = torch.tensor(p.g_min + 0.05 * p.window, dtype=torch.float64)
        hi_r = torch.tensor(p.g_min + 0.98 * p.window, dtype=torch.float64)
        n_reset = float(model._coord(lo_r, f, amp_r, dev) - model._coord(hi_r, f, amp_r, dev)) / max(s_reset, 1e-12)
    except ValueError:  # abrupt RESET (PCM)
        n_reset = 5
    clip = lambda n: int(min(max(round(n), 5), 2000))
    return clip(n_set), clip(n_reset)


def plot_pulse_response(
    model: DeviceModel,
    path: str | os.PathLike,
    *,
    n_devices: int = 16,
    interval: float = 1.0,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Conductance against pulse number: SET pulses from a fresh state, then RESET pulses.

    ``n_devices`` devices (d2d spread), one pulse every ``interval`` seconds (so the volatile part
    partly relaxes between pulses), each read with read noise. Thin lines: devices; thick: median;
    band: 10-90 % of the population; thin grey lines: six individual devices.
    """
    plt = _plt()
    gen = torch.Generator().manual_seed(seed)
    state = model.init_state((n_devices,), generator=gen)
    n_set, n_reset = sweep_pulse_counts(model)
    one = torch.ones(n_devices, dtype=torch.int32)
    trace = [model.read(state, generator=gen)]
    for i in range(n_set + n_reset):
        state = model.apply_pulses(state, one if i < n_set else -one, generator=gen)
        state = model.advance(state, interval)
        trace.append(model.read(state, generator=gen))
    g = torch.stack(trace).numpy() * 1e9  # [pulses + 1, devices] nS
    x = np.arange(g.shape[0])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, g[:, :6], color="tab:gray", lw=0.5, alpha=0.7)
    ax.fill_between(x, np.percentile(g, 10, axis=1), np.percentile(g, 90, axis=1), color="tab:orange", alpha=0.35, label="10-90 % of devices", zorder=0)
    ax.plot(x, np.median(g, axis=1), color="tab:red", lw=2, label="median")
    ax.axvline(n_set + 0.5, color="k", ls=":", lw=1)
    ax.text(n_set * 0.5, ax.get_ylim()[1], "SET", ha="center", va="top")
    ax.text(n_set + n_reset * 0.5, ax.get_ylim()[1], "RESET", ha="center", va="top")
    ax.set_xlabel("pulse number")
    ax.set_ylabel("conductance (nS)")
    p = model.params
    ax.set_title(f"{model.preset}: pulse response, {n_devices} devices, {p.v_set:g} V / {p.v_reset:g} V, "
                 f"{p.pulse_width * 1e6:g} us, read every {interval:g} s", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, path, overwrite)


def plot_volatile(
    model: DeviceModel,
    path: str | os.PathLike,
    *,
    n_pulses: int = 20,
    n_devices: int = 64,
    biases: tuple[float, ...] = (-1.0, 0.0, 1.0),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Volatile relaxation after a train of ``n_pulses`` SET pulses, at several bias voltages.

    Plots the population mean of what a read sees (with read noise) against time after the train,
    with the long-term (non-volatile) level dashed; the legend gives the measured 1/e time.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    p = model.params
    times = np.linspace(0.0, 40.0 if p.volatile_ratio > 0 else 10.0, 81)
    for bias, colour in zip(biases, ("tab:blue", "tab:green", "tab:red", "tab:purple")):
        gen = torch.Generator().manual_seed(seed)
        state = model.init_state((n_devices,), generator=gen)
        state = model.set_bias(state, bias)
        state = model.apply_pulses(state, torch.full((n_devices,), n_pulses, dtype=torch.int32), generator=gen)
        g = np.array([model.read(state, at=state.time + t, generator=gen).mean().item() for t in times]) * 1e9
        g_lt = np.array([model.conductance_longterm(state, at=state.time + t).mean().item() for t in times]) * 1e9
        label = f"bias {bias:+g} V"
        if p.volatile_ratio > 0:
            tau = model.tau_volatile(state).mean().item()
            label += f", mean tau = {tau:.2g} s"
        ax.plot(times, g, color=colour, label=label)
        ax.plot(times, g_lt, color=colour, ls="--", lw=0.8)
    if p.volatile_ratio == 0:
        ax.text(0.5, 0.5, "no volatile component in this preset", transform=ax.transAxes, ha="center")
    ax.set_xlabel("time after the pulse train (s)")
    ax.set_ylabel("mean read conductance (nS)")
    ax.set_title(f"{model.preset}: relaxation after {n_pulses} SET pulses (dashed: long-term level)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, overwrite)


def plot_drift(
    model: DeviceModel,
    path: str | os.PathLike,
    *,
    levels: tuple[float, ...] = (0.25, 0.5, 0.9),
    n_devices: int = 256,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Drift against log time: populations programmed to fractions of the window, read from 1 s
    to one year after programming (mean +- std across devices, read noise included)."""
    plt = _plt()
    p = model.params
    times = np.logspace(0, np.log10(3.15e7), 30)
    fig, ax = plt.subplots(figsize=(7, 4))
    for frac, colour in zip(levels, ("tab:blue", "tab:green", "tab:red", "tab:purple")):
        gen = torch.Generator().manual_seed(seed)
        state = model.init_state((n_devices,), generator=gen)
        target = torch.full((n_devices,), p.g_min + frac * p.window)
        state = model.program(state, target, generator=gen)
        reads = np.stack([model.read(state, at=state.time + t, generator=gen).numpy() for t in times]) * 1e9
        mean, std = reads.mean(axis=1), reads.std(axis=1)
        late = times >= 100
        slope = np.polyfit(np.log((times[late] + p.drift_t0) / p.drift_t0), np.log(np.clip(mean[late], 1e-30, None)), 1)[0]
        ax.plot(times, mean, color=colour, label=f"programmed to {frac:.0%} of window, fitted nu = {-slope:.3f}")
        ax.fill_between(times, mean - std, mean + std, color=colour, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("time since programming (s)")
    ax.set_ylabel("read conductance (nS)")
    for t, name in ((3600, "1 h"), (86400, "1 day"), (2.6e6, "1 month"), (3.15e7, "1 year")):
        ax.axvline(t, color="k", lw=0.5, ls=":")
        ax.text(t, ax.get_ylim()[1], name, fontsize=7, ha="right", va="top", rotation=90)
    nu_text = "nu depends on the programmed G" if model._has_dynamic_nu() else f"configured nu = {p.drift_nu:g}"
    ax.set_title(f"{model.preset}: drift, {nu_text}, t0 = {p.drift_t0:g} s (mean +- std of {n_devices} devices)", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return _save(fig, path, overwrite)


def plot_device(model: DeviceModel, directory: str | os.PathLike, *, overwrite: bool = False, seed: int = 0) -> list[Path]:
    """All three characterisation plots of ``model`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = model.preset
    return [
        plot_pulse_response(model, directory / f"{name}_pulse_response.png", overwrite=overwrite, seed=seed),
        plot_volatile(model, directory / f"{name}_volatile.png", overwrite=overwrite, seed=seed),
        plot_drift(model, directory / f"{name}_drift.png", overwrite=overwrite, seed=seed),
    ]
