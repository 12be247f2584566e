"""The event-driven spike read (``Crossbar.spike_read = "sparse"``) against the dense tile GEMMs:
the same noise numbers, the same currents to float rounding, the same ADC codes, statistics."""

import math

import pytest
import torch

from memsnn.crossbar import Crossbar, CrossbarParams, PeripheryParams
from memsnn.crossbar.read_kernel import spike_read
from memsnn.device_models import make_device


def _xbar(noise_type="relative", noise=0.05, out_noise=0.02, adc_bits=None, dtype=torch.float64, n_in=40, n_out=7,
          seed=3, mapping="differential"):
    model = make_device("srtio3", read_noise_std=noise, read_noise_type=noise_type)
    xbar = Crossbar(n_in, n_out, model, params=CrossbarParams(tile_rows=16, mapping=mapping),
                    periphery=PeripheryParams(adc_bits=adc_bits, output_noise=out_noise), dtype=dtype, seed=seed)
    w = torch.rand(n_in, n_out, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1.6 - 0.8
    xbar.program(w.to(dtype), method="direct")
    return xbar


def _spikes(B, n_in, density=0.2, seed=0, dtype=torch.float64):
    return (torch.rand(B, n_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) < density).to(dtype)


def _code(xbar):
    """One ADC code in output (weight) units."""
    per = xbar.periphery
    return (per.x_max / per.v_read) * (xbar.scale / xbar._w_norm) * per.adc_step(xbar.i_unit)


def _both(xbar, x):
    """(sparse, dense) reads of the same rows of the noise stream."""
    p0 = xbar.noise_stream.position
    xbar.spike_read = "sparse"
    a = xbar.vmm(x, binary=True)
    p1 = xbar.noise_stream.position
    xbar.noise_stream.position = p0
    xbar.spike_read = "dense"
    b = xbar.vmm(x, binary=True)
    assert xbar.noise_stream.position == p1
    return a, b, p1 - p0


@pytest.mark.parametrize("noise_type,noise,out_noise", [("relative", 0.05, 0.02), ("absolute", 0.02, 0.0),
                                                       ("absolute", 0.0, 0.03), ("relative", 0.0, 0.0)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sparse_and_dense_reads_agree_without_an_adc(noise_type, noise, out_noise, dtype):
    """Without an ADC the two paths differ only in the order of their sums: the same numbers to
    rounding, noise included (both read the same rows of the stream)."""
    xbar = _xbar(noise_type, noise, out_noise, dtype=dtype)
    x = _spikes(300, 40, dtype=dtype)
    a, b, used = _both(xbar, x)
    assert used == (300 if noise or out_noise else 0)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(a, b, rtol=tol, atol=tol * b.abs().max().item())
    if noise or out_noise:
        xbar.spike_read = "sparse"
        assert not torch.allclose(xbar.vmm(x, binary=True), a)  # later rows: other numbers


def test_sparse_and_dense_reads_give_the_same_adc_codes():
    xbar = _xbar("relative", 0.05, 0.02, adc_bits=6)
    x = _spikes(500, 40, density=0.3)
    a, b, _ = _both(xbar, x)
    unit = _code(xbar)
    diff = (a - b).abs() / unit
    # float64 currents agree to ~1e-15 codes: a code can only flip on a half-step tie
    assert (diff > 1e-6).sum().item() <= 2
    assert diff.max().item() < 3.5  # at most one code per row tile (3 tiles)
    assert a.unique().numel() > 20  # the codes are not all clipped to one value


def test_reference_mapping_and_float32_with_adc_clipping():
    xbar = _xbar("absolute", 0.02, 0.06, adc_bits=5, dtype=torch.float32, mapping="reference")
    x = _spikes(256, 40, density=0.5, dtype=torch.float32)
    a, b, _ = _both(xbar, x)
    diff = (a - b).abs() / _code(xbar)
    assert (diff > 0.5).float().mean().item() < 0.01  # float32 sums in another order: a rare tie flips a code
    assert diff.max().item() < 3.5  # at most one code per row tile (3 tiles)


def test_empty_rows_and_all_active_rows():
    xbar = _xbar("relative", 0.05, 0.02)
    x = torch.zeros(6, 40, dtype=torch.float64)
    x[1] = 1.0  # every input active
    x[3, ::7] = 1.0
    a, b, _ = _both(xbar, x)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_the_sparse_read_has_the_exact_noise_std():
    """Per column: mean = the noise-free current, std = sqrt(sum_i V_i^2 (s+^2 + s-^2) + n_rt
    out_noise^2) (three row tiles, no ADC), from repeated reads of one spike vector."""
    r, o = 0.05, 0.01
    xbar = _xbar("relative", r, o, n_out=5)
    x = _spikes(1, 40, density=0.4, seed=5)[0]
    n = 4000
    xbar.spike_read = "sparse"
    y = xbar.vmm(x.expand(n, 40).contiguous(), binary=True)
    gp, gm = xbar.conductances()
    per = xbar.periphery
    v = x * per.v_read
    to_w = (per.x_max / per.v_read) * (xbar.scale / xbar.model.params.window)
    var = (v**2) @ ((gp * r) ** 2 + (gm * r) ** 2) + 3 * (o * xbar.i_unit) ** 2
    std = var.sqrt() * to_w
    assert ((y.mean(0) - (v @ (gp - gm)) * to_w).abs() < 5 * std / math.sqrt(n)).all()
    assert ((y.std(0) / std - 1).abs() < 5 / math.sqrt(2 * n)).all()


def test_thread_count_and_row_splits_do_not_change_the_numbers():
    xbar = _xbar("relative", 0.05, 0.02, n_in=300, n_out=64, dtype=torch.float32)
    x = _spikes(900, 300, dtype=torch.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = xbar.vmm(x, binary=True)
        torch.set_num_threads(2)
        xbar.noise_stream.position = 0
        two = xbar.vmm(x, binary=True)
        xbar.noise_stream.position = 0
        parts = torch.cat([xbar.vmm(x[a:b], binary=True) for a, b in ((0, 1), (1, 400), (400, 900))])
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two) and torch.equal(one, parts)


def test_chunk_size_does_not_change_the_numbers():
    """The relative-noise kernel gathers ``g`` and ``var`` chunk by chunk of vectors: any chunk
    (1, one that does not divide the batch, the default, one larger than the batch) gives the
    same numbers bit for bit, with noise, ADC clipping and several row tiles."""
    g0 = torch.Generator().manual_seed(5)
    g = torch.randn(3, 16, 24, generator=g0)
    g[2, 8:] = 0  # 40 real rows in three tiles of 16
    var = torch.rand(3, 16, 24, generator=g0) * 0.05
    x = _spikes(300, 40, dtype=torch.float32) * 1.5
    outs = []
    for chunk in (1, 7, None, 1000):
        out = torch.empty(300, 24)
        spike_read(x, g, var=var, var_const=0.01, out_var=0.02, noise_key=11, noise_row=5, bound=3.0, adc=True,
                   scale=0.5, out=out, chunk=chunk)
        outs.append(out)
    assert outs[0].abs().max() > 0 and len(torch.unique(outs[0])) > 5  # real, varied codes
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_spike_read_kernel_by_hand():
    """One input vector, one tile, no noise, no ADC: y = scale * sum_i x_i g_i."""
    g = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]], dtype=torch.float64)  # [1, 3, 2]
    x = torch.tensor([[2.0, 0.0, 1.0]], dtype=torch.float64)
    out = torch.empty(1, 2, dtype=torch.float64)
    spike_read(x, g, var=None, var_const=0.0, out_var=0.0, noise_key=None, noise_row=0, bound=None, adc=False,
               scale=0.5, out=out)
    assert out.tolist() == [[0.5 * (2 + 5), 0.5 * (4 + 6)]]
    spike_read(x, g, var=None, var_const=0.0, out_var=0.0, noise_key=None, noise_row=0, bound=6.0, adc=True,
               scale=1.0, out=out)
    assert out.tolist() == [[6.0, 6.0]]  # 7 and 10 clipped to the bound 6
