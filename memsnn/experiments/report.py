"""Sweep reports: one HTML or Markdown page that summarises a parameter-sweep directory.

Input: a sweep directory ``DIR`` as written by :mod:`memsnn.experiments.sweep`:

- ``DIR/sweep.toml`` (or a ``sweep.json`` of the same layout): ``{"base": config, "grid":
  {dotted_key: [values]}, "mode": "product" | "zip", "seeds": [...]}``. It is read defensively: when it is missing or malformed the
  swept keys are taken from the dotted column names of the results table and a note says so;
- ``DIR/results.parquet`` (preferred) or ``DIR/results.csv``: one row per run with ``run_id``,
  ``status`` (``"done"`` / ``"failed"``), ``error``, ``seed``, one column per swept dotted key and the
  metrics ``test_acc``, ``acc_at_<t>s``, ``acc_jitter_<s>``, ``pulses``, ``energy_J``, ... plus the
  descriptive columns ``rule``, ``insitu``, ``device``, ``dataset``;
- ``DIR/runs/<run_id>/history.csv`` (per epoch: ``epoch``, ``test_acc``, ...) and
  ``DIR/runs/<run_id>/maps/*.npz`` (conductance maps, :func:`memsnn.crossbar.maps.load_maps` format).

Output: ``DIR/report.html`` (self-contained: every image is an embedded ``data:image/png;base64``
URI, the CSS is inline, there is no script) or ``DIR/report.md`` with its images in
``DIR/report_files/`` linked relatively. Neither is ever overwritten without ``overwrite=True``.

Definitions used throughout the report
--------------------------------------
- **Swept keys**: the grid keys in grid order, ``seed`` excluded (seeds are repetitions).
- **Method**: ``rule.name`` plus ``in-situ`` / ``float``, taken from the swept keys ``rule.name`` /
  ``rule.insitu`` when they are swept and from the ``rule`` / ``insitu`` columns otherwise.
- **Baseline value** of a key: the first value listed for it in the grid (without a spec: the
  smallest number, or the first category seen). The **baseline point** has every swept key at its
  baseline value.
- In a ``product`` sweep, a figure about some keys holds every *other* swept key at its baseline
  value, so that a curve changes one thing at a time; in a ``zip`` sweep the keys change together,
  so every run is used. Captions say which applies.
- Means and standard deviations are over the seeds of one point (sample std, ``ddof=1``; one seed
  gives no error bar). Accuracies are fractions in the table and drawn in percent.

Figures (matplotlib, Agg, PNG): accuracy against each swept non-ideality (every swept key except
``rule.name`` / ``rule.insitu``), accuracy against time since programming, a heatmap of mean test
accuracy over the first two swept keys, pulses and energy per method, conductance histograms and a
conductance map of one layer from the representative runs (first seed of the baseline point, per
method), and learning curves of those runs; then a summary table (mean +- std over seeds per swept
point) and a table of failed runs with their errors.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..files import FileExistsRefusal, atomic_path, check_writable
from ..params import Params

__all__ = ["write_report", "build_report", "SweepReport", "ReportFigure", "REPORT_FORMATS", "FIGURE_KINDS"]

#: report format -> allowed suffixes of the output file
REPORT_FORMATS = {"html": (".html", ".htm"), "md": (".md", ".markdown")}

#: every kind of figure a report may hold
FIGURE_KINDS = ("accuracy_vs_param", "accuracy_vs_time", "heatmap", "cost", "conductance_hist",
                "conductance_map", "learning_curves")

_METHOD_KEYS = ("rule.name", "rule.insitu")
#: column of SweepReport.runs holding the report's method label (``<rule> in-situ`` / ``<rule> float``)
_METHOD = "report_method"
_TIME_COLUMN = re.compile(r"^acc_at_(.+)s$")
_JITTER_COLUMN = re.compile(r"^acc_jitter_(.+)$")
#: metrics of the summary table, in this order (acc_at_* and acc_jitter_* are inserted after test_acc)
_COST_METRICS = ("pulses", "energy_J", "pulses_per_synapse_per_epoch", "phases", "wall_s")
#: columns of the results table that are never swept keys (used when the spec cannot be read)
_NOT_SWEPT = {"run_id", "status", "error", "traceback", "seed", "rule", "insitu", "device", "dataset", "epochs"}
_MAX_ERROR_CHARS = 300


# --------------------------------------------------------------------------- data classes


@dataclass
class ReportFigure:
    """One figure of a report, rendered in memory."""

    name: str
    """File stem, unique within the report (``accuracy_vs_device.read_noise_std``)."""
    kind: str
    """One of :data:`FIGURE_KINDS`."""
    title: str
    caption: str
    png: bytes
    """The PNG image."""
    data: pd.DataFrame
    """The numbers drawn (accuracies as fractions, conductances in siemens, energy in joules)."""


@dataclass
class SweepReport:
    """Everything a report shows, before it is written as HTML or Markdown."""

    directory: Path
    spec: dict
    """The sweep spec as read (empty when it could not be read)."""
    mode: str
    """``"product"`` or ``"zip"``."""
    swept: list[str]
    """Swept keys in grid order, seed excluded."""
    units: dict[str, str]
    """Swept key -> SI unit ("" when dimensionless or unknown)."""
    levels: dict[str, list[str]]
    """Swept key -> labels of its values in axis order (numbers ascending, categories in grid order)."""
    baseline: dict[str, str]
    """Swept key -> label of its baseline value."""
    runs: pd.DataFrame
    """The results table with a ``report_method`` column added (``<rule> in-situ`` / ``<rule> float``)."""
    summary: pd.DataFrame
    """Per swept point: the keys' values, method, runs done / failed, each metric as 'mean +- std'."""
    failures: pd.DataFrame
    """Failed runs: run_id, method, swept values, seed, error (first line)."""
    figures: list[ReportFigure]
    notes: list[str] = field(default_factory=list)
    """Figures skipped and fallbacks taken, one sentence each."""

    def figure(self, name: str) -> ReportFigure:
        """The figure called ``name``; a KeyError lists the names there are."""
        for f in self.figures:
            if f.name == name:
                return f
        raise KeyError(f"no figure {name!r} in this report; it has: {', '.join(f.name for f in self.figures)}")

    def figures_of(self, kind: str) -> list[ReportFigure]:
        """The figures of one kind, in report order."""
        if kind not in FIGURE_KINDS:
            raise ValueError(f"unknown figure kind {kind!r}; allowed: {', '.join(FIGURE_KINDS)}")
        return [f for f in self.figures if f.kind == kind]


