import pytest
import torch

from memsnn.crossbar import Crossbar, CrossbarParams
from memsnn.device_models import make_device
from memsnn.learning.scheduler import PulseScheduler, SchedulerParams
from memsnn.params import ParameterError


def ideal_xbar(shape=(40, 30), mapping="differential", pair_mode="one_sided", **model_kw):
    model = make_device("ideal", g_max=1e-6, step=1e-9, **model_kw)  # 1000 steps, no noise
    params = CrossbarParams(mapping=mapping, pair_mode=pair_mode)
    xbar = Crossbar(*shape, model, params=params, dtype=torch.float64, seed=0)
    xbar.program(torch.zeros(shape, dtype=torch.float64), method="direct")
    return xbar


@pytest.mark.parametrize("scheme", ["set_only", "bipolar"])
def test_stochastic_rounding_is_unbiased(scheme):
    # bipolar pairs start balanced mid-window, so both devices can move both ways
    xbar = ideal_xbar(pair_mode="balanced" if scheme == "bipolar" else "one_sided")
    sched = PulseScheduler(quantisation="stochastic", scheme=scheme, k_max=50)
    step = float(sched.pulse_step(xbar, "plus", +1))
    assert step == pytest.approx(1e-3)  # scale / 1000 steps
    torch.manual_seed(0)
    dw = (torch.rand(40, 30, dtype=torch.float64) * 2 - 1) * 0.7 * step  # mostly below one pulse
    total = torch.zeros_like(dw)
    reps = 200
    for r in range(reps):
        w0 = xbar.weights()
        sched.update(xbar, dw, generator=r)
        total += xbar.weights() - w0
    mean = total / reps
    # each update of a weight is a sum of Bernoulli pulses: std <= step / 2 (bipolar: two devices)
    bound = 4 * step / reps**0.5
    assert (mean - dw).abs().max() < bound
    assert abs(float((mean - dw).mean())) < bound / 10  # no systematic bias overall


def test_round_quantisation_is_biased_below_half_a_pulse():
    xbar = ideal_xbar()
    sched = PulseScheduler(quantisation="round")
    step = float(sched.pulse_step(xbar, "plus", +1))
    w0 = xbar.weights()
    sched.update(xbar, torch.full((40, 30), 0.4 * step, dtype=torch.float64))
    assert torch.equal(xbar.weights(), w0)  # every 0.4-pulse update is lost


@pytest.mark.parametrize("threshold", [0.0, 0.5, 2.0])
def test_sign_never_exceeds_k_max_and_respects_threshold(threshold):
    xbar = ideal_xbar()
    sched = PulseScheduler(quantisation="sign", sign_threshold=threshold, k_max=1)
    step = float(sched.pulse_step(xbar, "plus", +1))
    dw = torch.linspace(-5, 5, 40 * 30, dtype=torch.float64).view(40, 30) * step
    (phase,) = sched.dense(xbar, dw).phases
    counts = phase.plus - phase.minus
    assert counts.abs().max() <= 1
    expected = torch.sign(dw) * (dw.abs() > threshold * step)
    assert torch.equal(counts.double(), expected)
    big = PulseScheduler(quantisation="round", k_max=3).dense(xbar, dw).phases[0]
    assert big.plus.max() == 3 and big.minus.max() == 3


def test_rank1_update_is_one_phase_and_gated_by_rows():
    xbar = ideal_xbar()
    sched = PulseScheduler(quantisation="round", k_max=10)
    step = float(sched.pulse_step(xbar, "plus", +1))
    rows = (torch.arange(40) % 3 == 0).to(torch.int32)
    cols = torch.linspace(-4, 4, 30, dtype=torch.float64) * step
    w0 = xbar.weights()
    stats = sched.update_rank1(xbar, rows, cols)
    assert stats.phases == 1  # SET-only: both columns of the pair SET in one parallel phase
    dw = xbar.weights() - w0
    expected = rows[:, None].double() * torch.round(cols / step)[None, :] * step
    torch.testing.assert_close(dw, expected, rtol=1e-9, atol=1e-12)
    # a stack of B updates costs B phases (rows that are all zero cost none)
    stacked = sched.rank1(xbar, rows.expand(4, 40), cols.expand(4, 30))
    assert stacked.hardware_phases() == 4
    # bipolar: SET and RESET groups are separate phases
    bip = PulseScheduler(quantisation="round", scheme="bipolar").rank1(xbar, rows, cols)
    assert bip.hardware_phases() == 2


