"""Sweep reports on hand-made sweep directories whose accuracies are known."""

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
import torch

from memsnn.crossbar.maps import export_maps
from memsnn.experiments.report import FIGURE_KINDS, build_report, write_report
from memsnn.files import FileExistsRefusal

torch.set_num_threads(1)

NOISE, LEVELS = "device.read_noise_std", "device.n_levels"
#: (read noise, levels, seed) -> test accuracy; None = the run failed
ACC = {
    (0.0, 64, 0): 0.90, (0.0, 64, 1): 0.92,
    (0.0, 8, 0): 0.80, (0.0, 8, 1): 0.84,
    (0.02, 64, 0): 0.85, (0.02, 64, 1): 0.87,
    (0.02, 8, 0): 0.70, (0.02, 8, 1): None,
}
ERROR = "RuntimeError: crossbar exploded | at tile (0, 1)"
DRIFT = {0: 0.0, 3600: 0.02, 86400: 0.05}  # accuracy lost after t seconds


def _run_id(noise, levels, seed):
    return f"noise{noise:g}-levels{levels}-seed{seed}"


def _write_maps(run_dir: Path, layers: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for i, (gp, gm) in enumerate(layers):
        export_maps(run_dir / "maps", g_plus=gp, g_minus=gm, weight=(gp - gm) / 1e-7, tile_size=(4, 4),
                    formats=("npz",), name=f"layer{i}")


def make_sweep(root: Path, *, spec: bool = True) -> Path:
    """A 2 x 2 product sweep over read noise and levels with 2 seeds; one run failed.

    The grid lists levels as 64, 8, so the baseline of n_levels is 64 (not the smallest value).
    Every run has metrics; the two baseline runs have history.csv and conductance maps.
    """
    root.mkdir(parents=True)
    if spec:  # the layout memsnn.experiments.sweep writes
        (root / "sweep.toml").write_text(tomli_w.dumps({
            "format": 1, "mode": "product", "seeds": [0, 1], "grid": {NOISE: ["0.0", "0.02"], LEVELS: ["64", "8"]},
            "base": {"device": {"preset": "srtio3"}, "rule": {"name": "stdp", "insitu": True}}}))
    rng = np.random.default_rng(0)
    rows = []
    for (noise, levels, seed), acc in ACC.items():
        rid = _run_id(noise, levels, seed)
        row = {"run_id": rid, "status": "done" if acc is not None else "failed", "error": None if acc else ERROR,
               "seed": seed, NOISE: noise, LEVELS: levels, "test_acc": acc, "rule": "stdp", "insitu": True,
               "method": "stdp-srtio3", "device": "srtio3", "dataset": "digits"}
        for t, loss in DRIFT.items():
            row[f"acc_at_{t}s"] = None if acc is None else acc - loss
        row.update({"acc_jitter_2": None if acc is None else acc - 0.1,
                    "pulses": None if acc is None else 1000.0 * levels,
                    "energy_J": None if acc is None else 1e-9 * levels, "wall_s": 1.5})
        rows.append(row)
        run = root / "runs" / rid
        run.mkdir(parents=True)
        if noise == 0.0 and levels == 64:  # the baseline point: history and maps
            pd.DataFrame({"epoch": [1, 2, 3], "test_acc": [0.5, 0.8, acc]}).to_csv(run / "history.csv", index=False)
            layers = [(rng.uniform(5e-9, 1e-7, (6, 5)), rng.uniform(5e-9, 1e-7, (6, 5))),
                      (rng.uniform(5e-9, 1e-7, (5, 3)), rng.uniform(5e-9, 1e-7, (5, 3)))]
            _write_maps(run, layers)
            np.savez(run / f"pooled_seed{seed}.npz", gp=np.concatenate([gp.ravel() for gp, _ in layers]))
    table = pd.DataFrame(rows)
    table.to_parquet(root / "results.parquet", index=False)
    table.to_csv(root / "results.csv", index=False)
    return root


def make_small(root: Path) -> Path:
    """One swept key in a zip sweep, one seed, no maps or history: the quickest report."""
    root.mkdir(parents=True)
    (root / "sweep.json").write_text(json.dumps({"grid": {NOISE: ["0", "0.1"]}, "mode": "zip", "seeds": [0]}))
    pd.DataFrame({"run_id": ["a", "b"], "status": ["done", "done"], "seed": [0, 0], NOISE: [0.0, 0.1],
                  "test_acc": [0.9, 0.8]}).to_csv(root / "results.csv", index=False)
    return root


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return make_sweep(tmp_path_factory.mktemp("report") / "sweep")


@pytest.fixture(scope="module")
def report(sweep):
    return build_report(sweep)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(text)
    return parser.tags


def test_one_accuracy_figure_per_swept_parameter(report):
    assert report.swept == [NOISE, LEVELS]
    figs = report.figures_of("accuracy_vs_param")
    assert [f.name for f in figs] == [f"accuracy_vs_{NOISE}", f"accuracy_vs_{LEVELS}"]
    assert all(f.png.startswith(b"\x89PNG") for f in report.figures)
    assert {f.kind for f in report.figures} == set(FIGURE_KINDS)
    assert report.baseline == {NOISE: "0", LEVELS: "64"}
    assert report.levels == {NOISE: ["0", "0.02"], LEVELS: ["8", "64"]}
    # the report's method label comes from rule / insitu; the runs' own method column is kept
    assert set(report.runs.report_method) == {"stdp in-situ"} and set(report.runs.method) == {"stdp-srtio3"}


def test_accuracy_curves_hold_the_other_key_at_its_grid_baseline(report):
    # against read noise: n_levels held at 64, the first value of the grid
    data = report.figure(f"accuracy_vs_{NOISE}").data
    assert list(data[NOISE]) == ["0", "0.02"]
    np.testing.assert_allclose(data["mean"], [0.91, 0.86])
    np.testing.assert_allclose(data["std"], [np.std([0.90, 0.92], ddof=1), np.std([0.85, 0.87], ddof=1)])
    assert list(data["n"]) == [2, 2]
    assert f"{LEVELS} = 64" in report.figure(f"accuracy_vs_{NOISE}").caption
    # against levels: noise held at 0.0
    data = report.figure(f"accuracy_vs_{LEVELS}").data
    np.testing.assert_allclose(data["mean"], [0.82, 0.91])


def test_heatmap_values_are_the_means_over_seeds(report):
    heat = report.figure("heatmap").data
    assert heat.index.name == NOISE and heat.columns.name == LEVELS
    assert list(heat.index) == ["0", "0.02"] and list(heat.columns) == ["8", "64"]
    # the failed seed of (0.02, 8) is left out of its mean
    expected = [[np.mean([0.80, 0.84]), np.mean([0.90, 0.92])], [0.70, np.mean([0.85, 0.87])]]
    np.testing.assert_allclose(heat.to_numpy(), expected)


def test_accuracy_against_time_reads_the_acc_at_columns(report):
    data = report.figure("accuracy_vs_time").data
    assert sorted(set(data.time_s)) == [0.0, 3600.0, 86400.0] and len(data) == 6
    # one method: one line per value of the first swept key, levels held at 64
    assert set(data.line) == {f"{NOISE} = 0", f"{NOISE} = 0.02"}
    at_day = data[(data.time_s == 86400.0)].set_index("line")["mean"]
    np.testing.assert_allclose(at_day[f"{NOISE} = 0"], 0.91 - 0.05)
    np.testing.assert_allclose(at_day[f"{NOISE} = 0.02"], 0.86 - 0.05)


def test_cost_and_conductance_figures(report, sweep):
    cost = report.figure("cost").data.set_index("method")
    done_levels = [lv for (_, lv, _), acc in ACC.items() if acc is not None]
    np.testing.assert_allclose(cost.loc["stdp in-situ", "pulses_mean"], 1000.0 * np.mean(done_levels))
    np.testing.assert_allclose(cost.loc["stdp in-situ", "energy_J_mean"], 1e-9 * np.mean(done_levels))
    # the representative run is the first seed of the baseline point; G+ pooled over both layers
    hist = report.figure("conductance_histograms").data.iloc[0]
    assert hist.run_id == _run_id(0.0, 64, 0) and hist.layers == 2 and hist.devices == 6 * 5 + 5 * 3
    pooled = np.load(sweep / "runs" / _run_id(0.0, 64, 0) / "pooled_seed0.npz")["gp"]
    np.testing.assert_allclose(hist.g_plus_mean_S, pooled.mean())
    assert "G- (nS" in report.figure("conductance_histograms").caption  # all below 1 uS: drawn in nS
    cmap = report.figure("conductance_map").data.iloc[0]
    assert (cmap.file, cmap.rows, cmap.cols) == ("layer0_maps.npz", 6, 5)
    curves = report.figure("learning_curves").data
    assert list(curves.test_acc) == [0.5, 0.8, 0.90]


def test_summary_and_failed_runs_tables(report):
    s = report.summary.set_index([NOISE, LEVELS])
    assert s.loc[("0", "64"), "test_acc (%)"] == "91.0 ± 1.4"
    assert s.loc[("0.02", "8"), "test_acc (%)"] == "70.0"  # one finished seed: no std
    assert (s.loc[("0.02", "8"), "runs done"], s.loc[("0.02", "8"), "failed"]) == (1, 1)
    assert s.loc[("0", "8"), "acc_at_86400s (%)"] == "77.0 ± 2.8"
    assert list(report.failures.run_id) == [_run_id(0.02, 8, 1)]
    assert report.failures.error.item() == ERROR
    assert report.failures[LEVELS].item() == "8"


def test_html_is_self_contained_and_references_every_figure(sweep, report, tmp_path):
    path = write_report(sweep, fmt="html", out=tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    tags = _tags(text)
    imgs = [a for t, a in tags if t == "img"]
    assert len(imgs) == len(report.figures)
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(a["src"].split(",", 1)[1]).startswith(b"\x89PNG")
    assert not [t for t, a in tags if t in ("link", "script", "iframe", "object")]
    assert not [a for t, a in tags if {"href", "src"} & set(a) and not a.get("src", "data:").startswith("data:")]
    assert "url(" not in text and "@import" not in text
    figure_ids = {a.get("id") for t, a in tags if t == "figure"}
    assert {f"fig-accuracy_vs_{NOISE}", f"fig-accuracy_vs_{LEVELS}"} <= figure_ids
    assert "crossbar exploded | at tile (0, 1)" in text and _run_id(0.02, 8, 1) in text  # the failures table
    assert "91.0 ± 1.4" in text
    assert not (tmp_path / "r_files").exists()


def test_markdown_writes_images_next_to_it_and_links_them(sweep, report, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(sweep, d)
    path = write_report(d, fmt="md")
    assert path == d / "report.md"
    text = path.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == len(report.figures)
    for link in links:
        assert link.startswith("report_files/") and (d / link).read_bytes().startswith(b"\x89PNG")
    assert f"report_files/accuracy_vs_{NOISE}.png" in links and f"report_files/accuracy_vs_{LEVELS}.png" in links
    assert "data:" not in text
    # the failed run with its error (its pipe escaped so the table keeps its columns)
    (row,) = [ln for ln in text.splitlines() if _run_id(0.02, 8, 1) in ln]
    assert "crossbar exploded \\| at tile (0, 1)" in row
    # the heatmap's numbers are printed under it
    assert re.search(r"\| 0\.02 \| 70\.0 \| 86\.0 \|", text)


def test_refuses_to_overwrite(tmp_path):
    sweep = make_small(tmp_path / "small")
    out = tmp_path / "r.html"
    write_report(sweep, fmt="html", out=out)
    out.write_text("mine")
    with pytest.raises(FileExistsRefusal, match="refusing to overwrite"):
        write_report(sweep, fmt="html", out=out)
    assert out.read_text() == "mine"
    write_report(sweep, fmt="html", out=out, overwrite=True)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # Markdown: leftover images from an earlier report are not overwritten either
    files = tmp_path / "m_files"
    files.mkdir()
    (files / f"accuracy_vs_{NOISE}.png").write_bytes(b"old")
    with pytest.raises(FileExistsRefusal, match="m_files"):
        write_report(sweep, fmt="md", out=tmp_path / "m.md")
    assert (files / f"accuracy_vs_{NOISE}.png").read_bytes() == b"old" and not (tmp_path / "m.md").exists()
    write_report(sweep, fmt="md", out=tmp_path / "m.md", overwrite=True)
    assert (files / f"accuracy_vs_{NOISE}.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(FileExistsRefusal, match="m.md"):
        write_report(sweep, fmt="md", out=tmp_path / "m.md")


def test_clear_errors_before_any_work(tmp_path, sweep):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no results table"):
        write_report(empty)
    with pytest.raises(ValueError, match="fmt='pdf' is not allowed"):
        write_report(sweep, fmt="pdf")
    with pytest.raises(ValueError, match="suffix must be one of .md"):
        write_report(sweep, fmt="md", out=tmp_path / "r.html")
    failed = tmp_path / "failed"
    failed.mkdir()
    pd.DataFrame({"run_id": ["a", "b"], "status": ["failed", "failed"], "error": ["boom", "bang"],
                  "seed": [0, 1], "test_acc": [None, None]}).to_csv(failed / "results.csv", index=False)
    with pytest.raises(ValueError, match="none of the 2 runs finished.*first error: boom"):
        write_report(failed)
    assert not (failed / "report.html").exists()


def test_without_a_spec_the_swept_keys_come_from_the_columns(tmp_path):
    d = make_sweep(tmp_path / "nospec", spec=False)
    (d / "results.parquet").unlink()  # the CSV is read instead
    rep = build_report(d)
    assert rep.swept == [NOISE, LEVELS]
    assert any("sweep.json" in n for n in rep.notes)
    assert len(rep.figures_of("accuracy_vs_param")) == 2
    # without a grid the baseline is the smallest value
    assert rep.baseline == {NOISE: "0", LEVELS: "8"}


def test_methods_from_a_swept_rule_and_a_log_axis_with_units(tmp_path):
    d = tmp_path / "rules"
    d.mkdir()
    key = "device.tau_volatile"
    (d / "sweep.json").write_text(json.dumps({
        "base": {"device": {"preset": "srtio3"}, "rule": {"name": "stdp", "insitu": True}},
        "grid": {"rule.name": ["stdp", "sg"], key: ["1", "10", "1000"]}, "mode": "product", "seeds": [0]}))
    rows = [{"run_id": f"{r}-{tau}", "status": "done", "error": None, "seed": 0, "rule.name": r, key: tau,
             "test_acc": acc, "acc_at_0s": acc, "acc_at_86400s": acc - 0.1, "rule": r, "insitu": True,
             "pulses": 10.0, "energy_J": 1e-12}
            for r, base in (("stdp", 0.6), ("sg", 0.9)) for tau, acc in ((1.0, base), (10.0, base + 0.01),
                                                                      (1000.0, base + 0.02))]
    pd.DataFrame(rows).to_csv(d / "results.csv", index=False)
    g = np.linspace(1e-6, 2e-6, 12).reshape(4, 3)  # one device per weight against a reference column
    export_maps(d / "runs" / "sg-1.0" / "maps", g_plus=g, g_minus=None, weight=g, formats=("npz",), name="layer0")
    rep = build_report(d)
    (fig,) = rep.figures_of("accuracy_vs_param")  # rule.name is not a non-ideality
    assert fig.name == f"accuracy_vs_{key}" and "log axis" in fig.caption
    assert rep.units[key] == "s" and f"{key} (s)" in fig.caption
    means = fig.data.pivot(index="method", columns=key, values="mean")
    np.testing.assert_allclose(means.loc["sg in-situ", ["1", "10", "1000"]], [0.9, 0.91, 0.92])
    np.testing.assert_allclose(means.loc["stdp in-situ", ["1", "10", "1000"]], [0.6, 0.61, 0.62])
    # accuracy against time: one line per method at the baseline tau = 1 s
    t = rep.figure("accuracy_vs_time").data
    assert set(t.line) == {"stdp in-situ", "sg in-situ"}
    np.testing.assert_allclose(t[(t.line == "sg in-situ") & (t.time_s == 86400.0)]["mean"], [0.8])
    # the heatmap has the rule categories in grid order as rows
    heat = rep.figure("heatmap").data
    assert list(heat.index) == ["stdp", "sg"]
    np.testing.assert_allclose(heat.loc["sg"].to_numpy(), [0.9, 0.91, 0.92])
    # maps of the sg run only, without G-; no history: said so instead of drawn
    hist = rep.figure("conductance_histograms")
    assert list(hist.data.method) == ["sg in-situ"] and np.isnan(hist.data.g_minus_mean_S.item())
    assert "sg in-situ: one device per weight against a reference column, no G-" in hist.caption
    assert "(uS" in hist.caption and "G+ (uS)" in rep.figure("conductance_map").caption
    assert "learning_curves" not in {f.kind for f in rep.figures}
    assert any(n.startswith("learning curves: skipped") for n in rep.notes)


def test_one_swept_key_skips_the_heatmap_with_a_note(tmp_path):
    d = make_small(tmp_path / "one")
    rep = build_report(d)
    assert [f.kind for f in rep.figures] == ["accuracy_vs_param"]  # no pulses, maps or history either
    assert any(n.startswith("heatmap: skipped") and NOISE in n for n in rep.notes)
    path = write_report(d, fmt="md")
    assert "heatmap: skipped" in path.read_text(encoding="utf-8")


def test_a_sweep_over_seeds_only(tmp_path):
    d = tmp_path / "seeds"
    d.mkdir()
    (d / "sweep.toml").write_text(tomli_w.dumps({"format": 1, "mode": "product", "seeds": [0, 1], "grid": {}}))
    pd.DataFrame({"run_id": ["a", "b"], "status": ["done", "done"], "seed": [0, 1], "test_acc": [0.9, 0.7],
                  "metric.seed": [0, 1], "rule": "sg", "insitu": False}).to_csv(d / "results.csv", index=False)
    rep = build_report(d)
    assert rep.swept == [] and rep.figures_of("accuracy_vs_param") == []
    assert rep.summary.to_dict("records") == [{"method": "sg float", "runs done": 2, "failed": 0,
                                               "test_acc (%)": "80.0 ± 14.1"}]
