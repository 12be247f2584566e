"""The crossbar's read-noise stream: exact stream positions, split / thread invariance, statistics."""

import math

import pytest
import torch

from memsnn.crossbar import Crossbar, CrossbarParams, PeripheryParams
from memsnn.crossbar.noise_stream import NoiseStream, stream_key
from memsnn.philox import normals
from memsnn.device_models import make_device


@pytest.fixture
def threads():
    """Set torch's thread count inside a test and restore it afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_row_r_holds_numbers_r_times_width_onwards_of_the_keys_philox_stream():
    s = NoiseStream(key=12345, width=6)
    got = s.draw(10)
    torch.testing.assert_close(got.flatten(), normals(12345, 0, 60), rtol=0, atol=0)
    assert s.position == 10
    torch.testing.assert_close(s.draw(2).flatten(), normals(12345, 60, 12), rtol=0, atol=0)


def test_keys_are_taken_modulo_2_to_the_64():
    assert NoiseStream(key=2**64 + 5, width=1).key == 5
    assert torch.equal(NoiseStream(2**64 + 5, 3).draw(4), NoiseStream(5, 3).draw(4))


@pytest.mark.parametrize("sizes", [[3, 50, 1, 100], [7, 7, 140], [1] * 20 + [134], [154]])
def test_any_split_of_the_rows_reads_the_same_numbers(sizes):
    ref = NoiseStream(7, 5).draw(sum(sizes))
    parts = NoiseStream(7, 5)
    torch.testing.assert_close(torch.cat([parts.draw(n) for n in sizes]), ref, rtol=0, atol=0)


def test_replay_and_a_restored_position_give_the_same_numbers():
    a = NoiseStream(99, 4)
    a.draw(3)
    kept = a.draw(4)
    b = NoiseStream(99, 4, position=3)
    assert torch.equal(b.draw(4), kept)
    a.position = 0  # replay from the start
    assert torch.equal(a.draw(7)[3:], kept)


def test_numbers_do_not_depend_on_the_thread_count(threads):
    outs = []
    for n in (1, 2, 3):
        threads(n)
        s = NoiseStream(5, 1024)
        outs.append(torch.cat([s.draw(50), s.draw(300)]))  # the second call is split over threads
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_a_reused_buffer_gets_the_same_numbers():
    buf = torch.full((7 * 5,), float("nan"))
    got = NoiseStream(3, 5).draw(7, out=buf)
    assert got.data_ptr() == buf.data_ptr()
    assert torch.equal(got, NoiseStream(3, 5).draw(7))


def test_draws_are_independent_standard_normals():
    s = NoiseStream(stream_key(0), 1000)
    z = s.draw(400).double()  # 400k numbers
    n = z.numel()
    assert abs(z.mean().item()) < 5 / math.sqrt(n)
    assert abs(z.std().item() - 1) < 5 / math.sqrt(2 * n)
    assert abs(((z**4).mean() - 3).item()) < 5 * math.sqrt(96 / n)  # kurtosis of a normal: 3, var 96 / n
    assert abs((z.abs() > 1.96).double().mean().item() - 0.05) < 5 * math.sqrt(0.05 * 0.95 / n)
    rows = z.view(400, 1000)  # neighbouring rows (reads) are uncorrelated
    r = torch.corrcoef(rows[:40])[~torch.eye(40, dtype=torch.bool)]
    assert r.abs().max().item() < 5.5 / math.sqrt(1000)


def test_stream_keys_of_neighbouring_seeds_are_distinct_64_bit_numbers():
    keys = [stream_key(s) for s in range(2000)]
    assert len(set(keys)) == 2000 and all(0 <= k < 2**64 for k in keys)
    # the low and high words (Philox's two key words) both vary
    assert len({k & 0xFFFFFFFF for k in keys}) == 2000 and len({k >> 32 for k in keys}) == 2000


def test_float64_draws():
    s = NoiseStream(3, 4)
    z = s.draw(5, torch.float64)
    assert z.dtype == torch.float64
    assert torch.equal(z, NoiseStream(3, 4).draw(5).double())


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
    want = NoiseStream(11, 1024).draw(400)  # 409 k numbers: split over 2 pool threads, now started
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
    q.put(NoiseStream(11, 1024).draw(400).tolist())  # plain numbers: no shared-memory handles between the processes


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
