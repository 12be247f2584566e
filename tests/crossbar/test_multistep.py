"""Multi-step execution: the fused LIF time loop and the layer-by-layer network against the
per-step reference (exact where the same numbers are used, statistics where draws differ)."""

import math

import pytest
import torch

from memsnn.crossbar import Crossbar, CrossbarParams, PeripheryParams
from memsnn.crossbar.multistep import fast_path_applies, leaky_integrate, run_lif, run_lif_steps
from memsnn.crossbar.network import SpikingNetwork
from memsnn.philox import PARALLEL_MIN
from memsnn.crossbar.neurons import LIFParams
from memsnn.device_models import make_device


def currents(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=dtype) * 0.7 + 0.3)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_lif_forward_is_bitwise_the_step_loop(reset, dtype):
    p = LIFParams(beta=0.85, threshold=1.0, reset=reset)
    cur = currents((30, 8, 40), dtype)
    s0, v0 = run_lif_steps(cur, p)
    s1, v1 = run_lif(cur, p)
    assert 0 < int(s0.sum()) < s0.numel()  # some spikes, not all
    assert torch.equal(s0, s1) and torch.equal(v0, v1)
    assert s1.dtype == dtype and v1.dtype == dtype


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "triangular"])
def test_fused_lif_backward_matches_autograd_through_the_step_loop(reset, surrogate):
    p = LIFParams(beta=0.8, threshold=0.9, reset=reset, surrogate=surrogate, surrogate_slope=3.0)
    cur = currents((25, 6, 30), torch.float64, seed=1)
    g = torch.Generator().manual_seed(2)
    ws, wv = torch.randn(cur.shape, generator=g, dtype=cur.dtype), torch.randn(cur.shape, generator=g, dtype=cur.dtype)
    grads = []
    for f in (run_lif_steps, run_lif):
        c = cur.clone().requires_grad_(True)
        s, v = f(c, p)
        ((s * ws).sum() + (v * wv).sum()).backward()
        grads.append(c.grad)
    assert grads[0].abs().max() > 0.1
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-10, atol=1e-12)
    # only the spikes feed the loss: the membrane's gradient is None in the backward
    c = cur.clone().requires_grad_(True)
    (run_lif(c, p)[0] * ws).sum().backward()
    c0 = cur.clone().requires_grad_(True)
    (run_lif_steps(c0, p)[0] * ws).sum().backward()
    torch.testing.assert_close(c.grad, c0.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numba_loops_are_bitwise_the_torch_loops_on_any_thread_count(reset, dtype, monkeypatch):
    """The numba forward and backward loops against the torch ones (``_NUMBA_LOOPS = False``), on
    several ``_BLOCK``-neuron blocks split over one and two threads."""
    from memsnn.crossbar import multistep

    p = LIFParams(beta=0.85, threshold=0.9, reset=reset, surrogate="fast_sigmoid")
    cur = currents((60, 5, 1000), dtype, seed=3)  # 5000 neurons: three blocks of 2048
    assert cur[0].numel() > 2 * multistep._BLOCK and cur.numel() >= 2 * PARALLEL_MIN  # two threads split it
    w = torch.randn(cur.shape, generator=torch.Generator().manual_seed(4), dtype=dtype)

    def run(numba_loops, threads):
        monkeypatch.setattr(multistep, "_NUMBA_LOOPS", numba_loops)
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.no_grad():
                s_ng, v_ng = run_lif(cur, p)
            c = cur.clone().requires_grad_(True)
            s, v = run_lif(c, p)
            ((s * w).sum() + (v * w.flip(0)).sum()).backward()
            return s_ng, v_ng, s.detach(), v.detach(), c.grad
        finally:
            torch.set_num_threads(old)

    ref = run(False, 1)
    assert 0 < int(ref[0].sum()) < ref[0].numel() and ref[4].abs().max() > 0.1
    for threads in (1, 2):
        got = run(True, threads)
        for a, b in zip(ref, got):
            assert a.dtype == b.dtype and torch.equal(a, b)


def test_neurons_outside_the_fast_path_use_the_step_loop():
    for p in (LIFParams(refractory=2), LIFParams(adapt_increment=0.2)):
        assert not fast_path_applies(p)
        cur = currents((20, 4, 10), torch.float64)
        s0, v0 = run_lif_steps(cur, p)
        s1, v1 = run_lif(cur, p)
        assert torch.equal(s0, s1) and torch.equal(v0, v1)
    assert fast_path_applies(LIFParams())


def test_leaky_integrate_hand_values():
    cur = torch.tensor([[[1.0]], [[2.0]], [[0.0]]])
    v = leaky_integrate(cur, 0.5)
    assert v.flatten().tolist() == [1.0, 2.5, 1.25]
    c = cur.clone().requires_grad_(True)
    leaky_integrate(c, 0.5).sum().backward()  # dv_sum/dI[t] = sum_k 0.5^(k - t)
    assert c.grad.flatten().tolist() == [1.75, 1.5, 1.0]


def test_network_mode_is_checked():
    with pytest.raises(ValueError, match="mode='batch'.*'multi', 'step'"):
        SpikingNetwork([4, 3], mode="batch")


@pytest.mark.parametrize("readout", ["count", "membrane"])
def test_digital_network_multi_equals_step(readout):
    net = SpikingNetwork([20, 16, 5], neuron=LIFParams(beta=0.8, threshold=0.5), seed=3, readout=readout).double()
    x = (torch.rand(12, 7, 20, generator=torch.Generator().manual_seed(0)) < 0.4).double()
    net.mode = "multi"
    a = net(x, record=True)
    net.mode = "step"
    b = net(x, record=True)
    assert a.records[0].post.sum() > 0
    assert torch.equal(a.spikes, b.spikes)
    torch.testing.assert_close(a.membrane, b.membrane, rtol=1e-12, atol=1e-12)
    for ra, rb in zip(a.records, b.records):
        assert torch.equal(ra.pre, rb.pre) and torch.equal(ra.post, rb.post)
        torch.testing.assert_close(ra.current, rb.current, rtol=1e-12, atol=1e-12)


def noisy_net(seed=0, out_noise=0.05):
    net = SpikingNetwork([40, 32, 8], neuron=LIFParams(beta=0.9, threshold=0.4), seed=1).double()
    model = make_device("srtio3", read_noise_std=0.05)
    xnet, _ = net.to_crossbars(model, method="direct", dtype=torch.float64, seed=seed,
                               params=CrossbarParams(tile_rows=16, tile_cols=16),
                               periphery=PeripheryParams(dac_bits=8, adc_bits=8, output_noise=out_noise))
    return xnet


@pytest.mark.parametrize("batch", [16, 7])
def test_crossbar_network_multi_equals_step_with_the_same_draws(batch):
    """Per step or multi-step, every input row reads the same noise numbers (any batch size)."""
    x = (torch.rand(10, batch, 40, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    a = noisy_net(seed=5)(x, record=True)
    step = noisy_net(seed=5)
    step.mode = "step"
    b = step(x, record=True)
    assert a.records[0].post.sum() > 0 and a.spikes.sum() > 0
    assert torch.equal(a.spikes, b.spikes)
    for ra, rb in zip(a.records, b.records):
        assert torch.equal(ra.post, rb.post)
        torch.testing.assert_close(ra.current, rb.current, rtol=1e-9, atol=1e-12)
    # and the noise is really there: another seed reads different currents
    c = noisy_net(seed=6)(x, record=True)
    assert not torch.allclose(a.records[0].current, c.records[0].current)


@pytest.mark.parametrize("sizes", [[16, 16, 16, 16], [5, 1, 43, 15], [64]])
def test_vmm_noise_stream_does_not_depend_on_how_rows_are_split(sizes):
    """Row r's noise is fixed by the seed and r's place in the read history: any split of the rows
    into calls (3 tiles x 7 outputs = 21 numbers a row, so most calls start inside one of Philox's 4-number counters) reads the numbers of one call on all rows."""
    xbar = Crossbar(40, 7, make_device("srtio3", read_noise_std=0.05), params=CrossbarParams(tile_rows=16),
                    periphery=PeripheryParams(output_noise=0.02), dtype=torch.float64, seed=3)
    x = torch.rand(64, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    whole = xbar.vmm(x)
    assert xbar.noise_stream.position == 64
    xbar.noise_stream.position = 0  # replay the same reads
    bounds = torch.tensor([0] + sizes).cumsum(0).tolist()
    parts = torch.cat([xbar.vmm(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
    torch.testing.assert_close(parts, whole, rtol=1e-12, atol=0)
    again = xbar.vmm(x)  # later rows of the history: other numbers
    assert not torch.allclose(again, whole)


def test_vmm_read_noise_statistics_per_column_when_draws_differ():
    """One call of n rows and n / 3 calls of 3 rows (later rows of the read history: other
    numbers); both must have the output-referred std sum_t sum_i V_i^2 (s+^2 + s-^2)."""
    r = 0.05
    xbar = Crossbar(40, 5, make_device("srtio3", read_noise_std=r), params=CrossbarParams(tile_rows=16),
                    dtype=torch.float64, seed=0)
    w = torch.linspace(0.0, 0.9, 5, dtype=torch.float64).expand(40, 5).contiguous()  # column j: one weight
    xbar.program(w, method="direct")
    x = (torch.rand(40, generator=torch.Generator().manual_seed(2)) < 0.5).double()
    n = 3000
    big = xbar.vmm(x.expand(n, 40).contiguous(), binary=True)
    small = torch.cat([xbar.vmm(x.expand(3, 40).contiguous(), binary=True) for _ in range(n // 3)])
    gp, gm = xbar.conductances()
    per = xbar.periphery
    v = x * per.v_read
    to_w = (per.x_max / per.v_read) * (xbar.scale / xbar.model.params.window)
    mean = (v @ (gp - gm)) * to_w
    std = ((v**2) @ ((gp * r) ** 2 + (gm * r) ** 2)).sqrt() * to_w
    assert (std.max() / std.min()) > 1.3  # the columns differ: a layout mix-up would show
    for y in (big, small):
        se = std / math.sqrt(n)
        assert ((y.mean(0) - mean).abs() < 5 * se).all()
        assert ((y.std(0) / std - 1).abs() < 5 / math.sqrt(2 * n)).all()
    assert not torch.equal(big, small)


@pytest.mark.parametrize("noise_type", ["relative", "absolute"])
def test_vmm_binary_promise_with_signed_spikes_has_the_exact_std(noise_type):
    """``binary=True`` with -x_max / +x_max inputs (no fused GEMM): the output std is still
    ``sqrt(sum_i V_i^2 (s+^2 + s-^2))`` per column."""
    r = 0.05
    xbar = Crossbar(24, 4, make_device("srtio3", read_noise_std=r, read_noise_type=noise_type),
                    params=CrossbarParams(tile_rows=16), dtype=torch.float64, seed=1)
    xbar.program(torch.linspace(0.0, 0.9, 4, dtype=torch.float64).expand(24, 4).contiguous(), method="direct")
    x = torch.where(torch.arange(24) % 3 == 0, -1.0, 1.0).double()
    n = 3000
    y = xbar.vmm(x.expand(n, 24).contiguous(), binary=True)
    gp, gm = xbar.conductances()
    per = xbar.periphery
    v = x * per.v_read
    to_w = (per.x_max / per.v_read) * (xbar.scale / xbar.model.params.window)
    s2 = (gp * r) ** 2 + (gm * r) ** 2 if noise_type == "relative" else torch.full_like(gp, 2 * (r * xbar.model.params.window) ** 2)
    std = ((v**2) @ s2).sqrt() * to_w
    assert ((y.mean(0) - (v @ (gp - gm)) * to_w).abs() < 5 * std / math.sqrt(n)).all()
    assert ((y.std(0) / std - 1).abs() < 5 / math.sqrt(2 * n)).all()