@dataclass
class _Axis:
    """The levels of one swept key over the rows of the results table."""

    key: str
    labels: list[str]
    values: np.ndarray | None
    """Level values as floats (numeric keys only)."""
    codes: pd.Series
    """Level index of every row of the table."""
    scale: str
    """"linear", "log" or "category"."""
    baseline: int
    unit: str

    @property
    def numeric(self) -> bool:
        return self.values is not None

    def axis_label(self) -> str:
        return f"{self.key} ({self.unit})" if self.unit else self.key


# --------------------------------------------------------------------------- public API


def write_report(directory: str | os.PathLike, *, fmt: str = "html", out: str | os.PathLike | None = None,
                 overwrite: bool = False) -> Path:
    """Write the report of the sweep in ``directory``; return the report's path.

    Args:
        directory: the sweep directory (see the module docstring for what it holds).
        fmt: ``"html"`` (one self-contained file, images embedded as base64 data URIs) or ``"md"``
            (Markdown; its images go to ``<report stem>_files/`` next to it, e.g.
            ``DIR/report_files/``, linked relatively).
        out: the report file; default ``DIR/report.html`` or ``DIR/report.md``. Its suffix must
            suit ``fmt`` (``.html`` / ``.htm``, ``.md`` / ``.markdown``).
        overwrite: replace an existing report (and, for Markdown, images of the same names;
            images of an earlier report that this one does not draw are left as they are).

    Raises:
        ValueError: bad ``fmt`` or ``out`` suffix, a results table without ``test_acc``, or no
            finished run.
        FileNotFoundError: ``directory`` or its results table is missing.
        memsnn.files.FileExistsRefusal: the report (or a non-empty image folder) exists and
            ``overwrite`` is False.

    Everything is checked before any figure is drawn.
    """
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"fmt={fmt!r} is not allowed: must be one of {', '.join(map(repr, REPORT_FORMATS))}")
    directory = _check_directory(directory)
    path = Path(out) if out is not None else directory / f"report.{fmt}"
    if path.suffix.lower() not in REPORT_FORMATS[fmt]:
        raise ValueError(f"out={str(path)!r} does not suit fmt={fmt!r}: its suffix must be one of "
                         f"{', '.join(REPORT_FORMATS[fmt])}")
    if path.is_dir():
        raise IsADirectoryError(f"out={str(path)!r} is a directory; give the report file's path")
    check_writable(path, overwrite)
    files_dir = path.parent / f"{path.stem}_files"
    if fmt == "md" and not overwrite and files_dir.is_dir() and any(files_dir.iterdir()):
        raise FileExistsRefusal(f"{files_dir} already holds files; refusing to overwrite them (pass overwrite=True / --overwrite)")

    report = build_report(directory)

    if fmt == "html":
        text = _render_html(report)
        with atomic_path(path, overwrite) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return path

    links = {}
    for fig in report.figures:
        target = files_dir / f"{fig.name}.png"
        with atomic_path(target, overwrite) as tmp:
            tmp.write_bytes(fig.png)
        links[fig.name] = f"{files_dir.name}/{target.name}"
    text = _render_markdown(report, links)
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def build_report(directory: str | os.PathLike) -> SweepReport:
    """Read the sweep in ``directory`` and draw every figure in memory (nothing is written).

    Errors as in :func:`write_report`.
    """
    directory = _check_directory(directory)
    table = _read_table(directory)
    notes: list[str] = []
    spec, note = _read_spec(directory)
    if note:
        notes.append(note)
    table, done = _check_table(directory, table)
    mode = str(spec["mode"]) if spec.get("mode") in ("product", "zip") else "product"
    if spec and spec.get("mode") not in ("product", "zip"):
        notes.append(f"sweep mode {spec.get('mode')!r} is not 'product' or 'zip'; the report treats it as 'product'.")

    swept, grid = _swept_keys(spec, table, notes)
    axes = {k: _make_axis(table, k, grid.get(k), _unit_of(k, spec, table)) for k in swept}
    # the report's method label; a "method" column of the runs themselves is kept as it is
    table = table.assign(**{_METHOD: _method_labels(table, swept)})
    work = table[done].copy()
    work["method"] = work[_METHOD]
    for k, ax in axes.items():
        work[_code(k)] = ax.codes[work.index]

    plt = _pyplot()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    methods = list(dict.fromkeys(work["method"]))
    colour = {m: colours[i % len(colours)] for i, m in enumerate(methods)}

    figures: list[ReportFigure] = []
    for k in swept:
        if k not in _METHOD_KEYS:
            figures.append(_figure_accuracy_vs_param(work, axes, k, mode, colour))
    for maker in (_figure_accuracy_vs_time, _figure_heatmap, _figure_cost):
        fig = maker(work, axes, swept, mode, colour, notes)
        if fig is not None:
            figures.append(fig)
    representative = _representative_runs(work, axes, swept, notes)
    figures.extend(_figures_conductance(directory, representative, colour, notes))
    fig = _figure_learning_curves(directory, representative, colour, notes)
    if fig is not None:
        figures.append(fig)

    return SweepReport(
        directory=directory, spec=spec, mode=mode, swept=swept,
        units={k: a.unit for k, a in axes.items()}, levels={k: list(a.labels) for k, a in axes.items()},
        baseline={k: a.labels[a.baseline] for k, a in axes.items()},
        runs=table, summary=_summary_table(table, done, axes, swept), failures=_failure_table(table, done, axes, swept),
        figures=figures, notes=notes,
    )


# --------------------------------------------------------------------------- reading


def _check_directory(directory: str | os.PathLike) -> Path:
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"sweep directory {directory} does not exist")
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory; give a sweep directory")
    return directory


