"""Tests of the generated temporal tasks (memsnn.experiments.temporal) and their registration in
memsnn.experiments.datasets: layout, determinism, balance, that dmts needs memory, spike-pattern
statistics, the waveform task, and the errors of bad task parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from memsnn.experiments.datasets import Dataset, dataset_names, load_dataset
from memsnn.experiments.temporal import (
    DMTSParams,
    SpikePatternParams,
    dmts_stimuli,
    jitter_keeping_count,
    resolve_task_params,
    spike_pattern_templates,
    task_params_errors,
    waveform_task,
)
from tests.experiments.test_datasets import _fake_fashion, needs_fashion


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


# ================================================================================= layout, fields
def test_temporal_names_are_registered():
    assert {"dmts", "spike_patterns", "seq_fashion_mnist"} <= set(dataset_names())


def test_dmts_default_shapes_and_time_major_layout():
    ds = load_dataset("dmts")
    t, c = 2 * 10 + 20, 24
    assert ds.time_steps == t and ds.n_channels == c and ds.n_features == t * c
    assert ds.x_train.shape == (1000, t * c) and ds.x_test.shape == (300, t * c)
    assert ds.classes == ["non-match", "match"] and ds.source is None
    assert _is_binary(ds.x_train) and _is_binary(ds.x_test)
    seq = ds.sequences("train")
    assert seq.shape == (t, 1000, c)
    n, step, ch = 17, 13, 5  # x[n, step * C + ch] is channel ch at step `step`
    assert seq[step, n, ch] == ds.x_train[n, step * c + ch]
    assert torch.equal(ds.sequences("test")[:, 3], ds.x_test[3].reshape(t, c))
    desc = ds.describe()
    assert desc["time_steps"] == t and desc["n_channels"] == c


def test_dataset_time_steps_validated_and_sequences_refused_for_static_data():
    x, y = torch.zeros(4, 6), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"time_steps=4 does not divide the 6 features"):
        Dataset("t", x, y, x, y, ["a"], time_steps=4)
    with pytest.raises(ValueError, match=r"time_steps=0 is not allowed"):
        Dataset("t", x, y, x, y, ["a"], time_steps=0)
    ds = Dataset("t", x, y, x, y, ["a"], time_steps=3)
    assert ds.n_channels == 2 and ds.sequences("test").shape == (3, 4, 2)
    with pytest.raises(ValueError, match=r"split='val' is not allowed"):
        ds.sequences("val")
    static = load_dataset("iris")
    assert static.time_steps is None and static.n_channels == 4
    with pytest.raises(ValueError, match=r"dataset 'iris' is not temporal.*dmts"):
        static.sequences("train")


# ========================================================================================= dmts
def test_dmts_same_seed_same_data_other_seed_other_data():
    a = load_dataset("dmts", seed=4, task_params={"n_train": 50, "n_test": 20})
    b = load_dataset("dmts", seed=4, task_params={"n_train": 50, "n_test": 20})
    c = load_dataset("dmts", seed=5, task_params={"n_train": 50, "n_test": 20})
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test) and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_dmts_labels_are_balanced_in_each_split():
    ds = load_dataset("dmts", task_params={"n_train": 1000, "n_test": 7})
    assert torch.bincount(ds.y_train).tolist() == [500, 500]
    assert torch.bincount(ds.y_test).tolist() == [4, 3]  # odd: the extra trial is a non-match


def test_dmts_noise_free_trial_is_exactly_sample_delay_test():
    """stimulus_rate 1, no background: each window is exactly its stimulus's channel group."""
    p = {"n_train": 200, "n_test": 10, "n_channels": 9, "n_stimuli": 3, "stimulus_steps": 2, "delay": 3,
         "response_steps": 1, "stimulus_rate": 1.0, "noise_rate": 0.0}
    ds = load_dataset("dmts", task_params=p)
    seq = ds.sequences("train")  # [8, 200, 9]
    assert seq.shape == (2 + 3 + 2 + 1, 200, 9)
    groups = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1, 1, 1]],
                          dtype=torch.float32)
    sample, test = seq[0], seq[5]
    assert torch.equal(seq[1], sample) and torch.equal(seq[6], test)
    assert not seq[2:5].any() and not seq[7].any()  # delay and response: nothing
    which = lambda window: (window @ groups.T).argmax(1)  # noqa: E731
    assert torch.equal(groups[which(sample)], sample) and torch.equal(groups[which(test)], test)
    assert torch.equal((which(sample) == which(test)).long(), ds.y_train)
    # the test stimulus alone: each of the 3 stimuli equally often among matches and non-matches
    for label in (0, 1):
        counts = torch.bincount(which(test)[ds.y_train == label], minlength=3).float()
        assert counts.min() > 0.6 * counts.mean()


