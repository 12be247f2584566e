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


class _Recorder:
    """A method that records what its train_batch / predict calls see (features and spike rates)."""

    def __new__(cls, n_features):
        from memsnn.learning.loop import Method, StepStats

        class Rec(Method):
            name = "recorder"
            seconds_per_sample = 0.0

            def __init__(self):
                self.train_x, self.train_rate, self.pred_x, self.pred_rate = [], [], [], []

            def _spikes(self, x):
                return self.perturb_spikes(torch.ones(10, len(x), n_features))

            def train_batch(self, x, y, generator):
                self.train_x.append(x.clone())
                self.train_rate.append(float(self._spikes(x).mean()))
                return StepStats(seen=len(y))

            def predict(self, x, generator):
                self.pred_x.append(x.clone())
                self.pred_rate.append(float(self._spikes(x).mean()))
                return torch.zeros(len(x), dtype=torch.long)

        return Rec()


def test_fit_trains_under_input_noise_and_keeps_the_test_accuracy_clean(digits):
    from memsnn.crossbar.perturb import InputNoise

    m = _Recorder(digits.n_features)
    fit(m, digits, epochs=2, progress=False, input_noise=InputNoise(feature=0.1, drop=0.5))
    train = torch.cat(m.train_x)
    # every training sample once per epoch, each with fresh noise: std 0.1 of the range [0, 1]
    # (clipping at the bounds shrinks it; digits has many features at 0, so use mid-range pixels)
    clean = digits.x_train
    assert train.shape == (2 * len(clean), clean.shape[1])
    assert m.train_rate and abs(sum(m.train_rate) / len(m.train_rate) - 0.5) < 0.02
    assert bool(((train >= 0) & (train <= 1)).all())
    # the noise differs between the two epochs' copies of the same sample
    assert not torch.equal(train[: len(clean)].sort(0).values, train[len(clean):].sort(0).values)
    # evaluation after each epoch: clean features, no spike noise, perturbation removed after fit
    assert all(r == 1.0 for r in m.pred_rate)
    assert all(torch.equal(px, digits.x_test[: len(px)]) for px in m.pred_x[:1])
    assert m.spike_perturbation is None


def test_feature_noise_in_training_has_the_asked_std(digits):
    from memsnn.crossbar.perturb import InputNoise

    m = _Recorder(digits.n_features)
    fit(m, digits, epochs=1, batch_size=len(digits.x_train), progress=False, input_noise=InputNoise(feature=0.05))
    x, noisy = digits.x_train, m.train_x[0]
    mid = (x > 0.3) & (x < 0.7)  # at least 6 sigma from both bounds: no clipping
    # the loop's order is a permutation: compare sorted rows by matching each noisy row to its source
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    d = (noisy - x[perm])[mid[perm]]
    assert d.numel() > 1000
    assert abs(float(d.std()) - 0.05) < 0.05 * 0.08 and abs(float(d.mean())) < 0.005


def test_evaluate_reports_acc_noisy_only_with_noise(digits):
    from memsnn.crossbar.perturb import InputNoise

    m = _Recorder(digits.n_features)
    out = evaluate(m, digits, times=(0.0,), jitter=(), input_noise=InputNoise(drop=1.0))
    assert "acc_noisy" in out and m.pred_rate[-1] == 0.0  # every spike deleted
    assert "acc_noisy" not in evaluate(m, digits, times=(0.0,), jitter=())
    assert "acc_noisy" not in evaluate(m, digits, times=(0.0,), jitter=(), input_noise=InputNoise())
    with pytest.raises(ValueError, match="needs bounds"):
        accuracy(m, digits.x_test, digits.y_test, input_noise=InputNoise(feature=0.1))
    with pytest.raises(TypeError, match="input_noise must be an InputNoise"):
        fit(m, digits, epochs=1, progress=False, input_noise=0.2)


def test_input_noise_config_keys_reach_the_runner(tmp_path):
    import json

    from memsnn.experiments.config import ExperimentConfig
    from memsnn.experiments.runner import run_experiment

    cfg = ExperimentConfig().with_overrides({
        "data.dataset": "iris", "training.epochs": "1", "evaluation.times": "0", "evaluation.input_noise": "0.2",
        "evaluation.spike_drop": "0.1", "training.spike_insert": "0.01"})
    assert cfg.evaluation.noise().feature == 0.2 and cfg.training.noise().insert == 0.01
    assert ExperimentConfig().training.noise() is None
    metrics = run_experiment(cfg, tmp_path / "run")
    assert 0.0 <= metrics["acc_noisy"] <= 1.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["acc_noisy"] == metrics["acc_noisy"]
    with pytest.raises(ValueError, match=r"evaluation.spike_drop=2.0 is not allowed: must be a probability"):
        ExperimentConfig().with_overrides({"evaluation.spike_drop": "2"})
