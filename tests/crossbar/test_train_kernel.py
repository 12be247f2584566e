"""Packed stochastic trains: exact cases, the coincidence statistics (also the correlation of the
devices that share a row's train) and agreement with the torch path's distribution."""

import math

import pytest
import torch

from memsnn.crossbar.schedule import OuterPhase
from memsnn.crossbar.train_kernel import MAX_SLOTS, coincidences


def test_certain_and_silent_lines_give_exact_counts():
    r = torch.tensor([[1.0, -1.0, 0.0, 1.0]])
    c = torch.tensor([[1.0, -1.0, 0.5]])
    k = coincidences(r, c, 31, torch.Generator().manual_seed(0), torch.float64)
    assert k.shape == (1, 4, 3)
    assert k[0, 0, :2].tolist() == [31.0, -31.0] and k[0, 1, :2].tolist() == [-31.0, 31.0]
    assert k[0, 2].tolist() == [0.0, 0.0, 0.0]  # a silent row
    assert 0 < k[0, 0, 2].item() < 31 and k[0, 3, 2].item() == k[0, 0, 2].item()  # rows 0 and 3: one train each
    assert coincidences(torch.ones(2, 3), torch.ones(2, 2), MAX_SLOTS, None, torch.float32).eq(MAX_SLOTS).all()


def test_counts_have_the_binomial_mean_variance_and_the_row_correlation():
    B, L = 4000, 31
    pr, pc = torch.tensor([0.3, 0.8]), torch.tensor([0.5, 0.6, 0.9])
    k = coincidences(pr.expand(B, 2).contiguous(), (-pc).expand(B, 3).contiguous(), L,
                     torch.Generator().manual_seed(1), torch.float64)
    q = pr[:, None] * pc[None, :]  # per-slot coincidence probability
    mean, var = -L * q, L * q * (1 - q)
    assert ((k.mean(0) - mean).abs() < 5 * (var / B).sqrt()).all()
    assert ((k.var(0) / var - 1).abs() < 5 * math.sqrt(2 / B)).all()
    # devices of one row share its train: Cov(k_ij, k_ij') = L p_i (1 - p_i) p_j p_j' > 0
    cov = ((k[:, 1, 0] - k[:, 1, 0].mean()) * (k[:, 1, 2] - k[:, 1, 2].mean())).mean()
    want = L * 0.8 * 0.2 * 0.5 * 0.9
    assert abs(cov.item() - want) < 6 * math.sqrt(var[1, 0] * var[1, 2] / B)
    # different rows and columns: independent
    cov_ind = ((k[:, 0, 0] - k[:, 0, 0].mean()) * (k[:, 1, 1] - k[:, 1, 1].mean())).mean()
    assert abs(cov_ind.item()) < 5 * math.sqrt(var[0, 0] * var[1, 1] / B)


def test_the_same_distribution_as_the_torch_path():
    B, n = 3000, 6
    r = (torch.rand(1, n, generator=torch.Generator().manual_seed(3)) * 2 - 1).expand(B, n).contiguous()
    c = (torch.rand(1, n, generator=torch.Generator().manual_seed(4)) * 2 - 1).expand(B, n).contiguous()
    fast = coincidences(r, c, 20, torch.Generator().manual_seed(5), torch.float64)
    ref, half = OuterPhase(r, c, train="stochastic", length=20).coincidences("plus", torch.Generator().manual_seed(5),
                                                                             half=True, dtype=torch.float64)
    assert half is not None  # half-selects take the torch path
    sd = (fast.var(0) + ref.var(0)).add(1e-12).sqrt() / math.sqrt(B)
    assert ((fast.mean(0) - ref.mean(0)).abs() < 5 * sd + 1e-9).all()


def test_seeded_generators_repeat_and_bad_lengths_are_named():
    r, c = torch.rand(5, 7) - 0.5, torch.rand(5, 4) - 0.5
    a = coincidences(r, c, 31, torch.Generator().manual_seed(9), torch.float32)
    b = coincidences(r, c, 31, torch.Generator().manual_seed(9), torch.float32)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="length=33"):
        coincidences(r, c, 33, None, torch.float32)
    long = OuterPhase(r, c, train="stochastic", length=40).coincidences("plus", torch.Generator().manual_seed(0))[0]
    assert long.abs().max().item() <= 40  # longer trains: the torch path
