import torch

from memsnn.crossbar.coding import Encoder
from memsnn.crossbar.network import SpikingNetwork
from memsnn.experiments.datasets import load_dataset
from memsnn.learning.loop import accuracy, fit
from memsnn.learning.scheduler import SchedulerParams
from memsnn.learning.sg import DigitalSG, InSituSG, InSituSGParams


def test_insitu_sg_changes_weights_only_through_pulses():
    data = load_dataset("iris", seed=0)
    enc = Encoder(num_steps=8)
    m = InSituSG(SpikingNetwork([4, 12, 3], seed=0), "ideal", enc, params=InSituSGParams(lr=0.2, init_method="direct"))
    assert list(m.net.parameters()) == []  # no float weights an optimiser could write
    w0 = [w.clone() for w in m.net.weights()]
    pulses0 = m.counters()["pulses"]
    st = m.train_batch(data.x_train[:16], data.y_train[:16], torch.Generator().manual_seed(0))
    assert st.pulses > 0 and st.phases > 0
    assert m.counters()["pulses"] == pulses0 + st.pulses
    assert any(not torch.equal(a, b) for a, b in zip(w0, m.net.weights()))


def test_insitu_sg_learns_iris_on_the_ideal_device():
    data = load_dataset("iris", seed=0)
    enc = Encoder(num_steps=16)
    m = InSituSG(SpikingNetwork([4, 32, 3], seed=1), "ideal", enc, params=InSituSGParams(lr=0.5, init_method="direct"),
                 scheduler=SchedulerParams(quantisation="stochastic"))
    before = accuracy(m, data.x_test, data.y_test)
    hist = fit(m, data, epochs=10, batch_size=16, progress=False, num_steps=16)
    # iris's test split has 38 samples, so single epochs are noisy: judge the last three (chance 1/3)
    assert hist.test_acc.iloc[-3:].max() >= 0.8 and hist.test_acc.iloc[-1] > before + 0.2
    assert hist.pulses.is_monotonic_increasing


def test_digital_sg_method_matches_the_loop_interface():
    data = load_dataset("iris", seed=0)
    m = DigitalSG(SpikingNetwork([4, 32, 3], seed=1), Encoder(num_steps=16), lr=2e-2)
    hist = fit(m, data, epochs=10, batch_size=16, progress=False)
    assert hist.test_acc.iloc[-3:].min() >= 0.85
    assert (hist.pulses == 0).all() and m.crossbars() == []
