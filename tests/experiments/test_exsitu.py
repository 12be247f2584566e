import json

import pandas as pd

from memsnn.crossbar.coding import Encoder
from memsnn.crossbar.network import SpikingNetwork
from memsnn.device_models import make_device
from memsnn.experiments.cli import main
from memsnn.experiments.datasets import load_dataset
from memsnn.learning.bptt import evaluate, train_bptt


def trained_digits_net(seed=0):
    data = load_dataset("digits", seed=seed)
    enc = Encoder(num_steps=10)
    net = SpikingNetwork([64, 32, 10], seed=seed)
    train_bptt(net, data, enc, epochs=3, batch_size=32, seed=seed, progress=False)
    return net, data, enc


def test_drift_lowers_accuracy_and_compensation_recovers_it():
    model = make_device("srtio3", drift_nu=0.15, read_noise_std=0.0, volatile_ratio=0.0)
    net, data, enc = trained_digits_net()
    xnet, _ = net.to_crossbars(model, method="direct", compensate_drift=True)
    acc = {}
    elapsed = 0.0
    for t in (0.0, 1e3, 1e6):
        xnet.advance(t - elapsed)
        elapsed = t
        for comp in (False, True):
            for syn in xnet.synapses:
                syn.compensate_drift = comp
            acc[t, comp] = evaluate(xnet, data.x_test, data.y_test, enc)
    assert acc[0.0, False] >= acc[1e3, False] - 0.02 >= acc[1e6, False] - 0.02
    assert acc[1e6, False] < acc[0.0, False] - 0.1  # drift really costs accuracy ...
    assert acc[1e6, True] > acc[1e6, False] + 0.1  # ... and compensation wins much of it back


def test_exsitu_cli_writes_a_new_run_directory(tmp_path, capsys):
    args = ["exsitu", "--dataset", "iris", "--epochs", "2", "--hidden", "8", "--steps", "8",
            "--presets", "ideal,srtio3", "--methods", "direct,open_loop", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1
    run = runs[0]
    for name in ("config.json", "history.csv", "exsitu.csv", "exsitu.md", "programming.csv", "digital.pt",
                 "accuracy_vs_time.png", "raster.png", "weights.png", "conductances_layer0.png",
                 "crossbars-srtio3-open_loop.pt"):
        assert (run / name).exists(), name
    table = pd.read_csv(run / "exsitu.csv")
    assert set(table.preset) == {"ideal", "srtio3"} and set(table.method) == {"direct", "open_loop"}
    assert sorted(table.time_s.unique()) == [0.0, 1.0, 3600.0, 86400.0, 2.592e6, 3.1536e7]
    assert table.accuracy.between(0, 1).all()
    # the ideal device holds the digital weights: its accuracy never changes with time
    ideal = table[(table.preset == "ideal") & (table.method == "direct")]
    assert ideal.accuracy.nunique() == 1
    assert json.loads((run / "config.json").read_text())["dataset"] == "iris"
    # a second run gets its own directory
    assert main(args) == 0
    assert len(list(tmp_path.iterdir())) == 2


def test_exsitu_bad_config_fails_before_work(tmp_path, capsys):
    assert main(["exsitu", "--presets", "srtio3,unobtainium", "--out", str(tmp_path)]) == 2
    assert "unobtainium" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
