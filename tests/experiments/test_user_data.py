"""A user's own CSV through every entry point, and named errors before any run directory."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from memsnn.crossbar.array import Crossbar
from memsnn.crossbar.storage import load_crossbars
from memsnn.experiments.cli import main
from memsnn.experiments.compare import CompareConfig
from memsnn.experiments.datasets import check_csv_header, load_dataset


def _iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    b = load_iris()
    df = pd.DataFrame(b.data, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    df["species"] = np.array(b.target_names)[b.target]
    return df


@pytest.fixture
def iris_csv(tmp_path):
    path = tmp_path / "flowers.csv"
    _iris_frame().to_csv(path, index=False)  # labels in the last column, no column named 'label'
    return path


def test_label_column_default_is_label_else_the_last_column(tmp_path, iris_csv):
    assert check_csv_header(iris_csv) == ("species", "the last column")
    df = _iris_frame().rename(columns={"species": "label"})
    df = df[["label", "sepal_l", "sepal_w", "petal_l", "petal_w"]]
    first = tmp_path / "first.csv"
    df.to_csv(first, index=False)
    assert check_csv_header(first) == ("label", "the column named 'label'")
    assert check_csv_header(first, "petal_w") == ("petal_w", "given")
    with pytest.raises(ValueError, match="'specie' is not a column of .*did you mean 'species'"):
        check_csv_header(iris_csv, "specie")


def test_compare_runs_on_a_csv_and_says_which_label_column(tmp_path, iris_csv, capsys):
    out = tmp_path / "runs"
    args = ["compare", "--quick", "--dataset", str(iris_csv), "--rules", "stdp,logreg", "--epochs", "1",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "label column 'species' (the last column" in text and "3 classes" in text
    (run,) = list(out.iterdir())
    assert run.name.startswith("compare-flowers-srtio3-")
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["dataset"] == str(iris_csv) and cfg["label_column"] == "species"
    table = pd.read_csv(run / "compare.csv")
    assert set(table.rule) == {"stdp", "logreg"}
    # the same data as load_dataset("csv", ...): logistic regression on Iris is strong
    assert table.loc[table.rule == "logreg", "test_acc"].item() > 0.8
    ds = load_dataset("csv", path=iris_csv, label_column="species")
    assert ds.classes == ["setosa", "versicolor", "virginica"]


def test_compare_and_exsitu_refuse_bad_csv_before_a_run_directory(tmp_path, iris_csv, capsys):
    out = tmp_path / "runs"
    assert main(["compare", "--quick", "--dataset", str(iris_csv), "--label-column", "kind", "--out", str(out)]) == 2
    assert "label_column 'kind' is not a column" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    df = _iris_frame()
    df.loc[7, "petal_w"] = np.nan
    df.to_csv(bad, index=False)
    assert main(["compare", "--quick", "--dataset", str(bad), "--out", str(out)]) == 2
    assert "feature column 'petal_w' is missing / NaN at row 8" in capsys.readouterr().err
    assert main(["exsitu", "--dataset", str(bad), "--out", str(out)]) == 2
    assert "feature column 'petal_w' is missing / NaN at row 8" in capsys.readouterr().err
    assert main(["compare", "--dataset", str(tmp_path / "nope.csv"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["compare", "--dataset", "iris", "--label-column", "x", "--out", str(out)]) == 2
    assert "only used with a CSV file" in capsys.readouterr().err
    assert not out.exists()


def test_exsitu_runs_on_a_csv(tmp_path, iris_csv, capsys):
    out = tmp_path / "runs"
    assert main(["exsitu", "--dataset", str(iris_csv), "--label-column", "species", "--epochs", "1", "--hidden", "8",
                 "--steps", "5", "--presets", "ideal", "--methods", "open_loop", "--out", str(out), "--quiet"]) == 0
    assert "label column 'species' (--label-column)" in capsys.readouterr().out
    (run,) = list(out.iterdir())
    assert run.name.startswith("exsitu-flowers-")
    assert len(load_crossbars(run / "crossbars-ideal-open_loop.pt")) == 2


def test_config_check_reads_the_csv_header_and_run_refuses_bad_data_before_a_directory(tmp_path, iris_csv, capsys):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'[data]\ndataset = "csv"\npath = "{iris_csv}"\nlabel_column = "label"\n')
    assert main(["config", "--check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "data.label_column 'label' is not a column" in err or "label_column 'label' is not a column" in err
    cfg.write_text(f'[data]\ndataset = "csv"\npath = "{iris_csv}"\nlabel_column = "species"\n')
    assert main(["config", "--check", str(cfg)]) == 0
    # a data error beyond the header (a text cell) stops `run` before it makes a run directory
    bad = tmp_path / "bad.csv"
    df = _iris_frame().astype({"sepal_w": object})
    df.loc[3, "sepal_w"] = "wide"
    df.to_csv(bad, index=False)
    cfg.write_text(f'[data]\ndataset = "csv"\npath = "{bad}"\nlabel_column = "species"\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "runs")]) == 2
    assert "feature column 'sepal_w' is not numeric: value 'wide' at row 4" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_compare_config_resolves_the_label_column():
    with pytest.raises(ValueError, match="dataset='mnist9' is not allowed.*or the path of a CSV file"):
        CompareConfig(dataset="mnist9")


@pytest.mark.parametrize("content", [b"a,b\n1,2\n", b"", b"\x00\x01garbage", None, [1, 2], {"format": "memsnn.crossbar", "version": 1}])
def test_loading_a_file_that_is_not_a_crossbar_is_a_value_error_naming_it(tmp_path, content):
    path = tmp_path / "thing.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        torch.save(content, path)
    for load in (Crossbar.load, load_crossbars):
        with pytest.raises(ValueError, match="thing.pt is not a"):
            load(path)
