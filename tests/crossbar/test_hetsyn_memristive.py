"""HetSyn on crossbars: exact special cases on a clean device, noise statistics, the tau map."""

import math

import pytest
import torch

from memsnn.crossbar.hetsyn import HetSynLinear, decay
from memsnn.crossbar.hetsyn_memristive import CrossbarHetSyn
from memsnn.crossbar.maps import load_maps
from memsnn.device_models import make_device

CLEAN = dict(r_dtod=0.0, c_dtod=0.0, g_min_dtod=0.0, g_max_dtod=0.0, g_init_dtod=0.0, read_noise_std=0.0,
             tau_volatile_dtod=0.0, drift_nu=0.0, step_std=0.0)


def _layer(granularity="synapse", form="exact", n_in=12, n_out=7, **kw):
    kw = {"tau_min": 0.01, "tau_max": 0.1, "tau_init_low": 0.01, "tau_init_high": 0.1, "dt": 1e-3, **kw}
    return HetSynLinear(n_in, n_out, granularity=granularity, form=form, weight_gain=3.0, generator=3, **kw)


def _spikes(T=40, B=5, n=12, p=0.25, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n, generator=g) < p).float()


@pytest.mark.parametrize("granularity", ["synapse", "neuron", "layer"])
def test_device_realisation_equals_float_layer_on_a_clean_device(granularity):
    layer = _layer(granularity)
    x = _spikes()
    with torch.no_grad():
        ref = layer.feedforward_current(x)
    m = CrossbarHetSyn.from_float(layer, make_device("srtio3", **CLEAN), weight_method="direct", tau_program="open_loop")
    # every device realises its synapse's tau, scaled into the tunable 1-10 s range
    taus = m.tau_map()
    want = layer.effective_tau().detach().double().expand(7, 12).t() * m.time_scale
    for t in taus.values():
        torch.testing.assert_close(t.double(), want, rtol=1e-5, atol=0)
    assert 1.0 - 1e-6 <= float(want.min()) and float(want.max()) <= 10.0 + 1e-5
    torch.testing.assert_close(m.current(x), ref, rtol=2e-4, atol=2e-5 * float(ref.abs().max()))
    z, v = m(x)
    z_ref, v_ref = layer(x)
    assert torch.equal(z, z_ref.detach()) or float((z != z_ref).float().mean()) < 0.01


