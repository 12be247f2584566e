"""Feed-forward spiking networks whose synapses are float weights or crossbars.

A :class:`SpikingNetwork` is a stack of synapse layers (``nn.Linear`` for the digital network,
:class:`~memsnn.crossbar.layers.CrossbarLinear` for the analog one) each followed by LIF neurons
(:mod:`memsnn.crossbar.neurons`). Input spikes ``[T, B, N_in]`` drive the first layer; the output
layer's spikes are counted for classification (``readout="count"``), or its membrane, integrated
without spiking, is averaged over time (``readout="membrane"``).

Execution modes (``mode``):

- ``"multi"`` (default): because the network is feed-forward, each layer is run for all ``T``
  steps before the next: its synaptic currents come from one VMM of the whole ``[T * B, N]`` spike
  tensor (one crossbar read per input vector, as on hardware), then the neurons' time loop runs
  over elementwise ops only (:func:`~memsnn.crossbar.multistep.run_lif`, fused, with a
  hand-written backward).
- ``"step"``: time outermost, every layer once per step (``B`` rows per VMM), as snnTorch runs a
  network and as recurrent layers and rules that act between steps need.

The two are the same computation in a different loop order. On crossbars they use the same
random numbers too: each crossbar's read / output noise for an input row is fixed by the
crossbar's seed and the row's place in its read history
(:mod:`~memsnn.crossbar.noise_stream`, CPU), so step ``t`` of the per-step path reads exactly the
numbers that rows ``t * B .. (t + 1) * B - 1`` of the multi-step VMM read, for any ``B`` and any
thread count (on CUDA the draws come from the crossbar's generator and differ between the modes,
with the same distribution). Results agree to float rounding of the differently blocked GEMMs.

The default float synapses (:class:`~memsnn.crossbar.event_linear.EventLinear`, an
``nn.Linear``) read their spikes event-driven on the CPU: only the weight rows of the active
inputs are summed, 2-6x cheaper than the GEMM at 3-20 % active inputs, with the dense backward
for training. A call that samples more than 30 % active inputs takes the GEMM, and so does a
layer with ``spike_read = "dense"``; the two agree to float rounding.

``record=True`` keeps, per layer, what local learning rules need (:class:`LayerRecord`): the
layer's input (pre) and output (post) spikes, from which first-spike times and exponential
pre/post traces follow.

``to_crossbars(preset, ...)`` is ex-situ transfer: a copy of the network whose synapses are
crossbars programmed (open loop, write-verify or direct) with the trained float weights; the same
network on the ``ideal`` preset is the digital reference computed through the crossbar path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from .array import Crossbar
from .event_linear import EventLinear, frozen_weights
from .layers import CrossbarLinear
from .multistep import leaky_integrate, run_lif
from .neurons import LIFParams, LIFState, exponential_trace, first_spike_times, lif_step

__all__ = ["SpikingNetwork", "NetworkOutput", "LayerRecord", "READOUTS", "MODES"]

Tensor = torch.Tensor
READOUTS = ("count", "membrane")
MODES = ("multi", "step")


@dataclass
class LayerRecord:
    """What one layer did during a run: ``pre`` ``[T, B, N_in]`` and ``post`` ``[T, B, N_out]``
    spikes (float 0/1), and the synaptic ``current`` ``[T, B, N_out]`` (weight units)."""

    pre: Tensor
    post: Tensor
    current: Tensor

    def first_spike_times(self, which: str = "post") -> Tensor:
        """First-spike step ``[B, N]`` of the layer's output (``"post"``) or input (``"pre"``); ``T`` if silent."""
        return first_spike_times(self.post if which == "post" else self.pre)

    def traces(self, tau_pre: float, tau_post: float) -> tuple[Tensor, Tensor]:
        """Exponential pre and post traces ``[T, B, N]`` with time constants in steps."""
        return exponential_trace(self.pre, tau_pre), exponential_trace(self.post, tau_post)


