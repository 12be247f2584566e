"""Sweeps: grid parsing and expansion, run ids, SIGKILL and restart, failures, Dask, real runs.

Sweep mechanics are tested with ``ToyConfig`` / ``toy_runner`` below (module level, so worker
processes import them by reference); the last test runs a tiny real sweep with the real runner.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import tomli_w

from memsnn.experiments.sweep import SweepError, expand, make_run_id, parse_grid, run_sweep
from memsnn.params import Params, ParameterError, param, unknown_key_message

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ToyConfig(Params):
    """Stands in for ExperimentConfig: dotted override keys, string values parsed and validated."""

    _owner = "toy"

    noise: float = param(0.0, check=">=0", doc="device.noise")
    rule: str = param("stdp", check=None, choices=("stdp", "sg"), doc="rule.name")
    seed: int = param(0, check="int>=0", doc="seed")
    sleep: float = param(0.0, unit="s", check=">=0", doc="run.sleep: how long a run takes")
    fail_at: float | None = param(None, check=">=0", optional=True, doc="runs with this noise raise ...")
    fail_flag: str = param("", check=None, doc="... while this file exists ('' = always)")
    log: str = param("", check=None, doc="file each run appends 'start <noise> <rule> <seed>' to")

    KEYS = {"device.noise": ("noise", float), "rule.name": ("rule", str), "seed": ("seed", int),
            "run.sleep": ("sleep", float)}

    def with_overrides(self, overrides):
        changes, errors = {}, []
        for key, value in overrides.items():
            if key not in self.KEYS:
                errors.append(unknown_key_message(key, list(self.KEYS)))
                continue
            name, kind = self.KEYS[key]
            try:
                changes[name] = kind(value)
            except ValueError:
                errors.append(f"{key}={value!r} is not a {kind.__name__}")
        if errors:
            raise ParameterError(errors, "toy")
        return self.replace(**changes)

    def to_toml(self) -> str:
        return tomli_w.dumps({"seed": self.seed, "device": {"noise": self.noise}, "rule": {"name": self.rule},
                              "run": {"sleep": self.sleep, "fail_flag": self.fail_flag, "log": self.log},
                              **({"fail_at": self.fail_at} if self.fail_at is not None else {})})


def toy_runner(cfg: ToyConfig, out_dir: Path, *, progress: bool = False) -> dict:
    out_dir = Path(out_dir)
    assert out_dir.is_dir() and not any(out_dir.iterdir()), "the runner gets a new, empty directory"
    if cfg.log:
        with open(cfg.log, "a") as fh:
            fh.write(f"start {cfg.noise} {cfg.rule} {cfg.seed}\n")
    (out_dir / "partial.txt").write_text("written before the run ends\n")
    time.sleep(cfg.sleep)
    if cfg.fail_at is not None and cfg.noise == cfg.fail_at and (not cfg.fail_flag or Path(cfg.fail_flag).exists()):
        raise RuntimeError(f"toy failure at noise={cfg.noise}")
    metrics = {"accuracy": 1.0 - cfg.noise + 0.01 * cfg.seed, "pulses": 100 * (cfg.seed + 1),
               "token": uuid.uuid4().hex, "threads": _torch_threads()}
    (out_dir / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def toy_runner_no_file(cfg: ToyConfig, out_dir: Path, *, progress: bool = False) -> dict:
    """Returns its metrics without writing metrics.json (the sweep writes it); imports torch to
    show that the worker runs it on one thread."""
    import torch

    return {"accuracy": 0.5 + cfg.noise, "torch_threads": torch.get_num_threads()}


def _torch_threads() -> int:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else int(os.environ.get("OMP_NUM_THREADS", "0"))


def _finished(out: Path) -> list[str]:
    runs = out / "runs"
    return sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) if runs.is_dir() else []


def _in_flight(out: Path) -> bool:
    runs = out / "runs"
    return runs.is_dir() and any(p.name.startswith(".tmp-") and (p / "partial.txt").exists()
                                 for p in runs.iterdir())


GRID = {"device.noise": ["0.0", "0.1", "0.2"], "rule.name": ["stdp", "sg"]}


# -- grid parsing and expansion ---------------------------------------------------------------------
def test_parse_grid():
    grid = parse_grid(["device.read_noise_std=0.0, 0.02,0.05", "rule.name=stdp,sg"])
    assert grid == {"device.read_noise_std": ["0.0", "0.02", "0.05"], "rule.name": ["stdp", "sg"]}
    assert parse_grid(["network.hidden=[64], [32, 8]"]) == {"network.hidden": ["[64]", "[32, 8]"]}


@pytest.mark.parametrize("items, needle", [
    (["device.noise"], "has no '='"),
    (["device.noise="], "has no values"),
    (["device.noise=0.1,,0.2"], "empty value at position(s) [1]"),
    (["device.noise=0.1", "device.noise=0.2"], "given twice"),
    (["device.noise=0.1,0.1"], "['0.1'] more than once"),
    (["=0.1"], "empty key"),
    (["bad key=1"], "not a dotted name"),
    (["seed=1,2"], "seeds=(...)"),
    ("device.noise=0.1", "single string"),
    (["network.hidden=[64,[32"], "'[' without its ']'"),
    (["network.hidden=64]"], "']' without its '['"),
])
def test_parse_grid_errors(items, needle):
    with pytest.raises(SweepError) as exc:
        parse_grid(items)
    assert needle in str(exc.value)


def test_parse_grid_reports_every_problem():
    with pytest.raises(SweepError) as exc:
        parse_grid(["a", "b=", "c=1,1"])
    assert len(exc.value.errors) == 3


def test_expand_product_and_zip():
    base = ToyConfig()
    points = expand(base, GRID, seeds=(0, 1))
    assert len(points) == 3 * 2 * 2
    assert [(p.overrides, p.seed) for p in points[:3]] == [
        ({"device.noise": "0.0", "rule.name": "stdp"}, 0), ({"device.noise": "0.0", "rule.name": "stdp"}, 1),
        ({"device.noise": "0.0", "rule.name": "sg"}, 0)]
    p = points[-1]
    assert (p.config.noise, p.config.rule, p.config.seed) == (0.2, "sg", 1)
    assert p.values == {"device.noise": 0.2, "rule.name": "sg"}  # typed from the config's TOML
    zipped = expand(base, {"device.noise": [0.1, 0.2], "run.sleep": [1, 2]}, mode="zip", seeds=(5,))
    assert [(q.config.noise, q.config.sleep, q.seed) for q in zipped] == [(0.1, 1.0, 5), (0.2, 2.0, 5)]
    assert len(expand(base, {}, seeds=(0, 1))) == 2  # no grid: the base config per seed


def test_expand_reports_all_bad_values_before_running():
    with pytest.raises(SweepError) as exc:
        expand(ToyConfig(), {"device.noise": ["0.1", "-1", "abc"], "rule.name": ["stdp", "hebb"],
                             "device.noize": ["1"]}, seeds=(0,))
    msg = str(exc.value)
    assert len(exc.value.errors) == 4
    assert "device.noise=-1" in msg and "a number >= 0" in msg
    assert "device.noise=abc" in msg and "rule.name=hebb" in msg
    assert "did you mean 'device.noise'" in msg


@pytest.mark.parametrize("kwargs, needle", [
    (dict(grid={"device.noise": ["0.1", "0.2"], "rule.name": ["sg"]}, mode="zip"), "device.noise: 2, rule.name: 1"),
    (dict(grid=GRID, mode="grid"), "mode='grid'"),
    (dict(grid=GRID, seeds=()), "non-empty"),
    (dict(grid=GRID, seeds=(1, 1)), "more than once"),
    (dict(grid=GRID, seeds=(-1,)), "integers >= 0"),
    (dict(grid={"device.noise": "0.1"}), "must be a list"),
])
def test_expand_errors(kwargs, needle):
    with pytest.raises(SweepError) as exc:
        expand(ToyConfig(), **kwargs)
    assert needle in str(exc.value)


# -- run ids ----------------------------------------------------------------------------------------
def test_run_id_readable_unique_and_order_free():
    rid = make_run_id({"device.read_noise_std": "0.02", "rule.name": "sg"}, 3)
    assert rid.startswith("device.read_noise_std=0.02__rule.name=sg__seed=3__")
    assert rid == make_run_id({"rule.name": "sg", "device.read_noise_std": "0.02"}, 3)
    # values that slug alike stay distinct; odd characters never reach the file name
    a, b = make_run_id({"data.path": "a/b c"}, 0), make_run_id({"data.path": "a-b-c"}, 0)
    assert a != b and "/" not in a and " " not in a
    assert make_run_id({"x": "1"}, 0) != make_run_id({"x": "1"}, 1)
    long = make_run_id({"k": "v" * 400}, 0)
    assert len(long) < 200
    ids = [p.run_id for p in expand(ToyConfig(), GRID, seeds=(0, 1, 2))]
    assert len(set(ids)) == len(ids) == 18


def test_run_id_stable_across_processes():
    code = "from memsnn.experiments.sweep import make_run_id; print(make_run_id({'a.b': '0.5', 'c': 'x'}, 2))"
    outs = {subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert outs == {make_run_id({"a.b": "0.5", "c": "x"}, 2)}


# -- sweeps -----------------------------------------------------------------------------------------
def test_sigkill_mid_sweep_then_restart_runs_each_exactly_once(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "runs.log"
    base = ToyConfig(sleep=0.3, log=str(log))
    code = textwrap.dedent(f"""
        from tests.experiments.test_sweep import ToyConfig, toy_runner, GRID
        from memsnn.experiments.sweep import run_sweep
        run_sweep(ToyConfig(sleep=0.3, log={str(log)!r}), GRID, {str(out)!r}, seeds=(0, 1), workers=2,
                  runner=toy_runner, progress=False)
    """)
    err = open(tmp_path / "stderr.txt", "w")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 90
        # Kill once 3 runs are done and another is half-way (its partial file written): between two
        # runs no run may be in flight, and a kill there would test nothing about cut-off runs.
        while len(_finished(out)) < 3 or not _in_flight(out):
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline, "the sweep did not finish 3 runs in 90 s"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker processes
        proc.wait()
        err.close()
    before = _finished(out)
    assert 3 <= len(before) < 12, "killed mid-way"
    stale = [p for p in (out / "runs").iterdir() if p.name.startswith(".tmp-")]
    # With two workers the other in-flight run may have its directory but not yet its partial file.
    assert any((p / "partial.txt").exists() for p in stale), "a half run was cut off"
    tokens = {rid: json.loads((out / "runs" / rid / "metrics.json").read_text())["token"] for rid in before}

    summary = run_sweep(base, GRID, out, seeds=(0, 1), workers=2, runner=toy_runner, progress=False)

    all_ids = sorted(p.run_id for p in expand(base, GRID, seeds=(0, 1)))
    assert _finished(out) == all_ids
    assert not [p.name for p in (out / "runs").iterdir() if p.name.startswith(".")], "no .tmp leftovers"
    assert (summary.skipped, summary.done, summary.failed, summary.lost) == (len(before), 12 - len(before), 0, 0)
    for rid in before:  # finished runs were not run again
        assert json.loads((out / "runs" / rid / "metrics.json").read_text())["token"] == tokens[rid]
    starts = log.read_text().splitlines()
    finished_keys = set()
    for rid in before:
        point = json.loads((out / "runs" / rid / "sweep_point.json").read_text())
        finished_keys.add(f"start {float(point['overrides']['device.noise'])} "
                          f"{point['overrides']['rule.name']} {point['seed']}")
    for key in finished_keys:
        assert starts.count(key) == 1, key
    assert len(set(starts)) == 12
    assert json.loads((out / "runs" / all_ids[0] / "metrics.json").read_text())["threads"] == 1  # one per worker
    table = pd.read_csv(out / "results.csv")
    assert sorted(table["run_id"]) == all_ids and set(table["status"]) == {"done"}


def test_failed_run_is_recorded_and_retried_only_on_request(tmp_path):
    flag = tmp_path / "fail-now"
    flag.touch()
    base = ToyConfig(fail_at=0.1, fail_flag=str(flag))
    grid = {"device.noise": ["0.0", "0.1", "0.2"]}
    out = tmp_path / "sweep"
    summary = run_sweep(base, grid, out, seeds=(0, 1), workers=2, runner=toy_runner, progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (4, 2, 0)
    assert {rid for rid, _ in summary.failures} == {p.run_id for p in expand(base, grid, seeds=(0, 1))
                                                    if p.values["device.noise"] == 0.1}
    rid = summary.failures[0][0]
    record = json.loads((out / "runs" / rid / "metrics.json").read_text())
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: toy failure at noise=0.1"
    assert "Traceback" in record["traceback"] and "toy_runner" in record["traceback"]
    assert (out / "runs" / rid / "partial.txt").exists()  # what the run wrote before failing is kept

    flag.unlink()
    again = run_sweep(base, grid, out, seeds=(0, 1), workers=2, runner=toy_runner, progress=False)
    assert (again.done, again.failed, again.skipped) == (0, 0, 6)  # failed runs are not retried ...
    retried = run_sweep(base, grid, out, seeds=(0, 1), workers=2, runner=toy_runner, progress=False,
                        retry_failed=True)
    assert (retried.done, retried.failed, retried.skipped) == (2, 0, 4)  # ... unless asked
    assert json.loads((out / "runs" / rid / "metrics.json").read_text()).get("status", "done") == "done"
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]


def test_restart_with_another_spec_is_refused(tmp_path):
    out = tmp_path / "sweep"
    grid = {"device.noise": ["0.0", "0.1"]}
    run_sweep(ToyConfig(), grid, out, seeds=(0,), workers=1, runner=toy_runner_no_file, progress=False)
    metrics = json.loads(next((out / "runs").iterdir()).joinpath("metrics.json").read_text())
    assert metrics["accuracy"] >= 0.5 and metrics["torch_threads"] == 1
    with pytest.raises(SweepError, match="holds a different sweep") as exc:
        run_sweep(ToyConfig(), {"device.noise": ["0.0", "0.2"]}, out, seeds=(0,), runner=toy_runner, progress=False)
    assert "grid: stored" in str(exc.value)
    with pytest.raises(SweepError, match="base config run.sleep: stored 0.0, now 1.0"):
        run_sweep(ToyConfig(sleep=1.0), grid, out, seeds=(0,), runner=toy_runner, progress=False)
    with pytest.raises(SweepError, match="seeds: stored"):
        run_sweep(ToyConfig(), grid, out, seeds=(0, 1), runner=toy_runner, progress=False)
    # the same spec resumes: nothing to do
    same = run_sweep(ToyConfig(), grid, out, seeds=(0,), runner=toy_runner, progress=False)
    assert (same.done, same.skipped) == (0, 2)
    # ... but not while another sweep process holds the directory
    import fcntl

    with open(out / ".sweep.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SweepError, match="another sweep .* is running in"):
            run_sweep(ToyConfig(), grid, out, seeds=(0,), runner=toy_runner, progress=False)


def test_run_sweep_refuses_bad_options_and_foreign_directories(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="not empty and holds no sweep.toml"):
        run_sweep(ToyConfig(), GRID, tmp_path / "busy", runner=toy_runner, progress=False)
    assert not (tmp_path / "busy" / "runs").exists()
    for kwargs, needle in [(dict(executor="ray"), "executor='ray'"), (dict(workers=0), "workers=0"),
                           (dict(scheduler="tcp://x:1"), "needs executor='dask'"),
                           (dict(runner="run"), "not callable"),
                           (dict(runner=lambda cfg, out, progress=False: {}), "use a function defined at module level")]:
        with pytest.raises(SweepError, match=needle.replace("(", r"\(")):
            run_sweep(ToyConfig(), GRID, tmp_path / "new", **{"runner": toy_runner, **kwargs})
    with pytest.raises(SweepError, match="device.noise=-1"):
        run_sweep(ToyConfig(), {"device.noise": ["-1"]}, tmp_path / "new", runner=toy_runner, progress=False)
    assert not (tmp_path / "new").exists(), "nothing is written before the configs validate"


def test_dask_local_cluster_sweep(tmp_path):
    pytest.importorskip("distributed")
    base = ToyConfig(fail_at=0.2)
    summary = run_sweep(base, {"device.noise": ["0.0", "0.1", "0.2"]}, tmp_path / "sweep", seeds=(0, 1),
                        executor="dask", workers=2, runner=toy_runner, progress=False)
    assert (summary.done, summary.failed, summary.lost) == (4, 2, 0)
    hosts = {json.loads(p.joinpath("sweep_point.json").read_text())["pid"] for p in (tmp_path / "sweep/runs").iterdir()}
    assert os.getpid() not in hosts  # ran in the cluster's worker processes
    table = pd.read_parquet(summary.results_path)
    assert len(table) == 6 and sorted(table["status"]) == ["done"] * 4 + ["failed"] * 2


def test_dask_unreachable_scheduler_is_a_clear_error(tmp_path):
    pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(SweepError, match="could not connect to the Dask scheduler at 'tcp://127.0.0.1:9'"):
        run_sweep(ToyConfig(), {"device.noise": ["0.0"]}, tmp_path / "s", seeds=(0,), executor="dask",
                  scheduler="tcp://127.0.0.1:9", runner=toy_runner, progress=False)


@pytest.mark.slow  # about 20 s on 2 busy cores: each worker imports torch, then runs for a few seconds
def test_real_tiny_sweep_with_the_default_runner(tmp_path):
    """Two real runs (iris, 60 samples, STDP, 1 epoch) through run_experiment, the default runner."""
    from memsnn.experiments.config import ExperimentConfig, load_config
    from memsnn.experiments.results import collect, format_summary

    base = ExperimentConfig().with_overrides({
        "data.dataset": "iris", "data.limit": "60", "training.epochs": "1", "rule.params.num_steps": "8",
        "evaluation.times": "[0.0]", "evaluation.jitter": "[1.0]"})
    out = tmp_path / "sweep"
    summary = run_sweep(base, parse_grid(["device.read_noise_std=0.0,0.05"]), out, seeds=(3,), workers=2,
                        progress=False)
    assert (summary.done, summary.failed, summary.lost) == (2, 0, 0), summary.failures
    for point in expand(base, {"device.read_noise_std": ["0.0", "0.05"]}, seeds=(3,)):
        run = out / "runs" / point.run_id
        assert {"config.toml", "metrics.json", "history.csv", "sweep_point.json"} <= {p.name for p in run.iterdir()}
        assert load_config(run / "config.toml") == point.config
        assert point.config.device.params["read_noise_std"] == point.values["device.read_noise_std"]
    table = pd.read_parquet(summary.results_path)
    assert sorted(table["device.read_noise_std"]) == [0.0, 0.05] and set(table["seed"]) == {3}
    assert table["test_acc"].between(0, 1).all() and "metric.seed" not in table.columns
    text = format_summary(collect(out, write=False))
    assert "2 runs (2 done)" in text and "test_acc" in text