def _read_table(directory: Path) -> pd.DataFrame:
    """results.parquet, else results.csv; a clear error when neither can be read."""
    from .results import RESULTS_CSV, RESULTS_PARQUET

    parquet, csv = directory / RESULTS_PARQUET, directory / RESULTS_CSV
    problems = []
    if parquet.is_file():
        try:
            return pd.read_parquet(parquet)
        except Exception as exc:  # noqa: BLE001 - fall back to the CSV, reported if that fails too
            problems.append(f"{parquet.name} is unreadable ({exc})")
    if csv.is_file():
        try:
            return pd.read_csv(csv)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{csv.name} is unreadable ({exc})")
    if problems:
        raise ValueError(f"{directory}: no readable results table: " + "; ".join(problems))
    raise FileNotFoundError(
        f"{directory} has no results table (results.parquet or results.csv); it is written when a sweep "
        "finishes (memsnn.experiments.results.collect rebuilds it from the run directories)")


def _read_spec(directory: Path) -> tuple[dict, str | None]:
    """The sweep spec (``sweep.toml`` as :func:`memsnn.experiments.sweep.read_spec` reads it, else a
    ``sweep.json`` of the same layout) and a note when none could be used."""
    from .sweep import SPEC_NAME, read_spec

    fallback = "the swept keys were taken from the table's columns."
    try:
        spec: Any = read_spec(directory)
        name = SPEC_NAME
    except FileNotFoundError:
        name = "sweep.json"
        path = directory / name
        if not path.is_file():
            return {}, f"no {SPEC_NAME} or {name}; {fallback}"
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            return {}, f"{name} could not be read ({exc}); {fallback}"
    except (ValueError, OSError) as exc:
        return {}, f"{SPEC_NAME} could not be read ({exc}); {fallback}"
    if not isinstance(spec, dict):
        return {}, f"{name} does not hold an object; {fallback}"
    return spec, None


def _check_table(directory: Path, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Validate the results table; return it (index reset) and the mask of finished runs."""
    if table.empty:
        raise ValueError(f"{directory}: the results table has no runs; nothing to report")
    if "test_acc" not in table.columns:
        raise ValueError(f"{directory}: the results table lacks the test_acc column (it has: {', '.join(map(str, table.columns))})")
    table = table.reset_index(drop=True)
    if "run_id" not in table.columns:
        table["run_id"] = [f"row{i}" for i in range(len(table))]
    table["test_acc"] = pd.to_numeric(table["test_acc"], errors="coerce")
    if "status" in table.columns:
        done = table["status"].astype(str).str.strip().str.lower().eq("done")
    else:
        done = table["test_acc"].notna()
    done &= table["test_acc"].notna()
    if not done.any():
        first = ""
        if "error" in table.columns and table["error"].notna().any():
            first = f"; first error: {_first_line(table['error'].dropna().iloc[0])}"
        raise ValueError(f"{directory}: none of the {len(table)} runs finished (status 'done' with a test_acc); "
                         f"nothing to report{first}")
    return table, done


def _swept_keys(spec: dict, table: pd.DataFrame, notes: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Swept keys (grid order, seed excluded, present in the table) and their grid values as strings."""
    grid = spec.get("grid")
    if isinstance(grid, dict):  # an empty grid: only seeds were swept
        keys = [str(k) for k in grid if str(k) != "seed"]
        missing = [k for k in keys if k not in table.columns]
        if missing:
            notes.append(f"swept key(s) {', '.join(missing)} have no column in the results table and are left out.")
        values = {str(k): [str(v) for v in (v if isinstance(v, list) else [v])] for k, v in grid.items()}
        return [k for k in keys if k in table.columns], values
    if spec:
        notes.append("the sweep spec has no grid; the swept keys were taken from the table's columns.")
    # dotted config keys; "metric.<name>" is how collect() renames a metric that clashes with a column
    keys = [c for c in table.columns if "." in str(c) and c not in _NOT_SWEPT and not str(c).startswith("metric.")]
    return keys, {}


# --------------------------------------------------------------------------- axes and methods


def _code(key: str) -> str:
    return f"@{key}"


def _label(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "none"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(v)


def _same(grid_value: str, label: str, value: float | None) -> bool:
    s = grid_value.strip()
    if value is not None:
        try:
            return math.isclose(float(s), value, rel_tol=1e-9, abs_tol=0.0)
        except ValueError:
            return False
    if s.lower() in ("none", "null", ""):
        return label == "none"
    return s.lower() == label.lower() or _label(_try_float(s)) == label


def _try_float(s: str) -> Any:
    try:
        return float(s)
    except ValueError:
        return s


def _make_axis(table: pd.DataFrame, key: str, grid_values: list[str] | None, unit: str) -> _Axis:
    """Levels of ``key`` over every row: numbers sorted ascending, categories in grid order."""
    col = table[key]
    is_bool = pd.api.types.is_bool_dtype(col) or (
        col.notna().any() and col.dropna().map(lambda v: isinstance(v, (bool, np.bool_))).all())
    numbers = None
    if not is_bool and col.notna().all():
        converted = pd.to_numeric(col, errors="coerce")
        if converted.notna().all():
            numbers = converted.astype(float)
    if numbers is not None:
        values = np.unique(numbers.to_numpy())
        labels = [f"{v:g}" for v in values]
        codes = pd.Series(np.searchsorted(values, numbers.to_numpy()), index=table.index)
        positive = values > 0
        span = values.max() / values.min() if positive.all() else 0.0
        scale = "log" if positive.all() and len(values) > 1 and span > 100 else "linear"
        baseline = 0
        if grid_values:
            match = [i for i, v in enumerate(values) if _same(grid_values[0], labels[i], float(v))]
            baseline = match[0] if match else 0
        return _Axis(key, labels, values, codes, scale, baseline, unit)

    row_labels = col.map(_label)
    seen = list(dict.fromkeys(row_labels))
    ordered: list[str] = []
    for g in grid_values or []:
        for lab in seen:
            if lab not in ordered and _same(g, lab, None):
                ordered.append(lab)
    ordered += [lab for lab in seen if lab not in ordered]
    index = {lab: i for i, lab in enumerate(ordered)}
    baseline = 0
    if grid_values:
        match = [i for i, lab in enumerate(ordered) if _same(grid_values[0], lab, None)]
        baseline = match[0] if match else 0
    return _Axis(key, ordered, None, row_labels.map(index).astype(int), "category", baseline, unit)


def _to_bool(v: Any) -> bool | None:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)) and not (isinstance(v, float) and math.isnan(v)):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(v, str) and v.strip().lower() in ("false", "0", "no"):
        return False
    return None


