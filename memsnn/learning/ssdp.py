"""SSDP and DA-SSDP: spike-synchrony-dependent plasticity on top of surrogate-gradient training.

Sources (science.md section 3.1): Tian et al., "Learning with spike synchrony in spiking neural
networks", arXiv 2505.14841 (SSDP); Tian et al., "Synchrony-gated plasticity with dopamine
modulation for spiking neural networks", arXiv 2512.07194 (DA-SSDP). Both add a small local update
to the deeper layers after each surrogate-gradient (BPTT) step, without changing the optimiser.

The rule, per layer and mini-batch. For sample ``b`` let ``pre_i`` / ``post_j`` be 1 when input
``i`` / output ``j`` of the layer fired at least once in the ``T``-step window, and ``t_i`` /
``t_j`` the first-spike latencies in steps (``T`` when silent)::

    S_ji  = post_j * pre_i                                   co-activity (0/1)
    G_ji  = exp(-(t_j - t_i)**2 / (2 * sigma**2))            latency kernel (sigma in steps)
    dW_ji = clamp(mean_b[gate_b * (A_plus * S * G - A_base * (1 - S) * G)], -clamp, clamp)

``dW`` is in weight units and, like every weight in memsnn, laid out ``[n_in, n_out]`` (rows =
inputs), i.e. ``dW[i, j]`` is the change of the synapse from input ``i`` to output ``j``.
``gate_b = 1`` for plain SSDP. Two choices differ from the public SSDP code and are explicit here:
latencies are *first* spikes, as the papers state (the code uses the last spike), and a pair where
both neurons are silent (``t_i = t_j = T``, so ``G = 1``) gets the full depression ``-A_base`` with
``silent_pairs="depress"`` (what the code does) or nothing with ``silent_pairs="none"``.

Because latencies are whole steps in ``[0, T]``, ``G`` and the coefficient only depend on the pair
of time bins ``(t_i, t_j)``: with one-hot codes ``P_b`` ``[n_in, T+1]`` and ``Q_b`` ``[n_out, T+1]``
and the ``(T+1) x (T+1)`` coefficient matrix ``C[t, u] = (A_plus if t < T and u < T else -A_base) *
exp(-(u - t)**2 / (2 sigma**2))`` (``C[T, T] = 0`` with ``silent_pairs="none"``), the batch sum is
``sum_b gate_b P_b C Q_b^T`` - one matrix product, no ``[B, n_in, n_out]`` tensor.
:func:`ssdp_kernel` computes it; :func:`ssdp_phases` splits the same sum into rank-1 terms.

DA-SSDP gate (:class:`DopamineGate`). Per sample the layer's synchrony is ``s_b = mean_ij S_bji``
(fraction of co-active pairs). During a warm-up of ``warmup_batches`` training batches the
pairs ``(s_b, loss_b)`` (per-sample cross-entropy) are recorded; then ``k = -corr(s, loss)``
(Pearson, over all recorded samples; the warm-up starts with the first training batch, before
``start_epoch`` too) and ``mean s``, ``std s`` (population) are fixed, and from
then on::

    gate_b = clamp(1 + k * (s_b - mean s) / std s, 0, 2)

Sign convention: when high synchrony goes with *high* loss (``corr > 0``), ``k < 0`` and samples
with above-average synchrony get ``gate < 1`` (their update is damped), below-average ones
``gate > 1``; when high synchrony goes with *low* loss, the reverse. Uncorrelated data give
``k ~ 0`` and ``gate ~ 1`` (exactly 1 when ``s`` or the loss is constant): DA-SSDP becomes SSDP.
During the warm-up (gate not yet fitted) updates are applied with ``gate = 1``.
Defaults of the DA-SSDP paper are ``A_plus = 1.5e-3``, ``A_base = 5e-4``; this module's defaults
are SSDP's (``1.5e-4``, ``5e-5``) for both gates - set them explicitly.

Methods. :class:`DigitalSSDP` extends :class:`~memsnn.learning.sg.DigitalSG` and
:class:`InSituSSDP` extends :class:`~memsnn.learning.sg.InSituSG`: each batch runs the parent's
gradient step unchanged (its forward pass is observed with hooks that keep the first-spike times of
the chosen layers' inputs and outputs), then applies SSDP to ``layers`` (default: the last one),
from epoch ``start_epoch`` on, with amplitudes optionally cosine-annealed to 0 over
``anneal_epochs``. The spikes are those of the gradient step's forward pass, i.e. before its
weight update. Float weights: ``dW`` is added to ``nn.Linear.weight`` (``[out, in]``, so ``dW^T``)
under ``torch.no_grad``. In-situ, ``dW`` is scheduled by the layer's
:class:`~memsnn.learning.scheduler.PulseScheduler` with its quantisation and scheme (stochastic
rounding by default: SSDP steps are mostly far below one pulse, and stochastic rounding keeps
``E[dW]`` right) and applied to the crossbar. SET-only refreshes stay with the gradient updates:
an SSDP update neither triggers a refresh nor counts towards ``refresh_every`` (the next gradient
update refreshes pairs that came near ``g_max``), so refresh pulses are never booked as SSDP
pulses. Stochastic rounding of SSDP draws from its own generator (seeded from ``seed``), so
the gradient updates see the same random stream as :class:`InSituSG` with that seed.
``insitu`` picks the pulse form:

- ``"dense"`` (default): the batch's net ``dW`` (gated, clamped) as one dense phase - exact in
  expectation; most devices receive no pulse (a sparse stochastic update), and the hardware cost is
  one phase per line and polarity that has pulses (rows or columns, whichever are fewer).
- ``"coincidence"``: the literal local form, as rank-1 coincidence phases
  (:meth:`PulseScheduler.rank1`): for each sample ``b`` and first-spike step ``t`` of the
  inputs, the rows are the inputs whose first spike was at ``t`` (0/1) and column ``j`` carries
  ``gate_b / B * C[t, t_j]``. For ``t < T`` these are the LTP rows (pre fired) with potentiation on
  fired columns and the latency-weighted depression on silent ones; the ``t = T`` phase (silent
  inputs) is the depression of the rest. The sum of these phases is exactly the unclamped kernel
  (the clamp at +-1 weight unit never binds at SSDP amplitudes); a column's pulses are shared by
  the phase's rows, so it is unbiased but noisier than ``dense``, and it costs up to ``B * (T + 1)``
  phases per batch. Requires the scheduler's nominal step.

SSDP pulses are counted apart from the gradient step's: :class:`SSDPStepStats` (``pulses`` is the
total, ``ssdp_pulses`` / ``ssdp_energy_J`` / ``ssdp_phases`` the SSDP part) and
``counters()`` (cumulative ``sg_pulses``, ``ssdp_pulses``, ``ssdp_energy_J``, ``ssdp_phases``
beside the crossbars' ``pulses`` and ``energy_J``, which include programming).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from ..crossbar.network import SpikingNetwork
from ..crossbar.neurons import first_spike_times
from ..params import Params, ParameterError, param
from .loop import StepStats, cosine_factor
from .sg import DEFAULT_SCHEDULER as SG_SCHEDULER, DigitalSG, InSituSG

__all__ = [
    "SSDPParams", "SSDPStepStats", "SSDP", "LayerSignals", "DopamineGate", "DigitalSSDP", "InSituSSDP",
    "ssdp_kernel", "ssdp_phases", "ssdp_coefficients", "synchrony", "SILENT_PAIRS", "GATES", "INSITU_FORMS",
]

Tensor = torch.Tensor
SILENT_PAIRS = ("depress", "none")
GATES = ("none", "dopamine")
INSITU_FORMS = ("dense", "coincidence")


# ----------------------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SSDPParams(Params):
    """Settings of SSDP / DA-SSDP (science.md 3.1; amplitudes in weight units per batch)."""

    _owner = "ssdp"

    A_plus: float = param(1.5e-4, unit="1", check=">=0", doc="potentiation amplitude of co-active pairs (weight units)")
    A_base: float = param(5e-5, unit="1", check=">=0", doc="depression amplitude of pairs that are not co-active (weight units)")
    sigma: float = param(1.0, unit="steps", check=">0", doc="width of the Gaussian latency kernel")
    layers: tuple = param((-1,), check=None, doc="synapse layers SSDP acts on (indices, negative from the end)")
    silent_pairs: str = param("depress", check=None, choices=SILENT_PAIRS, doc="pairs where both neurons are silent: full depression (public code) or none")
    start_epoch: int = param(0, unit="epochs", check="int>=0", doc="SSDP acts once this many epochs are done")
    anneal_epochs: int | None = param(None, unit="epochs", check="int>=1", optional=True, doc="cosine-anneal the amplitudes to 0 over this many epochs (None: constant)")
    clamp: float = param(1.0, unit="1", check=">0", doc="|dW| per batch at most (weight units)")
    gate: str = param("none", check=None, choices=GATES, doc="none (SSDP) or dopamine (DA-SSDP)")
    warmup_batches: int = param(20, unit="batches", check="int>=1", doc="DA gate: batches recorded before k is fixed")
    insitu: str = param("dense", check=None, choices=INSITU_FORMS, doc="in-situ pulse form: net dW as a dense phase, or rank-1 coincidence phases")

    def __post_init__(self) -> None:
        if isinstance(self.layers, list):  # from a TOML / JSON config
            object.__setattr__(self, "layers", tuple(self.layers))
        super().__post_init__()

    def _cross_checks(self) -> Iterator[str]:
        ok = (isinstance(self.layers, tuple) and len(self.layers) > 0
              and all(isinstance(i, int) and not isinstance(i, bool) for i in self.layers))
        if not ok:
            yield f"layers={self.layers!r} is not allowed: must be a non-empty tuple of layer indices (ints, e.g. (-1,))"

    def amplitude_factor(self, epochs_done: int) -> float:
        """Factor on ``A_plus`` and ``A_base`` after ``epochs_done`` epochs: 0 before
        ``start_epoch``, then 1, or ``0.5 * (1 + cos(pi * min(epochs_done, anneal_epochs) /
        anneal_epochs))`` with cosine annealing."""
        if epochs_done < self.start_epoch:
            return 0.0
        if self.anneal_epochs is None:
            return 1.0
        return cosine_factor(epochs_done, self.anneal_epochs)


# ----------------------------------------------------------------------------------------------------
# the kernel (pure functions)
# ----------------------------------------------------------------------------------------------------
def _check_times(pre_times: Tensor, post_times: Tensor, num_steps: int) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps={num_steps!r} must be an integer >= 1 (time steps T)")
    for name, t in (("pre_times", pre_times), ("post_times", post_times)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise ValueError(f"{name} must be a [B, N] tensor of first-spike steps, got {tuple(getattr(t, 'shape', ())) or type(t).__name__}")
        tf = t.to(torch.float64)
        if not torch.isfinite(tf).all() or bool(((tf < 0) | (tf > num_steps) | (tf != tf.round())).any()):
            raise ValueError(f"{name} must hold whole steps in [0, num_steps={num_steps}] (num_steps = silent)")
    if pre_times.shape[0] != post_times.shape[0]:
        raise ValueError(f"pre_times has batch {pre_times.shape[0]} but post_times has {post_times.shape[0]}")


def _check_amplitudes(A_plus: float, A_base: float, sigma: float, silent_pairs: str) -> None:
    for name, v, ok, text in (("A_plus", A_plus, lambda v: v >= 0, ">= 0"), ("A_base", A_base, lambda v: v >= 0, ">= 0"),
                              ("sigma", sigma, lambda v: v > 0, "> 0 (steps)")):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
            raise ValueError(f"{name}={v!r} is not allowed: must be a finite number {text}")
    if silent_pairs not in SILENT_PAIRS:
        raise ValueError(f"silent_pairs={silent_pairs!r} is not allowed: use one of {', '.join(map(repr, SILENT_PAIRS))}")


def _batch_weights(gate: Tensor | None, batch: int, dtype, device) -> Tensor:
    """Per-sample weights ``gate_b / B`` ``[B]`` (the batch mean with the gate)."""
    if gate is None:
        return torch.full((batch,), 1.0 / batch, dtype=dtype, device=device)
    if not isinstance(gate, torch.Tensor) or gate.shape != (batch,):
        raise ValueError(f"gate must be a [B] = [{batch}] tensor of per-sample factors, got {tuple(getattr(gate, 'shape', ()))}")
    if not torch.isfinite(gate).all():
        raise ValueError("gate contains NaN or infinite values")
    return gate.to(dtype=dtype, device=device) / batch


def ssdp_coefficients(num_steps: int, A_plus: float, A_base: float, sigma: float, silent_pairs: str = "depress", *,
                      dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """Coefficient ``C[t, u]`` ``[T+1, T+1]`` of a pair whose input first fired at step ``t`` and
    output at step ``u`` (``T`` = silent): ``A_plus * G`` when both fired, ``-A_base * G``
    otherwise, ``G = exp(-(u - t)**2 / (2 sigma**2))``; ``C[T, T] = 0`` with ``silent_pairs="none"``."""
    _check_amplitudes(A_plus, A_base, sigma, silent_pairs)
    T = num_steps
    steps = torch.arange(T + 1, dtype=torch.float64, device=device)
    g = torch.exp(-(steps[None, :] - steps[:, None]) ** 2 / (2.0 * sigma**2))
    fired = steps < T
    coef = torch.where(fired[:, None] & fired[None, :], A_plus * g, -A_base * g)
    if silent_pairs == "none":
        coef[T, T] = 0.0
    return coef.to(dtype)


def _one_hot(times: Tensor, num_steps: int, dtype) -> Tensor:
    return nn.functional.one_hot(times.round().long(), num_steps + 1).to(dtype)  # [B, N, T+1]


def ssdp_kernel(pre_times: Tensor, post_times: Tensor, num_steps: int, A_plus: float = 1.5e-4, A_base: float = 5e-5,
                sigma: float = 1.0, silent_pairs: str = "depress", gate: Tensor | None = None, *,
                clamp: float = 1.0) -> Tensor:
    """SSDP weight change ``dW`` ``[n_in, n_out]`` (weight units) of one batch.

    Args:
        pre_times: first-spike steps of the layer's inputs ``[B, n_in]``, whole numbers in
            ``[0, T]``, ``T`` (= ``num_steps``) when silent (see
            :func:`memsnn.crossbar.neurons.first_spike_times`).
        post_times: same for the layer's outputs ``[B, n_out]``.
        num_steps: window length ``T`` (steps).
        A_plus, A_base: potentiation / depression amplitudes (weight units, >= 0).
        sigma: width of the latency kernel (steps, > 0).
        silent_pairs: ``"depress"``: a pair where both are silent gets ``-A_base``; ``"none"``: 0.
        gate: optional per-sample factors ``[B]`` (DA-SSDP); ``None`` = 1.
        clamp: ``|dW|`` at most this (weight units).

    Returns ``clamp(mean_b[gate_b * (A_plus S G - A_base (1 - S) G)], -clamp, clamp)`` (module
    docstring), in the dtype of ``pre_times`` when floating (else the default dtype).
    """
    _check_times(pre_times, post_times, num_steps)
    if isinstance(clamp, bool) or not isinstance(clamp, (int, float)) or not clamp > 0:
        raise ValueError(f"clamp={clamp!r} is not allowed: must be a number > 0 (weight units)")
    dtype = pre_times.dtype if pre_times.is_floating_point() else torch.get_default_dtype()
    dev = pre_times.device
    coef = ssdp_coefficients(num_steps, A_plus, A_base, sigma, silent_pairs, dtype=dtype, device=dev)
    w = _batch_weights(gate, pre_times.shape[0], dtype, dev)
    P = _one_hot(pre_times.to(dev), num_steps, dtype)        # [B, n_in, T+1]
    Q = _one_hot(post_times.to(dev), num_steps, dtype)       # [B, n_out, T+1]
    M = (P @ coef) * w[:, None, None]                        # [B, n_in, T+1]
    dw = torch.einsum("biu,bju->ij", M, Q)
    return dw.clamp_(-clamp, clamp)


def ssdp_phases(pre_times: Tensor, post_times: Tensor, num_steps: int, A_plus: float = 1.5e-4, A_base: float = 5e-5,
                sigma: float = 1.0, silent_pairs: str = "depress", gate: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The unclamped :func:`ssdp_kernel` as stacked rank-1 coincidence terms.

    Returns ``rows`` ``[K, n_in]`` (0/1: the inputs of sample ``b`` whose first spike was at step
    ``t``, ``t = T`` for silent ones) and ``dw_cols`` ``[K, n_out]`` (weight units:
    ``gate_b / B * C[t, t_j]``), one term per non-empty ``(b, t)``, such that
    ``sum_k outer(rows[k], dw_cols[k])`` equals the kernel before clamping. Arguments as
    :func:`ssdp_kernel`.
    """
    _check_times(pre_times, post_times, num_steps)
    dtype = pre_times.dtype if pre_times.is_floating_point() else torch.get_default_dtype()
    dev = pre_times.device
    coef = ssdp_coefficients(num_steps, A_plus, A_base, sigma, silent_pairs, dtype=dtype, device=dev)
    w = _batch_weights(gate, pre_times.shape[0], dtype, dev)
    rows = _one_hot(pre_times.to(dev), num_steps, dtype).transpose(1, 2)       # [B, T+1, n_in]
    Q = _one_hot(post_times.to(dev), num_steps, dtype)                         # [B, n_out, T+1]
    cols = torch.einsum("bju,tu->btj", Q, coef) * w[:, None, None]             # [B, T+1, n_out]
    keep = rows.any(dim=2)
    return rows[keep], cols[keep]


