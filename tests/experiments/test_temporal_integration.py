"""Temporal datasets in the rest of memsnn: the 'sequence' spike code, build_method's choice of
input code and input size, memsnn compare (--task-param) and experiment configs (task_params)."""

from __future__ import annotations

import json
import tomllib

import pandas as pd
import pytest
import torch

from memsnn.crossbar import encoders
from memsnn.crossbar.coding import Encoder
from memsnn.experiments.cli import main
from memsnn.experiments.compare import CompareConfig, load_data, temporal_note
from memsnn.experiments.config import ConfigError, ExperimentConfig, load_config
from memsnn.experiments.datasets import dataset_time_steps, load_dataset
from memsnn.experiments.methods import build_method, encoder_for
from memsnn.experiments.runner import run_experiment
from memsnn.params import ParameterError

SMALL = {"n_train": 64, "n_test": 24, "n_channels": 8, "stimulus_steps": 3, "delay": 4}  # T = 10


# ===================================================================================== encoder
def test_sequence_code_is_the_time_major_layout_with_binary_values_unchanged():
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]])  # B = 2, T = 3, C = 2
    spikes = encoders.sequence(x, 3, generator=0)
    assert spikes.shape == (3, 2, 2)
    assert spikes[:, 0].tolist() == [[1, 0], [0, 1], [1, 1]] and spikes[:, 1].tolist() == [[0, 0], [0, 0], [1, 0]]
    assert torch.equal(Encoder(kind="sequence", num_steps=3)(x, 5), spikes)  # 0/1: no draw changes them


def test_sequence_code_draws_bernoulli_spikes_for_intermediate_values():
    x = torch.full((4000, 10), 0.3)
    x[:, 1::2] = 0.8  # channel 1 at every step (time-major: column t * 2 + c)
    spikes = encoders.sequence(x, 5, generator=1)  # [5, 4000, 2]
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    assert abs(spikes[..., 0].mean().item() - 0.3) < 0.01 and abs(spikes[..., 1].mean().item() - 0.8) < 0.01
    assert torch.equal(encoders.sequence(x, 5, generator=1), spikes)


def test_sequence_code_rejects_bad_shapes_and_clamps_probabilities():
    with pytest.raises(ValueError, match=r"T = num_steps = 4 dividing the columns, got shape \(2, 6\)"):
        encoders.sequence(torch.zeros(2, 6), 4)
    with pytest.raises(ValueError, match=r"data contains NaN"):
        encoders.sequence(torch.full((2, 6), float("nan")), 3)
    x = torch.tensor([[1.5, -0.2, 1.0, 0.0]])  # a test split scaled with training statistics may leave [0, 1]
    assert encoders.sequence(x, 2, generator=0)[:, 0].tolist() == [[1, 0], [1, 0]]


def test_encoder_for_picks_the_sequence_code_and_refuses_others_on_temporal_data():
    dmts = load_dataset("dmts", task_params=SMALL)
    enc = encoder_for(dmts)
    assert enc.kind == "sequence" and enc.num_steps == 10
    assert encoder_for(dmts, Encoder(kind="sequence", num_steps=10)) == enc
    with pytest.raises(ValueError, match=r"encoder kind 'rate' with num_steps=25 cannot feed temporal dataset 'dmts' "
                                         r"\(T = 10 steps\).*kind 'sequence' and num_steps=10"):
        encoder_for(dmts, Encoder())
    with pytest.raises(ValueError, match=r"num_steps=7 cannot feed"):
        encoder_for(dmts, Encoder(kind="sequence", num_steps=7))
    iris = load_dataset("iris")
    assert encoder_for(iris) == Encoder()
    with pytest.raises(ValueError, match=r"encoder kind 'sequence' needs a temporal dataset.*'iris'"):
        encoder_for(iris, Encoder(kind="sequence", num_steps=2))


