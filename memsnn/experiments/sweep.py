"""Resumable parameter sweeps on local processes or a Dask cluster.

A sweep runs one experiment per point of a grid of config overrides and per seed::

    from memsnn.experiments.config import load_config
    from memsnn.experiments.sweep import parse_grid, run_sweep

    grid = parse_grid(["device.read_noise_std=0.0,0.02,0.05", "rule.name=stdp,sg"])
    summary = run_sweep(load_config("base.toml"), grid, "runs/noise-sweep", seeds=(0, 1, 2))
    print(summary)                      # 18 runs: 18 done, 0 skipped, 0 failed ... in 95.2 s

Directory layout (``out``)::

    sweep.toml              base config, grid, mode and seeds; a restart with a different
                            spec into the same directory is refused
    runs/<run_id>/          one finished run: what the runner wrote (config.toml, metrics.json,
                            history.csv, plots, maps/ ...) plus sweep_point.json
    runs/.tmp-<run_id>-<pid>-<random>/   a run in progress
    results.parquet, results.csv         the table of :func:`memsnn.experiments.results.collect`

Guarantees:

- Every point's config is built and validated before any run starts; all problems are reported
  together in one :class:`SweepError`.
- A run writes into its own ``.tmp-`` directory, which is renamed to ``runs/<run_id>`` only when
  the run has finished (``rename`` is atomic on POSIX), so a killed sweep (even SIGKILL) never
  leaves a half run that looks finished. A restart removes the stale ``.tmp-`` directories, skips
  every finished run and runs the rest: nothing finished is lost or run twice.
- A run that raises is recorded as failed: its directory holds ``metrics.json`` with
  ``status = "failed"``, the error and the traceback. The sweep goes on; a restart retries failed
  runs only with ``retry_failed=True``.
- One sweep process at a time per directory (a lock file, released by the OS even on SIGKILL).

Executors: ``"local"`` runs on a :class:`concurrent.futures.ProcessPoolExecutor` (forkserver
context where available, else spawn; ``workers`` defaults to the usable CPUs); ``"dask"`` runs on
a Dask cluster, an existing one at ``scheduler`` (its address, e.g. ``tcp://10.0.0.5:8786``) or
else a fresh ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)``. Each run
is recorded as soon as it finishes (``as_completed``). Every worker uses one torch thread. With a
remote cluster ``out`` must lie on a file system the workers share; see ``CLUSTER.md``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import os
import pickle
import re
import shutil
import socket
import sys
import tempfile
import time
import tomllib
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import tomli_w

from ..files import atomic_path

__all__ = [
    "SweepError", "SweepPoint", "SweepSummary", "parse_grid", "expand", "make_run_id", "sweep_spec",
    "run_sweep", "read_spec", "run_status", "MODES", "EXECUTORS",
]

MODES = ("product", "zip")
EXECUTORS = ("local", "dask")
#: version of the sweep.toml layout
SPEC_FORMAT = 1
_LOCK_NAME = ".sweep.lock"
#: file names of the sweep layout (see the module docstring)
SPEC_NAME = "sweep.toml"
RUNS_DIR = "runs"
METRICS_NAME = "metrics.json"
POINT_NAME = "sweep_point.json"
#: prefix of the directories runs are written into before they are finished
TMP_PREFIX = ".tmp-"
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_SLUG_BAD = re.compile(r"[^A-Za-z0-9._=+-]+")
_SLUG_MAX = 150  # characters of readable slug in a run_id (file names stop at 255)


class SweepError(ValueError):
    """A sweep that cannot start: a bad grid, invalid configs, or a directory holding another sweep.
    ``.errors`` lists every problem."""

    def __init__(self, errors: str | Sequence[str], head: str = "cannot run the sweep"):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        body = "\n  - ".join(e.replace("\n", "\n    ") for e in self.errors)
        super().__init__(f"{head}:\n  - {body}")


@dataclasses.dataclass(frozen=True, eq=False)
class SweepPoint:
    """One run of a sweep.

    Attributes:
        run_id: directory name under ``runs/``: a readable slug of the overrides and seed plus a
            short hash of them (unique, stable across processes and machines, filesystem-safe).
        overrides: swept dotted key -> value as given (text), seed excluded.
        seed: the run's seed.
        values: swept dotted key -> the value as typed in the run's config.
        config: the validated config of this run (base config with overrides and seed).
    """

    run_id: str
    overrides: dict[str, str]
    seed: int
    values: dict[str, Any]
    config: Any


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    """What one call of :func:`run_sweep` did.

    Attributes:
        out: the sweep directory.
        total: runs in the sweep.
        done: runs that finished in this call.
        skipped: runs not run because they had finished before (failed ones included unless
            ``retry_failed``).
        failed: runs that raised in this call (recorded; see ``failures``).
        lost: runs whose worker process died; they are run again on the next restart.
        wall_s: wall time of this call, seconds.
        results_path: the results table (``out/results.parquet``).
        failures: ``(run_id, error message)`` of each run that failed in this call.
    """

    out: Path
    total: int
    done: int
    skipped: int
    failed: int
    lost: int
    wall_s: float
    results_path: Path
    failures: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        lost = f", {self.lost} lost (rerun on restart)" if self.lost else ""
        return (f"{self.total} runs: {self.done} done, {self.skipped} skipped (finished before), "
                f"{self.failed} failed{lost} in {self.wall_s:.1f} s; results: {self.results_path}")


# -- grid -----------------------------------------------------------------------------------------
def parse_grid(items: Iterable[str]) -> dict[str, list[str]]:
    """Parse ``["key=v1,v2", ...]`` (command-line style) into ``{key: [v1, v2]}``, values as text.

    Keys are dotted config names (``device.read_noise_std``). Commas inside brackets belong to
    the value: ``network.hidden=[64],[32,8]`` sweeps two lists. Every problem (missing ``=``, bad
    key, empty value, duplicate key or value) is reported together in one :class:`SweepError`.
    """
    if isinstance(items, (str, bytes)):
        raise SweepError(f"grid must be a list of 'key=v1,v2' strings, got the single string {items!r}",
                         "invalid sweep grid")
    grid: dict[str, list[str]] = {}
    errors: list[str] = []
    for item in items:
        if not isinstance(item, str):
            errors.append(f"{item!r} is not a string; each grid entry looks like 'key=v1,v2'")
            continue
        if "=" not in item:
            errors.append(f"{item!r} has no '=': each grid entry looks like 'key=v1,v2'")
            continue
        key, text = (s.strip() for s in item.split("=", 1))
        errors.extend(_key_errors(key))
        try:
            values = _split_values(text)
        except ValueError as exc:
            errors.append(f"{item!r}: {exc}")
            continue
        if key in grid:
            errors.append(f"key {key!r} is given twice; put all its values in one entry: '{key}=a,b'")
            continue
        errors.extend(_value_errors(key, values))
        grid[key] = values
    if errors:
        raise SweepError(errors, "invalid sweep grid")
    return grid


def _split_values(text: str) -> list[str]:
    """Split ``text`` on the commas outside brackets: ``"[64],[32,8]"`` -> ``["[64]", "[32,8]"]``."""
    values, depth, current = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth < 0:
            raise ValueError("has a ']' without its '['")
        current.append(ch)
    if depth:
        raise ValueError("has a '[' without its ']'")
    values.append("".join(current).strip())
    return values


def _key_errors(key: str) -> list[str]:
    if not key:
        return ["an entry has an empty key before '='"]
    if not _KEY_RE.fullmatch(key):
        return [f"key {key!r} is not a dotted name like 'device.read_noise_std'"]
    if key == "seed":
        return ["'seed' cannot be a grid key: pass the seeds with seeds=(...) (--seeds)"]
    return []


def _value_errors(key: str, values: Sequence[str], unique: bool = True) -> list[str]:
    errors = []
    if not values or all(v == "" for v in values):
        return [f"{key!r} has no values"]
    empty = [i for i, v in enumerate(values) if v == ""]
    if empty:
        errors.append(f"{key!r} has an empty value at position(s) {empty} of {list(values)}")
    dup = sorted({v for v in values if values.count(v) > 1 and v != ""})
    if dup and unique:
        errors.append(f"{key!r} lists {dup} more than once")
    return errors


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(f"grid value {value!r} has type {type(value).__name__}: use str, int, float or bool")


def _normalize_grid(grid: Mapping[str, Sequence[Any]] | Sequence[str] | None,
                    mode: str = "product") -> dict[str, list[str]]:
    """A grid given as parse_grid strings or as a mapping, checked, values as text. In zip mode a
    key may repeat a value (points differ in other keys; equal points are refused by run id)."""
    if grid is None:
        return {}
    if not isinstance(grid, Mapping):
        return parse_grid(grid)
    out: dict[str, list[str]] = {}
    errors: list[str] = []
    for key, values in grid.items():
        key_errs = _key_errors(key) if isinstance(key, str) else [f"key {key!r} is not a string"]
        if key_errs:
            errors.extend(key_errs)
            continue
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            errors.append(f"{key!r}: values must be a list, got {values!r}")
            continue
        try:
            texts = [_as_text(v) for v in values]
        except TypeError as exc:
            errors.append(f"{key!r}: {exc}")
            continue
        errors.extend(_value_errors(key, texts, unique=mode != "zip"))
        out[key] = texts
    if errors:
        raise SweepError(errors, "invalid sweep grid")
    return out


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise SweepError(f"seeds={seeds!r} must be a list of integers >= 0, e.g. (0, 1, 2)")
    seeds = list(seeds)
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad or not seeds:
        raise SweepError(f"seeds={seeds!r} must be a non-empty list of integers >= 0; bad: {bad}")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"seeds={seeds!r} lists a seed more than once")
    return seeds


def _combos(grid: Mapping[str, list[str]], mode: str) -> list[dict[str, str]]:
    keys = list(grid)
    if mode == "product":
        return [dict(zip(keys, vals)) for vals in itertools.product(*grid.values())]
    lengths = {k: len(v) for k, v in grid.items()}
    if len(set(lengths.values())) > 1:
        raise SweepError(f"zip mode needs the same number of values for every key; got "
                         + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
    n = next(iter(lengths.values()), 1)
    return [{k: grid[k][i] for k in keys} for i in range(n)]


def make_run_id(overrides: Mapping[str, str], seed: int) -> str:
    """Directory name of a run: ``key=value__key=value__seed=S__<hash8>``.

    Keys are sorted; characters other than letters, digits and ``._=+-`` become ``-``; the slug
    is cut at 150 characters; the hash (SHA-1 of the exact overrides and seed) keeps ids unique
    when two values slug alike. Depends only on its arguments, not on the process or machine.
    """
    items = sorted((str(k), str(v)) for k, v in overrides.items())
    canon = json.dumps({"overrides": items, "seed": int(seed)}, separators=(",", ":"))
    digest = hashlib.sha1(canon.encode()).hexdigest()[:8]
    slug = "__".join([*(f"{k}={v}" for k, v in items), f"seed={int(seed)}"])
    slug = _SLUG_BAD.sub("-", slug)[:_SLUG_MAX]
    return f"{slug}__{digest}"


def _literal(text: str) -> Any:
    """A grid value as Python: int, float, bool, None or the text itself."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _typed_values(cfg: Any, overrides: Mapping[str, str]) -> dict[str, Any]:
    """The swept values as the run's config holds them (from its TOML): scalars typed, lists
    as the text given, values absent from the TOML (None) parsed from the text."""
    try:
        tree = tomllib.loads(cfg.to_toml())
    except Exception:  # a config without TOML support still sweeps; values are parsed instead
        tree = {}
    values = {}
    for key, text in overrides.items():
        node: Any = tree
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if isinstance(node, (int, float, str, bool)):
            values[key] = node
        else:  # absent (None) -> parsed; a list or table -> the text as given, which groups
            values[key] = _literal(text) if node is _MISSING else text
    return values


