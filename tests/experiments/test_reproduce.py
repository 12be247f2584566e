import json
import math

import pandas as pd
import pytest

from memsnn.experiments.cli import main
from memsnn.experiments.config import ConfigError
from memsnn.experiments.reproduce import ROWS_DIR, load_row, load_rows, markdown, reproduce_table, run_reproduce

ROW = '''seed = 0
[reproduce]
work = "a paper"
task = "Iris"
published = 99.0
differs = "tiny"
{extra}
[reproduce.quick]
"training.epochs" = 1

[data]
dataset = "iris"
[rule]
name = "stdp"
insitu = true
[training]
epochs = 1
[evaluation]
times = [0.0]
{evaluation}
'''


def _row(dir_, name, extra="", evaluation=""):
    path = dir_ / f"{name}.toml"
    path.write_text(ROW.format(extra=extra, evaluation=evaluation))
    return path


def test_every_shipped_row_loads_and_names_its_source():
    rows = load_rows()
    names = [r.name for r in rows]
    for expected in ("stdp_patterns_5x3", "stdp_iris", "stdp_breast_cancer", "stdp_iris_noise20",
                     "pcmo_fashion5_ideal", "pcmo_fashion5_25", "pcmo_fashion5_12", "ssdp_fashion_with",
                     "ssdp_fashion_without", "dassdp_fashion", "csdp_digits"):
        assert expected in names
    by = {r.name: r for r in rows}
    assert by["stdp_iris"].published == 99.11 and by["stdp_breast_cancer"].published == 97.9
    assert by["stdp_iris_noise20"].metric == "acc_noisy" and by["stdp_iris_noise20"].config.evaluation.input_noise == 0.2
    assert [by[f"pcmo_fashion5_{k}"].published for k in ("ideal", "25", "12")] == [92.73, 91.07, 80.0]
    assert by["pcmo_fashion5_12"].config.device.params["n_levels"] == 12
    assert by["ssdp_fashion_with"].published_gain == (0.63, 0.63)
    assert by["dassdp_fashion"].published_gain == (0.1, 0.99) and by["dassdp_fashion"].baseline == "ssdp_fashion_without"
    assert all(r.differs and r.work and r.task for r in rows)
    # the quick version is a valid config too
    assert all(r.experiment(True).training.epochs <= r.config.training.epochs for r in rows)
    # picking a gain row brings its baseline
    assert [r.name for r in load_rows(["dassdp_fashion"])] == ["dassdp_fashion", "ssdp_fashion_without"]
    assert (ROWS_DIR / "README.md").is_file()


def test_bad_rows_are_named_with_every_problem(tmp_path):
    path = _row(tmp_path, "bad", extra='published_gain = "big"\nmetrc = "x"', evaluation="")
    text = path.read_text().replace("published = 99.0", "published = 120")
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_row(path)
    msg = str(err.value)
    assert "bad.toml" in msg and "reproduce.published=120 is not allowed" in msg
    assert "published_gain='big' is not allowed" in msg and "needs reproduce.baseline" in msg
    assert "metrc" in msg and "metric" in msg  # unknown key with the closest name
    noisy = _row(tmp_path, "noisy", extra='metric = "acc_noisy"')
    with pytest.raises(ConfigError, match="acc_noisy' needs input noise"):
        load_row(noisy)
    with pytest.raises(ValueError, match=r"rows=\['nope'\] not allowed: each must be one of"):
        load_rows(["nope"], tmp_path)


def _fake_runs(out, row, accs):
    """metrics.json files as the sweep writes them: accs = {(insitu, seed): acc}."""
    for (insitu, seed), acc in accs.items():
        d = out / "rows" / row / "runs" / f"{row}-{insitu}-{seed}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"seed": seed, "insitu": insitu, "test_acc": acc, "wall_s": 2.0}))


