import json

import numpy as np
import pandas as pd
import pytest

from memsnn.device_models import make_device
from memsnn.device_models.fitting import PulseDataError, fit_device, load_pulse_data, predict_pulse_data
from memsnn.experiments.cli import main


def synthetic(model, cycles=2, n_set=150, n_reset=150, noise=0.01, seed=0, g0=1e-8):
    pol = [0] + ([1] * n_set + [-1] * n_reset) * cycles
    df = pd.DataFrame({"pulse": np.arange(len(pol)), "polarity": pol, "conductance": np.full(len(pol), g0)})
    clean = predict_pulse_data(model, df)
    rng = np.random.default_rng(seed)
    df["conductance"] = clean * (1 + noise * rng.standard_normal(len(clean)))
    return df


def test_srtio3_fit_recovers_known_parameters():
    true = dict(r1=1.8e8, c0=-0.12, reset_efficiency=0.35, g_max=8e-8)
    df = synthetic(make_device("srtio3", **true))
    res = fit_device(df, "srtio3")
    assert res.success
    for name, value in true.items():
        assert res.values[name] == pytest.approx(value, rel=0.03), name
        # the reported uncertainty is honest: the truth lies within 4 standard errors
        assert abs(res.values[name] - value) < 4 * res.stderr[name] + 1e-12 * abs(value), name
    assert res.rmse < 0.02 * df["conductance"].median()


def test_srtio3_fit_with_two_amplitudes_recovers_c0_and_c1():
    model = make_device("srtio3", c0=-0.08, c1=-0.6)
    parts = []
    for volts in (0.6, 1.0):
        d = synthetic(model, cycles=1, noise=0.0)
        d["amplitude"] = volts
        parts.append(d)
    # rebuild with each amplitude's own prediction, then concatenate as one measurement
    df = pd.concat(parts, ignore_index=True)
    df["pulse"] = np.arange(len(df))
    df.loc[df.index[len(parts[0])], "polarity"] = 0
    df["conductance"] = predict_pulse_data(model, df) * (1 + 0.005 * np.random.default_rng(1).standard_normal(len(df)))
    res = fit_device(df, "srtio3")
    assert "c1" in res.values
    assert res.values["c0"] == pytest.approx(-0.08, abs=0.01)
    assert res.values["c1"] == pytest.approx(-0.6, rel=0.03)


def test_rram_soft_bounds_fit():
    true = dict(alpha_set=0.01, alpha_reset=0.02, g_min=45e-6, g_max=130e-6)
    model = make_device("rram", **true)
    df = synthetic(model, n_set=300, n_reset=300, noise=0.005, g0=50e-6)
    res = fit_device(df, "rram")
    for name, value in true.items():
        assert res.values[name] == pytest.approx(value, rel=0.03), name


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,match", [
    ("", "is empty"),
    ("pulse,polarity,conductance\n", "no data rows"),
    ("pulse,conductance\n0,1e-8\n1,2e-8\n2,3e-8\n", "lacks column\\(s\\) polarity"),
    ("pulse,polarity,conductance\n0,0,1e-8\n1,1,\n2,1,3e-8\n", "missing value \\(NaN\\) in row 3"),
    ("pulse,polarity,conductance\n0,0,1e-8\n1,1,abc\n2,1,3e-8\n", "non-numeric value 'abc' in row 3"),
    ("pulse,polarity,conductance\n0,0,1e-8\n1,2,2e-8\n2,1,3e-8\n", "polarity 2 in row 3 must be \\+1, -1 or 0"),
    ("pulse,polarity,conductance\n0,0,1e-8\n1,1,-2e-8\n2,1,3e-8\n", "conductance -2e-08 in row 3 must be > 0"),
    ("pulse,polarity,conductance\n0,0,1e-8\n0,1,2e-8\n2,1,3e-8\n", "must increase strictly"),
    ("pulse,polarity,conductance\n0,0,1e-8\n1,up,2e-8\n2,1,3e-8\n", "polarity 'up' in row 3"),
])
def test_garbage_csv_gives_clear_error(tmp_path, text, match):
    with pytest.raises(PulseDataError, match=match):
        load_pulse_data(write(tmp_path, text))


def test_set_reset_words_accepted(tmp_path):
    df = load_pulse_data(write(tmp_path, "pulse,polarity,conductance\n0,none,1e-8\n1,set,2e-8\n2,RESET,1.5e-8\n"))
    assert df["polarity"].tolist() == [0, 1, -1]


def test_cli_fit_device_writes_json_and_plot_and_refuses_overwrite(tmp_path, capsys):
    df = synthetic(make_device("srtio3", r1=2.0e8), cycles=1, noise=0.01)
    csv = tmp_path / "meas.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "params.json"
    assert main(["fit-device", str(csv), "--model", "srtio3", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["fitted"]) == {"r1", "c0", "reset_efficiency", "g_max"}
    assert data["fitted"]["r1"]["value"] == pytest.approx(2.0e8, rel=0.05)
    assert data["fitted"]["r1"]["stderr"] > 0
    # the full parameter set loads straight back into a device
    assert make_device("srtio3", params=data["params"]).params.r1 == pytest.approx(data["fitted"]["r1"]["value"])
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["fit-device", str(csv), "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