def synchrony(pre_times: Tensor, post_times: Tensor, num_steps: int) -> Tensor:
    """Per-sample synchrony ``s_b = mean_ij S_bji`` ``[B]``: the fraction of (input, output) pairs
    that both fired in the window."""
    _check_times(pre_times, post_times, num_steps)
    dtype = pre_times.dtype if pre_times.is_floating_point() else torch.get_default_dtype()
    pre = (pre_times < num_steps).to(dtype).mean(1)
    post = (post_times < num_steps).to(dtype).mean(1)
    return pre * post


# ----------------------------------------------------------------------------------------------------
# DA gate
# ----------------------------------------------------------------------------------------------------
class DopamineGate:
    """DA-SSDP gate: fixed after a warm-up from the correlation of synchrony and loss.

    :meth:`record` collects per-sample synchrony ``s`` ``[B]`` and loss ``[B]``; :meth:`fit` sets
    ``k = -corr(s, loss)`` (Pearson over every recorded sample; 0 when ``s`` or the loss is
    constant) and the mean and population std of ``s``; calling the gate with a batch's synchrony
    gives ``clamp(1 + k * (s - mean) / std, 0, 2)`` ``[B]`` (all ones before :meth:`fit`, or when
    ``std = 0``). Positive correlation (high synchrony, high loss) gives ``k < 0`` and damps the
    update of high-synchrony samples (see the module docstring).

    Args:
        warmup_batches: batches to record before :attr:`ready` (the caller then calls :meth:`fit`).
    """

    def __init__(self, warmup_batches: int = 20):
        if isinstance(warmup_batches, bool) or not isinstance(warmup_batches, int) or warmup_batches < 1:
            raise ValueError(f"warmup_batches={warmup_batches!r} must be an integer >= 1")
        self.warmup_batches = warmup_batches
        self.batches = 0
        self._s: list[Tensor] = []
        self._loss: list[Tensor] = []
        self.k: float | None = None
        self.mean: float = 0.0
        self.std: float = 0.0

    @property
    def fitted(self) -> bool:
        return self.k is not None

    @property
    def ready(self) -> bool:
        """Enough batches recorded to fit (and not fitted yet)."""
        return not self.fitted and self.batches >= self.warmup_batches

    def record(self, synchrony: Tensor, loss: Tensor) -> None:
        """Record one batch: per-sample synchrony ``[B]`` and loss ``[B]`` (ignored once fitted)."""
        s = torch.as_tensor(synchrony).detach().reshape(-1).to("cpu", torch.float64)
        l = torch.as_tensor(loss).detach().reshape(-1).to("cpu", torch.float64)
        if s.shape != l.shape:
            raise ValueError(f"synchrony has {s.numel()} samples but loss has {l.numel()}")
        if not (torch.isfinite(s).all() and torch.isfinite(l).all()):
            raise ValueError("synchrony and loss must be finite")
        if self.fitted:
            return
        self._s.append(s)
        self._loss.append(l)
        self.batches += 1

    def fit(self) -> float:
        """Fix ``k``, ``mean`` and ``std`` from what was recorded; returns ``k``."""
        if not self._s:
            raise RuntimeError("DopamineGate.fit() needs recorded batches: call record() first")
        s, l = torch.cat(self._s), torch.cat(self._loss)
        if s.numel() < 2:
            raise RuntimeError(f"DopamineGate.fit() needs at least 2 recorded samples, got {s.numel()}")
        self.mean = float(s.mean())
        self.std = float(s.std(unbiased=False))
        ls = float(l.std(unbiased=False))
        if self.std <= 1e-12 * max(1.0, abs(self.mean)) or ls <= 1e-12 * max(1.0, float(l.abs().mean())):
            corr = 0.0
        else:
            corr = float(((s - self.mean) * (l - l.mean())).mean()) / (self.std * ls)
        self.k = -max(-1.0, min(1.0, corr))
        self._s, self._loss = [], []
        return self.k

    def __call__(self, synchrony: Tensor) -> Tensor:
        """Per-sample gate ``[B]`` in ``[0, 2]`` for synchrony ``[B]``."""
        s = torch.as_tensor(synchrony)
        if not self.fitted or self.std <= 0.0 or self.k == 0.0:
            return torch.ones_like(s, dtype=s.dtype if s.is_floating_point() else torch.get_default_dtype())
        return (1.0 + self.k * (s - self.mean) / self.std).clamp(0.0, 2.0)

    def __repr__(self) -> str:
        return f"DopamineGate(k={self.k}, mean={self.mean:.4g}, std={self.std:.4g}, batches={self.batches}/{self.warmup_batches})"


