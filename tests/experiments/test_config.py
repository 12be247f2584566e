"""Experiment configs: TOML round trips, validation messages, overrides and device knobs."""

import dataclasses
import math
import tomllib

import pytest
import torch

from memsnn.device_models.presets import PRESETS
from memsnn.experiments.config import (
    DEVICE_KNOBS,
    SECTIONS,
    ConfigError,
    DataSection,
    ExperimentConfig,
    example_toml,
    load_config,
    save_config,
    write_example,
)
from memsnn.files import FileExistsRefusal

torch.set_num_threads(1)


def _errors(d=None, **kw):
    """The messages of the ConfigError that from_dict(d) raises."""
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict(d if d is not None else kw)
    return info.value.errors


def _roundtrip(cfg, tmp_path, name="cfg.toml"):
    path = save_config(cfg, tmp_path / name)
    back = load_config(path)
    assert back == cfg
    assert ExperimentConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg
    return back


# ---------------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------------
def test_defaults_round_trip_exactly(tmp_path):
    cfg = ExperimentConfig()
    back = _roundtrip(cfg, tmp_path)
    assert back.to_toml() == cfg.to_toml()
    assert (cfg.data.dataset, cfg.device.preset, cfg.rule.name, cfg.rule.insitu) == ("digits", "srtio3", "stdp", True)


MANY = {
    "name": "many",
    "seed": 7,
    "data": {"dataset": "iris", "test_fraction": 0.3, "scaling": "standard", "limit": 90},
    "encoder": {"kind": "latency", "num_steps": 12, "tau": 0.1 + 0.2, "linear": False},
    "network": {"hidden": [48, 24], "beta": 0.8},
    "device": {"preset": "srtio3", "d2d_scale": 0.5, "stuck_fraction": 0.02, "nonlinearity": 0.1,
               "asymmetry": 0.7, "read_noise_std": 0.023, "n_levels": 32, "g_init": "none",
               "tau_volatile": 1.2345678901234567, "energy_set": 1e-300, "drift_nu": 0},
    "periphery": {"dac_bits": 7, "adc_bits": 8, "adc_bound": 10, "output_noise": 0.06},
    "crossbar": {"tile_rows": 32, "tile_cols": 16, "ir_drop": "approx", "r_wire": 2.5},
    "rule": {"name": "sg", "insitu": True, "params": {"lr": 0.03, "grad_clip": 1.5, "digital_lr": 1e-3}},
    "scheduler": {"quantisation": "round", "k_max": 4, "refresh_every": 10, "amplitude": 1.1},
    "training": {"epochs": 2, "batch_size": 16},
    "evaluation": {"times": [0, 60, 3600.5], "jitter": [0.5, 1, 3]},
}


def test_many_overrides_round_trip_exactly_including_none_and_floats(tmp_path):
    cfg = ExperimentConfig.from_dict(MANY)
    back = _roundtrip(cfg, tmp_path)
    # None where the preset's default is not None survives as "none"
    assert back.device.params["g_init"] is None and back.device_model().params.g_init is None
    assert back.encoder["tau"] == 0.1 + 0.2 and back.device.params["tau_volatile"] == 1.2345678901234567
    assert back.device.params["energy_set"] == 1e-300
    # numbers take their field's type: ints in float fields become floats, lists become tuples
    assert isinstance(back.device.params["drift_nu"], float) and isinstance(back.periphery["adc_bound"], float)
    assert back.network.hidden == (48, 24) and back.evaluation.times == (0.0, 60.0, 3600.5)
    assert back.evaluation.jitter == (0.5, 1.0, 3.0)
    # a None whose default is None is simply absent
    cfg2 = cfg.with_overrides({"periphery.dac_bits": "none", "data.limit": "none", "name": "none"})
    assert "dac_bits" not in cfg2.periphery and cfg2.data.limit is None and cfg2.name is None
    _roundtrip(cfg2, tmp_path, "cfg2.toml")


