"""The results table of a sweep: one row per run, rebuilt from the run directories.

A sweep directory (written by :func:`memsnn.experiments.sweep.run_sweep`) looks like::

    DIR/sweep.toml                 what was swept: base config, grid, mode, seeds
    DIR/runs/<run_id>/metrics.json the run's metrics, or {"status": "failed", "error", "traceback"}
    DIR/runs/<run_id>/sweep_point.json  run_id, seed, the swept values (as given and typed), wall time
    DIR/results.parquet, DIR/results.csv   the table :func:`collect` builds from the two above

The table is *derived data*: :func:`collect` rebuilds it from the run directories every time and
replaces the previous ``results.parquet`` / ``results.csv`` of the same sweep (atomically, so a
reader never sees half a file). The run directories are the record; nothing else is overwritten.

:func:`summarize` averages every numeric metric over seeds (mean, sample standard deviation with
``ddof=1``, and the number of finished runs ``n``), grouped by the swept keys, and
:func:`format_summary` prints that for ``memsnn results DIR``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ..files import atomic_path
from .sweep import METRICS_NAME, POINT_NAME, RUNS_DIR, read_spec

__all__ = ["RESULTS_PARQUET", "RESULTS_CSV", "collect", "summarize", "format_summary", "paired_gain"]

RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
#: columns every table starts with; a metric of the same name is renamed ``metric.<name>``
BASE_COLUMNS = ("run_id", "status", "error", "seed")
#: keys of metrics.json that describe the run rather than measure it
_NOT_METRICS = ("status", "error", "traceback")


def collect(out: str | os.PathLike, *, write: bool = True) -> pd.DataFrame:
    """One row per run directory of sweep ``out`` (finished and failed runs; unfinished ones are
    not in ``runs/`` yet).

    Columns: ``run_id``, ``status`` (``done`` / ``failed`` / ``unreadable``), ``error`` (the
    failure message, else missing), ``seed``, one column per swept dotted key holding the value of
    that run (typed as in the run's config: float, int, str, bool), then every metric of the run's
    metrics.json (nested objects flattened with dots, lists kept as JSON text; a metric named like
    one of the first columns is dropped when it repeats that column's value, else kept as
    ``metric.<name>``).

    With ``write`` the table is also written to ``out/results.parquet`` and ``out/results.csv``.
    It is derived data, rebuilt from the run directories each time, so it *replaces* the previous
    table of this sweep (atomically). ``df.attrs["swept_keys"]`` lists the swept keys (seed
    excluded) and ``df.attrs["sweep_dir"]`` the directory, for :func:`summarize`.
    """
    out = Path(out)
    spec = read_spec(out)
    keys = list(spec.get("grid", {}))
    runs = out / RUNS_DIR
    rows = []
    if runs.is_dir():
        for run_dir in sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")):
            rows.append(_row(run_dir, keys))
    metric_cols: list[str] = []
    for row in rows:
        metric_cols.extend(c for c in row if c not in metric_cols and c not in BASE_COLUMNS and c not in keys)
    df = pd.DataFrame(rows, columns=[*BASE_COLUMNS, *keys, *metric_cols])
    if len(df):
        try:
            df = df.sort_values([*keys, "seed", "run_id"], kind="stable", na_position="last")
        except TypeError:  # a swept key holding values of mixed types
            df = df.sort_values("run_id", kind="stable")
        df = df.reset_index(drop=True)
    df.attrs["swept_keys"] = keys
    df.attrs["sweep_dir"] = str(out)
    if write:
        safe = _parquet_safe(df)
        with atomic_path(out / RESULTS_PARQUET, overwrite=True) as tmp:
            safe.to_parquet(tmp, index=False)
        with atomic_path(out / RESULTS_CSV, overwrite=True) as tmp:
            df.to_csv(tmp, index=False)
    return df


def summarize(df: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and sample standard deviation (``ddof=1``; missing for a single run) over seeds of every
    numeric metric of the finished (``status == "done"``) runs, per group of ``by``.

    Args:
        df: a table from :func:`collect`.
        by: columns to group by; default ``df.attrs["swept_keys"]`` (every swept key, seed
            excluded). An empty list averages over all runs.

    Returns:
        One row per group: the ``by`` columns, ``n`` (finished runs in the group), ``n_failed``,
        then ``<metric>_mean`` and ``<metric>_std`` for each numeric metric (text and true/false
        columns are descriptions, not measurements, and are left out).
    """
    if by is None:
        if "swept_keys" not in df.attrs:
            raise ValueError("the table does not say which keys were swept (no df.attrs['swept_keys']); "
                             "pass by=[...] with the columns to group by")
        by = list(df.attrs["swept_keys"])
    elif isinstance(by, str):
        by = [by]
    else:
        by = list(by)
    missing = [b for b in by if b not in df.columns]
    if missing:
        raise ValueError(f"cannot group by {missing}: no such column(s); columns are {list(df.columns)}")
    if "seed" in by:
        raise ValueError("by must not contain 'seed': summarize averages over seeds")
    status = df["status"] if "status" in df.columns else pd.Series("done", index=df.index)
    skip = set(by) | set(BASE_COLUMNS)
    metrics = [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])]
    done = df.loc[status == "done", by + metrics].astype({m: float for m in metrics})

    if by:
        keys = df[by].drop_duplicates()
        try:
            keys = keys.sort_values(by, na_position="last")
        except TypeError:
            pass
        grouped_done = done.groupby(by, dropna=False, sort=False)
        agg = grouped_done[metrics].agg(["mean", "std"]) if metrics else None
        n = grouped_done.size().rename("n")
        n_failed = df[status == "failed"].groupby(by, dropna=False, sort=False).size().rename("n_failed")
        table = keys.set_index(by)
        table = table.join(n).join(n_failed)
        if agg is not None:
            agg.columns = [f"{m}_{stat}" for m, stat in agg.columns]
            table = table.join(agg)
        table = table.reset_index()
    else:
        row: dict[str, Any] = {"n": len(done), "n_failed": int((status == "failed").sum())}
        for m in metrics:
            row[f"{m}_mean"] = done[m].mean()
            row[f"{m}_std"] = done[m].std()
        table = pd.DataFrame([row])
    table["n"] = table["n"].fillna(0).astype(int)
    table["n_failed"] = table["n_failed"].fillna(0).astype(int)
    table.attrs["metrics"] = metrics
    table.attrs["by"] = by
    return table


