"""One training loop for every rule on every device.

A :class:`Method` is a trainable classifier - a network plus the rule that changes it. It trains on
a mini-batch (:meth:`Method.train_batch`), predicts, and, when its weights live on crossbars,
exposes them so that the loop can count pulses and energy and let time pass. :func:`fit` drives any
method: epochs over a seeded order, evaluation after each epoch, tqdm progress, and a history with
accuracy, pulses, energy and hardware phases. It stops at the first NaN or infinite loss with
:class:`~memsnn.learning.bptt.TrainingDiverged`.

Time: in-situ methods live on drifting devices. After each batch the loop advances every crossbar
by ``seconds_per_sample * batch`` (the time the samples took to present, default 1 ms per time
step), so volatile parts relax and drift acts during training, as on hardware.

Input noise (:class:`~memsnn.crossbar.perturb.InputNoise`): ``fit(..., input_noise=...)`` trains
on noisy inputs (feature noise on each batch before encoding, spike deletion / insertion on the
encoded raster, fresh draws every batch) and ``accuracy(..., input_noise=...)`` scores under it.
Feature ranges are the training split's (:func:`~memsnn.crossbar.perturb.feature_bounds`).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..crossbar.array import Crossbar
from ..crossbar.perturb import InputNoise, feature_bounds
from .bptt import TrainingDiverged, batched_accuracy

__all__ = ["Method", "StepStats", "fit", "accuracy", "cosine_factor"]

Tensor = torch.Tensor


def cosine_factor(done: int, total: int) -> float:
    """Cosine annealing factor after ``done`` of ``total`` epochs: 1 at the start, 0 from ``total``
    on, ``0.5 * (1 + cos(pi * min(done, total) / total))`` in between."""
    return 0.5 * (1.0 + math.cos(math.pi * min(done, total) / total))


@dataclass
class StepStats:
    """What one training batch did."""

    loss: float | None = None
    correct: int = 0  # training predictions that were right (for a running accuracy)
    seen: int = 0
    pulses: int = 0
    energy_J: float = 0.0
    phases: int = 0


class Method(ABC):
    """A network plus its learning rule; see the module docstring."""

    #: short name used in tables
    name: str = "method"
    #: seconds one sample takes to present (drift during training); None: 1 ms per time step
    seconds_per_sample: float | None = None
    #: set by :func:`accuracy` while it evaluates under perturbed input spikes, and by :func:`fit`
    #: while it trains with spike noise; None otherwise
    spike_perturbation: Callable[[Tensor], Tensor] | None = None

    def perturb_spikes(self, spikes: Tensor) -> Tensor:
        """The input raster ``[T, B, N]`` as the method should see it: unchanged, or perturbed
        while :func:`accuracy` runs with ``perturb`` / ``input_noise`` or :func:`fit` trains with
        spike noise. Every ``predict`` and ``train_batch`` passes its encoded input through this."""
        return spikes if self.spike_perturbation is None else self.spike_perturbation(spikes)

    @abstractmethod
    def train_batch(self, x: Tensor, y: Tensor, generator: torch.Generator) -> StepStats:
        """Learn from samples ``x`` ``[B, F]`` (features in [0, 1]) with labels ``y`` ``[B]``."""

    @abstractmethod
    def predict(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Predicted classes ``[B]`` for samples ``x`` ``[B, F]``."""

    def crossbars(self) -> list[Crossbar]:
        """The crossbars holding this method's weights (none for a digital method)."""
        return []

    def advance(self, seconds: float) -> None:
        """Let time pass on every crossbar."""
        for xbar in self.crossbars():
            xbar.advance(seconds)

    def on_epoch_end(self, epoch: int) -> None:
        """Hook for per-epoch schedules (learning-rate annealing ...)."""

    def counters(self) -> dict[str, float]:
        """Cumulative programming pulses and energy of the crossbars."""
        xs = self.crossbars()
        return {"pulses": sum(x.total_pulses for x in xs), "energy_J": sum(x.energy for x in xs)}


def _check_noise(input_noise: InputNoise | None) -> None:
    if input_noise is not None and not isinstance(input_noise, InputNoise):
        raise TypeError(f"input_noise must be an InputNoise or None, got {type(input_noise).__name__}")


