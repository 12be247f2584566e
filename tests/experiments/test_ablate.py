import json
import math

import pandas as pd
import pytest

from memsnn.experiments.ablate import STEPS, ablation_steps, ablation_table, markdown, plan_ablation, run_ablation
from memsnn.experiments.cli import main
from memsnn.experiments.config import ExperimentConfig

ISSUE_ORDER = ["float", "clean device", "nonlinearity", "asymmetry", "c2c", "d2d", "finite levels", "read noise",
               "stuck devices", "volatile", "drift", "ADC/DAC", "IR drop"]


def test_ladder_order_and_cumulative_overrides_on_srtio3():
    steps = ablation_steps(ExperimentConfig())
    assert [s.name for s in steps] == ISSUE_ORDER == [n for n, _ in STEPS]
    keys = set(steps[0].overrides)
    assert all(set(s.overrides) == keys for s in steps)  # zip mode: the same keys at every step
    assert steps[0].overrides["rule.insitu"] == "false" and all(s.overrides["rule.insitu"] == "true" for s in steps[1:])
    clean = steps[1].overrides
    assert clean["device.step_std"] == "0.0" and clean["device.read_noise_std"] == "0.0"
    assert clean["device.d2d_scale"] == "0.0" and clean["device.nonlinearity"] == "0.0"
    assert clean["device.asymmetry"] == "1.0" and clean["device.n_levels"] == "none"
    assert clean["periphery.adc_bits"] == "none" and clean["crossbar.ir_drop"] == "none"
    for prev, step in zip(steps[1:], steps[2:]):  # each step = the previous one plus what it adds
        assert step.overrides == {**prev.overrides, **step.added}
    by = {s.name: s for s in steps}
    # srtio3 defaults: c(1 V) = -0.093 - 0.53 = -0.623, so nonlinearity = 1 + c = 0.377
    assert float(by["nonlinearity"].added["device.nonlinearity"]) == pytest.approx(0.377)
    assert by["asymmetry"].added == {"device.asymmetry": "0.5"} and by["c2c"].added == {"device.step_std": "0.2"}
    assert by["read noise"].source == "default" and by["drift"].added == {"device.drift_nu": "0.05"}
    # srtio3 leaves levels, stuck devices, DAC/ADC and IR drop off: those steps run nothing
    for name in ("finite levels", "stuck devices", "ADC/DAC", "IR drop"):
        assert by[name].skipped and by[name].source == "off in device" and by[name].added == {}
    # so the last step is the device as configured (the memsnn compare in-situ setting)
    last = ExperimentConfig().with_overrides(steps[-1].overrides)
    got, want = last.device_model().params.to_dict(), ExperimentConfig().device_model().params.to_dict()
    assert got.keys() == want.keys()
    for k, v in want.items():  # c0 comes back through the nonlinearity knob: equal to rounding
        assert got[k] == (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v), k
    assert last.periphery_params() is None
    # hardware=True takes the documented values for what the device leaves off
    hw = {s.name: s for s in ablation_steps(ExperimentConfig(), hardware=True)}
    assert hw["finite levels"].added == {"device.n_levels": "64"} and hw["finite levels"].source == "hardware value"
    assert hw["ADC/DAC"].added == {"periphery.dac_bits": "7", "periphery.adc_bits": "8"}
    assert hw["IR drop"].added == {"crossbar.ir_drop": "approx"}
    hw_last = ExperimentConfig().with_overrides(list(hw.values())[-1].overrides)
    assert hw_last.device.params["step_std"] == 0.2 and hw_last.periphery["adc_bits"] == 8


def test_config_values_win_and_presets_without_a_knob_mark_it_na():
    cfg = ExperimentConfig().with_overrides({"device.n_levels": "32", "device.level_rounding": "stochastic"})
    levels = {s.name: s for s in ablation_steps(cfg)}["finite levels"]
    assert levels.added == {"device.n_levels": "32"} and levels.source == "config"
    on = {s.name: s for s in ablation_steps(ExperimentConfig(), on={"device.stuck_fraction": 0.05})}
    assert on["stuck devices"].added == {"device.stuck_fraction": "0.05"}
    rram = {s.name: s for s in ablation_steps(ExperimentConfig().with_overrides({"device.preset": "rram"}))}
    assert rram["nonlinearity"].skipped and rram["nonlinearity"].added == {}
    assert rram["asymmetry"].added["device.asymmetry"] == pytest.approx("1.6666666666666665")
    pcm = {s.name: s for s in ablation_steps(ExperimentConfig().with_overrides({"device.preset": "pcm"}))}
    assert pcm["asymmetry"].skipped and pcm["read noise"].added == {"device.read_noise_scale": "1.0"}
    assert "device.nonlinearity" not in pcm["IR drop"].overrides
    # the clean device has no per-cycle noise on any preset; the c2c step brings all of it
    assert rram["clean device"].overrides["device.write_noise_std"] == "0.0"
    assert rram["c2c"].added == {"device.step_std": "3.75", "device.write_noise_std": "56.0"}
    assert pcm["clean device"].overrides["device.reset_std"] == "0.0"
    assert pcm["c2c"].added == {"device.step_std": "0.6", "device.reset_std": "0.02"}


