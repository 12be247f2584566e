"""Run one experiment config into a directory: train, evaluate, and write every result.

:func:`run_experiment` loads the dataset, builds the method
(:func:`memsnn.experiments.methods.build_method`), trains it with
:func:`memsnn.learning.loop.fit`, exports the conductance maps of the trained crossbars, evaluates
(:func:`memsnn.experiments.methods.evaluate`: accuracy right after training, under input spike
jitter, and after each evaluation time of drift) and writes, into ``out_dir``:

=============================  ==================================================================
``config.toml``                the config as run (loads back equal with ``load_config``)
``history.csv``                one row per epoch: epoch, loss, train_acc, test_acc, pulses,
                               energy_J, phases, seconds (pulses and energy cumulative)
``accuracy_vs_epoch.png``      train and test accuracy against epoch
``maps/``                      in-situ runs: ``layer<i>_maps.npz`` and per-tile PNGs of G+, G-
                               and the weights of every crossbar at the end of training (before
                               the evaluation's drift), and ``conductance_histograms.png``
``trained/``                  in-situ runs: ``crossbars.pt`` (the trained crossbars, read by
                               ``memsnn export-maps``) and ``crossbars.state.pt`` (the rest of
                               the trained state), written when training ends; ``memsnn
                               evaluate RUN_DIR --at SECONDS`` reloads them
                               (:mod:`memsnn.experiments.trained`)
``pulse_summary.csv``          in-situ runs: per crossbar (``layer<i>``) and in total: devices,
                               SET / RESET pulses, energy (J), pulses per device (mean, max);
                               ``phases`` (training update phases) in the total row
``environment.json``           Python, torch, numpy and memsnn versions, platform, torch device,
                               threads, seed, start and end time (UTC, ISO 8601), wall time
``metrics.json``               one flat mapping: every :func:`evaluate` key plus ``phases``,
                               ``wall_s``, ``epochs``, ``rule``, ``insitu``, ``method``,
                               ``device`` (preset, or ``"digital"`` for float runs), ``dataset``,
                               ``n_train``, ``n_test``, ``seed``, ``name``; NaN is written as null
=============================  ==================================================================

``metrics.json`` is written last, so a directory holding it is a finished run. ``out_dir`` must
be new or empty; nothing is ever overwritten. The function leaves torch's thread count alone.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..crossbar.coding import Encoder
from ..files import FileExistsRefusal, atomic_path
from ..learning.loop import Method, fit
from .config import ExperimentConfig, save_config
from .datasets import Dataset, load_dataset
from .methods import build_method, evaluate
from .snn_plots import _plt, _save, plot_conductance_histograms
from .trained import TRAINED_DIR, save_trained

__all__ = ["run_experiment", "prepare_out_dir", "build_from_config"]


def prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` (and its parents) or accept it when it is an empty directory; refuse a
    file or a non-empty directory with :class:`~memsnn.files.FileExistsRefusal`."""
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise FileExistsRefusal(f"{out} exists and is not a directory; give a new or empty directory")
        if any(out.iterdir()):
            raise FileExistsRefusal(f"{out} is not empty; refusing to write a run into it (give a new or empty directory)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_experiment(cfg: ExperimentConfig, out_dir: str | os.PathLike, *, progress: bool = False,
                   data: Dataset | None = None) -> dict[str, Any]:
    """Run ``cfg`` into ``out_dir`` (new or empty) and return its metrics (see the module docstring).

    Args:
        cfg: a validated :class:`~memsnn.experiments.config.ExperimentConfig`.
        out_dir: where every result goes; created if missing.
        progress: show tqdm progress bars of the training epochs.
        data: the dataset of ``cfg`` (``load_dataset(seed=cfg.seed, **cfg.data.load_kwargs())``)
            when the caller loaded it already, e.g. to find bad data before making ``out_dir``.

    Returns:
        The flat metrics written to ``metrics.json`` (NaN kept as float NaN here).

    Raises:
        TypeError: ``cfg`` is not an ExperimentConfig.
        FileExistsRefusal: ``out_dir`` is a file or a non-empty directory (checked before any work).
        ValueError / FileNotFoundError: the dataset cannot be loaded.
        memsnn.learning.bptt.TrainingDiverged: the loss became NaN or infinite.
    """
    if not isinstance(cfg, ExperimentConfig):
        raise TypeError(f"cfg must be an ExperimentConfig (see memsnn.experiments.config.load_config), "
                        f"got {type(cfg).__name__}")
    out = prepare_out_dir(out_dir)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    save_config(cfg, out / "config.toml")

    data, method = build_from_config(cfg, data)
    pulses_before = int(method.counters().get("pulses", 0))  # initial programming
    history = fit(method, data, epochs=cfg.training.epochs, batch_size=cfg.training.batch_size, seed=cfg.seed,
                  progress=progress, num_steps=data.time_steps or (cfg.encoder_params() or Encoder()).num_steps,
                  input_noise=cfg.training.noise())
    if method.crossbars():  # the trained state, before anything reads or drifts it (memsnn evaluate)
        save_trained(method, out / TRAINED_DIR)
    _write_csv(history, out / "history.csv")
    _plot_history(history, out / "accuracy_vs_epoch.png", title=_title(cfg, method))
    phases = int(history["phases"].sum()) if "phases" in history else 0
    if method.crossbars():  # the trained state, before the evaluation lets the devices drift
        _export_maps(method, out / "maps")
        _write_csv(pulse_summary(method, phases), out / "pulse_summary.csv")

    metrics: dict[str, Any] = dict(evaluate(method, data, times=cfg.evaluation.times, jitter=cfg.evaluation.jitter,
                                            seed=cfg.seed, pulses_before=pulses_before, epochs=cfg.training.epochs,
                                            input_noise=cfg.evaluation.noise()))
    wall = time.perf_counter() - t0
    metrics.update({
        "phases": phases,
        "wall_s": wall,
        "epochs": cfg.training.epochs,
        "rule": cfg.rule.name,
        "insitu": cfg.rule.insitu,
        "method": method.name,
        "device": cfg.device.preset if cfg.rule.insitu else "digital",
        "dataset": cfg.data.dataset,
        "n_train": int(data.x_train.shape[0]),
        "n_test": int(data.x_test.shape[0]),
        "seed": cfg.seed,
        "name": cfg.name,
    })
    ended = _dt.datetime.now(_dt.timezone.utc)
    _write_json(environment(cfg.seed, started, ended, wall), out / "environment.json")
    _write_json(metrics, out / "metrics.json")
    return metrics


