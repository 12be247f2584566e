import pytest
import torch

from memsnn.crossbar.coding import Encoder
from memsnn.crossbar.network import SpikingNetwork
from memsnn.experiments.datasets import load_dataset
from memsnn.learning.bptt import TrainingDiverged, evaluate, train_bptt


def test_small_bptt_run_on_digits_learns():
    data = load_dataset("digits", seed=0)
    enc = Encoder(num_steps=10)
    net = SpikingNetwork([64, 32, 10], seed=0)
    before = evaluate(net, data.x_test, data.y_test, enc)
    hist = train_bptt(net, data, enc, epochs=3, batch_size=32, progress=False)
    assert list(hist.columns) == ["epoch", "loss", "train_acc", "seconds", "test_acc"]
    assert hist.loss.iloc[-1] < hist.loss.iloc[0]
    assert hist.test_acc.iloc[-1] > 0.75 > before + 0.3  # chance is 0.1
    # reproducible from the seed
    net2 = SpikingNetwork([64, 32, 10], seed=0)
    hist2 = train_bptt(net2, data, enc, epochs=3, batch_size=32, progress=False)
    assert hist2.test_acc.tolist() == hist.test_acc.tolist()


def test_nan_stops_training_with_a_clear_error():
    data = load_dataset("iris", seed=0)
    net = SpikingNetwork([4, 8, 3], seed=0)
    with torch.no_grad():
        net.synapses[0].weight[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="(loss|gradient) became nan at epoch 1, batch 0"):
        train_bptt(net, data, Encoder(num_steps=5), epochs=1, progress=False)


def test_bad_training_arguments():
    data = load_dataset("iris", seed=0)
    net = SpikingNetwork([4, 8, 3])
    with pytest.raises(ValueError, match="lr=-1"):
        train_bptt(net, data, Encoder(num_steps=5), lr=-1, progress=False)
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        train_bptt(net, data, Encoder(num_steps=5), optimizer="rmsprop", progress=False)