def _fake_runs(out, rule, accs):
    for label, seed, acc in accs:
        d = out / rule / "runs" / f"{label}-{seed}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"name": label, "seed": seed, "test_acc": acc, "wall_s": 1.5}))


def test_table_columns_means_deltas_and_na_steps(tmp_path):
    cfg = ExperimentConfig().with_overrides({"device.preset": "rram"})
    steps = ablation_steps(cfg)
    labels = {s.name: f"ablation-{s.index:02d}-{s.name.replace(' ', '_').replace('/', '_')}" for s in steps}
    runs = []
    for i, s in enumerate(steps):
        if not s.skipped:
            runs += [(labels[s.name], 0, 0.9 - 0.02 * i), (labels[s.name], 1, 0.92 - 0.02 * i)]
    _fake_runs(tmp_path, "stdp", runs)
    table = ablation_table(tmp_path, {"stdp": steps})
    assert list(table.columns) == ["rule", "step", "name", "description", "source", "overrides_added", "acc_mean",
                                   "acc_std", "n_seeds", "delta", "wall_s"]
    assert list(table.name) == ISSUE_ORDER and table.step.tolist() == list(range(13))
    assert table.acc_mean[0] == pytest.approx(0.91) and table.acc_std[0] == pytest.approx(math.sqrt(2e-4))
    assert math.isnan(table.delta[0]) and table.delta[1] == pytest.approx(-0.02)
    # nonlinearity has no knob on rram: it repeats the clean device's accuracy, ran nothing
    na = table[table.name == "nonlinearity"].iloc[0]
    assert na.source == "n/a" and na.acc_mean == table.acc_mean[1] and na.delta == 0 and na.wall_s == 0
    assert table[table.name == "asymmetry"].delta.item() == pytest.approx(-0.04)  # step 3 against 1 (2 is n/a)
    md = markdown(table)
    assert "| 2 nonlinearity | - | n/a | 89.00 +- 1.41 | +0.00 | 2 |" in md


def test_bad_input_is_refused_before_any_run(tmp_path):
    cfg = ExperimentConfig()
    with pytest.raises(ValueError, match=r"rules=\['hebb'\] is not allowed: each must be one of stdp, sg"):
        plan_ablation(cfg, rules=("hebb",))
    with pytest.raises(ValueError, match=r"metric='acc_at_5s' is not allowed: must be one of test_acc"):
        plan_ablation(cfg, metric="acc_at_5s")
    with pytest.raises(ValueError, match=r"on=\['device.colour'\]: not a key of this ablation"):
        plan_ablation(cfg, on={"device.colour": 1})
    with pytest.raises(ValueError, match=r"seeds=\[\] is not allowed"):
        plan_ablation(cfg, seeds=())
    stdp_params = cfg.with_overrides({"rule.params.a_plus": "0.1"})
    with pytest.raises(ValueError, match=r"\[rule.params\] belong to rule 'stdp'"):
        plan_ablation(stdp_params, rules=("sg",))
    assert main(["ablate", "--rules", "hebb", "--out", str(tmp_path / "a")]) == 2
    assert not (tmp_path / "a").exists()


def test_ablation_end_to_end_writes_its_files_and_resumes(tmp_path):
    cfg = ExperimentConfig().with_overrides({"data.dataset": "iris", "training.epochs": "1", "evaluation.times": "0"})
    out = tmp_path / "abl"
    table = run_ablation(cfg, out, rules=("stdp",), seeds=(0,), workers=2, progress=False)
    assert len(table) == 13 and table.acc_mean.between(0, 1).all()
    assert (table[table.source == "off in device"].delta == 0).all()
    saved = pd.read_csv(out / "ablation.csv")
    assert list(saved.name) == ISSUE_ORDER
    assert (out / "waterfall.png").stat().st_size > 0 and "### stdp" in (out / "ablation.md").read_text()
    metrics = sorted((out / "stdp" / "runs").glob("*/metrics.json"))
    assert len(metrics) == 9  # 13 steps, 4 of them off in srtio3
    stamps = [p.stat().st_mtime_ns for p in metrics]
    run_ablation(cfg, out, rules=("stdp",), seeds=(0,), workers=1, progress=False)  # resumes: nothing runs again
    assert [p.stat().st_mtime_ns for p in metrics] == stamps
