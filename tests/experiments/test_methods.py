import math

import pytest
import torch

from memsnn.crossbar.coding import Encoder
from memsnn.experiments.datasets import load_dataset
from memsnn.experiments.methods import RULES, build_method, evaluate, rule_params_errors
from memsnn.learning.csdp import CSDP
from memsnn.learning.loop import accuracy, fit
from memsnn.learning.sg import DigitalSG, InSituSG
from memsnn.learning.ssdp import DigitalSSDP, InSituSSDP
from memsnn.learning.stdp import SupervisedSTDP


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, limit=120)


def test_build_method_gives_the_rule_and_form_asked_for(digits):
    kinds = {("stdp", True): SupervisedSTDP, ("stdp", False): SupervisedSTDP, ("sg", True): InSituSG,
             ("sg", False): DigitalSG, ("ssdp", True): InSituSSDP, ("ssdp", False): DigitalSSDP,
             ("csdp", True): CSDP, ("csdp", False): CSDP}
    assert set(r for r, _ in kinds) == set(RULES)
    for (rule, insitu), cls in kinds.items():
        m = build_method(rule, insitu, digits, device="ideal", hidden=(8,), encoder=Encoder(num_steps=4))
        assert type(m) is cls, (rule, insitu)
        assert bool(m.crossbars()) == insitu, (rule, insitu)
    m = build_method("ssdp", False, digits, hidden=(8,))
    assert (m.ssdp.params.A_plus, m.ssdp.params.A_base) == (1.5e-3, 5e-4)  # the DA-SSDP paper's amplitudes
    m = build_method("ssdp", False, digits, hidden=(8,), rule_params={"A_plus": 2e-4})
    assert m.ssdp.params.A_plus == 2e-4
    m = build_method("csdp", False, digits, hidden=(8,), rule_params={"optimizer": "adam", "theta": 7.0})
    assert m.optimizer == "adam" and m.params.theta == 7.0

    # in-situ sg / ssdp anneal over the run's epochs unless anneal_epochs is set
    for rule in ("sg", "ssdp"):
        m = build_method(rule, True, digits, device="ideal", hidden=(8,), encoder=Encoder(num_steps=4), epochs=3)
        assert m.params.anneal_epochs == 3 and m.params.lr_final == 0.1
    m = build_method("sg", True, digits, device="ideal", hidden=(8,), encoder=Encoder(num_steps=4), epochs=3,
                     rule_params={"anneal_epochs": 7, "lr_final": None})
    assert (m.params.anneal_epochs, m.params.lr_final) == (7, None)


def test_rule_params_errors_name_every_problem():
    errs = rule_params_errors("sg", {"lrr": 0.1, "scale_factor": -1.0, "digital_lr": 0})
    assert len(errs) == 3
    assert "did you mean 'lr'" in errs[0]
    assert any("scale_factor=-1.0" in e for e in errs) and any("digital_lr=0" in e for e in errs)
    assert rule_params_errors("csdp", {"optimizer": "adam"}, insitu=True)[0].startswith("optimizer='adam' needs")
    assert rule_params_errors("csdp", {"optimizer": "adam"}, insitu=False) == []
    assert "use one of" in rule_params_errors("hebb", {})[0]
    with pytest.raises(ValueError, match="sigma"):
        build_method("ssdp", True, None, rule_params={"sigma": -2.0})


def test_accuracy_perturbation_reaches_the_network_only_during_that_call(digits):
    m = build_method("sg", False, digits, hidden=(16,), encoder=Encoder(num_steps=6))
    fit(m, digits, epochs=2, progress=False)
    x, y = digits.x_test, digits.y_test
    clean = accuracy(m, x, y, seed=3)
    assert accuracy(m, x, y, seed=3, perturb=lambda s, g: s) == clean
    seen = []
    silent = accuracy(m, x, y, seed=3, perturb=lambda s, g: seen.append(s.shape) or torch.zeros_like(s))
    assert seen and all(len(sh) == 3 for sh in seen)
    # no input spikes: every sample gets the same output, so the accuracy is one class's share
    shares = torch.bincount(y, minlength=10).float() / len(y)
    assert any(math.isclose(silent, float(s), abs_tol=1e-6) for s in shares)
    assert m.spike_perturbation is None and accuracy(m, x, y, seed=3) == clean


def test_evaluate_reports_drift_jitter_and_pulses_per_synapse(digits):
    m = build_method("stdp", True, digits, device="srtio3", rule_params={"num_steps": 16})
    before = m.counters()["pulses"]
    fit(m, digits, epochs=1, progress=False)
    after = m.counters()["pulses"]
    res = evaluate(m, digits, times=(0, 3600, 86400), jitter=(1, 4), seed=0, pulses_before=before, epochs=1)
    assert set(res) == {"test_acc", "acc_jitter_1", "acc_jitter_4", "pulses", "energy_J",
                        "pulses_per_synapse_per_epoch", "acc_at_0s", "acc_at_3600s", "acc_at_86400s"}
    assert res["acc_at_0s"] == res["test_acc"]
    n_syn = sum(x.shape[0] * x.shape[1] for x in m.crossbars())
    assert res["pulses"] == after
    assert res["pulses_per_synapse_per_epoch"] == pytest.approx((after - before) / n_syn)
    assert m.crossbars()[0].time >= 86400  # the clock moved to the last evaluation time
    f = build_method("stdp", False, digits, rule_params={"num_steps": 16})
    fit(f, digits, epochs=1, progress=False)
    res = evaluate(f, digits, times=(0, 86400), jitter=(), seed=0, epochs=1)
    assert res["acc_at_86400s"] == res["test_acc"] and math.isnan(res["pulses_per_synapse_per_epoch"])
    with pytest.raises(ValueError, match="increasing"):
        evaluate(f, digits, times=(100, 0))
    with pytest.raises(ValueError, match="jitter"):
        evaluate(f, digits, jitter=(-1,))