# ----------------------------------------------------------------------------------------------------
# the rule on a network: observing a forward pass, gating, annealing
# ----------------------------------------------------------------------------------------------------
@dataclass
class LayerSignals:
    """What SSDP needs of one layer in one batch.

    Attributes:
        layer: index into ``net.synapses`` (non-negative).
        pre_times: first-spike steps of the inputs ``[B, n_in]`` (``num_steps`` = silent).
        post_times: same of the outputs ``[B, n_out]``.
        num_steps: the window ``T`` (steps).
        gate: per-sample factors ``[B]``, or None (plain SSDP).
        A_plus, A_base: amplitudes after annealing (weight units).
    """

    layer: int
    pre_times: Tensor
    post_times: Tensor
    num_steps: int
    gate: Tensor | None
    A_plus: float
    A_base: float


@dataclass
class _Capture:
    """First-spike times seen by hooks during one forward pass."""

    num_steps: int = 0
    batch: int = 0
    inputs: dict[int, Tensor] = field(default_factory=dict)  # synapse index -> input first-spike times [B, n]
    out_times: Tensor | None = None
    logits: Tensor | None = None


class SSDP:
    """SSDP / DA-SSDP on a :class:`SpikingNetwork`, independent of where its weights live.

    :meth:`observe` watches the forward passes inside a training step (hooks, removed afterwards);
    :meth:`signals` turns what it saw into one :class:`LayerSignals` per chosen layer (recording the
    DA gate's warm-up and gating); :meth:`kernel` and :meth:`phases` give the weight change.
    :meth:`on_epoch_end` advances start / annealing.
    """

    def __init__(self, net: SpikingNetwork, params: SSDPParams | None = None):
        self.params = params or SSDPParams()
        n = len(net.synapses)
        bad = [i for i in self.params.layers if not -n <= i < n]
        if bad:
            raise ParameterError([f"layers={self.params.layers!r} is not allowed: the network has {n} synapse layers "
                                  f"(indices {-n}..{n - 1})"], "ssdp")
        self.layers = sorted({i % n for i in self.params.layers})
        if net.readout == "membrane" and n - 1 in self.layers:
            raise ParameterError([f"layers={self.params.layers!r} includes the output layer, which does not spike with "
                                  "readout='membrane': choose hidden layers or use readout='count'"], "ssdp")
        self.n_layers = n
        self.epochs_done = 0
        self.gates = {l: DopamineGate(self.params.warmup_batches) for l in self.layers} if self.params.gate == "dopamine" else {}

    # -- observing ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def observe(self, net: SpikingNetwork):
        """Context in which ``net``'s forward passes leave their first-spike times in the yielded
        capture (the last forward wins). Only first-spike times ``[B, N]`` are kept."""
        cap = _Capture()
        need = set(self.layers) | {l + 1 for l in self.layers if l + 1 < self.n_layers}
        handles = []

        def on_input(module, args):
            x = args[0]
            cap.num_steps, cap.batch = int(x.shape[0]), int(x.shape[1])
            cap.inputs = {}
            if 0 in need:
                cap.inputs[0] = first_spike_times(x.detach())

        def make_syn_hook(i):
            def hook(module, args):
                if cap.num_steps:
                    x = args[0].detach().reshape(cap.num_steps, cap.batch, -1)
                    cap.inputs[i] = first_spike_times(x)
            return hook

        def on_output(module, args, out):
            cap.out_times = first_spike_times(out.spikes.detach())
            cap.logits = out.logits.detach()

        handles.append(net.register_forward_pre_hook(on_input))
        handles.append(net.register_forward_hook(on_output))
        for i in sorted(need - {0}):
            handles.append(net.synapses[i].register_forward_pre_hook(make_syn_hook(i)))
        try:
            yield cap
        finally:
            for h in handles:
                h.remove()

    # -- from a capture to per-layer signals -----------------------------------------------------
    def signals(self, cap: _Capture, y: Tensor) -> list[LayerSignals]:
        """Per chosen layer, its times, DA gate and amplitudes for this batch (records the gate's
        warm-up with the per-sample cross-entropy of ``cap``'s logits against ``y``). Empty before
        ``start_epoch`` or when the annealed amplitudes are 0."""
        if cap.out_times is None:
            raise RuntimeError("SSDP saw no forward pass of the network during the training step")
        p = self.params
        T = cap.num_steps
        times = []
        for l in self.layers:
            post = cap.inputs[l + 1] if l + 1 < self.n_layers else cap.out_times
            times.append((l, cap.inputs[l], post))
        gates: dict[int, Tensor | None] = {l: None for l in self.layers}
        if self.gates:
            loss = nn.functional.cross_entropy(cap.logits.float(), y.to(cap.logits.device), reduction="none")
            for l, pre, post in times:
                gate = self.gates[l]
                s = synchrony(pre, post, T)
                if gate.fitted:
                    gates[l] = gate(s)
                else:
                    gate.record(s, loss)
                    if gate.ready:
                        gate.fit()
        f = p.amplitude_factor(self.epochs_done)
        if f <= 0.0 or (p.A_plus == 0.0 and p.A_base == 0.0):
            return []
        return [LayerSignals(l, pre, post, T, gates[l], p.A_plus * f, p.A_base * f) for l, pre, post in times]

    def kernel(self, sig: LayerSignals) -> Tensor:
        """``dW`` ``[n_in, n_out]`` (weight units) of one layer: :func:`ssdp_kernel`."""
        return ssdp_kernel(sig.pre_times, sig.post_times, sig.num_steps, sig.A_plus, sig.A_base, self.params.sigma,
                           self.params.silent_pairs, sig.gate, clamp=self.params.clamp)

    def phases(self, sig: LayerSignals) -> tuple[Tensor, Tensor]:
        """Rank-1 terms ``(rows [K, n_in], dw_cols [K, n_out])`` of one layer: :func:`ssdp_phases`."""
        return ssdp_phases(sig.pre_times, sig.post_times, sig.num_steps, sig.A_plus, sig.A_base, self.params.sigma,
                           self.params.silent_pairs, sig.gate)

    def on_epoch_end(self, epoch: int) -> None:
        self.epochs_done = int(epoch)


