"""memsnn.philox: Philox4x32-10 known answers, the float32 Box-Muller against float64, split and
thread invariance, and the statistics of the normals."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from memsnn.philox import MAX_ABS, normals, philox4x32


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


# Random123's kat_vectors for philox4x32_10: (counter, key) -> output words
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,want", KAT)
def test_philox_known_answers(counter, key, want):
    assert philox4x32(counter, key) == want


def _reference(key: int, j: int) -> list[float]:
    """The four normals of counter ``j`` in float64 from the documented transform."""
    w = philox4x32((j & 0xFFFFFFFF, j >> 32, 0, 0), (key & 0xFFFFFFFF, key >> 32))
    out = []
    for a, b in ((w[0], w[1]), (w[2], w[3])):
        r = math.sqrt(-2.0 * math.log(((a >> 8) + 1) / 2**24))
        theta = (b & 3) * math.pi / 2 + ((b >> 8) / 2**24 - 0.5) * math.pi / 2
        out += [r * math.cos(theta), r * math.sin(theta)]
    return out


def test_normals_are_the_documented_transform_of_the_words():
    key = 0x1234_5678_9ABC_DEF0
    j0 = 2**32 - 3  # counters whose low word wraps inside the request
    got = normals(key, 4 * j0, 4 * 40).double()
    want = torch.tensor([z for j in range(j0, j0 + 40) for z in _reference(key, j)], dtype=torch.float64)
    # float32 evaluation of the log and sin / cos series: a few float32 ulps of error
    torch.testing.assert_close(got, want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("start", [0, 1, 2, 3, 5, 4097])
def test_any_split_reads_the_same_numbers(start):
    whole = normals(77, start, 1003)
    cuts = [0, 1, 2, 7, 8, 500, 501, 1003]
    parts = torch.cat([normals(77, start + a, b - a) for a, b in zip(cuts[:-1], cuts[1:])])
    assert torch.equal(parts, whole)
    assert torch.equal(normals(77, start + 3, 10), whole[3:13])


def test_the_thread_count_does_not_change_the_numbers(threads):
    n = 5 * (1 << 17) + 3  # large enough to be split over the pool
    ref = normals(5, 11, n, threads=1)
    for k in (2, 3):
        assert torch.equal(normals(5, 11, n, threads=k), ref)
    threads(2)
    assert torch.equal(normals(5, 11, n), ref)


def test_out_and_dtype():
    buf = torch.empty(3, 7)
    got = normals(9, 2, 21, out=buf)
    assert got.data_ptr() == buf.data_ptr()
    assert torch.equal(buf.flatten(), normals(9, 2, 21))
    assert torch.equal(normals(9, 2, 21, dtype=torch.float64), normals(9, 2, 21).double())


def test_keys_give_independent_streams():
    a, b = normals(1, 0, 200_000).double(), normals(2, 0, 200_000).double()
    r = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    assert abs(r) < 5 / math.sqrt(200_000)
    assert not torch.equal(a[:8], b[:8])


def test_normals_have_the_standard_normal_distribution():
    n = 2_000_000
    z = normals(2026, 0, n).double()
    m, s = z.mean().item(), z.std().item()
    assert abs(m) < 5 / math.sqrt(n)
    assert abs(s - 1) < 5 / math.sqrt(2 * n)
    assert abs((z**3).mean().item()) < 5 * math.sqrt(15 / n)
    assert abs((z**4).mean().item() - 3) < 5 * math.sqrt(96 / n)
    assert stats.kstest(z[:500_000].numpy(), "norm").pvalue > 1e-3
    for thr in (1.0, 2.0, 3.0, 4.0):  # tail frequencies against 2 Q(thr)
        p = 2 * stats.norm.sf(thr)
        f = (z.abs() > thr).double().mean().item()
        assert abs(f - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-7, (thr, f, p)
    assert z.abs().max().item() <= MAX_ABS
    # the four lanes of a counter and neighbouring numbers are uncorrelated, also in their squares
    lanes = z.view(-1, 4)
    c = torch.corrcoef(lanes.T)[~torch.eye(4, dtype=torch.bool)]
    c2 = torch.corrcoef((lanes**2).T)[~torch.eye(4, dtype=torch.bool)]
    lim = 5 / math.sqrt(lanes.shape[0])
    assert c.abs().max().item() < lim and c2.abs().max().item() < lim
    assert abs(torch.corrcoef(torch.stack([z[:-5], z[5:]]))[0, 1].item()) < 5 / math.sqrt(n)


def test_each_lane_is_standard_normal():
    lanes = normals(3, 0, 800_000).double().view(-1, 4)
    n = lanes.shape[0]
    for k in range(4):
        assert abs(lanes[:, k].mean().item()) < 5 / math.sqrt(n)
        assert abs(lanes[:, k].var().item() - 1) < 5 * math.sqrt(2 / n)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n=-1"):
        normals(0, 0, -1)
    with pytest.raises(ValueError, match="start=-4"):
        normals(0, -4, 3)
    with pytest.raises(ValueError, match="start=.*2\\*\\*64"):
        normals(0, 2**64 - 2, 3)
    with pytest.raises(ValueError, match="float32 CPU tensor of 5 elements"):
        normals(0, 0, 5, out=torch.empty(4))
    with pytest.raises(ValueError, match="float32"):
        normals(0, 0, 4, out=torch.empty(4, dtype=torch.float64))
    assert normals(0, 0, 0).shape == (0,)
    assert np.isfinite(normals(0, 2**64 - 4, 4).numpy()).all()  # the last counter


def test_randn_repeats_with_a_seeded_generator_and_advances_it():
    from memsnn.philox import RANDN_MIN, randn

    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a, b = randn((64, 100), generator=g1), randn((64, 100), generator=g2)
    assert a.shape == (64, 100) and torch.equal(a, b)
    assert not torch.equal(randn((64, 100), generator=g1), a)  # the generator moved on: a new stream
    z = randn(400_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64).double()
    assert z.dtype == torch.float64 and z.shape == (400_000,)
    assert abs(z.mean().item()) < 5 / math.sqrt(z.numel()) and abs(z.std().item() - 1) < 5 / math.sqrt(2 * z.numel())
    # small requests (below RANDN_MIN) and other dtypes are torch.randn's own numbers
    assert 15 < RANDN_MIN  # (3, 5) is a small request
    small = randn((3, 5), generator=torch.Generator().manual_seed(2))
    assert torch.equal(small, torch.randn((3, 5), generator=torch.Generator().manual_seed(2)))
    half = randn((80, 80), generator=torch.Generator().manual_seed(2), dtype=torch.float16)
    assert torch.equal(half, torch.randn((80, 80), generator=torch.Generator().manual_seed(2), dtype=torch.float16))
