"""``memsnn reproduce``: published numbers side by side with memsnn, float and in-situ, over seeds.

Each row of the table is one TOML file under ``examples/reproduce/`` (:data:`ROWS_DIR`): an
ordinary experiment config (:mod:`memsnn.experiments.config`) plus a ``[reproduce]`` table that
says what the row reproduces::

    [reproduce]
    work = "supervised in-situ STDP (Prajapati et al., arXiv 2507.20998)"
    task = "Iris"
    published = 99.11          # the paper's accuracy, %; absent when the paper gives none here
    metric = "test_acc"        # the metrics.json key scored (acc_noisy for input-noise rows)
    differs = "what differs from the paper's setup, one line"
    # published_gain = 0.63    # gain rows: the paper's gain in points (or [low, high])
    # baseline = "other_row"   # gain rows: the row the gain is measured against (same seeds)
    [reproduce.quick]          # dotted overrides of the experiment for --quick
    "training.epochs" = 2

Every row runs with ``rule.insitu = true`` (on the config's device, every non-ideality at its
default unless the config says otherwise) and ``rule.insitu = false`` (the rule's float twin),
for every seed, as one resumable sweep (:func:`memsnn.experiments.sweep.run_sweep`) in
``OUT/rows/<row>/``: a killed reproduce loses no finished run, and the same command resumes it.

Table (``reproduce.csv`` with accuracies in [0, 1]; ``reproduce.md`` in %; ``reproduce.png``):
``row, work, task, metric, published, float_mean, float_std, insitu_mean, insitu_std,
gap_to_published`` (in-situ minus published), ``gap_to_float`` (in-situ minus float),
``published_gain, float_gain, float_gain_ci, insitu_gain, insitu_gain_ci`` (gain rows: the mean
over seeds of the paired difference row minus baseline, with the half-width of its 95 % Student-t
interval), ``n_seeds, wall_s`` (the row's runs, summed), ``differs``. Spreads are sample standard
deviations (ddof = 1) over seeds.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import tomli_w

from ..files import atomic_path
from ..params import unknown_key_message
from .config import ConfigError, ExperimentConfig

__all__ = ["ROWS_DIR", "ReproRow", "load_row", "load_rows", "run_reproduce", "reproduce_table", "QUICK_SEEDS",
           "DEFAULT_SEEDS"]

#: where the row configs live (the repository's examples/reproduce)
ROWS_DIR = Path(__file__).resolve().parents[2] / "examples" / "reproduce"
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
QUICK_SEEDS = (0, 1)
SPEC_NAME = "reproduce.toml"
_ROW_KEYS = ("work", "task", "published", "metric", "differs", "published_gain", "baseline", "quick")


@dataclass(frozen=True)
class ReproRow:
    """One row: its name (file stem), what it reproduces and the experiment that does it."""

    name: str
    work: str
    task: str
    config: ExperimentConfig
    metric: str = "test_acc"
    differs: str = ""
    published: float | None = None
    published_gain: tuple[float, float] | None = None  # (low, high) in points; equal for a single number
    baseline: str | None = None
    quick: dict = field(default_factory=dict)
    source: str = ""

    def experiment(self, quick: bool) -> ExperimentConfig:
        """The row's config, with its quick overrides when ``quick``."""
        return self.config.with_overrides(self.quick) if quick and self.quick else self.config


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load_row(path: str | os.PathLike) -> ReproRow:
    """Read one row file; every problem of its ``[reproduce]`` table and its experiment config is
    reported at once in a :class:`~memsnn.experiments.config.ConfigError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reproduce row {str(path)!r} does not exist or is not a file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"TOML syntax error: {err}"], str(path)) from None
    meta = data.pop("reproduce", None)
    errors: list[str] = []
    if not isinstance(meta, dict):
        raise ConfigError(["a reproduce row needs a [reproduce] table (work, task, published, metric, differs)"],
                          str(path))
    errors += [f"reproduce.{unknown_key_message(k, list(_ROW_KEYS))}" for k in meta if k not in _ROW_KEYS]
    for key in ("work", "task"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            errors.append(f"reproduce.{key} is required: a non-empty string")
    published = meta.get("published")
    if published is not None and not (_number(published) and 0 <= published <= 100):
        errors.append(f"reproduce.published={published!r} is not allowed: must be an accuracy in % (0 to 100)")
    gain = meta.get("published_gain")
    if gain is not None:
        if _number(gain):
            gain = (float(gain), float(gain))
        elif isinstance(gain, list) and len(gain) == 2 and all(map(_number, gain)) and gain[0] <= gain[1]:
            gain = (float(gain[0]), float(gain[1]))
        else:
            errors.append(f"reproduce.published_gain={gain!r} is not allowed: must be points, or [low, high]")
        if not isinstance(meta.get("baseline"), str):
            errors.append("reproduce.published_gain needs reproduce.baseline: the row the gain is measured against")
    quick = meta.get("quick", {})
    if not isinstance(quick, dict):
        errors.append(f"reproduce.quick must be a table of dotted overrides, got {quick!r}")
        quick = {}
    try:
        cfg = ExperimentConfig.from_dict(data, source=str(path))
    except ConfigError as err:
        errors += err.errors
        cfg = None
    if cfg is not None and quick:
        try:
            cfg.with_overrides(quick)
        except ConfigError as err:
            errors += [f"reproduce.quick: {e}" for e in err.errors]
    metric = meta.get("metric", "test_acc")
    if cfg is not None and metric == "acc_noisy" and cfg.evaluation.noise() is None:
        errors.append("reproduce.metric='acc_noisy' needs input noise in [evaluation] (input_noise, spike_drop or "
                      "spike_insert)")
    if errors:
        raise ConfigError(errors, str(path))
    return ReproRow(name=path.stem, work=meta["work"].strip(), task=meta["task"].strip(), config=cfg,
                    metric=metric, differs=str(meta.get("differs", "")).strip(),
                    published=None if published is None else float(published), published_gain=gain,
                    baseline=meta.get("baseline"), quick=dict(quick), source=str(path))


def load_rows(names: Sequence[str] | None = None, rows_dir: str | os.PathLike | None = None) -> list[ReproRow]:
    """The rows named (file stems; None: every row), plus the baselines of gain rows, in file order."""
    rows_dir = Path(rows_dir) if rows_dir is not None else ROWS_DIR
    files = sorted(rows_dir.glob("*.toml"))
    if not files:
        raise FileNotFoundError(f"no reproduce rows (*.toml) in {rows_dir}")
    available = [f.stem for f in files]
    wanted = list(available) if names is None else list(dict.fromkeys(names))
    bad = [n for n in wanted if n not in available]
    if bad or not wanted:
        raise ValueError(f"rows={bad or wanted!r} not allowed: each must be one of {', '.join(available)}")
    rows = {f.stem: load_row(f) for f in files if f.stem in wanted}
    for row in list(rows.values()):  # a gain needs its baseline's runs
        if row.baseline is not None and row.baseline not in rows:
            if row.baseline not in available:
                raise ValueError(f"row {row.name!r}: reproduce.baseline={row.baseline!r} is not a row "
                                 f"(rows: {', '.join(available)})")
            rows[row.baseline] = load_row(rows_dir / f"{row.baseline}.toml")
    return [rows[n] for n in available if n in rows]


def _check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) or \
            len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={list(seeds)!r} is not allowed: must be distinct integers >= 0")
    return seeds


def _spec(rows: list[ReproRow], seeds: tuple[int, ...], quick: bool) -> dict[str, Any]:
    return {"format": 1, "quick": quick, "seeds": list(seeds),
            "rows": {r.name: tomllib.loads(r.experiment(quick).to_toml()) for r in rows}}


def _prepare(out: Path, spec: dict[str, Any]) -> None:
    """Write the spec of a new reproduce, or check a resumed one is the same."""
    path = out / SPEC_NAME
    if path.exists():
        stored = tomllib.loads(path.read_text())
        if stored != spec:
            raise ValueError(f"{out} holds a reproduce with other rows, seeds or settings ({path}); give a new "
                             f"--out, or the same options to resume it")
        return
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and is not a reproduce directory; give a new or empty --out")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(tomli_w.dumps(spec))


def run_reproduce(out: str | os.PathLike, *, rows: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                  quick: bool = False, workers: int | None = None, executor: str = "local",
                  rows_dir: str | os.PathLike | None = None, progress: bool = True) -> pd.DataFrame:
    """Run (or resume) the rows into ``out`` and write the table and plot (module docstring).

    Args:
        out: the reproduce directory: new, empty, or holding the same reproduce (it resumes).
        rows: row names (None: all); baselines of gain rows are added.
        seeds: seeds of every row (default :data:`DEFAULT_SEEDS`, with ``quick`` :data:`QUICK_SEEDS`).
        quick: apply each row's ``[reproduce.quick]`` overrides.
        workers, executor: of the sweeps (:func:`memsnn.experiments.sweep.run_sweep`).

    Returns:
        The table written to ``reproduce.csv``.
    """
    from .sweep import run_sweep

    seeds = _check_seeds(seeds if seeds is not None else (QUICK_SEEDS if quick else DEFAULT_SEEDS))
    selected = load_rows(rows, rows_dir)  # every row validated before any run
    out = Path(out)
    _prepare(out, _spec(selected, seeds, quick))
    for row in selected:
        if progress:
            print(f"row {row.name}: {row.work}, {row.task}", flush=True)
        run_sweep(row.experiment(quick), {"rule.insitu": ["true", "false"]}, out / "rows" / row.name, seeds=seeds,
                  workers=workers, executor=executor, progress=progress)
    table = reproduce_table(out, selected)
    write_outputs(table, out)
    return table


def _row_runs(sweep_dir: Path) -> pd.DataFrame:
    """One line per finished run of a row's sweep: seed, insitu, every metric."""
    recs = []
    for metrics in sorted((sweep_dir / "runs").glob("*/metrics.json")):
        m = json.loads(metrics.read_text())
        if m.get("status", "done") == "done" and "seed" in m:
            recs.append(m)
    return pd.DataFrame(recs)