# ----------------------------------------------------------------------------------------------------
# loop methods
# ----------------------------------------------------------------------------------------------------
@dataclass
class SSDPStepStats(StepStats):
    """:class:`StepStats` of a gradient step plus SSDP: ``pulses``, ``energy_J`` and ``phases`` are
    totals; the ``ssdp_*`` fields are the SSDP part (the gradient's part is the difference)."""

    ssdp_pulses: int = 0
    ssdp_energy_J: float = 0.0
    ssdp_phases: int = 0


def _has_pulses(schedule) -> bool:
    """Whether any phase of ``schedule`` sends a pulse."""
    for ph in schedule:
        parts = (ph.plus, ph.minus) if hasattr(ph, "plus") else (ph.cols_plus, ph.cols_minus)
        if any(t is not None and bool((t != 0).any()) for t in parts):
            return True
    return False


def _name(base: str, params: SSDPParams) -> str:
    return ("DA-SSDP " if params.gate == "dopamine" else "SSDP ") + base


class DigitalSSDP(DigitalSG):
    """Surrogate-gradient training on float weights (:class:`DigitalSG`) plus SSDP after each step.

    Args:
        net, encoder, lr, optimizer: as :class:`~memsnn.learning.sg.DigitalSG`; the SSDP layers
            must be ``nn.Linear`` (float weights, ``weight`` ``[out, in]``).
        ssdp: :class:`SSDPParams`.
    """

    def __init__(self, net: SpikingNetwork, encoder, *, lr: float = 2e-3, optimizer: str = "adam",
                 ssdp: SSDPParams | None = None):
        super().__init__(net, encoder, lr=lr, optimizer=optimizer)
        self.ssdp = SSDP(net, ssdp)
        for l in self.ssdp.layers:
            if not isinstance(net.synapses[l], nn.Linear):
                raise ValueError(f"DigitalSSDP needs float nn.Linear synapses; layer {l} is {type(net.synapses[l]).__name__}")
        self.name = _name("digital", self.ssdp.params)

    def train_batch(self, x: Tensor, y: Tensor, generator: torch.Generator) -> SSDPStepStats:
        with self.ssdp.observe(self.net) as cap:
            st = super().train_batch(x, y, generator)
        stats = SSDPStepStats(**vars(st))
        if stats.loss is None or not math.isfinite(stats.loss):
            return stats
        with torch.no_grad():
            for sig in self.ssdp.signals(cap, y):
                weight = self.net.synapses[sig.layer].weight  # [out, in]
                weight.add_(self.ssdp.kernel(sig).t().to(weight.dtype))
        return stats

    def on_epoch_end(self, epoch: int) -> None:
        super().on_epoch_end(epoch)
        self.ssdp.on_epoch_end(epoch)


