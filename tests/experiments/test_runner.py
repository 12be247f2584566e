"""run_experiment: one tiny run writes every file; refuses to write into a used directory."""

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

from memsnn.experiments.config import ExperimentConfig, load_config
from memsnn.experiments.runner import run_experiment
from memsnn.files import FileExistsRefusal

torch.set_num_threads(1)

TINY = {"data.limit": 60, "training.epochs": 1, "training.batch_size": 20, "rule.params.num_steps": 8,
        "rule.params.neurons_per_class": 1, "evaluation.times": "0,60", "evaluation.jitter": "1,2",
        "name": "tiny"}


def _evaluate_keys(cfg):
    keys = {"test_acc", "pulses", "energy_J", "pulses_per_synapse_per_epoch"}
    keys |= {f"acc_at_{t:g}s" for t in cfg.evaluation.times}
    keys |= {f"acc_jitter_{s:g}" for s in cfg.evaluation.jitter}
    return keys


@pytest.fixture(scope="module")
def insitu_run(tmp_path_factory):
    cfg = ExperimentConfig().with_overrides(TINY)
    out = tmp_path_factory.mktemp("runs") / "insitu"
    metrics = run_experiment(cfg, out)
    return cfg, out, metrics


def test_a_tiny_insitu_run_writes_every_file(insitu_run):
    cfg, out, metrics = insitu_run
    for name in ("config.toml", "metrics.json", "history.csv", "accuracy_vs_epoch.png", "pulse_summary.csv",
                 "environment.json", "maps/layer0_maps.npz", "maps/layer0_tile0_0.png",
                 "maps/conductance_histograms.png"):
        assert (out / name).stat().st_size > 0, name
    assert load_config(out / "config.toml") == cfg
    history = pd.read_csv(out / "history.csv")
    assert list(history.epoch) == [1]
    assert {"loss", "train_acc", "test_acc", "pulses", "energy_J", "phases", "seconds"} <= set(history.columns)
    maps = np.load(out / "maps" / "layer0_maps.npz")
    assert maps["t0_0_g_plus"].shape == maps["t0_0_weight"].shape == (128, 10) and (maps["t0_0_g_plus"] >= 0).all()
    assert maps["t0_0_g_plus"].max() > 0  # conductances in siemens (right after training a device
    # whose long-term value sits at g_min can read 0: its volatile part after RESETs is negative)


def test_metrics_hold_the_evaluate_keys_and_the_run_description(insitu_run):
    cfg, out, metrics = insitu_run
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics  # finite values: the file holds exactly what was returned
    assert _evaluate_keys(cfg) <= set(metrics)
    assert metrics["rule"] == "stdp" and metrics["insitu"] is True and metrics["device"] == "srtio3"
    assert metrics["dataset"] == "digits" and metrics["seed"] == 0 and metrics["epochs"] == 1
    assert metrics["name"] == "tiny" and metrics["n_train"] == 60 and metrics["n_test"] == 10
    assert metrics["wall_s"] > 0 and metrics["phases"] > 0 and metrics["pulses"] > 0
    for key in _evaluate_keys(cfg) - {"pulses", "energy_J", "pulses_per_synapse_per_epoch"}:
        assert 0 <= metrics[key] <= 1, key
    assert metrics["acc_at_0s"] == metrics["test_acc"]
    assert metrics["energy_J"] == pytest.approx(metrics["pulses"] * 1e-12)  # 1 pJ per srtio3 pulse at 1 V, 1 us


def test_pulse_summary_adds_up_to_the_metrics(insitu_run):
    cfg, out, metrics = insitu_run
    table = pd.read_csv(out / "pulse_summary.csv")
    assert list(table.layer) == ["layer0", "total"]
    layer, total = table.iloc[0], table.iloc[1]
    assert total.pulses == metrics["pulses"] == layer.set_pulses + layer.reset_pulses
    assert total.energy_J == pytest.approx(metrics["energy_J"])
    assert total.phases == metrics["phases"]
    # STDP in-situ on [0, 1] weights: one device per weight (128 ON/OFF inputs x 10 outputs) plus
    # one reference device per row
    assert (layer.rows, layer.cols, layer.devices) == (128, 10, 128 * 10 + 128)
    assert layer.pulses_per_device == pytest.approx(layer.pulses / layer.devices)
    env = json.loads((out / "environment.json").read_text())
    assert env["seed"] == 0 and env["torch"] == torch.__version__ and env["memsnn"]
    assert env["start"] <= env["end"]


def test_a_float_run_has_no_maps_and_nan_becomes_null(tmp_path):
    cfg = ExperimentConfig().with_overrides({**TINY, "rule.insitu": False})
    metrics = run_experiment(cfg, tmp_path / "float")
    files = sorted(p.relative_to(tmp_path / "float").as_posix() for p in (tmp_path / "float").rglob("*"))
    assert files == ["accuracy_vs_epoch.png", "config.toml", "environment.json", "history.csv", "metrics.json"]
    assert metrics["device"] == "digital" and metrics["pulses"] == 0 and metrics["phases"] == 0
    assert np.isnan(metrics["pulses_per_synapse_per_epoch"])
    on_disk = json.loads((tmp_path / "float" / "metrics.json").read_text())
    assert on_disk["pulses_per_synapse_per_epoch"] is None
    assert _evaluate_keys(cfg) <= set(on_disk)


def test_refuses_a_non_empty_or_file_out_dir_before_any_work(tmp_path):
    cfg = ExperimentConfig()  # the full default run: a refusal must come before it starts
    used = tmp_path / "used"
    used.mkdir()
    (used / "metrics.json").write_text("{}")
    t0 = time.perf_counter()
    with pytest.raises(FileExistsRefusal, match="not empty"):
        run_experiment(cfg, used)
    with pytest.raises(FileExistsRefusal, match="not a directory"):
        run_experiment(cfg, used / "metrics.json")
    assert time.perf_counter() - t0 < 5.0  # the default run itself takes over a minute
    assert sorted(p.name for p in used.iterdir()) == ["metrics.json"]
    with pytest.raises(TypeError, match="ExperimentConfig"):
        run_experiment({"seed": 0}, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_an_empty_existing_directory_is_accepted(tmp_path, insitu_run):
    cfg = ExperimentConfig().with_overrides({**TINY, "rule.insitu": False, "seed": 1})
    (tmp_path / "empty").mkdir()
    metrics = run_experiment(cfg, tmp_path / "empty")
    assert metrics["seed"] == 1 and (tmp_path / "empty" / "metrics.json").exists()
