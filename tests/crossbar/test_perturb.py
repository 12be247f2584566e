import pytest
import torch

from memsnn.crossbar.perturb import event_noise, jitter


def _sparse_raster(T=200, B=4, N=50, seed=0):
    """One spike per (sample, input), at a step far from the window edges."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(60, 140, (B, N), generator=g)
    s = torch.zeros(T, B, N)
    s[t, torch.arange(B)[:, None], torch.arange(N)[None, :]] = 1.0
    return s, t


def test_jitter_moves_each_spike_by_a_rounded_gaussian_of_the_given_sigma():
    s, t = _sparse_raster()
    out = jitter(s, 3.0, torch.Generator().manual_seed(1))
    assert out.shape == s.shape and out.dtype == s.dtype
    # one spike per input stays one spike per input (no collisions possible: one spike each)
    assert torch.equal(out.sum(0), s.sum(0))
    shift = (out.argmax(0) - t).float().flatten()
    # 200 shifts: mean 0 +- 4 standard errors; std of round(N(0, 3)) is sqrt(9 + 1/12)
    assert abs(shift.mean()) < 4 * 3.0 / len(shift) ** 0.5
    assert 2.5 < shift.std() < 3.6
    assert torch.equal(jitter(s, 0.0), s)


def test_jitter_clips_to_the_window_and_is_reproducible_with_a_seed():
    s = torch.zeros(5, 1, 3)
    s[0, 0, :] = 1.0
    out = jitter(s, 50.0, torch.Generator().manual_seed(0))
    assert out.sum() == 3 and out.shape == s.shape  # far moves land on the first or last step
    assert set(out.nonzero()[:, 0].tolist()) <= {0, 4}
    a = jitter(_sparse_raster()[0], 2.0, torch.Generator().manual_seed(5))
    b = jitter(_sparse_raster()[0], 2.0, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_event_noise_drop_and_spurious_rates():
    s = torch.ones(100, 10, 20)
    kept = event_noise(s, drop=0.3, generator=torch.Generator().manual_seed(0))
    assert abs(kept.mean().item() - 0.7) < 0.01  # 20000 slots: std 0.003
    empty = torch.zeros(100, 10, 20)
    extra = event_noise(empty, spurious=0.05, generator=torch.Generator().manual_seed(0))
    assert abs(extra.mean().item() - 0.05) < 0.005
    assert torch.equal(event_noise(s, drop=1.0), torch.zeros_like(s))
    assert set(event_noise(s, drop=0.5, spurious=0.5).unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("call, match", [
    (lambda: jitter(torch.zeros(3, 2), 1.0), r"\[T, B, N\]"),
    (lambda: jitter(torch.zeros(3, 2, 2), -1.0), "sigma=-1.0"),
    (lambda: event_noise(torch.zeros(3, 2, 2), drop=1.5), "drop=1.5"),
    (lambda: event_noise(torch.zeros(3, 2, 2), spurious=-0.1), "spurious=-0.1"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- input noise: feature noise before encoding, spike deletion / insertion after it ---------------
from memsnn.crossbar.perturb import InputNoise, feature_bounds, feature_noise  # noqa: E402


def test_feature_noise_std_is_the_fraction_of_each_features_range():
    # features in the middle of ranges of 1 and 4: sigma 0.05 of the range almost never clips
    lo, hi = torch.tensor([0.0, -2.0]), torch.tensor([1.0, 2.0])
    x = torch.tensor([[0.5, 0.0]]).repeat(20000, 1)
    out = feature_noise(x, 0.05, lo, hi, torch.Generator().manual_seed(0))
    d = out - x
    # std 0.05 and 0.2; the standard error of a std over 20000 draws is about std / 200
    assert abs(float(d[:, 0].std()) - 0.05) < 0.05 * 0.03
    assert abs(float(d[:, 1].std()) - 0.20) < 0.20 * 0.03
    assert abs(float(d[:, 0].mean())) < 4 * 0.05 / 20000 ** 0.5
    assert abs(float(d[:, 1].mean())) < 4 * 0.20 / 20000 ** 0.5
    # the two columns' noise is independent
    assert abs(float(torch.corrcoef(d.T)[0, 1])) < 0.03


def test_feature_noise_clips_to_the_training_range_and_leaves_constant_features_alone():
    x_train = torch.tensor([[0.0, 3.0, 1.0], [1.0, 3.0, 5.0]])
    lo, hi = feature_bounds(x_train)
    assert torch.equal(lo, torch.tensor([0.0, 3.0, 1.0])) and torch.equal(hi, torch.tensor([1.0, 3.0, 5.0]))
    x = torch.tensor([[1.0, 3.0, 1.0]]).repeat(5000, 1)
    out = feature_noise(x, 0.5, lo, hi, torch.Generator().manual_seed(1))
    assert bool(((out >= lo) & (out <= hi)).all())
    assert torch.equal(out[:, 1], x[:, 1])  # range 0: no noise
    # at the upper edge, half the draws push outside and are clipped back to the edge
    at_edge = float((out[:, 0] == 1.0).float().mean())
    assert 0.46 < at_edge < 0.54
    assert torch.equal(feature_noise(x, 0.0, lo, hi), x)


def test_input_noise_parts_and_their_effect_on_a_raster():
    s = torch.zeros(50, 20, 40)
    s[::2] = 1.0  # half the slots hold a spike
    n = InputNoise(drop=0.3, insert=0.1)
    assert n.active and n.on_spikes and n.describe() == "drop 0.3, insert 0.1"
    out = n.spikes(s, torch.Generator().manual_seed(2))
    # a spike survives unless dropped and not re-inserted: 1 - 0.3 * (1 - 0.1); 20000 slots each
    kept = float(out[::2].mean())
    spurious = float(out[1::2].mean())  # empty slots that got one: 0.1
    assert abs(kept - 0.73) < 0.015 and abs(spurious - 0.1) < 0.01
    assert not InputNoise().active and InputNoise().describe() == "none"
    assert InputNoise(feature=0.2).spikes(s) is s


@pytest.mark.parametrize("kwargs, match", [
    ({"feature": -0.1}, r"feature=-0.1 is not allowed: must be a number >= 0"),
    ({"drop": 1.5}, r"drop=1.5 is not allowed: must be a probability in \[0, 1\]"),
    ({"insert": -1}, r"insert=-1 is not allowed"),
])
def test_input_noise_bad_values_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InputNoise(**kwargs)


def test_feature_noise_bad_input_is_named():
    lo, hi = torch.zeros(3), torch.ones(3)
    with pytest.raises(ValueError, match=r"sigma=-1 must be a number >= 0"):
        feature_noise(torch.zeros(2, 3), -1, lo, hi)
    with pytest.raises(ValueError, match=r"lo and hi must be \[F\] = \[3\]"):
        feature_noise(torch.zeros(2, 3), 0.1, torch.zeros(2), hi)
    with pytest.raises(ValueError, match=r"x_train must be a non-empty tensor \[N, F\]"):
        feature_bounds(torch.zeros(0, 3))
