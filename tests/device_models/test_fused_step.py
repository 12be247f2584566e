"""The models' fused per-step kernels (``DeviceModel._fused_step``) against the generic step of
``_apply_sequence``: exactly the same result without noise, the same distribution with it."""

import pytest
import torch

from memsnn.device_models import DeviceModel, make_device

CASES = [
    ("ideal", dict(step_std=0.3, step_noise="multiplicative", step_dtod=0.3)),
    ("ideal", dict(step_std=0.3, step_noise="additive", up_down_dtod=0.2)),
    ("rram", {}),  # additive c2c, write noise, d2d spreads: the preset
    ("rram", dict(write_noise_std=0.0)),  # the c2c noise alone (the write noise would hide it)
    ("rram", dict(step_std=0.3, step_noise="multiplicative", write_noise_std=0.0)),
]


def _start(model, n, where, gen):
    """``n`` devices programmed to ``where`` (fraction of the nominal window, per device)."""
    p = model.params
    state = model.init_state((n,), generator=gen, dtype=torch.float64)
    return model.program(state, p.g_min + where * p.window, generator=gen)


def _counts(n, steps, gen):
    """Signed pulse counts ``[steps, n]``: mixed polarities, a fifth of them zero per step."""
    k = torch.randint(-12, 13, (steps, n), generator=gen).to(torch.float64)
    return k * (torch.rand((steps, n), generator=gen, dtype=torch.float64) > 0.2)


def _both(monkeypatch, model, state, counts, seed):
    out = {}
    for name in ("fused", "generic"):
        with monkeypatch.context() as m:
            if name == "generic":
                m.setattr(type(model), "_fused_step", DeviceModel._fused_step)
            out[name] = model._apply_sequence(state, counts, generator=torch.Generator().manual_seed(seed))
    return out["fused"], out["generic"]


@pytest.mark.parametrize("preset,overrides", CASES)
def test_fused_step_is_the_generic_step_without_noise(monkeypatch, preset, overrides):
    model = make_device(preset, **dict(overrides, step_std=0.0, write_noise_std=0.0))
    gen = torch.Generator().manual_seed(0)
    n = 3000
    # starts all over the window, so that steps saturate at both bounds too
    state = _start(model, n, torch.rand(n, generator=gen, dtype=torch.float64), gen)
    counts = _counts(n, 40, gen) * 10
    fused, generic = _both(monkeypatch, model, state, counts, 1)
    assert model._fused_step(state.dev["scale_set"], state.dev["scale_reset"], state.dev, None) is not None
    torch.testing.assert_close(fused.g, generic.g, rtol=1e-12, atol=1e-12 * model.params.window)
    hit = (generic.g == state.dev["g_max"]) | (generic.g == state.dev["g_min"])
    if preset == "ideal":
        assert hit.float().mean() > 0.05  # the bounds were exercised
    for name in ("n_set", "n_reset", "energy", "t_prog"):
        assert torch.equal(getattr(fused, name), getattr(generic, name))