def test_binned_realisation_equals_float_binned_layer_on_a_clean_device():
    layer = _layer("synapse", "binned", n_bins=3)
    x = _spikes()
    with torch.no_grad():
        ref = layer.feedforward_current(x)
    m = CrossbarHetSyn.from_float(layer, make_device("srtio3", **CLEAN), realisation="binned", weight_method="direct")
    assert set(m.crossbars) <= {"bin0", "bin1", "bin2"} and len(m.crossbars) >= 2
    torch.testing.assert_close(m.current(x), ref.float(), rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    # the sub-arrays add up to the layer's weights
    torch.testing.assert_close(m.weights(), layer.weight.detach().t(), rtol=1e-4, atol=1e-6)


def test_read_noise_std_is_that_of_each_device_total_conductance():
    """Per device and step the read sees G (1 + a y); the column std must follow it (a noise drawn
    on G alone would be smaller by about the factor 1 + a y)."""
    r = 0.05
    layer = _layer("layer", "binned", n_in=6, n_out=2)
    model = make_device("srtio3", **{**CLEAN, "read_noise_std": r})
    m = CrossbarHetSyn.from_float(layer, model, weight_method="direct", tau_program="open_loop", facilitation=0.5)
    x = torch.zeros(8, 1, 6)
    x[:6, 0, :] = 1.0  # every row spikes for 6 steps: y grows to about 6
    reps = 600
    cur = m.current(x.expand(8, reps, 6).contiguous())  # [T, reps, out]
    xbar = m.crossbars["synapses"]
    gp, gm = (g.double() for g in xbar.conductances())
    rho = decay(m.model.tau_volatile(xbar.plus).double(), m.dt_phys)
    y = torch.zeros_like(gp)
    to_w = m.scale / (0.5 * xbar._w_norm)
    for t in range(8):
        y = rho * y + x[t, 0][:, None].double()
        var = (r * gp * (1 + 0.5 * y)).square().sum(0) + (r * gm * (1 + 0.5 * y)).square().sum(0)
        want = var.sqrt() * to_w
        got = cur[t].double().std(0)
        torch.testing.assert_close(got, want, rtol=0.12, atol=0)  # std of a 600-sample std: ~3 %
    # the mean is the noise-free current
    with torch.no_grad():
        ref = layer.feedforward_current(x)[:, 0]
    assert float((cur.double().mean(1) - ref).abs().max()) < 4 * float(want.max()) / math.sqrt(reps) + 1e-6


def test_tau_map_open_loop_keeps_the_spread_and_verify_measures_it():
    layer = _layer("layer", "binned", n_in=40, n_out=40, tau_init="constant", tau_init_low=0.03, tau_init_high=0.03)
    errs = {}
    for mode in ("open_loop", "verify"):
        m = CrossbarHetSyn.from_float(layer, "srtio3", tau_program=mode, weight_method="direct", seed=1)
        lt = torch.log(m.tau_map()["plus"].double() / m.tau_target)
        errs[mode] = float(lt.abs().median())
        if mode == "open_loop":
            # the zero-bias tau spreads by 10 % per device: log error std ~0.1
            assert 0.07 < float(lt.std()) < 0.13
        else:
            assert m.counters()["tau_reads"] == 2 * 3 * 32 and m.counters()["tau_wait_s"] > 0
    assert errs["verify"] < 0.75 * errs["open_loop"]


def test_targets_outside_the_bias_range_are_clipped_and_reported():
    layer = _layer("synapse", "exact", tau_min=0.001, tau_max=1.0, tau_init_low=0.001, tau_init_high=1.0)
    m = CrossbarHetSyn.from_float(layer, "srtio3", tau_program="open_loop", weight_method="direct")
    rep = m.tau_report()
    assert rep["tau_clipped_fraction"] > 0.2  # three decades asked of a one-decade range
    bias = m.crossbars["synapses"].plus.bias
    assert float(bias.min()) >= -1.0 - 1e-6 and float(bias.max()) <= 1.0 + 1e-6
    assert float((bias.abs() > 1 - 1e-6).float().mean()) > 0.2


def test_spike_pulses_and_energy_are_counted():
    layer = _layer()
    x = _spikes()
    m = CrossbarHetSyn.from_float(layer, "srtio3", weight_method="direct", tau_program="open_loop", energy_spike=2e-13)
    m.current(x)
    c = m.counters()
    assert c["spike_pulses"] == int(x.sum()) * 7 * 2
    assert c["spike_energy_J"] == pytest.approx(c["spike_pulses"] * 2e-13)


def test_drift_compensation_keeps_the_current_after_a_day():
    layer = _layer()
    x = _spikes()
    with torch.no_grad():
        ref = layer.feedforward_current(x)
    errs = {}
    for spread in (0.0, 0.2):
        model = make_device("srtio3", **{**CLEAN, "drift_nu": 0.05, "drift_nu_dtod": spread})
        for comp in (True, False):
            m = CrossbarHetSyn.from_float(layer, model, weight_method="direct", tau_program="open_loop", compensate_drift=comp)
            m.advance(86400.0)
            errs[spread, comp] = float((m.current(x) - ref).norm() / ref.norm())
    # (1 day / 20 s) ** -0.05 loses about 35 % of every conductance
    assert errs[0.0, False] > 0.3 and errs[0.2, False] > 0.3
    assert errs[0.0, True] < 1e-3  # one exponent for every device: a column gain undoes it exactly
    assert errs[0.2, True] < errs[0.2, False] / 3  # per-device exponents leave a residual


def test_save_load_round_trip_and_tau_map_export(tmp_path):
    layer = _layer()
    x = _spikes()
    m = CrossbarHetSyn.from_float(layer, "srtio3", tau_program="open_loop", weight_method="direct")
    path = m.save(tmp_path / "layer.pt")
    with pytest.raises(FileExistsError):
        m.save(path)
    loaded = CrossbarHetSyn.load(path)
    assert torch.equal(loaded.current(x), m.current(x))  # same generator state: same noise
    assert loaded.counters() == m.counters()
    for key in ("plus", "minus"):
        assert torch.equal(loaded.tau_map()[key], m.tau_map()[key])
    files = m.export_maps(tmp_path / "maps", formats=("csv", "npz"))
    for f in files:
        ms = load_maps(f)
        assert ms.meta["preset"] == "srtio3"
        for key in ("plus", "minus"):
            assert (ms.full(f"tau_{key}") == m.tau_map()[key].numpy()).all()
    with pytest.raises(FileExistsError):
        m.export_maps(tmp_path / "maps", formats=("csv",))


def test_binned_export_writes_each_sub_array_and_the_bins(tmp_path):
    layer = _layer("synapse", "binned", n_bins=3)
    m = CrossbarHetSyn.from_float(layer, "srtio3", realisation="binned", weight_method="direct")
    files = m.export_maps(tmp_path, formats=("npz",))
    import pandas as pd

    bins = pd.read_csv(tmp_path / "hetsyn_bins.csv")
    assert bins["synapses"].sum() == 12 * 7
    assert len([f for f in files if f.suffix == ".npz"]) == len(m.crossbars)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="recurrent"):
        CrossbarHetSyn.from_float(HetSynLinear(4, 3, recurrent=True), "srtio3")
    with pytest.raises(ValueError, match="volatile"):
        CrossbarHetSyn.from_float(_layer(), "ideal")
    with pytest.raises(ValueError, match="granularity='neuron'"):
        CrossbarHetSyn.from_float(_layer("neuron"), "srtio3", realisation="binned")
    with pytest.raises(ValueError, match="form='binned'"):
        CrossbarHetSyn.from_float(_layer("synapse", "exact"), "srtio3", realisation="binned")
    with pytest.raises(ValueError, match="realisation"):
        CrossbarHetSyn.from_float(_layer(), "srtio3", realisation="sparse")
    m = CrossbarHetSyn.from_float(_layer(), "srtio3", weight_method="direct", tau_program="open_loop")
    with pytest.raises(ValueError, match="0 or 1"):
        m.current(torch.full((3, 2, 12), 0.5))
    with pytest.raises(ValueError, match=r"expected \[T, B, 12\]"):
        m.current(torch.zeros(3, 12))
    (tmp_path / "x.pt").write_bytes(b"not torch")
    with pytest.raises(ValueError, match="x.pt"):
        CrossbarHetSyn.load(tmp_path / "x.pt")
