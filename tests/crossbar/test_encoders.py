"""Spike encoders: statistics of rate / Poisson codes, exact agreement with snnTorch for the
deterministic latency and delta codes, seeding and shapes."""

import itertools
import math

import pytest
import torch

from memsnn.crossbar.encoders import delta, latency, poisson, rate



def _spikegen():
    """snnTorch's encoders (a test dependency); only the agreement tests need them."""
    return pytest.importorskip("snntorch.spikegen")

N_SAMPLES = 20000


def assert_probability(spikes, p):
    """Each column of spikes [T, K] fires with probability p[k], within 5 standard errors."""
    freq = spikes.double().mean(dim=0)
    for f, q in zip(freq.tolist(), p):
        se = math.sqrt(q * (1 - q) / spikes.shape[0])
        if se == 0:
            assert f == q
        else:
            assert abs(f - q) < 5 * se, (f, q, se)


# ----------------------------------------------------------------------------------------- rate
def test_rate_firing_probability():
    data = torch.tensor([0.0, 0.05, 0.2, 0.5, 0.9, 1.0])
    spikes = rate(data, N_SAMPLES, generator=0)
    assert spikes.shape == (N_SAMPLES, 6)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert_probability(spikes, data.tolist())


def test_rate_gain_offset_and_clamp():
    data = torch.tensor([0.3, 0.1, 0.8, 0.0])
    spikes = rate(data, N_SAMPLES, gain=2.0, offset=-0.1, generator=1)
    # p = clamp(2x - 0.1, 0, 1) = 0.5, 0.1, 1 (clamped from 1.5), 0 (clamped from -0.1)
    assert_probability(spikes, [0.5, 0.1, 1.0, 0.0])


def test_rate_shapes_seeds_and_errors():
    data = torch.rand(3, 5)
    a = rate(data, 7, generator=42)
    assert a.shape == (7, 3, 5) and a.dtype == data.dtype
    assert torch.equal(a, rate(data, 7, generator=42))
    assert torch.equal(a, rate(data, 7, generator=torch.Generator().manual_seed(42)))
    assert not torch.equal(rate(data, 50, generator=1), rate(data, 50, generator=2))
    with pytest.raises(ValueError, match="num_steps=0"):
        rate(data, 0)
    with pytest.raises(ValueError, match="NaN"):
        rate(torch.tensor([float("nan")]), 3)


# -------------------------------------------------------------------------------------- poisson
def test_poisson_rate():
    data = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    dt, max_rate = 1e-3, 200.0
    spikes = poisson(data, N_SAMPLES, dt=dt, max_rate=max_rate, generator=3)
    p = [1 - math.exp(-x * max_rate * dt) for x in data.tolist()]  # 0, .0488, .0952, .1813
    assert spikes.shape == (N_SAMPLES, 4)
    assert_probability(spikes, p)
    # the empirical rate in Hz is close to data * max_rate for rate * dt << 1
    hz = spikes.mean(0) / dt
    assert hz[1].item() == pytest.approx(50.0, rel=0.1)


def test_poisson_seeds_and_errors():
    data = torch.rand(2, 4)
    assert torch.equal(poisson(data, 30, generator=5), poisson(data, 30, generator=5))
    assert poisson(data, 30).shape == (30, 2, 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        poisson(torch.tensor([1.5]), 10)
    with pytest.raises(ValueError, match="dt=0"):
        poisson(data, 10, dt=0.0)
    with pytest.raises(ValueError, match="max_rate=-1"):
        poisson(data, 10, max_rate=-1.0)


# -------------------------------------------------------------------------------------- latency
def latency_data():
    torch.manual_seed(0)
    d = torch.rand(4, 25)
    d[0, :6] = torch.tensor([0.0, 0.005, 0.01, 0.0101, 0.5, 1.0])  # below / at / just above threshold
    return d


@pytest.mark.parametrize(
    "linear, normalize, clip, first_spike_time, tau",
    [
        (lin, norm, clip, fst, tau)
        for lin, norm, clip, fst in itertools.product([False, True], [False, True], [False, True], [0, 2])
        for tau in ([1.0] if not lin else [5.0, 8.0])
    ],
)
def test_latency_matches_snntorch(linear, normalize, clip, first_spike_time, tau):
    data = latency_data()
    num_steps = 20  # log code without normalize: latest time tau * ln((thr + eps) / eps) ~ 11.5
    kw = dict(threshold=0.01, tau=tau, first_spike_time=first_spike_time, clip=clip, normalize=normalize, linear=linear)
    ours = latency(data, num_steps, **kw)
    theirs = _spikegen().latency(data, num_steps=num_steps, **kw)
    assert ours.shape == (num_steps, 4, 25)
    assert torch.equal(ours, theirs)
    # one spike per input, none for clipped inputs, none before first_spike_time
    expected = (data >= 0.01).float() if clip else torch.ones_like(data)
    assert torch.equal(ours.sum(0), expected)
    assert ours[:first_spike_time].sum() == 0


def test_latency_other_thresholds_match_snntorch():
    data = latency_data()
    for threshold, normalize in ((0.2, True), (0.2, False), (0.5, True)):
        kw = dict(threshold=threshold, normalize=normalize, clip=True)
        assert torch.equal(latency(data, 16, **kw), _spikegen().latency(data, num_steps=16, **kw))


def test_latency_order_and_clamp_to_last_step():
    data = torch.tensor([[1.0, 0.6, 0.3, 0.0]])
    s = latency(data, 5, normalize=True, linear=True)  # t = 4 (1 - x) -> 0, 1.6, 2.8, 4 -> 0, 2, 3, 4
    assert s.argmax(0).tolist() == [[0, 2, 3, 4]]
    # times beyond T - 1 (here tau ln(x/(x - thr)) ~ 11.5 for x = 0) land on the last step
    s = latency(data, 6)
    assert s[-1, 0, 3] == 1 and s.sum() == 4


def test_latency_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        latency(torch.tensor([1.2]), 10)
    with pytest.raises(ValueError, match="threshold=0"):
        latency(torch.tensor([0.5]), 10, threshold=0.0)
    with pytest.raises(ValueError, match="first_spike_time=10"):
        latency(torch.tensor([0.5]), 10, first_spike_time=10)
    with pytest.raises(ValueError, match="tau=0"):
        latency(torch.tensor([0.5]), 10, tau=0)


# ---------------------------------------------------------------------------------------- delta
@pytest.mark.parametrize("padding, off_spike", list(itertools.product([False, True], [False, True])))
def test_delta_matches_snntorch(padding, off_spike):
    torch.manual_seed(1)
    data = torch.rand(12, 3, 7)
    ours = delta(data, threshold=0.3, padding=padding, off_spike=off_spike)
    theirs = _spikegen().delta(data, threshold=0.3, padding=padding, off_spike=off_spike)
    assert ours.shape == data.shape
    assert torch.equal(ours, theirs)
    assert (ours != 0).any() and ((ours < 0).any() == off_spike)


def test_delta_hand_examples():
    a = torch.tensor([1.0, 2.0, 2.9, 3.0, 3.9])
    assert delta(a, threshold=1.0).tolist() == [1, 1, 0, 0, 0]
    assert delta(a, threshold=1.0, padding=True).tolist() == [0, 1, 0, 0, 0]
    b = torch.tensor([1.0, 2.0, 0.0, 2.0, 2.9])
    assert delta(b, threshold=1.0, off_spike=True).tolist() == [1, 1, -1, 1, 0]
    with pytest.raises(ValueError, match="threshold"):
        delta(a, threshold=0.0)