@pytest.mark.parametrize("preset,overrides", CASES)
def test_fused_step_has_the_generic_steps_distribution(monkeypatch, preset, overrides):
    model = make_device(preset, **overrides)
    assert model.params.step_std > 0
    n = 20000
    gen = torch.Generator().manual_seed(0)
    groups = {"middle": 0.5, "near the top": 0.97, "near the bottom": 0.03}
    for label, where in groups.items():
        state = _start(model, n, torch.full((n,), where, dtype=torch.float64), gen)
        state = state.replace(dev={k: v[:1].expand(n).clone() for k, v in state.dev.items()})  # one device, n copies
        counts = _counts(1, 6, gen).expand(6, n).clone()
        counts[:, : n // 10] = 0  # a tenth never pulsed: must stay exactly where it was
        fused, generic = _both(monkeypatch, model, state, counts, 3)
        g0 = model.conductance(state)
        gf, gg = model.conductance(fused), model.conductance(generic)
        assert torch.equal(gf[: n // 10], g0[: n // 10]), label
        df, dg = (gf - g0)[n // 10:], (gg - g0)[n // 10:]
        m = df.numel()
        sd = float(dg.std())
        assert sd > 0, label
        # means within 5 standard errors of their difference, stds within 5 standard errors
        assert abs(float(df.mean() - dg.mean())) < 5 * sd * (2 / m) ** 0.5, label
        assert abs(float(df.std()) / sd - 1) < 5 / m**0.5, label


def test_fused_step_is_not_used_for_stuck_devices_or_levels(monkeypatch):
    calls = []
    model = make_device("ideal", step_std=0.3, p_stuck_max=0.1)
    real = type(model)._fused_step
    monkeypatch.setattr(type(model), "_fused_step", lambda self, *a: calls.append(1) or real(self, *a))
    state = model.init_state((100,), generator=0, dtype=torch.float64)
    model.apply_pulses(state, torch.full((100,), 3), generator=1)
    assert not calls  # stuck devices: generic step (it keeps them where they are)
    levels = make_device("ideal", step_std=0.3, n_levels=16)
    levels.apply_pulses(levels.init_state((100,), generator=0), torch.full((100,), 3), generator=1)
    assert not calls
    model = make_device("ideal", step_std=0.3)
    model.apply_pulses(model.init_state((100,), generator=0), torch.full((100,), 3), generator=1)
    assert calls


def test_a_sequence_on_a_linear_device_is_combined_where_it_cannot_reach_a_bound(monkeypatch):
    """Far from the bounds the whole sequence is one Gaussian step; near them (where the c2c
    noise clips it) it is stepped one step after another; both with the sequence's distribution."""
    from memsnn.device_models import base

    model = make_device("ideal", step_std=0.3, step_noise="multiplicative")
    p = model.params
    n, k = 40000, 8
    counts = torch.tensor([k, -k] * 8, dtype=torch.float64)[:, None].expand(16, n).clone()  # net 0
    sd = p.step * p.step_std * (16 * k) ** 0.5  # the sequence's c2c noise (S)
    start = torch.full((n,), p.g_min + 0.5 * p.window, dtype=torch.float64)
    start[n // 2:] = p.g_max - k * p.step - 1.0 * sd  # the noise-free path stays inside, the noisy one often not
    state = model.program(model.init_state((n,), generator=0, dtype=torch.float64), start, generator=0)
    monkeypatch.setattr(base, "COALESCE_STEPS", 16)  # the whole sequence is one run
    monkeypatch.setattr(base, "COALESCE_WITH_KERNELS", True)  # combined even where the CPU kernel could step
    seen = []
    real = type(model)._combined_step
    monkeypatch.setattr(type(model), "_combined_step", lambda self, *a: seen.append(real(self, *a)) or seen[-1])
    combined = model._apply_sequence(state, counts, generator=torch.Generator().manual_seed(1))
    safe = seen[0][1]
    assert safe[: n // 2].all() and not safe[n // 2:].any()
    with monkeypatch.context() as m:  # the reference: the fused step, one step after another
        m.setattr(type(model), "_combined_step", DeviceModel._combined_step)
        stepped = model._apply_sequence(state, counts, generator=torch.Generator().manual_seed(2))
    # the bound matters in the second half: clipping the upward excursions lowers the mean (net 0)
    assert float((stepped.g[n // 2:] - start[n // 2:]).mean()) < -10 * sd / (n // 2) ** 0.5
    for sl in (slice(0, n // 2), slice(n // 2, n)):
        a, b = combined.g[sl] - start[sl], stepped.g[sl] - start[sl]
        m_ = a.numel()
        s = float(b.std())
        assert abs(float(a.mean() - b.mean())) < 5 * s * (2 / m_) ** 0.5
        assert abs(float(a.std()) / s - 1) < 5 / m_**0.5
    middle = combined.g[: n // 2] - start[: n // 2]
    assert abs(float(middle.std()) / sd - 1) < 5 / (n // 2) ** 0.5  # the sum of all pulses' noise
    assert torch.equal(combined.n_set, stepped.n_set) and torch.equal(combined.n_reset, stepped.n_reset)
    # in runs of 4 steps: the same distributions
    monkeypatch.setattr(base, "COALESCE_STEPS", 4)
    runs = model._apply_sequence(state, counts, generator=torch.Generator().manual_seed(3))
    for sl in (slice(0, n // 2), slice(n // 2, n)):
        a, b = runs.g[sl] - start[sl], stepped.g[sl] - start[sl]
        s = float(b.std())
        assert abs(float(a.mean() - b.mean())) < 5 * s * (2 / a.numel()) ** 0.5
        assert abs(float(a.std()) / s - 1) < 5 / a.numel() ** 0.5
    # with no margin for the noise the second half would be combined too, and come out unclipped
    monkeypatch.setattr(base, "COALESCE_STEPS", 16)
    monkeypatch.setattr(base, "COALESCE_Z", 0.0)
    seen.clear()
    loose = model._apply_sequence(state, counts, generator=torch.Generator().manual_seed(1))
    assert seen[0][1][n // 2:].all()
    a, b = loose.g[n // 2:], stepped.g[n // 2:]
    assert float(a.mean() - b.mean()) > 10 * float(b.std()) / (n // 2) ** 0.5


def test_combined_linear_sequence_without_noise_is_the_sum_of_its_steps():
    model = make_device("ideal", step_dtod=0.3, up_down_dtod=0.2)
    n = 5000
    gen = torch.Generator().manual_seed(0)
    state = model.program(model.init_state((n,), generator=gen, dtype=torch.float64),
                          torch.full((n,), 0.5 * model.params.g_max, dtype=torch.float64), generator=gen)
    counts = _counts(n, 12, gen)
    out = model._apply_sequence(state, counts, generator=1)
    dev = state.dev
    step = torch.where(counts > 0, dev["scale_set"], dev["scale_reset"]) * model.params.step
    torch.testing.assert_close(out.g, state.g + (step * counts).sum(0), rtol=1e-12, atol=1e-20)


@pytest.mark.parametrize("overrides", [{}, dict(step_std=0.0), dict(v_reset=0.8, c_dtod=0.3), dict(step_std=0.5)])
def test_srtio3_fused_step_gives_the_generic_steps_numbers(monkeypatch, overrides):
    """srtio3's fused step does the generic step's operations in the same order and draws the same
    normals: the same numbers, noise included (from anywhere in the window, both polarities)."""
    model = make_device("srtio3", **overrides)
    gen = torch.Generator().manual_seed(0)
    n = 3000
    state = _start(model, n, torch.rand(n, generator=gen, dtype=torch.float64), gen)
    state32 = model.init_state((n,), generator=gen)  # float32, the crossbars' dtype
    state32 = model.program(state32, state.g.float(), generator=gen)
    calls = []
    orig = type(model)._fused_step
    monkeypatch.setattr(type(model), "_fused_step", lambda self, *a: calls.append(1) or orig(self, *a))
    for st in (state, state32):
        counts = _counts(n, 6, gen).to(st.dtype)
        fused, generic = _both(monkeypatch, model, st, counts, 1)
        assert torch.equal(fused.g, generic.g)
        assert not torch.equal(fused.g, st.g)
        for name in ("n_set", "n_reset", "energy", "t_prog", "g_vol"):
            assert torch.equal(getattr(fused, name), getattr(generic, name))
    assert calls  # the fused step ran


def test_srtio3_fused_step_is_not_used_for_additive_noise():
    model = make_device("srtio3", step_noise="additive")
    dev = model.init_state((4,), generator=0).dev
    amps = (torch.tensor(1.0), torch.tensor(1.0))
    assert model._fused_step(dev["scale_set"], dev["scale_reset"], dev, None, amps) is None
    assert make_device("srtio3")._fused_step(dev["scale_set"], dev["scale_reset"], dev, None, amps) is not None


def test_srtio3_fused_step_keeps_devices_that_drifted_below_g_min(monkeypatch):
    """A day after a full RESET most devices sit below their g_min (drift): the fused step still
    gives the generic step's numbers, and a RESET pulse does not lift them to g_min."""
    model = make_device("srtio3")
    gen = torch.Generator().manual_seed(0)
    n = 2000
    state = _start(model, n, torch.rand(n, generator=gen, dtype=torch.float64) * 0.02, gen)
    state = model.advance(state, 86400.0)
    g0 = model.conductance_longterm(state)
    assert (g0 < state.dev["g_min"]).float().mean() > 0.5
    counts = _counts(n, 3, gen)
    calls = []
    orig = type(model)._fused_step
    monkeypatch.setattr(type(model), "_fused_step", lambda self, *a: calls.append(1) or orig(self, *a))
    fused, generic = _both(monkeypatch, model, state, counts, 1)
    assert calls  # the fused step ran
    assert torch.equal(fused.g, generic.g)
    reset_only = (counts <= 0).all(0) & (counts < 0).any(0) & (g0 < state.dev["g_min"])
    assert reset_only.any()
    assert torch.equal(fused.g[reset_only], g0[reset_only].to(fused.g.dtype))


def test_the_linear_sequence_kernel_is_the_eager_step_without_noise_and_in_distribution_with_it(monkeypatch):
    """``kernels.linear_run`` (all steps of a sequence in one numba call): with no c2c noise the
    eager fused step's numbers to rounding (clipping at both bounds, different SET / RESET steps);
    with noise the same mean and spread of the result."""
    from memsnn.device_models import base as base_mod

    n, B = 20000, 12
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(-6, 7, (B, n), generator=gen)
    counts[:, :500] = 9  # driven into the upper bound
    counts[:, 500:1000] = -9  # and the lower one
    out = {}
    for std in (0.0, 0.3):
        model = make_device("ideal", step_std=std, step=4e-9, up_down_dtod=0.2)
        state = model.init_state((n,), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        state = model.program(state, torch.full((n,), 5e-8, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
        for kernels in (False, True):
            monkeypatch.setattr(base_mod, "SEQUENCE_KERNELS", kernels)
            monkeypatch.setattr(base_mod, "COALESCE_STEPS", 1)  # no combined runs: step by step
            res = model.apply_pulse_sequence(state, counts, generator=torch.Generator().manual_seed(2))
            out[std, kernels] = model.conductance(res) - model.conductance(state)
    torch.testing.assert_close(out[0.0, True], out[0.0, False], rtol=1e-12, atol=1e-20)
    assert (out[0.0, True][:500] > 0).all() and (out[0.0, True][500:1000] < 0).all()
    a, b = out[0.3, True][1000:], out[0.3, False][1000:]
    m = a.numel()
    assert abs(float(a.mean() - b.mean())) < 5 * float(b.std()) * (2 / m) ** 0.5
    assert abs(float(a.std() / b.std()) - 1) < 5 / m**0.5
    assert not torch.equal(a, b)  # other draws


@pytest.mark.parametrize("overrides", [
    dict(step_noise="additive", step_std=3.75),  # the preset's c2c law
    dict(step_noise="multiplicative", step_std=0.3),
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_soft_bounds_sequence_kernel_is_the_eager_step_without_noise_and_in_distribution_with_it(
        monkeypatch, overrides, dtype):
    """``kernels.soft_bounds_run`` (rram: all steps of a sequence in one numba call): with no c2c
    noise the eager fused step's numbers to the rounding of ``exp`` (saturating at both bounds,
    SET / RESET asymmetry, d2d spreads); with noise the same mean and spread of the result."""
    from memsnn.device_models import base as base_mod

    n, B = 20000, 12
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(-400, 401, (B, n), generator=gen) * (torch.rand(B, n, generator=gen) > 0.3)
    counts[:, :500] = 3000  # driven into the upper bound
    counts[:, 500:1000] = -3000  # and the lower one
    out = {}
    for std in (0.0, overrides["step_std"]):
        model = make_device("rram", **dict(overrides, step_std=std, write_noise_std=0.0))
        state = model.init_state((n,), generator=torch.Generator().manual_seed(1), dtype=dtype)
        mid = torch.full((n,), (model.params.g_min + model.params.g_max) / 2, dtype=dtype)
        state = model.program(state, mid, generator=torch.Generator().manual_seed(1))
        for kernels in (False, True):
            monkeypatch.setattr(base_mod, "SEQUENCE_KERNELS", kernels)
            monkeypatch.setattr(base_mod, "COALESCE_STEPS", 1)
            res = model.apply_pulse_sequence(state, counts, generator=torch.Generator().manual_seed(2))
            out[std, kernels] = model.conductance(res).double()
    window = model.params.window
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(out[0.0, True], out[0.0, False], rtol=tol, atol=tol * window)
    g_max, g_min = state.dev["g_max"].double(), state.dev["g_min"].double()
    # the bounds were reached (soft bounds: to within a hundredth of the window)
    assert float((out[0.0, True][:500] - g_max[:500]).abs().max()) < 1e-2 * window
    assert float((out[0.0, True][500:1000] - g_min[500:1000]).abs().max()) < 1e-2 * window
    a, b = out[std, True][1000:], out[std, False][1000:]
    d0 = out[0.0, False][1000:]
    m = a.numel()
    da, db = a - d0, b - d0  # the noise's contribution
    assert float(db.std()) > 1e-4 * window
    assert abs(float(da.mean() - db.mean())) < 5 * float(db.std()) * (2 / m) ** 0.5
    assert abs(float(da.std() / db.std()) - 1) < 5 / m**0.5
    assert not torch.equal(a, b)  # other draws


@pytest.mark.parametrize("preset", ["ideal", "rram"])
def test_sequence_kernels_draw_the_same_numbers_device_by_device_as_for_a_whole_step(monkeypatch, preset):
    """A sparse step computes each pulsed device's normal from its own Philox block; a dense step
    fills the step's numbers at once: the same number ``b * N + j`` either way, so the results are
    identical, whichever path each step takes."""
    from memsnn.device_models import kernels

    n, B = 1001, 9  # not a multiple of Philox's 4 lanes
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(-5, 6, (B, n), generator=gen)
    counts *= torch.rand(B, 1, generator=gen) > torch.rand(B, n, generator=gen)  # steps from sparse to dense
    model = make_device(preset, step_std=0.3, write_noise_std=0.0) if preset == "rram" else make_device(
        preset, step_std=0.3, step=1e-9)
    state = model.init_state((n,), generator=torch.Generator().manual_seed(1))
    res = {}
    for frac in (0.0, 2.0):  # every step dense / every step device by device
        monkeypatch.setattr(kernels, "SPARSE_DRAW_FRACTION", frac)
        res[frac] = model.apply_pulse_sequence(state, counts, generator=torch.Generator().manual_seed(2)).g
    assert torch.equal(res[0.0], res[2.0])
    assert not torch.equal(res[0.0], state.g)


@pytest.mark.parametrize("preset", ["ideal", "rram"])
def test_sequence_kernels_give_the_same_numbers_on_several_threads(monkeypatch, preset):
    """The devices are split over the pool's threads in whole blocks; each device's numbers are
    its own (number ``b * N + j``), so the result is that of one thread, bit for bit."""
    from memsnn.device_models import kernels

    n, B = 3 * kernels.BLOCK + 77, 5
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(-5, 6, (B, n), generator=gen)
    model = make_device(preset, step_std=0.3, write_noise_std=0.0) if preset == "rram" else make_device(
        preset, step_std=0.3, step=1e-9)
    state = model.init_state((n,), generator=torch.Generator().manual_seed(1))
    res = {}
    threads = torch.get_num_threads()
    monkeypatch.setattr(kernels, "PARALLEL_MIN", 1)
    real, calls = kernels._executor, []
    monkeypatch.setattr(kernels, "_executor", lambda w: calls.append(w) or real(w))
    try:
        for t in (1, 3):
            torch.set_num_threads(t)
            calls.clear()
            res[t] = model.apply_pulse_sequence(state, counts, generator=torch.Generator().manual_seed(2)).g
            assert (calls == [3]) == (t == 3)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(res[1], res[3])
