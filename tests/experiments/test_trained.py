"""Trained crossbars kept in every in-situ run directory; memsnn evaluate reloads them exactly."""

import json

import numpy as np
import pandas as pd
import pytest

from memsnn.crossbar.storage import load_crossbars
from memsnn.experiments.cli import main
from memsnn.experiments.config import ExperimentConfig
from memsnn.experiments.runner import build_from_config, run_experiment
from memsnn.experiments.trained import evaluate_run, save_trained
from memsnn.files import FileExistsRefusal
from memsnn.learning.loop import fit


def test_compare_keeps_trained_crossbars_and_evaluate_reproduces_its_table(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["compare", "--quick", "--dataset", "iris", "--epochs", "1", "--rules", "stdp,sg,csdp",
                 "--out", str(out), "--quiet"]) == 0
    (run,) = list(out.iterdir())
    table = pd.read_csv(run / "compare.csv")
    insitu = table[table.device == "srtio3"]
    # the run's own times and jitter: every number equals the recorded one, bit for bit
    got = evaluate_run(run, times=(0.0, 86400.0), jitter=(2.0,))
    assert list(got.method) == list(insitu.method)
    for (_, g), (_, r) in zip(got.iterrows(), insitu.iterrows()):
        assert g.test_acc == r.test_acc == g.recorded_test_acc
        assert g["acc_jitter_2"] == r.acc_jitter
        assert g["acc_at_86400s"] == r.acc_after_drift
    # export-maps reads the kept crossbars, also a year later; drift lowers the conductances
    capsys.readouterr()
    assert main(["export-maps", str(run), "--at", "3e7", "--format", "npz", "--out", str(tmp_path / "m")]) == 0
    assert "5 crossbar(s)" in capsys.readouterr().out  # stdp 1 layer, sg 2, csdp 2 (layer + readout)
    maps = np.load(next((tmp_path / "m").glob("stdp-srtio3.layer0*npz")))
    meta = json.loads(str(maps["header"]))["meta"]
    xbar = load_crossbars(run / "trained" / "stdp-srtio3.pt")["layer0"]
    assert meta["time_s"] == pytest.approx(xbar.time + 3e7)
    g_later = maps["t0_0_g_plus"]
    g_now = xbar.conductances()[0].numpy()
    assert g_later.shape == g_now.shape and g_later.sum() < g_now.sum()  # drift lowers them
    # the CLI
    assert main(["evaluate", str(run), "--at", "3600", "--out", str(tmp_path / "e.csv")]) == 0
    text = capsys.readouterr().out
    assert "acc_at_3600s" in text and "equals the run's recorded test accuracy" in text
    assert main(["evaluate", str(run), "--out", str(tmp_path / "e.csv")]) == 2  # never overwritten
    assert "already exists" in capsys.readouterr().err


def test_run_directory_keeps_trained_state_and_evaluate_matches_metrics(tmp_path):
    cfg = ExperimentConfig.from_dict({
        "seed": 3, "data": {"dataset": "iris"}, "rule": {"name": "sg", "insitu": True},
        "network": {"hidden": [12]}, "encoder": {"num_steps": 8}, "training": {"epochs": 1},
        "evaluation": {"times": [0, 3600, 86400], "jitter": [1.0]},
        "device": {"read_noise_std": 0.02}})  # reads draw noise: exactness needs the generators back
    run = tmp_path / "run"
    metrics = run_experiment(cfg, run)
    assert (run / "trained" / "crossbars.pt").is_file() and (run / "trained" / "crossbars.state.pt").is_file()
    got = evaluate_run(run, times=(0.0, 3600.0, 86400.0), jitter=(1.0,)).iloc[0]
    assert got.test_acc == metrics["test_acc"]
    for key in ("acc_jitter_1", "acc_at_3600s", "acc_at_86400s"):
        assert got[key] == metrics[key], key
    # other times: t = 0 still equals the recorded accuracy
    assert evaluate_run(run, times=(1e6,)).iloc[0].test_acc == metrics["test_acc"]
    # saving again into the same place is refused
    data, method = build_from_config(cfg)
    fit(method, data, epochs=1, progress=False)
    with pytest.raises(FileExistsRefusal):
        save_trained(method, run / "trained")


def test_evaluate_refuses_what_it_cannot_reload(tmp_path, capsys):
    cfg = ExperimentConfig.from_dict({"data": {"dataset": "iris"}, "rule": {"name": "stdp", "insitu": False},
                                      "training": {"epochs": 1}})
    run = tmp_path / "float"
    run_experiment(cfg, run)
    assert not (run / "trained").exists()
    assert main(["evaluate", str(run)]) == 2
    assert "no in-situ method" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "neither a run directory" in capsys.readouterr().err
    # a state that does not fit the rebuilt method is named
    cfg = cfg.with_overrides({"rule.insitu": "true"})
    run = tmp_path / "insitu"
    run_experiment(cfg, run)
    (run / "trained" / "crossbars.state.pt").write_text("not torch")
    assert main(["evaluate", str(run)]) == 2
    assert "crossbars.state.pt is not a saved memsnn method state" in capsys.readouterr().err
