"""``memsnn.vecmath.vexp`` against numpy's exp: accuracy in ulp over the whole range, and the
special values."""

import numpy as np
import pytest

from memsnn.vecmath import _vexp_array


@pytest.mark.parametrize("dtype,max_ulp", [(np.float32, 1.0), (np.float64, 2.0)])
def test_vexp_is_within_its_ulp_bound_of_the_exact_exp(dtype, max_ulp):
    x = np.concatenate([np.linspace(-100, 100, 400_001), np.linspace(-1, 1, 100_001),
                        np.linspace(-720, 720, 50_001), np.random.default_rng(0).normal(0, 5, 100_000)]).astype(dtype)
    out = np.empty_like(x)
    _vexp_array(x, out)
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.longdouble))  # a reference more precise than the result
        rounded = exact.astype(dtype)
    normal = np.isfinite(rounded) & (rounded >= np.finfo(dtype).tiny)
    assert normal.sum() > 300_000
    ulp = np.abs(out[normal].astype(np.longdouble) - exact[normal]) / np.spacing(rounded[normal]).astype(np.longdouble)
    assert float(ulp.max()) <= max_ulp
    # outside the normal range: 0 below, inf above (no subnormals)
    assert np.all(out[~normal & (x < 0)] == 0) and np.all(np.isinf(out[~normal & (x > 0)]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vexp_special_values(dtype):
    x = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, np.log(np.finfo(dtype).max) * 0.999], dtype=dtype)
    out = np.empty_like(x)
    _vexp_array(x, out)
    assert out[0] == 1.0 and out[1] == 1.0  # exactly: a device without pulses keeps its state
    assert np.isnan(out[2]) and out[3] == np.inf and out[4] == 0.0
    assert abs(out[5] / np.e - 1) < 2 * np.finfo(dtype).eps
    assert np.isfinite(out[6]) and out[6] > np.finfo(dtype).max ** 0.99  # 2**n near the top in two halves