def test_refresh_preserves_weights_within_one_pulse_step():
    xbar = ideal_xbar(shape=(20, 10))
    # write-verify to half a pulse step (0.0005 of the window): the refresh resets both devices and
    # verifies the difference back up
    sched = PulseScheduler(quantisation="round", k_max=1000, refresh_margin=0.05, refresh_method="write_verify",
                           refresh_tol=0.0005)
    step = float(sched.pulse_step(xbar, "plus", +1))
    torch.manual_seed(3)
    # drive both devices of every pair high (SET-only), keeping a known difference
    up = torch.full((20, 10), 0.97, dtype=torch.float64)
    diff = (torch.rand(20, 10, dtype=torch.float64) * 2 - 1) * 0.3
    xbar.apply_schedule(sched.dense(xbar, up).phases[0])
    xbar.apply_schedule(sched.dense(xbar, -up + diff).phases[0])
    # that was two raw phases; now one more small update through apply() triggers the refresh
    w_before = xbar.weights()
    assert sched.needs_refresh(xbar).all()
    stats = sched.update(xbar, torch.zeros(20, 10, dtype=torch.float64))
    assert stats.refreshed == 200 and stats.pulses > 0
    assert (xbar.weights() - w_before).abs().max() <= step * (1 + 1e-9)
    gp, gm = xbar.conductances()
    # one device of every pair is back near g_min (within the refresh tolerance)
    assert torch.minimum(gp, gm).max() <= xbar.model.params.g_min + 0.005 * xbar.model.params.window
    assert not sched.needs_refresh(xbar).any()


def test_periodic_refresh_and_single_device_mapping():
    xbar = ideal_xbar(mapping="reference")
    sched = PulseScheduler(quantisation="round", refresh_every=1)
    stats = sched.update(xbar, torch.full((40, 30), 0.01, dtype=torch.float64))
    assert stats.refreshed == 0  # refresh is for SET-only pairs, not single devices
    with pytest.raises(ValueError, match="minus array"):
        xbar.apply_schedule(__import__("memsnn").crossbar.DensePhase(torch.ones(40, 30, dtype=torch.int32), torch.ones(40, 30, dtype=torch.int32)))
    pair = ideal_xbar()
    periodic = PulseScheduler(quantisation="round", refresh_every=2)
    assert periodic.update(pair, torch.zeros(40, 30, dtype=torch.float64)).refreshed == 0
    assert periodic.update(pair, torch.zeros(40, 30, dtype=torch.float64)).refreshed == 1200


