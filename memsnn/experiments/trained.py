"""Keep a trained in-situ method on disk and bring it back without training again.

:func:`save_trained` writes, at the moment training ends (before any evaluation reads or drifts
the arrays), two files:

- ``<name>.pt``: the method's crossbars in the multi-layer save format
  (:func:`memsnn.crossbar.storage.save_crossbars`, layers ``layer0``, ``layer1``, ...), so that
  ``memsnn export-maps RUN_DIR --at SECONDS`` reads them like any saved crossbar;
- ``<name>.state.pt``: everything else the method holds that training changed - every tensor,
  number and ``torch.Generator`` reachable from the method's attributes (adaptive thresholds,
  drift-compensation references and their cache keys, float readouts, schedulers' residuals ...),
  each under its attribute path, plus each crossbar's state version. Parameter dataclasses are
  not stored: they come from the run's config.

:func:`restore_trained` takes a freshly built method (:func:`memsnn.experiments.methods.build_method`
with the run's config, dataset split and seed) and overwrites its state in place with what was
saved, so that every read - generators included - continues exactly where the run's evaluation
began: the accuracy right after training equals the run's recorded ``test_acc``.

:func:`evaluate_run` does this for a run directory of ``memsnn run`` / ``memsnn sweep`` (one
method, ``trained/crossbars.pt``) or of ``memsnn compare`` (every in-situ method,
``trained/<method>.pt``) and reports the accuracy at given times after training. Runs on the
aihwkit backend keep native copies of their crossbars (``to_native``) for ``export-maps``;
aihwkit's own device state cannot be reloaded, so :func:`evaluate_run` refuses them.

Files are written with :func:`memsnn.files.atomic_path` and never overwrite.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import torch
from torch import nn

from ..crossbar.array import Crossbar
from ..crossbar.storage import load_crossbars, read_payload, save_crossbars
from ..files import atomic_path
from ..params import Params

__all__ = ["save_trained", "restore_trained", "evaluate_run", "TRAINED_DIR"]

TRAINED_DIR = "trained"
_FORMAT = "memsnn.method_state"
_SCALARS = (bool, int, float, str, type(None))



def _walk(obj: Any, path: tuple, seen: set[int]) -> Iterator[tuple[tuple, str, Any]]:
    """``(path, kind, value)`` (path: ``(kind, key)`` steps, ``("a", attribute)`` / ``("i", list
    index)`` / ``("k", dict key)``) for every tensor (``"t"``), generator (``"g"``) and plain value
    (``"v"``: a number, string, None, or a list / tuple of them) below ``obj``'s attributes.
    Crossbars (saved on their own), parameter dataclasses (config), optimisers and objects from
    outside memsnn / torch.nn are not entered."""
    if isinstance(obj, torch.Tensor):
        if id(obj) not in seen:
            seen.add(id(obj))
            yield path, "t", obj.detach().cpu().clone()
        return
    if isinstance(obj, torch.Generator):
        yield path, "g", obj.get_state()
        return
    if isinstance(obj, _SCALARS):
        yield path, "v", obj
        return
    if isinstance(obj, (list, tuple)) and all(isinstance(v, _SCALARS) for v in obj):
        yield path, "v", list(obj) if isinstance(obj, list) else tuple(obj)
        return
    if id(obj) in seen or isinstance(obj, (Crossbar, Params, torch.optim.Optimizer)):
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk(v, path + (("i", i),), seen)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, (str, int)):
                yield from _walk(v, path + (("k", k),), seen)
    elif isinstance(obj, nn.Module) or type(obj).__module__.startswith("memsnn"):
        for k, v in vars(obj).items():
            yield from _walk(v, path + (("a", k),), seen)


def _get(obj: Any, step: tuple) -> Any:
    kind, key = step
    return getattr(obj, key) if kind == "a" else obj[key]


def _set(obj: Any, step: tuple, value: Any) -> None:
    kind, key = step
    if kind == "a":
        object.__setattr__(obj, key, value)  # also on frozen objects
    else:
        obj[key] = value


def method_state(method) -> dict[str, Any]:
    """The state of ``method`` besides its crossbars (module docstring), a plain dict."""
    entries = [(list(p), kind, value) for p, kind, value in _walk(method, (), set()) if p]
    return {"format": _FORMAT, "version": 1, "class": type(method).__name__,
            "crossbar_versions": [x.version for x in method.crossbars()], "entries": entries}


def save_trained(method, directory: str | os.PathLike, name: str = "crossbars") -> Path:
    """Write ``directory/<name>.pt`` (crossbars) and ``directory/<name>.state.pt`` (the rest);
    refuses to overwrite either. Aihwkit crossbars are stored as native copies. Returns the
    crossbar file."""
    directory = Path(directory)
    xbars = method.crossbars()
    if not xbars:
        raise ValueError(f"{method.name} holds no crossbars (a float method): nothing to save")
    native = [x.to_native() if hasattr(x, "to_native") else x for x in xbars]
    path = save_crossbars(directory / f"{name}.pt", {f"layer{i}": x for i, x in enumerate(native)})
    state = method_state(method)
    state["backend"] = "aihwkit" if any(hasattr(x, "to_native") for x in xbars) else "native"
    with atomic_path(directory / f"{name}.state.pt") as tmp:
        torch.save(state, tmp)
    return path


def restore_trained(method, directory: str | os.PathLike, name: str = "crossbars") -> None:
    """Overwrite the state of ``method`` (built as the run built it) with what :func:`save_trained`
    wrote; ValueError naming the file when the saved state does not fit this method."""
    directory = Path(directory)
    xfile, sfile = directory / f"{name}.pt", directory / f"{name}.state.pt"
    state = read_payload(sfile, "saved memsnn method state") if sfile.is_file() else None
    if state is None or state.get("format") != _FORMAT:
        raise ValueError(f"{sfile} is missing or not a saved method state (format {_FORMAT!r})")
    if state.get("backend", "native") != "native":
        raise ValueError(f"{xfile}: the run used the aihwkit backend; its crossbars were kept as native copies for "
                         "export-maps, but aihwkit's device state cannot be reloaded, so it cannot be re-evaluated")
    if state.get("class") != type(method).__name__:
        raise ValueError(f"{sfile} holds a {state.get('class')} but the rebuilt method is a {type(method).__name__}")
    saved = load_crossbars(xfile)
    xbars = method.crossbars()
    if len(saved) != len(xbars):
        raise ValueError(f"{xfile} holds {len(saved)} crossbars, the rebuilt method {len(xbars)}")
    for i, (xbar, version) in enumerate(zip(xbars, state["crossbar_versions"])):
        loaded = saved[f"layer{i}"]
        if loaded.shape != xbar.shape:
            raise ValueError(f"{xfile}: layer{i} is {loaded.shape}, the rebuilt method's {xbar.shape}")
        vars(xbar).clear()  # in place: every layer, scheduler and cache keeps pointing at it
        vars(xbar).update(vars(loaded))
        xbar._version = version
    for path, kind, value in state["entries"]:
        steps = [tuple(s) for s in path]
        obj = method
        try:
            for step in steps[:-1]:
                obj = _get(obj, step)
        except (AttributeError, KeyError, IndexError, TypeError):
            raise ValueError(f"{sfile}: saved state at {_show(steps)} does not fit the rebuilt "
                             f"{type(method).__name__} (was the code or the config changed?)") from None
        try:
            current = _get(obj, steps[-1])
        except (AttributeError, KeyError, IndexError, TypeError):
            current = None
        if kind == "g":
            if isinstance(current, torch.Generator):
                current.set_state(value)
            else:
                gen = torch.Generator()
                gen.set_state(value)
                _set(obj, steps[-1], gen)
        elif kind == "t" and isinstance(current, torch.Tensor) and current.shape == value.shape \
                and current.dtype == value.dtype:
            with torch.no_grad():
                current.copy_(value)
        else:
            _set(obj, steps[-1], value.to(xbars[0].device) if kind == "t" and xbars else value)


def _show(steps: list[tuple]) -> str:
    return "".join(f".{k}" if kind == "a" else f"[{k!r}]" for kind, k in steps).lstrip(".")


# ----------------------------------------------------------------------------------------------------
# run directories
# ----------------------------------------------------------------------------------------------------
def _slug(method_name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in method_name)


def _runner_methods(run: Path):
    from .config import load_config
    from .runner import build_from_config

    cfg = load_config(run / "config.toml")
    metrics = json.loads((run / "metrics.json").read_text())
    if metrics.get("status", "done") != "done":
        raise ValueError(f"{run} is a failed run ({metrics.get('error')}); nothing to evaluate")
    data, method = build_from_config(cfg)
    ev = cfg.evaluation
    yield method, data, cfg.seed, run / TRAINED_DIR, "crossbars", metrics.get("test_acc"), (ev.times, ev.jitter)


def _compare_methods(run: Path):
    from .compare import CompareConfig, _methods, load_data

    cfg = CompareConfig(**json.loads((run / "config.json").read_text()))
    table = pd.read_csv(run / "compare.csv")
    data = load_data(cfg)
    for rule in cfg.rules:
        if rule == "logreg":
            continue
        method = _methods(cfg, data, rule)[0]  # the in-situ one
        recorded = table.loc[table.method == method.name, "test_acc"]
        yield (method, data, cfg.seed, run / TRAINED_DIR, _slug(method.name),
               float(recorded.iloc[0]) if len(recorded) else None, ((0.0, cfg.drift_time), (cfg.jitter,)))


def evaluate_run(run_dir: str | os.PathLike, times: tuple[float, ...] = (0.0,),
                 jitter: tuple[float, ...] = ()) -> pd.DataFrame:
    """Reload every trained in-situ method of ``run_dir`` and evaluate it without training.

    Args:
        run_dir: a ``memsnn run`` / sweep run directory (``config.toml``, ``metrics.json``) or a
            ``memsnn compare`` directory (``config.json``, ``compare.csv``), with ``trained/``.
        times: seconds after the end of training, increasing, >= 0; 0 is added when absent.
        jitter: input spike-time jitter stds (time steps) evaluated right after training.

    Returns:
        One row per method: ``method``, ``recorded_test_acc`` (the run's), ``test_acc`` (again
        now; equal to the recorded one), ``acc_jitter_<s>`` and ``acc_at_<t>s`` (fractions).
        The reads follow :func:`memsnn.experiments.methods.evaluate`: with the run's own times
        and jitter every number equals the run's; other jitter lists change the read-noise draws
        of the later times.
    """
    from .methods import evaluate

    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run} is not a directory")
    times = tuple(sorted({0.0, *(float(t) for t in times)}))
    if any(not math.isfinite(t) or t < 0 for t in times):
        raise ValueError(f"--at {list(times)!r}: times must be seconds >= 0")
    if (run / "config.toml").is_file() and (run / "metrics.json").is_file():
        found = _runner_methods(run)
    elif (run / "config.json").is_file() and (run / "compare.csv").is_file():
        found = _compare_methods(run)
    else:
        raise ValueError(f"{run} is neither a run directory (config.toml, metrics.json) nor a compare directory "
                         "(config.json, compare.csv)")
    rows = []
    for method, data, seed, directory, name, recorded, _ in found:
        if not method.crossbars():
            continue  # a float run: nothing drifts, nothing was saved
        if not (directory / f"{name}.pt").is_file():
            raise ValueError(f"{directory / (name + '.pt')} is missing: this run kept no trained crossbars "
                             "(made by an older memsnn?)")
        restore_trained(method, directory, name)
        m = evaluate(method, data, times=times, jitter=tuple(jitter), seed=seed)
        row = {"method": method.name, "recorded_test_acc": recorded, "test_acc": m["test_acc"]}
        row.update({k: v for k, v in m.items() if k.startswith("acc_")})
        rows.append(row)
    if not rows:
        raise ValueError(f"{run} holds no in-situ method (float runs do not drift): nothing to evaluate")
    return pd.DataFrame(rows)
