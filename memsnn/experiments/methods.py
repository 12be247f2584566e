"""One place that turns (rule, in-situ or float, dataset, device, settings) into a trained-ready
:class:`~memsnn.learning.loop.Method`, and one evaluation of a trained method.

``memsnn compare`` and ``memsnn run`` / ``memsnn sweep`` (config files) both build their methods
here, so a rule means the same thing everywhere.

Rules (``RULES``) and their parameters (``rule_params``: one flat mapping, validated per rule by
:func:`rule_params_errors`):

- ``stdp``: supervised in-situ STDP (:class:`~memsnn.learning.stdp.SupervisedSTDP`). Fields of
  :class:`~memsnn.learning.stdp.STDPParams`, on top of ``STDPParams.for_dataset`` (input coding
  chosen for images or tabular data). Its own time-to-first-spike code; ``encoder`` is unused.
- ``sg``: surrogate-gradient training, in-situ (:class:`~memsnn.learning.sg.InSituSG`) or digital
  (:class:`~memsnn.learning.sg.DigitalSG`, Adam). Fields of
  :class:`~memsnn.learning.sg.InSituSGParams` plus ``digital_lr`` (Adam learning rate of the
  float baseline, default 2e-3).
- ``ssdp``: the same surrogate-gradient training plus SSDP after each step
  (:class:`~memsnn.learning.ssdp.InSituSSDP` / :class:`~memsnn.learning.ssdp.DigitalSSDP`). The
  ``sg`` fields plus those of :class:`~memsnn.learning.ssdp.SSDPParams`; the amplitudes default to
  the DA-SSDP paper's ``A_plus = 1.5e-3``, ``A_base = 5e-4`` (SSDP's own defaults, 10x smaller,
  send almost no pulses on srtio3).
- ``csdp``: contrastive-signal-dependent plasticity with a delta-rule readout
  (:class:`~memsnn.learning.csdp.CSDP`). Fields of :class:`~memsnn.learning.csdp.CSDPParams` plus
  ``optimizer`` (``sgd`` or ``sign`` in-situ and float; ``adam`` float only). Its own rate code.

Temporal datasets (``Dataset.time_steps`` set, samples ``[T * C]`` time-major; see
:mod:`memsnn.experiments.temporal`): ``sg`` and ``ssdp`` feed the sequence itself, ``[T, B, C]``
with encoder kind ``"sequence"`` and ``num_steps = T`` (:func:`encoder_for`; chosen when no
encoder is given, and any other encoder is an error), into a network with ``C`` inputs. ``stdp``
and ``csdp`` keep their own static input codes and see the flattened ``[T * C]`` vector as static
features: they do not integrate in time (the sequence's order is just feature positions to them).

In-situ surrogate-gradient methods use :func:`memsnn.learning.sg.default_scheduler` unless
``scheduler`` says otherwise: ``step="calibrated"`` (measured per-device steps, on native
crossbars; see :mod:`memsnn.learning.sg`), on top of state-aware steps (srtio3's asymmetric law makes a SET step near
g_min 6x a RESET step, and on digits - 64 hidden, T = 10, 3 epochs on 600 samples, noise off -
state-aware steps reached 84 % against 78 % with nominal ones) and ``k_max=1`` (see that module).
"""

from __future__ import annotations

import math
from typing import Any, Mapping


from ..crossbar.array import CrossbarParams
from ..crossbar.coding import Encoder
from ..crossbar.network import SpikingNetwork
from ..crossbar.neurons import LIFParams
from ..crossbar.periphery import PeripheryParams
from ..crossbar.perturb import InputNoise, feature_bounds
from ..crossbar.perturb import jitter as jitter_spikes
from ..learning.csdp import CSDPParams
from ..learning.loop import Method, accuracy
from ..learning.scheduler import SchedulerParams
from ..learning.sg import InSituSGParams
from ..learning.ssdp import SSDPParams
from ..learning.stdp import STDPParams
from ..params import unknown_key_message

__all__ = ["RULES", "EXTRA_FIELDS", "build_method", "encoder_for", "encoder_problem", "evaluate", "rule_params_errors",
           "rule_param_fields", "SEQUENCE_RULES"]

#: rule name -> (parameter classes whose fields ``rule_params`` may set, one-line description)
RULES: dict[str, tuple[tuple[type, ...], str]] = {
    "stdp": ((STDPParams,), "supervised STDP on time-to-first-spike inputs (one layer, teacher timing)"),
    "sg": ((InSituSGParams,), "surrogate-gradient BPTT; in-situ: gradients as pulses (analog SGD)"),
    "ssdp": ((InSituSGParams, SSDPParams), "surrogate-gradient BPTT plus spike-synchrony-dependent plasticity"),
    "csdp": ((CSDPParams,), "contrastive-signal-dependent plasticity, forward-only, delta-rule readout"),
}

