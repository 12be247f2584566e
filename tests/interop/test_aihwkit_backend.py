"""The aihwkit-backed crossbar: forward through aihwkit's IO, pulses through tile.update, and the
interface the learning rules use."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("aihwkit")

from aihwkit.simulator.presets.devices import ReRamSBPresetDevice  # noqa: E402

from memsnn.crossbar import Crossbar, CrossbarParams, PeripheryParams  # noqa: E402
from memsnn.crossbar.layers import CrossbarLinear  # noqa: E402
from memsnn.crossbar.schedule import DensePhase, OuterPhase, PulseSchedule  # noqa: E402
from memsnn.device_models import make_device  # noqa: E402
from memsnn.interop.aihwkit_backend import BACKENDS, AihwkitCrossbar, make_crossbar  # noqa: E402
from memsnn.learning.scheduler import PulseScheduler, SchedulerParams  # noqa: E402

torch.set_num_threads(1)

IDEAL = make_device("ideal", step=1e-9)  # 100 steps across the window: weight changes are easy to read


def _pair(model=IDEAL, rows=12, cols=5, **kw):
    """The same crossbar on both backends, programmed (direct) with the same random weights."""
    w = torch.rand(rows, cols, generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8
    xs = [make_crossbar(rows, cols, model, backend=b, seed=1, **kw) for b in BACKENDS]
    for x in xs:
        x.program(w, method="direct")
    return w, xs


def test_forward_on_an_ideal_config_equals_x_at_w():
    w, (_, xa) = _pair(rows=40, cols=9)
    x = torch.randn(16, 40)
    assert torch.allclose(xa.vmm(x), x @ w, rtol=1e-5, atol=1e-5)
    assert torch.allclose(xa.vmm(x), x @ xa.weights(), rtol=1e-5, atol=1e-6)
    reads = xa.reads
    assert xa.vmm(x[0]).shape == (9,) and xa.reads == reads + 1
    # the reference and unipolar mappings, and row tiles whose partial sums add digitally
    for mapping, wm in (("reference", w), ("unipolar", w.clamp(min=0))):
        xr = make_crossbar(40, 9, IDEAL, backend="aihwkit", params=CrossbarParams(mapping=mapping, tile_rows=16))
        xr.program(wm, method="direct")
        assert len(xr._tiles) == 3
        assert torch.allclose(xr.vmm(x), x @ wm, rtol=1e-5, atol=1e-5), mapping


def test_forward_periphery_matches_the_native_crossbar():
    """7-bit DAC and ADC (aihwkit's defaults) on both backends: the same quantised outputs (up to
    rounding ties, which float error can move by one ADC step)."""
    per = PeripheryParams(dac_bits=7, adc_bits=7, adc_bound=4.0)
    w, (xn, xa) = _pair(rows=30, cols=8, periphery=per, params=CrossbarParams(tile_rows=16))
    x = torch.rand(200, 30) * 2.4 - 1.2  # beyond x_max: the DAC clips
    yn, ya = xn.vmm(x), xa.vmm(x)
    lsb = 2 * per.adc_bound / (2**7 - 2) * xn.scale  # one ADC step in weight units (x_max = 1)
    diff = (yn - ya).abs()
    assert diff.max() <= 2 * lsb * 1.001
    assert (diff > 1e-3 * lsb).float().mean() < 0.02
    assert (yn - x.clamp(-1, 1) @ w).abs().max() > 0.1 * lsb  # quantisation did act


def test_output_and_read_noise_have_the_native_size():
    model = make_device("ideal", step=1e-9, read_noise_std=0.05, read_noise_type="absolute")
    per = PeripheryParams(output_noise=0.1)
    w, xs = _pair(model, rows=20, cols=4, periphery=per)
    x = torch.full((4000, 20), 0.5)
    stds = [float((xb.vmm(x) - x @ w).std()) for xb in xs]
    # per output: (0.1 I_unit)^2 + 40 devices x (0.5 V x 0.05 window)^2, in weight units (scale 1)
    expected = math.sqrt(0.1**2 + 40 * (0.5 * 0.05) ** 2)
    for s in stds:
        assert s == pytest.approx(expected, rel=0.05)


def test_outer_and_dense_phases_match_the_native_crossbar_exactly():
    """On a noise-free linear device both backends apply the same pulses: identical weights."""
    w, (xn, xa) = _pair(rows=6, cols=4)
    rows = torch.tensor([[2, 0, -1, 3, 0, 1], [0, 1, 1, 0, 0, 0]], dtype=torch.int32)
    cols_p = torch.tensor([[1, -2, 0, 3], [2, 2, 0, 0]], dtype=torch.int32)
    cols_m = torch.tensor([[0, 1, 1, 0], [-1, 0, 0, 1]], dtype=torch.int32)
    dense_p = torch.randint(-3, 4, (6, 4), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    sched = PulseSchedule([OuterPhase(rows, cols_p, cols_m), DensePhase(dense_p, -dense_p)])
    res = [x.apply_schedule(sched) for x in (xn, xa)]
    assert torch.allclose(xa.weights(), xn.weights(), atol=1e-6)
    assert not torch.allclose(xa.weights(), w, atol=1e-3)  # something happened
    assert res[1].pulses == res[0].pulses and res[1].hardware_phases == res[0].hardware_phases
    assert torch.equal(xa.pulse_counts()["plus"], xn.pulse_counts()["plus"])
    assert torch.equal(xa.pulse_counts()["minus"], xn.pulse_counts()["minus"])


def test_stochastic_trains_give_the_expected_coincidences():
    xa = make_crossbar(50, 3, IDEAL, backend="aihwkit")
    xa.program(torch.zeros(50, 3), method="direct")
    p_r, p_c = torch.full((50,), 0.5), torch.tensor([1.0, 0.4, 0.0])
    xa.apply_schedule(OuterPhase(p_r, p_c, None, train="stochastic", length=40))
    n = xa.pulse_counts()["plus"].double()
    # per device: Binomial(40, p_r p_c)
    for j, pc in enumerate(p_c.tolist()):
        assert n[:, j].mean().item() == pytest.approx(40 * 0.5 * pc, abs=4 * math.sqrt(40 * 0.5 * pc + 1e-9) / math.sqrt(50) + 1e-9)


def test_scheduler_and_layer_run_on_the_aihwkit_backend():
    """PulseScheduler (dense and rank-1) and CrossbarLinear (forward, backward, weight gradient)."""
    sched = PulseScheduler(SchedulerParams(quantisation="round", scheme="bipolar"))
    params = CrossbarParams(pair_mode="balanced")
    w, (xn, xa) = _pair(rows=8, cols=3, params=params)
    dw = torch.randn(8, 3, generator=torch.Generator().manual_seed(1)) * 0.1
    stats = [sched.update(x, dw) for x in (xn, xa)]
    assert stats[0].pulses == stats[1].pulses > 0
    assert torch.allclose(xa.weights(), xn.weights(), atol=1e-6)
    gates = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0], dtype=torch.float32)
    for x in (xn, xa):
        sched.update_rank1(x, gates, torch.tensor([0.05, -0.1, 0.0]))
    assert torch.allclose(xa.weights(), xn.weights(), atol=1e-6)
    layer = CrossbarLinear(xa, track_weight_grad=True)
    x = torch.rand(5, 8, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.ones(5, 3) @ xa.weights().t(), atol=1e-5)
    assert torch.allclose(layer.weight_grad, x.detach().t() @ torch.ones(5, 3), atol=1e-5)


def test_program_methods_reach_their_targets():
    model = make_device("ideal", step=1e-9, step_std=0.2)
    w = torch.rand(10, 6, generator=torch.Generator().manual_seed(2)) - 0.5
    for method in ("write_verify", "open_loop", "direct"):
        xa = make_crossbar(10, 6, model, backend="aihwkit", seed=4)
        rep = xa.program(w, method=method, tol=0.02)
        assert rep.method == method
        assert rep.weight_rmse < 0.05, (method, rep.summary())
        assert (rep.pulses > 0) == (method != "direct")
        assert xa.total_pulses == rep.pulses
    mask = torch.zeros(10, 6, dtype=torch.bool)
    mask[:3] = True
    before = xa.weights().clone()
    xa.program(-w, method="write_verify", mask=mask)
    assert torch.equal(xa.weights()[3:], before[3:])
    assert (xa.weights()[:3] + w[:3]).abs().max() < 0.05


def test_drift_after_a_day_agrees_with_native():
    model = make_device("ideal", step=1e-9, drift_nu=0.1, drift_t0=20.0)
    w, (xn, xa) = _pair(model, rows=6, cols=3)
    for x in (xn, xa):
        x.advance(86400.0)
    assert xa.time == 86400.0
    factor = (86400.0 / 20.0) ** -0.1  # about 0.43 of the conductance left
    assert torch.allclose(xa.weights(), w * factor, rtol=2e-3, atol=1e-4)
    assert torch.allclose(xa.weights(), xn.weights(), rtol=2e-3, atol=1e-4)


def test_aihwkit_preset_device_runs_as_a_crossbar():
    xa = AihwkitCrossbar(16, 4, ReRamSBPresetDevice(), g_min=40e-6, g_max=140e-6, seed=2)
    assert type(xa.model).__name__ == "SoftBoundsDevice" and xa.aihwkit_device.dw_min == 0.002
    rep = xa.program(torch.rand(16, 4) * 0.5, method="write_verify")
    assert rep.pulses > 0 and rep.reads > 0
    assert xa.energy == 0.0 and any("energy" in s for s in xa.notes)  # aihwkit presets have no pulse energy
    native = xa.to_native()
    assert isinstance(native, Crossbar) and not isinstance(native, AihwkitCrossbar)
    assert torch.allclose(native.conductances()[0], xa._to_g(xa._tile_weights(persistent=True)[0].double()).float())
    assert native.total_pulses == xa.total_pulses


def test_unavailable_features_give_clear_errors():
    with pytest.raises(ValueError, match="backend='wrong'.*'native', 'aihwkit'"):
        make_crossbar(4, 4, "ideal", backend="wrong")
    with pytest.raises(ValueError, match="ir_drop='approx' is not available"):
        make_crossbar(4, 4, "ideal", backend="aihwkit", params=CrossbarParams(ir_drop="approx"))
    with pytest.raises(ValueError, match="'cpu' only"):
        AihwkitCrossbar(4, 4, "ideal", device="cuda")
    with pytest.raises(TypeError, match="aihwkit pulsed device"):
        AihwkitCrossbar(4, 4, 3.0)
    xa = make_crossbar(4, 2, "ideal", backend="aihwkit")
    phase = OuterPhase(torch.ones(4, dtype=torch.int32), torch.ones(2, dtype=torch.int32))
    with pytest.raises(ValueError, match="half-select"):
        xa.apply_schedule(phase, half_select=True)
    with pytest.raises(ValueError, match="amplitude=2.0"):
        xa.apply_schedule(OuterPhase(phase.rows, phase.cols_plus, amplitude=2.0))
    with pytest.raises(ValueError, match="reads the present only"):
        xa.weights(at=100.0)
    with pytest.raises(TypeError, match="to_native"):
        xa.save("/nonexistent/never-written.pt")
    with pytest.raises(TypeError, match="program\\(\\)"):
        xa._set_array("plus", xa.plus)
    assert xa.total_pulses == 0  # nothing was applied by the refused calls


def test_compare_runs_on_the_aihwkit_backend(tmp_path):
    import pandas as pd

    from memsnn.experiments.cli import main
    from memsnn.experiments.compare import CompareConfig
    from memsnn.interop.aihwkit_backend import AihwkitCrossbar

    # the full default rule list, csdp included
    args = ["compare", "--quick", "--dataset", "iris", "--epochs", "1", "--backend", "aihwkit",
            "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    (run,) = list(tmp_path.iterdir())
    table = pd.read_csv(run / "compare.csv")
    assert set(table.rule) == {"stdp", "sg", "ssdp", "csdp", "logreg"}
    insitu = table[table.device == "srtio3"]
    assert len(insitu) == 4 and (insitu.pulses > 0).all() and insitu.test_acc.between(0, 1).all()
    assert json_backend(run) == "aihwkit"
    assert CompareConfig(backend="aihwkit").rules == CompareConfig().rules
    # their crossbars are kept as native copies for export-maps
    from memsnn.crossbar.storage import load_crossbars

    assert len(load_crossbars(run / "trained")) == 7
    from memsnn.experiments.datasets import load_dataset
    from memsnn.experiments.methods import build_method

    m = build_method("sg", True, load_dataset("iris", seed=0), device="rram", hidden=(8,), backend="aihwkit")
    assert all(isinstance(x, AihwkitCrossbar) for x in m.crossbars())


def json_backend(run):
    import json

    return json.loads((run / "config.json").read_text())["backend"]


def test_csdp_on_the_aihwkit_backend_learns_as_on_native_crossbars():
    """On a noise-free device, CSDP's reads and pulses agree between the backends: same pulses,
    weights equal to float32 rounding after several batches (and far from where they started)."""
    from memsnn.experiments.datasets import load_dataset
    from memsnn.learning.csdp import CSDP

    data = load_dataset("iris", seed=0)
    methods = [CSDP(4, 3, (8,), device=IDEAL, seed=1, backend=b) for b in BACKENDS]
    assert all(type(x) is AihwkitCrossbar for x in methods[1].crossbars())
    start = methods[0].weights()
    for m in methods:
        for i in range(0, 64, 16):
            m.train_batch(data.x_train[i:i + 16], data.y_train[i:i + 16], torch.Generator().manual_seed(5))
    for native, analog, w0 in zip(methods[0].weights(), methods[1].weights(), start):
        assert (native - w0).abs().max() > 0.05  # it learned
        assert torch.allclose(native, analog, atol=1e-5)
    assert [x.total_pulses for x in methods[0].crossbars()] == [x.total_pulses for x in methods[1].crossbars()]