# ----------------------------------------------------------------------------------------------------
# pieces
# ----------------------------------------------------------------------------------------------------
def build_from_config(cfg: ExperimentConfig, data: Dataset | None = None) -> tuple[Dataset, Method]:
    """The dataset (loaded unless given) and the fresh, untrained method of ``cfg``, built as
    :func:`run_experiment` builds them (``memsnn evaluate`` rebuilds a run this way)."""
    data = data if data is not None else load_dataset(seed=cfg.seed, **cfg.data.load_kwargs())
    method = build_method(
        cfg.rule.name, cfg.rule.insitu, data,
        device=cfg.device_model(), encoder=cfg.encoder_params(), hidden=cfg.network.hidden, beta=cfg.network.beta,
        rule_params=cfg.rule.params, scheduler=dict(cfg.scheduler), crossbar=cfg.crossbar_params(),
        periphery=cfg.periphery_params(), seed=cfg.seed, epochs=cfg.training.epochs,
    )
    return data, method


def pulse_summary(method: Method, phases: int) -> pd.DataFrame:
    """Per crossbar of ``method`` (``layer<i>``) and a ``total`` row: devices (G+ and G- or
    reference arrays), SET / RESET / all pulses, programming energy (J), pulses per device
    (mean and max), all since construction (initial programming included); ``phases`` (the
    training update phases counted by the loop) in the total row only."""
    rows = []
    for i, xbar in enumerate(method.crossbars()):
        states = [xbar.plus, xbar.minus]
        n_set = sum(int(s.n_set.sum()) for s in states)
        n_reset = sum(int(s.n_reset.sum()) for s in states)
        per_device = torch.cat([(s.n_set + s.n_reset).flatten() for s in states])
        rows.append({
            "layer": f"layer{i}", "rows": xbar.shape[0], "cols": xbar.shape[1], "devices": int(per_device.numel()),
            "set_pulses": n_set, "reset_pulses": n_reset, "pulses": n_set + n_reset, "energy_J": float(xbar.energy),
            "pulses_per_device": (n_set + n_reset) / per_device.numel(),
            "max_pulses_per_device": int(per_device.max()), "phases": None,
        })
    table = pd.DataFrame(rows)
    devices, pulses = int(table.devices.sum()), int(table.pulses.sum())
    total = {"layer": "total", "rows": None, "cols": None, "devices": devices,
             "set_pulses": int(table.set_pulses.sum()), "reset_pulses": int(table.reset_pulses.sum()),
             "pulses": pulses, "energy_J": float(table.energy_J.sum()), "pulses_per_device": pulses / devices,
             "max_pulses_per_device": int(table.max_pulses_per_device.max()), "phases": phases}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def environment(seed: int, started: _dt.datetime, ended: _dt.datetime, wall_s: float) -> dict[str, Any]:
    """Versions, platform, torch device and timing of a run (JSON friendly)."""
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "memsnn": __version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch_device": "cpu",  # build_method places every method on the CPU
        "cuda_available": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
        "seed": seed,
        "start": started.isoformat(timespec="seconds"),
        "end": ended.isoformat(timespec="seconds"),
        "wall_s": wall_s,
    }


def _title(cfg: ExperimentConfig, method: Method) -> str:
    where = f"on {cfg.device.preset}" if cfg.rule.insitu else "float weights"
    label = f"{cfg.name}: " if cfg.name else ""
    return f"{label}{method.name} {where}, {cfg.data.dataset}, seed {cfg.seed}"


def _export_maps(method: Method, directory: Path) -> None:
    xbars = method.crossbars()
    for i, xbar in enumerate(xbars):
        xbar.export_maps(directory, name=f"layer{i}", formats=("npz", "png"))
    plot_conductance_histograms({f"layer{i}": xbar.conductances() for i, xbar in enumerate(xbars)},
                                directory / "conductance_histograms.png")


def _plot_history(history: pd.DataFrame, path: Path, *, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for col, style in (("train_acc", "--"), ("test_acc", "-")):
        if col in history and history[col].notna().any():
            ax.plot(history.epoch, 100 * history[col], style, marker="o", ms=3, label=col.replace("_acc", ""))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, overwrite=False)


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _write_json(data: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({k: _jsonable(v) for k, v in data.items()}, indent=2, allow_nan=False) + "\n")
