import math

import pytest
import torch

from memsnn.device_models import make_device
from memsnn.experiments.datasets import Dataset
from memsnn.learning.csdp import CSDP, CSDPParams, csdp_delta_w
from memsnn.learning.loop import accuracy, fit
from memsnn.learning.scheduler import SchedulerParams
from memsnn.params import ParameterError

LOGIC_X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def test_hand_computed_dw_2x2():
    # one sample, two steps, two inputs, two outputs
    pre = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # [T=2, B=1, in=2]
    post = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    z = torch.tensor([[[1.0, 0.0]], [[0.5, 1.0]]])
    eta, r_m, lam, theta = 0.1, 0.5, 0.01, 1.0
    upd = csdp_delta_w(pre, post, z, torch.tensor([1.0]), eta=eta, r_m=r_m, lam=lam, theta=theta)
    # t=0: pre(t-1)=0 -> only depression: lam * post(0) = [1, 0] on both rows
    # t=1: goodness 0.25 + 1 = 1.25, p = sigmoid(0.25), m = (p - 1) * 2 * [0.5, 1]; pre(t-1) = [1, 0]
    p1 = 1 / (1 + math.exp(-0.25))
    m = [(p1 - 1) * 1.0, (p1 - 1) * 2.0]
    expected = torch.tensor([
        [-eta * r_m * m[0] - lam, -eta * r_m * m[1]],  # row 0: fired at t=0 -> contrastive term
        [-lam - 0.0, -lam],  # row 1: silent at t=0 -> depression of post(1) = [0, 1] and post(0)
    ])
    torch.testing.assert_close(upd.dw, expected)
    torch.testing.assert_close(upd.goodness, torch.tensor([[1.0], [1.25]]))
    torch.testing.assert_close(upd.p, torch.tensor([[0.5], [p1]]))
    assert upd.loss == pytest.approx((-math.log(0.5) - math.log(p1)) / 2)
    # a negative sample flips the sign of the contrastive term only
    neg = csdp_delta_w(pre, post, z, torch.tensor([0.0]), eta=eta, r_m=r_m, lam=lam, theta=theta)
    assert neg.dw[0, 1] == pytest.approx(-eta * r_m * p1 * 2.0)
    assert neg.dw[1, 0] == pytest.approx(-lam)


def test_pre_before_and_batch_average():
    pre = torch.zeros(1, 2, 1)
    post = torch.ones(1, 2, 1)
    z = torch.ones(1, 2, 1)
    upd = csdp_delta_w(pre, post, z, torch.tensor([1.0, 0.0]), eta=1.0, r_m=1.0, lam=0.1, theta=1.0,
                       pre_before=torch.tensor([[1.0], [1.0]]))
    # p = 0.5 for both; m = (0.5 - y) * 2 / 2 = [-0.5, 0.5] -> contrastive terms cancel; no depression
    torch.testing.assert_close(upd.dw, torch.zeros(1, 1))


