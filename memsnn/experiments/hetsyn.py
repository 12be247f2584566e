"""``memsnn hetsyn``: LIF vs neuron-level vs synapse-level heterogeneity, float and on a device.

The question of HetSyn (Deng et al., arXiv 2508.11644; science.md 5) asked on our devices: does a
time constant per synapse beat one per neuron and one per layer (vanilla LIF) on temporal tasks,
and does the advantage survive when the synaptic filter is the SrTiO3 device's own volatile decay?

Models (one hidden HetSyn layer of ``hidden`` neurons, feed-forward, and a linear readout):

- ``lif``: ``granularity="layer"``, ``tau = tau_r = lif_tau`` fixed - exactly a vanilla
  current-based LIF with reset by subtraction (:mod:`memsnn.crossbar.hetsyn`);
- ``layer``: one learnable tau for the whole layer (homogeneous but trained: it separates "a
  long enough time constant" from "heterogeneous time constants");
- ``neuron``: one learnable tau per neuron (HomNeu);
- ``synapse``: one learnable tau per synapse (HetSyn), ``form`` binned (``n_bins`` log-spaced
  bins, straight-through moves between them) or exact.

Learnable taus start log-uniform in ``[tau_min, tau_max]`` and stay clamped there; the default range
spans one decade, as the srtio3 bias range does (1-10 s), so the device realises every learned
tau without clipping (``time_scale`` maps 10-100 ms of task time onto 1-10 s of device time).
Training: BPTT with the surrogate gradient, Adam, cross-entropy on a linear readout of each hidden
neuron's spike rate over the last ``readout`` steps (dmts: the test stimulus and response window;
other tasks: every step). Non-binary inputs (sequential Fashion-MNIST intensities) are Bernoulli
spike probabilities per step, redrawn every epoch, fixed per seed for the test split.

Deployment on ``device`` (default ``srtio3``): the trained hidden layer becomes a
:class:`~memsnn.crossbar.hetsyn_memristive.CrossbarHetSyn` (``realisation="device"``: tau map by
bias, weights by write-verify) and the readout a
:class:`~memsnn.crossbar.layers.CrossbarLinear` with per-column drift compensation; accuracy is
measured right after programming and one day later.

Tasks (:mod:`memsnn.experiments.temporal`):

- ``dmts`` over ``delays`` (working memory); its test split is also regenerated with every
  background rate in ``noise_rates`` at ``noise_delay`` (input noise; trained at the task's
  default noise);
- ``seq_fashion_mnist`` (``fmnist_limit`` training images, 28 rows as steps);
- ``waveform``: pattern generation (regression, R^2 of the readout's waveform; float and device).

Every (task, delay, model, seed) run is written to ``runs/<key>.json`` when it finishes (a killed
study loses no finished run and resumes with the same command); the study's settings are stored in
``study.json`` and a directory holding another study is refused. Outputs: ``hetsyn.csv`` (every
run), ``hetsyn_summary.csv`` / ``hetsyn.md`` (mean +- sample std over seeds, the paired gain of
each model over LIF with a 95 % t-interval, the float twin beside the device), and plots
``dmts_delay.png``, ``dmts_noise.png``, ``tau_distribution.png``. The paper's numbers are not in
a reachable form (science.md 5 lists none), so the table says so instead of inventing one.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._random import as_generator
from ..crossbar.hetsyn import HetSynLinear, decay
from ..files import atomic_path

__all__ = ["HetSynStudy", "MODELS", "TASKS", "run_study", "summarize", "markdown", "HetSynNet"]

MODELS = ("lif", "layer", "neuron", "synapse")
TASKS = ("dmts", "seq_fashion_mnist", "waveform")
_GRANULARITY = {"lif": "layer", "layer": "layer", "neuron": "neuron", "synapse": "synapse"}


@dataclass(frozen=True)
class HetSynStudy:
    """Settings of the study (module docstring); :meth:`errors` lists every bad field."""

    tasks: tuple[str, ...] = TASKS
    models: tuple[str, ...] = MODELS
    seeds: tuple[int, ...] = (0, 1, 2)
    delays: tuple[int, ...] = (0, 25, 50, 100, 200)
    noise_rates: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2)
    noise_delay: int = 50
    hidden: int = 64
    epochs: int = 20
    batch: int = 64
    lr: float = 5e-3
    dt: float = 1e-3
    tau_min: float = 0.01
    tau_max: float = 0.1
    lif_tau: float = 0.02
    tau_r: float = 0.02
    form: str = "binned"
    n_bins: int = 8
    device: str | None = "srtio3"
    dmts_train: int = 1000
    dmts_test: int = 300
    fmnist_limit: int = 6000
    fmnist_epochs: int = 8
    waveform_steps: int = 200
    waveform_outputs: int = 2
    waveform_iters: int = 300

    @classmethod
    def quick(cls) -> "HetSynStudy":
        """A few minutes on two cores: one seed, two delays, small splits."""
        return cls(seeds=(0,), delays=(0, 100), noise_rates=(0.02, 0.1), noise_delay=100, epochs=8,
                   dmts_train=400, dmts_test=200, fmnist_limit=1200, fmnist_epochs=3, waveform_iters=120)

    def errors(self) -> list[str]:
        from ..device_models import PRESETS

        out = []
        for name, allowed in (("tasks", TASKS), ("models", MODELS)):
            vals = getattr(self, name)
            bad = [v for v in vals if v not in allowed]
            if bad or not vals or len(set(vals)) != len(vals):
                out.append(f"{name}={list(vals)!r} is not allowed: distinct values from {', '.join(allowed)}")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds) \
                or len(set(self.seeds)) != len(self.seeds):
            out.append(f"seeds={list(self.seeds)!r} is not allowed: distinct integers >= 0")
        if not self.delays or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in self.delays):
            out.append(f"delays={list(self.delays)!r} is not allowed: integers >= 0 (steps)")
        if not self.noise_rates or any(not (0 <= r <= 1) for r in self.noise_rates):
            out.append(f"noise_rates={list(self.noise_rates)!r} is not allowed: probabilities in [0, 1]")
        for name in ("noise_delay", "hidden", "epochs", "batch", "n_bins", "dmts_train", "dmts_test", "fmnist_limit",
                     "fmnist_epochs", "waveform_steps", "waveform_outputs", "waveform_iters"):
            v = getattr(self, name)
            low = 0 if name == "noise_delay" else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                out.append(f"{name}={v!r} is not allowed: an integer >= {low}")
        for name in ("lr", "dt", "tau_min", "tau_max", "lif_tau", "tau_r"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                out.append(f"{name}={v!r} is not allowed: a finite number > 0")
        if not out and not (self.tau_min < self.tau_max and self.tau_min <= self.lif_tau <= self.tau_max):
            out.append(f"need tau_min < tau_max and lif_tau in [tau_min, tau_max]; got {self.tau_min}, {self.tau_max}, "
                       f"{self.lif_tau} s")
        if self.form not in ("binned", "exact"):
            out.append(f"form={self.form!r} is not allowed: 'binned' or 'exact'")
        if self.device is not None and self.device not in PRESETS:
            out.append(f"device={self.device!r} is not allowed: None or one of {', '.join(PRESETS)}")
        return out

    def check(self) -> "HetSynStudy":
        errors = self.errors()
        if errors:
            raise ValueError("invalid hetsyn study:\n  - " + "\n  - ".join(errors))
        return self

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# ------------------------------------------------------------------------------------------------
# the network
# ------------------------------------------------------------------------------------------------
class HetSynNet(nn.Module):
    """HetSyn hidden layer + linear readout.

    Classification (``readout`` steps > 0): logits = ``Linear(mean spikes of the last readout
    steps)``. Regression (``regression=True``): outputs per step = ``Linear(spikes filtered with
    tau_out)`` ``[T, B, n_out]``.
    """

    def __init__(self, n_in: int, n_out: int, model: str, study: HetSynStudy, *, readout: int, seed: int,
                 regression: bool = False):
        super().__init__()
        s = study
        common = dict(dt=s.dt, tau_min=s.tau_min, tau_max=s.tau_max, tau_r=s.tau_r, generator=seed, weight_gain=2.0)
        if model == "lif":
            self.hidden = HetSynLinear(n_in, s.hidden, granularity="layer", learn_tau=False, tau_init="constant",
                                       tau_init_low=s.lif_tau, tau_init_high=s.lif_tau, **{**common, "tau_r": s.lif_tau})
        else:
            self.hidden = HetSynLinear(n_in, s.hidden, granularity=_GRANULARITY[model], form=s.form, n_bins=s.n_bins,
                                       tau_init_low=s.tau_min, tau_init_high=s.tau_max, **common)
        self.readout = nn.Linear(s.hidden, n_out)
        self.window, self.regression = readout, regression
        self.rho_out = math.exp(-s.dt / s.lif_tau)

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """Readout inputs from hidden spikes ``z [T, B, H]``: rates ``[B, H]`` or filtered ``[T, B, H]``
        scaled to ``[0, 1]`` by ``1 - rho_out``."""
        if not self.regression:
            return z[-self.window:].mean(0)
        out, f = [], torch.zeros_like(z[0])
        for t in range(z.shape[0]):
            f = self.rho_out * f + (1 - self.rho_out) * z[t]
            out.append(f)
        return torch.stack(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.hidden(x)
        return self.readout(self.features(z))


class DeployedNet:
    """A trained :class:`HetSynNet` on crossbars: the hidden layer's synapses in the devices, the
    readout on a crossbar with per-column drift compensation."""

    def __init__(self, net: HetSynNet, preset: str, seed: int):
        from ..crossbar.hetsyn_memristive import CrossbarHetSyn
        from ..crossbar.layers import CrossbarLinear

        self.net = net
        self.hidden = CrossbarHetSyn.from_float(net.hidden, preset, seed=seed)
        w = net.readout.weight.detach().t().contiguous()
        self.readout, _ = CrossbarLinear.from_weight(w, preset, bias=net.readout.bias.detach(), compensate_drift="column",
                                                     seed=seed + 7)
        self.readout.crossbar.advance(10.0 * float(self.hidden.tau_target.max()))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.hidden(x)
        f = self.net.features(z)
        return self.readout(f.reshape(-1, f.shape[-1])).reshape(*f.shape[:-1], -1)

    def advance(self, seconds: float) -> None:
        self.hidden.advance(seconds)
        self.readout.crossbar.advance(seconds)

    def counters(self) -> dict[str, float]:
        c = self.hidden.counters()
        r = self.readout.crossbar.counters()
        return {"hidden_" + k: v for k, v in c.items()} | {"readout_pulses": r["pulses"], "readout_energy_J": r["energy_J"]}


def _spikes(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Spikes as they are; other values in [0, 1] as Bernoulli probabilities."""
    if bool(((x == 0) | (x == 1)).all()):
        return x
    return torch.bernoulli(x.clamp(0, 1), generator=gen)