def accuracy(method: Method, x: Tensor, y: Tensor, *, batch_size: int = 256, seed: int = 0,
             perturb: Callable[[Tensor, torch.Generator], Tensor] | None = None,
             input_noise: InputNoise | None = None, bounds: tuple[Tensor, Tensor] | None = None) -> float:
    """Fraction of ``x`` ``[N, F]`` the method classifies as ``y`` ``[N]`` (no learning).

    ``perturb(spikes, generator) -> spikes`` (e.g. :func:`memsnn.crossbar.perturb.jitter`) changes
    the encoded input raster ``[T, B, N]`` before the network sees it, with its own generator
    seeded from ``seed``: every method evaluated with the same seed gets the same perturbation
    draws for the same spikes.

    ``input_noise`` adds feature noise to ``x`` (ranges from ``bounds = (lo, hi)`` ``[F]``, the
    training split's; required when the feature noise is on) and deletes / inserts spikes after
    ``perturb``, each from its own generator seeded from ``seed``.
    """
    _check_noise(input_noise)
    if input_noise is not None and input_noise.feature > 0:
        if bounds is None:
            raise ValueError("input_noise with feature noise needs bounds=(lo, hi): the training split's "
                             "per-feature minimum and maximum (memsnn.crossbar.perturb.feature_bounds)")
        x = input_noise.features(x, *bounds, generator=torch.Generator().manual_seed(seed + 7927))
    spike_noise = input_noise if input_noise is not None and input_noise.on_spikes else None
    if perturb is None and spike_noise is None:
        return batched_accuracy(method.predict, x, y, batch_size=batch_size, seed=seed)
    pgen = torch.Generator().manual_seed(seed + 7919)
    ngen = torch.Generator().manual_seed(seed + 7933)

    def perturbed(spikes: Tensor) -> Tensor:
        if perturb is not None:
            spikes = perturb(spikes, pgen)
        return spike_noise.spikes(spikes, ngen) if spike_noise is not None else spikes

    method.spike_perturbation = perturbed
    try:
        return batched_accuracy(method.predict, x, y, batch_size=batch_size, seed=seed)
    finally:
        method.spike_perturbation = None


def fit(
    method: Method,
    data,
    *,
    epochs: int,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
    num_steps: int | None = None,
    input_noise: InputNoise | None = None,
) -> pd.DataFrame:
    """Train ``method`` on ``data`` (a :class:`~memsnn.experiments.datasets.Dataset`).

    Returns one row per epoch: ``epoch, loss, train_acc, test_acc, pulses, energy_J, phases,
    seconds`` (pulses and energy cumulative, programming included; phases of the epoch's updates).
    ``num_steps`` sets the default presentation time (1 ms per step) for drift during training.
    ``input_noise`` trains on noisy inputs (module docstring; its own generator, seeded from
    ``seed``); ``test_acc`` stays the clean test accuracy.
    """
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} must be an integer >= 1")
    _check_noise(input_noise)
    noise = input_noise if input_noise is not None and input_noise.active else None
    bounds = feature_bounds(data.x_train) if noise is not None and noise.feature > 0 else None
    noise_gen = torch.Generator().manual_seed(seed + 3)
    order_gen = torch.Generator().manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    per_sample = method.seconds_per_sample
    if per_sample is None:
        per_sample = 1e-3 * (num_steps or 1)
    x, y = data.x_train, data.y_train
    rows = []
    bar = tqdm(range(1, epochs + 1), desc=method.name, disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), generator=order_gen)
        loss_sum, loss_n, correct, seen, phases = 0.0, 0, 0, 0, 0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            xb = x[idx] if bounds is None else noise.features(x[idx], *bounds, generator=noise_gen)
            if noise is not None and noise.on_spikes:
                method.spike_perturbation = lambda spikes: noise.spikes(spikes, noise_gen)
            try:
                st = method.train_batch(xb, y[idx], gen)
            finally:
                method.spike_perturbation = None
            if st.loss is not None:
                if not math.isfinite(st.loss):
                    raise TrainingDiverged(f"{method.name}: loss became {st.loss} at epoch {epoch}, batch {i // batch_size}")
                loss_sum += st.loss * len(idx)
                loss_n += len(idx)
            correct += st.correct
            seen += st.seen
            phases += st.phases
            if per_sample > 0:
                method.advance(per_sample * len(idx))
        method.on_epoch_end(epoch)
        row = {"epoch": epoch, "loss": loss_sum / loss_n if loss_n else float("nan"),
               "train_acc": correct / seen if seen else float("nan"),
               "test_acc": accuracy(method, data.x_test, data.y_test, seed=seed + 2),
               **method.counters(), "phases": phases, "seconds": time.perf_counter() - t0}
        rows.append(row)
        bar.set_postfix(test=f"{row['test_acc']:.3f}")
    return pd.DataFrame(rows)
