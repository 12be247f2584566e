"""Per-device step calibration (memsnn.crossbar.calibration) and its use in programming."""

import pytest
import torch

from memsnn.crossbar import Crossbar, CrossbarParams
from memsnn.crossbar.calibration import calibrate_steps
from memsnn.device_models import make_device


def linear_xbar(step_dtod=0.15, up_down_dtod=0.1, shape=(16, 12), seed=0):
    # linear law: a device's gain is exactly its sampled step scale (scale_set / scale_reset)
    model = make_device("ideal", g_min=5e-9, g_max=1e-7, step=1e-10, step_dtod=step_dtod, up_down_dtod=up_down_dtod)
    xbar = Crossbar(*shape, model, dtype=torch.float64, seed=seed)
    xbar.program(torch.zeros(shape, dtype=torch.float64), method="direct")
    return xbar


def test_linear_device_gains_are_each_devices_step_scale_exactly():
    xbar = linear_xbar()
    w = 0.6 * (2 * torch.rand(xbar.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 1)
    xbar.program(w, method="direct")
    cal = calibrate_steps(xbar, pulses=200, restore="direct")
    for name in ("plus", "minus"):
        dev = getattr(xbar, name).dev
        assert torch.allclose(cal.gain(name, +1), dev["scale_set"], rtol=1e-6)
        assert torch.allclose(cal.gain(name, -1), dev["scale_reset"], rtol=1e-6)
        assert float(dev["scale_set"].std()) > 0.1  # the spread the calibration has to find
    # the cost is on the counters: 2 arrays x (RESET train + 20 + 200 SET + 100 RESET) pulses, 3 x 4 reads
    assert cal.pulses == xbar.total_pulses and cal.pulses > 2 * 16 * 12 * 320
    assert cal.reads == 12 and cal.seconds == 0.0  # no volatile part: no settling
    assert torch.allclose(xbar.weights(), w.clamp(-1, 1), atol=1e-6)  # restored (direct)


def test_srtio3_gains_with_noise_match_the_noise_free_measurement():
    """c2c noise, read noise, volatile part and drift on: the gains stay within a few % of the
    devices' own (noise-free) gains, which spread by ~60 % on srtio3. Devices that hardly move
    (own gain < 0.3: their change is near the read noise) are left out."""
    clean = dict(step_std=0.0, read_noise_std=0.0, volatile_ratio=0.0, drift_nu=0.0)
    w = 0.5 * (2 * torch.rand(24, 24, generator=torch.Generator().manual_seed(1)) - 1)
    cals = []
    for kw in (clean, {}):
        xbar = Crossbar(24, 24, make_device("srtio3", **kw), scale=1.0, seed=3)  # same seed: same devices
        xbar.program(w.to(xbar.dtype), method="direct")
        cals.append(calibrate_steps(xbar, restore="open_loop"))
    truth, noisy = cals
    # measured: SET rel. error std 0.03, bias 0.004; RESET 0.08, bias 0.024
    for pol, (err_max, bias_max) in ((+1, (0.06, 0.015)), (-1, (0.14, 0.05))):
        t, n = truth.gain("plus", pol).double().flatten(), noisy.gain("plus", pol).double().flatten()
        assert float(t.std() / t.mean()) > 0.3
        sel = t > 0.3
        assert float(sel.double().mean()) > 0.85
        rel = (n / t - 1)[sel]
        assert float(rel.std()) < err_max, pol
        assert abs(float(rel.mean())) < bias_max, pol  # drift during settling is corrected
    assert noisy.seconds > 3 * 5 * 3.16  # three settles of 5 tau_volatile each


def test_srtio3_gains_follow_each_devices_own_step():
    xbar = Crossbar(20, 20, make_device("srtio3", step_std=0.0, read_noise_std=0.0, volatile_ratio=0.0, drift_nu=0.0),
                    scale=1.0, seed=5)
    cal = calibrate_steps(xbar, restore="none")
    st, m = xbar.plus, xbar.model
    g = torch.full(st.shape, 2.5e-8, dtype=torch.float64)  # inside the window the measurement spans
    own = m.nominal_step(g, +1, dev={k: v.double() for k, v in st.dev.items()}) / m.nominal_step(g, +1)
    r = torch.corrcoef(torch.stack([own.flatten(), cal.gain("plus", +1).double().flatten()]))[0, 1]
    assert float(r) > 0.95


def test_open_loop_programming_with_gains_removes_the_step_spread():
    w = 0.5 * (2 * torch.rand(16, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64) - 1)
    errs = {}
    for use in (False, True):
        xbar = linear_xbar(step_dtod=0.2, up_down_dtod=0.0)
        cal = calibrate_steps(xbar, pulses=200, restore="none") if use else None
        xbar.program(w, method="open_loop", step_gains=cal)
        errs[use] = float((xbar.weights() - w).abs().max())
    assert errs[False] > 0.05  # nominal counts: 20 % step spread shows as weight error
    assert errs[True] < 0.01  # one step of the 1000-step window, twice (a pair), plus rounding


def test_calibration_errors():
    xbar = linear_xbar()
    with pytest.raises(ValueError, match="reads=0"):
        calibrate_steps(xbar, reads=0)
    with pytest.raises(ValueError, match="restore='back'"):
        calibrate_steps(xbar, restore="back")
    with pytest.raises(ValueError, match="pulses=0"):
        calibrate_steps(xbar, pulses=0)
    with pytest.raises(ValueError, match="settle=-1"):
        calibrate_steps(xbar, settle=-1.0)
    with pytest.raises(TypeError, match="native memsnn Crossbar"):
        calibrate_steps(object())
    with pytest.raises(TypeError, match="StepCalibration"):
        xbar.program(torch.zeros(xbar.shape, dtype=torch.float64), method="open_loop", step_gains={"plus": 1})


def test_single_device_mapping_is_calibrated_too():
    model = make_device("ideal", g_min=5e-9, g_max=1e-7, step=1e-10, step_dtod=0.15)
    xbar = Crossbar(8, 6, model, params=CrossbarParams(mapping="unipolar"), dtype=torch.float64, seed=1)
    cal = calibrate_steps(xbar, pulses=100, restore="direct")
    assert set(cal.set_gain) == {"plus"}
    assert torch.allclose(cal.gain("plus", +1), xbar.plus.dev["scale_set"], rtol=1e-6)


def test_segment_gains_interpolate_between_each_devices_levels():
    from memsnn.crossbar.calibration import StepCalibration

    levels = torch.tensor([[[1.0, 10.0]], [[3.0, 20.0]], [[5.0, 30.0]]])  # [S=3, 1, 2], per device
    gains = torch.tensor([[[1.0, 2.0]], [[2.0, 2.0]], [[4.0, 1.0]]])
    cal = StepCalibration({"plus": gains}, {"plus": gains.flip(0)}, {"plus": levels}, {"plus": levels.flip(0)})
    assert cal.segments == 3
    g = torch.tensor([[2.0, 25.0]])
    assert torch.allclose(cal.gain("plus", +1, g), torch.tensor([[1.5, 1.5]]))
    assert torch.allclose(cal.gain("plus", -1, g), torch.tensor([[1.5, 1.5]]))  # order of levels does not matter
    # beyond the ends: linear extrapolation, kept within [1/2, 2] of the end segment's gain
    assert torch.allclose(cal.gain("plus", +1, torch.tensor([[6.0, 0.0]])), torch.tensor([[5.0, 2.0]]))
    assert torch.allclose(cal.gain("plus", +1, torch.tensor([[100.0, 100.0]])), torch.tensor([[8.0, 0.5]]))
    assert torch.allclose(cal.gain("plus", +1), gains.mean(0))


def test_segmented_calibration_follows_the_law_inside_the_window_better_than_one_gain():
    kw = dict(step_std=0.0, read_noise_std=0.0, volatile_ratio=0.0, drift_nu=0.0)
    errs = {}
    for segments in (1, 4):
        xbar = Crossbar(16, 16, make_device("srtio3", **kw), scale=1.0, seed=5)
        cal = calibrate_steps(xbar, segments=segments, restore="none")
        st, m = xbar.plus, xbar.model
        dev = {k: v.double() for k, v in st.dev.items()}
        g = torch.full(st.shape, 6e-8, dtype=torch.float64)
        own = m.nominal_step(g, +1, dev=dev) / m.nominal_step(g, +1)
        errs[segments] = float((cal.gain("plus", +1, g).double() / own - 1).abs().median())
    # measured: 5.8 % with one gain, 0.2 % with four segments
    assert errs[4] < 0.02 < errs[1]
    with pytest.raises(ValueError, match="segments=0"):
        calibrate_steps(xbar, segments=0)
    with pytest.raises(ValueError, match="pulses=2 must be an integer >= segments = 4"):
        calibrate_steps(xbar, segments=4, pulses=2)


def test_segment_gains_in_float32_index_and_stacked_arrays_agree_with_the_float64_table():
    """gain() interpolates in g's dtype (the scheduler's float32 controller), for a subset of
    devices (index=) and for both arrays at once: the float64 result to float32 rounding."""
    xbar = Crossbar(12, 10, "srtio3", seed=3)
    xbar.program(torch.rand(12, 10, generator=torch.Generator().manual_seed(0)) - 0.5, method="open_loop")
    cal = calibrate_steps(xbar, segments=4, restore="none")
    g64 = torch.rand(12, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 9e-8 + 5e-9
    ref = cal.gain("plus", +1, g64)
    got = cal.gain("plus", +1, g64.float())
    assert got.dtype == torch.float32 and ref.dtype == torch.float64
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=0.0)
    both = cal.gain(("plus", "minus"), +1, torch.stack([g64, g64]))
    assert torch.equal(both[0], ref) and torch.equal(both[1], cal.gain("minus", +1, g64))
    idx = torch.tensor([0, 17, 119, 120 + 5])  # into [2 * 12 * 10]: three plus devices, one minus
    sub = cal.gain(("plus", "minus"), +1, torch.stack([g64, g64]).reshape(-1)[idx], index=idx)
    assert torch.equal(sub, both.reshape(-1)[idx])
    assert torch.equal(cal.gain(("plus", "minus"), -1, index=idx), cal.gain(("plus", "minus"), -1).reshape(-1)[idx])