def test_table_statistics_are_the_hand_computed_ones(tmp_path):
    rows_dir = tmp_path / "rows_cfg"
    rows_dir.mkdir()
    _row(rows_dir, "base")
    _row(rows_dir, "gain", extra='published_gain = [0.1, 0.99]\nbaseline = "base"')
    rows = load_rows(None, rows_dir)
    out = tmp_path / "out"
    _fake_runs(out, "base", {(True, 0): 0.80, (True, 1): 0.84, (True, 2): 0.82,
                             (False, 0): 0.90, (False, 1): 0.92, (False, 2): 0.94})
    _fake_runs(out, "gain", {(True, 0): 0.81, (True, 1): 0.86, (True, 2): 0.82,
                             (False, 0): 0.90, (False, 1): 0.92, (False, 2): 0.95})
    table = reproduce_table(out, rows).set_index("row")
    b = table.loc["base"]
    assert math.isclose(b.insitu_mean, 0.82) and math.isclose(b.insitu_std, 0.02)  # ddof = 1
    assert math.isclose(b.float_mean, 0.92) and math.isclose(b.float_std, 0.02)
    assert math.isclose(b.gap_to_float, -0.10) and math.isclose(b.gap_to_published, 0.82 - 0.99)
    assert b.n_seeds == 3 and b.wall_s == 12.0
    g = table.loc["gain"]
    # paired differences in-situ: 0.01, 0.02, 0.00 -> mean 0.01, sd 0.01, t(0.975, 2) = 4.3027
    assert math.isclose(g.insitu_gain, 0.01, abs_tol=1e-12)
    assert math.isclose(g.insitu_gain_ci, 4.302653 * 0.01 / math.sqrt(3), rel_tol=1e-5)
    # float: 0, 0, 0.01 -> mean 0.00333, sd 0.005774
    assert math.isclose(g.float_gain, 0.01 / 3, abs_tol=1e-12)
    assert math.isclose(g.float_gain_ci, 4.302653 * 0.0057735 / math.sqrt(3), rel_tol=1e-4)
    assert g.published_gain_range == "+0.1 to +0.99"
    md = markdown(table.reset_index())
    assert "| a paper | Iris | 99.00 | 92.00 +- 2.00 | 82.00 +- 2.00 | -17.00 | -10.00 | 3 | 12 | tiny |" in md
    assert "+1.00 +- 2.48" in md  # the in-situ gain in points with its 95 % interval


def test_run_reproduce_end_to_end_resumes_and_refuses_another_spec(tmp_path, capsys):
    rows_dir = tmp_path / "cfg"
    rows_dir.mkdir()
    _row(rows_dir, "iris_row")
    out = tmp_path / "out"
    table = run_reproduce(out, seeds=(0, 1), quick=True, workers=1, rows_dir=rows_dir, progress=False)
    expected = ["row", "work", "task", "metric", "published", "float_mean", "float_std", "insitu_mean",
                "insitu_std", "gap_to_published", "gap_to_float", "published_gain", "float_gain", "float_gain_ci",
                "insitu_gain", "insitu_gain_ci", "n_seeds", "wall_s", "differs"]
    assert list(table.columns) == expected
    assert list(pd.read_csv(out / "reproduce.csv").columns) == expected
    for name in ("reproduce.md", "reproduce.png", "reproduce.toml"):
        assert (out / name).stat().st_size > 0
    runs = sorted((out / "rows" / "iris_row" / "runs").glob("*/metrics.json"))
    assert len(runs) == 4  # in-situ and float, 2 seeds
    stamps = [p.stat().st_mtime_ns for p in runs]
    run_reproduce(out, seeds=(0, 1), quick=True, workers=1, rows_dir=rows_dir, progress=False)  # resumes
    assert [p.stat().st_mtime_ns for p in runs] == stamps  # nothing ran again
    with pytest.raises(ValueError, match="holds a reproduce with other rows, seeds or settings"):
        run_reproduce(out, seeds=(0, 1, 2), quick=True, workers=1, rows_dir=rows_dir, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="is not empty and is not a reproduce directory"):
        run_reproduce(tmp_path / "other", seeds=(0,), rows_dir=rows_dir, progress=False)


def test_cli_lists_rows_and_refuses_bad_options(tmp_path, capsys):
    assert main(["reproduce", "--list"]) == 0
    assert "stdp_iris" in capsys.readouterr().out
    assert main(["reproduce", "--rows", "nope", "--out", str(tmp_path / "r")]) == 2
    assert "rows=['nope'] not allowed" in capsys.readouterr().err
    assert main(["reproduce", "--seeds", "0,0", "--rows", "stdp_iris", "--out", str(tmp_path / "r")]) == 2
    assert "seeds=[0, 0] is not allowed" in capsys.readouterr().err