class InSituSSDP(InSituSG):
    """In-situ surrogate-gradient training (:class:`InSituSG`) plus SSDP as pulses after each step.

    Args:
        net, model, encoder, params, scheduler, crossbar, periphery, seed: as
            :class:`~memsnn.learning.sg.InSituSG`.
        ssdp: :class:`SSDPParams` (``insitu`` picks dense or coincidence phases; module docstring).

    Without a ``scheduler``, the coincidence form uses InSituSG's default with ``step="nominal"``
    (a rank-1 phase cannot give each device its own step).
    """

    def __init__(self, net: SpikingNetwork, model: Any, encoder, *, ssdp: SSDPParams | None = None, **kwargs: Any):
        ssdp = ssdp or SSDPParams()
        SSDP(net, ssdp)  # validate the layers before programming any array
        if ssdp.insitu == "coincidence" and kwargs.get("scheduler") is None:
            kwargs["scheduler"] = SG_SCHEDULER.replace(step="nominal")
        super().__init__(net, model, encoder, **kwargs)
        self.ssdp = SSDP(self.net, ssdp)
        if ssdp.insitu == "coincidence":
            for l in self.ssdp.layers:
                if self.schedulers[l].params.step != "nominal":
                    raise ParameterError([f"insitu='coincidence' needs the scheduler's step='nominal' (rank-1 phases), "
                                          f"got step={self.schedulers[l].params.step!r}; use insitu='dense'"], "ssdp")
        self.name = _name("in-situ", ssdp)
        self._seed = int(kwargs.get("seed", 0))
        self._gens: dict[str, torch.Generator] = {}
        self.sg_totals = {"pulses": 0, "energy_J": 0.0, "phases": 0}
        self.ssdp_totals = {"pulses": 0, "energy_J": 0.0, "phases": 0}

    def train_batch(self, x: Tensor, y: Tensor, generator: torch.Generator) -> SSDPStepStats:
        with self.ssdp.observe(self.net) as cap:
            st = super().train_batch(x, y, generator)
        stats = SSDPStepStats(**vars(st))
        self.sg_totals["pulses"] += st.pulses
        self.sg_totals["energy_J"] += st.energy_J
        self.sg_totals["phases"] += st.phases
        if stats.loss is None or not math.isfinite(stats.loss):
            return stats
        for sig in self.ssdp.signals(cap, y):
            xbar, sched = self.net.synapses[sig.layer].crossbar, self.schedulers[sig.layer]
            gen = self._rounding_generator(xbar.device)
            if self.ssdp.params.insitu == "dense":
                schedule = sched.dense(xbar, self.ssdp.kernel(sig), generator=gen)
            else:
                schedule = sched.rank1(xbar, *self.ssdp.phases(sig), generator=gen)
            if not _has_pulses(schedule):
                continue  # nothing to program (and no draws from the crossbar's noise stream)
            # applied without the scheduler's refresh step: refreshes stay with the gradient updates
            res = xbar.apply_schedule(schedule)
            stats.ssdp_pulses += res.pulses + res.half_select_pulses
            stats.ssdp_energy_J += res.energy_J
            stats.ssdp_phases += res.hardware_phases
        stats.pulses += stats.ssdp_pulses
        stats.energy_J += stats.ssdp_energy_J
        stats.phases += stats.ssdp_phases
        self.ssdp_totals["pulses"] += stats.ssdp_pulses
        self.ssdp_totals["energy_J"] += stats.ssdp_energy_J
        self.ssdp_totals["phases"] += stats.ssdp_phases
        return stats

    def _rounding_generator(self, device: torch.device) -> torch.Generator:
        """SSDP's own stream for stochastic rounding (seeded from ``seed``), so that the gradient
        updates' rounding draws stay those of :class:`InSituSG` with the same seed."""
        key = str(device)
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self._seed + 104729)
        return self._gens[key]

    def on_epoch_end(self, epoch: int) -> None:
        super().on_epoch_end(epoch)
        self.ssdp.on_epoch_end(epoch)

    def counters(self) -> dict[str, float]:
        """The crossbars' cumulative ``pulses`` / ``energy_J`` (programming included), plus the
        training updates split into ``sg_pulses`` and ``ssdp_pulses`` / ``ssdp_energy_J`` /
        ``ssdp_phases``."""
        return {**super().counters(), "sg_pulses": self.sg_totals["pulses"],
                "ssdp_pulses": self.ssdp_totals["pulses"], "ssdp_energy_J": self.ssdp_totals["energy_J"],
                "ssdp_phases": self.ssdp_totals["phases"]}