def test_dmts_firing_probabilities():
    p = dict(n_train=3000, n_test=1, stimulus_rate=0.4, noise_rate=0.05)
    seq = load_dataset("dmts", seed=1, task_params=p).sequences("train")  # [40, 3000, 24], groups of 12
    delay = seq[10:30]
    assert abs(delay.mean().item() - 0.05) < 0.004  # 1.44e6 draws: std 1.8e-4
    sample = seq[:10]
    driven = sample.sum(dim=(0, 1)) / (10 * 3000)  # per channel; each group driven in half the trials
    expected_driven = 0.5 * (1 - 0.6 * 0.95) + 0.5 * 0.05
    assert torch.allclose(driven, torch.full((24,), expected_driven), atol=0.02)


def test_dmts_needs_memory_of_the_sample():
    """The test window alone is at chance; the sample and test windows together solve it
    (their conjunction: a degree-2 logistic regression), and a linear readout of the whole raster
    cannot (for two stimuli the label is an XOR)."""
    ds = load_dataset("dmts", seed=3)
    tr, te = ds.sequences("train").numpy(), ds.sequences("test").numpy()
    ytr, yte = ds.y_train.numpy(), ds.y_test.numpy()

    def windows(seq):
        return seq[:10].sum(0), seq[30:40].sum(0)  # spike counts per channel, [N, C] each

    def fit_score(f_train, f_test):
        return LogisticRegression(max_iter=2000).fit(f_train, ytr).score(f_test, yte)

    last = fit_score(windows(tr)[1], windows(te)[1])
    pairs = lambda seq: np.einsum("ni,nj->nij", *windows(seq)).reshape(len(seq[0]), -1)  # noqa: E731
    whole = fit_score(np.concatenate([*windows(tr), pairs(tr)], 1), np.concatenate([*windows(te), pairs(te)], 1))
    linear = fit_score(ds.x_train.numpy(), ds.x_test.numpy())
    # 300 test trials: chance gives 0.5 +- 0.029
    assert abs(last - 0.5) < 0.1
    assert abs(linear - 0.5) < 0.1
    assert whole > 0.9


def test_dmts_memoryless_ceiling_is_reached_by_an_additive_rule():
    """Deciding each window alone and saying "match" only when both show stimulus 0 - an
    additive score over the windows, no memory - scores 0.5 + 0.5 / n_stimuli."""
    for k in (2, 4):
        p = {"n_train": 1, "n_test": 4000, "n_stimuli": k}
        ds = load_dataset("dmts", seed=0, task_params=p)
        assert resolve_task_params("dmts", p).memoryless_ceiling == 0.5 + 0.5 / k
        seq = ds.sequences("test")
        size = 24 // k
        stim0 = lambda window: window[:, :, :size].sum((0, 2)) > window[:, :, size:].sum((0, 2)) / (k - 1)  # noqa: E731
        guess = (stim0(seq[:10]) & stim0(seq[30:40])).long()
        assert abs((guess == ds.y_test).double().mean().item() - (0.5 + 0.5 / k)) < 0.03


def test_dmts_random_patterns_have_the_configured_size():
    p = resolve_task_params("dmts", {"pattern": "random", "pattern_fraction": 0.25, "n_channels": 20, "n_stimuli": 4})
    stim = dmts_stimuli(p, torch.Generator().manual_seed(0))
    assert stim.shape == (4, 20) and stim.sum(1).tolist() == [5, 5, 5, 5]
    again = dmts_stimuli(p, torch.Generator().manual_seed(0))
    assert torch.equal(stim, again)
    groups = dmts_stimuli(resolve_task_params("dmts", {"n_channels": 7, "n_stimuli": 3}), None)
    assert groups.sum(1).tolist() == [2, 2, 2] and not groups[:, 6].any()  # leftover channel: background only


def test_dmts_limit_and_classes():
    ds = load_dataset("dmts", limit=60)
    assert ds.x_train.shape[0] == 60 and ds.x_test.shape[0] == 10
    flipped = load_dataset("dmts", classes=[1, 0], task_params={"n_train": 10, "n_test": 4})
    full = load_dataset("dmts", task_params={"n_train": 10, "n_test": 4})
    assert flipped.classes == ["match", "non-match"]
    assert torch.equal(flipped.y_train, 1 - full.y_train) and torch.equal(flipped.x_train, full.x_train)


# =============================================================================== spike patterns
def test_spike_pattern_templates_have_equal_spike_counts_per_channel():
    p = SpikePatternParams(n_classes=4, n_channels=6, time_steps=30, rate=0.2)
    tpl = spike_pattern_templates(p, torch.Generator().manual_seed(2))
    assert tpl.shape == (4, 30, 6) and _is_binary(tpl)
    assert (tpl.sum(1) == 6).all()  # round(0.2 * 30) spikes in every channel of every class
    assert not torch.equal(tpl[0], tpl[1])