@pytest.mark.parametrize("overrides, key, value", [
    ({"rule.name": "ssdp", "rule.params.layers": "[-1, 0]", "rule.params.gate": "dopamine", "network.hidden": "32"},
     "rule.params.layers", [-1, 0]),
    ({"rule.name": "csdp", "rule.insitu": "false", "rule.params.optimizer": "adam",
      "rule.params.adam_betas": "0.8,0.99", "rule.params.eta": "none"}, "rule.params.adam_betas", [0.8, 0.99]),
    ({"device.preset": "pcm", "device.prog_coeff": "[0.2, 1.5, -1.0]", "device.drift_scale": "2"},
     "device.prog_coeff", [0.2, 1.5, -1.0]),
    ({"device.preset": "rram", "device.asymmetry": "1", "device.alpha_set": "0.01"}, "device.alpha_set", 0.01),
    ({"data.dataset": "breast_cancer", "rule.params.fields": "8", "rule.params.signed": "true",
      "rule.params.w_init_low": "-0.2"}, "rule.params.w_init_low", -0.2),
])
def test_rule_and_preset_specific_fields_round_trip(tmp_path, overrides, key, value):
    cfg = ExperimentConfig().with_overrides(overrides)
    back = _roundtrip(cfg, tmp_path)
    node = back.to_dict()
    for part in key.split("."):
        node = node[part]
    assert list(node) == value if isinstance(value, list) else node == value  # the override survived, typed


def test_save_refuses_to_overwrite(tmp_path):
    path = save_config(ExperimentConfig(), tmp_path / "a.toml")
    with pytest.raises(FileExistsRefusal):
        save_config(ExperimentConfig(seed=1), path)
    assert load_config(path).seed == 0
    save_config(ExperimentConfig(seed=1), path, overwrite=True)
    assert load_config(path).seed == 1


def test_example_loads_to_the_defaults_and_documents_every_section(tmp_path):
    assert ExperimentConfig.from_dict(tomllib.loads(example_toml())) == ExperimentConfig()
    path = write_example(tmp_path / "example.toml")
    assert load_config(path) == ExperimentConfig()
    with pytest.raises(FileExistsRefusal):
        write_example(path)
    text = example_toml()
    for sec in SECTIONS:
        assert f"[{sec}]" in text, sec
    for key in [*DEVICE_KNOBS, "read_noise_std", "step_std", "n_levels", "drift_nu", "tau_volatile",
                "dac_bits", "adc_bits", "tile_rows", "ir_drop", "r_wire", "quantisation"]:
        assert f"# {key} =" in text, key


