"""The experiment subcommands end to end through ``memsnn.experiments.cli.main``: config, run,
sweep, results and report on a tiny STDP experiment (a few seconds per run)."""

import json

import pandas as pd

from memsnn.experiments.cli import main
from memsnn.experiments.config import load_config

TINY = ["--set", "data.limit=60", "--set", "training.epochs=1", "--set", "rule.params.num_steps=8",
        "--set", "evaluation.times=0,60"]


def test_config_run_sweep_results_report(tmp_path, capsys):
    cfg_path = tmp_path / "exp.toml"
    assert main(["config", "--example", "--out", str(cfg_path)]) == 0
    assert main(["config", "--example", "--out", str(cfg_path)]) == 2  # never overwritten silently
    assert "exists" in capsys.readouterr().err
    assert main(["config", "--check", str(cfg_path)]) == 0

    # one run into a new directory, with overrides from the command line
    assert main(["run", str(cfg_path), "--out", str(tmp_path / "runs"), "--quiet", *TINY]) == 0
    (run,) = list((tmp_path / "runs").iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["test_acc"] <= 1 and "acc_at_60s" in metrics and metrics["pulses"] > 0
    assert load_config(run / "config.toml").data.limit == 60

    # a 2 x 1 sweep with 1 seed, then its summary and report
    sweep = tmp_path / "sweep"
    args = ["sweep", str(cfg_path), "--grid", "device.read_noise_std=0,0.05", "--seeds", "0", "--workers", "1",
            "--out", str(sweep), "--quiet", *TINY]
    assert main(args) == 0
    table = pd.read_csv(sweep / "results.csv")
    assert sorted(table["device.read_noise_std"]) == [0.0, 0.05] and (table.status == "done").all()
    capsys.readouterr()
    assert main(args) == 0  # restarted: nothing is run again
    assert "skipped" in capsys.readouterr().out
    assert main(["results", str(sweep)]) == 0
    assert "test_acc" in capsys.readouterr().out
    assert main(["report", str(sweep), "--format", "md"]) == 0
    assert (sweep / "report.md").stat().st_size > 0
    assert main(["report", str(sweep), "--format", "md"]) == 2  # refuses to overwrite


def test_bad_experiment_input_is_reported_before_any_work(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[device]\npreset = "srtio3"\nread_noise = 0.1\n[training]\nepochs = 0\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "device.read_noise" in err and "did you mean" in err and "training.epochs=0" in err
    assert not (tmp_path / "runs").exists()
    good = tmp_path / "good.toml"
    assert main(["config", "--example", "--out", str(good)]) == 0
    assert main(["sweep", str(good), "--grid", "device.read_noise_std=0,-1", "--out", str(tmp_path / "s")]) == 2
    assert "read_noise_std" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert main(["sweep", str(good), "--seeds", "0,x", "--out", str(tmp_path / "s")]) == 2
    assert "--seeds" in capsys.readouterr().err