#: fields a rule accepts beyond its parameter classes: name -> (default, check text, predicate)
EXTRA_FIELDS: dict[str, dict[str, tuple[Any, str, Any]]] = {
    "sg": {"digital_lr": (2e-3, "a number > 0", lambda v: _is_number(v) and v > 0)},
    "ssdp": {"digital_lr": (2e-3, "a number > 0", lambda v: _is_number(v) and v > 0)},
    "csdp": {"optimizer": ("sgd", "one of 'sgd', 'sign', 'adam'", lambda v: v in ("sgd", "sign", "adam"))},
}

#: rules that feed a temporal dataset's sequence in time (the others see it as static features)
SEQUENCE_RULES = ("sg", "ssdp")

#: SSDP amplitudes used unless rule_params set them (the DA-SSDP paper's; see the module docstring)
SSDP_AMPLITUDES = {"A_plus": 1.5e-3, "A_base": 5e-4}


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def rule_param_fields(rule: str) -> list[str]:
    """Every key ``rule_params`` may hold for ``rule``."""
    _check_rule(rule)
    names = [n for cls in RULES[rule][0] for n in cls.field_names()]
    return names + list(EXTRA_FIELDS.get(rule, {}))


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not allowed: use one of {', '.join(map(repr, RULES))}")


def _split(rule: str, rule_params: Mapping[str, Any]) -> tuple[dict[type, dict], dict[str, Any]]:
    """``rule_params`` split into one dict per parameter class and one of extra fields."""
    per_class = {cls: {k: v for k, v in rule_params.items() if k in cls.field_names()} for cls in RULES[rule][0]}
    extra = {k: rule_params.get(k, d) for k, (d, _, _) in EXTRA_FIELDS.get(rule, {}).items()}
    return per_class, extra


def rule_params_errors(rule: str, rule_params: Mapping[str, Any], *, insitu: bool = True) -> list[str]:
    """Every problem with ``rule_params`` for ``rule``, one message each (empty when valid):
    unknown keys (with the closest valid name), bad values (field, value, what is allowed)."""
    if rule not in RULES:
        return [f"rule={rule!r} is not allowed: use one of {', '.join(map(repr, RULES))}"]
    valid = rule_param_fields(rule)
    errors = [unknown_key_message(k, valid) for k in rule_params if k not in valid]
    per_class, _ = _split(rule, rule_params)
    for cls, fields in per_class.items():
        try:
            cls(**fields)
        except ValueError as err:  # ParameterError lists every bad field
            errors.extend(getattr(err, "errors", [str(err)]))
    for k, (_, allowed, ok) in EXTRA_FIELDS.get(rule, {}).items():
        if k in rule_params and not ok(rule_params[k]):
            errors.append(f"{k}={rule_params[k]!r} is not allowed: must be {allowed}")
    if rule == "csdp" and insitu and rule_params.get("optimizer") == "adam":
        errors.append("optimizer='adam' needs the float baseline (insitu = false): a crossbar cannot hold Adam's "
                      "per-synapse moments; use 'sgd' or 'sign' in-situ")
    return errors


def encoder_for(data, encoder: Encoder | None = None) -> Encoder:
    """The input code of the surrogate-gradient rules on ``data`` (a
    :class:`~memsnn.experiments.datasets.Dataset`).

    Static data: ``encoder``, or the default rate code (25 steps); kind ``"sequence"`` is an
    error there. Temporal data (``data.time_steps`` = T): ``Encoder(kind="sequence",
    num_steps=T)``, which feeds the sequence ``[T, B, C]`` itself; an ``encoder`` of another kind,
    or a sequence encoder with another ``num_steps``, is an error naming both.
    """
    steps = getattr(data, "time_steps", None)
    problem = encoder_problem(data.name, steps, encoder)
    if problem:
        raise ValueError(problem)
    if encoder is None:
        return Encoder(kind="sequence", num_steps=int(steps)) if steps is not None else Encoder()
    return encoder


