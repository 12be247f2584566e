"""The crossbar's read-noise stream: exact chunk contents, split / thread invariance, statistics."""

import math

import pytest
import torch

from memsnn.crossbar import Crossbar, CrossbarParams, PeripheryParams
from memsnn.crossbar.noise_stream import CHUNK_NORMALS, NoiseStream, stream_key
from memsnn.device_models import make_device


@pytest.fixture
def threads():
    """Set torch's thread count inside a test and restore it afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_rows_are_the_numbers_of_their_chunks_generator():
    s = NoiseStream(key=12345, width=6)
    s.chunk_rows = 4
    got = s.draw(10)
    for r in (0, 3, 4, 9):  # row r: row r % 4 of chunk r // 4, drawn with seed key + r // 4
        chunk = torch.empty(4, 6).normal_(generator=torch.Generator().manual_seed(12345 + r // 4))
        assert torch.equal(got[r], chunk[r % 4])
    assert s.position == 10


def test_chunk_seeds_wrap_at_32_bits():
    s = NoiseStream(key=2**32 - 2, width=3)
    assert [s.chunk_seed(c) for c in range(4)] == [2**32 - 2, 2**32 - 1, 0, 1]
    assert NoiseStream(key=2**32 + 5, width=1).key == 5


def test_default_chunk_is_about_chunk_normals():
    assert NoiseStream(0, 2048).chunk_rows == CHUNK_NORMALS // 2048
    assert NoiseStream(0, 20).chunk_rows == math.ceil(CHUNK_NORMALS / 20)
    assert NoiseStream(0, 10**6).chunk_rows == 1


@pytest.mark.parametrize("sizes", [[3, 50, 1, 100], [7, 7, 140], [1] * 20 + [134], [154]])
def test_any_split_of_the_rows_reads_the_same_numbers(sizes):
    whole = NoiseStream(7, 5)
    whole.chunk_rows = 7
    ref = whole.draw(sum(sizes))
    parts = NoiseStream(7, 5)
    parts.chunk_rows = 7
    torch.testing.assert_close(torch.cat([parts.draw(n) for n in sizes]), ref, rtol=0, atol=0)


def test_replay_and_the_kept_tail_give_the_same_numbers():
    a = NoiseStream(99, 4)
    a.chunk_rows = 10
    a.draw(3)
    kept = a.draw(4)  # rows 3..6: from chunk 0's numbers kept after the first call
    b = NoiseStream(99, 4, position=3)  # a fresh stream at row 3 draws chunk 0 itself
    b.chunk_rows = 10
    assert torch.equal(b.draw(4), kept)
    a.position = 0  # replay from the start
    assert torch.equal(a.draw(7)[3:], kept)


def test_numbers_do_not_depend_on_the_thread_count(threads):
    outs = []
    for n in (1, 2, 3):
        threads(n)
        s = NoiseStream(5, 64)
        s.chunk_rows = 16
        outs.append(torch.cat([s.draw(50), s.draw(123)]))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_draws_are_independent_standard_normals(threads):
    threads(2)
    s = NoiseStream(stream_key(0), 1000)
    s.chunk_rows = 40
    z = s.draw(400).double()  # 10 chunks, 400k numbers
    n = z.numel()
    assert abs(z.mean().item()) < 5 / math.sqrt(n)
    assert abs(z.std().item() - 1) < 5 / math.sqrt(2 * n)
    assert abs(((z**4).mean() - 3).item()) < 5 * math.sqrt(96 / n)  # kurtosis of a normal: 3, var 96 / n
    assert abs((z.abs() > 1.96).double().mean().item() - 0.05) < 5 * math.sqrt(0.05 * 0.95 / n)
    chunks = z.view(10, -1)
    m = chunks.shape[1]
    corr = torch.corrcoef(chunks)  # neighbouring chunks (consecutive seeds) are uncorrelated
    off = corr[~torch.eye(10, dtype=torch.bool)]
    assert off.abs().max().item() < 5 / math.sqrt(m)
    assert len({tuple(c[:8].tolist()) for c in chunks}) == 10  # no chunk repeats another


def test_stream_keys_of_neighbouring_seeds_are_distinct_32_bit_numbers():
    keys = [stream_key(s) for s in range(2000)]
    assert len(set(keys)) == 2000 and all(0 <= k < 2**32 for k in keys)
    assert min(abs(a - b) for a, b in zip(keys[:-1], keys[1:])) > 10**4  # not adjacent chunk ranges


def test_float64_draws():
    s = NoiseStream(3, 4)
    assert s.draw(5, torch.float64).dtype == torch.float64


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="width=0"):
        NoiseStream(0, 0)
    with pytest.raises(ValueError, match="position=-1"):
        NoiseStream(0, 3, position=-1)
    with pytest.raises(ValueError, match="rows=-2"):
        NoiseStream(0, 3).draw(-2)
    assert NoiseStream(0, 3).draw(0).shape == (0, 3)


def _noisy_crossbar(seed=4):
    xbar = Crossbar(40, 6, make_device("srtio3", read_noise_std=0.05), params=CrossbarParams(tile_rows=16),
                    periphery=PeripheryParams(adc_bits=8, output_noise=0.02), dtype=torch.float64, seed=seed)
    xbar.program(torch.linspace(0.0, 0.9, 6, dtype=torch.float64).expand(40, 6).contiguous(), method="direct")
    return xbar


def test_a_saved_crossbar_continues_its_noise_stream(tmp_path):
    xbar = _noisy_crossbar()
    x = torch.rand(9, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xbar.vmm(x)
    path = xbar.save(tmp_path / "x.pt")
    loaded = Crossbar.load(path)
    assert loaded.noise_stream.position == 9
    torch.testing.assert_close(loaded.vmm(x), xbar.vmm(x), rtol=0, atol=0)


def test_crossbars_with_other_seeds_read_other_noise():
    x = torch.rand(9, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, b = _noisy_crossbar(seed=4), _noisy_crossbar(seed=5)
    b.plus, b.minus = a.plus, a.minus  # the same conductances, another seed
    b._touch()
    assert not torch.allclose(a.vmm(x), b.vmm(x))


def test_read_noise_std_per_column_across_chunk_boundaries(threads):
    """Two row tiles, no ADC, small chunks: each column's output std is the exact
    sqrt(sum_i V_i^2 (s+^2 + s-^2) + output noise^2) whatever the chunking."""
    threads(2)
    r = 0.05
    xbar = Crossbar(40, 5, make_device("srtio3", read_noise_std=r), params=CrossbarParams(tile_rows=16),
                    periphery=PeripheryParams(output_noise=0.01), dtype=torch.float64, seed=2)
    xbar.program(torch.linspace(0.0, 0.9, 5, dtype=torch.float64).expand(40, 5).contiguous(), method="direct")
    xbar.noise_stream.chunk_rows = 13
    x = torch.rand(40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    n = 4000
    y = torch.cat([xbar.vmm(x.expand(k, 40).contiguous()) for k in (1000, 37, 963, 2000)])
    gp, gm = xbar.conductances()
    per = xbar.periphery
    v = x * per.v_read
    to_w = (per.x_max / per.v_read) * (xbar.scale / xbar.model.params.window)
    n_rt = 3  # the output noise is drawn once per row tile
    var = (v**2) @ ((gp * r) ** 2 + (gm * r) ** 2) + n_rt * (per.output_noise * xbar.i_unit) ** 2
    std = var.sqrt() * to_w
    assert (std.max() / std.min()) > 1.3
    assert ((y.mean(0) - (v @ (gp - gm)) * to_w).abs() < 5 * std / math.sqrt(n)).all()
    assert ((y.std(0) / std - 1).abs() < 5 / math.sqrt(2 * n)).all()


@pytest.mark.parametrize("binary", [False, True])
def test_a_vmm_in_row_chunks_equals_one_block(binary):
    """Large batches run in row chunks written into one output: the same numbers as one block
    (the noise is fixed per row), for the fused spike path and the general one."""
    xbar = _noisy_crossbar()
    x = (torch.rand(100, 40, generator=torch.Generator().manual_seed(3), dtype=torch.float64) < 0.4).double()
    one = xbar.vmm(x, binary=binary)
    xbar.noise_stream.position = 0
    xbar._chunk_elems = 16 * 3 * 6  # 16 rows per chunk: 7 chunks, the last one partial
    chunked = xbar.vmm(x, binary=binary)
    torch.testing.assert_close(chunked, one, rtol=1e-12, atol=0)
    assert xbar.reads == 200


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_draws_with_threads_after_its_parent_did(threads):
    """The worker pool is per process: a child forked after the parent used it gets its own
    (the parent's threads do not exist in the child) and draws the same numbers."""
    import multiprocessing as mp

    threads(2)
    ref = NoiseStream(11, 64)
    ref.chunk_rows = 8
    want = ref.draw(40)  # the parent's pool is now started
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_draw, args=(q,))
    p.start()
    try:
        got = q.get(timeout=20)  # a child waiting on its parent's dead pool never answers
        p.join(timeout=20)
    finally:
        if p.is_alive():
            p.kill()
    assert p.exitcode == 0
    assert torch.equal(torch.tensor(got), want)