# ---------------------------------------------------------------------------------------------------
# validation messages
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d, expected", [
    ({"seed": -1}, "seed=-1 is not allowed"),
    ({"seed": 1.5}, "seed=1.5 is not allowed"),
    ({"name": 3}, "name=3 has type int"),
    ({"data": {"dataset": "mnist9"}}, "data.dataset='mnist9' is not allowed: must be one of"),
    ({"data": {"limit": 0}}, "data.limit=0 is not allowed: must be an integer >= 1"),
    ({"data": {"test_fraction": 1.5}}, "data.test_fraction=1.5 is not allowed: must be a number in (0, 1)"),
    ({"data": {"dataset": "csv"}}, "data: dataset 'csv' needs path="),
    ({"encoder": {"kind": "morse"}}, "encoder.kind='morse' is not allowed: must be one of 'rate', 'poisson', 'latency'"),
    ({"encoder": {"linear": 1}}, "encoder.linear=1 has type int: must be true or false"),
    ({"network": {"hidden": [64, 0]}}, "network.hidden=[64, 0] is not allowed"),
    ({"network": {"hidden": 64}}, "network.hidden=64 has type int: must be an array"),
    ({"network": {"beta": 1.5}}, "network.beta=1.5 is not allowed: must be a probability in [0, 1]"),
    ({"device": {"read_noise_std": -0.1}}, "device.read_noise_std=-0.1 is not allowed: must be a number >= 0 (preset 'srtio3')"),
    ({"device": {"preset": "rram", "step_noise": "loud"}}, "device.step_noise='loud' is not allowed: must be one of 'multiplicative', 'additive' (preset 'rram')"),
    ({"device": {"n_levels": 1}}, "device.n_levels=1 is not allowed: must be an integer >= 2"),
    ({"device": {"preset": "memristor"}}, "device.preset='memristor' is not allowed"),
    ({"device": {"d2d_scale": -1}}, "device.d2d_scale=-1.0 is not allowed: must be a number >= 0"),
    ({"device": {"stuck_fraction": 1.5}}, "device.stuck_fraction=1.5 is not allowed: must be a probability in [0, 1]"),
    ({"device": {"nonlinearity": 1.0}}, "device.nonlinearity=1.0 is not allowed: must be a number < 1"),
    ({"device": {"asymmetry": 0}}, "device.asymmetry=0.0 is not allowed: must be a number > 0"),
    ({"device": {"asymmetry": "big"}}, "device.asymmetry='big' is not allowed: must be a number > 0"),
    ({"periphery": {"adc_bits": 1}}, "periphery.adc_bits=1 is not allowed: must be an integer >= 2"),
    ({"crossbar": {"ir_drop": "full"}}, "crossbar.ir_drop='full' is not allowed: must be one of 'none', 'approx', 'exact'"),
    ({"rule": {"name": "hebb"}}, "rule.name='hebb' is not allowed: must be one of 'stdp', 'sg', 'ssdp', 'csdp'"),
    ({"rule": {"insitu": "yes"}}, "rule.insitu='yes' is not allowed: must be true"),
    ({"rule": {"params": {"a_plus": 0}}}, "rule.params.a_plus=0.0 is not allowed: must be a number > 0"),
    ({"rule": {"name": "sg", "params": {"digital_lr": -1}}}, "rule.params.digital_lr=-1.0 is not allowed: must be a number > 0"),
    ({"rule": {"name": "csdp", "params": {"optimizer": "adam"}}}, "rule.params.optimizer='adam' needs the float baseline"),
    ({"scheduler": {"k_max": 0}}, "scheduler.k_max=0 is not allowed: must be an integer >= 1"),
    ({"training": {"epochs": 0}}, "training.epochs=0 is not allowed: must be an integer >= 1"),
    ({"training": {"batch_size": "32"}}, "training.batch_size='32' has type str"),
    ({"evaluation": {"times": [3600, 0]}}, "evaluation.times=[3600.0, 0.0] is not allowed: must be strictly increasing"),
    ({"evaluation": {"jitter": [-1]}}, "evaluation.jitter=[-1.0] is not allowed: must be distinct numbers >= 0"),
    ({"data": 3}, "data must be a table ([data]), got int 3"),
])
def test_each_invalid_field_gets_its_own_message_with_its_dotted_key(d, expected):
    errors = _errors(d)
    assert len(errors) == 1, errors
    assert expected in errors[0], errors[0]


def test_several_bad_fields_are_reported_at_once():
    d = {"seed": -1, "data": {"limit": 0, "scaling": "log"}, "device": {"read_noise_std": -1, "step_std": -2},
         "rule": {"params": {"a_plus": -1}}, "training": {"epochs": 0}, "evaluation": {"jitter": [-2]},
         "encoder": {"num_steps": 0}}
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict(d, source="bad.toml")
    errors = info.value.errors
    keys = ["seed=", "data.limit=", "data.scaling=", "device.read_noise_std=", "device.step_std=",
            "rule.params.a_plus=", "training.epochs=", "evaluation.jitter=", "encoder.num_steps="]
    assert len(errors) == len(keys), errors
    for key in keys:
        assert sum(e.startswith(key) for e in errors) == 1, (key, errors)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("invalid experiment config bad.toml:")


@pytest.mark.parametrize("d, bad, suggestion", [
    ({"trainig": {"epochs": 1}}, "'trainig'", "'training'"),
    ({"data": {"datset": "iris"}}, "'data.datset'", "'dataset'"),
    ({"device": {"read_nosie_std": 0.1}}, "'device.read_nosie_std' of preset 'srtio3'", "'read_noise_std'"),
    ({"rule": {"params": {"a_plsu": 0.1}}}, "'rule.params.a_plsu'", "'a_plus'"),
    ({"rule": {"nmae": "sg"}}, "'rule.nmae'", "'name'"),
    ({"scheduler": {"kmax": 2}}, "'scheduler.kmax'", "'k_max'"),
])
def test_unknown_key_gets_the_closest_valid_name(d, bad, suggestion):
    (error,) = _errors(d)
    assert bad in error and f"did you mean {suggestion}?" in error, error


