import pandas as pd
import pytest

from memsnn.experiments.cli import main
from memsnn.experiments.compare import CompareConfig
from memsnn.params import ParameterError


def test_compare_quick_runs_end_to_end_and_writes_its_files(tmp_path, capsys):
    args = ["compare", "--quick", "--dataset", "iris", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    (run,) = list(tmp_path.iterdir())
    for name in ("config.json", "compare.csv", "compare.md", "history.csv", "accuracy_vs_epoch.png",
                 "conductances.png"):
        assert (run / name).stat().st_size > 0, name
    table = pd.read_csv(run / "compare.csv")
    assert set(table.rule) == {"stdp", "sg", "ssdp", "csdp", "logreg"}
    assert len(table) == 9
    assert table.test_acc.between(0, 1).all()
    spiking = table[table.rule != "logreg"]
    assert spiking.acc_jitter.between(0, 1).all() and spiking.acc_after_drift.between(0, 1).all()
    insitu = table[table.device == "srtio3"]
    assert len(insitu) == 4 and (insitu.pulses > 0).all() and (insitu.energy_J > 0).all() and (insitu.phases > 0).all()
    assert (insitu.pulses_per_synapse_epoch > 0).all()
    digital = table[table.device == "digital"]
    assert (digital.pulses == 0).all() and digital.pulses_per_synapse_epoch.isna().all()
    # the logistic regression on Iris's 4 features is a strong reference
    assert table.loc[table.rule == "logreg", "test_acc"].item() > 0.85
    # conductance maps of every layer of every in-situ method
    maps = sorted(p.relative_to(run / "maps").as_posix() for p in (run / "maps").rglob("*.npz"))
    assert maps == ["SSDP_in-situ/layer0_maps.npz", "SSDP_in-situ/layer1_maps.npz",
                    "csdp-srtio3-sgd/layer0_maps.npz", "csdp-srtio3-sgd/layer1_maps.npz",
                    "stdp-srtio3/layer0_maps.npz", "surrogate-gradient_in-situ/layer0_maps.npz",
                    "surrogate-gradient_in-situ/layer1_maps.npz"]
    history = pd.read_csv(run / "history.csv")
    assert set(history.method) == set(table.method) - {"logistic regression"}
    out = capsys.readouterr().out
    assert "test_acc" in out and str(run) in out
    # a second run never overwrites the first
    assert main(args + ["--rules", "logreg"]) == 0
    assert len(list(tmp_path.iterdir())) == 2


def test_compare_rejects_bad_options_before_any_work(tmp_path, capsys):
    assert main(["compare", "--dataset", "mnist9", "--out", str(tmp_path)]) == 2
    assert "dataset='mnist9' is not allowed" in capsys.readouterr().err
    with pytest.raises(ParameterError, match="rules"):
        CompareConfig(rules=("stdp", "hebb"))
    with pytest.raises(ParameterError, match="epochs"):
        CompareConfig(epochs=0)
    assert not any(tmp_path.iterdir())  # no run directory was created


def test_compare_input_noise_adds_the_acc_noisy_column(tmp_path, capsys):
    args = ["compare", "--quick", "--dataset", "iris", "--epochs", "1", "--rules", "stdp,logreg",
            "--input-noise", "0.5", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    (run,) = list(tmp_path.iterdir())
    table = pd.read_csv(run / "compare.csv")
    assert table.acc_noisy.between(0, 1).all()
    # logistic regression sees the same feature noise: half the range as std costs it accuracy
    logreg = table[table.rule == "logreg"].iloc[0]
    assert logreg.acc_noisy < logreg.test_acc
    assert "input noise feature 0.5 (evaluation only)" in capsys.readouterr().out
    with pytest.raises(ParameterError, match="train_noise=True needs input noise"):
        CompareConfig(train_noise=True)
    assert main(["compare", "--spike-drop", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert "spike_drop=1.5 is not allowed" in capsys.readouterr().err