def _child_draw(q):
    torch.set_num_threads(2)
    s = NoiseStream(11, 64)
    s.chunk_rows = 8
    q.put(s.draw(40).tolist())  # plain numbers: no shared-memory handles between the processes


def test_noise_drawn_for_several_row_chunks_at_once_is_the_same(threads):
    """The noise of _noise_blocks row chunks is drawn together; any grouping reads the same."""
    threads(2)
    xbar = _noisy_crossbar()
    x = torch.rand(200, 40, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    xbar._chunk_elems = 16 * 3 * 6  # 16-row chunks
    xbar._noise_blocks = 3  # noise drawn for 48 rows at a time: 200 = 4 * 48 + 8
    a = xbar.vmm(x)
    xbar.noise_stream.position = 0
    xbar._noise_blocks = 1
    torch.testing.assert_close(xbar.vmm(x), a, rtol=1e-12, atol=0)


def test_a_crossbar_file_without_a_noise_position_starts_its_stream_at_zero():
    """Files written before the stream existed have no "noise_rows": they load at row 0."""
    xbar = _noisy_crossbar()
    data = xbar.state_dict()
    assert data["noise_rows"] == 0
    xbar.vmm(torch.zeros(3, 40, dtype=torch.float64) + 0.5)
    data = xbar.state_dict()
    assert data.pop("noise_rows") == 3
    assert Crossbar.from_state_dict(data).noise_stream.position == 0
