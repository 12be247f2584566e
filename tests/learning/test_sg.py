import math

import pytest
import torch

from memsnn.crossbar.coding import Encoder
from memsnn.crossbar.network import SpikingNetwork
from memsnn.experiments.datasets import load_dataset
from memsnn.learning.loop import accuracy, fit
from memsnn.learning.scheduler import SchedulerParams
from memsnn.learning.sg import DEFAULT_SCHEDULER, DigitalSG, InSituSG, InSituSGParams
from memsnn.params import ParameterError


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


def test_insitu_sg_default_sends_at_most_one_pulse_per_device_per_update():
    """The default scheduler (calibrated state-aware steps, k_max=1): a large-lr step on srtio3 would want many
    pulses per device; each device still gets at most one (refresh off: margin 0, no spread)."""
    data = load_dataset("digits", seed=0)
    sched = DEFAULT_SCHEDULER.replace(refresh_margin=0.0, refresh_spread=0.0)
    m = InSituSG(SpikingNetwork([64, 16, 10], seed=0), "srtio3", Encoder(num_steps=8),
                 params=InSituSGParams(lr=1.0), scheduler=sched)
    assert InSituSG(SpikingNetwork([4, 3], seed=0), "ideal", Encoder(num_steps=4)).schedulers[0].params == DEFAULT_SCHEDULER
    for sched_l, xbar in zip(m.schedulers, m.crossbars()):  # the calibration's pulses come before
        sched_l.calibrate(xbar)
    gen = torch.Generator().manual_seed(0)
    for i in range(3):
        before = [{k: v.clone() for k, v in x.pulse_counts().items()} for x in m.crossbars()]
        st = m.train_batch(data.x_train[32 * i:32 * (i + 1)], data.y_train[32 * i:32 * (i + 1)], gen)
        assert st.pulses > 0
        for x, b in zip(m.crossbars(), before):
            per_device = [x.pulse_counts()[k] - b[k] for k in ("plus", "minus")]
            assert max(int(d.max()) for d in per_device) == 1


def test_insitu_sg_cosine_annealing_of_the_learning_rate():
    p = InSituSGParams(lr=0.05)  # default: to a tenth over 10 epochs
    # hand-computed: 0.005 + 0.045 * 0.5 * (1 + cos(pi * e / 10))
    assert [round(p.lr_at(e), 6) for e in (0, 5, 10, 12)] == [0.05, 0.0275, 0.005, 0.005]
    assert p.lr_at(2) == pytest.approx(0.005 + 0.045 * 0.5 * (1 + math.cos(math.pi * 0.2)))
    assert InSituSGParams(lr=0.05, lr_final=None).lr_at(7) == 0.05  # constant
    assert InSituSGParams(lr=0.2, anneal_epochs=4).lr_at(2) == pytest.approx(0.2 * 0.55)
    with pytest.raises(ParameterError, match="lr_final"):
        InSituSGParams(lr_final=1.5)
    # the method follows its epochs: the same batch after annealing sends far fewer pulses
    data = load_dataset("iris", seed=0)
    enc = Encoder(num_steps=8)
    sched = SchedulerParams(quantisation="round", k_max=1000)
    runs = []
    for annealed in (False, True):
        m = InSituSG(SpikingNetwork([4, 12, 3], seed=0), "ideal", enc, scheduler=sched,
                     params=InSituSGParams(lr=0.2, lr_final=0.01, anneal_epochs=1, init_method="direct"))
        if annealed:
            m.on_epoch_end(0)
        assert m.lr == (0.002 if annealed else 0.2)
        runs.append(m.train_batch(data.x_train[:16], data.y_train[:16], torch.Generator().manual_seed(0)).pulses)
    assert runs[1] < 0.05 * runs[0] and runs[0] > 100