def encoder_problem(dataset: str, time_steps: int | None, encoder: Encoder | None) -> str | None:
    """Why ``encoder`` cannot feed dataset ``dataset`` (``time_steps``: its T, None for static
    features) to the surrogate-gradient rules, or None when it can (see :func:`encoder_for`)."""
    if encoder is None:
        return None
    if time_steps is None:
        if encoder.kind == "sequence":
            return (f"encoder kind 'sequence' needs a temporal dataset (samples [T * C], time-major), but dataset "
                    f"{dataset!r} has static features: use kind 'rate', 'poisson' or 'latency'")
        return None
    if encoder.kind != "sequence" or encoder.num_steps != time_steps:
        return (f"encoder kind {encoder.kind!r} with num_steps={encoder.num_steps} cannot feed temporal dataset "
                f"{dataset!r} (T = {time_steps} steps): the surrogate-gradient rules feed its sequence with encoder "
                f"kind 'sequence' and num_steps={time_steps}, chosen when no encoder is given (leave [encoder] out)")
    return None


def build_method(
    rule: str,
    insitu: bool,
    data,
    *,
    device: Any = "srtio3",
    encoder: Encoder | None = None,
    hidden: tuple[int, ...] = (128,),
    beta: float = 0.9,
    rule_params: Mapping[str, Any] | None = None,
    scheduler: SchedulerParams | Mapping[str, Any] | None = None,
    crossbar: CrossbarParams | None = None,
    periphery: PeripheryParams | None = None,
    seed: int = 0,
    backend: str = "native",
    epochs: int | None = None,
) -> Method:
    """A fresh method for ``rule`` on ``data`` (a :class:`~memsnn.experiments.datasets.Dataset`).

    Args:
        rule: one of ``RULES``; insitu: weights on crossbars of ``device`` (a preset name or a
            :class:`~memsnn.device_models.DeviceModel`), else float weights.
        encoder: input code of the surrogate-gradient rules (default: rate code, 25 steps; on a
            temporal dataset the sequence itself, :func:`encoder_for`).
        hidden: hidden layer sizes (surrogate-gradient network; CSDP layers), neurons.
        beta: LIF membrane decay per step of the surrogate-gradient network.
        rule_params: see the module docstring; validated with :func:`rule_params_errors`.
        scheduler: in-situ pulse scheduler: :class:`SchedulerParams`, or a mapping of the fields to
            change from the rule's default (state-aware steps for sg / ssdp / csdp, and for stdp
            on native crossbars; sg / ssdp also k_max=1, csdp write-verify refresh), or None
            (default).
        crossbar, periphery: array settings.
        seed: initial weights, device sampling, spikes.
        backend: ``"native"`` crossbars or ``"aihwkit"`` analog tiles (every rule).
        epochs: the training epochs the method will get; in-situ sg / ssdp anneal their learning
            rate over them unless ``rule_params`` sets ``anneal_epochs`` (None: its default, 10).
    """
    if backend not in ("native", "aihwkit"):
        raise ValueError(f"backend={backend!r} is not allowed: use 'native' or 'aihwkit'")
    rule_params = dict(rule_params or {})
    errors = rule_params_errors(rule, rule_params, insitu=insitu)
    if errors:
        raise ValueError(f"invalid parameters of rule {rule!r}:\n  - " + "\n  - ".join(errors))
    hidden = tuple(int(h) for h in hidden)
    if isinstance(scheduler, Mapping):
        if rule == "csdp":
            from ..learning.csdp import DEFAULT_SCHEDULER

            base = DEFAULT_SCHEDULER.to_dict()
        elif rule == "stdp":
            from ..learning.stdp import default_scheduler

            base = default_scheduler(backend).to_dict()
        else:
            from ..learning.sg import default_scheduler as sg_scheduler

            base = sg_scheduler(backend).to_dict()
        scheduler = SchedulerParams(**{**base, **scheduler}) if (scheduler or base) else None
    per_class, extra = _split(rule, rule_params)
    dev = device if insitu else None
    if rule == "stdp":
        from ..learning.stdp import SupervisedSTDP

        sp = STDPParams.for_dataset(data.image_shape is not None, data.n_features, **per_class[STDPParams])
        return SupervisedSTDP(data.n_features, data.n_classes, sp, device=dev, scheduler=scheduler,
                              crossbar_params=crossbar, periphery=periphery, seed=seed, backend=backend)
    if rule == "csdp":
        from ..learning.csdp import CSDP

        return CSDP(data.n_features, data.n_classes, hidden, device=dev, optimizer=extra["optimizer"],
                    params=CSDPParams(**per_class[CSDPParams]), scheduler=scheduler if insitu else None,
                    crossbar_params=crossbar, periphery=periphery, seed=seed, backend=backend)
    # surrogate-gradient rules
    from ..learning.sg import DigitalSG, InSituSG
    from ..learning.ssdp import DigitalSSDP, InSituSSDP

    enc = encoder_for(data, encoder)
    net = SpikingNetwork([data.n_channels, *hidden, data.n_classes], neuron=LIFParams(beta=beta), seed=seed)
    ssdp = None
    if rule == "ssdp":
        ssdp = SSDPParams(**{**SSDP_AMPLITUDES, **per_class[SSDPParams]})
    if not insitu:
        if ssdp is None:
            return DigitalSG(net, enc, lr=extra["digital_lr"])
        return DigitalSSDP(net, enc, lr=extra["digital_lr"], ssdp=ssdp)
    sg_fields = dict(per_class[InSituSGParams])
    if epochs is not None and "anneal_epochs" not in sg_fields:
        sg_fields["anneal_epochs"] = int(epochs)
    kw = dict(params=InSituSGParams(**sg_fields),
              scheduler=scheduler,  # None: InSituSG's DEFAULT_SCHEDULER
              crossbar=crossbar, periphery=periphery, seed=seed, backend=backend)
    if ssdp is None:
        return InSituSG(net, device, enc, **kw)
    # SSDP's in-situ coincidence form needs nominal steps; its default dense form works with either
    return InSituSSDP(net, device, enc, ssdp=ssdp, **kw)


