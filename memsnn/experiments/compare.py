"""``memsnn compare``: in-situ learning rules against their digital baselines, like for like.

On one dataset and one device preset, with the same seed and split, it trains and evaluates:

- supervised STDP in-situ (pulses on the device) and on float weights (``stdp``);
- surrogate-gradient training in-situ (BPTT gradients as pulses) and digital (Adam) (``sg``);
- the same surrogate-gradient training plus SSDP on the last layer, in-situ and digital (``ssdp``);
  same seed, so the ``sg`` rows are its without-SSDP control;
- CSDP with its delta-rule readout, in-situ and on float weights with the same plain-SGD
  optimiser (``csdp``);
- a logistic-regression reference on the raw features (``logreg``).

Methods are built by :func:`memsnn.experiments.methods.build_method`. For each it reports the test
accuracy after training, the accuracy with every input spike jittered by ``round(N(0, jitter))``
steps (2 by default), the accuracy after ``drift_time`` (one day by default) of drift, with
``input_noise`` / ``spike_drop`` / ``spike_insert`` set the accuracy under that input noise
(``acc_noisy``; ``train_noise`` also trains with it), the
programming pulses and energy (initial programming included), training pulses per synapse per
epoch, the update phases (time on hardware), and the wall time. Everything goes to a new run directory:
``config.json``, ``compare.csv`` / ``compare.md``, ``history.csv`` (per epoch and method), plots
(accuracy against epoch per method, conductance histograms of the in-situ arrays), and the final
conductance maps of every in-situ method under ``maps/``, and every in-situ method's trained state under
``trained/`` (``<method>.pt``: its crossbars, read by ``memsnn export-maps``; ``<method>.state.pt``:
the rest), written when its training ends, so that ``memsnn evaluate DIR --at SECONDS`` re-reads it
later in time without training again (:mod:`memsnn.experiments.trained`).

On a temporal dataset (``dmts``, ``spike_patterns``, ``seq_fashion_mnist``; options in
``task_params``, e.g. ``--task-param delay=50``) ``sg`` and ``ssdp`` feed each sample's sequence
in time (``num_steps`` is the dataset's T, not ``num_steps``); ``stdp``, ``csdp`` and ``logreg``
see the flattened ``[T * C]`` sequence as static features and do not integrate in time
(:func:`temporal_note` says so in the output and ``compare.md``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import torch

from ..crossbar.coding import Encoder
from ..crossbar.perturb import InputNoise, feature_bounds
from ..device_models import preset_names
from ..learning.loop import Method, fit
from ..params import Params, param
from .datasets import Dataset, dataset_errors, dataset_kwargs, load_dataset, default_label_column, is_csv_path
from .temporal import task_params_errors
from .exsitu import _markdown
from .methods import SEQUENCE_RULES, build_method, evaluate
from .snn_plots import plot_conductance_histograms
from .trained import TRAINED_DIR, _slug, save_trained

__all__ = ["CompareConfig", "CompareResult", "run_compare", "load_data", "temporal_note", "RULES"]

#: rule name -> the methods it adds to the table
RULES = {
    "stdp": ("stdp in-situ", "stdp float"),
    "sg": ("surrogate-gradient in-situ", "surrogate-gradient digital"),
    "ssdp": ("SSDP in-situ", "SSDP digital"),
    "csdp": ("csdp in-situ", "csdp float"),
    "logreg": ("logistic regression",),
}


@dataclass(frozen=True)
class CompareConfig(Params):
    """What ``memsnn compare`` runs; defaults: digits on srtio3, about 4 minutes on 2 cores (--quick: 35 s)."""

    _owner = "compare"

    dataset: str = param("digits", check=None, doc="dataset name, or the path of a CSV file (one row per sample)")
    label_column: str | None = param(None, check=None, optional=True,
                                     doc="CSV only: the label column (None: 'label' if present, else the last column)")
    task_params: dict | None = param(None, check=None, optional=True,
                                     doc="options of a generated temporal task (dmts, spike_patterns), e.g. {'delay': 50}")
    device: str = param("srtio3", check=None, choices=tuple(preset_names()), doc="device preset of the in-situ methods")
    rules: tuple = param(tuple(RULES), check=None, doc="rules to run")
    epochs: int = param(10, unit="1", check="int>=1", doc="training epochs of every method")
    stdp_epochs: int | None = param(None, unit="1", check="int>=1", optional=True, doc="epochs of STDP (None: epochs)")
    hidden: int = param(128, unit="neurons", check="int>=1", doc="hidden layer of the surrogate-gradient network")
    num_steps: int = param(25, unit="steps", check="int>=1", doc="time steps of the surrogate-gradient network")
    batch_size: int = param(32, unit="samples", check="int>=1", doc="mini-batch size")
    sg_lr: float = param(0.05, unit="1", check=">0", doc="in-situ SGD learning rate")
    digital_lr: float = param(2e-3, unit="1", check=">0", doc="Adam learning rate of the digital baseline")
    limit: int | None = param(None, unit="samples", check="int>=1", optional=True, doc="keep the first N training samples")
    drift_time: float = param(86400.0, unit="s", check=">=0", doc="drift before the second evaluation")
    backend: str = param("native", check=None, choices=("native", "aihwkit"), doc="crossbar backend of the in-situ methods (aihwkit: AnalogTiles, every rule)")
    jitter: float = param(2.0, unit="steps", check=">=0", doc="std of the input spike-time jitter of the robustness column")
    input_noise: float = param(0.0, unit="1", check=">=0",
                               doc="column acc_noisy: Gaussian feature noise, std as a fraction of each feature's range")
    spike_drop: float = param(0.0, unit="1", check="prob", doc="column acc_noisy: input spike deletion probability")
    spike_insert: float = param(0.0, unit="1", check="prob", doc="column acc_noisy: spurious input spike probability per slot")
    train_noise: bool = param(False, check=None, choices=(True, False),
                              doc="train every method with the same input noise as the acc_noisy column")
    seed: int = param(0, unit="1", check="int>=0", doc="seed of split, weights, spikes and devices")

    def __post_init__(self) -> None:
        if isinstance(self.rules, (list, str)):
            object.__setattr__(self, "rules", tuple([self.rules] if isinstance(self.rules, str) else self.rules))
        object.__setattr__(self, "label_column", default_label_column(self.dataset, self.label_column))
        super().__post_init__()

    def noise(self) -> InputNoise | None:
        """The input noise of the ``acc_noisy`` column (and of training with ``train_noise``), or None."""
        noise = InputNoise(feature=self.input_noise, drop=self.spike_drop, insert=self.spike_insert)
        return noise if noise.active else None

    def _cross_checks(self) -> Iterator[str]:
        yield from dataset_errors(self.dataset, self.label_column)
        if not is_csv_path(self.dataset):
            yield from task_params_errors(self.dataset, self.task_params)
        if self.train_noise and self.noise() is None:
            yield "train_noise=True needs input noise: set input_noise, spike_drop or spike_insert > 0"
        bad = [r for r in self.rules if r not in RULES]
        if bad or not self.rules:
            yield f"rules={self.rules!r}: each must be one of {', '.join(RULES)}"

    @classmethod
    def quick(cls, **overrides) -> "CompareConfig":
        """A run that finishes in well under a minute on 2 cores (small network, 2 epochs)."""
        base = dict(epochs=2, stdp_epochs=2, hidden=48, num_steps=10, batch_size=64)
        base.update(overrides)
        return cls(**base)


@dataclass
class CompareResult:
    table: pd.DataFrame
    history: pd.DataFrame
    out_dir: Path | None


def _epochs(cfg: CompareConfig, rule: str) -> int:
    return cfg.stdp_epochs if rule == "stdp" and cfg.stdp_epochs else cfg.epochs


def _methods(cfg: CompareConfig, data, rule: str) -> list[Method]:
    """The in-situ and the float method of ``rule``, built by :func:`memsnn.experiments.methods.build_method`."""
    enc = None if data.time_steps else Encoder(num_steps=cfg.num_steps)  # temporal: the sequence itself
    extra = {"sg": {"lr": cfg.sg_lr, "digital_lr": cfg.digital_lr},
             "ssdp": {"lr": cfg.sg_lr, "digital_lr": cfg.digital_lr}}.get(rule, {})
    epochs = _epochs(cfg, rule)
    return [build_method(rule, insitu, data, device=cfg.device, encoder=enc, hidden=(cfg.hidden,),
                         rule_params=extra, seed=cfg.seed, backend=cfg.backend, epochs=epochs)
            for insitu in (True, False)]


def _logreg(data, seed: int, noise: InputNoise | None) -> dict:
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    clf = LogisticRegression(max_iter=2000, random_state=seed)
    clf.fit(data.x_train.numpy(), data.y_train.numpy())
    acc = float((clf.predict(data.x_test.numpy()) == data.y_test.numpy()).mean())
    # no spikes, no devices: jitter and pulses per synapse do not apply
    row = {"method": "logistic regression", "rule": "logreg", "device": "digital", "test_acc": acc,
           "acc_jitter": float("nan"), "acc_after_drift": acc, "pulses": 0, "pulses_per_synapse_epoch": float("nan"),
           "energy_J": 0.0, "phases": 0, "wall_s": time.perf_counter() - t0}
    if noise is not None:  # feature noise applies (same draws as the spiking methods); spike noise does not
        x = noise.features(data.x_test, *feature_bounds(data.x_train), generator=torch.Generator().manual_seed(seed + 2 + 7927))
        row["acc_noisy"] = float((clf.predict(x.numpy()) == data.y_test.numpy()).mean()) if noise.feature > 0 else acc
    return row


def load_data(cfg: CompareConfig) -> Dataset:
    """The dataset of ``cfg`` (its split and ``limit``); every data check of the loader applies."""
    return load_dataset(**dataset_kwargs(cfg.dataset, cfg.label_column), seed=cfg.seed, limit=cfg.limit,
                        task_params=cfg.task_params)


def temporal_note(data: Dataset, rules) -> str | None:
    """What each rule makes of a temporal dataset, one sentence (None for static data)."""
    if not data.time_steps:
        return None
    seq = [r for r in rules if r in SEQUENCE_RULES]
    static = [r for r in rules if r not in SEQUENCE_RULES]
    parts = [f"dataset {data.name} is temporal: T = {data.time_steps} steps x {data.n_channels} channels"]
    if seq:
        parts.append(f"{' and '.join(seq)} {'feed' if len(seq) > 1 else 'feeds'} the sequence in time (encoder "
                     f"'sequence', {data.n_channels} inputs)")
    if static:
        one = len(static) == 1
        parts.append(f"{', '.join(static)} {'sees' if one else 'see'} the flattened {data.n_features}-vector as static "
                     f"features and {'does' if one else 'do'} not integrate in time")
    return "; ".join(parts)


def run_compare(cfg: CompareConfig | None = None, *, out_dir: str | Path | None = None, progress: bool = True,
                data: Dataset | None = None) -> CompareResult:
    """Run the comparison of the module docstring; ``data`` is :func:`load_data` of ``cfg`` when
    the caller loaded it already (the CLI does, so that bad data stops it before a run directory)."""
    cfg = cfg or CompareConfig()
    torch.manual_seed(cfg.seed)
    data = data if data is not None else load_data(cfg)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    rows, histories, in_situ = [], [], {}
    for rule in cfg.rules:
        if rule == "logreg":
            rows.append(_logreg(data, cfg.seed, cfg.noise()))
            continue
        for method in _methods(cfg, data, rule):
            t0 = time.perf_counter()
            epochs = _epochs(cfg, rule)
            before = int(method.counters().get("pulses", 0))
            hist = fit(method, data, epochs=epochs, batch_size=cfg.batch_size, seed=cfg.seed, progress=progress,
                       num_steps=data.time_steps or cfg.num_steps, input_noise=cfg.noise() if cfg.train_noise else None)
            hist.insert(0, "method", method.name)
            histories.append(hist)
            if method.crossbars():
                in_situ[method.name] = method
                if out is not None:  # the trained state, before evaluation reads or drifts it
                    save_trained(method, out / TRAINED_DIR, _slug(method.name))
            m = evaluate(method, data, times=(0.0, cfg.drift_time), jitter=(cfg.jitter,), seed=cfg.seed,
                         pulses_before=before, epochs=epochs, input_noise=cfg.noise())
            row = {"method": method.name, "rule": rule, "device": cfg.device if method.crossbars() else "digital",
                   "test_acc": m["test_acc"], "acc_jitter": m[f"acc_jitter_{cfg.jitter:g}"],
                   "acc_after_drift": m[f"acc_at_{cfg.drift_time:g}s"], "pulses": m["pulses"],
                   "pulses_per_synapse_epoch": m["pulses_per_synapse_per_epoch"], "energy_J": m["energy_J"],
                   "phases": int(hist.phases.sum()), "wall_s": time.perf_counter() - t0}
            if "acc_noisy" in m:
                row["acc_noisy"] = m["acc_noisy"]
            rows.append(row)
    table = pd.DataFrame(rows)
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame()
    if out is not None:
        table.to_csv(out / "compare.csv", index=False)
        note = temporal_note(data, cfg.rules)
        (out / "compare.md").write_text(_markdown(table) + (f"\n{note}.\n" if note else ""))
        history.to_csv(out / "history.csv", index=False)
        if not history.empty:
            _plot_history(history, table, out / "accuracy_vs_epoch.png")
        if in_situ:
            plot_conductance_histograms(
                {name: m.crossbars()[0].conductances() for name, m in in_situ.items()}, out / "conductances.png")
            for name, m in in_situ.items():
                slug = name.replace(" ", "_")
                for i, xbar in enumerate(m.crossbars()):
                    xbar.export_maps(out / "maps" / slug, name=f"layer{i}", formats=("csv", "npz", "png"))
    return CompareResult(table, history, out)


def _plot_history(history: pd.DataFrame, table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, g in history.groupby("method", sort=False):
        ax.plot(g.epoch, 100 * g.test_acc, marker="o", ms=3, label=name)
    for _, r in table[table.rule == "logreg"].iterrows():
        ax.axhline(100 * r.test_acc, color="k", ls=":", lw=1, label=r.method)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("learning curves", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
