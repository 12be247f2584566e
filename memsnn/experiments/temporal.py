"""Temporal tasks, generated in code (nothing downloaded): the datasets on which a spiking network
must integrate over time, as used by HetSyn (Deng et al., arXiv 2508.11644; ``science.md`` 5),
which reports better accuracy than LIF on pattern generation, delayed match-to-sample and visual
recognition and more robustness to noise.

Every task is deterministic per seed (one ``torch.Generator`` seeded with ``seed`` draws the frozen
stimuli or templates first, then every sample) and every option is a field of a small parameter
class, validated with named errors before anything is generated.

======================= ========================================================================
task                    what a sample is
======================= ========================================================================
``dmts``                delayed match-to-sample (working memory): sample stimulus, ``delay``
                        steps of background, test stimulus; label 1 = match. :class:`DMTSParams`
``spike_patterns``      K frozen random spike templates with the same spike count in every
                        channel; a sample is one template with spike-time jitter, deletions and
                        insertions; label = template. :class:`SpikePatternParams`
``seq_fashion_mnist``   a Fashion-MNIST image read row by row: 28 steps of 28 channels
                        (intensities in [0, 1]); built in :mod:`memsnn.experiments.datasets`
:func:`waveform_task`   not a classification dataset: pattern generation (regression), a frozen
                        input spike pattern and smooth target waveforms in [-1, 1]
======================= ========================================================================

Layout: a temporal sample is one row ``[T * C]`` flattened time-major (``x[t * C + c]`` is channel
``c`` at step ``t``), so it fits the loader's ``[N, F]`` features;
:meth:`memsnn.experiments.datasets.Dataset.sequences` gives it back as ``[T, N, C]``. The
generated spike tasks hold spikes, exactly 0.0 / 1.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from ..crossbar.perturb import event_noise
from ..params import ParameterError, Params, param, unknown_key_message

__all__ = [
    "DMTSParams",
    "SpikePatternParams",
    "TASK_PARAMS",
    "task_params_errors",
    "resolve_task_params",
    "generate_task",
    "dmts_stimuli",
    "spike_pattern_times",
    "spike_pattern_templates",
    "jitter_keeping_count",
    "waveform_task",
]

Tensor = torch.Tensor


@dataclass(frozen=True)
class DMTSParams(Params):
    """Delayed match-to-sample (task ``"dmts"``): working memory over ``delay`` steps.

    A trial, in steps: ``stimulus_steps`` of the sample stimulus, ``delay`` of background only,
    ``stimulus_steps`` of the test stimulus, ``response_steps`` of background only, so
    ``T = 2 * stimulus_steps + delay + response_steps``. A stimulus is a fixed set of channels
    firing Bernoulli spikes with probability ``stimulus_rate`` per step: with ``pattern="groups"``
    stimulus ``k`` owns channels ``k * g .. (k + 1) * g - 1``, ``g = n_channels // n_stimuli``
    (leftover channels carry background only); with ``pattern="random"`` each stimulus is a fixed
    random set of ``round(pattern_fraction * n_channels)`` channels, drawn once per seed (sets may
    overlap). Every channel at every step also fires with probability ``noise_rate`` (background,
    the "input noise" of a noise sweep); a step fires when either source does, so a stimulus
    channel fires with ``1 - (1 - stimulus_rate) * (1 - noise_rate)``.

    Labels: exactly half the trials of each split (the odd one out is a non-match) are matches
    (test stimulus = sample stimulus); the sample is uniform over the stimuli and a non-match's
    test stimulus is uniform over the others. So the test stimulus alone is uniform whatever the
    label - it carries no information about it, nor does the sample alone: only their conjunction
    does (for two stimuli an XOR, so no linear readout of the spikes can solve it either; the
    network must hold the sample over the delay and compare).

    Chance is not the floor of every network without memory, though: one whose readout adds up
    evidence over the whole trial (a spike count) scores ``a(sample) + b(test)``, and an additive
    score can say "match" exactly when both windows show stimulus 0, right in all non-match
    trials and in the matches of that stimulus: ``0.5 + 0.5 / n_stimuli`` (75 % for two stimuli;
    :attr:`memoryless_ceiling`). Plain logistic regression stays at 0.5 (the symmetric solution
    is its optimum), but a trained spiking network can find the additive one. More stimuli, or a
    readout over the ``response_steps`` window only, bring that floor towards 0.5.

    The paper (``science.md`` 5) uses delayed match-to-sample to show HetSyn's working memory; its
    exact stimulus statistics are not ours to copy: channel groups, rates, sizes and the
    balanced-label rule here are our choices, sized so that a sample is small (24 channels x 40
    steps by default).
    """

    _owner = "dmts"

    n_train: int = param(1000, unit="samples", check="int>=1", doc="training trials")
    n_test: int = param(300, unit="samples", check="int>=1", doc="test trials")
    n_channels: int = param(24, unit="channels", check="int>=1", doc="input channels C")
    n_stimuli: int = param(2, unit="1", check="int>=2", doc="distinct stimuli")
    pattern: str = param("groups", check=None, choices=("groups", "random"),
                         doc="stimulus = a fixed channel group, or a fixed random set of channels")
    pattern_fraction: float = param(0.25, unit="1", check="prob",
                                    doc="pattern='random': fraction of the channels in each stimulus")
    stimulus_steps: int = param(10, unit="steps", check="int>=1", doc="length of the sample and of the test stimulus")
    delay: int = param(20, unit="steps", check="int>=0", doc="background-only steps between sample and test")
    response_steps: int = param(0, unit="steps", check="int>=0", doc="background-only steps after the test")
    stimulus_rate: float = param(0.5, unit="1", check="prob", doc="spike probability per step of a stimulus channel")
    noise_rate: float = param(0.02, unit="1", check="prob", doc="background spike probability per step, every channel")

    @property
    def time_steps(self) -> int:
        """T, steps per trial."""
        return 2 * int(self.stimulus_steps) + int(self.delay) + int(self.response_steps)

    @property
    def memoryless_ceiling(self) -> float:
        """The best accuracy of a score additive over the sample and test windows (no memory of
        the sample at test time, evidence summed over the trial): ``0.5 + 0.5 / n_stimuli``."""
        return 0.5 + 0.5 / int(self.n_stimuli)

    def _cross_checks(self) -> Iterator[str]:
        if self.pattern == "groups" and self.n_channels < self.n_stimuli:
            yield (f"n_channels={self.n_channels!r} is too small for n_stimuli={self.n_stimuli!r} with "
                   "pattern='groups': each stimulus needs its own channel (n_channels >= n_stimuli)")
        if self.pattern == "random" and round(self.pattern_fraction * self.n_channels) < 1:
            yield (f"pattern_fraction={self.pattern_fraction!r} of n_channels={self.n_channels!r} leaves no "
                   "channel in a stimulus: round(pattern_fraction * n_channels) must be >= 1")
        if self.stimulus_rate <= self.noise_rate:
            yield (f"stimulus_rate={self.stimulus_rate!r} must be > noise_rate={self.noise_rate!r}: a stimulus "
                   "must fire more than the background")


@dataclass(frozen=True)
class SpikePatternParams(Params):
    """Spike-pattern classification (task ``"spike_patterns"``): the class is in spike timing.

    ``n_classes`` frozen templates ``[T, C]``, drawn once per seed: in every template, every
    channel holds exactly ``m = round(rate * time_steps)`` spikes at random distinct steps, so
    every class has the same spike count per channel and a rate code cannot separate them (only
    the times can). A sample is its class's template with each spike moved by
    ``round(N(0, jitter))`` steps (:func:`jitter_keeping_count`: collisions and the window's
    edges push spikes to the nearest free steps, so a channel keeps its ``m`` spikes - with plain
    merging and clipping the count would depend on the template's spacing and leak the class into
    the rate), then each spike deleted with probability ``deletion`` and a spike inserted in each
    slot with probability ``insertion`` (:func:`~memsnn.crossbar.perturb.event_noise`). So
    every channel's spike count has the same distribution in every class. Classes are balanced
    (``n_train`` and ``n_test`` split as evenly as they divide, in shuffled order).

    The paper's pattern tasks (``science.md`` 5) are its motivation; the template statistics,
    sizes and noise model are our choices.
    """

    _owner = "spike_patterns"

    n_train: int = param(1000, unit="samples", check="int>=1", doc="training samples")
    n_test: int = param(300, unit="samples", check="int>=1", doc="test samples")
    n_classes: int = param(5, unit="1", check="int>=2", doc="classes K (templates)")
    n_channels: int = param(20, unit="channels", check="int>=1", doc="input channels C")
    time_steps: int = param(40, unit="steps", check="int>=1", doc="steps per sample T")
    rate: float = param(0.1, unit="1", check="prob", doc="template spikes per channel per step (m = round(rate * T))")
    jitter: float = param(1.0, unit="steps", check=">=0", doc="std of each spike's time shift")
    deletion: float = param(0.1, unit="1", check="prob", doc="probability that a template spike is deleted")
    insertion: float = param(0.01, unit="1", check="prob", doc="probability of a spurious spike per slot")

    def _cross_checks(self) -> Iterator[str]:
        if round(self.rate * self.time_steps) < 1:
            yield (f"rate={self.rate!r} x time_steps={self.time_steps!r} rounds to no template spike per "
                   "channel: round(rate * time_steps) must be >= 1")


#: dataset name -> the parameter class of its ``task_params`` (datasets absent here take none)
TASK_PARAMS: dict[str, type[Params]] = {"dmts": DMTSParams, "spike_patterns": SpikePatternParams}


def task_params_errors(name: str, task_params: Mapping[str, Any] | None) -> list[str]:
    """Every problem of ``task_params`` for dataset ``name``, one message each (empty when fine):
    a dataset that takes none, a non-mapping, unknown keys (with the closest valid name), bad
    values (the field, the value and what is allowed) and broken cross-field rules."""
    if task_params is None:
        return []
    if not isinstance(task_params, Mapping):
        return [f"task_params must be a mapping of option names to values (e.g. {{'delay': 50}}), "
                f"got {type(task_params).__name__} {task_params!r}"]
    if name not in TASK_PARAMS:
        if not task_params:
            return []
        return [f"task_params={dict(task_params)!r} is not used by dataset {name!r}: only "
                f"{', '.join(map(repr, TASK_PARAMS))} take task parameters"]
    cls = TASK_PARAMS[name]
    valid = cls.field_names()
    errors = [unknown_key_message(k, valid) for k in task_params if k not in valid]
    try:
        cls(**{k: v for k, v in task_params.items() if k in valid})
    except ParameterError as err:
        errors.extend(err.errors)
    return errors


def resolve_task_params(name: str, task_params: Mapping[str, Any] | None) -> Params:
    """The validated parameters of generated task ``name`` (defaults updated by ``task_params``);
    integral floats of integer fields (``50.0`` from a command line) become ints.

    Raises:
        ValueError: every problem of :func:`task_params_errors`, in one message.
    """
    if name not in TASK_PARAMS:
        raise ValueError(f"dataset {name!r} is not a generated task: use one of {', '.join(map(repr, TASK_PARAMS))}")
    errors = task_params_errors(name, task_params)
    if errors:
        raise ValueError(f"invalid task_params of dataset {name!r}:\n  - " + "\n  - ".join(errors))
    cls = TASK_PARAMS[name]
    values = dict(task_params or {})
    for f in cls.describe():
        if f["name"] in values and isinstance(f["default"], int) and not isinstance(f["default"], bool):
            values[f["name"]] = int(values[f["name"]])
    return cls(**values)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _balanced_labels(n: int, n_classes: int, g: torch.Generator) -> Tensor:
    """``[n]`` int64 labels, each class ``n // n_classes`` or one more times (the first classes get
    the remainder), in random order."""
    labels = torch.arange(n) % n_classes
    return labels[torch.randperm(n, generator=g)]


# ------------------------------------------------------------------------------------------ dmts
def dmts_stimuli(p: DMTSParams, g: torch.Generator) -> Tensor:
    """``[n_stimuli, n_channels]`` bool: which channels each stimulus drives (see
    :class:`DMTSParams`); ``pattern="random"`` draws from ``g``."""
    k, c = int(p.n_stimuli), int(p.n_channels)
    if p.pattern == "groups":
        size = c // k
        channel = torch.arange(c)
        return (channel // size == torch.arange(k)[:, None]) & (channel < k * size)
    active = round(p.pattern_fraction * c)
    order = torch.argsort(torch.rand(k, c, generator=g), dim=1)
    return order < active  # each row: ``active`` channels at random positions


def _dmts_split(p: DMTSParams, stimuli: Tensor, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` trials: spikes ``[n, T * C]`` float32 (time-major) and labels ``[n]`` int64."""
    k, s = int(p.n_stimuli), int(p.stimulus_steps)
    match = _balanced_labels(n, 2, g)  # odd n: the extra trial is a non-match (label 0)
    sample = torch.randint(k, (n,), generator=g)
    other = (sample + torch.randint(1, k, (n,), generator=g)) % k
    test = torch.where(match.bool(), sample, other)
    drive = torch.zeros(n, p.time_steps, int(p.n_channels), dtype=torch.bool)
    drive[:, :s] = stimuli[sample][:, None, :]
    start = s + int(p.delay)
    drive[:, start:start + s] = stimuli[test][:, None, :]
    stim = torch.rand(drive.shape, generator=g) < p.stimulus_rate
    background = torch.rand(drive.shape, generator=g) < p.noise_rate
    spikes = (drive & stim) | background
    return spikes.reshape(n, -1).to(torch.float32), match.to(torch.int64)


