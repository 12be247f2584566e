"""``memsnn hetsyn``: settings checks, a tiny study end to end with resume, the summary by hand."""

import json
import math
from dataclasses import replace

import pandas as pd
import pytest
from scipy import stats

from memsnn.experiments.cli import main
from memsnn.experiments.hetsyn import HetSynStudy, markdown, run_study, summarize

TINY = HetSynStudy(tasks=("dmts", "waveform"), seeds=(0, 1), delays=(0,), noise_rates=(0.02, 0.2), noise_delay=0,
                   hidden=8, epochs=1, batch=32, dmts_train=64, dmts_test=32, waveform_steps=30, waveform_iters=2)


def test_bad_settings_are_named_before_anything_runs(tmp_path):
    errors = replace(HetSynStudy(), tasks=("dmts", "mnist"), seeds=(0, 0), tau_min=0.2, device="nope").errors()
    text = "\n".join(errors)
    assert "tasks=['dmts', 'mnist']" in text and "seeds=[0, 0]" in text and "device='nope'" in text
    out = tmp_path / "study"
    assert main(["hetsyn", "--tasks", "dmts,speech", "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["hetsyn", "--delays", "a,b", "--out", str(out)]) == 2
    assert not out.exists()


def test_tiny_study_runs_resumes_and_refuses_other_settings(tmp_path):
    out = tmp_path / "study"
    summary = run_study(out, TINY, progress=False)
    runs = sorted((out / "runs").glob("*.json"))
    assert len(runs) == (1 + 1) * 4 * 2  # (dmts at one delay + waveform) x 4 models x 2 seeds
    for name in ("hetsyn.csv", "hetsyn_summary.csv", "hetsyn.md", "dmts_delay.png", "dmts_noise.png", "tau_distribution.png"):
        assert (out / name).is_file(), name
    rec = json.loads(runs[0].read_text())
    assert {"float", "device", "device_1d", "hidden_spike_pulses", "hidden_programming_pulses"} <= set(rec)
    dm = summary[(summary.task == "dmts")]
    assert set(dm.model) == {"lif", "layer", "neuron", "synapse"}
    assert {"float_noise_0.02_mean", "device_noise_0.2_mean"} <= set(summary.columns)
    assert dm[dm.model == "lif"]["tau_median_ms"].iloc[0] == pytest.approx(20.0)
    # resume: finished runs are kept as they are, nothing is trained again
    stamps = {p.name: p.stat().st_mtime_ns for p in runs}
    (out / "runs" / runs[0].name).unlink()  # as if killed before this run finished
    run_study(out, TINY, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in sorted((out / "runs").glob("*.json")) if p.name != runs[0].name} == \
        {k: v for k, v in stamps.items() if k != runs[0].name}
    assert (out / "runs" / runs[0].name).exists()
    with pytest.raises(ValueError, match="other settings"):
        run_study(out, replace(TINY, epochs=2), progress=False)
    other = tmp_path / "busy"
    other.mkdir()
    (other / "x.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        run_study(other, TINY, progress=False)


def test_summary_means_spreads_and_paired_gain_by_hand():
    rows = []
    acc = {"lif": [50.0, 52.0, 54.0], "synapse": [80.0, 90.0, 85.0]}
    for model, vals in acc.items():
        for seed, v in enumerate(vals):
            rows.append({"task": "dmts", "delay": 100, "model": model, "seed": seed, "float": v, "device": v - 1,
                         "tau_median_ms": 20.0})
    s = summarize(pd.DataFrame(rows)).set_index("model")
    assert s.loc["lif", "float_mean"] == pytest.approx(52.0)
    assert s.loc["lif", "float_std"] == pytest.approx(2.0)
    d = [30.0, 38.0, 31.0]  # synapse - lif per seed
    half = stats.t.ppf(0.975, 2) * pd.Series(d).std(ddof=1) / math.sqrt(3)
    assert s.loc["synapse", "float_gain_vs_lif"] == pytest.approx(33.0)
    assert s.loc["synapse", "float_gain_ci95"] == pytest.approx(half)
    md = markdown(s.reset_index())
    assert "+33.0 ± " in md and "not in reachable form" in md
