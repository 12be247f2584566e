"""Conductance-map export (CSV / NPZ / PNG) and exact reload."""

import json
import re

import numpy as np
import pytest
import torch

from memsnn.crossbar.maps import CSV_COLUMNS, MapSet, export_maps, load_maps
from memsnn.files import FileExistsRefusal

SHAPE, TILE = (300, 70), (128, 32)  # does not divide evenly: 3 x 3 tiles, last one 44 x 6
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _maps(dtype, with_minus=True, shape=SHAPE, seed=0):
    """Full-mantissa random values (so any lossy text format fails), with a few awkward ones."""
    rng = np.random.default_rng(seed)
    g_plus = rng.uniform(0.0, 50e-6, shape).astype(dtype)
    g_minus = rng.uniform(0.0, 50e-6, shape).astype(dtype) if with_minus else None
    weight = rng.normal(0.0, 1.0, shape).astype(dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    g_plus[0, 0], g_plus[-1, -1], g_plus[1, 2] = 0.0, tiny, np.finfo(dtype).max / 4
    weight[0, 1], weight[2, 3] = -tiny, -0.0
    weight[-1, 0] = dtype(1) / dtype(3)
    return g_plus, g_minus, weight


def _snapshot(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.exists() else {}


@pytest.mark.parametrize("fmt", ["csv", "npz"])
@pytest.mark.parametrize("with_minus", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact(tmp_path, fmt, with_minus, dtype):
    g_plus, g_minus, weight = _maps(dtype, with_minus)
    meta = {"preset": "srtio3", "time_s": 3600.0, "epoch": 7, "note": "a,b \"q\"\nline"}
    paths = export_maps(tmp_path, g_plus=g_plus, g_minus=g_minus, weight=weight, tile_size=TILE,
                        formats=(fmt,), name="fc1", meta=meta)
    assert paths == [tmp_path / f"fc1_maps.{fmt}"]
    ms = load_maps(paths[0])
    assert isinstance(ms, MapSet)
    assert ms.shape == SHAPE and ms.tile_size == TILE and ms.meta == meta
    for name, ref in (("g_plus", g_plus), ("g_minus", g_minus), ("weight", weight)):
        if ref is None:
            assert all(t.g_minus is None for t in ms.tiles)
            with pytest.raises(ValueError, match="g_minus is absent"):
                ms.full("g_minus")
            continue
        full = ms.full(name)
        assert full.dtype == ref.dtype, name
        assert np.array_equal(full, ref), name
        assert np.array_equal(np.signbit(full), np.signbit(ref)), name  # -0.0 survives too
        for t in ms.tiles:
            part = getattr(t, name)
            assert part.dtype == ref.dtype
            assert np.array_equal(part, ref[t.rows[0]:t.rows[1], t.cols[0]:t.cols[1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_csv_integral_values_keep_sign_of_zero(tmp_path, dtype):
    """All-integral columns ("0", "-0", "3") still come back as floats, -0.0 included."""
    g = np.zeros((3, 2), dtype=dtype)
    w = np.array([[0.0, -0.0], [3.0, -2.0], [-0.0, 1.0]], dtype=dtype)
    export_maps(tmp_path, g_plus=g, g_minus=g + 1, weight=w, formats=["csv"])
    ms = load_maps(tmp_path / "layer_maps.csv")
    for name, ref in (("g_plus", g), ("g_minus", g + 1), ("weight", w)):
        assert ms.full(name).dtype == dtype and np.array_equal(ms.full(name), ref)
    assert np.array_equal(np.signbit(ms.full("weight")), np.signbit(w))


def test_csv_and_npz_layout(tmp_path):
    g_plus, g_minus, weight = _maps(np.float32)
    export_maps(tmp_path, g_plus=g_plus, g_minus=g_minus, weight=weight, tile_size=TILE,
                formats=("csv", "npz"), meta={"preset": "pcm"})
    lines = (tmp_path / "layer_maps.csv").read_text().splitlines()
    assert lines[0].startswith("# memsnn-maps ")
    header = json.loads(lines[0][len("# memsnn-maps "):])
    assert header["shape"] == list(SHAPE) and header["tile_size"] == list(TILE)
    assert header["dtypes"] == {"g_plus": "float32", "g_minus": "float32", "weight": "float32"}
    assert lines[1] == ",".join(CSV_COLUMNS) == "tile_row,tile_col,row,col,g_plus_S,g_minus_S,weight"
    assert len(lines) == 2 + SHAPE[0] * SHAPE[1]
    # one row per device with global indices; tile indices agree with them
    first = lines[2].split(",")
    assert first[:4] == ["0", "0", "0", "0"]
    rows = {tuple(int(x) for x in ln.split(",")[:4]) for ln in lines[2:]}
    assert len(rows) == SHAPE[0] * SHAPE[1]
    assert all(tr == r // TILE[0] and tc == c // TILE[1] for tr, tc, r, c in rows)
    with np.load(tmp_path / "layer_maps.npz", allow_pickle=False) as z:
        assert z["t2_2_g_plus"].shape == (44, 6) and z["t2_2_g_plus"].dtype == np.float32
        assert {"header", "shape", "tile_size", "t0_0_g_minus", "t0_0_weight"} <= set(z.files)
        assert len([k for k in z.files if re.fullmatch(r"t\d+_\d+_\w+", k)]) == 9 * 3


def test_csv_without_g_minus_leaves_column_empty(tmp_path):
    g_plus, _, weight = _maps(np.float64, with_minus=False, shape=(3, 4))
    export_maps(tmp_path, g_plus=g_plus, g_minus=None, weight=weight, formats=["csv"])
    lines = (tmp_path / "layer_maps.csv").read_text().splitlines()[2:]
    assert len(lines) == 12 and all(ln.split(",")[5] == "" for ln in lines)


def test_tile_ranges_and_count(tmp_path):
    g_plus, g_minus, weight = _maps(np.float64)
    export_maps(tmp_path, g_plus=g_plus, g_minus=g_minus, weight=weight, tile_size=TILE, formats=["npz"])
    ms = load_maps(tmp_path / "layer_maps.npz")
    assert len(ms.tiles) == 9
    assert [t.tile for t in ms.tiles] == [(i, j) for i in range(3) for j in range(3)]
    assert sorted({t.rows for t in ms.tiles}) == [(0, 128), (128, 256), (256, 300)]
    assert sorted({t.cols for t in ms.tiles}) == [(0, 32), (32, 64), (64, 70)]
    last = ms.tiles[-1]
    assert last.tile == (2, 2) and last.rows == (256, 300) and last.cols == (64, 70)
    assert last.g_plus.shape == last.g_minus.shape == last.weight.shape == (44, 6)
    t01 = ms.tiles[1]
    assert t01.tile == (0, 1) and t01.rows == (0, 128) and t01.cols == (32, 64)
    # a tile larger than the matrix gives a single tile
    export_maps(tmp_path, g_plus=g_plus, g_minus=g_minus, weight=weight, tile_size=(512, 512),
                formats=["npz"], name="one")
    one = load_maps(tmp_path / "one_maps.npz")
    assert len(one.tiles) == 1 and one.tiles[0].rows == (0, 300) and one.tiles[0].cols == (0, 70)


@pytest.mark.parametrize("with_minus, tile, grid", [(True, (20, 16), (2, 2)), (False, (40, 12), (1, 2))])
def test_png_one_valid_file_per_tile(tmp_path, with_minus, tile, grid):
    g_plus, g_minus, weight = _maps(np.float32, with_minus, shape=(40, 20))
    paths = export_maps(tmp_path, g_plus=g_plus, g_minus=g_minus, weight=weight, tile_size=tile,
                        formats=["png"], name="fc2")
    expected = {f"fc2_tile{i}_{j}.png" for i in range(grid[0]) for j in range(grid[1])}
    assert {p.name for p in paths} == expected
    assert {p.name for p in tmp_path.iterdir()} == expected  # no temporary files left behind
    images = [p.read_bytes() for p in paths]
    assert all(data[:8] == PNG_MAGIC and len(data) > 1000 for data in images)
    assert len(set(images)) == len(images)  # each tile drawn with its own data


def test_png_shows_each_tiles_own_data(tmp_path):
    import matplotlib.image as mpimg

    g_plus = np.zeros((8, 8))
    g_plus[:, 4:] = 40e-6  # tile (0, 1) at the top of the colour scale, tile (0, 0) at the bottom
    paths = export_maps(tmp_path, g_plus=g_plus, g_minus=None, weight=np.zeros((8, 8)), tile_size=(8, 4),
                        formats=["png"])
    yellow = np.array([0.993, 0.906, 0.144])  # viridis(1.0)

    def n_yellow(p):
        rgb = mpimg.imread(p)[..., :3]
        return int((np.abs(rgb - yellow).max(axis=-1) < 0.05).sum())

    low, high = n_yellow(paths[0]), n_yellow(paths[1])
    assert high > 5 * max(low, 1), (low, high)  # only the colour bar is yellow in tile (0, 0)


def test_torch_inputs_and_mixed_dtypes(tmp_path):
    g_plus, g_minus, weight = _maps(np.float32, shape=(10, 9))
    gp = torch.from_numpy(g_plus).requires_grad_(True)
    w64 = torch.from_numpy(weight.astype(np.float64))
    export_maps(tmp_path, g_plus=gp, g_minus=torch.from_numpy(g_minus), weight=w64, tile_size=(4, 4),
                formats=["csv", "npz"])
    for f in ("layer_maps.csv", "layer_maps.npz"):
        ms = load_maps(tmp_path / f)
        assert ms.full("g_plus").dtype == np.float32 and ms.full("weight").dtype == np.float64
        assert np.array_equal(ms.full("g_plus"), g_plus)
        assert np.array_equal(ms.full("weight"), weight.astype(np.float64))


@pytest.mark.cuda
def test_cuda_inputs(tmp_path):
    g_plus, g_minus, weight = _maps(np.float32, shape=(33, 17))
    cuda = lambda a: torch.from_numpy(a).cuda()
    export_maps(tmp_path, g_plus=cuda(g_plus), g_minus=cuda(g_minus), weight=cuda(weight), tile_size=(16, 8),
                formats=["csv", "npz"])
    for f in ("layer_maps.csv", "layer_maps.npz"):
        ms = load_maps(tmp_path / f)
        assert np.array_equal(ms.full("g_minus"), g_minus) and ms.full("g_minus").dtype == np.float32


def test_refuses_to_overwrite_and_writes_nothing(tmp_path):
    g_plus, g_minus, weight = _maps(np.float64, shape=(20, 10))
    kw = dict(g_minus=g_minus, weight=weight, tile_size=(16, 8))
    export_maps(tmp_path, g_plus=g_plus, formats=["csv", "npz"], **kw)
    before = _snapshot(tmp_path)
    with pytest.raises(FileExistsRefusal, match="layer_maps.csv.*refusing to overwrite"):
        export_maps(tmp_path, g_plus=g_plus * 2, formats=["csv", "npz"], **kw)
    assert _snapshot(tmp_path) == before
    # only the last output exists: the earlier ones (csv, the first PNGs) must not be written either
    with pytest.raises(FileExistsError, match="layer_maps.npz"):
        export_maps(tmp_path, g_plus=g_plus, formats=["png", "npz"], **kw)
    assert _snapshot(tmp_path) == before
    # overwrite=True replaces the files
    export_maps(tmp_path, g_plus=g_plus * 2, formats=["csv", "npz"], overwrite=True, **kw)
    after = _snapshot(tmp_path)
    assert set(after) == set(before) and after["layer_maps.csv"] != before["layer_maps.csv"]
    assert np.array_equal(load_maps(tmp_path / "layer_maps.csv").full("g_plus"), g_plus * 2)


def _bad(tmp_path, match, **override):
    g_plus, g_minus, weight = _maps(np.float64, shape=(6, 5))
    kw = dict(g_plus=g_plus, g_minus=g_minus, weight=weight, tile_size=(4, 4), formats=("csv", "npz", "png"))
    kw.update(override)
    out = tmp_path / "out"
    with pytest.raises((ValueError, TypeError), match=match):
        export_maps(out, **kw)
    assert not out.exists() or not any(out.iterdir())


def test_bad_inputs_raise_before_writing(tmp_path):
    g, _, _ = _maps(np.float64, shape=(6, 5))
    _bad(tmp_path, r"shape mismatch.*\(6, 5\).*\(5, 6\)", weight=np.zeros((5, 6)))
    _bad(tmp_path, r"g_minus.*\(6, 4\)", g_minus=g[:, :4])
    _bad(tmp_path, r"2-D.*\(30,\)", g_plus=g.ravel())
    nan = g.copy(); nan[1, 1] = nan[2, 2] = np.nan
    _bad(tmp_path, r"g_plus has 2 non-finite entries", g_plus=nan)
    inf = g.copy(); inf[0, 3] = np.inf
    _bad(tmp_path, r"weight has 1 non-finite entry", weight=inf)
    neg = g.copy(); neg[3, 0] = -1e-6
    _bad(tmp_path, r"g_minus has 1 negative conductance.*>= 0", g_minus=neg)
    _bad(tmp_path, r"unknown format.*'jpg'.*csv, npz, png", formats=("csv", "jpg"))
    _bad(tmp_path, r"tile_size must be two positive ints", tile_size=(0, 4))
    _bad(tmp_path, r"tile_size must be two positive ints", tile_size=(4,))
    _bad(tmp_path, r"dtype.*int64.*float32", weight=np.zeros((6, 5), dtype=np.int64))
    _bad(tmp_path, r"meta\['x'\]", meta={"x": [1, 2]})
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no case wrote any file


def test_load_rejects_bad_files(tmp_path):
    g_plus, g_minus, weight = _maps(np.float64, shape=(6, 5))
    export_maps(tmp_path, g_plus=g_plus, g_minus=g_minus, weight=weight, tile_size=(4, 4),
                formats=["csv", "npz"])
    csv = (tmp_path / "layer_maps.csv").read_text().splitlines()
    # a column missing
    cols = csv[1].split(",")
    drop = cols.index("weight")
    cut = [csv[0]] + [",".join(x for k, x in enumerate(ln.split(",")) if k != drop) for ln in csv[1:]]
    (tmp_path / "cut.csv").write_text("\n".join(cut) + "\n")
    with pytest.raises(ValueError, match="missing column.*weight"):
        load_maps(tmp_path / "cut.csv")
    # no header line: not our format
    (tmp_path / "plain.csv").write_text("\n".join(csv[1:]) + "\n")
    with pytest.raises(ValueError, match="not a memsnn-maps CSV"):
        load_maps(tmp_path / "plain.csv")
    # a row lost
    (tmp_path / "short.csv").write_text("\n".join(csv[:-1]) + "\n")
    with pytest.raises(ValueError, match="29 data rows, expected 30"):
        load_maps(tmp_path / "short.csv")
    # a duplicated position
    (tmp_path / "dup.csv").write_text("\n".join(csv[:-1] + [csv[2]]) + "\n")
    with pytest.raises(ValueError, match="more than once"):
        load_maps(tmp_path / "dup.csv")
    # wrong extension / foreign npz / missing tile array
    with pytest.raises(ValueError, match=r"\.csv or \.npz"):
        load_maps(tmp_path / "layer_tile0_0.png")
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="missing key.*header"):
        load_maps(tmp_path / "foreign.npz")
    with np.load(tmp_path / "layer_maps.npz") as z:
        keep = {k: z[k] for k in z.files if k != "t1_1_weight"}
    np.savez(tmp_path / "lacking.npz", **keep)
    with pytest.raises(ValueError, match="missing tile array.*t1_1_weight"):
        load_maps(tmp_path / "lacking.npz")


def test_full_rejects_unknown_name(tmp_path):
    g_plus, g_minus, weight = _maps(np.float64, shape=(4, 4))
    export_maps(tmp_path, g_plus=g_plus, g_minus=g_minus, weight=weight, formats=["npz"])
    with pytest.raises(ValueError, match="unknown map 'g'.*g_plus, g_minus, weight"):
        load_maps(tmp_path / "layer_maps.npz").full("g")


def test_tau_maps_round_trip_as_version_2_and_bad_tau_is_refused(tmp_path):
    import json

    rng = np.random.default_rng(0)
    gp, gm = rng.uniform(1e-9, 1e-7, (5, 3)), rng.uniform(1e-9, 1e-7, (5, 3))
    tp, tm = rng.uniform(1, 10, (5, 3)).astype(np.float32), rng.uniform(1, 10, (5, 3)).astype(np.float32)
    files = export_maps(tmp_path, g_plus=gp, g_minus=gm, weight=gp - gm, tile_size=(2, 2), formats=("csv", "npz"),
                        tau_plus=tp, tau_minus=tm)
    head = json.loads(files[0].read_text().splitlines()[0][len("# memsnn-maps "):])
    assert head["version"] == 2 and head["dtypes"]["tau_plus"] == "float32"
    for f in files:
        ms = load_maps(f)
        assert np.array_equal(ms.full("tau_plus"), tp) and np.array_equal(ms.full("tau_minus"), tm)
        assert ms.full("tau_plus").dtype == np.float32
    plain = export_maps(tmp_path / "plain", g_plus=gp, g_minus=gm, weight=gp - gm, formats=("csv",))
    with pytest.raises(ValueError, match="no tau maps"):
        load_maps(plain[0]).full("tau_plus")
    with pytest.raises(ValueError, match="tau_plus must be > 0"):
        export_maps(tmp_path / "bad", g_plus=gp, g_minus=gm, weight=gp - gm, formats=("csv",), tau_plus=-tp)
    with pytest.raises(ValueError, match="tau_minus given without g_minus"):
        export_maps(tmp_path / "bad", g_plus=gp, g_minus=None, weight=gp, formats=("csv",), tau_plus=tp, tau_minus=tm)