def test_spike_patterns_without_noise_are_the_templates():
    p = {"n_train": 40, "n_test": 10, "n_classes": 4, "jitter": 0.0, "deletion": 0.0, "insertion": 0.0}
    ds = load_dataset("spike_patterns", seed=9, task_params=p)
    tpl = spike_pattern_templates(resolve_task_params("spike_patterns", p), torch.Generator().manual_seed(9))
    assert ds.time_steps == 40 and ds.n_channels == 20 and ds.classes == [f"pattern {k}" for k in range(4)]
    assert torch.equal(ds.sequences("train"), tpl[ds.y_train].transpose(0, 1))
    assert torch.equal(ds.sequences("test"), tpl[ds.y_test].transpose(0, 1))
    assert torch.bincount(ds.y_train).tolist() == [10] * 4 and torch.bincount(ds.y_test).tolist() == [3, 3, 2, 2]


def test_spike_pattern_jitter_and_deletion_statistics():
    """One template spike per channel, far from the edges on average: the sample's spike time
    minus the template's is round(N(0, jitter)); deletions remove the given fraction."""
    p = {"n_train": 400, "n_test": 1, "n_classes": 2, "n_channels": 50, "time_steps": 400, "rate": 1 / 400,
         "jitter": 2.0, "deletion": 0.0, "insertion": 0.0}
    ds = load_dataset("spike_patterns", seed=1, task_params=p)
    tpl = spike_pattern_templates(resolve_task_params("spike_patterns", p), torch.Generator().manual_seed(1))
    seq = ds.sequences("train")  # [400, 400, 50]
    assert (seq.sum(0) == 1).all()  # one spike per channel: jitter moves, never adds or removes
    t_sample = seq.argmax(0)  # [N, C]
    t_template = tpl.argmax(1)[ds.y_train]  # [N, C]
    inside = (t_template >= 10) & (t_template < 390)  # no clipping at the window's edges
    d = (t_sample - t_template)[inside].double()
    assert abs(d.mean().item()) < 0.05  # ~19000 shifts: std of the mean 0.015
    assert abs(d.std().item() - math.sqrt(4 + 1 / 12)) < 0.06  # rounding adds 1/12 variance
    p0 = math.erf(0.5 / (2 * math.sqrt(2)))  # P(round(N(0, 2)) == 0)
    assert abs((d == 0).double().mean().item() - p0) < 0.015
    dropped = load_dataset("spike_patterns", seed=1, task_params={**p, "jitter": 0.0, "deletion": 0.3})
    assert abs(dropped.x_train.sum().item() / (400 * 50) - 0.7) < 0.01


def test_jitter_keeps_every_spike_distinct_and_inside_the_window():
    times = torch.tensor([[0, 1, 2, 3, 9], [2, 4, 6, 8, 9]])
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        out = jitter_keeping_count(times, 3.0, 10, g)
        assert out.shape == times.shape and (out[:, 1:] > out[:, :-1]).all()
        assert out.min() >= 0 and out.max() <= 9
    full = torch.arange(10)[None]  # every step taken: nothing can move
    assert torch.equal(jitter_keeping_count(full, 5.0, 10, g), full)
    assert torch.equal(jitter_keeping_count(times, 0.0, 10, g), times)


def test_spike_patterns_are_not_separable_by_rate_but_by_timing():
    ds = load_dataset("spike_patterns", seed=0)
    counts = lambda split: ds.sequences(split).sum(0).numpy()  # noqa: E731  [N, C] spike count per channel
    ytr, yte = ds.y_train.numpy(), ds.y_test.numpy()
    by_rate = LogisticRegression(max_iter=2000).fit(counts("train"), ytr).score(counts("test"), yte)
    by_time = LogisticRegression(max_iter=2000).fit(ds.x_train.numpy(), ytr).score(ds.x_test.numpy(), yte)
    assert abs(by_rate - 0.2) < 0.08  # 5 classes; 300 test samples: chance 0.2 +- 0.023
    assert by_time > 0.9