def test_build_method_feeds_channels_to_sg_and_flat_features_to_static_rules():
    data = load_dataset("dmts", task_params=SMALL)
    sg = build_method("sg", False, data, hidden=(16,))
    assert sg.net.sizes[0] == 8 and sg.encoder.kind == "sequence"
    seq_spikes = sg.encoder(data.x_train[:5], 0)
    assert torch.equal(seq_spikes, data.sequences("train")[:, :5])  # the data's own spikes, in time
    csdp = build_method("csdp", False, data, hidden=(16,))
    assert csdp.counters() == {"pulses": 0, "energy_J": 0.0}
    pred = csdp.predict(data.x_test, torch.Generator().manual_seed(0))  # the flat [T * C] vector
    assert pred.shape == (24,)


def test_dataset_time_steps_without_loading():
    assert dataset_time_steps("dmts", {"delay": 50}) == 70
    assert dataset_time_steps("spike_patterns") == 40 and dataset_time_steps("seq_fashion_mnist") == 28
    assert dataset_time_steps("digits") is None


# ===================================================================================== compare
def test_compare_quick_on_dmts_through_main(tmp_path, capsys):
    args = ["compare", "--quick", "--dataset", "dmts", "--task-param", "n_train=96", "--task-param", "n_test=36",
            "--task-param", "delay=5", "--rules", "sg,csdp,logreg", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    (run,) = list(tmp_path.iterdir())
    assert json.loads((run / "config.json").read_text())["task_params"] == {"n_train": 96, "n_test": 36, "delay": 5}
    table = pd.read_csv(run / "compare.csv")
    assert len(table) == 5 and table.test_acc.between(0, 1).all()
    history = pd.read_csv(run / "history.csv")
    assert (history.groupby("method").size() == 1).all()
    out = capsys.readouterr().out
    note = ("dataset dmts is temporal: T = 25 steps x 24 channels; sg feeds the sequence in time (encoder 'sequence', "
            "24 inputs); csdp, logreg see the flattened 600-vector as static features and do not integrate in time")
    assert note in out and note in (run / "compare.md").read_text()


def test_compare_task_param_errors_before_any_work(tmp_path, capsys):
    assert main(["compare", "--dataset", "dmts", "--task-param", "dealy=5", "--out", str(tmp_path)]) == 2
    assert "unknown parameter 'dealy'; did you mean 'delay'?" in capsys.readouterr().err
    assert main(["compare", "--dataset", "dmts", "--task-param", "delay", "--out", str(tmp_path)]) == 2
    assert "--task-param 'delay' is not KEY=VALUE" in capsys.readouterr().err
    assert main(["compare", "--dataset", "digits", "--task-param", "delay=5", "--out", str(tmp_path)]) == 2
    assert "is not used by dataset 'digits'" in capsys.readouterr().err
    assert main(["compare", "--dataset", "dmts", "--task-param", "delay=5", "--task-param", "delay=6",
                 "--out", str(tmp_path)]) == 2
    assert "'delay' given more than once" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    with pytest.raises(ParameterError, match=r"noise_rate=2 is not allowed"):
        CompareConfig(dataset="dmts", task_params={"noise_rate": 2})


def test_temporal_note_is_none_for_static_data():
    assert temporal_note(load_dataset("iris"), ("sg",)) is None
    cfg = CompareConfig(dataset="spike_patterns", task_params={"n_train": 10, "n_test": 5}, limit=6)
    data = load_data(cfg)
    assert data.x_train.shape == (6, 800) and temporal_note(data, ("stdp",)).endswith(
        "stdp sees the flattened 800-vector as static features and does not integrate in time")


# ===================================================================================== configs
def test_config_task_params_round_trip_and_dotted_overrides(tmp_path):
    cfg = ExperimentConfig.from_dict({"data": {"dataset": "dmts", "task_params": {"delay": 50.0, "noise_rate": 0.05}},
                                      "rule": {"name": "sg"}})
    assert cfg.data.task_params == {"delay": 50, "noise_rate": 0.05} and isinstance(cfg.data.task_params["delay"], int)
    text = cfg.to_toml()
    assert tomllib.loads(text)["data"]["task_params"] == {"delay": 50, "noise_rate": 0.05}
    assert ExperimentConfig.from_dict(tomllib.loads(text)) == cfg
    path = tmp_path / "dmts.toml"
    path.write_text(text)
    assert load_config(path) == cfg
    later = cfg.with_overrides({"data.task_params.delay": "80"})
    assert later.data.task_params == {"delay": 80, "noise_rate": 0.05}
    assert ExperimentConfig().data.task_params is None and "task_params" not in ExperimentConfig().to_dict()["data"]


def test_config_task_params_errors_name_dotted_keys(tmp_path, capsys):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict({"data": {"dataset": "dmts", "task_params": {"dealy": 5, "noise_rate": 3}}})
    assert err.value.errors == [
        "unknown parameter 'data.task_params.dealy'; did you mean 'delay'? (valid: n_train, n_test, n_channels, "
        "n_stimuli, pattern, pattern_fraction, stimulus_steps, delay, response_steps, stimulus_rate, noise_rate)",
        "data.task_params.noise_rate=3 is not allowed: must be a probability in [0, 1]"]
    with pytest.raises(ConfigError, match=r"data.task_params=\{'delay': 5\} is not used by dataset 'digits'"):
        ExperimentConfig.from_dict({"data": {"task_params": {"delay": 5}}})
    with pytest.raises(ConfigError, match=r"data.task_params.delay=-3 is not allowed"):
        ExperimentConfig.from_dict({"data": {"dataset": "dmts"}}).with_overrides({"data.task_params.delay": "-3"})
    with pytest.raises(ConfigError, match=r"data.dataset='digits' takes no task_params"):
        ExperimentConfig().with_overrides({"data.task_params.delay": "3"})
    with pytest.raises(ConfigError, match=r"encoder: encoder kind 'rate' with num_steps=25 cannot feed temporal "
                                          r"dataset 'dmts' \(T = 70 steps\)"):
        ExperimentConfig.from_dict({"data": {"dataset": "dmts", "task_params": {"delay": 50}},
                                    "encoder": {"kind": "rate"}})
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\ndataset = "dmts"\ntask_params = {delay = -1, pattern = "stripes"}\n')
    assert main(["config", "--check", str(bad)]) == 2
    err_text = capsys.readouterr().err
    assert "data.task_params.delay=-1 is not allowed: must be an integer >= 0" in err_text
    assert "data.task_params.pattern='stripes' is not allowed: must be one of 'groups', 'random'" in err_text
    good = tmp_path / "good.toml"
    good.write_text('[data]\ndataset = "dmts"\ntask_params = {delay = 50}\n[encoder]\nkind = "sequence"\n'
                    'num_steps = 70\n[rule]\nname = "sg"\n')
    assert main(["config", "--check", str(good)]) == 0


def test_run_experiment_on_dmts(tmp_path):
    cfg = ExperimentConfig.from_dict({"data": {"dataset": "dmts", "task_params": SMALL},
                                      "network": {"hidden": [16]}, "rule": {"name": "sg", "insitu": False},
                                      "training": {"epochs": 1}, "evaluation": {"times": [0.0]}})
    metrics = run_experiment(cfg, tmp_path / "run", progress=False)
    assert 0 <= metrics["test_acc"] <= 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_acc"] == metrics["test_acc"]
    assert load_config(tmp_path / "run" / "config.toml") == cfg


def test_exsitu_feeds_a_temporal_dataset_as_its_sequence(tmp_path):
    from memsnn.experiments.exsitu import ExSituConfig, run_exsitu

    cfg = ExSituConfig(dataset="dmts", hidden=8, epochs=1, presets=("ideal",), methods=("open_loop",), times=(0.0,))
    data = load_dataset("dmts", task_params=SMALL)
    result = run_exsitu(cfg, out_dir=tmp_path, progress=False, data=data)
    assert 0 <= result.digital_accuracy <= 1
    assert torch.load(tmp_path / "digital.pt")["sizes"] == [8, 8, 2]  # C = 8 inputs, not T * C = 80
    with pytest.raises(ParameterError, match=r"encoding='sequence' is not allowed"):
        ExSituConfig(encoding="sequence")
