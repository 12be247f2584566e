"""Ex-situ transfer: train digitally, program the weights onto crossbars, watch drift eat accuracy.

Answers the first question a user asks: "If I train digitally and program the result onto SrTiO3
devices, how much accuracy do I lose, and how fast does drift eat it?"

1. Train a feed-forward SNN on float weights with surrogate-gradient BPTT (the digital baseline).
2. For every device preset and programming method, program the trained weights onto crossbars
   (:meth:`SpikingNetwork.to_crossbars`).
3. Evaluate the test accuracy right after programming and after each drift time (1 s, 1 h, 1 day,
   1 month, 1 year by default), with and without global drift compensation.

:func:`run_exsitu` returns the table and, given a run directory, writes: ``config.json``,
``history.csv`` (training), ``exsitu.csv`` / ``exsitu.md`` (accuracy per preset, method,
compensation and time, with programming cost), ``programming.csv``, the plots (accuracy against
time, spike raster, weight and conductance histograms), the digital weights (``digital.pt``) and
every programmed network's crossbars (``crossbars-<preset>-<method>.pt``, readable by
``memsnn export-maps``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..crossbar.coding import ENCODINGS, Encoder
from ..crossbar.network import READOUTS, SpikingNetwork
from ..crossbar.neurons import LIFParams
from ..crossbar.storage import save_crossbars
from ..device_models import preset_names
from ..learning.bptt import evaluate, train_bptt
from ..params import Params, param
from .datasets import Dataset, dataset_errors, dataset_kwargs, default_label_column, load_dataset
from .methods import encoder_for
from .snn_plots import (TIME_LABELS, plot_accuracy_vs_time, plot_conductance_histograms, plot_raster,
                        plot_weight_histograms)

__all__ = ["ExSituConfig", "ExSituResult", "run_exsitu", "load_data", "DEFAULT_TIMES"]

DEFAULT_TIMES = (0.0, 1.0, 3600.0, 86400.0, 2.592e6, 3.1536e7)


@dataclass(frozen=True)
class ExSituConfig(Params):
    """Everything an ex-situ transfer run needs; defaults reproduce the digits experiment."""

    _owner = "exsitu"

    dataset: str = param("digits", check=None, doc="dataset name, or the path of a CSV file (one row per sample)")
    label_column: str | None = param(None, check=None, optional=True,
                                     doc="CSV only: the label column (None: 'label' if present, else the last column)")
    limit: int | None = param(None, unit="samples", check="int>=1", optional=True, doc="keep the first N training samples (quick runs)")
    hidden: int = param(128, unit="neurons", check="int>=1", doc="hidden layer width (one hidden layer)")
    num_steps: int = param(25, unit="steps", check="int>=1", doc="time steps T")
    encoding: str = param("rate", check=None, choices=tuple(e for e in ENCODINGS if e != "sequence"),
                          doc="input spike code of static data (a temporal dataset is fed as its sequence)")
    beta: float = param(0.9, unit="1", check="prob", doc="membrane decay per step")
    readout: str = param("count", check=None, choices=READOUTS, doc="output read by spike count or membrane")
    epochs: int = param(20, unit="1", check="int>=1", doc="BPTT epochs")
    batch_size: int = param(32, unit="samples", check="int>=1", doc="BPTT batch size")
    lr: float = param(2e-3, unit="1", check=">0", doc="Adam learning rate")
    presets: tuple = param(("ideal", "srtio3", "pcm", "rram"), check=None, doc="device presets to program")
    methods: tuple = param(("write_verify", "open_loop"), check=None, doc="programming methods")
    times: tuple = param(DEFAULT_TIMES, check=None, doc="evaluation times after programming (s)")
    tol: float = param(0.01, unit="1", check=">0", doc="write-verify tolerance (fraction of the window)")
    seed: int = param(0, unit="1", check="int>=0", doc="seed of split, weights, spikes and devices")

    def __post_init__(self) -> None:
        for name in ("presets", "methods", "times"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "label_column", default_label_column(self.dataset, self.label_column))
        super().__post_init__()

    def _cross_checks(self) -> Iterator[str]:
        from ..crossbar.programming import METHODS

        yield from dataset_errors(self.dataset, self.label_column)
        bad = [p for p in self.presets if p not in preset_names()]
        if bad or not self.presets:
            yield f"presets={self.presets!r}: each must be one of {', '.join(preset_names())}"
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            yield f"methods={self.methods!r}: each must be one of {', '.join(METHODS)}"
        if not self.times or any(not isinstance(t, (int, float)) or t < 0 for t in self.times) or list(self.times) != sorted(self.times):
            yield f"times={self.times!r} must be increasing numbers of seconds >= 0"


@dataclass
class ExSituResult:
    table: pd.DataFrame  # preset, method, compensated, time_s, time, accuracy, ...
    programming: pd.DataFrame  # per preset, method, layer: the ProgramReport summary
    history: pd.DataFrame  # BPTT per epoch
    digital_accuracy: float
    out_dir: Path | None

    def summary(self) -> pd.DataFrame:
        """Accuracy (%) right after programming and after one day, per preset and method."""
        t = self.table
        rows = []
        for (preset, method), g in t.groupby(["preset", "method"], sort=False):
            def acc(time_s, comp):
                sel = g[(g.time_s == time_s) & (g.compensated == comp)]
                return 100 * float(sel.accuracy.iloc[0]) if len(sel) else float("nan")
            day = 86400.0 if (g.time_s == 86400.0).any() else float(g.time_s.max())
            rows.append({"preset": preset, "method": method, "after programming": acc(0.0, False),
                         f"after {TIME_LABELS.get(day, f'{day:g} s')}": acc(day, False),
                         f"after {TIME_LABELS.get(day, f'{day:g} s')}, compensated": acc(day, True),
                         "digital": 100 * self.digital_accuracy})
        return pd.DataFrame(rows)


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines) + "\n"


def load_data(cfg: ExSituConfig) -> Dataset:
    """The dataset of ``cfg`` (its split and ``limit``); every data check of the loader applies."""
    return load_dataset(**dataset_kwargs(cfg.dataset, cfg.label_column), seed=cfg.seed, limit=cfg.limit)


def run_exsitu(cfg: ExSituConfig | None = None, *, out_dir: str | Path | None = None, progress: bool = True,
               network: SpikingNetwork | None = None, data: Dataset | None = None) -> ExSituResult:
    """Run the experiment of the module docstring; ``network`` skips training (it must fit the
    data); ``data`` is :func:`load_data` of ``cfg`` when the caller loaded it already."""
    cfg = cfg or ExSituConfig()
    torch.manual_seed(cfg.seed)
    data = data if data is not None else load_data(cfg)
    # a temporal dataset is fed as its sequence ([T, B, C]); encoding / num_steps are for static data
    enc = encoder_for(data) if data.time_steps else Encoder(kind=cfg.encoding, num_steps=cfg.num_steps)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")

    if network is None:
        net = SpikingNetwork([data.n_channels, cfg.hidden, data.n_classes], neuron=LIFParams(beta=cfg.beta),
                             readout=cfg.readout, seed=cfg.seed)
        history = train_bptt(net, data, enc, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                             seed=cfg.seed, progress=progress)
    else:
        net, history = network, pd.DataFrame()
    digital = evaluate(net, data.x_test, data.y_test, enc, seed=cfg.seed + 7)

    rows, prog_rows, conductances = [], [], {}
    weights = {"digital": net.weights()}
    jobs = [(p, m) for p in cfg.presets for m in cfg.methods]
    for preset, method in tqdm(jobs, desc="ex-situ", disable=not progress, leave=False):
        t0 = time.perf_counter()
        xnet, reports = net.to_crossbars(preset, method=method, compensate_drift=True, seed=cfg.seed,
                                         program_kwargs={"tol": cfg.tol} if method == "write_verify" else None)
        for layer, rep in enumerate(reports):
            prog_rows.append({"preset": preset, "method": method, "layer": layer, **rep.summary()})
        elapsed = 0.0
        for t in cfg.times:
            xnet.advance(t - elapsed)
            elapsed = t
            for comp in (False, True):
                for syn in xnet.synapses:
                    syn.compensate_drift = comp
                acc = evaluate(xnet, data.x_test, data.y_test, enc, seed=cfg.seed + 7)
                rows.append({"preset": preset, "method": method, "compensated": comp, "time_s": float(t),
                             "time": TIME_LABELS.get(float(t), f"{t:g} s"), "accuracy": acc,
                             "pulses": sum(r.pulses for r in reports), "energy_J": sum(r.energy_J for r in reports),
                             "seconds": time.perf_counter() - t0})
        if out is not None:
            save_crossbars(out / f"crossbars-{preset}-{method}.pt",
                           {f"layer{i}": x for i, x in enumerate(xnet.crossbars())})
        if method == cfg.methods[0]:
            weights[preset] = xnet.weights()
            gp, gm = xnet.crossbars()[0].conductances()
            conductances[preset] = (gp, gm)

    table = pd.DataFrame(rows)
    programming = pd.DataFrame(prog_rows)
    result = ExSituResult(table, programming, history, digital, out)
    if out is not None:
        history.to_csv(out / "history.csv", index=False)
        table.to_csv(out / "exsitu.csv", index=False)
        programming.to_csv(out / "programming.csv", index=False)
        (out / "exsitu.md").write_text(_markdown(result.summary()))
        torch.save({"sizes": net.sizes, "weights": [w.cpu() for w in net.weights()]}, out / "digital.pt")
        plot_accuracy_vs_time(table, out / "accuracy_vs_time.png", digital=digital)
        plot_weight_histograms(weights, out / "weights.png")
        plot_conductance_histograms(conductances, out / "conductances_layer0.png")
        with torch.no_grad():
            sample = enc(data.x_test[:1], torch.Generator().manual_seed(cfg.seed))
            rec = net(sample, record=True).records
        plot_raster([sample[:, 0]] + [r.post[:, 0] for r in rec], out / "raster.png",
                    title=f"digital network, test sample 0 (label {int(data.y_test[0])}): input, hidden, output")
    return result
