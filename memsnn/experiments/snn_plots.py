"""Plots of spiking runs and ex-situ transfer: spike rasters, accuracy against time since
programming, weight and conductance histograms. Every function writes one PNG and refuses to
overwrite unless asked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..files import atomic_path

__all__ = ["plot_raster", "plot_accuracy_vs_time", "plot_weight_histograms", "plot_conductance_histograms", "TIME_LABELS"]

TIME_LABELS = {0.0: "0", 1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 2.592e6: "1 month", 3.1536e7: "1 year"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, overwrite: bool) -> Path:
    plt = _plt()
    with atomic_path(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def plot_raster(spikes: torch.Tensor, path: str | os.PathLike, *, title: str = "spike raster", overwrite: bool = False) -> Path:
    """Raster of ``spikes`` ``[T, N]`` (one sample) or a list of layers: time on x, neuron on y."""
    plt = _plt()
    layers = spikes if isinstance(spikes, (list, tuple)) else [spikes]
    fig, axes = plt.subplots(len(layers), 1, figsize=(7, 1.6 + 1.6 * len(layers)), squeeze=False, sharex=True)
    for ax, s in zip(axes[:, 0], layers):
        s = torch.as_tensor(s).detach().cpu()
        if s.dim() != 2:
            raise ValueError(f"raster needs [T, N] spikes per layer, got shape {tuple(s.shape)}")
        t, n = torch.nonzero(s > 0, as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), s=4, marker="|", color="k")
        ax.set_ylabel(f"neuron ({s.shape[1]})")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path, overwrite)


def plot_accuracy_vs_time(table: pd.DataFrame, path: str | os.PathLike, *, digital: float | None = None,
                          overwrite: bool = False) -> Path:
    """Accuracy against time since programming, one line per (preset, method); solid with drift
    compensation, dashed without. ``table`` has columns preset, method, compensated, time_s, accuracy."""
    plt = _plt()
    need = {"preset", "method", "compensated", "time_s", "accuracy"}
    if not need <= set(table.columns):
        raise ValueError(f"table lacks columns {sorted(need - set(table.columns))}")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    groups = list(table.groupby(["preset", "method"], sort=False))
    for k, ((preset, method), g) in enumerate(groups):
        for comp, style in ((True, "-"), (False, "--")):
            gg = g[g.compensated == comp].sort_values("time_s")
            if gg.empty:
                continue
            x = np.maximum(gg.time_s.to_numpy(), 0.1)
            ax.plot(x, 100 * gg.accuracy, style, marker="o", ms=3, color=colours[k % len(colours)],
                    label=f"{preset} {method}" + (" (compensated)" if comp else ""))
    if digital is not None:
        ax.axhline(100 * digital, color="k", lw=1, ls=":", label=f"digital {100 * digital:.1f} %")
    ax.set_xscale("log")
    ticks = sorted(TIME_LABELS)
    ax.set_xticks([max(t, 0.1) for t in ticks])
    ax.set_xticklabels([TIME_LABELS[t] for t in ticks])
    ax.set_xlabel("time since programming")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("ex-situ transfer: accuracy as the devices drift", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, path, overwrite)


def plot_weight_histograms(weights: dict[str, Sequence[torch.Tensor]], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Histogram of every layer's weights per network (e.g. digital vs each preset)."""
    plt = _plt()
    names = list(weights)
    n_layers = max(len(v) for v in weights.values())
    fig, axes = plt.subplots(1, n_layers, figsize=(4 * n_layers, 3.2), squeeze=False)
    for layer in range(n_layers):
        ax = axes[0, layer]
        for name in names:
            if layer < len(weights[name]):
                w = torch.as_tensor(weights[name][layer]).detach().float().cpu().flatten().numpy()
                ax.hist(w, bins=80, histtype="step", label=name)
        ax.set_title(f"layer {layer} weights", fontsize=9)
        ax.set_xlabel("weight")
        ax.set_yscale("log")
    axes[0, 0].set_ylabel("count")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path, overwrite)


def plot_conductance_histograms(conductances: dict[str, tuple[torch.Tensor, torch.Tensor]], path: str | os.PathLike,
                                *, overwrite: bool = False) -> Path:
    """Histograms of G+ and G- (uS) per crossbar (``{name: (g_plus, g_minus)}``)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, (gp, gm) in conductances.items():
        for ax, g in zip(axes, (gp, gm)):
            if g is None:
                continue
            ax.hist(torch.as_tensor(g).detach().cpu().flatten().numpy() * 1e6, bins=80, histtype="step", label=name)
    for ax, label in zip(axes, ("G+", "G-")):
        ax.set_xlabel(f"{label} (uS)")
        ax.set_yscale("log")
    axes[0].set_ylabel("devices")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path, overwrite)
