"""Statistical and closed-form checks of the device physics; each fails on a wrong implementation."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memsnn.device_models import make_device

QUIET = dict(step_std=0.0, read_noise_std=0.0)


def ones(n, k=1):
    return torch.full((n,), k, dtype=torch.int32)


# ------------------------------------------------------------------------------------------- drift
def test_drift_exponent_recovered_by_log_log_regression():
    model = make_device("srtio3", drift_nu=0.06, drift_nu_dtod=0.2, read_noise_std=0.01, volatile_ratio=0.0)
    state = model.init_state((4000,), generator=1)
    state = model.apply_pulses(state, ones(4000, 20), generator=2)  # programming starts the clock
    times = np.logspace(3, 7, 9)
    logs = np.stack([np.log(model.read(state, at=state.time + t, generator=int(i)).numpy()) for i, t in enumerate(times)])
    x = np.log((times + model.params.drift_t0) / model.params.drift_t0)
    slopes = np.polyfit(x, logs, 1)[0]  # one slope per device
    assert -slopes.mean() == pytest.approx(0.06, abs=0.002)
    # the per-device exponent spread is the configured d2d spread (0.2 * 0.06)
    assert slopes.std() == pytest.approx(0.012, rel=0.1)


def test_drift_clock_resets_on_programming():
    model = make_device("srtio3", **QUIET, volatile_ratio=0.0, drift_nu_dtod=0.0, g_init_dtod=0.0, r_dtod=0.0, c_dtod=0.0)
    state = model.init_state((2,), generator=0)
    state = model.advance(state, 1e5)
    before = model.conductance(state)
    state = model.apply_pulses(state, torch.tensor([1, 0], dtype=torch.int32))
    # device 0 was reprogrammed now: no drift yet; device 1 still carries 1e5 s of drift
    g = model.conductance(state)
    assert g[1] == before[1]
    later = model.conductance(state, at=state.time + 100.0)
    factor0 = float(later[0] / g[0])
    assert factor0 == pytest.approx(((100 + 20) / 20) ** -0.05, rel=1e-5)


# ---------------------------------------------------------------------------------------- spreads
def test_cycle_to_cycle_spread_matches_configuration():
    model = make_device("ideal", step_std=0.3, g_max=1e-3, step=1e-9)
    state = model.init_state((1,), generator=0)
    state = state.replace(g=torch.full((1,), 5e-4))
    steps = []
    g = model.conductance(state)
    gen = torch.Generator().manual_seed(3)
    for _ in range(3000):
        state = model.apply_pulses(state, ones(1), generator=gen)
        g_new = model.conductance(state)
        steps.append(float(g_new - g))
        g = g_new
    steps = np.array(steps)
    assert steps.mean() == pytest.approx(1e-9, rel=0.03)
    assert steps.std() / steps.mean() == pytest.approx(0.3, rel=0.06)


def test_multi_pulse_noise_is_the_sum_of_single_pulse_noise():
    model = make_device("ideal", step_std=0.3, g_max=1e-3, step=1e-9)
    state = model.init_state((20000,), generator=0)
    state = state.replace(g=torch.full((20000,), 5e-4))
    after = model.apply_pulses(state, ones(20000, 16), generator=5)
    dg = (model.conductance(after) - model.conductance(state)).double().numpy()
    assert dg.mean() == pytest.approx(16e-9, rel=0.01)
    assert dg.std() == pytest.approx(0.3 * 1e-9 * 4, rel=0.05)  # sqrt(16) pulses


def test_device_to_device_spread_matches_configuration():
    model = make_device("ideal", step_dtod=0.2)
    state = model.init_state((20000,), generator=4)
    after = model.apply_pulses(state, ones(20000), generator=5)
    dg = (model.conductance(after) - model.conductance(state)).double().numpy()
    # truncation at 3 sigma shrinks the std by 1.4 %
    assert dg.std() / dg.mean() == pytest.approx(0.2 * 0.986, rel=0.03)
    # it is fixed per device: the same device steps the same again
    again = model.apply_pulses(after, ones(20000), generator=6)
    dg2 = (model.conductance(again) - model.conductance(after)).double().numpy()
    np.testing.assert_allclose(dg2, dg, rtol=1e-3)


def test_additive_c2c_noise_in_reference_steps():
    model = make_device("rram", write_noise_std=0.0, step_dtod=0.0, up_down_dtod=0.0, g_min_dtod=0.0, g_max_dtod=0.0)
    p = model.params
    state = model.init_state((20000,), generator=0)
    mid = p.g_min + 0.375 * p.window  # the symmetry point
    state = state.replace(g=torch.full((20000,), mid))
    after = model.apply_pulses(state, ones(20000), generator=1)
    dg = (model.conductance(after) - model.conductance(state)).double().numpy()
    ref = p.window * p.alpha_set * p.alpha_reset / (p.alpha_set + p.alpha_reset)
    assert dg.mean() == pytest.approx(ref, rel=0.05)
    assert dg.std() == pytest.approx(3.75 * ref, rel=0.03)


# ----------------------------------------------------------------------------------------- faults
def test_stuck_devices_never_move():
    model = make_device("srtio3", p_stuck_min=0.1, p_stuck_max=0.15)
    state = model.init_state((10000,), generator=0)
    stuck = state.stuck
    assert (stuck == -1).float().mean() == pytest.approx(0.1, abs=0.01)
    assert (stuck == 1).float().mean() == pytest.approx(0.15, abs=0.01)
    assert torch.equal(state.g[stuck == -1], state.dev["g_min"][stuck == -1])
    assert torch.equal(state.g[stuck == 1], state.dev["g_max"][stuck == 1])
    g0 = model.conductance(state)
    s = model.apply_pulses(state, ones(10000, 7), generator=1)
    s = model.apply_pulses(s, ones(10000, -3), generator=2)
    s = model.advance(s, 1e6)
    s = model.program(s, torch.full((10000,), 5e-8), generator=3)
    g1 = model.conductance(s)
    moved = g1 != g0
    assert not moved[stuck != 0].any()
    assert moved[stuck == 0].all()
    assert int(s.n_set[stuck != 0].sum()) == 7 * int((stuck != 0).sum())  # still counted


# ------------------------------------------------------------------------------------ pulse laws
def test_soft_bound_saturates():
    model = make_device("rram", step_std=0.0, write_noise_std=0.0, step_dtod=0.0)
    state = model.init_state((100,), generator=0, dtype=torch.float64)
    g_max = state.dev["g_max"]
    s = model.apply_pulses(state, ones(100, 6000))
    g = model.conductance(s)
    assert torch.all(g <= g_max)
    window = g_max - state.dev["g_min"]
    assert torch.all((g_max - g) / window < 1e-3)
    # the step shrinks linearly to zero at the bound: at 90 % of the window it is alpha * 10 %
    # (a device's step scale s counts as s nominal pulses: alpha_d = 1 - (1 - alpha)**s)
    g90 = state.dev["g_min"] + 0.9 * window
    step = model.nominal_step(g90, +1, dev=state.dev)
    alpha_d = 1 - (1 - model.params.alpha_set) ** state.dev["scale_set"]
    expected = alpha_d * 0.1 * window
    torch.testing.assert_close(step, expected, rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("volts", [1.0, 0.5])
def test_power_law_matches_closed_form(volts):
    model = make_device("srtio3", **QUIET, volatile_ratio=0.0, drift_nu=0.0, r_dtod=0.0, c_dtod=0.0, g_init_dtod=0.0, g_max=4e-7)
    p = model.params
    state = model.init_state((1,), dtype=torch.float64, generator=0)
    c = p.c0 + p.c1 * volts
    n0 = ((1.0 / p.g_init - p.r0) / p.r1) ** (1.0 / c)
    s = state
    for n in range(1, 61):
        s = model.apply_pulses(s, ones(1), amplitude=volts)
        expected = 1.0 / (p.r0 + p.r1 * (n0 + n) ** c)
        assert float(model.conductance(s)) == pytest.approx(expected, rel=1e-9)
    # sixty pulses at once land on the same point
    at_once = model.apply_pulses(state, ones(1, 60), amplitude=volts)
    assert float(model.conductance(at_once)) == pytest.approx(float(model.conductance(s)), rel=1e-9)


def test_power_law_amplitude_dependence():
    model = make_device("srtio3", **QUIET, volatile_ratio=0.0, drift_nu=0.0)
    g = torch.tensor(2e-8, dtype=torch.float64)
    steps = [float(model.nominal_step(g, +1, amplitude=v)) for v in (0.1, 0.5, 1.0)]
    assert 0 < steps[0] < steps[1] < steps[2]
    # RESET is weaker than SET at the same conductance (reset_efficiency = 0.5, mirrored law)
    assert -float(model.nominal_step(torch.tensor(9e-8, dtype=torch.float64), -1)) > 0


def test_pcm_reset_is_abrupt():
    model = make_device("pcm", step_std=0.0, reset_std=0.0)
    state = model.init_state((10,), generator=0)
    s = model.apply_pulses(state, ones(10, 80))
    assert torch.all(model.conductance_longterm(s) > 0.9 * state.dev["g_max"])
    s = model.apply_pulses(s, ones(10, -1))
    torch.testing.assert_close(model.conductance_longterm(s), state.dev["g_min"])


# ------------------------------------------------------------------------------------- volatile
@pytest.mark.parametrize("bias,tau", [(0.0, math.sqrt(10.0)), (1.0, 10.0), (-1.0, 1.0)])
def test_volatile_part_decays_with_configured_tau(bias, tau):
    model = make_device("srtio3", **QUIET, drift_nu=0.0, tau_volatile_dtod=0.0)
    state = model.init_state((50,), generator=0)
    state = model.set_bias(state, bias)
    state = model.apply_pulses(state, ones(50, 10))
    g_lt = model.conductance_longterm(state)
    times = np.linspace(0.0, 2 * tau, 11)
    excess = np.stack([(model.conductance(state, at=t) - g_lt).double().numpy() for t in times])
    assert np.all(excess[0] > 0)
    slope = np.polyfit(times, np.log(excess), 1)[0]
    np.testing.assert_allclose(-1.0 / slope, tau, rtol=1e-3)
    # advance() relaxes the stored volatile part the same way
    later = model.advance(state, tau)
    torch.testing.assert_close(later.g_vol, state.g_vol * math.exp(-1.0), rtol=1e-5, atol=0.0)


def test_volatile_step_is_ratio_of_nonvolatile_step():
    model = make_device("srtio3", **QUIET, drift_nu=0.0, volatile_ratio=0.4)
    state = model.init_state((20,), generator=0)
    s = model.apply_pulses(state, ones(20, 3))
    torch.testing.assert_close(s.g_vol, 0.4 * (s.g - state.g), rtol=1e-5, atol=1e-18)


# ---------------------------------------------------------------------------- levels and energy
def test_finite_levels():
    model = make_device("ideal", n_levels=5, step=7e-9)
    state = model.init_state((30,), generator=0)
    s = model.apply_pulses(state, torch.arange(30, dtype=torch.int32))
    levels = torch.linspace(0, 1e-7, 5)
    g = model.conductance(s)
    assert torch.all(torch.isclose(g[:, None], levels[None, :], atol=1e-15).any(dim=1))
    assert len(torch.unique(g)) == 5


def test_stochastic_level_rounding_keeps_small_steps_on_average():
    """A pulse of a tenth of a level spacing: nearest rounding never moves the device, however
    many pulses; stochastic rounding moves it by the step on average and lands only on levels."""
    kw = dict(n_levels=5, step=2.5e-9, g_init=0.0)  # spacing 25 nS on the ideal 0-100 nS window
    near = make_device("ideal", **kw)
    st = near.init_state((20000,), generator=0)
    for _ in range(10):
        st = near.apply_pulses(st, torch.ones(20000, dtype=torch.int32))
    assert float(near.conductance(st).abs().max()) == 0.0
    sto = make_device("ideal", level_rounding="stochastic", **kw)
    st = sto.init_state((20000,), generator=0)
    g = sto.conductance(sto.apply_pulses(st, torch.ones(20000, dtype=torch.int32), generator=1))
    torch.testing.assert_close(torch.unique(g), torch.tensor([0.0, 25e-9]), rtol=1e-6, atol=0.0)
    # one pulse: level 1 with probability 0.1 -> mean 2.5 nS, binomial std of the mean 0.05 nS
    assert float(g.mean()) == pytest.approx(2.5e-9, abs=0.2e-9)
    for t in range(10):  # ten pulses: one level up on average
        st = sto.apply_pulses(st, torch.ones(20000, dtype=torch.int32), generator=10 + t)
    assert float(sto.conductance(st).mean()) == pytest.approx(25e-9, rel=0.05)


def test_energy_and_pulse_counts():
    model = make_device("srtio3", energy_set=2e-12, energy_reset=3e-12)
    state = model.init_state((2, 3), generator=0)
    k = torch.tensor([[3, 0, -2], [1, -1, 0]], dtype=torch.int32)
    s = model.apply_pulses(state, k, generator=1)
    assert torch.equal(s.n_set, torch.tensor([[3, 0, 0], [1, 0, 0]]))
    assert torch.equal(s.n_reset, torch.tensor([[0, 0, 2], [0, 1, 0]]))
    assert model.total_energy(s) == pytest.approx(4 * 2e-12 + 3 * 3e-12)
    # ohmic scaling: twice the amplitude costs four times the energy, twice the width twice
    s2 = model.apply_pulses(state, k, amplitude=2.0, width=2e-6, generator=1)
    assert model.total_energy(s2) == pytest.approx(8 * model.total_energy(s))
    assert model.total_pulses(s) == 7


# -------------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(
    preset=st.sampled_from(["srtio3", "ideal", "pcm", "rram"]),
    counts=st.lists(st.integers(-40, 40), min_size=1, max_size=6),
    seed=st.integers(0, 2**31 - 1),
)
def test_long_term_conductance_stays_in_each_devices_window(preset, counts, seed):
    model = make_device(preset)
    state = model.init_state((64,), generator=seed)
    gen = torch.Generator().manual_seed(seed)
    total = 0
    for k in counts:
        state = model.apply_pulses(state, torch.randint(-abs(k) - 1, abs(k) + 2, (64,), generator=gen, dtype=torch.int32), generator=gen)
        total += 1
    g = state.g
    assert torch.all(g >= state.dev["g_min"] - 1e-12 * model.params.window)
    assert torch.all(g <= state.dev["g_max"] + 1e-12 * model.params.window)
    assert torch.isfinite(model.read(state, generator=gen)).all()


# ------------------------------------------------------------------------- purity and determinism
def test_same_seed_same_tensors_and_inputs_untouched():
    model = make_device("srtio3")

    def run(seed):
        s = model.init_state((8, 8), generator=seed)
        k = torch.randint(-5, 6, (8, 8), generator=torch.Generator().manual_seed(seed), dtype=torch.int32)
        s = model.apply_pulses(s, k, generator=seed + 1)
        return s, model.read(s, generator=seed + 2)

    s1, r1 = run(7)
    s2, r2 = run(7)
    for name, t in s1.tensors().items():
        assert torch.equal(t, s2.tensors()[name]), name
    assert torch.equal(r1, r2)
    _, r3 = run(8)
    assert not torch.equal(r1, r3)
    frozen = s1.clone()
    model.apply_pulses(s1, torch.ones(8, 8, dtype=torch.int32), generator=0)
    model.advance(s1, 10.0)
    for name, t in s1.tensors().items():
        assert torch.equal(t, frozen.tensors()[name]), name


# ----------------------------------------------------------------------------------- bad input
def test_float_pulses_rejected_with_dtype_named():
    model = make_device("ideal")
    state = model.init_state((3,))
    with pytest.raises(TypeError, match="integer dtype.*torch.float32"):
        model.apply_pulses(state, torch.ones(3))


def test_pulse_shape_mismatch_named():
    model = make_device("ideal")
    state = model.init_state((3, 4))
    with pytest.raises(ValueError, match=r"shape \(5,\).*\(3, 4\)"):
        model.apply_pulses(state, torch.ones(5, dtype=torch.int32))


@pytest.mark.parametrize("kwargs,match", [
    (dict(amplitude=-1.0), "amplitude=-1.0 must be a finite number > 0"),
    (dict(width=float("nan")), "width=nan must be a finite number > 0"),
])
def test_bad_amplitude_and_width(kwargs, match):
    model = make_device("ideal")
    state = model.init_state((3,))
    with pytest.raises(ValueError, match=match):
        model.apply_pulses(state, torch.ones(3, dtype=torch.int32), **kwargs)


def test_negative_time_span_rejected():
    model = make_device("srtio3")
    with pytest.raises(ValueError, match="seconds=-1.0 must be a finite number >= 0"):
        model.advance(model.init_state((2,)), -1.0)


def test_read_in_the_past_rejected():
    model = make_device("srtio3")
    state = model.advance(model.init_state((2,)), 5.0)
    with pytest.raises(ValueError, match="at=1.0 must be a finite time >= the state's time 5.0"):
        model.read(state, at=1.0)


# ----------------------------------------------------------------------------------- PCM stats
def test_pcm_drift_statistics_hand_computed():
    model = make_device("pcm")
    g = torch.tensor([0.5, 0.01]) * model.params.g_max
    mu, sig = model.drift_statistics(g)
    # g_r = 0.5: -0.0155 ln 0.5 + 0.0244 = 0.0351 -> clipped to 0.049; sigma 0.0028 -> 0.008
    # g_r = 0.01: 0.0958 and 0.0517 -> clipped to 0.045
    torch.testing.assert_close(mu, torch.tensor([0.049, 0.0155 * math.log(100) + 0.0244]))
    torch.testing.assert_close(sig, torch.tensor([0.008, 0.045]))


def test_pcm_programming_noise_and_nu_sampling():
    model = make_device("pcm", g_max_dtod=0.0)
    state = model.init_state((20000,), generator=0)
    target = torch.full((20000,), 0.5 * 25e-6)
    s = model.program(state, target, generator=1)
    sigma = (0.26348 + 1.9650 * 0.5 - 1.1731 * 0.25) * 1e-6
    assert float(s.g.std()) == pytest.approx(sigma, rel=0.03)
    assert float(s.nu.mean()) == pytest.approx(0.049, rel=0.05)
    assert float(s.nu.std()) == pytest.approx(0.008, rel=0.1)


def test_pcm_one_over_f_read_noise_grows_with_time():
    model = make_device("pcm", g_max_dtod=0.0, prog_coeff=(0.0,), drift_scale=0.0)
    state = model.init_state((20000,), generator=0)
    s = model.program(state, torch.full((20000,), 12.5e-6), generator=1)
    q_s = min(0.0088 / 0.5**0.65, 0.2)
    for t in (1.0, 86400.0):
        r = model.read(s, at=t, generator=2)
        expected = q_s * math.sqrt(math.log((t + 20 + 250e-9) / (2 * 250e-9)))
        assert float(r.std() / r.mean()) == pytest.approx(expected, rel=0.03)


# ------------------------------------------------------------------------------------------ CUDA
@pytest.mark.cuda
@pytest.mark.parametrize("preset", ["srtio3", "ideal", "pcm", "rram"])
def test_cuda_matches_cpu_noise_free(preset):
    model = make_device(preset)
    cpu = model.init_state((64, 32), generator=0)
    gpu = cpu.to("cuda")
    k = torch.randint(-6, 7, (64, 32), generator=torch.Generator().manual_seed(1), dtype=torch.int32)
    quiet = make_device(preset, step_std=0.0) if preset != "pcm" else make_device(preset, step_std=0.0, reset_std=0.0)
    a = quiet.apply_pulses(cpu, k)
    b = quiet.apply_pulses(gpu, k.cuda())
    torch.testing.assert_close(b.g.cpu(), a.g, rtol=1e-5, atol=1e-15)
    r = model.read(model.advance(b, 100.0), generator=torch.Generator("cuda").manual_seed(0))
    assert r.is_cuda and torch.isfinite(r).all()