def test_field_of_another_preset_names_the_presets():
    (error,) = _errors({"device": {"preset": "srtio3", "alpha_set": 0.01}})
    assert "device.alpha_set is a parameter of preset 'pcm', 'rram', not of preset 'srtio3'" in error
    (error,) = _errors({"device": {"preset": "ideal", "r1": 1e8}})
    assert "device.r1 is a parameter of preset 'srtio3', not of preset 'ideal'" in error
    # a cross-field rule of the preset's own parameters
    (error,) = _errors({"device": {"preset": "rram", "p_stuck_min": 0.6, "p_stuck_max": 0.6}})
    assert error.startswith("device (preset 'rram'): p_stuck_min + p_stuck_max = 1.2 must be <= 1")


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("seed = 1\n[data]\ndataset = 'iris'\nlimit = = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "line 4" in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        load_config(tmp_path / "missing.toml")


def test_load_config_names_the_file_in_validation_errors(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text("seed = 0\n[device]\nread_noise_std = -1\n")
    with pytest.raises(ConfigError, match=r"exp\.toml:\n  - device\.read_noise_std=-1\.0"):
        load_config(path)


def test_direct_construction_validates_too():
    with pytest.raises(ConfigError, match="seed=-1"):
        ExperimentConfig(seed=-1)
    with pytest.raises(ConfigError, match="data.limit=0"):
        DataSection(limit=0)
    with pytest.raises(ConfigError, match="encoder.num_steps=0"):
        ExperimentConfig(encoder={"num_steps": 0})
    with pytest.raises(ConfigError, match="data must be a DataSection"):
        ExperimentConfig(data={"dataset": "iris"})
    cfg = dataclasses.replace(ExperimentConfig(), seed=5)
    assert cfg.seed == 5


# ---------------------------------------------------------------------------------------------------
# overrides
# ---------------------------------------------------------------------------------------------------
def test_with_overrides_parses_strings_to_each_fields_type():
    base = ExperimentConfig()
    cfg = base.with_overrides({
        "seed": "3", "name": "sweep-point", "device.read_noise_std": "0.02", "device.n_levels": "16",
        "rule.params.a_plus": "0.1", "rule.params.complement": "false", "rule.insitu": "no",
        "network.hidden": "[64, 32]", "evaluation.times": "0, 60, 3600", "evaluation.jitter": "1.5",
        "data.limit": "200", "periphery.dac_bits": "6", "device.g_init": "None", "scheduler.width": "2e-6",
    })
    assert cfg.seed == 3 and cfg.name == "sweep-point"
    assert cfg.device.params == {"read_noise_std": 0.02, "n_levels": 16, "g_init": None}
    assert cfg.rule.params == {"a_plus": 0.1, "complement": False} and cfg.rule.insitu is False
    assert cfg.network.hidden == (64, 32) and cfg.evaluation.times == (0.0, 60.0, 3600.0)
    assert cfg.evaluation.jitter == (1.5,) and cfg.data.limit == 200 and cfg.periphery == {"dac_bits": 6}
    assert cfg.scheduler == {"width": 2e-6}
    assert cfg.device_model().params.read_noise_std == 0.02 and cfg.device_model().params.n_levels == 16
    # values that are not strings are taken as they are; the original is unchanged
    assert base.with_overrides({"device.read_noise_std": 0.05}).device.params == {"read_noise_std": 0.05}
    assert base == ExperimentConfig()


def test_with_overrides_applies_preset_and_rule_first():
    cfg = ExperimentConfig().with_overrides({"device.alpha_set": "0.01", "device.preset": "rram",
                                             "rule.params.lr": "0.2", "rule.name": "sg"})
    assert cfg.device.preset == "rram" and cfg.device.params == {"alpha_set": 0.01}
    assert cfg.rule.name == "sg" and cfg.rule.params == {"lr": 0.2}


def test_with_overrides_rejects_bad_values_and_keys_all_at_once():
    with pytest.raises(ConfigError) as info:
        ExperimentConfig().with_overrides({
            "device.read_noise_std": "abc", "rule.insitu": "maybe", "training.epochs": "2.5",
            "device.step_std": "-1", "devcie.step_std": "0", "rule.params.lr": "0.1", "data": "iris",
        })
    errors = info.value.errors
    expected = ["device.read_noise_std='abc' is not a number", "rule.insitu='maybe' is not a boolean",
                "training.epochs='2.5' is not an integer", "device.step_std=-1.0 is not allowed",
                "did you mean 'device'?", "unknown parameter 'rule.params.lr'", "'data' is a section"]
    assert len(errors) == len(expected), errors
    for text in expected:
        assert any(text in e for e in errors), (text, errors)


def test_changing_the_rule_or_preset_keeps_nothing_that_does_not_fit():
    cfg = ExperimentConfig().with_overrides({"rule.params.a_plus": 0.1, "device.c0": -0.2})
    with pytest.raises(ConfigError, match=r"rule\.params\.a_plus'.*\[rule 'sg'\]"):
        cfg.with_overrides({"rule.name": "sg"})
    with pytest.raises(ConfigError, match="device.c0 is a parameter of preset 'srtio3', not of preset 'rram'"):
        cfg.with_overrides({"device.preset": "rram"})


# ---------------------------------------------------------------------------------------------------
# device knobs
# ---------------------------------------------------------------------------------------------------
def _defaults(preset):
    return PRESETS[preset].params_class()


@pytest.mark.parametrize("preset", list(PRESETS))
def test_d2d_scale_multiplies_every_dtod_field(preset):
    base = _defaults(preset)
    cfg = ExperimentConfig().with_overrides({"device.preset": preset, "device.d2d_scale": "2.5",
                                             "device.step_dtod": "0.04"})
    p = cfg.device_model().params
    dtod = [n for n in base.field_names() if n.endswith("_dtod")]
    assert len(dtod) >= 6
    for name in dtod:
        expected = (0.04 if name == "step_dtod" else getattr(base, name)) * 2.5  # after explicit overrides
        assert getattr(p, name) == pytest.approx(expected, rel=1e-12), name
    for name in base.field_names():  # nothing else changes
        if not name.endswith("_dtod"):
            assert getattr(p, name) == getattr(base, name), name
    zero = ExperimentConfig().with_overrides({"device.preset": preset, "device.d2d_scale": 0}).device_model().params
    assert all(getattr(zero, n) == 0 for n in dtod)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_stuck_fraction_is_split_evenly(preset):
    p = ExperimentConfig().with_overrides({"device.preset": preset, "device.stuck_fraction": 0.06}).device_model().params
    assert p.p_stuck_min == pytest.approx(0.03) and p.p_stuck_max == pytest.approx(0.03)
    state = ExperimentConfig().with_overrides({"device.preset": preset, "device.stuck_fraction": 0.5}) \
        .device_model().init_state((200, 100), generator=0)
    assert (state.stuck != 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert (state.stuck > 0).float().mean().item() == pytest.approx(0.25, abs=0.02)


def test_nonlinearity_sets_the_srtio3_exponent():
    base = _defaults("srtio3")
    assert 1 + base.c_of(base.v_set) == pytest.approx(0.377)  # the preset's own nonlinearity
    for nl in (0.0, 0.2, 0.6, -0.3):
        p = ExperimentConfig().with_overrides({"device.nonlinearity": nl}).device_model().params
        assert p.c_of(p.v_set) == pytest.approx(nl - 1, abs=1e-12)
        assert p.c1 == base.c1  # the amplitude dependence is kept
    # an explicit c1 / v_set is taken into account
    p = ExperimentConfig().with_overrides({"device.nonlinearity": 0.3, "device.c1": -0.2,
                                           "device.v_set": 0.8, "device.v_reset": 0.8}).device_model().params
    assert p.c_of(0.8) == pytest.approx(-0.7, abs=1e-12)


def _noise_free(**extra):
    over = {"device.d2d_scale": 0, "device.step_std": 0, "device.read_noise_std": 0, "device.volatile_ratio": 0,
            "device.drift_nu": 0, **extra}
    return ExperimentConfig().with_overrides(over).device_model()


def _steps(model, pulses):
    """Conductance changes (S) of one noise-free device under ``pulses`` (+1 SET / -1 RESET)."""
    state = model.init_state((1,), generator=0)
    out = []
    for k in pulses:
        g0 = model.read(state, generator=0).item()
        state = model.apply_pulses(state, torch.tensor([k], dtype=torch.int32), generator=0)
        out.append(model.read(state, generator=0).item() - g0)
    return out


@pytest.mark.parametrize("nl", [0.0, 0.2, None, 0.6, -0.3])
def test_nonlinearity_is_the_decay_exponent_of_srtio3_steps(nl):
    """G ~ n**(1 - nl) over the pulse count n, so the step falls as n**-nl: equal steps at 0."""
    over = {"device.g_init": "none"}  # start at g_min, n = 1
    if nl is not None:
        over["device.nonlinearity"] = nl
    steps = _steps(_noise_free(**over), [1] * 10)
    slope = math.log(steps[9] / steps[4]) / math.log(10 / 5)  # steps from n = 5 and n = 10
    expected = -0.377 if nl is None else -nl  # None: the preset's own c(1 V) = -0.623
    assert slope == pytest.approx(expected, abs=0.05)
    if nl == 0.0:
        assert max(steps) / min(steps) < 1.001


@pytest.mark.parametrize("preset, g_mid", [("rram", 90e-6), ("srtio3", (1 / (200 + 2.3e8) + 1e-7) / 2)])
@pytest.mark.parametrize("asym", [0.5, 2.0])
def test_asymmetry_is_the_reset_to_set_step_ratio_at_mid_window(preset, g_mid, asym):
    over = {"device.preset": preset, "device.asymmetry": asym, "device.g_init": g_mid}
    if preset == "rram":
        over["device.write_noise_std"] = 0
    model = _noise_free(**over)
    (up,) = _steps(model, [1])
    (down,) = _steps(model, [-1])
    assert -down / up == pytest.approx(asym, rel=0.01)
    p = model.params
    if preset == "rram":
        assert p.alpha_reset == pytest.approx(asym * p.alpha_set) and p.alpha_set == _defaults("rram").alpha_set
    else:
        assert p.reset_efficiency == asym


@pytest.mark.parametrize("knob, value, preset, have", [
    ("nonlinearity", 0.2, "rram", "srtio3"), ("nonlinearity", 0.2, "pcm", "srtio3"),
    ("nonlinearity", 0.2, "ideal", "srtio3"), ("asymmetry", 2.0, "pcm", "srtio3, rram"),
    ("asymmetry", 2.0, "ideal", "srtio3, rram"),
])
def test_a_preset_without_a_knob_names_the_presets_that_have_it(knob, value, preset, have):
    (error,) = _errors({"device": {"preset": preset, knob: value}})
    assert f"device.{knob}={value!r}: preset {preset!r} has no {knob} knob" in error
    assert error.endswith(f"presets with it: {have}")


def test_a_knob_and_the_field_it_sets_conflict():
    errors = _errors({"device": {"stuck_fraction": 0.1, "p_stuck_min": 0.0, "asymmetry": 1.0,
                                 "reset_efficiency": 0.4, "nonlinearity": 0.1, "c0": -0.5}})
    assert len(errors) == 3, errors
    assert any("device.stuck_fraction=0.1 sets p_stuck_min" in e for e in errors)
    assert any("device.asymmetry=1.0 sets reset_efficiency" in e for e in errors)
    assert any("device.nonlinearity=0.1 sets c0" in e for e in errors)
    (error,) = _errors({"device": {"preset": "rram", "asymmetry": 1000}})
    assert "alpha_reset = asymmetry * alpha_set = 1.6 must be < 1" in error


def test_knob_names_are_no_preset_field():
    for cls in PRESETS.values():
        assert not set(DEVICE_KNOBS) & set(cls.params_class.field_names())


def test_component_accessors_return_none_when_a_section_is_empty():
    cfg = ExperimentConfig()
    assert cfg.encoder_params() is None and cfg.scheduler_params() is None
    assert cfg.periphery_params() is None and cfg.crossbar_params() is None
    cfg = cfg.with_overrides({"encoder.num_steps": 9, "scheduler.k_max": 3, "periphery.adc_bits": 6,
                              "crossbar.tile_rows": 8})
    assert cfg.encoder_params().num_steps == 9 and cfg.scheduler_params().k_max == 3
    assert cfg.periphery_params().adc_bits == 6 and cfg.crossbar_params().tile_rows == 8


def test_configs_and_their_errors_survive_pickling():
    """Sweeps send configs to worker processes and get errors back."""
    import pickle

    cfg = ExperimentConfig.from_dict(MANY)
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict({"seed": -1, "data": {"limit": 0}}, source="x.toml")
    back = pickle.loads(pickle.dumps(info.value))
    assert back.errors == info.value.errors and str(back) == str(info.value) and back.source == "x.toml"


@pytest.mark.parametrize("text", ["64,32", "64 32", "64;32", "[64, 32]", " 64 , 32 "])
def test_list_values_parse_with_commas_spaces_or_semicolons(text):
    assert ExperimentConfig().with_overrides({"network.hidden": text}).network.hidden == (64, 32)