def format_summary(df: pd.DataFrame, by: str | Sequence[str] | None = None) -> str:
    """Text for ``memsnn results DIR``: run counts, metrics that are the same in every finished run
    (said once), the :func:`summarize` table with each other metric as ``mean ± std`` (4
    significant digits), and the error of every failed run."""
    status = df["status"] if "status" in df.columns else pd.Series("done", index=df.index)
    counts = status.value_counts()
    where = df.attrs.get("sweep_dir", "sweep")
    head = f"{where}: {len(df)} runs (" + ", ".join(f"{int(c)} {s}" for s, c in counts.items()) + ")"
    if not len(df):
        return f"{where}: no finished runs yet"
    table = summarize(df, by)
    shown = table[[*table.attrs["by"], "n", "n_failed"]].copy()
    done = df[status == "done"] if (status == "done").any() else df
    constant = {}
    for m in table.attrs["metrics"]:
        values = done[m].dropna().unique() if m in done.columns else []
        if len(values) == 1 and len(done) > 1:  # bookkeeping such as epochs or n_train: said once
            constant[m] = values[0]
            continue
        shown[m] = [_mean_std(mu, sd) for mu, sd in zip(table[f"{m}_mean"], table[f"{m}_std"])]
    with pd.option_context("display.width", 250, "display.max_columns", 60, "display.max_colwidth", 40):
        text = [head]
        if constant:
            text.append("same in every finished run: " + ", ".join(f"{k} = {v:.4g}" if isinstance(v, float)
                                                                  else f"{k} = {v}" for k, v in constant.items()))
        text += ["mean ± std over seeds (std with ddof=1):", shown.to_string(index=False)]
    failed = df[status == "failed"]
    if len(failed):
        text.append("failed runs:")
        for rid, err in zip(failed["run_id"], failed["error"]):
            first = str(err).strip().splitlines()[0] if isinstance(err, str) and err.strip() else "?"
            text.append(f"  {rid}: {first[:160]}")
    return "\n".join(text)


# -- helpers --------------------------------------------------------------------------------------
def paired_gain(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """Mean and 95 % t-interval half-width of ``a - b`` paired on the index (the seed); NaN
    half-width with one pair, ``(nan, nan)`` with none."""
    from scipy import stats

    d = (a - b).dropna()
    if len(d) == 0:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
    return float(d.mean()), half


def _mean_std(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {std:.2g}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, name + ".")
        elif isinstance(value, (list, tuple)):
            yield name, json.dumps(value)
        else:
            yield name, value


def _row(run_dir: Path, keys: list[str]) -> dict[str, Any]:
    point = _read_json(run_dir / POINT_NAME)
    point = point if isinstance(point, dict) else {}
    metrics = _read_json(run_dir / METRICS_NAME)
    row: dict[str, Any] = {"run_id": point.get("run_id", run_dir.name), "seed": point.get("seed")}
    if isinstance(metrics, dict):
        row["status"] = str(metrics.get("status", "done"))
        row["error"] = metrics.get("error")
    else:
        row["status"] = "unreadable"
        row["error"] = f"{run_dir / METRICS_NAME} is missing or not a JSON object"
        metrics = {}
    values = point.get("values", {})
    for key in keys:
        row[key] = values.get(key)
    for name, value in _flatten({k: v for k, v in metrics.items() if k not in _NOT_METRICS}):
        if name in BASE_COLUMNS or name in keys:
            if row.get(name) == value:  # e.g. the runner's own "seed": the same fact once
                continue
            name = f"metric.{name}"
        row[name] = value
    return row


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose object columns holding values of several types are text (parquet needs one
    type per column); missing values stay missing."""
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype != object:
            continue
        kinds = {type(v) for v in safe[col] if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if len(kinds) > 1:
            safe[col] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in safe[col]]
    return safe