_MISSING = object()


def _override(cfg: Any, overrides: Mapping[str, Any]) -> tuple[Any, str | None]:
    try:
        return cfg.with_overrides(dict(overrides)), None
    except (ValueError, KeyError, TypeError) as exc:
        return None, str(exc).strip() or type(exc).__name__


def expand(base_cfg: Any, grid: Mapping[str, Sequence[Any]] | Sequence[str] | None, *,
           mode: str = "product", seeds: Sequence[int] = (0, 1, 2)) -> list[SweepPoint]:
    """Every run of a sweep, each with its validated config.

    Args:
        base_cfg: the base config (an ``ExperimentConfig``; anything with ``with_overrides(dict)``
            and ``to_toml()``).
        grid: ``{dotted key: [values]}`` (text or numbers) or ``parse_grid`` strings.
        mode: ``"product"`` (every combination) or ``"zip"`` (i-th value of every key together;
            all keys need the same number of values).
        seeds: the seeds every combination runs with (innermost loop).

    Returns:
        The points in run order. Every value is first checked on its own, then every combination
        with every seed; all problems are raised together in one :class:`SweepError` before any
        run starts.
    """
    if mode not in MODES:
        raise SweepError(f"mode={mode!r} is not allowed: must be one of {', '.join(map(repr, MODES))}")
    if not callable(getattr(base_cfg, "with_overrides", None)):
        raise TypeError(f"base_cfg must be an experiment config with with_overrides(), got {type(base_cfg).__name__}")
    grid = _normalize_grid(grid, mode)
    seeds = _check_seeds(seeds)
    combos = _combos(grid, mode)

    errors: list[str] = []
    for key, values in grid.items():  # each value on its own: one message per bad value
        for value in values:
            _, err = _override(base_cfg, {key: value})
            if err:
                errors.append(f"{key}={value}: {err}")
    for seed in seeds:
        _, err = _override(base_cfg, {"seed": seed})
        if err:
            errors.append(f"seed={seed}: {err}")
    if errors:
        raise SweepError(errors, "invalid sweep values")

    points: list[SweepPoint] = []
    seen_errors: set[tuple[str, str]] = set()
    for combo in combos:  # then the combinations (rules linking several fields)
        for seed in seeds:
            cfg, err = _override(base_cfg, {**combo, "seed": seed})
            if err:
                where = ", ".join(f"{k}={v}" for k, v in combo.items()) or "base config"
                if (where, err) not in seen_errors:
                    seen_errors.add((where, err))
                    errors.append(f"{where} (seed {seed}): {err}")
                continue
            points.append(SweepPoint(make_run_id(combo, seed), dict(combo), seed, _typed_values(cfg, combo), cfg))
    if errors:
        raise SweepError(errors, "invalid sweep configs")
    ids = [p.run_id for p in points]
    if len(set(ids)) != len(ids):  # cannot happen with distinct values; a guard, not a feature
        raise SweepError(f"run ids collide: {sorted({i for i in ids if ids.count(i) > 1})}")
    return points