# ======================================================================================= errors
def test_task_params_errors_name_the_key_and_what_is_allowed():
    with pytest.raises(ValueError) as err:
        load_dataset("dmts", task_params={"dealy": 50, "noise_rate": 1.5, "pattern": "stripes"})
    msg = str(err.value)
    assert "unknown parameter 'dealy'; did you mean 'delay'?" in msg
    assert "noise_rate=1.5 is not allowed: must be a probability in [0, 1]" in msg
    assert "pattern='stripes' is not allowed: must be one of 'groups', 'random'" in msg
    assert task_params_errors("dmts", {"stimulus_rate": 0.1, "noise_rate": 0.2}) == [
        "stimulus_rate=0.1 must be > noise_rate=0.2: a stimulus must fire more than the background"]
    assert "round(rate * time_steps) must be >= 1" in task_params_errors("spike_patterns", {"rate": 0.01})[0]
    with pytest.raises(ValueError, match=r"task_params=\{'delay': 5\} is not used by dataset 'digits'"):
        load_dataset("digits", task_params={"delay": 5})
    with pytest.raises(ValueError, match=r"not used by dataset 'seq_fashion_mnist'"):
        load_dataset("seq_fashion_mnist", task_params={"delay": 5})
    assert task_params_errors("digits", {}) == []
    assert "must be a mapping" in task_params_errors("dmts", [("delay", 5)])[0]
    with pytest.raises(ValueError, match=r"scaling='standard' is not allowed for dataset 'dmts'"):
        load_dataset("dmts", scaling="standard")
    with pytest.raises(ValueError, match=r"path='x' is not used by dataset 'spike_patterns'"):
        load_dataset("spike_patterns", path="x")
    with pytest.raises(ValueError, match=r"classes=\[0, 3\].*out of range"):
        load_dataset("spike_patterns", classes=[0, 3], task_params={"n_classes": 3})
    with pytest.raises(ValueError, match=r"delay=-1 is not allowed: must be an integer >= 0"):
        load_dataset("dmts", task_params={"delay": -1})


def test_integral_floats_become_ints():
    p = resolve_task_params("dmts", {"delay": 50.0, "n_train": 20.0})
    assert p.delay == 50 and isinstance(p.delay, int) and p.time_steps == 70
    assert load_dataset("dmts", task_params={"delay": 50.0, "n_train": 20.0}).time_steps == 70
    assert DMTSParams().time_steps == 40


# ======================================================================================= waveform
def test_waveform_task_shapes_range_and_determinism():
    spikes, targets = waveform_task(n_inputs=30, time_steps=100, n_outputs=3, seed=2)
    assert spikes.shape == (100, 1, 30) and spikes.dtype == torch.float32 and _is_binary(spikes)
    assert targets.shape == (100, 3) and targets.dtype == torch.float32
    assert torch.allclose(targets.min(0).values, torch.full((3,), -1.0)) and torch.allclose(
        targets.max(0).values, torch.full((3,), 1.0))
    s2, t2 = waveform_task(n_inputs=30, time_steps=100, n_outputs=3, seed=2)
    assert torch.equal(spikes, s2) and torch.equal(targets, t2)
    assert not torch.equal(waveform_task(n_inputs=30, time_steps=100, n_outputs=3, seed=3)[1], targets)
    assert abs(waveform_task(n_inputs=200, time_steps=400, rate=0.1)[0].mean().item() - 0.1) < 0.005


def test_waveform_targets_are_smooth_sums_of_the_first_sinusoids():
    """Only the first n_components Fourier components (and the mean) are present."""
    _, targets = waveform_task(time_steps=128, n_outputs=2, n_components=3, seed=0)
    power = torch.fft.rfft(targets.double(), dim=0).abs() ** 2  # [65, 2]
    assert (power[1:4] > 1.0).all()
    assert power[4:].sum() < 1e-6 * power[1:4].sum()


def test_waveform_task_bad_arguments():
    with pytest.raises(ValueError, match=r"time_steps=3 is not allowed: must be an integer >= 4"):
        waveform_task(time_steps=3)
    with pytest.raises(ValueError, match=r"n_components=9 is not allowed for time_steps=16"):
        waveform_task(time_steps=16, n_components=9)
    with pytest.raises(ValueError, match=r"rate=0 is not allowed"):
        waveform_task(rate=0)


# ============================================================================ seq_fashion_mnist
def test_seq_fashion_mnist_is_fashion_mnist_read_row_by_row(tmp_path):
    parts = _fake_fashion(tmp_path, n_train=20, n_test=8)
    seq = load_dataset("seq_fashion_mnist", path=tmp_path, limit=12)
    flat = load_dataset("fashion_mnist", path=tmp_path, limit=12)
    assert seq.time_steps == 28 and seq.n_channels == 28 and seq.classes == flat.classes
    assert torch.equal(seq.x_train, flat.x_train) and torch.equal(seq.y_test, flat.y_test)
    assert 0 <= seq.x_train.min() and seq.x_train.max() <= 1  # minmax, as the static one
    raw = load_dataset("seq_fashion_mnist", path=tmp_path, scaling="none")
    image = torch.from_numpy(parts["train-images-idx3-ubyte"][5].astype(np.float32))
    assert torch.equal(raw.sequences("train")[:, 5, :], image)  # step t = row t, channel c = column c


@needs_fashion
def test_seq_fashion_mnist_from_the_installed_files():
    ds = load_dataset("seq_fashion_mnist", limit=120, classes=[0, 1])
    assert ds.sequences("train").shape == (28, 120, 28) and ds.x_test.shape == (20, 784)
