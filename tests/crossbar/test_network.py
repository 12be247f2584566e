import pytest
import torch
from torch import nn

from memsnn.crossbar.layers import CrossbarLinear
from memsnn.crossbar.network import SpikingNetwork
from memsnn.crossbar.neurons import LIFParams
from memsnn.device_models import make_device


def ideal_layer(w, **kw):
    layer, rep = CrossbarLinear.from_weight(w, "ideal", method="direct", dtype=torch.float64, **kw)
    return layer


def test_ideal_crossbar_layer_equals_float_layer_exactly():
    torch.manual_seed(0)
    w = torch.randn(70, 30, dtype=torch.float64) * 0.2
    layer = ideal_layer(w, params=None)
    lin = nn.Linear(70, 30, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(w.t())
    x = torch.rand(9, 70, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    y, y2 = layer(x), lin(x2)
    torch.testing.assert_close(y, y2, rtol=1e-12, atol=1e-12)
    g = torch.randn(9, 30, dtype=torch.float64)
    y.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-12, atol=1e-12)


def test_weight_gradient_accumulates_x_transpose_grad():
    torch.manual_seed(1)
    layer = ideal_layer(torch.randn(5, 4, dtype=torch.float64))
    layer.track_weight_grad = True
    xs = [torch.rand(3, 5, dtype=torch.float64) for _ in range(2)]
    gs = [torch.randn(3, 4, dtype=torch.float64) for _ in range(2)]
    for x, g in zip(xs, gs):
        layer(x.requires_grad_(True)).backward(g)
    expected = sum(x.t() @ g for x, g in zip(xs, gs))
    torch.testing.assert_close(layer.weight_grad, expected)


def test_ideal_crossbar_network_equals_digital_network():
    net = SpikingNetwork([20, 16, 5], neuron=LIFParams(beta=0.8, threshold=0.5), seed=3).double()
    xnet, reports = net.to_crossbars("ideal", method="direct", dtype=torch.float64)
    assert all(r.pulses == 0 for r in reports)
    x = (torch.rand(12, 7, 20, generator=torch.Generator().manual_seed(0)) < 0.4).double()
    a, b = net(x, record=True), xnet(x, record=True)
    assert a.spikes.sum() > 0
    assert torch.equal(a.spikes, b.spikes)
    torch.testing.assert_close(a.membrane, b.membrane, rtol=1e-10, atol=1e-12)
    for ra, rb in zip(a.records, b.records):
        assert torch.equal(ra.post, rb.post)


def test_records_hold_what_local_rules_need():
    net = SpikingNetwork([6, 4, 3], neuron=LIFParams(beta=0.9, threshold=0.3), seed=0)
    x = (torch.rand(10, 2, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    out = net(x, record=True)
    assert len(out.records) == 2
    r0, r1 = out.records
    assert torch.equal(r0.pre, x) and torch.equal(r1.pre, r0.post) and torch.equal(r1.post, out.spikes)
    fst = r0.first_spike_times()
    for b in range(2):
        for n in range(4):
            fired = torch.nonzero(r0.post[:, b, n])
            assert fst[b, n] == (fired[0, 0] if len(fired) else 10)
    pre_tr, post_tr = r0.traces(tau_pre=2.0, tau_post=3.0)
    assert pre_tr.shape == (10, 2, 6) and post_tr.shape == (10, 2, 4)
    torch.testing.assert_close(pre_tr[1], pre_tr[0] * torch.exp(torch.tensor(-0.5)) + x[1])


def test_drift_compensation_restores_the_mean_scale():
    model = make_device("srtio3", read_noise_std=0.0, step_std=0.0, volatile_ratio=0.0, drift_nu_dtod=0.0, drift_nu=0.1)
    torch.manual_seed(2)
    w = torch.randn(40, 10) * 0.3
    layer, _ = CrossbarLinear.from_weight(w, model, method="direct", compensate_drift=True)
    x = torch.rand(6, 40)
    y0 = layer(x)
    layer.crossbar.advance(86400.0)
    factor = ((86400 + 20) / 20) ** -0.1
    assert layer.drift_factor() == pytest.approx(1 / factor, rel=1e-4)
    torch.testing.assert_close(layer(x), y0, rtol=1e-4, atol=1e-6)
    layer.compensate_drift = False
    torch.testing.assert_close(layer(x), y0 * factor, rtol=1e-4, atol=1e-6)


def test_per_column_drift_compensation_undoes_drift_that_differs_between_columns():
    # columns written at different times drift by different factors later on: devices drift from
    # their own last pulse, G ~ ((t - t_prog + t0) / t0) ** -nu
    model = make_device("srtio3", read_noise_std=0.0, step_std=0.0, volatile_ratio=0.0, drift_nu_dtod=0.0, drift_nu=0.1)
    torch.manual_seed(3)
    w = torch.rand(40, 10) * 0.3  # same sign per column: no cancellation in the reference
    layer, _ = CrossbarLinear.from_weight(w, model, method="direct", compensate_drift="column")
    xbar = layer.crossbar
    xbar.advance(1000.0)
    late = torch.zeros(40, 10, dtype=torch.bool)
    late[:, :5] = True
    xbar.program(w.to(xbar.dtype), method="direct", mask=late)  # columns 0-4 written 1000 s later
    layer.calibrate_drift()
    glob = CrossbarLinear(xbar, compensate_drift="global")
    glob.calibrate_drift()
    x = torch.rand(6, 40)
    y0, yg0 = layer(x), glob(x)
    xbar.advance(3600.0)
    old, new = ((4600 + 20) / 1020) ** -0.1, ((3600 + 20) / 20) ** -0.1  # drift since calibration
    expected = torch.tensor([1 / new] * 5 + [1 / old] * 5, dtype=torch.float64)
    torch.testing.assert_close(layer.drift_factor().double(), expected, rtol=1e-4, atol=0.0)
    torch.testing.assert_close(layer(x), y0, rtol=1e-4, atol=1e-6)
    # one global gain cannot: the two groups of columns stay apart by the ratio of their factors
    ratio = (glob(x) / yg0).mean(dim=0)
    assert ratio[:5].mean() / ratio[5:].mean() == pytest.approx(new / old, rel=1e-3)
    with pytest.raises(ValueError, match="compensate_drift='per-row'"):
        CrossbarLinear(xbar, compensate_drift="per-row")


def test_network_input_errors():
    net = SpikingNetwork([4, 3, 2])
    with pytest.raises(ValueError, match=r"expected \[T, B, 4\]"):
        net(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="sizes"):
        SpikingNetwork([4])
    with pytest.raises(ValueError, match="readout='softmax'"):
        SpikingNetwork([4, 2], readout="softmax")
    with pytest.raises(ValueError, match="synapse layer 0 maps 5 -> 3, expected 4 -> 3"):
        SpikingNetwork([4, 3], synapses=[nn.Linear(5, 3)])