# -- spec ----------------------------------------------------------------------------------------
def read_spec(out: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``sweep.toml`` of sweep directory ``out`` (keys ``format``, ``mode``, ``seeds``,
    ``grid``, ``base``); a clear error when ``out`` is not a sweep directory."""
    path = Path(out) / SPEC_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{out} is not a sweep directory: {path} does not exist")
    with open(path, "rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path} is not valid TOML: {exc}") from None


def run_status(run_dir: str | os.PathLike) -> str:
    """Status of a finished run directory: ``"done"``, ``"failed"``, or ``"unreadable"`` when its
    metrics.json is missing or not a JSON object (which the sweep never leaves behind)."""
    try:
        metrics = json.loads((Path(run_dir) / METRICS_NAME).read_text())
    except (OSError, ValueError):
        return "unreadable"
    return str(metrics.get("status", "done")) if isinstance(metrics, dict) else "unreadable"


def sweep_spec(base_cfg: Any, grid: Mapping[str, Sequence[Any]] | Sequence[str] | None, *,
               mode: str = "product", seeds: Sequence[int] = (0, 1, 2)) -> dict[str, Any]:
    """What ``sweep.toml`` holds: ``{"format", "mode", "seeds", "grid", "base"}`` (base config as
    parsed TOML). Two sweeps with equal specs run the same runs; seeds compare as a set."""
    return {
        "format": SPEC_FORMAT,
        "mode": mode,
        "seeds": sorted(_check_seeds(seeds)),
        "grid": _normalize_grid(grid, mode),
        "base": tomllib.loads(base_cfg.to_toml()),
    }


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _spec_differences(stored: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    diffs = []
    for field in ("format", "mode", "seeds"):
        if stored.get(field) != new.get(field):
            diffs.append(f"{field}: stored {stored.get(field)!r}, now {new.get(field)!r}")
    if dict(stored.get("grid", {})) != dict(new.get("grid", {})):
        diffs.append(f"grid: stored {dict(stored.get('grid', {}))}, now {dict(new.get('grid', {}))}")
    old_base, new_base = _flat(stored.get("base", {})), _flat(new.get("base", {}))
    for key in sorted(set(old_base) | set(new_base)):
        if old_base.get(key, _MISSING) != new_base.get(key, _MISSING):
            show = lambda v: "(absent)" if v is _MISSING else repr(v)  # noqa: E731
            diffs.append(f"base config {key}: stored {show(old_base.get(key, _MISSING))}, "
                         f"now {show(new_base.get(key, _MISSING))}")
    return diffs


# -- the run of one point (module level: pickled by reference into worker processes) -------------
@dataclasses.dataclass(frozen=True)
class _Task:
    run_id: str
    config: Any
    overrides: dict[str, str]
    values: dict[str, Any]
    seed: int
    runs_dir: str
    runner: Callable[..., Any]
    retry_failed: bool


def _limit_threads() -> None:
    """One compute thread per worker process (set before torch is imported where possible)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def _run_point(task: _Task) -> dict[str, Any]:
    """Run one point in a fresh ``.tmp-`` directory and publish it under ``runs/<run_id>``.

    Returns ``{"run_id", "status", "error", "wall_s"}``; status is ``done``, ``failed`` or
    ``duplicate`` (another process published the same run first; this copy is discarded).
    """
    _limit_threads()
    runs = Path(task.runs_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{task.run_id}-{os.getpid()}-", dir=runs))
    started = time.time()
    t0 = time.perf_counter()
    status, error = "done", None
    try:
        metrics = task.runner(task.config, tmp, progress=False)
        if not (tmp / METRICS_NAME).exists():
            _write_json(tmp / METRICS_NAME, dict(metrics) if isinstance(metrics, Mapping) else {})
    except Exception as exc:  # recorded as a failed run; the sweep goes on
        status = "failed"
        error = f"{type(exc).__name__}: {exc}"
        _write_json(tmp / METRICS_NAME, {"status": "failed", "error": error, "traceback": traceback.format_exc()})
    wall = time.perf_counter() - t0
    _write_json(tmp / POINT_NAME, {
        "run_id": task.run_id, "seed": task.seed, "overrides": task.overrides, "values": task.values,
        "status": status, "wall_s": wall, "started": started, "host": socket.gethostname(), "pid": os.getpid(),
    })
    if not _publish(tmp, runs / task.run_id, task.retry_failed):
        status = "duplicate"
    return {"run_id": task.run_id, "status": status, "error": error, "wall_s": wall}


def _publish(tmp: Path, final: Path, retry_failed: bool) -> bool:
    """Rename the finished ``tmp`` onto ``final``; False (and ``tmp`` removed) when a finished
    run is already there. A failed record is replaced when ``retry_failed``."""
    if final.exists():
        if not retry_failed or run_status(final) == "done":
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        # move the old failure aside under a stale-tmp name (removed on restart if we die here)
        old = tmp.with_name(tmp.name + "-replaced")
        try:
            os.rename(final, old)
        except FileNotFoundError:
            pass
        else:
            try:
                os.rename(tmp, final)
            finally:
                shutil.rmtree(old, ignore_errors=True)
            return True
    try:
        os.rename(tmp, final)  # fails if final appeared meanwhile (it is never an empty directory)
    except OSError:
        if final.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        raise
    return True


# -- executors ------------------------------------------------------------------------------------
def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _mp_context() -> multiprocessing.context.BaseContext:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _execute_local(tasks: list[_Task], workers: int) -> Iterator[tuple[_Task, Any]]:
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=_mp_context(),
                                                  initializer=_limit_threads)
    try:
        futures = {pool.submit(_run_point, t): t for t in tasks}
        for fut in concurrent.futures.as_completed(futures):
            try:
                yield futures[fut], fut.result()
            except Exception as exc:  # the worker process died (BrokenProcessPool) or pickling failed
                yield futures[fut], exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _execute_dask(tasks: list[_Task], workers: int, scheduler: str | None) -> Iterator[tuple[_Task, Any]]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is not None:
        try:
            client = Client(scheduler)  # timeout: dask config distributed.comm.timeouts.connect
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"could not connect to the Dask scheduler at {scheduler!r}: {exc}") from None
    else:
        cluster = LocalCluster(n_workers=min(workers, len(tasks)), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        token = os.urandom(4).hex()
        futures = {client.submit(_run_point, t, key=f"memsnn-sweep-{t.run_id}-{token}", pure=False): t
                   for t in tasks}
        for fut in as_completed(list(futures)):
            try:
                yield futures[fut], fut.result()
            except Exception as exc:  # KilledWorker, lost connection ...
                yield futures[fut], exc
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# -- the sweep ------------------------------------------------------------------------------------
class _DirLock:
    """An exclusive lock on ``out/.sweep.lock`` (flock: the OS drops it when the process dies)."""

    def __init__(self, out: Path):
        self.path = out / _LOCK_NAME
        self.fh = None

    def __enter__(self) -> "_DirLock":
        self.fh = open(self.path, "a+")
        try:
            import fcntl
        except ImportError:  # not POSIX: no protection against two sweeps at once
            return self
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise SweepError(f"another sweep ({holder}) is running in {self.path.parent}; "
                             "wait for it or use another directory") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        self.fh.flush()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fh is not None:
            self.fh.close()


def _check_options(executor: str, workers: Any, scheduler: Any, runner: Any) -> None:
    errors = []
    if executor not in EXECUTORS:
        errors.append(f"executor={executor!r} is not allowed: must be one of {', '.join(map(repr, EXECUTORS))}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        errors.append(f"workers={workers!r} is not allowed: must be an integer >= 1 or None (all CPUs)")
    if scheduler is not None:
        if executor != "dask":
            errors.append(f"scheduler={scheduler!r} needs executor='dask' (got executor={executor!r})")
        elif not isinstance(scheduler, str) or not scheduler.strip():
            errors.append(f"scheduler={scheduler!r} must be a Dask scheduler address like 'tcp://host:8786'")
    if runner is not None and not callable(runner):
        errors.append(f"runner={runner!r} is not callable")
    elif runner is not None and executor == "local":
        try:
            pickle.dumps(runner)
        except Exception as exc:
            errors.append(f"runner={runner!r} cannot be sent to worker processes ({type(exc).__name__}: {exc}); "
                          "use a function defined at module level")
    if errors:
        raise SweepError(errors)


def _prepare_dir(out: Path, spec: dict[str, Any]) -> None:
    """Write ``sweep.toml`` on the first call; on a restart refuse a different spec."""
    spec_path = out / SPEC_NAME
    if spec_path.exists():
        stored = read_spec(out)
        diffs = _spec_differences(stored, spec)
        if diffs:
            raise SweepError(diffs, f"{out} holds a different sweep ({spec_path}); refusing to mix the runs "
                                    "of two sweeps in one directory - use a new directory, or the same grid, "
                                    "mode, seeds and base config to resume it")
        return
    other = [p.name for p in out.iterdir() if p.name != _LOCK_NAME]
    if other:
        raise SweepError(f"{out} is not empty and holds no {SPEC_NAME} (found {sorted(other)[:5]}); "
                         "a sweep needs a new or empty directory")
    with atomic_path(spec_path) as tmp:
        tmp.write_text(tomli_w.dumps(spec))


def run_sweep(base_cfg: Any, grid: Mapping[str, Sequence[Any]] | Sequence[str] | None, out: str | os.PathLike, *,
              mode: str = "product", seeds: Sequence[int] = (0, 1, 2), executor: str = "local",
              workers: int | None = None, scheduler: str | None = None,
              runner: Callable[..., Mapping[str, Any]] | None = None, progress: bool = True,
              retry_failed: bool = False) -> SweepSummary:
    """Run (or resume) a sweep into directory ``out``; see the module docstring for the layout.

    Args:
        base_cfg: base experiment config (``ExperimentConfig``).
        grid: ``{dotted key: [values]}`` or :func:`parse_grid` strings.
        out: sweep directory: new, empty, or holding this same sweep (then it resumes).
        mode: ``"product"`` or ``"zip"`` (see :func:`expand`).
        seeds: seeds each combination runs with.
        executor: ``"local"`` (process pool) or ``"dask"``.
        workers: worker processes (default: the usable CPUs); for ``"dask"`` without
            ``scheduler``, the workers of the LocalCluster started for the sweep.
        scheduler: address of a running Dask scheduler (``executor="dask"`` only).
        runner: ``runner(cfg, out_dir, progress=False) -> dict`` of metrics, called in a worker
            with an empty ``out_dir``; must be picklable (a module-level function). Default:
            :func:`memsnn.experiments.runner.run_experiment`.
        progress: show a tqdm bar (runs, rate, ETA).
        retry_failed: run again the runs that failed before (else they are skipped).

    Returns:
        A :class:`SweepSummary`; the results table is (re)built at the end with
        :func:`memsnn.experiments.results.collect`.
    """
    t0 = time.perf_counter()
    _check_options(executor, workers, scheduler, runner)
    if runner is None:
        from .runner import run_experiment as runner
    workers = workers or _default_workers()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SweepError(f"out={str(out)!r} exists and is not a directory")
    points = expand(base_cfg, grid, mode=mode, seeds=seeds)
    spec = sweep_spec(base_cfg, grid, mode=mode, seeds=seeds)

    out.mkdir(parents=True, exist_ok=True)
    with _DirLock(out):
        _prepare_dir(out, spec)
        runs = out / RUNS_DIR
        runs.mkdir(exist_ok=True)
        for stale in runs.glob(f"{TMP_PREFIX}*"):  # runs cut off by a kill: never finished
            shutil.rmtree(stale, ignore_errors=True)

        pending: list[SweepPoint] = []
        for p in points:
            status = run_status(runs / p.run_id) if (runs / p.run_id).exists() else None
            if status is None or (retry_failed and status != "done"):
                pending.append(p)
        skipped = len(points) - len(pending)
        done = failed = lost = 0
        failures: list[tuple[str, str]] = []
        tasks = [_Task(p.run_id, p.config, p.overrides, p.values, p.seed, str(runs), runner, retry_failed)
                 for p in pending]
        if tasks:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(points), initial=skipped, unit="run", desc="sweep", disable=not progress,
                       dynamic_ncols=True)
            stream = (_execute_local(tasks, workers) if executor == "local"
                      else _execute_dask(tasks, workers, scheduler))
            try:
                for task, result in stream:
                    if isinstance(result, BaseException):
                        lost += 1
                        if progress:
                            bar.write(f"run {task.run_id} was lost ({type(result).__name__}: {result}); "
                                      "it runs again when the sweep is restarted")
                    elif result["status"] == "done":
                        done += 1
                    elif result["status"] == "failed":
                        failed += 1
                        failures.append((task.run_id, result["error"]))
                        if progress:
                            bar.write(f"run {task.run_id} failed: {result['error']}")
                    else:  # published by another process first
                        skipped += 1
                    bar.set_postfix(done=done, failed=failed, refresh=False)
                    bar.update(1)
            finally:
                stream.close()
                bar.close()

        from .results import RESULTS_PARQUET, collect

        collect(out)
    return SweepSummary(out=out, total=len(points), done=done, skipped=skipped, failed=failed, lost=lost,
                        wall_s=time.perf_counter() - t0, results_path=out / RESULTS_PARQUET,
                        failures=tuple(failures))
