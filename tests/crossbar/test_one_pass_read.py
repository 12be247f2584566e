"""The CPU one-pass dense read (``Crossbar._one_pass_read``: the DAC stage in one kernel, then the
GEMM, then noise drawn inside the output kernel, ADC and tile sum) against the eager torch ops:
the same DAC codes, the same noise numbers (the crossbar's stream at the same position), the same
ADC codes up to the rare current within an ulp of a rounding tie."""

import pytest
import torch

from memsnn.crossbar import Crossbar, CrossbarParams, PeripheryParams
from memsnn.crossbar.read_kernel import dac_in
from memsnn.device_models import make_device


def _xbar(noise_type, noise, out_noise, adc_bits, dtype, n_in=70, n_out=9, tile_rows=32):
    model = make_device("ideal", step=1e-9, read_noise_std=noise, read_noise_type=noise_type)
    per = PeripheryParams(dac_bits=7, adc_bits=adc_bits, output_noise=out_noise)
    xbar = Crossbar(n_in, n_out, model, params=CrossbarParams(tile_rows=tile_rows), periphery=per, dtype=dtype, seed=5)
    w = torch.rand(n_in, n_out, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 1.6 - 0.8
    xbar.program(w.to(dtype), method="direct")
    return xbar


@pytest.mark.parametrize("noise_type,noise,out_noise", [("absolute", 0.02, 0.06), ("absolute", 0.02, 0.0),
                                                       ("relative", 0.05, 0.02), ("absolute", 0.0, 0.0)])
@pytest.mark.parametrize("adc_bits", [None, 7])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_one_pass_dense_read_is_the_eager_read(noise_type, noise, out_noise, adc_bits, dtype):
    xbar = _xbar(noise_type, noise, out_noise, adc_bits, dtype)
    x = (torch.rand(200, 70, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2.4 - 1.2).to(dtype)
    x[0, :5] = torch.tensor([1.0, -1.0, 0.5, 1 / 63 * 0.5, 7.0])  # the clip and a rounding tie of the DAC
    out, pos = {}, {}
    for one_pass in (True, False):
        xbar.noise_stream.position = 11
        xbar._one_pass_read = one_pass
        out[one_pass] = xbar.vmm(x)
        pos[one_pass] = xbar.noise_stream.position
    assert pos[True] == pos[False] == 11 + (200 if noise or out_noise else 0)
    a, b = out[True], out[False]
    if adc_bits is None:
        torch.testing.assert_close(a, b, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-6)
    else:
        per = xbar.periphery
        code = (per.x_max / per.v_read) * (xbar.scale / xbar._w_norm) * per.adc_step(xbar.i_unit)
        diff = (a - b).abs() / code
        assert float(diff.max()) <= 1.0 + 1e-6  # at most one code, where a current sits on a tie
        assert float((diff > 0.5).float().mean()) < 2e-3
    if noise or out_noise:
        xbar.noise_stream.position = 11 + 200  # other rows of the stream: other numbers
        assert not torch.equal(xbar.vmm(x), a)


def test_dac_stage_by_hand():
    x = torch.tensor([[0.26, -2.0, 0.5, 0.0, 0.3], [0.1, 0.1, -0.1, 0.125, 0.375]])
    codes, norms, bad = dac_in(x, 4.0, 1.0, 3, 2)  # step 1/4, x_max 1, tiles of 3 inputs
    assert torch.equal(codes, torch.tensor([[1.0, -4.0, 2.0, 0.0, 1.0], [0.0, 0.0, -0.0, 0.0, 2.0]]))  # 0.5 -> 0
    torch.testing.assert_close(norms.view(2, 2), torch.tensor([[21.0, 0.0], [1.0, 4.0]]).sqrt())  # [tile, row]
    assert bad == 0
    x[1, 3] = float("nan")
    x[0, 0] = float("inf")
    assert dac_in(x, 4.0, 1.0, 3, 2)[2] == 2


def test_one_pass_read_names_non_finite_inputs():
    xbar = _xbar("absolute", 0.02, 0.0, 7, torch.float32)
    x = torch.zeros(4, 70)
    x[1, 3] = float("nan")
    x[2, 5] = float("-inf")
    assert xbar._dac_in_ok(x, 10**6)
    with pytest.raises(ValueError, match="2 NaN or infinite"):
        xbar.vmm(x)


@pytest.mark.parametrize("adc_bits", [None, 7])
def test_dense_read_plan_is_the_general_one_pass_read(adc_bits):
    """``DenseRead`` (absolute noise; constants and buffers kept per state) reads bitwise what the
    general one-pass read does, across batch sizes that reuse its buffers and after reprogramming."""
    xbar = _xbar("absolute", 0.02, 0.05, adc_bits, torch.float32)
    g = torch.Generator().manual_seed(3)
    batches = [torch.rand(b, 70, generator=g) * 2 - 1 for b in (64, 5, 64, 1, 5)]
    w2 = torch.rand(70, 9, generator=g) * 1.6 - 0.8

    def run(plans):
        xbar._dense_plans = plans
        xbar.program(torch.full((70, 9), 0.3), method="direct")
        xbar.noise_stream.position = 3
        ys = [xbar.vmm(x) for x in batches]
        xbar.program(w2, method="direct")  # a new state: a new plan
        ys.append(xbar.vmm(batches[0]))
        assert ("dense_plan" in xbar._cache and xbar._cache["dense_plan"] is not None) == plans
        return ys, xbar.noise_stream.position

    (a, pa), (b, pb) = run(True), run(False)
    assert pa == pb == 3 + sum(x.shape[0] for x in batches) + 64
    for ya, yb in zip(a, b):
        assert torch.equal(ya, yb)
    assert not torch.allclose(a[0], a[-1])  # the reprogrammed weights are read
    assert a[0].data_ptr() != a[2].data_ptr()  # every read returns its own tensor


def test_dense_read_plan_names_non_finite_inputs():
    xbar = _xbar("absolute", 0.02, 0.0, 7, torch.float32)
    x = torch.zeros(4, 70)
    x[1, 2], x[3, 0] = float("nan"), float("-inf")
    pos = xbar.noise_stream.position
    with pytest.raises(ValueError, match="inputs contain 2 NaN or infinite values"):
        xbar.vmm(x)
    assert xbar.noise_stream.position == pos and xbar._cache["dense_plan"] is not None
