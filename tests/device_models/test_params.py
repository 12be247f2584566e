import pytest

from memsnn.device_models import make_device
from memsnn.device_models.srtio3 import SrTiO3Params
from memsnn.params import ParameterError


def test_window_order_is_checked_and_named():
    with pytest.raises(ParameterError) as err:
        make_device("srtio3", g_min=2e-7, g_max=1e-7, g_init=None)
    msg = str(err.value)
    assert "g_min=2e-07" in msg and "g_max=1e-07" in msg and "srtio3" in msg


def test_probability_outside_unit_interval():
    with pytest.raises(ParameterError, match=r"p_stuck_min=1\.5 is not allowed: must be a probability in \[0, 1\]"):
        make_device("ideal", p_stuck_min=1.5)


def test_negative_time_constant():
    with pytest.raises(ParameterError, match=r"tau_volatile=-1\.0 is not allowed: must be a number > 0 s"):
        make_device("srtio3", tau_volatile=-1.0)


def test_all_errors_reported_at_once():
    with pytest.raises(ParameterError) as err:
        make_device("rram", read_noise_std=-0.1, drift_t0=0.0, n_levels=1)
    assert len(err.value.errors) == 3
    assert any("n_levels=1" in e and "integer >= 2" in e for e in err.value.errors)


def test_unknown_parameter_suggests_closest():
    with pytest.raises(ParameterError, match="did you mean 'read_noise_std'"):
        make_device("srtio3", read_noise=0.1)


def test_unknown_preset_lists_valid():
    with pytest.raises(ValueError, match="'srtio3'"):
        make_device("srtio4")


def test_wrong_type_named():
    with pytest.raises(ParameterError, match="g_max='big' has type str"):
        make_device("ideal", g_max="big")


def test_power_law_exponent_must_potentiate():
    with pytest.raises(ParameterError, match="c0 \\+ c1 \\* v_set"):
        make_device("srtio3", c0=0.5, c1=0.0)


def test_replace_and_round_trip_dict():
    p = SrTiO3Params().replace(drift_nu=0.1)
    assert p.drift_nu == 0.1
    assert SrTiO3Params.from_dict(p.to_dict()) == p


def test_every_field_is_documented_with_unit():
    for name in ("srtio3", "ideal", "pcm", "rram"):
        cls = make_device(name).params_class
        for row in cls.describe():
            assert row["doc"], f"{name}.{row['name']} lacks a description"
