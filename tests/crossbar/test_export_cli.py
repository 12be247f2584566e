import numpy as np
import torch

from memsnn.crossbar import Crossbar, CrossbarParams
from memsnn.crossbar.maps import load_maps
from memsnn.crossbar.storage import load_crossbars, save_crossbars
from memsnn.experiments.cli import main


def make(mapping="differential"):
    xbar = Crossbar(40, 20, "srtio3", params=CrossbarParams(mapping=mapping, tile_rows=32, tile_cols=16), seed=2)
    xbar.program(torch.rand(40, 20) * 2 - 1, method="open_loop")
    return xbar


def test_export_maps_cli_round_trip(tmp_path, capsys):
    xbar = make()
    src = xbar.save(tmp_path / "layer1.pt")
    out = tmp_path / "maps"
    assert main(["export-maps", str(src), "--out", str(out)]) == 0
    gp, gm = xbar.conductances()
    for suffix in ("csv", "npz"):
        maps = load_maps(out / f"layer1_maps.{suffix}")
        assert maps.tile_size == (32, 16) and len(maps.tiles) == 4
        assert np.array_equal(maps.full("g_plus"), gp.numpy())
        assert np.array_equal(maps.full("g_minus"), gm.numpy())
        assert np.array_equal(maps.full("weight"), xbar.weights().numpy())
        assert maps.meta["preset"] == "srtio3"
    assert len(list(out.glob("layer1_tile*.png"))) == 4
    # a second export refuses, naming the file, and writes nothing
    before = sorted(p.name for p in out.iterdir())
    assert main(["export-maps", str(src), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before


def test_export_after_drift_and_from_run_directory(tmp_path):
    a, b = make(), make("reference")
    run = tmp_path / "run"
    run.mkdir()
    save_crossbars(run / "net.pt", {"hidden": a, "out": b})
    torch.save({"something": 1}, run / "other.pt")  # unrelated files are skipped
    layers = load_crossbars(run)
    assert sorted(layers) == ["net.hidden", "net.out"]
    assert main(["export-maps", str(run), "--out", str(tmp_path / "m"), "--format", "npz", "--at", "86400"]) == 0
    drifted = load_maps(tmp_path / "m" / "net.hidden_maps.npz").full("g_plus")
    np.testing.assert_array_equal(drifted, a.conductances(at=a.time + 86400)[0].numpy())
    now = a.conductances()[0].numpy()
    p = a.model.params
    above = now > p.g_min + 0.02 * p.window  # devices written to g_min (negative weights) cannot drift lower
    assert above.mean() > 0.3 and (drifted[above] < now[above]).mean() > 0.99
    ref = load_maps(tmp_path / "m" / "net.out_maps.npz")
    assert ref.tiles[0].g_minus is None


def test_export_maps_bad_format(tmp_path, capsys):
    src = make().save(tmp_path / "x.pt")
    assert main(["export-maps", str(src), "--out", str(tmp_path / "o"), "--format", "csv,tiff"]) == 2
    assert "csv, npz, png" in capsys.readouterr().err