def _one_step_goodness(positive: bool):
    """Goodness of one sample before and after one CSDP update on an ideal in-situ device."""
    torch.manual_seed(0)
    x = torch.rand(1, 16, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([2])
    # theta far above (positive) or below (negative) the goodness: |p - y| ~ 1, a strong push
    m = CSDP(16, 4, hidden=(24,), device=make_device("ideal", step=1e-9), program="direct", seed=1,
             num_steps=20, eta=0.05, theta=1e4 if positive else 0.0, lam=0.0,
             scheduler=SchedulerParams(quantisation="round", k_max=40))
    before = m.goodness(x, y, torch.Generator().manual_seed(7))
    st = m.csdp_step(x, y, positive, torch.Generator().manual_seed(7))
    after = m.goodness(x, y, torch.Generator().manual_seed(7))
    assert st.pulses > 0 and st.phases > 0
    return before.item(), after.item()


def test_one_update_raises_goodness_of_a_positive_sample():
    before, after = _one_step_goodness(True)
    assert after > before * 1.2


def test_one_update_lowers_goodness_of_a_negative_sample():
    before, after = _one_step_goodness(False)
    assert after < before * 0.8


def _logic(y):
    y = torch.tensor(y)
    return Dataset("logic", LOGIC_X.repeat(16, 1), y.repeat(16), LOGIC_X, y, classes=["0", "1"])


@pytest.mark.parametrize("device,table", [("ideal", [0, 0, 0, 1]), ("srtio3", [0, 1, 1, 1])])
def test_learns_logic_tables_in_situ(device, table):
    """AND on an ideal device with 100 levels (one pulse = 0.01 weight), OR on srtio3."""
    if device == "ideal":
        device = make_device("ideal", step=1e-9)
    m = CSDP(2, 2, hidden=(16,), device=device, program="direct", seed=0, num_steps=20, complement=True)
    hist = fit(m, _logic(table), epochs=6, batch_size=8, progress=False)
    assert hist.pulses.iloc[-1] > 0 and hist.phases.sum() > 0
    assert (hist.energy_J.iloc[-1] > 0) == (device == "srtio3")  # the ideal device costs no energy
    # 25 fresh (stochastically encoded) presentations of each row of the truth table
    assert accuracy(m, LOGIC_X.repeat(25, 1), torch.tensor(table).repeat(25), seed=5) >= 0.95


def test_float_optimisers_and_step_updates_run():
    x = torch.rand(6, 5, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    for kw in (dict(optimizer="sgd"), dict(optimizer="adam"), dict(optimizer="sign"),
               dict(optimizer="sgd", negatives="mix"), dict(optimizer="sgd", readout="goodness"),
               dict(optimizer="sgd", update_every="step", hidden=(8, 6))):
        m = CSDP(5, 3, **{"hidden": (8,), "num_steps": 8, "seed": 0, **kw})
        w0 = m.weights()
        st = m.train_batch(x, y, torch.Generator().manual_seed(1))
        assert math.isfinite(st.loss) and st.pulses == 0
        assert any(not torch.equal(a, b) for a, b in zip(w0, m.weights())), kw
        assert all(float(w.abs().max()) <= 1.0 for w in m.weights())
        assert m.predict(x, torch.Generator()).shape == (6,)


def test_step_updates_in_situ_one_phase_per_step_and_layer():
    m = CSDP(5, 3, hidden=(8,), device="ideal", program="direct", num_steps=6, update_every="step",
             readout="goodness")
    x = torch.rand(4, 5, generator=torch.Generator().manual_seed(3))
    st = m.train_batch(x, torch.tensor([0, 1, 2, 0]), torch.Generator().manual_seed(0))
    # one update per step (one layer, no readout), each with pulses: at least one phase per step
    assert m.schedulers[0].updates == 6 and st.phases >= 6
    assert len(m.crossbars()) == 1 and st.seen == 0


def test_supervised_negatives_have_wrong_labels_and_mix_negatives_mix():
    m = CSDP(4, 5, hidden=(3,), num_steps=2)
    x, y = torch.rand(50, 4), torch.randint(0, 5, (50,))
    xn, yn = m.negatives(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(xn, x) and bool((yn != y).all()) and int(yn.max()) < 5
    m = CSDP(4, 5, hidden=(3,), num_steps=2, negatives="mix")
    xn, yn = m.negatives(x, y, torch.Generator().manual_seed(0))
    assert yn is None and not torch.equal(xn, x)
    # every feature comes from the sample itself or from one other sample of the batch (a rolled copy)
    assert any(bool(((xn == x) | (xn == x.roll(s, 0))).all()) for s in range(1, 50))


@pytest.mark.parametrize("field,value", [("num_steps", 0), ("theta", -1.0), ("eta", 0.0), ("lam", -1e-3),
                                         ("negatives", "shuffle"), ("w_init", 1.5), ("tau_trace", 0.0),
                                         ("context_copies", 0), ("update_every", "epoch")])
def test_bad_parameters_name_the_field(field, value):
    with pytest.raises(ParameterError, match=field):
        CSDPParams(**{field: value})
    with pytest.raises(ParameterError, match=field):
        CSDP(4, 2, **{field: value})


def test_bad_construction_arguments():
    with pytest.raises(ParameterError, match="readout"):
        CSDPParams(readout="goodness", negatives="mix")
    with pytest.raises(ValueError, match="adam"):
        CSDP(4, 2, device="ideal", optimizer="adam")
    with pytest.raises(ValueError, match="optimizer"):
        CSDP(4, 2, optimizer="rmsprop")
    with pytest.raises(ValueError, match="hidden"):
        CSDP(4, 2, hidden=())
    with pytest.raises(ValueError, match="n_classes"):
        CSDP(4, 1)
    with pytest.raises(ParameterError, match="unknown parameter"):
        CSDP(4, 2, etaa=0.1)
    m = CSDP(4, 2, hidden=(3,), num_steps=2)
    with pytest.raises(ValueError, match="x must be"):
        m.train_batch(torch.rand(3, 5), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="labels in 0..1"):
        m.train_batch(torch.rand(3, 4), torch.tensor([0, 1, 2]))
