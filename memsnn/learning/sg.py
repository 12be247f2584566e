"""Surrogate-gradient training as loop methods: digital (float weights, Adam) and in-situ.

:class:`DigitalSG` is the digital baseline: BPTT through the LIF neurons' surrogate gradients,
Adam on float weights.

:class:`InSituSG` is the same BPTT gradient applied to crossbars - what aihwkit calls analog SGD,
here for spiking networks. The forward pass runs on the arrays (read noise, periphery, drift, the
devices' real, nonlinear and spread conductances); the backward pass goes straight through the
effective weights (:mod:`memsnn.crossbar.layers`); each batch's weight gradient ``G = sum_t x^T
dL/dy`` becomes a desired change ``dW = -lr * G`` per layer, which the
:class:`~memsnn.learning.scheduler.PulseScheduler` turns into pulses (stochastic rounding by
default, since most changes are below one pulse; SET-only pairs with refresh, or bipolar). The
arrays start from the same random initial weights as the digital network, programmed onto the
devices, and the crossbar ``scale`` leaves room for the weights to grow (``scale_factor`` times the
initial bound ``1 / sqrt(fan_in)``). Plain SGD, not Adam: a crossbar cannot hold Adam's
per-synapse moments.

Default scheduler (:data:`DEFAULT_SCHEDULER`): calibrated state-aware steps and at most one pulse
per device per update (``k_max=1``). Calibrated (``step="calibrated"``,
:mod:`memsnn.crossbar.calibration`): before its first update each crossbar's devices are measured
(SET and RESET gains against the nominal law in 4 window segments; pulses, reads and energy
counted) and every pulse count uses the device's own gain at its conductance - the remedy for the
device-to-device spread of srtio3's law, which ``memsnn ablate`` put at -5.8 points. Measured on
digits (the compare setting, srtio3 defaults, seeds 0-2, ``memsnn sweep
examples/remedies_digits.toml --set rule.name=sg --grid scheduler.step=...``): state-aware
88.8 +- 0.7 %, calibrated with one segment 91.0 +- 0.7 % (with 30 % fewer pulses), each device's
exact law (``step="device"``, the upper bound of a calibration) 90.0 +- 0.8 %; the 4-segment
default: see the README's remedies table. ``k_max`` bounds how far one batch can move a weight, and on a coarse
device that bound is what keeps SGD stable: one srtio3 pulse moves a weight by 0.5-2.5 % of the
window (0.1 % on ``ideal``), so with ``k_max=8`` one batch could move it by a fifth of the window,
and the test accuracy swung by 10-30 points from epoch to epoch. Measured on digits / srtio3 (128
hidden, T = 25, constant lr 0.05, 10 epochs, seeds 0-4, ``benchmarks/scheduler_variants.py``):
90.1 +- 1.0 % with ``k_max=1`` against 83.6 +- 1.6 % with ``k_max=8``, with half the pulses. The same holds for a
linear device with srtio3-sized steps (ideal with a 2.5 % step: 30-54 % with ``k_max=8``, 85-94 %
with ``k_max=1``).

The learning rate is cosine-annealed by default, from ``lr`` to a tenth of it over
``anneal_epochs`` (10, the default run's epochs): the stochastic rounding's pulses are noise
that a smaller late learning rate cuts. Measured as above (seeds 0-4): 90.9 +- 0.9 % against
90.1 +- 1.0 % at a constant 0.05 - within the seeds' spread - with a quarter fewer pulses.
``lr_final=None`` keeps it constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..crossbar.array import CrossbarParams
from ..crossbar.coding import Encoder
from ..crossbar.layers import CrossbarLinear
from ..crossbar.network import SpikingNetwork
from ..crossbar.periphery import PeripheryParams
from ..params import Params, param
from .loop import Method, StepStats, cosine_factor
from .scheduler import PulseScheduler, SchedulerParams

__all__ = ["DigitalSG", "InSituSG", "InSituSGParams", "DEFAULT_SCHEDULER", "default_scheduler"]

Tensor = torch.Tensor

#: In-situ SG's scheduler when none is given (module docstring): calibrated state-aware steps (4
#: window segments per polarity), one pulse per device per update at most.
DEFAULT_SCHEDULER = SchedulerParams(step="calibrated", calibration_segments=4, k_max=1)


def default_scheduler(backend: str = "native") -> SchedulerParams:
    """:data:`DEFAULT_SCHEDULER` on native crossbars; on aihwkit tiles, which cannot be read device
    by device for a calibration, the same with plain state-aware steps."""
    return DEFAULT_SCHEDULER if backend == "native" else DEFAULT_SCHEDULER.replace(step="state_aware")


class DigitalSG(Method):
    """BPTT on float weights with Adam (or SGD): the digital baseline."""

    name = "surrogate-gradient digital"

    def __init__(self, net: SpikingNetwork, encoder: Encoder, *, lr: float = 2e-3, optimizer: str = "adam"):
        self.net, self.encoder = net, encoder
        params = [p for p in net.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the network has no float weights to train")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer={optimizer!r} is not allowed: use 'adam' or 'sgd'")
        self.opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr, momentum=0.9)
        self.loss_fn = nn.CrossEntropyLoss()
        self.seconds_per_sample = 0.0

    def train_batch(self, x: Tensor, y: Tensor, generator: torch.Generator) -> StepStats:
        out = self.net(self.perturb_spikes(self.encoder(x, generator)))
        loss = self.loss_fn(out.logits, y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return StepStats(loss=float(loss.detach()), correct=int((out.predictions() == y).sum()), seen=len(y))

    def predict(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.net(self.perturb_spikes(self.encoder(x, generator))).predictions()


@dataclass(frozen=True)
class InSituSGParams(Params):
    """Settings of in-situ surrogate-gradient training (SI units where physical)."""

    _owner = "insitu_sg"

    lr: float = param(0.05, unit="1", check=">0", doc="SGD learning rate on weights (weight units per unit gradient)")
    scale_factor: float = param(2.5, unit="1", check=">0", doc="crossbar scale = scale_factor / sqrt(fan_in): room for weights to grow")
    init_method: str = param("write_verify", check=None, choices=("write_verify", "open_loop", "direct"), doc="how the initial weights are programmed")
    grad_clip: float | None = param(None, unit="1", check=">0", optional=True, doc="clip each layer's weight gradient norm (None: off)")
    lr_final: float | None = param(0.1, unit="1", check="prob", optional=True, doc="cosine-anneal lr to lr * lr_final over anneal_epochs (None: constant lr)")
    anneal_epochs: int = param(10, unit="epochs", check="int>=1", doc="epochs over which lr anneals (set it to the training epochs); constant after")

    def lr_at(self, epochs_done: int) -> float:
        """Learning rate after ``epochs_done`` epochs: ``lr``, or cosine-annealed from ``lr`` to
        ``lr * lr_final`` over ``anneal_epochs`` (module docstring)."""
        if self.lr_final is None:
            return self.lr
        return self.lr * (self.lr_final + (1.0 - self.lr_final) * cosine_factor(epochs_done, self.anneal_epochs))


class InSituSG(Method):
    """BPTT gradients applied to crossbars as pulses; see the module docstring.

    Args:
        net: a digital network giving the architecture, neurons, readout and initial weights.
        model: device preset name or DeviceModel for every layer.
        encoder: input spike code.
        params: :class:`InSituSGParams`; scheduler: :class:`SchedulerParams` (one scheduler per
            layer; default :func:`default_scheduler` of the backend); crossbar / periphery: array settings; seed:
            device sampling; backend:
            ``"native"`` or ``"aihwkit"`` crossbars (:func:`memsnn.interop.aihwkit_backend.make_crossbar`).
    """

    name = "surrogate-gradient in-situ"

    def __init__(self, net: SpikingNetwork, model: Any, encoder: Encoder, *, params: InSituSGParams | None = None,
                 scheduler: SchedulerParams | None = None, crossbar: CrossbarParams | None = None,
                 periphery: PeripheryParams | None = None, seed: int = 0, backend: str = "native"):
        self.params = params or InSituSGParams()
        self.encoder = encoder
        layers, self.programming = [], []
        for i, w in enumerate(net.weights()):
            scale = self.params.scale_factor / w.shape[0] ** 0.5
            layer, rep = CrossbarLinear.from_weight(
                w.detach().float().clamp(-scale, scale), model, method=self.params.init_method, scale=scale,
                params=crossbar, periphery=periphery, seed=seed + i, backend=backend,
            )
            layer.track_weight_grad = True
            layers.append(layer)
            self.programming.append(rep)
        self.net = SpikingNetwork(net.sizes, neuron=net.neurons, synapses=layers, readout=net.readout)
        self.schedulers = [PulseScheduler(scheduler or default_scheduler(backend)) for _ in layers]
        self.loss_fn = nn.CrossEntropyLoss()
        self.epochs_done = 0

    @property
    def lr(self) -> float:
        """The learning rate of the next update (``params.lr_at(epochs_done)``)."""
        return self.params.lr_at(self.epochs_done)

    def on_epoch_end(self, epoch: int) -> None:
        super().on_epoch_end(epoch)
        self.epochs_done += 1

    def crossbars(self):
        return self.net.crossbars()

    def train_batch(self, x: Tensor, y: Tensor, generator: torch.Generator) -> StepStats:
        out = self.net(self.perturb_spikes(self.encoder(x, generator)))
        loss = self.loss_fn(out.logits, y)
        for syn in self.net.synapses:
            syn.weight_grad = None
        if loss.requires_grad:
            loss.backward()
        stats = StepStats(loss=float(loss.detach()), correct=int((out.predictions() == y).sum()), seen=len(y))
        for syn, sched in zip(self.net.synapses, self.schedulers):
            g = syn.weight_grad
            if g is None:
                continue
            if not torch.isfinite(g).all():
                stats.loss = float("nan")  # the loop stops with TrainingDiverged
                return stats
            if self.params.grad_clip is not None:
                norm = float(g.norm())
                if norm > self.params.grad_clip:
                    g = g * (self.params.grad_clip / norm)
            up = sched.update(syn.crossbar, -self.lr * g)
            stats.pulses += up.pulses
            stats.energy_J += up.energy_J
            stats.phases += up.phases
            syn.weight_grad = None
        return stats

    def predict(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.net(self.perturb_spikes(self.encoder(x, generator))).predictions()