def test_state_aware_step_follows_the_nonlinear_law():
    model = make_device("srtio3", read_noise_std=0.0, step_std=0.0, volatile_ratio=0.0, drift_nu=0.0,
                        r_dtod=0.0, c_dtod=0.0, g_init_dtod=0.0, g_min_dtod=0.0, g_max_dtod=0.0)
    xbar = Crossbar(4, 4, model, dtype=torch.float64)
    aware = PulseScheduler(step="state_aware")
    low = aware.pulse_step(xbar, "plus", +1)
    xbar.apply_pulses(plus=torch.full((4, 4), 60, dtype=torch.int32))
    high = aware.pulse_step(xbar, "plus", +1)
    assert torch.all(high < 0.5 * low)  # the power law's steps shrink as the device potentiates
    with pytest.raises(ValueError, match="nominal step"):
        aware.rank1(xbar, torch.ones(4, dtype=torch.int32), torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize("scheme", ["set_only", "bipolar"])
def test_accumulate_writes_whole_pulses_when_the_sum_reaches_a_step(scheme):
    """Mixed precision: 0.3 of a step per update, 10 updates -> exactly 3 pulses, and the
    accumulator holds what is left below one step; changes the other way are netted digitally."""
    xbar = ideal_xbar(shape=(3, 2), pair_mode="balanced" if scheme == "bipolar" else "one_sided")
    sched = PulseScheduler(quantisation="accumulate", scheme=scheme)
    step = float(sched.pulse_step(xbar, "plus", +1))
    dw = torch.tensor([[0.3], [-0.3], [0.05]], dtype=torch.float64).expand(3, 2).contiguous() * step
    if scheme == "bipolar":
        dw = 2 * dw  # each device of the pair takes half
    w0 = xbar.weights()
    pulses = [sched.update(xbar, dw).pulses for _ in range(10)]
    change = (xbar.weights() - w0) / step
    expect = {"set_only": [3.0, -3.0, 0.0], "bipolar": [6.0, -6.0, 0.0]}[scheme]
    torch.testing.assert_close(change[:, 0], torch.tensor(expect, dtype=torch.float64))
    # rows 0 and 1 x 2 columns: 3 pulses on one device (set_only), or 3 on each device (bipolar)
    assert sum(pulses) == {"set_only": 12, "bipolar": 24}[scheme]
    assert pulses[:3] == [0, 0, 0]  # nothing is written before a step has accumulated
    left = sched.residuals[xbar] / step
    torch.testing.assert_close(left[:, 0], torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64) * (2 if scheme == "bipolar" else 1),
                               atol=1e-9, rtol=0)
    # netting: +0.05 then -0.05 of a step, repeated, never writes a pulse
    flip = PulseScheduler(quantisation="accumulate", scheme=scheme)
    assert sum(flip.update(xbar, s * 0.05 * step * torch.ones(3, 2, dtype=torch.float64)).pulses
               for s in (1, -1) * 20) == 0


def test_accumulate_drops_what_k_max_clips_instead_of_winding_up():
    xbar = ideal_xbar(shape=(2, 2))
    sched = PulseScheduler(quantisation="accumulate", k_max=4)
    step = float(sched.pulse_step(xbar, "plus", +1))
    w0 = xbar.weights()
    sched.update(xbar, torch.full((2, 2), 10.25 * step, dtype=torch.float64))
    torch.testing.assert_close((xbar.weights() - w0) / step, torch.full((2, 2), 4.0, dtype=torch.float64))
    torch.testing.assert_close(sched.residuals[xbar] / step, torch.full((2, 2), 0.25, dtype=torch.float64))
    with pytest.raises(ValueError, match="accumulate"):
        sched.rank1(xbar, torch.ones(2, dtype=torch.int32), torch.ones(2, dtype=torch.float64))


