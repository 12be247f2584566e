"""CSDP: contrastive-signal-dependent plasticity (science.md section 3.3), float and in-situ.

Sources (facts only): Ororbia, "Contrastive signal-dependent plasticity: self-supervised learning
in spiking neural circuits", Science Advances 10 (2024), arXiv 2303.18187; Merkel & Ororbia,
"Contrastive learning in memristor-based neuromorphic systems", arXiv 2409.10887 (dual-memristor
synapses learning simple logic functions - the smoke task of the tests).

Network. Features ``x`` ``[B, F]`` in [0, 1] are rate coded (a Bernoulli spike per step with
probability ``x``; optionally also ``1 - x``, ``complement``) over ``T = num_steps`` steps of
``dt`` seconds. A stack of CSDP layers follows, feed-forward only; layer ``l`` sees the spikes of
layer ``l - 1`` (the input for ``l = 0``) and, with supervised negatives, ``context_copies``
copies of the one-hot label ("context units", a spike every step on the clamped label's rows).
Weights are ``[in, out]`` (rows = inputs), in [-1, 1]. Each layer is a population of LIF neurons::

    I_j(t)  = sum_i pre_i(t) W_ij                        (a crossbar read per step in-situ)
    v_j(t)  = beta v_j(t-1) + (1 - beta) R_m I_j(t),   beta = exp(-dt / tau_m)
    post_j(t) = 1 if v_j(t) > v_threshold (then v_j = 0 and ``refractory`` steps at rest)
    z_j(t)  = exp(-dt / tau_trace) z_j(t-1) + post_j(t)          post-synaptic trace

The rule, per time step and per layer, for a batch of ``B`` samples with ``y_b = 1`` for a
positive and ``0`` for a negative sample (:func:`csdp_delta_w`)::

    goodness_b(t) = sum_j z_bj(t)**2 ;   p_b(t) = sigmoid(goodness_b(t) - theta)
    loss          = mean_{b, t} BCE(p_b(t), y_b)
    m_bj(t)       = (p_b(t) - y_b) * 2 z_bj(t) / B                      (= dL/dz)
    dW_ij(t)      = -eta * R_m * sum_b pre_bi(t-1) m_bj(t)
                    - lambda / B * sum_b (1 - pre_bi(t-1)) post_bj(t)

``pre(t-1)`` is the input spike one step earlier (zero before the first step). The second term
slowly depresses synapses from silent inputs onto firing neurons; it is averaged over the batch
here (as the first term is, through ``m``), which keeps ``lambda`` independent of the batch size.
With ``update_every="batch"`` (default) the ``T`` per-step changes are summed and applied once
per batch and layer (one scheduler call each); with ``update_every="step"`` each step's change is
applied at once, and the next step runs on the changed weights (``batch_size=1`` with
``"batch"`` gives per-sample accumulation). Layers learn independently: there is no top-down or
lateral input here (the published circuit has both), so every layer is run over the whole window
before the next one - exact, since a layer never depends on the layers above it.

Negative samples (``negatives``): ``"label"`` (supervised) - the same input with a wrong label,
drawn uniformly among the others, clamped into the context units; ``"mix"`` (unsupervised) -
``mask * x + (1 - mask) * x'``, ``x'`` another sample of the batch and ``mask`` a random 0/1
mask per feature (with one sample, ``x'`` is ``x`` with its features shuffled).

Readout (``readout``): ``"classifier"`` - a layer from the CSDP layers' firing rates (mean spikes
over the window, ``[B, sum(hidden)]``, plus a constant-1 bias input) to ``C`` class scores,
trained with a local delta rule ``dW_r = readout_lr * r^T (onehot(y) - softmax(r W_r)) / B``; with
label context the readout sees the network run without context (all context rows silent, as at
test time), which costs a third pass per batch. ``"goodness"`` (needs ``negatives="label"``) - run
once per class with that label clamped and predict the label with the highest goodness (summed
over layers, averaged over time); nothing else is trained.

Optimisers (``optimizer``): ``"sgd"`` - plain ``W += dW``; ``"sign"`` (Manhattan) - float:
``W += sign_step * sign(dW)`` where ``|dW| > sign_step / 2``; in-situ: one pulse where the change
exceeds ``sign_threshold`` pulse steps; ``"adam"`` - Adam (float only) on the gradient
``-dW / eta`` with learning rate ``eta``, as the public code.

In-situ (``device`` given): every layer and the readout are a
:class:`~memsnn.crossbar.Crossbar` (differential pair, ``scale = 1`` so ``|w| <= 1``); the forward
pass reads the arrays (``crossbar.vmm``: binary spikes for the CSDP layers, analog rates through
the DAC for the readout), so read noise, drift and device spread apply. Updates are dense phases
through one :class:`~memsnn.learning.scheduler.PulseScheduler` per array (stochastic rounding by
default: CSDP changes are mostly below one pulse; SET-only pairs with refresh unless the
scheduler says ``bipolar``; state-aware steps, :data:`DEFAULT_SCHEDULER`). Measured on digits,
srtio3, 128 hidden, 10 epochs, seeds 0-2 (final test accuracy): nominal steps 63.3 / 77.3 /
82.0 %, state-aware 74.4 / 82.9 / 73.8 %; state-aware with ``quantisation="accumulate"`` (mixed
precision) 77.6 / 73.1 / 80.4 % with a tenth of the pulses (4.7e6 instead of 4.3e7). All three
swing by up to +-10 points from epoch to epoch; float weights reach 93 %. Initial weights are
programmed with ``program`` (write-verify by default; pulses and energy counted).

Drift. SET-only pairs climb until a refresh, so each weight is a small difference of two large
conductances, and both drift (``G ~ t ** -nu`` from each device's last pulse, ``nu`` spread 20 %
from device to device): the difference takes an error of a few % of the whole conductance.
``memsnn ablate`` put drift during training at -16 points for CSDP on digits. The in-situ default
therefore refreshes every pair every 10 updates (``refresh_every=10``: reset both devices and
write the difference from the bottom, so the common mode stays low): measured on digits (compare
setting, srtio3 defaults, seeds 0-2, ``memsnn sweep examples/remedies_digits.toml --set
rule.name=csdp --grid scheduler.refresh_every=none,10``) 76.4 +- 5.2 % with refreshes only near
``g_max`` against 89.2 +- 0.6 % with it (float 93.3 %; every 5 updates 90.0 %, every 20 85.8 %,
seed 0), at 12x the pulses (2925 instead of 242 per synapse and epoch). The accuracies of the
paragraph above were measured before this default.

Defaults (:class:`CSDPParams`) and where they come from:

- published (science.md 3.3, Ororbia 2024) and kept: ``num_steps = 50``, ``dt = 3 ms``,
  ``tau_m = 100 ms``, ``tau_trace = 13 ms``, ``v_threshold = 0.055``, ``r_m = 0.1``,
  ``lam = 5e-5``, weights in [-1, 1] (``w_init = 1``: initial weights over the whole range),
  ``eta = 0.002`` with Adam.
- tuned here on sklearn digits (64 inputs, 128-neuron layers; not published): ``theta = 50``
  (published 10, for far larger layers: with 10 the layer went almost silent), ``current_gain = 3``
  (with the published constants 64 inputs barely charge the 100 ms membrane in 50 steps),
  ``eta = 0.02`` for plain SGD / sign, ``readout_lr`` (0.3 SGD / sign, 0.01 Adam),
  ``context_copies = 2``, ``refractory = 0``, ``sign_step``. The readout's inputs are normalised
  per sample by the highest rate (periphery), a choice made here. See :class:`CSDPParams`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from ..crossbar.array import Crossbar, CrossbarParams
from ..crossbar.periphery import PeripheryParams
from ..device_models import DeviceModel, make_device
from ..params import Params, param
from .loop import Method, StepStats
from .scheduler import PulseScheduler, SchedulerParams, UpdateStats

__all__ = ["CSDPParams", "CSDP", "CSDPUpdate", "csdp_delta_w", "OPTIMIZERS", "NEGATIVES", "READOUTS"]

#: in-situ default: write-verify refresh of every pair every 10 updates (see the module docstring,
#: "Drift"), state-aware steps
DEFAULT_SCHEDULER = SchedulerParams(step="state_aware", refresh_method="write_verify", refresh_every=10)

Tensor = torch.Tensor
OPTIMIZERS = ("sgd", "sign", "adam")
NEGATIVES = ("label", "mix")
READOUTS = ("classifier", "goodness")

#: learning rates used when ``eta`` / ``readout_lr`` are None: (CSDP layers, readout) per optimiser
_DEFAULT_LR = {"adam": (0.002, 0.01), "sgd": (0.02, 0.3), "sign": (0.02, 0.3)}


@dataclass(frozen=True)
class CSDPParams(Params):
    """Parameters of :class:`CSDP` (provenance of each default in the module docstring)."""

    _owner = "CSDP"

    num_steps: int = param(50, unit="steps", check="int>=1", doc="presentation window T (published 50)")
    dt: float = param(3e-3, unit="s", check=">0", doc="time step (published 3 ms)")
    tau_m: float = param(100e-3, unit="s", check=">0", doc="membrane time constant (published 100 ms)")
    tau_trace: float = param(13e-3, unit="s", check=">0", doc="post-synaptic trace time constant (published 13 ms)")
    v_threshold: float = param(0.055, unit="V", check=">0", doc="LIF firing threshold (published 0.055)")
    r_m: float = param(0.1, unit="ohm", check=">0", doc="membrane resistance R_m: scales the input current and the update (published 0.1)")
    current_gain: float = param(3.0, unit="1", check=">0", doc="gain on the synaptic current before the membrane (periphery): 1 = the published model; 3 tuned for 64-input digits")
    refractory: int = param(0, unit="steps", check="int>=0", doc="steps a neuron rests after a spike (not published; 0)")
    theta: float = param(50.0, unit="1", check=">=0", doc="goodness threshold: p = sigmoid(sum_j z_j^2 - theta) (published 10; 50 tuned for 128-neuron layers on digits)")
    eta: float | None = param(None, unit="1", check=">0", optional=True, doc="CSDP learning rate (None: 0.002 for adam as published; 0.02 for sgd/sign, tuned)")
    lam: float = param(5e-5, unit="1", check=">=0", doc="lambda: depression of silent-input synapses onto firing neurons, per step (published 5e-5)")
    w_init: float = param(1.0, unit="1", check=">0", doc="initial weights uniform in [-w_init, w_init] (1: the range of the public code)")
    negatives: str = param("label", check=None, choices=NEGATIVES, doc="negative samples: wrong label in the context units, or a masked mix of two inputs")
    context_copies: int = param(2, unit="1", check="int>=1", doc="copies of the one-hot label context rows per layer (tuned)")
    complement: bool = param(False, check=None, choices=(True, False), doc="also rate-code 1 - x (ON/OFF inputs, 2 F rows)")
    update_every: str = param("batch", check=None, choices=("batch", "step"), doc="apply the summed change once per batch, or every time step")
    readout: str = param("classifier", check=None, choices=READOUTS, doc="delta-rule classifier on the firing rates, or highest goodness over clamped labels")
    readout_lr: float | None = param(None, unit="1", check=">0", optional=True, doc="delta-rule learning rate of the classifier (None: 0.01 adam, 0.3 sgd/sign; tuned)")
    seconds_per_step: float = param(1e-3, unit="s", check=">=0", doc="wall-clock time per simulated step on hardware (drift during training; the loop's 1 ms convention, not dt)")
    sign_step: float = param(0.005, unit="1", check=">0", doc="float sign optimiser: weight change per update (about one srtio3 pulse)")
    adam_betas: tuple = param((0.9, 0.999), check=None, doc="Adam's (beta1, beta2) for optimizer='adam'")

    def _cross_checks(self) -> Iterator[str]:
        if self.w_init > 1:
            yield f"w_init={self.w_init!r} must be <= 1 (weights live in [-1, 1])"
        if self.readout == "goodness" and self.negatives != "label":
            yield (f"readout='goodness' needs negatives='label' (the label is clamped into context units), "
                   f"got negatives={self.negatives!r}")
        b = self.adam_betas
        if not (isinstance(b, (tuple, list)) and len(b) == 2 and all(isinstance(v, (int, float)) and 0 <= v < 1 for v in b)):
            yield f"adam_betas={b!r} must be two numbers in [0, 1)"

    @property
    def beta(self) -> float:
        """Membrane decay per step ``exp(-dt / tau_m)``."""
        return math.exp(-self.dt / self.tau_m)

    @property
    def trace_decay(self) -> float:
        """Trace decay per step ``exp(-dt / tau_trace)``."""
        return math.exp(-self.dt / self.tau_trace)

    def learning_rates(self, optimizer: str) -> tuple[float, float]:
        """``(eta, readout_lr)`` for ``optimizer``, with the defaults filled in."""
        eta0, ro0 = _DEFAULT_LR[optimizer]
        return (self.eta if self.eta is not None else eta0,
                self.readout_lr if self.readout_lr is not None else ro0)


@dataclass
class CSDPUpdate:
    """What :func:`csdp_delta_w` computed for one layer."""

    dw: Tensor  # [in, out] desired weight change, summed over the steps given
    goodness: Tensor  # [T, B] sum_j z_j^2
    p: Tensor  # [T, B] sigmoid(goodness - theta)
    loss: float  # mean BCE(p, y) over steps and samples


def csdp_delta_w(
    pre: Tensor,
    post: Tensor,
    trace: Tensor,
    positive: Tensor,
    *,
    eta: float,
    r_m: float,
    lam: float,
    theta: float,
    pre_before: Tensor | None = None,
) -> CSDPUpdate:
    """The CSDP weight change of one layer (equations in the module docstring).

    Args:
        pre: input spikes ``[T, B, in]`` (0/1) at steps ``0 .. T-1``.
        post: output spikes ``[T, B, out]`` (0/1).
        trace: post-synaptic traces ``z`` ``[T, B, out]``.
        positive: ``[B]`` 1 for a positive sample, 0 for a negative one (float or bool).
        eta, r_m, lam, theta: learning rate, membrane resistance, silent-input depression,
            goodness threshold.
        pre_before: input spikes ``[B, in]`` of the step before ``pre[0]`` (default zeros):
            ``pre(t-1)`` for the first step.

    Returns:
        :class:`CSDPUpdate` with ``dw`` ``[in, out]`` summed over the ``T`` steps.
    """
    if pre.dim() != 3 or post.dim() != 3 or trace.shape != post.shape or pre.shape[:2] != post.shape[:2]:
        raise ValueError(f"pre [T, B, in], post and trace [T, B, out] must agree, got {tuple(pre.shape)}, "
                         f"{tuple(post.shape)}, {tuple(trace.shape)}")
    T, B, n_in = pre.shape
    y = positive.to(trace.dtype).reshape(1, B)
    if positive.numel() != B:
        raise ValueError(f"positive must have one entry per sample ({B}), got {positive.numel()}")
    first = pre.new_zeros(1, B, n_in) if pre_before is None else pre_before.reshape(1, B, n_in).to(pre.dtype)
    prev = torch.cat((first, pre[:-1])) if T > 1 else first  # pre(t-1)  [T, B, in]
    good = (trace * trace).sum(-1)  # [T, B]
    p = torch.sigmoid(good - theta)
    loss = float(torch.nn.functional.binary_cross_entropy(p, y.expand_as(p)).item()) if p.numel() else 0.0
    m = (p - y).unsqueeze(-1) * 2.0 * trace / B  # [T, B, out] = dL/dz
    prev2 = prev.reshape(T * B, n_in)
    dw = -eta * r_m * (prev2.T @ m.reshape(T * B, -1))
    if lam:
        dw -= (lam / B) * ((1.0 - prev2).T @ post.reshape(T * B, -1).to(dw.dtype))
    return CSDPUpdate(dw, good, p, loss)


class _Adam:
    """Adam on one float tensor (the public CSDP code's optimiser; float baseline only)."""

    def __init__(self, shape: tuple[int, ...], lr: float, betas: tuple[float, float], eps: float = 1e-8,
                 device: torch.device | None = None):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = torch.zeros(shape, device=device)
        self.v = torch.zeros(shape, device=device)
        self.t = 0

    def step(self, grad: Tensor) -> Tensor:
        """The change ``-lr * m_hat / (sqrt(v_hat) + eps)`` for gradient ``grad``."""
        self.t += 1
        self.m.mul_(self.b1).add_(grad, alpha=1 - self.b1)
        self.v.mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
        m_hat = self.m / (1 - self.b1**self.t)
        v_hat = self.v / (1 - self.b2**self.t)
        return -self.lr * m_hat / (v_hat.sqrt() + self.eps)


class CSDP(Method):
    """A CSDP-trained spiking network with a local readout, on float weights or in-situ.

    Args:
        n_features: features per sample ``F`` (in [0, 1]; values outside are clipped).
        n_classes: number of classes ``C`` (>= 2).
        hidden: neurons per CSDP layer, e.g. ``(128,)`` or ``(128, 64)``.
        device: ``None`` for float weights, or a device preset name (``"srtio3"``, ``"ideal"``,
            ...) or :class:`~memsnn.device_models.DeviceModel` for in-situ learning.
        optimizer: ``"sgd"`` (plain), ``"sign"`` (Manhattan) or ``"adam"`` (float only).
        params: :class:`CSDPParams`; ``**overrides`` change single fields.
        scheduler: :class:`PulseScheduler` params (or a scheduler whose params are copied; one
            scheduler per array is made). ``optimizer="sign"`` sets ``quantisation="sign"``.
        crossbar_params, periphery: passed to every :class:`~memsnn.crossbar.Crossbar`
            (the mapping must be ``"differential"`` or ``"reference"``: weights are signed).
        program: how the initial weights are written (``"write_verify"``, ``"open_loop"``,
            ``"direct"``).
        torch_device: where tensors live; seed: initial weights and the crossbars' generators.
        backend: ``"native"`` crossbars or ``"aihwkit"`` analog tiles
            (:mod:`memsnn.interop.aihwkit_backend`; CPU only, no pulse amplitudes or IR drop).

    Public state: ``weights()`` (list of ``[in, out]`` per CSDP layer plus the readout),
    ``crossbars()``, ``goodness(x, labels)``, ``rates(x)``, ``csdp_step(...)``.
    """

    name = "csdp"

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        hidden: tuple[int, ...] | list[int] = (128,),
        *,
        device: str | DeviceModel | None = None,
        optimizer: str = "sgd",
        params: CSDPParams | None = None,
        scheduler: PulseScheduler | SchedulerParams | None = None,
        crossbar_params: CrossbarParams | None = None,
        periphery: PeripheryParams | None = None,
        program: str = "write_verify",
        torch_device: torch.device | str = "cpu",
        seed: int = 0,
        backend: str = "native",
        **overrides: Any,
    ):
        for nm, v, lo in (("n_features", n_features, 1), ("n_classes", n_classes, 2)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{nm}={v!r} must be an integer >= {lo}")
        if isinstance(hidden, int) or not isinstance(hidden, (tuple, list)) or not hidden or any(
                isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden={hidden!r} must be a non-empty tuple of integers >= 1 (neurons per CSDP layer)")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r} is not allowed: use one of {', '.join(map(repr, OPTIMIZERS))}")
        if device is not None and optimizer == "adam":
            raise ValueError("optimizer='adam' needs float weights (device=None): a crossbar cannot hold Adam's "
                             "per-synapse moments; use 'sgd' or 'sign' in-situ")
        if program not in ("write_verify", "open_loop", "direct"):
            raise ValueError(f"program={program!r} is not allowed: use 'write_verify', 'open_loop' or 'direct'")
        self.params = p = CSDPParams.resolve(params, overrides)
        self.optimizer = optimizer
        self.eta, self.readout_lr = p.learning_rates(optimizer)
        self.n_features, self.n_classes, self.hidden = n_features, n_classes, tuple(hidden)
        self.torch_device = torch.device(torch_device)
        self.n_ctx = n_classes * p.context_copies if p.negatives == "label" else 0
        n_x = n_features * (2 if p.complement else 1)
        self.layer_shapes = [(n_in + self.n_ctx, n_out) for n_in, n_out in zip((n_x,) + self.hidden[:-1], self.hidden)]
        self.readout_shape = (sum(self.hidden) + 1, n_classes)  # + constant bias input
        passes = 3 if (p.negatives == "label" and p.readout == "classifier") else 2
        self.seconds_per_sample = p.num_steps * p.seconds_per_step * passes
        gen = torch.Generator().manual_seed(seed)
        shapes = self.layer_shapes + ([self.readout_shape] if p.readout == "classifier" else [])
        w0 = [p.w_init * (2 * torch.rand(s, generator=gen) - 1) for s in shapes]
        if p.readout == "classifier":
            w0[-1].zero_()
        self.xbars: list[Crossbar] = []
        self.schedulers: list[PulseScheduler] = []
        self.w: list[Tensor] = []
        self._adam: list[_Adam] = []
        if device is None:
            self.w = [w.to(self.torch_device) for w in w0]
            if optimizer == "adam":
                lrs = [self.eta] * len(self.layer_shapes) + [self.readout_lr] * (len(shapes) - len(self.layer_shapes))
                self._adam = [_Adam(s, lr, tuple(p.adam_betas), device=self.torch_device) for s, lr in zip(shapes, lrs)]
            self.name = f"csdp-float-{optimizer}"
        else:
            model = make_device(device) if isinstance(device, str) else device
            if not isinstance(model, DeviceModel):
                raise TypeError(f"device must be None, a preset name or a DeviceModel, got {type(device).__name__}")
            xp = crossbar_params or CrossbarParams()
            if xp.mapping == "unipolar":
                raise ValueError("crossbar_params.mapping='unipolar' cannot hold CSDP's signed weights: use "
                                 "'differential' or 'reference'")
            # write-verify refresh by default: OR on srtio3 learned for 4/4 seeds with it, 3/4 with
            # the scheduler's open-loop default (see learning/scheduler.py); state-aware steps
            sp = scheduler.params if isinstance(scheduler, PulseScheduler) else (scheduler or DEFAULT_SCHEDULER)
            if not isinstance(sp, SchedulerParams):
                raise TypeError(f"scheduler must be a PulseScheduler, SchedulerParams or None, got {type(scheduler).__name__}")
            if optimizer == "sign":
                sp = sp.replace(quantisation="sign")
            elif sp.quantisation == "sign":
                raise ValueError("scheduler quantisation='sign' with optimizer='sgd': use optimizer='sign' for Manhattan updates")
            from ..interop.aihwkit_backend import make_crossbar

            for k, (s, w) in enumerate(zip(shapes, w0)):
                xbar = make_crossbar(*s, model, backend=backend, params=xp, periphery=periphery, scale=1.0,
                                     device=self.torch_device, seed=seed + 1000 * k)
                xbar.program(w.to(self.torch_device, xbar.dtype), method=program)
                self.xbars.append(xbar)
                self.schedulers.append(PulseScheduler(sp))
            self.name = f"csdp-{model.preset}-{optimizer}"

    # ------------------------------------------------------------------------------------------------
    # weights
    # ------------------------------------------------------------------------------------------------
    @property
    def in_situ(self) -> bool:
        return bool(self.xbars)

    def crossbars(self) -> list[Crossbar]:
        return list(self.xbars)

    def weights(self) -> list[Tensor]:
        """Weights ``[in, out]`` of every CSDP layer, then the readout's (noise-free reads in-situ)."""
        return [w.clone() for w in self.w] if not self.in_situ else [x.weights() for x in self.xbars]

    def set_weights(self, ws: list[Tensor], *, method: str = "write_verify") -> None:
        """Replace all weights (same order and shapes as :meth:`weights`; clipped to [-1, 1]);
        in-situ they are programmed with ``method``."""
        cur = self.weights()
        if not isinstance(ws, (list, tuple)) or len(ws) != len(cur):
            raise ValueError(f"ws must be a list of {len(cur)} tensors (CSDP layers, then the readout)")
        for k, (w, c) in enumerate(zip(ws, cur)):
            if not isinstance(w, torch.Tensor) or w.shape != c.shape:
                raise ValueError(f"ws[{k}] must have shape {tuple(c.shape)} = [in, out], got {tuple(getattr(w, 'shape', ()))}")
            w = w.to(self.torch_device, torch.float32).clamp(-1.0, 1.0)
            if self.in_situ:
                self.xbars[k].program(w.to(self.xbars[k].dtype), method=method)
            else:
                self.w[k] = w.clone()

    def _read(self, k: int, x: Tensor, binary: bool) -> Tensor:
        """``x [N, in] @ W_k`` - a float product or a crossbar read."""
        if not self.in_situ:
            return x @ self.w[k]
        xbar = self.xbars[k]
        return xbar.vmm(x.to(xbar.dtype), binary=binary).to(torch.float32)

    def _apply(self, k: int, dw: Tensor, gen: torch.Generator | None) -> UpdateStats:
        """Apply the desired change ``dw`` ``[in, out]`` to weight matrix ``k`` with the optimiser."""
        if self.in_situ:
            return self.schedulers[k].update(self.xbars[k], dw, generator=gen)
        lr = self.eta if k < len(self.layer_shapes) else self.readout_lr
        if self.optimizer == "sgd":
            step = dw
        elif self.optimizer == "sign":
            step = self.params.sign_step * torch.sign(dw) * (dw.abs() > self.params.sign_step / 2)
        else:
            step = self._adam[k].step(-dw / lr)
        self.w[k] = (self.w[k] + step).clamp_(-1.0, 1.0)
        return UpdateStats()

    # ------------------------------------------------------------------------------------------------
    # encoding and the forward pass
    # ------------------------------------------------------------------------------------------------
    def _check_x(self, x: Tensor) -> Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x must be a tensor [B, {self.n_features}], got {tuple(getattr(x, 'shape', ()))}")
        x = x.to(self.torch_device, torch.float32)
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values")
        return x.clamp(0.0, 1.0)

    def _check_labels(self, y: Tensor, n: int, name: str = "y") -> Tensor:
        if not isinstance(y, torch.Tensor) or y.dim() != 1 or len(y) != n:
            raise ValueError(f"{name} must be a 1-D tensor with one label per sample ({n}), got {tuple(getattr(y, 'shape', ()))}")
        y = y.to(self.torch_device, torch.int64)
        if n and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
            raise ValueError(f"{name} must hold labels in 0..{self.n_classes - 1}, got {int(y.min())}..{int(y.max())}")
        return y

    def _gen(self, generator) -> torch.Generator | None:
        if isinstance(generator, torch.Generator) and generator.device.type == self.torch_device.type:
            return generator
        return None

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Input spikes ``[T, B, F]`` (``2F`` with ``complement``): Bernoulli(x) per step; perturbed
        only while :func:`~memsnn.learning.loop.accuracy` evaluates with ``perturb``."""
        x = self._check_x(x)
        if self.params.complement:
            x = torch.cat((x, 1.0 - x), dim=1)
        u = torch.rand((self.params.num_steps,) + tuple(x.shape), generator=self._gen(generator),
                       device=x.device, dtype=x.dtype)
        return self.perturb_spikes((u < x).to(x.dtype))

    def _context(self, labels: Tensor | None, B: int) -> Tensor:
        """Context rows ``[B, n_ctx]``: ``context_copies`` one-hots of ``labels`` (zeros for None)."""
        ctx = torch.zeros(B, self.n_ctx, device=self.torch_device)
        if labels is not None and self.n_ctx:
            ctx.view(B, self.params.context_copies, self.n_classes).scatter_(
                2, labels.view(B, 1, 1).expand(B, self.params.context_copies, 1), 1.0)
        return ctx

    def _run(self, spikes: Tensor, ctx: Tensor, *, positive: Tensor | None = None,
             gen: torch.Generator | None = None, stats: StepStats | None = None):
        """Run every CSDP layer over the window; learn when ``positive`` ``[B]`` is given.

        Args: spikes ``[T, B, n_x]``; ctx ``[B, n_ctx]`` context rows (a spike every step).
        Returns ``(layer spikes [T, B, n_l] per layer, goodness [L, T, B], mean loss)``.
        """
        p = self.params
        T, B, _ = spikes.shape
        lif_in = (1.0 - p.beta) * p.r_m * p.current_gain  # current -> membrane increment per step
        outs, goods, losses = [], [], []
        inp_x = spikes
        for k, (n_in, n_out) in enumerate(self.layer_shapes):
            inp = torch.cat((inp_x, ctx.unsqueeze(0).expand(T, B, self.n_ctx)), dim=-1) if self.n_ctx else inp_x
            step_mode = positive is not None and p.update_every == "step"
            cur_all = None if step_mode else self._read(k, inp.reshape(T * B, n_in), True).reshape(T, B, n_out)
            v = torch.zeros(B, n_out, device=inp.device)
            refrac = torch.zeros(B, n_out, dtype=torch.int32, device=inp.device)
            z = torch.zeros(B, n_out, device=inp.device)
            post = torch.empty(T, B, n_out, device=inp.device)
            trace = torch.empty(T, B, n_out, device=inp.device)
            for t in range(T):
                cur = cur_all[t] if cur_all is not None else self._read(k, inp[t], True)
                resting = refrac > 0
                v = torch.where(resting, torch.zeros_like(v), p.beta * v + lif_in * cur)
                s = (v > p.v_threshold).to(v.dtype)
                v = v * (1.0 - s)
                refrac = torch.where(s > 0, torch.full_like(refrac, p.refractory), (refrac - 1).clamp_(min=0))
                z = p.trace_decay * z + s
                post[t], trace[t] = s, z
                if step_mode:
                    upd = csdp_delta_w(inp[t:t + 1], post[t:t + 1], trace[t:t + 1], positive, eta=self.eta,
                                       r_m=p.r_m, lam=p.lam, theta=p.theta,
                                       pre_before=inp[t - 1] if t > 0 else None)
                    losses.append(upd.loss)
                    self._count(stats, self._apply(k, upd.dw, gen))
            if positive is not None and not step_mode:
                upd = csdp_delta_w(inp, post, trace, positive, eta=self.eta, r_m=p.r_m, lam=p.lam, theta=p.theta)
                losses.append(upd.loss)
                self._count(stats, self._apply(k, upd.dw, gen))
            goods.append((trace * trace).sum(-1))
            outs.append(post)
            inp_x = post
        loss = sum(losses) / len(losses) if losses else float("nan")
        return outs, torch.stack(goods), loss

    @staticmethod
    def _count(stats: StepStats | None, us: UpdateStats) -> None:
        if stats is not None:
            stats.pulses += us.pulses
            stats.energy_J += us.energy_J
            stats.phases += us.phases

    # ------------------------------------------------------------------------------------------------
    # public forward helpers
    # ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def goodness(self, x: Tensor, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Goodness ``sum_j z_j^2`` of every layer, averaged over the window: ``[L, B]``.
        ``labels`` ``[B]`` are clamped into the context units (None: context silent)."""
        x = self._check_x(x)
        labels = None if labels is None else self._check_labels(labels, len(x), "labels")
        _, good, _ = self._run(self.encode(x, generator), self._context(labels, len(x)))
        return good.mean(dim=1)

    @torch.no_grad()
    def rates(self, x: Tensor, generator: torch.Generator | None = None, labels: Tensor | None = None) -> Tensor:
        """Firing rates of all CSDP layers (spikes per step, concatenated): ``[B, sum(hidden)]``."""
        x = self._check_x(x)
        labels = None if labels is None else self._check_labels(labels, len(x), "labels")
        outs, _, _ = self._run(self.encode(x, generator), self._context(labels, len(x)))
        return torch.cat([o.mean(0) for o in outs], dim=-1)

    def _readout_in(self, r: Tensor) -> Tensor:
        """Readout inputs ``[B, sum(hidden) + 1]``: rates divided by each sample's highest rate
        (digital normalisation in the periphery, so the inputs span the DAC range) and a
        constant 1 (bias)."""
        r = r / r.amax(dim=-1, keepdim=True).clamp(min=1e-6)
        return torch.cat((r, torch.ones(len(r), 1, device=r.device)), dim=-1)

    # ------------------------------------------------------------------------------------------------
    # learning
    # ------------------------------------------------------------------------------------------------
    def negatives(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        """Negative samples for ``x`` ``[B, F]``: ``(x_neg, labels_neg)`` - the same input with
        wrong labels (``"label"``) or a masked mix with another sample and no labels (``"mix"``)."""
        gen = self._gen(generator)
        B = len(x)
        if self.params.negatives == "label":
            shift = torch.randint(1, self.n_classes, (B,), generator=gen, device=x.device)
            return x, (y + shift) % self.n_classes
        mask = (torch.rand(x.shape, generator=gen, device=x.device) < 0.5).to(x.dtype)
        if B > 1:
            shift = int(torch.randint(1, B, (1,), generator=gen, device=x.device))
            other = x.roll(shift, dims=0)
        else:
            other = x[:, torch.randperm(x.shape[1], generator=gen, device=x.device)]
        return mask * x + (1 - mask) * other, None

    @torch.no_grad()
    def csdp_step(self, x: Tensor, labels: Tensor | None, positive: Tensor | bool,
                  generator: torch.Generator | None = None) -> StepStats:
        """One CSDP update of every layer on ``x`` ``[B, F]`` with ``labels`` clamped into the
        context (None: silent context) and ``positive`` (``[B]`` 0/1, or one bool for all)."""
        x = self._check_x(x)
        B = len(x)
        labels = None if labels is None else self._check_labels(labels, B, "labels")
        if isinstance(positive, bool):
            positive = torch.full((B,), float(positive), device=self.torch_device)
        st = StepStats()
        _, _, st.loss = self._run(self.encode(x, generator), self._context(labels, B),
                                  positive=positive.to(self.torch_device, torch.float32), gen=self._gen(generator), stats=st)
        return st

    @torch.no_grad()
    def train_batch(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> StepStats:
        """CSDP on positives and negatives of ``x`` ``[B, F]`` (labels ``y`` ``[B]``), then the
        readout's delta rule."""
        x = self._check_x(x)
        B = len(x)
        y = self._check_labels(y, B)
        gen = self._gen(generator)
        x_neg, y_neg = self.negatives(x, y, gen)
        both = torch.cat((x, x_neg))
        labels = torch.cat((y, y_neg)) if y_neg is not None else None
        positive = torch.cat((torch.ones(B), torch.zeros(B))).to(self.torch_device)
        st = StepStats()
        outs, _, st.loss = self._run(self.encode(both, gen), self._context(labels, 2 * B),
                                     positive=positive, gen=gen, stats=st)
        if self.params.readout == "classifier":
            if self.n_ctx:  # the readout sees the network as at test time: context silent
                r = self.rates(x, gen)
            else:
                r = torch.cat([o[:, :B].mean(0) for o in outs], dim=-1)
            a = self._readout_in(r)
            k = len(self.layer_shapes)
            logits = self._read(k, a, False)
            err = torch.nn.functional.one_hot(y, self.n_classes).to(logits.dtype) - torch.softmax(logits, -1)
            self._count(st, self._apply(k, self.readout_lr * (a.T @ err) / B, gen))
            st.correct, st.seen = int((logits.argmax(-1) == y).sum()), B
        return st

    @torch.no_grad()
    def predict(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = self._check_x(x)
        if self.params.readout == "classifier":
            return self._read(len(self.layer_shapes), self._readout_in(self.rates(x, generator)), False).argmax(-1)
        spikes = self.encode(x, generator)
        B = len(x)
        scores = []
        for c in range(self.n_classes):
            labels = torch.full((B,), c, dtype=torch.int64, device=self.torch_device)
            _, good, _ = self._run(spikes, self._context(labels, B))
            scores.append(good.sum(0).mean(0))
        return torch.stack(scores, dim=-1).argmax(-1)