def _mean_std(v: pd.Series) -> tuple[float, float]:
    v = v.dropna().astype(float)
    return (float(v.mean()) if len(v) else math.nan, float(v.std(ddof=1)) if len(v) > 1 else math.nan)


def _gain(row: pd.DataFrame, base: pd.DataFrame, metric: str, insitu: bool) -> tuple[float, float]:
    """Mean and 95 % t-interval half-width of the paired difference row - baseline over seeds."""
    from .results import paired_gain

    return paired_gain(row[row.insitu == insitu].set_index("seed")[metric], base[base.insitu == insitu].set_index("seed")[metric])


def reproduce_table(out: str | os.PathLike, rows: list[ReproRow]) -> pd.DataFrame:
    """The table of the module docstring from the runs under ``out/rows``."""
    out = Path(out)
    runs = {r.name: _row_runs(out / "rows" / r.name) for r in rows}
    recs = []
    for r in rows:
        df = runs[r.name]
        if df.empty or r.metric not in df:
            raise ValueError(f"row {r.name!r} has no finished runs with metric {r.metric!r} in {out / 'rows' / r.name}")
        fm, fs = _mean_std(df[~df.insitu.astype(bool)][r.metric])
        im, is_ = _mean_std(df[df.insitu.astype(bool)][r.metric])
        pub = None if r.published is None else r.published / 100
        rec = {"row": r.name, "work": r.work, "task": r.task, "metric": r.metric,
               "published": math.nan if pub is None else pub, "float_mean": fm, "float_std": fs,
               "insitu_mean": im, "insitu_std": is_,
               "gap_to_published": math.nan if pub is None else im - pub, "gap_to_float": im - fm,
               "published_gain": math.nan, "float_gain": math.nan, "float_gain_ci": math.nan,
               "insitu_gain": math.nan, "insitu_gain_ci": math.nan,
               "n_seeds": int(df.seed.nunique()), "wall_s": float(df.wall_s.sum()), "differs": r.differs}
        if r.baseline is not None:
            base = runs[r.baseline]
            lo, hi = r.published_gain if r.published_gain else (math.nan, math.nan)
            rec["published_gain"] = (lo + hi) / 2 / 100 if lo == hi else math.nan
            rec["published_gain_range"] = f"{lo:+g} to {hi:+g}" if lo != hi else f"{lo:+g}"
            rec["float_gain"], rec["float_gain_ci"] = _gain(df, base, r.metric, False)
            rec["insitu_gain"], rec["insitu_gain_ci"] = _gain(df, base, r.metric, True)
            rec["baseline"] = r.baseline
        recs.append(rec)
    return pd.DataFrame(recs)