# --------------------------------------------------------------------------------- spike_patterns
def spike_pattern_times(p: SpikePatternParams, g: torch.Generator) -> Tensor:
    """``[n_classes, C, m]`` int64 spike steps of the templates, increasing along the last axis:
    every channel of every template holds ``m = round(rate * T)`` spikes at distinct random steps
    (drawn from ``g``)."""
    k, t, c = int(p.n_classes), int(p.time_steps), int(p.n_channels)
    m = round(p.rate * t)
    return torch.argsort(torch.rand(k, c, t, generator=g), dim=2)[..., :m].sort(dim=2).values


def _raster(times: Tensor, time_steps: int) -> Tensor:
    """``[..., C, m]`` distinct spike steps -> spikes ``[..., T, C]`` float32."""
    out = torch.zeros(*times.shape[:-1], time_steps, dtype=torch.float32)
    out.scatter_(-1, times, 1.0)
    return out.transpose(-1, -2)


def spike_pattern_templates(p: SpikePatternParams, g: torch.Generator) -> Tensor:
    """``[n_classes, T, C]`` float32 templates (the rasters of :func:`spike_pattern_times`)."""
    return _raster(spike_pattern_times(p, g), int(p.time_steps)).contiguous()


def jitter_keeping_count(times: Tensor, sigma: float, time_steps: int, g: torch.Generator) -> Tensor:
    """Move each spike of ``times [..., m]`` (distinct increasing steps) by ``round(N(0, sigma))``
    steps, then resolve collisions and the window's edges by pushing spikes to the nearest free
    steps in their new order, so that every row keeps exactly ``m`` distinct steps in
    ``[0, time_steps - 1]`` (needs ``m <= time_steps``). A spike away from the edges and from
    its neighbours moves by exactly its draw."""
    m = times.shape[-1]
    if sigma == 0 or m == 0:
        return times.clone()
    shift = torch.round(torch.randn(times.shape, generator=g, dtype=torch.float64) * sigma).long()
    moved = (times + shift).sort(dim=-1).values
    slot = torch.arange(m)
    # u_i = s_i - i is non-decreasing exactly when the s_i are strictly increasing
    u = torch.cummax(moved - slot, dim=-1).values.clamp(0, time_steps - m)
    return u + slot