def test_scheduler_input_errors():
    xbar = ideal_xbar(shape=(5, 4))
    sched = PulseScheduler()
    with pytest.raises(ValueError, match=r"dW must be a tensor of shape \(5, 4\)"):
        sched.dense(xbar, torch.zeros(4, 5))
    with pytest.raises(ValueError, match="NaN"):
        sched.dense(xbar, torch.full((5, 4), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="0/1 gates"):
        sched.rank1(xbar, torch.full((5,), 0.5), torch.zeros(4))
    with pytest.raises(ParameterError, match="quantisation='nearest'"):
        SchedulerParams(quantisation="nearest")


def test_refresh_trigger_allows_for_the_spread_of_g_max_and_needs_a_common_mode():
    # g_max spread of 10 % of the window: a device whose own bound is low saturates below the
    # nominal trigger; with refresh_spread = 2 the trigger sits at 1 - (0.05 + 0.2) of the window
    xbar = ideal_xbar(shape=(200, 50), g_max_dtod=0.1)
    own = xbar.plus.dev["g_max"]
    window = xbar.model.params.window
    g_min = xbar.model.params.g_min
    # saturate every G_plus at its own bound (SET-only: a large potentiation)
    xbar.apply_schedule(PulseScheduler(quantisation="round", k_max=5000).dense(xbar, torch.full((200, 50), 10.0, dtype=torch.float64)).phases[0])
    gp, _ = xbar.conductances()
    torch.testing.assert_close(gp, own.to(gp.dtype), rtol=1e-6, atol=0.0)
    # no common mode yet (every G_minus at g_min): a refresh could free nothing, so none is due
    assert not PulseScheduler(refresh_spread=0.0).needs_refresh(xbar).any()
    # give every pair a common mode of 0.1 of the window (G_minus up), as SET-only training does
    xbar.minus = xbar.model.program(xbar.minus, torch.full((200, 50), g_min + 0.1 * window, dtype=torch.float64))
    nominal = PulseScheduler(refresh_spread=0.0).needs_refresh(xbar)
    aware = PulseScheduler().needs_refresh(xbar)
    low = own < g_min + (1 - 0.05) * window  # devices whose own bound is under the nominal trigger
    assert 0.2 < low.double().mean() < 0.45  # ~31 % for a normal spread
    assert torch.equal(nominal, ~low)  # the nominal trigger never fires for them
    beyond = own < g_min + (1 - 0.25) * window  # under even the spread-aware trigger (~0.6 %)
    assert torch.equal(aware, ~beyond) and beyond.double().mean() < 0.02


def spread_xbar(shape=(20, 16)):
    """Linear device with 20 % device-to-device spread of the step and 10 % of the SET/RESET ratio."""
    model = make_device("ideal", g_min=5e-9, g_max=1e-7, step=1e-10, step_dtod=0.2, up_down_dtod=0.1)
    xbar = Crossbar(*shape, model, dtype=torch.float64, seed=4)
    xbar.program(torch.zeros(shape, dtype=torch.float64), method="direct")
    return xbar


@pytest.mark.parametrize("step", ["device", "calibrated"])
def test_device_and_calibrated_steps_give_each_device_its_own_count(step):
    """On a linear device, one pulse of device (i, j) moves ``scale_set[i, j] * step``: with
    ``step="device"`` (its own law) and ``"calibrated"`` (measured gains) a requested change is
    realised on every device to within one pulse; the nominal law misses by the spread."""
    xbar = spread_xbar()
    sched = PulseScheduler(quantisation="round", step=step, k_max=1000, refresh_margin=0.0)
    if step == "calibrated":
        cal = sched.calibrate(xbar)
        assert sched.calibrations[xbar] is cal
        xbar.program(torch.zeros(xbar.shape, dtype=torch.float64), method="direct")
    dw = 0.3 * (2 * torch.rand(xbar.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 1)
    nominal = spread_xbar()
    PulseScheduler(quantisation="round", step="state_aware", k_max=1000, refresh_margin=0.0).update(nominal, dw)
    sched.update(xbar, dw)
    one_pulse = 1e-10 * 1.6 / 9.5e-8  # the largest device step in weight units (scale 1)
    assert float((xbar.weights() - dw).abs().max()) < one_pulse
    assert float((nominal.weights() - dw).abs().max()) > 10 * one_pulse


def test_calibrated_step_measures_a_crossbar_on_its_first_update_once():
    xbar = spread_xbar((6, 5))
    sched = PulseScheduler(quantisation="round", step="calibrated", k_max=1000)
    pulses0 = xbar.total_pulses
    sched.update(xbar, torch.full(xbar.shape, 0.1, dtype=torch.float64))
    assert xbar in sched.calibrations
    first = xbar.total_pulses - pulses0
    assert first > 6 * 5 * 2 * 100  # the calibration's pulses are counted on the crossbar
    cal = sched.calibrations[xbar]
    pulses1 = xbar.total_pulses
    sched.update(xbar, torch.full(xbar.shape, 0.1, dtype=torch.float64))
    assert sched.calibrations[xbar] is cal  # measured once
    second = xbar.total_pulses - pulses1  # the update alone: 0.1 of the window is ~95 pulses per device
    assert 6 * 5 * 60 < second < 6 * 5 * 140 and first > 10 * second
    assert torch.allclose(cal.gain("plus", +1), xbar.plus.dev["scale_set"], rtol=1e-3)