def _pct(v: float, spread: float | None = None, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    s = f"{100 * v:+.2f}" if signed else f"{100 * v:.2f}"
    if spread is not None and not math.isnan(spread):
        s += f" +- {100 * spread:.2f}"
    return s


def markdown(table: pd.DataFrame) -> str:
    """``reproduce.md``: accuracies in %, mean +- std over seeds; gains in points, mean +- 95 % CI."""
    lines = ["| work | task | published % | memsnn float % | memsnn in-situ % | gap to published | gap to float "
             "| seeds | wall s | what differs |", "|" + "---|" * 10]
    for _, r in table.iterrows():
        lines.append(f"| {r.work} | {r.task} | {_pct(r.published)} | {_pct(r.float_mean, r.float_std)} | "
                     f"{_pct(r.insitu_mean, r.insitu_std)} | {_pct(r.gap_to_published, signed=True)} | "
                     f"{_pct(r.gap_to_float, signed=True)} | {r.n_seeds} | {r.wall_s:.0f} | {r.differs} |")
    gains = table[table["baseline"].notna()] if "baseline" in table else table.iloc[:0]
    if len(gains):
        lines += ["", "Gains over the baseline row, paired over seeds (points, mean +- 95 % t-interval):", "",
                  "| work | task | against | published gain | memsnn float gain | memsnn in-situ gain |",
                  "|---|---|---|---|---|---|"]
        for _, r in gains.iterrows():
            lines.append(f"| {r.work} | {r.task} | {r.baseline} | {r.published_gain_range} | "
                         f"{_pct(r.float_gain, r.float_gain_ci, True)} | {_pct(r.insitu_gain, r.insitu_gain_ci, True)} |")
    lines += ["", "Spreads: sample standard deviation over seeds. Wall time: the row's runs, summed (1 thread each)."]
    return "\n".join(lines) + "\n"


def write_outputs(table: pd.DataFrame, out: Path) -> None:
    """``reproduce.csv``, ``reproduce.md`` and ``reproduce.png`` in ``out`` (regenerated from the runs)."""
    with atomic_path(out / "reproduce.csv", True) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "reproduce.md", True) as tmp:
        tmp.write_text(markdown(table))
    plot(table, out / "reproduce.png")


def plot(table: pd.DataFrame, path: Path) -> Path:
    """One line per row: published (star), memsnn float and in-situ (mean +- std over seeds)."""
    from .snn_plots import _plt

    plt = _plt()
    n = len(table)
    fig, ax = plt.subplots(figsize=(8, 0.45 * n + 1.4))
    y = np.arange(n)[::-1]
    ax.errorbar(100 * table.float_mean, y + 0.12, xerr=100 * table.float_std.fillna(0), fmt="o", color="tab:blue",
                label="memsnn float", capsize=3)
    ax.errorbar(100 * table.insitu_mean, y - 0.12, xerr=100 * table.insitu_std.fillna(0), fmt="s",
                color="tab:orange", label="memsnn in-situ", capsize=3)
    pub = table.published.notna()
    ax.scatter(100 * table.published[pub], y[pub.to_numpy()], marker="*", s=120, color="k", label="published",
               zorder=3)
    ax.set_yticks(y, [f"{r.task} ({r.row})" for _, r in table.iterrows()], fontsize=7)
    ax.set_xlabel("accuracy (%)")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