def _method_labels(table: pd.DataFrame, swept: list[str]) -> pd.Series:
    """``<rule> in-situ`` / ``<rule> float`` per row (see the module docstring)."""
    rule_col = "rule.name" if "rule.name" in swept else ("rule" if "rule" in table.columns else None)
    insitu_col = "rule.insitu" if "rule.insitu" in swept else ("insitu" if "insitu" in table.columns else None)
    labels = []
    for _, row in table.iterrows():
        parts = []
        if rule_col is not None and _label(row[rule_col]) != "none":
            parts.append(_label(row[rule_col]))
        if insitu_col is not None:
            b = _to_bool(row[insitu_col])
            if b is not None:
                parts.append("in-situ" if b else "float")
        labels.append(" ".join(parts) if parts else "all runs")
    return pd.Series(labels, index=table.index, dtype=object)


def _base_value(spec: dict, table: pd.DataFrame, section: str, name: str, column: str) -> str | None:
    """``spec["base"][section][name]``, else the first value of ``column`` of the table."""
    base = spec.get("base")
    part = base.get(section) if isinstance(base, dict) else None
    if isinstance(part, dict) and part.get(name) is not None:
        return str(part[name])
    if column in table.columns and table[column].notna().any():
        return str(table[column].dropna().iloc[0])
    return None


def _params_classes(key: str, spec: dict, table: pd.DataFrame) -> tuple[list[type[Params]], str]:
    """The parameter classes that may declare dotted config ``key``, and the field name to look for."""
    from ..crossbar.array import CrossbarParams
    from ..crossbar.coding import Encoder
    from ..crossbar.periphery import PeripheryParams
    from ..device_models import model_class
    from ..learning.scheduler import SchedulerParams
    from . import config, methods

    section, _, name = key.partition(".")
    plain = {"encoder": Encoder, "periphery": PeripheryParams, "crossbar": CrossbarParams,
             "scheduler": SchedulerParams, "data": config.DataSection, "network": config.NetworkSection,
             "training": config.TrainingSection, "evaluation": config.EvaluationSection}
    if section in plain:
        return [plain[section]], name
    if section == "device":
        return [model_class(_base_value(spec, table, "device", "preset", "device") or "srtio3").params_class], name
    if key.startswith("rule.params."):
        rule = _base_value(spec, table, "rule", "name", "rule")
        return (list(methods.RULES[rule][0]) if rule in methods.RULES else []), key[len("rule.params."):]
    return [], name


def _unit_of(key: str, spec: dict, table: pd.DataFrame) -> str:
    """SI unit of a dotted config key from the parameter classes' metadata ("" if dimensionless or unknown;
    the device-agnostic knobs such as ``device.d2d_scale`` are dimensionless)."""
    try:
        classes, name = _params_classes(key, spec, table)
    except (ImportError, ValueError, KeyError):  # an unknown preset or rule: no unit, not an error
        return ""
    for cls in classes:
        for row in cls.describe():
            if row["name"] == name:
                return "" if row["unit"] in ("", "1") else str(row["unit"])
    return ""


def _hold(work: pd.DataFrame, axes: dict[str, _Axis], free: set[str], mode: str) -> tuple[pd.DataFrame, str]:
    """The runs with every swept key not in ``free`` at its baseline (product mode), and a caption note."""
    held = [k for k in axes if k not in free]
    if not held:
        return work, ""
    if mode == "zip":
        return work, f" Zip sweep: {', '.join(held)} change together with it; every run is used."
    mask = np.ones(len(work), dtype=bool)
    for k in held:
        mask &= (work[_code(k)] == axes[k].baseline).to_numpy()
    text = ", ".join(f"{k} = {axes[k].labels[axes[k].baseline]}" for k in held)
    if not mask.any():
        return work, f" No finished run has {text} (the baseline); averaged over those keys instead."
    return work[mask], f" Other swept keys held at their baseline: {text}."


# --------------------------------------------------------------------------- figures


def _pyplot():
    from .snn_plots import _plt

    return _plt()


def _png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "figure"


def _stats(frame: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """mean, std (ddof=1) and n of ``metric`` per group."""
    values = frame[by].assign(_v=pd.to_numeric(frame[metric], errors="coerce"))
    out = values.groupby(by, sort=True)["_v"].agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"count": "n"})


def _errorbar(ax, x, mean, std, **kw) -> None:
    yerr = np.nan_to_num(np.asarray(std, dtype=float), nan=0.0)
    ax.errorbar(x, mean, yerr=yerr, marker="o", ms=4, capsize=3, lw=1.4, **kw)


def _figure_accuracy_vs_param(work, axes, key, mode, colour) -> ReportFigure:
    ax_info = axes[key]
    sub, note = _hold(work, axes, {key, *_METHOD_KEYS}, mode)
    stats = _stats(sub, ["method", _code(key)], "test_acc")
    stats.insert(1, key, [ax_info.labels[c] for c in stats[_code(key)]])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for method in colour:  # report-wide method order and colours
        g = stats[stats["method"] == method]
        if g.empty:
            continue
        codes = g[_code(key)].to_numpy()
        x = ax_info.values[codes] if ax_info.numeric else codes
        _errorbar(ax, x, 100 * g["mean"], 100 * g["std"], color=colour.get(method), label=method)
    if ax_info.numeric:
        if ax_info.scale == "log":
            ax.set_xscale("log")
        if len(ax_info.values) <= 8:
            ax.set_xticks(ax_info.values)
            ax.set_xticklabels(ax_info.labels)
            ax.minorticks_off()
    else:
        ax.set_xticks(range(len(ax_info.labels)))
        ax.set_xticklabels(ax_info.labels, rotation=20 if max(map(len, ax_info.labels)) > 8 else 0)
        ax.set_xlim(-0.5, len(ax_info.labels) - 0.5)
    ax.set_xlabel(ax_info.axis_label())
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"test accuracy against {key}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    scale = {"log": "log axis", "linear": "linear axis", "category": "categories"}[ax_info.scale]
    caption = (f"Mean test accuracy over seeds against {ax_info.axis_label()} ({scale}), one line per method; "
               f"error bars are the standard deviation over seeds.{note}")
    data = stats.drop(columns=[_code(key)])
    return ReportFigure(f"accuracy_vs_{_slug(key)}", "accuracy_vs_param", f"Accuracy against {key}", caption,
                        _png(fig), data)


