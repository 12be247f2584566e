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
