"""A sequence of pulses run on its pulsed devices only (few of them): the whole array's result."""

import pytest
import torch

from memsnn.device_models import base, make_device

PRESETS = [
    ("srtio3", {}),
    ("rram", {}),
    ("ideal", dict(step_std=0.3)),
    ("pcm", {}),
    ("srtio3", dict(n_levels=16)),  # stochastic level rounding
    ("srtio3", dict(p_stuck_min=0.1, p_stuck_max=0.1)),
]


def _state(model, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    state = model.init_state((n,), generator=gen, dtype=torch.float64)
    mid = (model.params.g_min + model.params.g_max) / 2
    return model.program(state, torch.full((n,), mid, dtype=torch.float64), generator=gen)


def _run(monkeypatch, model, state, counts, frac, seed=1):
    monkeypatch.setattr(base, "SPARSE_STEP_FRACTION", frac)
    return model.apply_pulse_sequence(state, counts, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("preset,overrides", PRESETS[:3])
def test_one_step_on_the_pulsed_devices_draws_the_same_numbers(monkeypatch, preset, overrides):
    """One step, 5 % of the devices pulsed: the whole array's step draws c2c normals for the
    pulsed devices only, in row-major order - exactly what the subset's step draws. (A model's
    sequence kernel, ``base.SEQUENCE_KERNELS``, draws by position in the stepped tensor, so its
    subset and whole-array numbers differ; its distribution is checked in the next test.)"""
    monkeypatch.setattr(base, "SEQUENCE_KERNELS", False)
    model = make_device(preset, **overrides)
    state = _state(model, 4000)
    counts = torch.zeros((1, 4000), dtype=torch.int64)
    perm = torch.randperm(4000, generator=torch.Generator().manual_seed(3))
    counts[0, perm[:100]], counts[0, perm[100:200]] = 2, -3
    whole, few = _run(monkeypatch, model, state, counts, 0.0), _run(monkeypatch, model, state, counts, 1.0)
    for name, t in whole.tensors().items():
        assert torch.equal(t, few.tensors()[name]), name
    assert not torch.equal(whole.g, state.g)


@pytest.mark.parametrize("preset,overrides", PRESETS)
def test_a_sequence_on_the_pulsed_devices_has_the_whole_arrays_distribution(monkeypatch, preset, overrides):
    """Two steps (RESET then SET, as a refresh applies them) on 10 % of the devices: the result's
    mean and spread per device group match the whole array's, unpulsed devices are untouched, and
    the counters are exact."""
    model = make_device(preset, **overrides)
    n = 40000
    state = _state(model, n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(2))
    a, b, rest = perm[: n // 20], perm[n // 20: n // 10], perm[n // 10:]
    counts = torch.zeros((2, n), dtype=torch.int64)
    counts[0, a], counts[0, b] = -4, -4
    counts[1, a] = 3  # group a: RESET then SET; group b: RESET only
    whole, few = _run(monkeypatch, model, state, counts, 0.0), _run(monkeypatch, model, state, counts, 1.0)
    for out in (whole, few):
        assert torch.equal(out.g[rest], state.g[rest]) and torch.equal(out.t_prog[rest], state.t_prog[rest])
        assert torch.equal(out.n_set - state.n_set, (counts.clamp(min=0)).sum(0))
        assert torch.equal(out.n_reset - state.n_reset, (-counts).clamp(min=0).sum(0))
    assert not torch.equal(whole.g, few.g)  # other draws
    g0, gw, gf = (model.conductance(s) for s in (state, whole, few))
    working = (state.stuck == 0)
    for group in (a, b):
        group = group[working[group]]
        dw, df = (gw - g0)[group], (gf - g0)[group]
        m, sd = dw.numel(), dw.std()
        assert sd > 0
        assert abs(float(dw.mean() - df.mean())) < 5 * float(sd) * (2 / m) ** 0.5
        assert abs(float(df.std() / sd) - 1) < 5 / m**0.5


def test_the_subset_is_used_below_the_fraction_only(monkeypatch):
    """With most devices pulsed the whole array is stepped (and with one pulsed device the subset):
    both give the same numbers here, so count the subset's calls."""
    model = make_device("srtio3")
    state = _state(model, 1000)
    calls = []
    orig = model._run_steps
    monkeypatch.setattr(model, "_run_steps", lambda g, *a: calls.append(g.numel()) or orig(g, *a))
    few = torch.zeros((1, 1000), dtype=torch.int64)
    few[0, 7] = 1
    many = torch.ones((1, 1000), dtype=torch.int64)
    model.apply_pulse_sequence(state, few, generator=0)
    model.apply_pulse_sequence(state, many, generator=0)
    model.apply_pulse_sequence(state, torch.zeros_like(few), generator=0)  # nothing pulsed: no step
    assert calls == [1, 1000]


@pytest.mark.parametrize("preset,overrides", [("srtio3", {}), ("rram", {}), ("ideal", dict(step_std=0.3)),
                                              ("srtio3", dict(p_stuck_min=0.1, p_stuck_max=0.1))])
def test_two_arrays_stacked_are_the_arrays_one_after_the_other(monkeypatch, preset, overrides):
    """apply_sequences (a pair's arrays as one stacked sequence): without c2c noise exactly the
    arrays' own sequences; with it the same distribution; the per-device parameters stay each
    array's own."""
    quiet = make_device(preset, **dict(overrides, step_std=0.0, write_noise_std=0.0))
    noisy = make_device(preset, **overrides)
    for model in (quiet, noisy):
        n = 20000
        a, b = _state(model, n, seed=0), _state(model, n, seed=5)
        gen = torch.Generator().manual_seed(4)
        ka = torch.randint(-3, 4, (2, n), generator=gen).to(a.dtype)
        kb = torch.randint(-3, 4, (2, n), generator=gen).to(a.dtype)
        both = model.apply_sequences([a, b], [ka, kb], generator=torch.Generator().manual_seed(1))
        gen1 = torch.Generator().manual_seed(1)
        alone = [model._apply_sequence(s, k, generator=gen1) for s, k in ((a, ka), (b, kb))]
        for got, want, orig in zip(both, alone, (a, b)):
            assert got.dev is orig.dev and got.stuck is orig.stuck and got.time == orig.time
            for name in ("n_set", "n_reset", "t_prog"):
                assert torch.equal(getattr(got, name), getattr(want, name))
            if model is quiet:
                for name, t in want.tensors().items():
                    assert torch.equal(getattr(got, name.split(".")[-1]) if not name.startswith("dev.") else got.dev[name[4:]], t), name
            else:
                d_got, d_want = got.g - orig.g, want.g - orig.g
                moved = (d_want != 0)
                m, sd = int(moved.sum()), float(d_want[moved].std())
                assert abs(float(d_got[moved].mean() - d_want[moved].mean())) < 5 * sd * (2 / m) ** 0.5
                assert abs(float(d_got[moved].std()) / sd - 1) < 5 / m**0.5
    with pytest.raises(ValueError, match="one shape at one time"):
        quiet.apply_sequences([a, quiet.advance(b, 1.0)], [ka, kb])


@pytest.mark.parametrize("preset", ["srtio3", "pcm"])
def test_a_sequences_remembered_conductance_is_the_computed_one(preset):
    """A pulse sequence hands its result's drifted conductance to the new state's memo: exactly
    what conductance_longterm computes from the new state's fields (drifted devices included)."""
    model = make_device(preset)
    state = model.advance(_state(model, 5000), 3600.0)
    counts = torch.zeros((1, 5000), dtype=state.dtype)
    counts[0, ::7], counts[0, 3::11] = 2, -1
    for new in (model._apply_sequence(state, counts, generator=0),
                *model.apply_sequences([state, state], [counts, counts.flip(1)], generator=0)):
        fresh = new.replace()  # the same fields, an empty memo
        assert torch.equal(model.conductance_longterm(new), model.conductance_longterm(fresh))
        assert not torch.equal(model.conductance_longterm(fresh), fresh.g)  # it drifted


def test_apply_sequences_names_mismatched_counts():
    model = make_device("srtio3")
    a = _state(model, 10)
    with pytest.raises(ValueError, match="one count tensor per array: got 2 arrays and 1"):
        model.apply_sequences([a, a], [torch.zeros((1, 10), dtype=a.dtype)])
    with pytest.raises(ValueError, match=r"counts\[1\] must be \[B, 10\], got \(1, 9\)"):
        model.apply_sequences([a, a], [torch.zeros((1, 10), dtype=a.dtype), torch.zeros((1, 9), dtype=a.dtype)])
