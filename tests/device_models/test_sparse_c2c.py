"""Cycle-to-cycle noise drawn for the pulsed devices only: the same distribution of the result."""

import pytest
import torch

from memsnn.device_models import base, make_device


@pytest.mark.parametrize("preset,overrides", [
    ("ideal", dict(step_std=0.3, step_noise="multiplicative")),
    ("ideal", dict(step_std=0.3, step_noise="additive")),
    ("rram", {}),
    ("srtio3", {}),
])
def test_sparse_c2c_draws_give_the_full_draws_distribution(monkeypatch, preset, overrides):
    model = make_device(preset, **overrides)
    assert model.params.step_std > 0
    n = 40000
    gen = torch.Generator().manual_seed(0)
    state = model.init_state((n,), generator=gen, dtype=torch.float64)
    mid = (model.params.g_min + model.params.g_max) / 2  # room for both polarities
    state = model.program(state, torch.full((n,), mid, dtype=torch.float64), generator=gen)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(2))
    up, down, rest = perm[: n // 10], perm[n // 10: n // 5], perm[n // 5:]
    counts = torch.zeros(n, dtype=torch.int64)
    counts[up] = 3  # 20 % pulsed, scattered: the sparse path applies
    counts[down] = -2
    monkeypatch.setattr(base, "SPARSE_STEP_FRACTION", 0.0)  # the whole array is stepped: its noise draws
    results = {}
    # eager steps with full and with sparse draws, and the model's sequence kernel where it has one
    for name, frac, kernels in (("full", 0.0, False), ("sparse", 1.0, False), ("kernel", 1.0, True)):
        monkeypatch.setattr(base, "SPARSE_NOISE_FRACTION", frac)
        monkeypatch.setattr(base, "SEQUENCE_KERNELS", kernels)
        out = model.apply_pulses(state, counts, generator=torch.Generator().manual_seed(1))
        results[name] = model.conductance(out)
    g0 = model.conductance(state)
    full = results["full"]
    for other in ("sparse", "kernel"):
        alt = results[other]
        assert torch.equal(full[rest], g0[rest]) and torch.equal(alt[rest], g0[rest])  # unpulsed: untouched
        if other == "sparse":
            assert not torch.equal(full, alt)  # other draws
        for sl in (up, down):
            d_full, d_alt = (full - g0)[sl], (alt - g0)[sl]
            m = d_full.numel()
            sd = d_full.std()
            assert sd > 0
            # means within 5 standard errors, stds within 5 standard errors of a std
            assert abs(float(d_full.mean() - d_alt.mean())) < 5 * float(sd) * (2 / m) ** 0.5
            assert abs(float(d_alt.std() / sd) - 1) < 5 / m**0.5