def _time_columns(work: pd.DataFrame) -> list[tuple[float, str]]:
    out = []
    for c in work.columns:
        m = _TIME_COLUMN.match(str(c))
        if m:
            try:
                t = float(m.group(1))
            except ValueError:
                continue
            if t >= 0 and pd.to_numeric(work[c], errors="coerce").notna().any():
                out.append((t, str(c)))
    return sorted(out)


def _time_label(t: float) -> str:
    from .snn_plots import TIME_LABELS

    if t in TIME_LABELS:
        return TIME_LABELS[t]
    for unit, size in (("year", 3.1536e7), ("day", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if t >= size and (t / size).is_integer():
            return f"{t / size:g} {unit}"
    return f"{t:g} s"


def _figure_accuracy_vs_time(work, axes, swept, mode, colour, notes) -> ReportFigure | None:
    times = _time_columns(work)
    if len(times) < 2:
        notes.append("accuracy against time since programming: skipped, the table has fewer than two acc_at_<t>s columns.")
        return None
    methods = list(dict.fromkeys(work["method"]))
    others = [k for k in swept if k not in _METHOD_KEYS]
    if len(methods) > 1 or not others:
        line_col, free, what = "method", set(_METHOD_KEYS), "one line per method"
        sub, note = _hold(work, axes, free, mode)
        sub = sub.assign(_line=sub["method"])
    else:
        k = others[0]
        sub, note = _hold(work, axes, {k, *_METHOD_KEYS}, mode)
        sub = sub.assign(_line=[f"{k} = {axes[k].labels[c]}" for c in sub[_code(k)]])
        line_col, what = k, f"one line per value of {k}"
    positive = [t for t, _ in times if t > 0]
    zero_at = (min(positive) / 10.0) if positive else 1.0
    rows = []
    for t, c in times:
        s = _stats(sub, ["_line"], c)
        s.insert(1, "time_s", t)
        rows.append(s)
    data = pd.concat(rows, ignore_index=True).rename(columns={"_line": "line"})
    order = list(dict.fromkeys(sub["_line"]))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, line in enumerate(order):
        g = data[data.line == line].sort_values("time_s")
        x = np.where(g.time_s.to_numpy() > 0, g.time_s.to_numpy(), zero_at)
        c = colour.get(line) if line_col == "method" else palette[i % len(palette)]
        _errorbar(ax, x, 100 * g["mean"], 100 * g["std"], color=c, label=line)
    ax.set_xscale("log")
    ticks = [(t if t > 0 else zero_at) for t, _ in times]
    ax.set_xticks(ticks)
    ax.set_xticklabels([_time_label(t) for t, _ in times], rotation=20)
    ax.minorticks_off()
    if any(t == 0 for t, _ in times) and positive:
        ax.axvline(math.sqrt(zero_at * min(positive)), color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("time since programming (log axis)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy as the devices drift", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    zero_note = (f" Time 0 (right after training) is drawn one decade left of the first later time, "
                 f"left of the dotted line." if any(t == 0 for t, _ in times) and positive else "")
    caption = (f"Mean test accuracy over seeds against time since programming, {what}; error bars are the "
               f"standard deviation over seeds.{zero_note}{note}")
    return ReportFigure("accuracy_vs_time", "accuracy_vs_time", "Accuracy against time since programming", caption,
                        _png(fig), data)


def _figure_heatmap(work, axes, swept, mode, colour, notes) -> ReportFigure | None:
    if len(swept) < 2:
        only = f" ({swept[0]})" if swept else ""
        notes.append(f"heatmap: skipped, only {len(swept)} parameter{'' if len(swept) == 1 else 's'}{only} "
                     "swept besides the seed; it needs two.")
        return None
    ky, kx = swept[0], swept[1]
    ay, ax_ = axes[ky], axes[kx]
    sub, note = _hold(work, axes, {ky, kx}, mode)
    stats = _stats(sub, [_code(ky), _code(kx)], "test_acc")
    grid = np.full((len(ay.labels), len(ax_.labels)), np.nan)
    for _, r in stats.iterrows():
        grid[int(r[_code(ky)]), int(r[_code(kx)])] = r["mean"]
    data = pd.DataFrame(grid, index=pd.Index(ay.labels, name=ky), columns=pd.Index(ax_.labels, name=kx))
    plt = _pyplot()
    n_y, n_x = grid.shape
    fig, ax = plt.subplots(figsize=(min(1.3 * n_x + 3.0, 14.0), min(0.8 * n_y + 2.2, 10.0)))
    masked = np.ma.masked_invalid(100 * grid)
    im = ax.imshow(masked, cmap="viridis", aspect="auto", origin="lower", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="mean test accuracy (%)")
    lo, hi = (np.nanmin(grid), np.nanmax(grid)) if np.isfinite(grid).any() else (0.0, 1.0)
    if grid.size <= 400:  # beyond that the numbers are in the table under the figure only
        size = 8 if max(n_x, n_y) <= 10 else 6
        for i in range(n_y):
            for j in range(n_x):
                v = grid[i, j]
                text = "no run" if np.isnan(v) else f"{100 * v:.1f}"
                light = not np.isnan(v) and hi > lo and (v - lo) / (hi - lo) < 0.5
                ax.text(j, i, text, ha="center", va="center", fontsize=size, color="w" if light else "k")
    ax.set_xticks(range(len(ax_.labels)))
    ax.set_xticklabels(ax_.labels, rotation=30 if n_x > 8 else 0)
    ax.set_yticks(range(len(ay.labels)))
    ax.set_yticklabels(ay.labels)
    ax.set_xlabel(ax_.axis_label())
    ax.set_ylabel(ay.axis_label())
    ax.set_title(f"mean test accuracy over {ky} and {kx}", fontsize=10)
    fig.tight_layout()
    caption = (f"Mean test accuracy (%) over seeds for every pair of {ky} (rows) and {kx} (columns); "
               f"'no run' marks pairs without a finished run.{note}")
    return ReportFigure("heatmap", "heatmap", f"Mean test accuracy over {ky} and {kx}", caption, _png(fig), data)


def _figure_cost(work, axes, swept, mode, colour, notes) -> ReportFigure | None:
    metrics = [(m, title, unit) for m, title, unit in (("pulses", "programming pulses", "pulses"),
                                                       ("energy_J", "programming energy", "J"))
               if m in work.columns]
    if not metrics:
        notes.append("pulses and energy: skipped, the table has no pulses or energy_J column.")
        return None
    parts = [_stats(work, ["method"], m).rename(columns={"mean": f"{m}_mean", "std": f"{m}_std", "n": "n"})
             for m, _, _ in metrics]
    data = parts[0]
    for p in parts[1:]:
        data = data.merge(p.drop(columns=["n"]), on="method")
    order = list(dict.fromkeys(work["method"]))
    data = data.set_index("method").loc[order].reset_index()
    plt = _pyplot()
    fig, axs = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics) + 0.6, 3.8), squeeze=False)
    for ax, (m, title, unit) in zip(axs[0], metrics):
        means = data[f"{m}_mean"].to_numpy(dtype=float)
        pos = means[np.isfinite(means) & (means > 0)]
        x = np.arange(len(order))
        heights = np.where(np.isfinite(means) & (means > 0), means, np.nan)
        ax.bar(x, np.nan_to_num(heights, nan=0.0), color=[colour.get(o) for o in order])
        if pos.size:
            ax.set_yscale("log")  # whole decades, at least two: no cluttered minor labels
            bottom = 10.0 ** math.floor(math.log10(pos.min()) - 0.3)
            ax.set_ylim(bottom, 10.0 ** max(math.ceil(math.log10(pos.max()) + 0.3), math.log10(bottom) + 2))
        else:
            bottom = 0.0
        for xi, v in zip(x, means):
            ax.text(xi, (v if np.isfinite(v) and v > 0 else (bottom if bottom > 0 else 0.0)),
                    "n/a" if not np.isfinite(v) else f"{v:.3g}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x)
        ax.set_xticklabels(order, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(unit + (", log scale" if pos.size else ""))
        ax.set_title(title + " per method (mean over runs)", fontsize=10)
    fig.tight_layout()
    caption = ("Mean over every finished run of each method (all swept points and seeds); log scale. Float "
               "methods program no devices and show 0.")
    return ReportFigure("cost", "cost", "Pulses and energy per method", caption, _png(fig), data)


def _representative_runs(work, axes, swept, notes) -> dict[str, pd.Series]:
    """Per method, the finished run at the baseline point with the smallest seed (fallback: its first run)."""
    out: dict[str, pd.Series] = {}
    mask = np.ones(len(work), dtype=bool)
    for k in swept:
        if k not in _METHOD_KEYS:
            mask &= (work[_code(k)] == axes[k].baseline).to_numpy()
    sort_by = ["seed"] if "seed" in work.columns else []
    for method, g in work.groupby("method", sort=False):
        at_base = g[mask[work.index.get_indexer(g.index)]]
        pick = at_base if len(at_base) else g
        if not len(at_base):
            notes.append(f"{method}: no finished run at the baseline point; its first finished run stands in.")
        pick = pick.sort_values(sort_by, kind="stable") if sort_by else pick
        out[method] = pick.iloc[0]
    return out


def _layer_number(path: Path) -> tuple[int, str]:
    m = re.search(r"(\d+)", path.stem)
    return (int(m.group(1)) if m else 0, path.name)


def _conductance_unit(values: list[np.ndarray]) -> tuple[str, float]:
    """("nS", 1e9) when every conductance is below 1 uS, else ("uS", 1e6)."""
    top = max(float(v.max()) for v in values if v.size)
    return ("nS", 1e9) if top < 1e-6 else ("uS", 1e6)


def _histogram_png(pooled: dict[str, tuple[np.ndarray, np.ndarray | None]], colour: dict[str, str]) -> tuple[bytes, str]:
    """G+ and (where any method has it) G- histograms, one step line per method; PNG and the unit."""
    unit, factor = _conductance_unit([g for pair in pooled.values() for g in pair if g is not None])
    panels = [("G+", 0)] + ([("G-", 1)] if any(gm is not None for _, gm in pooled.values()) else [])
    plt = _pyplot()
    fig, axs = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 0.6, 3.6), squeeze=False)
    for ax, (name, i) in zip(axs[0], panels):
        for method, pair in pooled.items():
            g = pair[i]
            if g is not None:
                ax.hist(g * factor, bins=60, histtype="step", lw=1.4, color=colour.get(method), label=method)
        ax.set_xlabel(f"{name} ({unit})")
        ax.set_yscale("log")
        ax.set_title(f"{name} of the representative runs", fontsize=10)
        ax.legend(fontsize=8)
    axs[0][0].set_ylabel("devices")
    fig.tight_layout()
    return _png(fig), unit


def _figures_conductance(directory: Path, representative: dict[str, pd.Series], colour, notes) -> list[ReportFigure]:
    from ..crossbar.maps import export_maps, load_maps

    pooled: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    rows, first_map = [], None
    for method, run in representative.items():
        maps_dir = directory / "runs" / str(run["run_id"]) / "maps"
        files = sorted(maps_dir.glob("*.npz"), key=_layer_number) if maps_dir.is_dir() else []
        if not files:
            continue
        try:
            sets = [load_maps(f) for f in files]
        except (ValueError, OSError) as exc:
            notes.append(f"{method}: the conductance maps of run {run['run_id']} are unreadable ({exc}).")
            continue
        gp = np.concatenate([s.full("g_plus").astype(np.float64).ravel() for s in sets])
        has_minus = all(s.tiles[0].g_minus is not None for s in sets)
        gm = np.concatenate([s.full("g_minus").astype(np.float64).ravel() for s in sets]) if has_minus else None
        pooled[method] = (gp, gm)
        rows.append({"method": method, "run_id": run["run_id"], "layers": len(sets), "devices": gp.size,
                     "g_plus_mean_S": gp.mean(), "g_plus_std_S": gp.std(),
                     "g_minus_mean_S": np.nan if gm is None else gm.mean(),
                     "g_minus_std_S": np.nan if gm is None else gm.std()})
        if first_map is None:
            first_map = (method, run["run_id"], files[0], sets[0])
    if not pooled:
        notes.append("conductances: skipped, no representative run has conductance maps (float methods have none).")
        return []
    png, unit = _histogram_png(pooled, colour)
    single = [m for m, (_, gm) in pooled.items() if gm is None]
    caption = (f"Histograms of G+ and G- ({unit}, log count) pooled over every layer of each in-situ method's "
               "representative run (first seed of the baseline point): "
               + "; ".join(f"{r['method']}: {r['run_id']}" for r in rows) + "."
               + (f" {', '.join(single)}: one device per weight against a reference column, no G-." if single else ""))
    figures = [ReportFigure("conductance_histograms", "conductance_hist", "Conductance histograms", caption, png,
                            pd.DataFrame(rows))]
    assert first_map is not None  # set together with the first entry of pooled
    method, run_id, path, maps = first_map
    shape, layer = maps.shape, path.stem.removesuffix("_maps")
    gm = maps.full("g_minus") if maps.tiles[0].g_minus is not None else None
    with tempfile.TemporaryDirectory(prefix="memsnn-report-") as tmp:
        (image,) = export_maps(tmp, g_plus=maps.full("g_plus"), g_minus=gm, weight=maps.full("weight"),
                               tile_size=shape, formats=("png",), name="map")
        png = Path(image).read_bytes()
    caption = (f"Conductance map of {layer} ({shape[0]} inputs x {shape[1]} outputs, the whole layer as one image) "
               f"of run {run_id} ({method}): G+{', G-' if gm is not None else ''} (uS) and the effective weight.")
    data = pd.DataFrame([{"method": method, "run_id": run_id, "file": path.name, "rows": shape[0], "cols": shape[1]}])
    figures.append(ReportFigure("conductance_map", "conductance_map", f"Conductance map: {method}, {layer}", caption,
                                png, data))
    return figures


def _figure_learning_curves(directory, representative, colour, notes) -> ReportFigure | None:
    frames = []
    for method, run in representative.items():
        p = directory / "runs" / str(run["run_id"]) / "history.csv"
        if not p.is_file():
            continue
        try:
            h = pd.read_csv(p)
        except Exception as exc:  # noqa: BLE001 - one bad file costs one curve, reported
            notes.append(f"{method}: {p} is unreadable ({exc}).")
            continue
        if not {"epoch", "test_acc"} <= set(h.columns):
            notes.append(f"{method}: {p} lacks the epoch / test_acc columns.")
            continue
        frames.append(h[["epoch", "test_acc"]].assign(method=method, run_id=run["run_id"]))
    if not frames:
        notes.append("learning curves: skipped, no representative run has a history.csv.")
        return None
    data = pd.concat(frames, ignore_index=True)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for method, g in data.groupby("method", sort=False):
        ax.plot(g.epoch, 100 * g.test_acc, marker="o", ms=3, color=colour.get(method), label=method)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("learning curves of the representative runs", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    caption = "Test accuracy after each epoch of each method's representative run (first seed of the baseline point)."
    return ReportFigure("learning_curves", "learning_curves", "Learning curves", caption, _png(fig), data)


# --------------------------------------------------------------------------- tables


def _summary_metrics(table: pd.DataFrame) -> list[str]:
    times = [c for _, c in _time_columns(table)]
    jitter = [c for _, c in sorted((_sort_number(m.group(1)), m.group(0))
                                   for m in (_JITTER_COLUMN.match(str(c)) for c in table.columns) if m)]
    cols = ["test_acc"] + times + jitter + [c for c in _COST_METRICS if c in table.columns]
    return [c for c in cols if pd.to_numeric(table[c], errors="coerce").notna().any()]


def _sort_number(text: str) -> tuple[float, str]:
    v = _try_float(text)
    return (v, "") if isinstance(v, float) else (math.inf, text)


def _is_accuracy(metric: str) -> bool:
    return metric == "test_acc" or bool(_TIME_COLUMN.match(metric) or _JITTER_COLUMN.match(metric))


def _pm(mean: float, std: float, accuracy: bool) -> str:
    if not np.isfinite(mean):
        return ""
    if accuracy:
        return f"{100 * mean:.1f}" + ("" if not np.isfinite(std) else f" ± {100 * std:.1f}")
    return f"{mean:.3g}" + ("" if not np.isfinite(std) else f" ± {std:.2g}")


def _summary_table(table, done, axes, swept) -> pd.DataFrame:
    """One row per swept point (axis order): key values, method, runs done / failed, metric mean +- std.

    The numbers are :func:`memsnn.experiments.results.summarize` of the runs grouped by the swept
    keys' levels, with every run that did not finish counted as failed.
    """
    from .results import summarize

    metrics = _summary_metrics(table[done])
    by = [_code(k) for k in swept]
    frame = table[[_METHOD, *metrics]].apply(lambda c: c if c.name == _METHOD else pd.to_numeric(c, errors="coerce"))
    frame = frame.assign(status=np.where(done, "done", "failed"), **{_code(k): axes[k].codes for k in swept})
    stats = summarize(frame.drop(columns=[_METHOD]), by=by)
    methods: dict[tuple[int, ...], str] = {}
    for key, g in (frame.groupby(by, sort=False) if by else [((), frame)]):
        methods[tuple(int(c) for c in (key if isinstance(key, tuple) else (key,)))] = ", ".join(dict.fromkeys(g[_METHOD]))
    rows = []
    for _, r in stats.iterrows():
        key = tuple(int(r[c]) for c in by)
        row: dict[str, Any] = {k: axes[k].labels[c] for k, c in zip(swept, key)}
        row["method"] = methods[key]
        row["runs done"], row["failed"] = int(r["n"]), int(r["n_failed"])
        for m in metrics:
            head = f"{m} (%)" if _is_accuracy(m) else m
            row[head] = _pm(r[f"{m}_mean"], r[f"{m}_std"], _is_accuracy(m))
        rows.append(row)
    return pd.DataFrame(rows)


def _first_line(text: Any) -> str:
    s = str(text).strip()
    lines = [ln for ln in s.splitlines() if ln.strip()]
    s = lines[-1].strip() if len(lines) > 1 and lines[0].startswith("Traceback") else (lines[0] if lines else "")
    return s if len(s) <= _MAX_ERROR_CHARS else s[: _MAX_ERROR_CHARS - 3] + "..."


def _failure_table(table, done, axes, swept) -> pd.DataFrame:
    failed = table[~done]
    columns = ["run_id", "method", *swept, "seed", "status", "error"]
    rows = []
    for idx, r in failed.iterrows():
        row = {"run_id": r["run_id"], "method": r[_METHOD]}
        row.update({k: axes[k].labels[int(axes[k].codes[idx])] for k in swept})
        row["seed"] = _label(r["seed"]) if "seed" in table.columns else ""
        row["status"] = _label(r["status"]) if "status" in table.columns else "no test_acc"
        err = r["error"] if "error" in table.columns else None
        row["error"] = "" if err is None or (isinstance(err, float) and math.isnan(err)) else _first_line(err)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- rendering


def _header_facts(report: SweepReport) -> list[tuple[str, str]]:
    runs = report.runs
    n_failed = len(report.failures)
    facts = [("directory", str(report.directory.resolve())), ("mode", report.mode),
             ("runs", f"{len(runs)} ({len(runs) - n_failed} done, {n_failed} failed)")]
    seeds = report.spec.get("seeds")
    if isinstance(seeds, list):
        facts.append(("seeds", ", ".join(map(str, seeds))))
    elif "seed" in runs.columns:
        facts.append(("seeds", ", ".join(map(_label, sorted(runs["seed"].dropna().unique())))))
    for col in ("dataset", "device"):
        if col in runs.columns and runs[col].notna().any():
            facts.append((col, ", ".join(map(_label, dict.fromkeys(runs[col].dropna())))))
    facts.append(("methods", ", ".join(dict.fromkeys(runs[_METHOD]))))
    facts.append(("generated", _dt.datetime.now().isoformat(timespec="seconds")))
    return facts


def _swept_table(report: SweepReport) -> pd.DataFrame:
    rows = [{"key": k, "unit": report.units.get(k, ""), "values": ", ".join(report.levels[k]),
             "baseline": report.baseline.get(k, "")} for k in report.swept]
    return pd.DataFrame(rows, columns=["key", "unit", "values", "baseline"])


#: report sections in order: heading, figure kinds shown under it
_SECTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("Accuracy against each swept parameter", ("accuracy_vs_param",)),
    ("Accuracy against time since programming", ("accuracy_vs_time",)),
    ("Heatmap of mean test accuracy", ("heatmap",)),
    ("Programming cost", ("cost",)),
    ("Conductances", ("conductance_hist", "conductance_map")),
    ("Learning curves", ("learning_curves",)),
]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f1f1f1; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #444; max-width: 800px; }
.note { color: #555; font-size: 0.9em; }
"""


def _html_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p class=\"note\">none</p>"
    return df.to_html(index=False, escape=True, na_rep="", border=0)


def _render_html(report: SweepReport) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
           f"<title>Sweep report: {e(report.directory.name)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>Sweep report: {e(report.directory.name)}</h1>", "<table>"]
    out += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _header_facts(report)]
    out += ["</table>", "<h2>Swept parameters</h2>", _html_table(_swept_table(report))]
    for title, kinds in _SECTIONS:
        figs = [f for f in report.figures if f.kind in kinds]
        if not figs:
            continue
        out.append(f"<h2>{e(title)}</h2>")
        for f in figs:
            uri = "data:image/png;base64," + base64.b64encode(f.png).decode("ascii")
            out.append(f"<figure id=\"fig-{e(f.name)}\"><img src=\"{uri}\" alt=\"{e(f.title)}\">"
                       f"<figcaption><b>{e(f.title)}.</b> {e(f.caption)}</figcaption></figure>")
            if f.kind == "heatmap":
                out.append(_html_table(_heatmap_text(f.data)))
    out += ["<h2>Summary: mean ± std over seeds per swept point</h2>",
            "<p class=\"note\">Accuracies in percent; std is the sample standard deviation over seeds.</p>",
            _html_table(report.summary), "<h2>Failed runs</h2>", _html_table(report.failures)]
    if report.notes:
        out += ["<h2>Notes</h2>", "<ul>"] + [f"<li>{e(n)}</li>" for n in report.notes] + ["</ul>"]
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _heatmap_text(data: pd.DataFrame) -> pd.DataFrame:
    """The heatmap's numbers as a table of percentages (rows: first key, columns: second key)."""
    shown = data.map(lambda v: "" if not np.isfinite(v) else f"{100 * v:.1f}")
    shown.columns = [f"{data.columns.name} = {c}" for c in data.columns]
    return shown.reset_index()


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_table(df: pd.DataFrame) -> str:
    from .exsitu import _markdown

    if df.empty:
        return "none\n"
    clean = df.map(_md_cell)
    clean.columns = [_md_cell(c) for c in df.columns]
    return _markdown(clean)


def _render_markdown(report: SweepReport, links: dict[str, str]) -> str:
    out = [f"# Sweep report: {report.directory.name}", ""]
    out += [f"- **{k}**: {_md_cell(v)}" for k, v in _header_facts(report)]
    out += ["", "## Swept parameters", "", _md_table(_swept_table(report))]
    for title, kinds in _SECTIONS:
        figs = [f for f in report.figures if f.kind in kinds]
        if not figs:
            continue
        out += [f"## {title}", ""]
        for f in figs:
            out += [f"![{_md_cell(f.title)}]({links[f.name]})", "", f"*{_md_cell(f.caption)}*", ""]
            if f.kind == "heatmap":
                out += [_md_table(_heatmap_text(f.data))]
    out += ["## Summary: mean ± std over seeds per swept point", "",
            "Accuracies in percent; std is the sample standard deviation over seeds.", "", _md_table(report.summary),
            "## Failed runs", "", _md_table(report.failures)]
    if report.notes:
        out += ["## Notes", ""] + [f"- {_md_cell(n)}" for n in report.notes] + [""]
    return "\n".join(out)