def _train_classifier(net: HetSynNet, xs: torch.Tensor, y: torch.Tensor, epochs: int, study: HetSynStudy, gen) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=study.lr)
    n = xs.shape[1]
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, study.batch):
            idx = order[i:i + study.batch]
            loss = nn.functional.cross_entropy(net(_spikes(xs[:, idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            net.hidden.project_()


@torch.no_grad()
def _accuracy(f, xs: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    hits = 0
    for i in range(0, xs.shape[1], batch):
        hits += int((f(xs[:, i:i + batch]).argmax(-1) == y[i:i + batch]).sum())
    return 100.0 * hits / xs.shape[1]


def _latent_tau(net: HetSynNet) -> list[float]:
    """Every synapse's learned tau (s) before binning (the binned form uses its bin's centre)."""
    h = net.hidden
    return h.clamped(h.tau).detach().expand(h.out_features, h.in_features).flatten().tolist()


def _tau_stats(net: HetSynNet) -> dict[str, float]:
    tau = net.hidden.effective_tau().detach().double().flatten()
    q = torch.quantile(tau, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    return {"tau_p10_ms": 1e3 * float(q[0]), "tau_median_ms": 1e3 * float(q[1]), "tau_p90_ms": 1e3 * float(q[2])}


# ------------------------------------------------------------------------------------------------
# one run
# ------------------------------------------------------------------------------------------------
def _dmts(study: HetSynStudy, seed: int, delay: int, noise_rate: float | None = None):
    from .datasets import load_dataset

    tp: dict[str, Any] = {"delay": delay, "n_train": study.dmts_train, "n_test": study.dmts_test}
    if noise_rate is not None:
        tp["noise_rate"] = noise_rate
    return load_dataset("dmts", seed=seed, task_params=tp)


def _run_classification(task: str, model: str, seed: int, delay: int | None, study: HetSynStudy) -> dict[str, Any]:
    from .datasets import load_dataset
    from .temporal import resolve_task_params

    torch.manual_seed(seed)
    gen = as_generator(seed, torch.device("cpu"))
    if task == "dmts":
        data = _dmts(study, seed, delay)
        tp = resolve_task_params("dmts", {"delay": delay})
        window, epochs = int(tp.stimulus_steps) + int(tp.response_steps), study.epochs
    else:
        data = load_dataset("seq_fashion_mnist", limit=study.fmnist_limit)
        window, epochs = data.time_steps, study.fmnist_epochs
    x_tr, x_te = data.sequences("train"), data.sequences("test")
    x_te = _spikes(x_te, as_generator(10_000 + seed, torch.device("cpu")))  # one fixed draw per seed
    net = HetSynNet(data.n_channels, data.n_classes, model, study, readout=window, seed=seed)
    t0 = time.perf_counter()
    _train_classifier(net, x_tr, data.y_train, epochs, study, gen)
    rec: dict[str, Any] = {"train_s": time.perf_counter() - t0, "float": _accuracy(net, x_te, data.y_test), **_tau_stats(net)}
    noisy = {}
    if task == "dmts" and delay == study.noise_delay:
        for r in study.noise_rates:
            noisy[r] = _dmts(study, seed, delay, r)
            rec[f"float_noise_{r:g}"] = _accuracy(net, noisy[r].sequences("test"), noisy[r].y_test)
    if study.device is not None:
        t0 = time.perf_counter()
        dep = DeployedNet(net, study.device, seed)
        rec["device"] = _accuracy(dep, x_te, data.y_test)
        for r, d in noisy.items():
            rec[f"device_noise_{r:g}"] = _accuracy(dep, d.sequences("test"), d.y_test)
        dep.advance(86400.0)
        rec["device_1d"] = _accuracy(dep, x_te, data.y_test)
        rec["deploy_s"] = time.perf_counter() - t0
        rec.update(dep.counters())
        rec.update({f"device_{k}": v for k, v in dep.hidden.tau_report().items()})
        rec["_device_tau"] = (dep.hidden.tau_map()["plus"].t() / dep.hidden.time_scale).flatten().tolist()
    rec["_tau"] = _latent_tau(net)
    return rec


def _r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(1 - ((pred - target) ** 2).sum() / ((target - target.mean(0)) ** 2).sum())


def _run_waveform(model: str, seed: int, study: HetSynStudy) -> dict[str, Any]:
    from .temporal import waveform_task

    torch.manual_seed(seed)
    x, target = waveform_task(n_inputs=50, time_steps=study.waveform_steps, n_outputs=study.waveform_outputs, seed=seed)
    net = HetSynNet(x.shape[2], study.waveform_outputs, model, study, readout=0, seed=seed, regression=True)
    opt = torch.optim.Adam(net.parameters(), lr=study.lr)
    t0 = time.perf_counter()
    for _ in range(study.waveform_iters):
        loss = nn.functional.mse_loss(net(x)[:, 0], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.hidden.project_()
    with torch.no_grad():
        rec: dict[str, Any] = {"train_s": time.perf_counter() - t0, "float": 100.0 * _r2(net(x)[:, 0], target), **_tau_stats(net)}
    if study.device is not None:
        dep = DeployedNet(net, study.device, seed)
        rec["device"] = 100.0 * _r2(dep(x)[:, 0], target)
        dep.advance(86400.0)
        rec["device_1d"] = 100.0 * _r2(dep(x)[:, 0], target)
        rec.update(dep.counters())
    rec["_tau"] = _latent_tau(net)
    return rec


def _plan(study: HetSynStudy) -> list[dict[str, Any]]:
    runs = []
    for task in study.tasks:
        for delay in (study.delays if task == "dmts" else (None,)):
            for model in study.models:
                for seed in study.seeds:
                    key = f"{task}{'' if delay is None else f'_d{delay}'}_{model}_s{seed}"
                    runs.append({"key": key, "task": task, "delay": delay, "model": model, "seed": seed})
    return runs


def _prepare(out: Path, study: HetSynStudy) -> None:
    spec = out / "study.json"
    if spec.exists():
        if json.loads(spec.read_text()) != study.to_json():
            raise ValueError(f"{out} holds a hetsyn study with other settings ({spec}); give a new --out, or the same "
                             "options to resume it")
        return
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and is not a hetsyn study directory; give a new or empty --out")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(spec) as tmp:
        tmp.write_text(json.dumps(study.to_json(), indent=1))


def run_study(out: str | os.PathLike, study: HetSynStudy | None = None, *, progress: bool = True) -> pd.DataFrame:
    """Run (or resume) the study into ``out``; returns the summary table (module docstring)."""
    from tqdm import tqdm

    study = (study or HetSynStudy()).check()
    if "seq_fashion_mnist" in study.tasks:
        from .datasets import FASHION_MNIST_DIR

        if not Path(FASHION_MNIST_DIR).is_dir():
            raise FileNotFoundError(f"seq_fashion_mnist needs the Fashion-MNIST files in {FASHION_MNIST_DIR} "
                                    "(apt-get install dataset-fashion-mnist), or leave the task out with --tasks")
    out = Path(out)
    _prepare(out, study)
    plan = _plan(study)
    todo = [r for r in plan if not (out / "runs" / f"{r['key']}.json").exists()]
    for r in tqdm(todo, desc="hetsyn runs", disable=not progress):
        t0 = time.perf_counter()
        if r["task"] == "waveform":
            rec = _run_waveform(r["model"], r["seed"], study)
        else:
            rec = _run_classification(r["task"], r["model"], r["seed"], r["delay"], study)
        rec.update(r)
        rec["wall_s"] = time.perf_counter() - t0
        with atomic_path(out / "runs" / f"{r['key']}.json") as tmp:
            tmp.write_text(json.dumps(rec))
    table = collect(out)
    summary = summarize(table)
    for name, write in (("hetsyn.csv", lambda p: table.drop(columns=[c for c in table if c.startswith("_")]).to_csv(p, index=False)),
                        ("hetsyn_summary.csv", lambda p: summary.to_csv(p, index=False)),
                        ("hetsyn.md", lambda p: p.write_text(markdown(summary)))):
        with atomic_path(out / name, overwrite=True) as tmp:  # derived from runs/, rebuilt on every resume
            write(tmp)
    plot_all(table, summary, out)
    return summary


def collect(out: str | os.PathLike) -> pd.DataFrame:
    """Every finished run of a study directory, one row each."""
    recs = [json.loads(p.read_text()) for p in sorted(Path(out, "runs").glob("*.json"))]
    return pd.DataFrame(recs)


def _paired(table: pd.DataFrame, metric: str, model: str) -> tuple[float, float]:
    """Gain of ``model`` over LIF on ``metric``, paired over seeds, with its 95 % half-width."""
    from .results import paired_gain

    return paired_gain(table[table.model == model].set_index("seed")[metric],
                       table[table.model == "lif"].set_index("seed")[metric])


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds per (task, delay, model), and the paired gain over LIF."""
    metrics = [c for c in table.columns if (c in ("float", "device", "device_1d") or c.startswith("float_noise_")
                                             or c.startswith("device_noise_"))]
    rows = []
    keys = ["task", "delay"]
    t = table.assign(delay=table["delay"].fillna(-1).astype(int))
    for (task, delay), group in t.groupby(keys, sort=True):
        for model, g in group.groupby("model", sort=False):
            row: dict[str, Any] = {"task": task, "delay": None if delay < 0 else delay, "model": model, "seeds": len(g)}
            for m in metrics:
                v = g[m].dropna().astype(float)
                row[f"{m}_mean"] = float(v.mean()) if len(v) else math.nan
                row[f"{m}_std"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
                if model != "lif" and m in ("float", "device"):
                    row[f"{m}_gain_vs_lif"], row[f"{m}_gain_ci95"] = _paired(group, m, model)
            for c in ("tau_median_ms", "train_s"):
                if c in g:
                    row[c] = float(g[c].mean())
            rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, std: float) -> str:
    if mean is None or not math.isfinite(mean):
        return "-"
    return f"{mean:.1f}" + ("" if std is None or not math.isfinite(std) else f" ± {std:.1f}")


def markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (accuracy %, waveform: R^2 in %)."""
    lines = ["| task | delay | model | seeds | float | device | gain vs LIF (float) | gain vs LIF (device) | device after 1 day | "
             "median tau (ms) | paper |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        def gain(m):
            g, h = r.get(f"{m}_gain_vs_lif", math.nan), r.get(f"{m}_gain_ci95", math.nan)
            if g is None or not math.isfinite(g):
                return "-"
            return f"{g:+.1f}" + ("" if not math.isfinite(h) else f" ± {h:.1f}")
        delay = "-" if r["delay"] is None or (isinstance(r["delay"], float) and math.isnan(r["delay"])) else int(r["delay"])
        lines.append(f"| {r['task']} | {delay} | {r['model']} | {r['seeds']} | {_pm(r.get('float_mean'), r.get('float_std'))} | "
                     f"{_pm(r.get('device_mean'), r.get('device_std'))} | {gain('float')} | {gain('device')} | "
                     f"{_pm(r.get('device_1d_mean'), r.get('device_1d_std'))} | {r.get('tau_median_ms', math.nan):.1f} | "
                     "not in reachable form |")
    noise = [c for c in summary.columns if c.startswith("float_noise_") and c.endswith("_mean")]
    if noise:
        lines += ["", "DMTS under input noise (background spike probability per step; trained at the task's default):", "",
                  "| model | " + " | ".join(f"noise {c[len('float_noise_'):-5]} float / device" for c in noise) + " |",
                  "|---|" + "---|" * len(noise)]
        for _, r in summary[summary.task == "dmts"].dropna(subset=[noise[0]]).iterrows():
            cells = [f"{_pm(r[c], r[c[:-5] + '_std'])} / {_pm(r.get('device' + c[5:]), r.get('device' + c[5:-5] + '_std'))}" for c in noise]
            lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_all(table: pd.DataFrame, summary: pd.DataFrame, out: Path) -> list[Path]:
    """Accuracy against delay and against input noise (DMTS), and the learned tau distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    d = summary[summary.task == "dmts"]
    if len(d):
        fig, ax = plt.subplots(figsize=(6, 4))
        colour = {m: f"C{i}" for i, m in enumerate(MODELS)}  # one colour per model; float solid, device dashed
        for model, g in d.groupby("model", sort=False):
            g = g.sort_values("delay")
            for col, style in (("float", "-"), ("device", "--")):
                if f"{col}_mean" in g and g[f"{col}_mean"].notna().any():
                    ax.errorbar(g["delay"], g[f"{col}_mean"], yerr=g[f"{col}_std"].fillna(0), fmt="o" + style, capsize=3,
                                color=colour[model], label=f"{model} ({'float' if col == 'float' else 'device'})")
        ax.axhline(50, color="grey", lw=0.8, ls=":")
        ax.set(xlabel="delay (steps)", ylabel="test accuracy (%)", title="delayed match-to-sample")
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(_save(fig, out / "dmts_delay.png"))
        noise = sorted(c for c in summary.columns if c.startswith("float_noise_") and c.endswith("_mean"))
        rows = d.dropna(subset=noise[:1]) if noise else d.iloc[:0]
        if len(rows):
            rates = [float(c[len("float_noise_"):-5]) for c in noise]
            fig, ax = plt.subplots(figsize=(6, 4))
            for _, r in rows.iterrows():
                for pre, style in (("float", "-"), ("device", "--")):
                    ys = [r.get(f"{pre}_noise_{x:g}_mean", math.nan) for x in rates]
                    ax.plot(rates, ys, "o" + style, color=colour[r["model"]], label=f"{r['model']} ({pre})")
            ax.axhline(50, color="grey", lw=0.8, ls=":")
            ax.set(xlabel="background spike probability per step", ylabel="test accuracy (%)",
                   title=f"DMTS under input noise (delay {int(rows.iloc[0]['delay'])})")
            ax.legend(fontsize=7)
            fig.tight_layout()
            written.append(_save(fig, out / "dmts_noise.png"))
    syn = table[(table.model == "synapse")] if "model" in table else table.iloc[:0]
    if len(syn) and "_tau" in syn:
        fig, ax = plt.subplots(figsize=(6, 4))
        bins = np.linspace(np.log10(table["tau_p10_ms"].min() / 2), np.log10(table["tau_p90_ms"].max() * 2), 40)
        labels = syn["task"] + syn["delay"].map(lambda v: "" if v is None or pd.isna(v) else f" delay {int(v):03d}")
        for label, g in syn.groupby(labels, sort=True):
            taus = np.concatenate([np.asarray(t, dtype=float) for t in g["_tau"]]) * 1e3
            ax.hist(np.log10(taus), bins=bins, histtype="step", density=True, label=f"{label} (learned, before binning)")
        if "_device_tau" in syn:
            dev = [np.asarray(t, dtype=float) for t in syn["_device_tau"].dropna()]
            if dev:
                ax.hist(np.log10(np.concatenate(dev) * 1e3), bins=bins, histtype="stepfilled", alpha=0.25, density=True,
                        color="k", label="realised on the devices (all tasks, task time)")
        ax.set(xlabel="log10 synaptic tau (ms)", ylabel="density", title="synaptic time constants after training")
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(_save(fig, out / "tau_distribution.png"))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path, overwrite=True) as tmp:  # derived from runs/, rebuilt on every resume
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
