"""The results table: collect / summarize / format_summary on hand-made run directories."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import tomli_w

from memsnn.experiments.results import collect, format_summary, summarize
from memsnn.experiments.sweep import make_run_id

GRID = {"device.noise": ["0.0", "0.1"], "rule.name": ["stdp", "sg"]}
# (noise, rule, seed) -> accuracy; None: the run failed
ACC = {
    (0.0, "stdp", 0): 0.80, (0.0, "stdp", 1): 0.90, (0.0, "stdp", 2): 0.85,
    (0.0, "sg", 0): 0.95, (0.0, "sg", 1): 0.93, (0.0, "sg", 2): 0.97,
    (0.1, "stdp", 0): 0.70, (0.1, "stdp", 1): 0.60, (0.1, "stdp", 2): None,
    (0.1, "sg", 0): 0.91,
}


def _rid(noise: float, rule: str, seed: int) -> str:
    return make_run_id({"device.noise": str(noise), "rule.name": rule}, seed)


def _write_run(runs: Path, noise: float, rule: str, seed: int, metrics: dict) -> str:
    overrides = {"device.noise": str(noise), "rule.name": rule}
    rid = make_run_id(overrides, seed)
    d = runs / rid
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps(metrics))
    (d / "sweep_point.json").write_text(json.dumps({
        "run_id": rid, "seed": seed, "overrides": overrides,
        "values": {"device.noise": noise, "rule.name": rule}, "status": metrics.get("status", "done")}))
    return rid


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.toml").write_text(tomli_w.dumps({"format": 1, "mode": "product", "seeds": [0, 1, 2],
                                                   "grid": GRID, "base": {"seed": 0}}))
    runs = out / "runs"
    for (noise, rule, seed), acc in ACC.items():
        if acc is None:
            _write_run(runs, noise, rule, seed, {"status": "failed", "error": "RuntimeError: boom",
                                                 "traceback": "Traceback ...\nRuntimeError: boom"})
        else:
            _write_run(runs, noise, rule, seed, {
                "accuracy": acc, "pulses": 1000 * (seed + 1), "energy": {"total_J": 1e-9 * (seed + 1)},
                "history": [acc, acc], "seed": 123, "note": f"n{seed}", "insitu": True,
                "run_id": _rid(noise, rule, seed)})
    (runs / ".tmp-unfinished-123-abc").mkdir()  # a run in progress: not in the table
    (runs / ".tmp-unfinished-123-abc" / "metrics.json").write_text("{}")
    return out


def test_collect_one_row_per_run_typed(sweep_dir):
    df = collect(sweep_dir)
    assert len(df) == len(ACC)
    assert list(df.columns[:6]) == ["run_id", "status", "error", "seed", "device.noise", "rule.name"]
    assert df["device.noise"].dtype == float and set(df["rule.name"]) == {"stdp", "sg"}
    assert {"accuracy", "pulses", "energy.total_J", "history", "metric.seed", "note", "insitu"} <= set(df.columns)
    assert "metric.run_id" not in df.columns  # repeats run_id: dropped
    assert df.attrs["swept_keys"] == ["device.noise", "rule.name"]
    failed = df[df["status"] == "failed"]
    assert len(failed) == 1 and failed["error"].iloc[0] == "RuntimeError: boom"
    assert (failed["device.noise"].iloc[0], failed["rule.name"].iloc[0], failed["seed"].iloc[0]) == (0.1, "stdp", 2)
    assert math.isnan(failed["accuracy"].iloc[0]) and "traceback" not in df.columns
    row = df[(df["device.noise"] == 0.0) & (df["rule.name"] == "sg") & (df["seed"] == 1)].iloc[0]
    assert row["accuracy"] == 0.93 and row["pulses"] == 2000 and row["energy.total_J"] == pytest.approx(2e-9)
    assert json.loads(row["history"]) == [0.93, 0.93] and row["metric.seed"] == 123


def test_collect_writes_and_replaces_the_table(sweep_dir):
    collect(sweep_dir)
    parquet, csv = pd.read_parquet(sweep_dir / "results.parquet"), pd.read_csv(sweep_dir / "results.csv")
    assert len(parquet) == len(csv) == len(ACC)
    assert sorted(parquet["accuracy"].dropna()) == sorted(a for a in ACC.values() if a is not None)
    assert csv["run_id"].tolist() == parquet["run_id"].tolist()
    _write_run(sweep_dir / "runs", 0.1, "sg", 1, {"accuracy": 0.89})  # a run finished later
    collect(sweep_dir)
    assert len(pd.read_parquet(sweep_dir / "results.parquet")) == len(ACC) + 1
    assert not [p for p in sweep_dir.iterdir() if p.name.endswith(".tmp")]


def test_collect_mixed_types_and_unreadable_runs(sweep_dir):
    runs = sweep_dir / "runs"
    _write_run(runs, 0.1, "sg", 2, {"accuracy": 0.5, "note": 7})  # 'note' now holds str and int
    broken = runs / "broken"
    broken.mkdir()
    (broken / "metrics.json").write_text("{not json")
    df = collect(sweep_dir)
    row = df[df["run_id"] == "broken"].iloc[0]
    assert row["status"] == "unreadable" and "metrics.json" in row["error"]
    expected = sorted(["7"] + [f"n{seed}" for (_, _, seed), acc in ACC.items() if acc is not None])
    assert sorted(pd.read_parquet(sweep_dir / "results.parquet")["note"].dropna()) == expected


def test_collect_needs_a_sweep_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a sweep directory"):
        collect(tmp_path)


def _stats(values):
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return n, mean, std


def test_summarize_matches_hand_computed_means_and_stds(sweep_dir):
    table = summarize(collect(sweep_dir, write=False))
    assert len(table) == 4
    assert list(table.columns[:4]) == ["device.noise", "rule.name", "n", "n_failed"]
    assert "accuracy_mean" in table.columns and "note_mean" not in table.columns  # text is not averaged
    assert "seed_mean" not in table.columns and "insitu_mean" not in table.columns
    # hand-computed: (0.0, stdp): mean 0.85, std 0.05; (0.1, stdp): mean 0.65, std 0.0707, one failed
    r = table[(table["device.noise"] == 0.0) & (table["rule.name"] == "stdp")].iloc[0]
    assert (r["n"], r["n_failed"]) == (3, 0)
    assert r["accuracy_mean"] == pytest.approx(0.85) and r["accuracy_std"] == pytest.approx(0.05)
    r = table[(table["device.noise"] == 0.1) & (table["rule.name"] == "stdp")].iloc[0]
    assert (r["n"], r["n_failed"]) == (2, 1)
    assert r["accuracy_mean"] == pytest.approx(0.65) and r["accuracy_std"] == pytest.approx(math.sqrt(0.005))
    assert r["pulses_mean"] == pytest.approx(1500) and r["pulses_std"] == pytest.approx(math.sqrt(500000))
    r = table[(table["device.noise"] == 0.1) & (table["rule.name"] == "sg")].iloc[0]
    assert r["n"] == 1 and r["accuracy_mean"] == pytest.approx(0.91) and math.isnan(r["accuracy_std"])
    for (noise, rule), row in table.set_index(["device.noise", "rule.name"]).iterrows():
        accs = [a for (nz, ru, _), a in ACC.items() if (nz, ru) == (noise, rule) and a is not None]
        n, mean, std = _stats(accs)
        assert row["n"] == n and row["accuracy_mean"] == pytest.approx(mean)
        assert row["accuracy_std"] == pytest.approx(std, nan_ok=True)


def test_summarize_by_other_keys(sweep_dir):
    df = collect(sweep_dir, write=False)
    by_rule = summarize(df, by="rule.name").set_index("rule.name")
    stdp = [a for (_, ru, _), a in ACC.items() if ru == "stdp" and a is not None]
    n, mean, std = _stats(stdp)
    assert by_rule.loc["stdp", "n"] == n == 5 and by_rule.loc["stdp", "n_failed"] == 1
    assert by_rule.loc["stdp", "accuracy_mean"] == pytest.approx(mean)
    assert by_rule.loc["stdp", "accuracy_std"] == pytest.approx(std)
    everything = summarize(df, by=[])
    n, mean, std = _stats([a for a in ACC.values() if a is not None])
    assert len(everything) == 1 and everything["n"].iloc[0] == n
    assert everything["accuracy_mean"].iloc[0] == pytest.approx(mean)
    assert everything["accuracy_std"].iloc[0] == pytest.approx(std)


def test_summarize_errors(sweep_dir):
    df = collect(sweep_dir, write=False)
    with pytest.raises(ValueError, match="cannot group by \\['rule'\\]"):
        summarize(df, by=["rule"])
    with pytest.raises(ValueError, match="must not contain 'seed'"):
        summarize(df, by=["seed"])
    with pytest.raises(ValueError, match="pass by="):
        summarize(pd.read_csv((collect(sweep_dir), sweep_dir / "results.csv")[1]))


def test_format_summary(sweep_dir):
    text = format_summary(collect(sweep_dir, write=False))
    assert "10 runs (9 done, 1 failed)" in text
    assert "0.85 ± 0.05" in text and "0.91" in text
    # a metric equal in every finished run is said once, not as a column of "123 ± 0"
    assert "same in every finished run: metric.seed = 123" in text and "123 ± 0" not in text
    failed_id = make_run_id({"device.noise": "0.1", "rule.name": "stdp"}, 2)
    assert f"{failed_id}: RuntimeError: boom" in text