@dataclass
class NetworkOutput:
    """Result of a run. ``spikes`` / ``membrane``: the output layer over time ``[T, B, C]``."""

    spikes: Tensor
    membrane: Tensor
    readout: str
    records: list[LayerRecord] = field(default_factory=list)

    @property
    def counts(self) -> Tensor:
        """Output spike counts ``[B, C]``."""
        return self.spikes.sum(0)

    @property
    def logits(self) -> Tensor:
        """Class scores ``[B, C]``: spike counts, or the time-averaged membrane."""
        return self.counts if self.readout == "count" else self.membrane.mean(0)

    def predictions(self) -> Tensor:
        """Predicted class per sample ``[B]``; count ties are broken by the membrane."""
        if self.readout == "membrane":
            return self.logits.argmax(1)
        return (self.counts + 1e-3 * torch.tanh(self.membrane.mean(0))).argmax(1)


class SpikingNetwork(nn.Module):
    """Feed-forward SNN; see the module docstring.

    Args:
        sizes: layer widths ``[n_in, n_hidden..., n_out]``.
        neuron: LIF parameters for every layer, or one per synapse layer.
        synapses: the synapse modules (default: float weights,
            :class:`~memsnn.crossbar.event_linear.EventLinear` ``(in, out, bias=False)``).
        readout: ``"count"`` (output spikes) or ``"membrane"`` (non-spiking output integrator).
        seed: initialises the default float weights deterministically.
        mode: ``"multi"`` (layer by layer over all steps) or ``"step"`` (every layer once per
            step); see the module docstring. An attribute: change it at any time.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        neuron: LIFParams | Sequence[LIFParams] | None = None,
        synapses: Sequence[nn.Module] | None = None,
        readout: str = "count",
        seed: int = 0,
        mode: str = "multi",
    ):
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2 or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
            raise ValueError(f"sizes={sizes!r} must be at least two positive integers [n_in, ..., n_out]")
        if readout not in READOUTS:
            raise ValueError(f"readout={readout!r} is not allowed: use one of {', '.join(map(repr, READOUTS))}")
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not allowed: use one of {', '.join(map(repr, MODES))}")
        n_syn = len(sizes) - 1
        if neuron is None or isinstance(neuron, LIFParams):
            neurons = [neuron or LIFParams()] * n_syn
        else:
            neurons = list(neuron)
            if len(neurons) != n_syn:
                raise ValueError(f"got {len(neurons)} neuron parameter sets for {n_syn} layers")
        if synapses is None:
            gen = torch.Generator().manual_seed(seed)
            synapses = []
            for a, b in zip(sizes[:-1], sizes[1:]):
                lin = EventLinear(a, b, bias=False)
                bound = 1.0 / a**0.5
                with torch.no_grad():
                    lin.weight.uniform_(-bound, bound, generator=gen)
                synapses.append(lin)
        synapses = list(synapses)
        if len(synapses) != n_syn:
            raise ValueError(f"got {len(synapses)} synapse layers for sizes {sizes}")
        for i, (syn, a, b) in enumerate(zip(synapses, sizes[:-1], sizes[1:])):
            shape = (getattr(syn, "in_features", None), getattr(syn, "out_features", None))
            if shape != (a, b):
                raise ValueError(f"synapse layer {i} maps {shape[0]} -> {shape[1]}, expected {a} -> {b}")
        for syn in synapses:  # every layer of a spiking network reads spikes
            if isinstance(syn, CrossbarLinear):
                syn.binary_inputs = True
        self.sizes = sizes
        self.neurons = neurons
        self.readout = readout
        self.mode = mode
        self.synapses = nn.ModuleList(synapses)

    # ------------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, *, record: bool = False) -> NetworkOutput:
        """Run input spikes ``x`` ``[T, B, n_in]``; returns the output layer over time."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[2] != self.sizes[0]:
            raise ValueError(f"input spikes have shape {tuple(getattr(x, 'shape', ()))}, expected [T, B, {self.sizes[0]}]")
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not allowed: use one of {', '.join(map(repr, MODES))}")
        if self.mode == "step":
            return self._forward_steps(x, record)
        T, B, _ = x.shape
        records: list[LayerRecord] = []
        h = x
        n = len(self.synapses)
        for i, (syn, p) in enumerate(zip(self.synapses, self.neurons)):
            dtype = _module_dtype(syn)
            cur = syn(h.reshape(T * B, -1).to(dtype)).reshape(T, B, -1)
            last = i == n - 1
            if last and self.readout == "membrane":
                spikes, mem = torch.zeros_like(cur), leaky_integrate(cur, p.beta)
            else:
                spikes, mem = run_lif(cur, p)
            if record:
                records.append(LayerRecord(pre=h.detach(), post=spikes.detach(), current=cur.detach()))
            h = spikes
        return NetworkOutput(spikes=spikes, membrane=mem, readout=self.readout, records=records)

    def _forward_steps(self, x: Tensor, record: bool) -> NetworkOutput:
        """``mode="step"``: time outermost, each layer's VMM on the ``B`` rows of one step."""
        with frozen_weights(self.synapses):  # each float layer's W.T made once, not once per step
            return self._step_loop(x, record)

    def _step_loop(self, x: Tensor, record: bool) -> NetworkOutput:
        n = len(self.synapses)
        states: list[LIFState | None] = [None] * n
        v_out: Tensor | None = None
        kept: list[list[tuple[Tensor, Tensor, Tensor]]] = [[] for _ in range(n)]  # (pre, post, current)
        out_spikes, out_mem = [], []
        for t in range(x.shape[0]):
            h = x[t]
            for i, (syn, p) in enumerate(zip(self.synapses, self.neurons)):
                cur = syn(h.to(_module_dtype(syn)))
                if i == n - 1 and self.readout == "membrane":
                    v_out = cur if v_out is None else p.beta * v_out + cur
                    s, v = torch.zeros_like(cur), v_out
                else:
                    s, states[i] = lif_step(cur, states[i], p, check=False)
                    v = states[i].v
                if record:
                    kept[i].append((h.detach(), s.detach(), cur.detach()))
                h = s
            out_spikes.append(h)
            out_mem.append(v)
        records = [LayerRecord(*(torch.stack(z) for z in zip(*steps))) for steps in kept] if record else []
        return NetworkOutput(spikes=torch.stack(out_spikes), membrane=torch.stack(out_mem), readout=self.readout,
                             records=records)

    # ------------------------------------------------------------------------------------------------
    def weights(self) -> list[Tensor]:
        """Each layer's weights ``[in, out]`` (float weights, or the crossbar's effective weights)."""
        out = []
        for syn in self.synapses:
            if isinstance(syn, CrossbarLinear):
                out.append(syn.effective_weight())
            else:
                out.append(syn.weight.detach().t())
        return out

    def crossbars(self) -> list[Crossbar]:
        return [syn.crossbar for syn in self.synapses if isinstance(syn, CrossbarLinear)]

    def advance(self, seconds: float) -> "SpikingNetwork":
        """Let ``seconds`` pass on every crossbar (drift, relaxation)."""
        for xbar in self.crossbars():
            xbar.advance(seconds)
        return self

    def to_crossbars(
        self,
        model: Any = "srtio3",
        *,
        method: str = "write_verify",
        compensate_drift: bool = False,
        seed: int = 0,
        program_kwargs: dict | None = None,
        **crossbar_kwargs: Any,
    ) -> tuple["SpikingNetwork", list]:
        """Ex-situ transfer: a copy whose synapses are crossbars programmed with this network's
        weights (each layer's ``scale`` = its largest |weight|). Returns ``(network, reports)``."""
        layers, reports = [], []
        for i, (syn, w) in enumerate(zip(self.synapses, self.weights())):
            bias = getattr(syn, "bias", None)
            layer, rep = CrossbarLinear.from_weight(
                w.float(), model, method=method, bias=None if bias is None else bias.detach(),
                compensate_drift=compensate_drift, seed=seed + i, program_kwargs=program_kwargs, **crossbar_kwargs,
            )
            layers.append(layer)
            reports.append(rep)
        net = SpikingNetwork(self.sizes, neuron=self.neurons, synapses=layers, readout=self.readout)
        return net, reports


def _module_dtype(module: nn.Module) -> torch.dtype:
    if isinstance(module, CrossbarLinear):
        return module.crossbar.dtype
    for t in module.parameters():
        return t.dtype
    return torch.float32