def _pattern_split(p: SpikePatternParams, times: Tensor, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    labels = _balanced_labels(n, int(p.n_classes), g)
    t = int(p.time_steps)
    raster = _raster(jitter_keeping_count(times[labels], float(p.jitter), t, g), t)  # [n, T, C]
    raster = event_noise(raster.transpose(0, 1), float(p.deletion), float(p.insertion), g)  # [T, n, C]
    return raster.transpose(0, 1).reshape(n, -1).contiguous(), labels


def generate_task(name: str, params: Params, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor, dict]:
    """Generate task ``name`` with its resolved ``params`` (:func:`resolve_task_params`).

    Returns ``x_train [N_train, T * C]``, ``y_train``, ``x_test``, ``y_test`` (spikes as float32
    0 / 1, labels int64) and the Dataset metadata (``classes``, ``time_steps``, ``source``). One
    generator seeded with ``seed`` draws the frozen stimuli / templates, then the training split,
    then the test split, so both splits share the stimuli.
    """
    g = _generator(seed)
    if name == "dmts":
        stimuli = dmts_stimuli(params, g)
        split = lambda n: _dmts_split(params, stimuli, int(n), g)  # noqa: E731
        classes = ["non-match", "match"]
        time_steps = params.time_steps
    elif name == "spike_patterns":
        times = spike_pattern_times(params, g)
        split = lambda n: _pattern_split(params, times, int(n), g)  # noqa: E731
        classes = [f"pattern {k}" for k in range(int(params.n_classes))]
        time_steps = int(params.time_steps)
    else:
        raise ValueError(f"dataset {name!r} is not a generated task: use one of {', '.join(map(repr, TASK_PARAMS))}")
    x_tr, y_tr = split(params.n_train)
    x_te, y_te = split(params.n_test)
    meta = dict(classes=classes, feature_names=None, image_shape=None, source=None, time_steps=time_steps)
    return x_tr, y_tr, x_te, y_te, meta


# ------------------------------------------------------------------------------------ waveforms
def waveform_task(
    n_inputs: int = 50,
    time_steps: int = 200,
    n_outputs: int = 1,
    seed: int = 0,
    *,
    rate: float = 0.05,
    n_components: int = 4,
) -> tuple[Tensor, Tensor]:
    """Pattern generation, a regression task: map one frozen random input spike pattern to smooth
    target waveforms (score with MSE or R^2, not accuracy).

    Input: every channel fires a Bernoulli spike with probability ``rate`` at each step, drawn
    once. Targets: output ``j`` is ``sum_k a_jk sin(2 pi k t / T + phi_jk)`` over ``k = 1 ..
    n_components`` whole cycles per sequence, amplitudes ``a_jk`` uniform in [0.5, 1] and phases
    ``phi_jk`` uniform in [0, 2 pi), then min-max scaled to exactly [-1, 1] over the sequence.
    The paper (``science.md`` 5) reports HetSyn ahead of LIF on pattern generation; the sum of
    sinusoids with whole cycles, the amplitude range and the rates are our choices.

    Args:
        n_inputs: input channels (>= 1).
        time_steps: T, steps of the sequence (>= 4, so that a waveform has a shape).
        n_outputs: target waveforms (>= 1).
        seed: seed of the one generator that draws the inputs, then amplitudes, then phases.
        rate: input spike probability per step, in (0, 1].
        n_components: sinusoids per target (>= 1; at most ``time_steps // 2`` so that the
            highest one is sampled above its Nyquist rate).

    Returns:
        ``spikes [T, 1, n_inputs]`` float32 of 0.0 / 1.0 (batch of one) and ``targets
        [T, n_outputs]`` float32 in [-1, 1], each column reaching -1 and 1.
    """
    def integer(name: str, value: Any, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}={value!r} is not allowed: must be an integer >= {low}")
        return int(value)

    n_inputs = integer("n_inputs", n_inputs, 1)
    time_steps = integer("time_steps", time_steps, 4)
    n_outputs = integer("n_outputs", n_outputs, 1)
    seed = integer("seed", seed, 0)
    n_components = integer("n_components", n_components, 1)
    if n_components > time_steps // 2:
        raise ValueError(f"n_components={n_components!r} is not allowed for time_steps={time_steps}: must be "
                         f"<= time_steps // 2 = {time_steps // 2}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
        raise ValueError(f"rate={rate!r} is not allowed: must be a probability in (0, 1]")
    g = _generator(seed)
    spikes = (torch.rand(time_steps, 1, n_inputs, generator=g) < rate).to(torch.float32)
    amp = 0.5 + 0.5 * torch.rand(n_outputs, n_components, generator=g, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(n_outputs, n_components, generator=g, dtype=torch.float64)
    t = torch.arange(time_steps, dtype=torch.float64)
    k = torch.arange(1, n_components + 1, dtype=torch.float64)
    wave = (amp[None] * torch.sin(2 * math.pi * k * t[:, None, None] / time_steps + phase[None])).sum(-1)
    lo, hi = wave.min(0).values, wave.max(0).values
    targets = 2 * (wave - lo) / (hi - lo) - 1
    return spikes, targets.to(torch.float32)
