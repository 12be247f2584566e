import functools
import math

import pytest
import torch

from memsnn.crossbar.coding import Encoder
from memsnn.crossbar.network import SpikingNetwork
from memsnn.experiments.datasets import load_dataset
from memsnn.learning.loop import fit
from memsnn.learning.scheduler import SchedulerParams
from memsnn.learning.sg import DigitalSG, InSituSG, InSituSGParams
from memsnn.learning.ssdp import (DigitalSSDP, DopamineGate, InSituSSDP, SSDPParams, SSDPStepStats, ssdp_kernel,
                                  ssdp_phases, synchrony)
from memsnn.params import ParameterError



@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids contention on shared cores (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


E = math.exp
T = 4  # window of the hand-computed example; T = silent
A_P, A_B = 0.2, 0.1  # amplitudes of the hand-computed example, sigma = 1 step

# two samples, 2 inputs x 3 outputs; first-spike steps, 4 = silent
PRE = torch.tensor([[0.0, 4.0], [2.0, 1.0]], dtype=torch.float64)
POST = torch.tensor([[1.0, 0.0, 4.0], [4.0, 1.0, 3.0]], dtype=torch.float64)
# per-sample terms A_P*S*G - A_B*(1-S)*G, rows = inputs, cols = outputs, G = exp(-(t_j - t_i)^2 / 2)
SAMPLE0 = [[A_P * E(-0.5), A_P, -A_B * E(-8)],          # input 0 fired at 0: outputs at 1, 0, silent
           [-A_B * E(-4.5), -A_B * E(-8), -A_B]]         # input 1 silent: outputs at 1, 0, silent (silent pair)
SAMPLE1 = [[-A_B * E(-2), A_P * E(-0.5), A_P * E(-0.5)],  # input 0 at 2: outputs silent, 1, 3
           [-A_B * E(-4.5), A_P, A_P * E(-2)]]            # input 1 at 1: outputs silent, 1, 3


def test_kernel_matches_hand_computed_2x3_example():
    dw = ssdp_kernel(PRE, POST, T, A_P, A_B, 1.0, "depress")
    expected = (torch.tensor(SAMPLE0, dtype=torch.float64) + torch.tensor(SAMPLE1, dtype=torch.float64)) / 2
    assert dw.shape == (2, 3)  # [n_in, n_out]
    torch.testing.assert_close(dw, expected, rtol=1e-12, atol=1e-15)
    # batch of one, both silent-pair options: only the (silent input, silent output) entry differs
    one = ssdp_kernel(PRE[:1], POST[:1], T, A_P, A_B, 1.0, "depress")
    torch.testing.assert_close(one, torch.tensor(SAMPLE0, dtype=torch.float64), rtol=1e-12, atol=1e-15)
    none = ssdp_kernel(PRE[:1], POST[:1], T, A_P, A_B, 1.0, "none")
    assert none[1, 2] == 0.0 and one[1, 2] == pytest.approx(-A_B)
    mask = torch.ones(2, 3, dtype=torch.bool)
    mask[1, 2] = False
    torch.testing.assert_close(none[mask], one[mask])
    # a pair with one silent neuron is still depressed with silent_pairs="none"
    assert none[0, 2] == pytest.approx(-A_B * E(-8)) and none[1, 0] == pytest.approx(-A_B * E(-4.5))


def test_kernel_gate_weights_samples_and_clamp_bounds_the_change():
    gated = ssdp_kernel(PRE, POST, T, A_P, A_B, 1.0, "depress", gate=torch.tensor([2.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(gated, torch.tensor(SAMPLE0, dtype=torch.float64), rtol=1e-12, atol=1e-15)
    big = ssdp_kernel(PRE, POST, T, 50.0, 40.0, 1.0, "depress", clamp=1.0)
    assert big.max() == 1.0 and big.min() == -1.0
    assert big[0, 1] == 1.0 and big[1, 2] == -1.0  # 50 * mean(1, e^-0.5) > 1; -40 * mean(1, e^-4.5) < -1


def test_kernel_and_phases_equal_the_direct_formula_on_random_spikes():
    g = torch.Generator().manual_seed(3)
    B, n_in, n_out, steps, sigma = 6, 9, 5, 7, 1.7
    pre = torch.randint(0, steps + 1, (B, n_in), generator=g).double()
    post = torch.randint(0, steps + 1, (B, n_out), generator=g).double()
    gate = 2 * torch.rand(B, generator=g, dtype=torch.float64)
    S = ((pre < steps)[:, :, None] & (post < steps)[:, None, :]).double()
    G = torch.exp(-(post[:, None, :] - pre[:, :, None]) ** 2 / (2 * sigma**2))
    both_silent = ((pre == steps)[:, :, None] & (post == steps)[:, None, :])
    for silent, keep in (("depress", 1.0), ("none", (~both_silent).double())):
        ref = (gate[:, None, None] * (3e-3 * S * G - 1e-3 * (1 - S) * G) * keep).mean(0)
        dw = ssdp_kernel(pre, post, steps, 3e-3, 1e-3, sigma, silent, gate)
        torch.testing.assert_close(dw, ref, rtol=1e-10, atol=1e-15)
        rows, cols = ssdp_phases(pre, post, steps, 3e-3, 1e-3, sigma, silent, gate)
        assert set(rows.unique().tolist()) <= {0.0, 1.0} and rows.shape[1] == n_in and cols.shape[1] == n_out
        assert len(rows) == sum(len(pre[b].unique()) for b in range(B))  # one phase per (sample, input step)
        torch.testing.assert_close(rows.t() @ cols, ref, rtol=1e-10, atol=1e-15)
    # synchrony = fraction of co-active pairs per sample
    torch.testing.assert_close(synchrony(pre, post, steps), S.mean((1, 2)))
    torch.testing.assert_close(synchrony(PRE, POST, T), torch.tensor([1 / 2 * 2 / 3, 1.0 * 2 / 3], dtype=torch.float64))


def test_dopamine_gate_is_one_for_uncorrelated_data():
    g = torch.Generator().manual_seed(0)
    gate = DopamineGate(warmup_batches=2)
    assert torch.equal(gate(torch.rand(5, generator=g)), torch.ones(5))  # before fit: plain SSDP
    for _ in range(50):  # synchrony and loss drawn independently
        gate.record(torch.rand(100, generator=g), torch.rand(100, generator=g))
    assert gate.ready
    k = gate.fit()
    assert abs(k) < 0.06  # |corr| of 5000 independent samples is ~0.014
    s = torch.linspace(0, 1, 11)
    assert (gate(s) - 1).abs().max() < 0.12  # within 1.7 std of the mean: |1 - gate| <= 1.7 |k|
    # a constant loss carries no correlation at all: the gate is exactly 1
    flat = DopamineGate(warmup_batches=1)
    flat.record(torch.rand(64, generator=g), torch.full((64,), 2.3))
    assert flat.fit() == 0.0 and torch.equal(flat(s), torch.ones(11))


def test_dopamine_gate_damps_high_synchrony_when_synchrony_goes_with_high_loss():
    g = torch.Generator().manual_seed(1)
    s = torch.rand(400, generator=g)
    gate = DopamineGate(warmup_batches=4)
    for part in s.split(100):  # loss rises with synchrony (positively correlated), plus noise
        gate.record(part, 1.0 + 2.0 * part + 0.3 * torch.randn(len(part), generator=g))
    k = gate.fit()
    assert -1.0 <= k < -0.8  # k = -corr
    high, low = torch.tensor([gate.mean + gate.std, gate.mean + 3 * gate.std]), torch.tensor([gate.mean - gate.std])
    assert (gate(high) < 1).all() and (gate(low) > 1).all()
    assert gate(high)[0] == pytest.approx(1 + k, abs=1e-6)  # one std above the mean: 1 + k
    assert gate(torch.tensor([gate.mean + 100 * gate.std])).item() == 0.0  # clamped to [0, 2]
    # the opposite correlation flips the sign: high synchrony with low loss is boosted
    anti = DopamineGate(warmup_batches=1)
    anti.record(s, 3.0 - 2.0 * s)
    assert anti.fit() == pytest.approx(1.0) and (anti(high) > 1).all() and anti(torch.tensor([1e6])).item() == 2.0
    gate.record(s, s)  # ignored once fitted
    assert gate.k == k


@functools.lru_cache(maxsize=1)
def _samples():
    """Digits-shaped samples (64 features in [0, 1], 10 classes), without the dataset load."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 64, generator=g) ** 2
    return x, torch.randint(0, 10, (128,), generator=g)


def _digits(n=64):
    x, y = _samples()
    return x[:n], y[:n]


def test_float_ssdp_changes_the_chosen_layer_by_exactly_the_kernel():
    x, y = _digits(32)
    enc = Encoder(num_steps=10)
    params = SSDPParams(A_plus=1e-2, A_base=3e-3, sigma=1.5)
    sg = DigitalSG(SpikingNetwork([64, 20, 10], seed=4), enc, lr=1e-3)
    ss = DigitalSSDP(SpikingNetwork([64, 20, 10], seed=4), enc, lr=1e-3, ssdp=params)
    assert ss.name == "SSDP digital"
    # the spikes of the step's forward pass, from the same encoder draw and the same initial weights
    rec = SpikingNetwork([64, 20, 10], seed=4)(enc(x, torch.Generator().manual_seed(7)), record=True).records[-1]
    expected = ssdp_kernel(rec.first_spike_times("pre"), rec.first_spike_times("post"), 10, 1e-2, 3e-3, 1.5)
    assert expected.abs().max() > 1e-3
    st_sg = sg.train_batch(x, y, torch.Generator().manual_seed(7))
    st_ss = ss.train_batch(x, y, torch.Generator().manual_seed(7))
    assert isinstance(st_ss, SSDPStepStats) and st_ss.loss == st_sg.loss and st_ss.ssdp_pulses == 0
    w_sg, w_ss = sg.net.weights(), ss.net.weights()
    torch.testing.assert_close(w_ss[0], w_sg[0], rtol=0, atol=0)  # first layer: gradient step only
    torch.testing.assert_close(w_ss[1] - w_sg[1], expected.float(), rtol=1e-4, atol=2e-7)
    # the hooks are gone after the step
    assert not ss.net._forward_hooks and not ss.net._forward_pre_hooks
    assert not any(s._forward_pre_hooks for s in ss.net.synapses)


def test_start_epoch_and_cosine_annealing_scale_the_amplitudes():
    p = SSDPParams(start_epoch=1, anneal_epochs=4)
    assert [p.amplitude_factor(e) for e in range(6)] == pytest.approx([0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5,
                                                                       0.5 * (1 + math.cos(3 * math.pi / 4)), 0, 0])
    x, y = _digits(16)
    enc = Encoder(num_steps=8)
    sg = DigitalSG(SpikingNetwork([64, 16, 10], seed=2), enc, lr=1e-3)
    ss = DigitalSSDP(SpikingNetwork([64, 16, 10], seed=2), enc, lr=1e-3,
                     ssdp=SSDPParams(A_plus=1e-2, A_base=1e-2, start_epoch=1))
    sg.train_batch(x, y, torch.Generator().manual_seed(0))
    ss.train_batch(x, y, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(sg.net.weights(), ss.net.weights()))  # epoch 0: no SSDP yet
    sg.on_epoch_end(1)
    ss.on_epoch_end(1)
    sg.train_batch(x, y, torch.Generator().manual_seed(1))
    ss.train_batch(x, y, torch.Generator().manual_seed(1))
    assert not torch.equal(sg.net.weights()[1], ss.net.weights()[1])


def test_da_ssdp_records_a_warmup_then_gates_each_layer():
    x, y = _digits(64)
    m = DigitalSSDP(SpikingNetwork([64, 24, 16, 10], seed=1), Encoder(num_steps=8), lr=1e-3,
                    ssdp=SSDPParams(gate="dopamine", warmup_batches=3, layers=(1, -1)))
    assert m.name == "DA-SSDP digital" and sorted(m.ssdp.gates) == [1, 2]
    gen = torch.Generator().manual_seed(0)
    for i in range(3):
        assert not m.ssdp.gates[2].fitted
        m.train_batch(x[16 * i:16 * (i + 1)], y[16 * i:16 * (i + 1)], gen)
    assert all(g.fitted and -1 <= g.k <= 1 for g in m.ssdp.gates.values())
    w0 = [w.clone() for w in m.net.weights()]  # weights() are views of the float weights
    m.train_batch(x[48:], y[48:], gen)
    assert not torch.equal(w0[2], m.net.weights()[2])


def _insitu(seed, ssdp, sizes=(64, 10), lr=1e-12, model="ideal", **kw):
    kw.setdefault("scheduler", SchedulerParams())  # nominal steps, k_max 8: kernels of up to ~2 pulses
    return InSituSSDP(SpikingNetwork(list(sizes), seed=5), model, Encoder(num_steps=8), ssdp=ssdp, seed=seed,
                      params=InSituSGParams(lr=lr, init_method="direct"), **kw)


@pytest.mark.parametrize("form", ["dense", "coincidence"])
def test_insitu_ssdp_on_the_ideal_device_applies_the_kernel_in_expectation(form):
    x, y = _digits(6)
    ssdp = SSDPParams(A_plus=2e-3, A_base=1e-3, sigma=1.0, insitu=form)
    rec = SpikingNetwork([64, 10], seed=5)(Encoder(num_steps=8)(x, torch.Generator().manual_seed(9)), record=True).records[-1]
    expected = ssdp_kernel(rec.first_spike_times("pre"), rec.first_spike_times("post"), 8, 2e-3, 1e-3, 1.0)
    runs, changes, ssdp_pulses = 40, [], 0
    for r in range(runs):
        m = _insitu(r, ssdp)
        xbar = m.net.synapses[-1].crossbar
        step = float(m.schedulers[-1].pulse_step(xbar, "plus", +1))
        w0 = xbar.weights().clone()
        st = m.train_batch(x, y, torch.Generator().manual_seed(9))
        assert st.pulses - st.ssdp_pulses == 0  # the (tiny-lr) gradient step sent no pulse
        ssdp_pulses += st.ssdp_pulses
        assert m.counters()["ssdp_pulses"] == st.ssdp_pulses and m.counters()["sg_pulses"] == 0
        changes.append((xbar.weights() - w0).double() / step)
    exp_pulses = expected / step
    assert exp_pulses.abs().max() > 1.5 and (exp_pulses < -0.1).any()  # a test with something to find
    mean = torch.stack(changes).mean(0)
    tol = 0.4 if form == "dense" else 1.0  # 5 sd of a mean of 40 Bernoulli (sums)
    assert (mean - exp_pulses).abs().max() < tol
    assert abs(float((mean - exp_pulses).sum())) < 0.05 * float(exp_pulses.abs().sum()) + 2.0
    assert ssdp_pulses > 0
    if form == "dense":  # each run is the kernel rounded to whole pulses
        assert all(((c - exp_pulses).abs() < 1 + 1e-6).all() for c in changes)


def test_insitu_ssdp_pulses_stay_a_small_fraction_of_the_gradient_pulses():
    x, y = _digits(96)
    m = _insitu(0, SSDPParams(), sizes=(64, 24, 10), lr=0.05, model="srtio3")
    gen = torch.Generator().manual_seed(0)
    for i in range(3):
        st = m.train_batch(x[32 * i:32 * (i + 1)], y[32 * i:32 * (i + 1)], gen)
        assert st.pulses > st.ssdp_pulses >= 0 and st.phases >= st.ssdp_phases
    c = m.counters()
    assert c["sg_pulses"] > 0 and c["ssdp_pulses"] <= 0.2 * c["sg_pulses"]
    assert c["pulses"] >= c["sg_pulses"] + c["ssdp_pulses"]  # crossbar total also holds the programming


def test_insitu_ssdp_history_has_separate_pulse_counts():
    data = load_dataset("iris", seed=0)
    m = InSituSSDP(SpikingNetwork([4, 8, 3], seed=0), "ideal", Encoder(num_steps=8), seed=0,
                   params=InSituSGParams(lr=0.2, init_method="direct"), ssdp=SSDPParams(A_plus=1e-2, A_base=5e-3))
    hist = fit(m, data, epochs=2, batch_size=32, progress=False, num_steps=8)
    assert {"sg_pulses", "ssdp_pulses", "ssdp_energy_J", "ssdp_phases"} <= set(hist.columns)
    assert hist.ssdp_pulses.iloc[-1] > 0 and hist.ssdp_pulses.is_monotonic_increasing
    assert (hist.sg_pulses + hist.ssdp_pulses <= hist.pulses).all()


@pytest.mark.parametrize("field, value", [
    ("A_plus", -1e-4), ("A_base", float("nan")), ("sigma", 0.0), ("silent_pairs", "all"), ("gate", "serotonin"),
    ("layers", ()), ("layers", (1.5,)), ("start_epoch", -1), ("anneal_epochs", 0), ("clamp", 0.0),
    ("warmup_batches", 0), ("insitu", "sparse"),
])
def test_bad_parameters_name_the_field(field, value):
    with pytest.raises(ParameterError, match=field):
        SSDPParams(**{field: value})


def test_bad_arguments_name_what_is_wrong():
    with pytest.raises(ParameterError, match="layers"):
        DigitalSSDP(SpikingNetwork([4, 3], seed=0), Encoder(), ssdp=SSDPParams(layers=(2,)))
    with pytest.raises(ParameterError, match="layers"):  # a membrane readout's output layer never spikes
        DigitalSSDP(SpikingNetwork([4, 5, 3], readout="membrane"), Encoder(), ssdp=SSDPParams())
    DigitalSSDP(SpikingNetwork([4, 5, 3], readout="membrane"), Encoder(), ssdp=SSDPParams(layers=(0,)))
    with pytest.raises(ParameterError, match="step"):
        _insitu(0, SSDPParams(insitu="coincidence"), sizes=(4, 3), scheduler=SchedulerParams(step="state_aware"))
    with pytest.raises(ValueError, match="sigma"):
        ssdp_kernel(PRE, POST, T, sigma=-1.0)
    with pytest.raises(ValueError, match="silent_pairs"):
        ssdp_kernel(PRE, POST, T, silent_pairs="keep")
    with pytest.raises(ValueError, match="pre_times"):
        ssdp_kernel(PRE + 0.5, POST, T)
    with pytest.raises(ValueError, match="post_times"):
        ssdp_kernel(PRE.clamp(max=3), POST, 3)  # a latency of 4 does not fit a 3-step window
    with pytest.raises(ValueError, match="gate"):
        ssdp_kernel(PRE, POST, T, gate=torch.ones(3))
    with pytest.raises(ValueError, match="warmup_batches"):
        DopamineGate(0)
    with pytest.raises(RuntimeError, match="record"):
        DopamineGate(1).fit()
    assert SSDPParams.from_dict({"layers": [0, -1]}).layers == (0, -1)  # lists from config files


def test_observe_sees_the_same_first_spike_times_as_a_recorded_run():
    x, _ = _digits(8)
    net = SpikingNetwork([64, 16, 12, 10], seed=3)
    rule = DigitalSSDP(net, Encoder(num_steps=6), ssdp=SSDPParams(layers=(0, 1, 2))).ssdp
    spikes = Encoder(num_steps=6)(x, torch.Generator().manual_seed(0))
    records = net(spikes, record=True).records
    with rule.observe(net) as cap:
        net(spikes)
    sigs = rule.signals(cap, torch.zeros(8, dtype=torch.long))
    assert [s.layer for s in sigs] == [0, 1, 2] and all(s.num_steps == 6 and s.gate is None for s in sigs)
    for s, r in zip(sigs, records):
        assert torch.equal(s.pre_times, r.first_spike_times("pre")) and torch.equal(s.post_times, r.first_spike_times("post"))
    net(spikes)  # outside the context nothing is captured any more
    assert cap.batch == 8 and not net._forward_pre_hooks


def test_insitu_ssdp_leaves_the_gradient_updates_random_stream_alone():
    x, y = _digits(32)
    kw = dict(params=InSituSGParams(lr=0.2, init_method="direct"), seed=3)
    base = InSituSG(SpikingNetwork([64, 10], seed=1), "ideal", Encoder(num_steps=8), **kw)
    quiet = InSituSSDP(SpikingNetwork([64, 10], seed=1), "ideal", Encoder(num_steps=8), ssdp=SSDPParams(A_plus=1e-12, A_base=1e-12), **kw)
    loud = InSituSSDP(SpikingNetwork([64, 10], seed=1), "ideal", Encoder(num_steps=8), ssdp=SSDPParams(A_plus=1e-2, A_base=1e-2), **kw)
    for m in (base, quiet, loud):
        gen = torch.Generator().manual_seed(0)
        for i in range(2):
            m.train_batch(x[16 * i:16 * (i + 1)], y[16 * i:16 * (i + 1)], gen)
    assert torch.equal(base.net.weights()[0], quiet.net.weights()[0]) and quiet.counters()["ssdp_pulses"] == 0
    assert base.counters()["pulses"] == quiet.counters()["pulses"] == quiet.counters()["sg_pulses"]
    assert loud.counters()["ssdp_pulses"] > 0 and not torch.equal(base.net.weights()[0], loud.net.weights()[0])