def synapse_count(method: Method) -> int:
    """Weights held on the method's crossbars (0 for a float method)."""
    return sum(x.shape[0] * x.shape[1] for x in method.crossbars())


def evaluate(
    method: Method,
    data,
    *,
    times: tuple[float, ...] = (0.0, 86400.0),
    jitter: tuple[float, ...] = (2.0,),
    seed: int = 0,
    pulses_before: int = 0,
    epochs: int | None = None,
    input_noise: InputNoise | None = None,
) -> dict[str, float]:
    """Evaluate a trained method on ``data``'s test split; returns flat metrics.

    - ``test_acc``: right after training;
    - ``acc_noisy``: only when ``input_noise`` is active: under that input noise (feature noise
      relative to the training split's feature ranges, spike deletion / insertion;
      :class:`~memsnn.crossbar.perturb.InputNoise`), right after training;
    - ``acc_jitter_<s>``: with every input spike moved by ``round(N(0, s))`` steps (s in steps,
      :func:`memsnn.crossbar.perturb.jitter`), right after training;
    - ``acc_at_<t>s``: after ``t`` seconds since the end of training, for ``times`` in increasing
      order (the crossbars' clock advances; float methods do not drift, so their accuracy is
      ``test_acc``). This changes the method's state: evaluate last.
    - ``pulses``, ``energy_J``: programming pulses and energy of all crossbars, initial
      programming included; ``pulses_per_synapse_per_epoch``: training pulses (total minus
      ``pulses_before``) per weight per epoch (NaN for float methods or without ``epochs``).
    """
    times = tuple(float(t) for t in times)
    if any(not (math.isfinite(t) and t >= 0) for t in times) or list(times) != sorted(times):
        raise ValueError(f"times={times!r} must be increasing numbers >= 0 (seconds after training)")
    if any(not (_is_number(s) and s >= 0) for s in jitter):
        raise ValueError(f"jitter={tuple(jitter)!r} must be numbers >= 0 (time steps)")
    x, y = data.x_test, data.y_test
    out: dict[str, float] = {"test_acc": accuracy(method, x, y, seed=seed + 2)}
    for s in jitter:
        out[f"acc_jitter_{s:g}"] = accuracy(method, x, y, seed=seed + 2,
                                            perturb=lambda spikes, g, s=float(s): jitter_spikes(spikes, s, g))
    if input_noise is not None and input_noise.active:
        out["acc_noisy"] = accuracy(method, x, y, seed=seed + 2, input_noise=input_noise,
                                    bounds=feature_bounds(data.x_train))
    counters = method.counters()
    out["pulses"] = int(counters.get("pulses", 0))
    out["energy_J"] = float(counters.get("energy_J", 0.0))
    n_syn = synapse_count(method)
    out["pulses_per_synapse_per_epoch"] = ((out["pulses"] - pulses_before) / n_syn / epochs
                                           if n_syn and epochs else float("nan"))
    now = 0.0
    for t in times:
        if method.crossbars():
            if t > now:
                method.advance(t - now)
                now = t
            out[f"acc_at_{t:g}s"] = out["test_acc"] if t == 0 else accuracy(method, x, y, seed=seed + 2)
        else:
            out[f"acc_at_{t:g}s"] = out["test_acc"]
    return out
